"""Wall time of the whole arena: every algorithm of the family x 10 seeds on 2 cores.

The two arena experiments of ``rlviz.experiments.catalog`` ("arena": the five 2024
algorithms and ``grpo_paper`` without the entropy bonus; "arena_2025": the eight added
in 2025), 14 configs x 10 seeds x 40 steps, are run from scratch into a temporary
directory by ``run_experiment`` (as many worker processes as cores, one torch thread
each), exactly as ``make experiments`` makes the committed caches. Target: at most 10
minutes of wall time on 2 cores. The committed caches are not touched.

Measured on 3 December 2026 on a quiet 2-core machine: 156 s (arena) + 211 s
(arena_2025) = 6.1 minutes by ``make experiments``, 5.55 minutes by this script. With the
earlier two-layer defaults and 60 steps the runs' own seconds in the caches added up to
~9,960 s (~83 minutes of wall on 2 workers).
"""

from __future__ import annotations

import sys
import tempfile
import time

TARGET_SECONDS = 600.0
ARENAS = ("arena", "arena_2025")


def run() -> list[dict]:
    from rlviz.experiments.catalog import EXPERIMENTS
    from rlviz.experiments.runner import default_workers, run_experiment

    rows, total = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in ARENAS:
            experiment = EXPERIMENTS[name]
            start = time.perf_counter()
            run_experiment(experiment, cache_dir=tmp, progress=True, fresh=True)
            seconds = time.perf_counter() - start
            total += seconds
            rows.append(dict(
                name=f"{name}: {len(experiment.configs)} configs x {len(experiment.seeds)} "
                     f"seeds, {default_workers()} workers", value=seconds, unit="s",
                target=None, ok=None))
    rows.append(dict(name="the whole arena (both experiments)", value=total / 60, unit="min",
                     target="<= 10 min", ok=total <= TARGET_SECONDS))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from run_all import print_table

    print_table([{"group": "arena", **r} for r in run()])
