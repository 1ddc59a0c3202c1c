"""Time to learn the default toy task, per algorithm.

For each algorithm of the loss family, ``rlviz.train`` runs on the default task
("reverse") with ``TrainConfig``'s defaults (only ``cfg.algo`` changes) until the mean
reward of 5 consecutive steps reaches 0.9 (``stop_reward``), or ``MAX_STEPS`` steps.
Reported per algorithm, median over seeds 0-4: steps and wall seconds to that point (the
seconds include sampling, updates and the periodic greedy evaluation; target for
``"grpo_paper"`` and ``"ppo_gae"``: at most 5 s each), the CPU seconds of the whole run,
and the greedy reward on fresh prompts at the end of each run.

Wall time depends on the machine's load: on a shared machine other processes slow every
step alike (measured here at a load average of 8-10 on 2 cores: ~3x), so the steps column
is the load-free number and the CPU column the nearly load-free cost. Run
``python benchmarks/bench_learning.py`` for the table and the settings;
``run()`` returns the rows for ``make bench``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import asdict

import torch

from rlviz.trainer import TrainConfig, train

THRESHOLD = 0.9
WINDOW = 5
MAX_STEPS = 150
TARGET_SECONDS = 5.0
TARGETED = ("grpo_paper", "ppo_gae")
VARIANTS = ("dr_grpo", "dapo", "gspo")
SEEDS = (0, 1, 2, 3, 4)


def time_to_threshold(algo: str, seed: int) -> dict:
    """One run to the threshold: steps, seconds, final greedy reward (NaN if not reached)."""
    cfg = TrainConfig(algo=algo, seed=seed, steps=MAX_STEPS, stop_reward=THRESHOLD,
                      window=WINDOW)
    cpu_start = time.process_time()
    result = train(cfg, progress=False)
    cpu = time.process_time() - cpu_start
    steps, seconds = result.steps_to(THRESHOLD, WINDOW)
    return {
        "steps": steps if steps is not None else float("nan"),
        "seconds": seconds if seconds is not None else float("nan"),
        "greedy": result.metrics[-1]["greedy_reward"],
        "per_step": result.metrics[-1]["seconds"] / len(result.metrics),
        "cpu": cpu,
    }


def _median(values):
    finite = [v for v in values if v == v]
    # a run that never reached the threshold counts as infinitely slow
    padded = finite + [float("inf")] * (len(values) - len(finite))
    return statistics.median(padded)


def run(seeds=SEEDS, variants=VARIANTS) -> list[dict]:
    rows = []
    for algo in (*TARGETED, *variants):
        algo_seeds = seeds
        runs = [time_to_threshold(algo, seed) for seed in algo_seeds]
        label = (f"median of {len(algo_seeds)} seeds" if len(algo_seeds) > 1
                 else f"seed {algo_seeds[0]}")
        seconds = _median([r["seconds"] for r in runs])
        steps = _median([r["steps"] for r in runs])
        targeted = algo in TARGETED
        rows.append(dict(
            name=f"{algo}: seconds to reward >= {THRESHOLD} ({label})", value=seconds,
            unit="s", target=f"<= {TARGET_SECONDS:.0f} s" if targeted else None,
            ok=(seconds <= TARGET_SECONDS) if targeted else None))
        rows.append(dict(
            name=f"{algo}: steps to reward >= {THRESHOLD} ({label})", value=steps,
            unit="steps", target=None, ok=None))
        rows.append(dict(
            name=f"{algo}: CPU seconds of the run ({label})",
            value=statistics.median(r["cpu"] for r in runs), unit="s", target=None, ok=None))
        rows.append(dict(
            name=f"{algo}: seconds per step ({label})",
            value=statistics.median(r["per_step"] for r in runs), unit="s", target=None,
            ok=None))
        rows.append(dict(
            name=f"{algo}: greedy reward on fresh prompts at the end ({label})",
            value=statistics.median(r["greedy"] for r in runs), unit="", target=None,
            ok=None))
    return rows


def settings_text() -> str:
    cfg = TrainConfig()
    lines = [f"machine: {os.cpu_count()} cores; torch {torch.__version__}; "
             "training uses 1 torch thread, flush-denormal on",
             f"criterion: mean reward of {WINDOW} consecutive steps >= {THRESHOLD}, at most "
             f"{MAX_STEPS} steps; seconds = wall time from the start of training",
             "TrainConfig: " + ", ".join(
                 f"{k}={v}" for k, v in asdict(cfg).items()
                 if k not in ("algo", "seed", "steps", "stop_reward", "input_len", "seq_len"))]
    for algo in (*TARGETED, *VARIANTS):
        cfg = TrainConfig(algo=algo)
        hp = {k: v for k, v in cfg.hparams().items() if k not in ("algo",)}
        lines.append(f"{algo}: {cfg.samples_per_step // cfg.group_size()} prompts x "
                     f"G={cfg.group_size()}; " + ", ".join(f"{k}={v}" for k, v in hp.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from run_all import print_table

    print(settings_text())
    print()
    result = run()
    print_table([{"group": "learning", **r} for r in result])
    sys.exit(0 if all(r["ok"] is not False for r in result) else 1)
