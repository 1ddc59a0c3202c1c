"""The experiments whose results are cached under ``data/experiments/`` (``make
experiments`` regenerates them; the notebooks read them; ``tests/test_experiment_caches.py``
re-runs one pair of each). Each changes one thing and runs over several seeds."""

from __future__ import annotations

import sys

from .controlled import CONTROLLED, TEN_SEEDS
from .off_policy import LEARNING as OFF_POLICY
from .runner import Experiment, run_experiment

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
    base={"steps": 40},
    metrics=("reward", "greedy_reward", "response_length", "entropy", "clipfrac", "kl_ref",
             "loss", "seconds"),
))

ARENA_2025_ALGOS = ("rloo", "reinforce_pp", "reinforce_pp_baseline", "cispo", "sapo",
                    "gmpo", "clip_cov", "kl_cov")

register(Experiment(
    name="arena_2025",
    description="the algorithms added in 2025 on the default task (reverse) with the "
                "trainer's defaults, as the arena: only cfg.algo changes",
    configs={algo: {"algo": algo} for algo in ARENA_2025_ALGOS},
    seeds=TEN_SEEDS,
    base={"steps": 40},
    metrics=("reward", "greedy_reward", "response_length", "entropy", "clipfrac", "kl_ref",
             "loss", "seconds"),
))

register(OFF_POLICY)  # notebook 07 (rlviz/experiments/off_policy.py)
for _experiment in CONTROLLED:  # notebook 09 (rlviz/experiments/controlled.py)
    register(_experiment)


def main(argv: list[str] | None = None) -> int:
    """``python -m rlviz.experiments.catalog [NAME ...] [--keep]``: regenerate the caches
    of the named experiments of the catalog (all by default); ``--keep`` resumes."""
    argv = sys.argv[1:] if argv is None else argv
    keep = "--keep" in argv
    names = [a for a in argv if a != "--keep"] or list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        print(f"unknown experiment(s) {unknown}; known: {', '.join(EXPERIMENTS)}",
              file=sys.stderr)
        return 2
    for name in names:
        run_experiment(EXPERIMENTS[name], fresh=not keep)
    return 0


if __name__ == "__main__":  # pragma: no cover
    # run the importable module's main, so that pickled experiments name that module
    from rlviz.experiments.catalog import main as _main

    sys.exit(_main())
