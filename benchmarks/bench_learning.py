"""Time to learn the default toy task, per algorithm, through the command line.

For every algorithm of ``LOSS_FN_REGISTRY`` except the demo's two, ``python -m rlviz train
--algo NAME --seed S --stop-reward 0.9`` runs on the default task ("reverse") with
``TrainConfig``'s defaults (only the algorithm changes) until the mean reward of 5
consecutive steps reaches 0.9, or ``MAX_STEPS`` steps; its ``--out`` CSV gives the steps and
the wall seconds of training to that point (sampling, updates and the periodic greedy
evaluation; target for ``"grpo_paper"`` and ``"ppo_gae"``: at most 5 s each, median over
seeds 0-4), and the greedy reward on fresh prompts at the end. The CPU column is the child
process' CPU time, start-up included.

Wall time depends on the machine's load: on a shared machine other processes slow every
step alike (measured here at a load average of 8-10 on 2 cores: ~3x), so the steps column
is the load-free number and the CPU column the nearly load-free cost. Run
``python benchmarks/bench_learning.py [ALGO ...] [-- FLAG ...]`` for the table and the
settings (flags after ``--`` go to every ``rlviz train`` run, e.g. ``-- --epochs 1``);
``run()`` returns the rows for ``make bench``.

What was tried for the 5 s target (December 2026, seeds 0-3, steps to 0.9 for
``grpo_paper``; CPU seconds with two runs sharing the 2 cores). The defaults of the time
(two layers, positions counted by real tokens, two epochs, lr 1e-3; now
``rlviz.trainer.TWO_LAYER_SETTINGS``) took 55 and 67 steps (seeds 0, 1), 25 CPU s median.
One epoch (lr 2e-3: 50, 65, 67, > 150 steps), 128 responses a step (2 minibatches, lr 2e-3:
70-146, one > 150) and width 32 (lr 2e-3: 72-79, one > 150) each needed 19-20 CPU s
median: less work a step, more steps. Two torch threads made a step 5x slower.
Positions counted by column (``--positions column``) cut the steps to 36-44 and let one
layer learn reverse; with one layer, one epoch and lr 3e-3, 29-37 steps at about half the
cost a step. Those are the defaults now. With real-token positions the one-layer model
needs 95 and 145 steps or more than 150 (seeds 0-3). On ``copy`` the one-layer model (lr
3e-3) reached 0.9 within 150 steps in 0 of 4 seeds with columns, 1 of 4 with real tokens;
the controlled experiments keep ``TWO_LAYER_SETTINGS``.

Measured with this script, 5 seeds, on a quiet 2-core machine (3 December 2026; each
figure is the median over seeds of its own column, so seconds are not steps x seconds a
step): the old defaults ``grpo_paper`` 28.3 s (67 steps; 0.36 s a step over the run),
``ppo_gae`` 21.8 s (47 steps), in a slow phase of the machine; the new defaults
``grpo_paper`` 4.7 s, then 4.0 s (34 steps; 0.16, then 0.12 s a step) and ``ppo_gae`` 5.5 s,
then 4.8 s (33 steps; 0.17, then 0.14 s a step), in two sittings of the same evening, the
second after prompts were encoded with one tensor conversion (~5 ms less a step).
"""

from __future__ import annotations

import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from rlviz.algorithms import LOSS_FN_REGISTRY
from rlviz.trainer import TrainConfig, steps_to_threshold

THRESHOLD = 0.9
WINDOW = 5
MAX_STEPS = 150
TARGET_SECONDS = 5.0
TARGETED = ("grpo_paper", "ppo_gae")
DEMO_ALGOS = ("ppo", "grpo")  # the demo's losses: batch-centred advantages, no toy defaults
VARIANTS = tuple(name for name in LOSS_FN_REGISTRY if name not in (*TARGETED, *DEMO_ALGOS))
SEEDS = (0, 1, 2, 3, 4)
ROOT = Path(__file__).resolve().parent.parent


def time_to_threshold(algo: str, seed: int, flags: tuple = ()) -> dict:
    """One CLI run to the threshold (``flags``: more ``rlviz train`` options): steps,
    seconds, final greedy reward (NaN if not reached), seconds per step and the child's
    CPU seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "metrics.csv"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-m", "rlviz", "train", "--algo", algo, "--seed",
                        str(seed), "--steps", str(MAX_STEPS), "--stop-reward", str(THRESHOLD),
                        "--no-progress", "--out", str(out), *flags],
                       cwd=ROOT, check=True, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(out, newline="") as handle:
            rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    steps, seconds = steps_to_threshold(rows, THRESHOLD, WINDOW)
    return {
        "steps": steps if steps is not None else float("nan"),
        "seconds": seconds if seconds is not None else float("nan"),
        "greedy": rows[-1]["greedy_reward"],
        "per_step": rows[-1]["seconds"] / len(rows),
        "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }


def _median(values):
    finite = [v for v in values if v == v]
    # a run that never reached the threshold counts as infinitely slow
    padded = finite + [float("inf")] * (len(values) - len(finite))
    return statistics.median(padded)


def run(seeds=SEEDS, algos=(*TARGETED, *VARIANTS), flags: tuple = ()) -> list[dict]:
    rows = []
    for algo in algos:
        algo_seeds = seeds
        runs = [time_to_threshold(algo, seed, flags) for seed in algo_seeds]
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


def settings_text(algos=(*TARGETED, *VARIANTS)) -> str:
    cfg = TrainConfig()
    lines = [f"machine: {os.cpu_count()} cores; torch {torch.__version__}; "
             "training uses 1 torch thread, flush-denormal on",
             f"criterion: mean reward of {WINDOW} consecutive steps >= {THRESHOLD}, at most "
             f"{MAX_STEPS} steps; seconds = wall time from the start of training",
             "TrainConfig: " + ", ".join(
                 f"{k}={v}" for k, v in asdict(cfg).items()
                 if k not in ("algo", "seed", "steps", "stop_reward", "input_len", "seq_len"))]
    for algo in algos:
        cfg = TrainConfig(algo=algo)
        hp = {k: v for k, v in asdict(cfg.hparams()).items() if v is not None}
        lines.append(f"{algo}: {cfg.samples_per_step // cfg.group_size()} prompts x "
                     f"G={cfg.group_size()}; " + ", ".join(f"{k}={v}" for k, v in hp.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from run_all import print_table

    args = sys.argv[1:]
    flags = tuple(args[args.index("--") + 1:]) if "--" in args else ()
    chosen = tuple(args[:args.index("--")] if "--" in args else args) or (*TARGETED, *VARIANTS)
    unknown = [a for a in chosen if a not in LOSS_FN_REGISTRY or a in DEMO_ALGOS]
    if unknown:
        sys.exit(f"unknown algorithm(s) {unknown}; known: {', '.join((*TARGETED, *VARIANTS))}")
    print(settings_text(chosen))
    if flags:
        print("flags given to every run (they override the settings above):", *flags)
    print()
    result = run(algos=chosen, flags=flags)
    print_table([{"group": "learning", **r} for r in result])
    sys.exit(0 if all(r["ok"] is not False for r in result) else 1)
