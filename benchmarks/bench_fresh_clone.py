"""The whole ``make test`` on a fresh clone of this repository, as a newcomer or CI runs it:
``git clone`` into a temporary folder (with ``shared/`` beside it when there is one), then
``make test`` there, which creates its own ``.venv`` and installs everything. Target: 6 min.

Set RLVIZ_BENCH_SKIP_CLONE=1 to skip it (it takes minutes).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run() -> list[dict]:
    if os.environ.get("RLVIZ_BENCH_SKIP_CLONE") == "1":
        return [dict(name="make test on a fresh clone (skipped: RLVIZ_BENCH_SKIP_CLONE=1)",
                     value="-", unit="", target="< 6 min", ok=None)]
    with tempfile.TemporaryDirectory(prefix="rlviz-fresh-") as tmp:
        clone = Path(tmp) / "rlviz"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        shared = ROOT.parent / "shared"
        if shared.is_dir():
            os.symlink(shared, Path(tmp) / "shared")
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
        start = time.perf_counter()
        result = subprocess.run(["make", "test"], cwd=clone, env=env, capture_output=True,
                                text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
    return [dict(name="make test on a fresh clone" + ("" if result.returncode == 0 else
                                                       " (FAILED)"),
                 value=seconds / 60, unit="min", target="< 6 min",
                 ok=result.returncode == 0 and seconds < 360)]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from run_all import print_table

    print_table([{"group": "fresh_clone", **r} for r in run()])
