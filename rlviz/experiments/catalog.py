"""The experiments whose results are cached under ``data/experiments/`` (``make
experiments`` regenerates them; the notebooks read them; ``tests/test_experiment_caches.py``
re-runs one pair of each). Each changes one thing and runs over several seeds."""

from __future__ import annotations

from .runner import Experiment

TEN_SEEDS = tuple(range(10))

EXPERIMENTS: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    if experiment.name in EXPERIMENTS:
        raise ValueError(f"experiment {experiment.name!r} is already in the catalog")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


register(Experiment(
    name="entropy_bonus",
    description="grpo_paper on reverse: the trainer's entropy bonus 0.01 against none",
    configs={"ent_coef 0.01": {"ent_coef": 0.01}, "ent_coef 0": {"ent_coef": 0.0}},
    seeds=tuple(range(5)),
    base={"algo": "grpo_paper", "steps": 30},
))
