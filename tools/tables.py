"""Regenerate the tables that README.md and docs/losses.md carry from the registry's data.

    .venv/bin/python tools/tables.py          # rewrite the generated regions
    .venv/bin/python tools/tables.py --check  # exit 1 if one is stale (the tests do this)
"""

import pathlib
import sys

from rlviz.algorithms.table import write_generated

ROOT = pathlib.Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    stale = write_generated(ROOT, check=check)
    for name in stale:
        print(("stale: " if check else "rewrote: ") + name)
    sys.exit(1 if check and stale else 0)
