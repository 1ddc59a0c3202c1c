"""Slider panels: median and worst update time (compute + redraw), per panel.

Each slider-driven panel is built once, then every control is moved through up to 12
settings across its range; ``Panel.update_seconds`` records compute plus the Agg render of
the PNG the browser shows. Run-button panels are timed per click instead (their target is
separate: they exist because their update takes more than a fraction of a second).
Target: median <= 30 ms per panel (the slider feels immediate); worst moves redraw a
background when an axis' round limits change (``LiveFigure.follow``).
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

SETTINGS_PER_CONTROL = 12


def settings(control):
    if hasattr(control, "options"):
        return [o[1] if isinstance(o, tuple) else o for o in control.options]
    if hasattr(control, "min") and hasattr(control, "max"):
        values = np.linspace(control.min, control.max, SETTINGS_PER_CONTROL)
        if isinstance(control.value, int):
            return sorted({int(round(v)) for v in values})
        return [float(v) for v in values]
    if isinstance(control.value, bool):
        return [not control.value, control.value]
    return []


def time_panel(factory):
    built = time.perf_counter()
    panel = factory()
    build_seconds = time.perf_counter() - built
    panel.update_seconds.clear()
    if panel.run_button is not None:
        panel.click_run()
        return build_seconds, panel.update_seconds, True
    for control in panel.controls.values():
        initial = control.value
        for value in settings(control):
            control.value = value
        control.value = initial
    return build_seconds, panel.update_seconds, False


def run() -> list[dict]:
    from rlviz.widgets import PANEL_REGISTRY

    rows = []
    for name in sorted(PANEL_REGISTRY, key=lambda n: (PANEL_REGISTRY[n][1], n)):
        factory, notebook = PANEL_REGISTRY[name]
        build_seconds, seconds, is_run_button = time_panel(factory)
        label = f"nb{notebook} {name}"
        if is_run_button:
            rows.append(dict(name=f"{label}: Run-button run", value=seconds[-1], unit="s",
                             target=None, ok=None))
            continue
        median_ms = 1000 * statistics.median(seconds)
        rows.append(dict(name=f"{label}: slider update median ({len(seconds)} moves)",
                         value=median_ms, unit="ms", target="<= 30 ms",
                         ok=median_ms <= 30))
        rows.append(dict(name=f"{label}: slider update worst", value=1000 * max(seconds),
                         unit="ms", target=None, ok=None))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from run_all import print_table

    print_table([{"group": "panels", **r} for r in run()])
