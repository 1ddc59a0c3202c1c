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


ARENA_ALGOS = ("grpo_paper", "dr_grpo", "dapo", "gspo", "ppo_gae")

register(Experiment(
    name="arena",
    description="every algorithm of the family on the default task (reverse) with the "
                "trainer's defaults, only cfg.algo changes; plus grpo_paper without the "
                "trainer's entropy bonus",
    configs={**{algo: {"algo": algo} for algo in ARENA_ALGOS},
             "grpo_paper, ent_coef 0": {"algo": "grpo_paper", "ent_coef": 0.0}},
    seeds=TEN_SEEDS,
    base={"steps": 60},
    metrics=("reward", "greedy_reward", "response_length", "entropy", "clipfrac", "kl_ref",
             "loss", "seconds"),
))
