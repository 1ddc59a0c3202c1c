"""``make bench``: run every ``benchmarks/bench_*.py`` and print one table.

Each benchmark module exposes ``run() -> list[dict]`` with rows
``{"name", "value", "unit", "target", "ok"}`` (``target`` a short text such as "< 100 ms",
``ok`` True/False/None when there is no target). Pass module names to run only some:
``python benchmarks/run_all.py bench_panels bench_losses``.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["bench_panels", "bench_notebooks", "bench_losses", "bench_learning", "bench_arena",
         "bench_fresh_clone"]


def discover(selected: list[str]) -> list[str]:
    found = sorted(p.stem for p in HERE.glob("bench_*.py"))
    names = selected or [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]
    unknown = [n for n in names if n not in found]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; available: {found}")
    return names


def format_value(value, unit) -> str:
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def print_table(rows: list[dict]) -> None:
    header = ("benchmark", "measurement", "value", "target", "met")
    lines = [(r["group"], r["name"], format_value(r["value"], r.get("unit", "")),
              r.get("target") or "", {True: "yes", False: "NO", None: ""}[r.get("ok")])
             for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    rule = "-+-".join("-" * w for w in widths)
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print(rule)
    for line in lines:
        print(" | ".join(str(x).ljust(w) for x, w in zip(line, widths)))


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    print(f"rlviz performance report — {platform.node()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}")
    rows = []
    for name in discover(argv):
        start = time.perf_counter()
        print(f"... running {name}", flush=True)
        module = importlib.import_module(name)
        for row in module.run():
            rows.append({"group": name.removeprefix("bench_"), **row})
        print(f"    done in {time.perf_counter() - start:.0f} s", flush=True)
    print()
    print_table(rows)
    missed = [r for r in rows if r.get("ok") is False]
    print(f"\n{len(rows)} measurements, {len(missed)} target(s) missed"
          + (": " + "; ".join(f"{r['group']}/{r['name']}" for r in missed) if missed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
