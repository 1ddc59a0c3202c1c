"""Every registered panel, every control, across its whole range (ends included):
no exception, finite numbers, a rendered image."""

import math

import pytest

from rlviz.widgets import PANEL_REGISTRY

PANELS = sorted(PANEL_REGISTRY)


def settings_of(control):
    """The values a person can give the control: ends and middle of a slider, every
    option of a dropdown or toggle, both states of a checkbox."""
    if hasattr(control, "options"):
        options = list(control.options)
        return [opt[1] if isinstance(opt, tuple) else opt for opt in options]
    if hasattr(control, "min") and hasattr(control, "max"):
        lo, hi = control.min, control.max
        middle = lo + (hi - lo) / 2
        if isinstance(control.value, int):
            middle = lo + (hi - lo) // 2
        elif getattr(control, "step", None):
            middle = lo + round((middle - lo) / control.step) * control.step
        return [lo, hi, middle]
    if isinstance(control.value, bool):
        return [True, False]
    return []


def assert_sane(panel):
    assert panel.errors == []
    assert panel.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    for name, value in panel.values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert math.isfinite(value), f"{name} = {value}"


def test_panels_are_registered():
    assert PANELS, "no panel is registered in rlviz.widgets"


@pytest.mark.parametrize("name", PANELS)
def test_every_control_across_its_range(name):
    factory, _notebook = PANEL_REGISTRY[name]
    panel = factory()
    assert_sane(panel)
    if panel.run_button is not None:
        # Run-button panels take seconds per run: sweep each control from a cheap baseline
        # (every slider at its low end, e.g. the fewest training steps)
        panel.set(**{name: c.min for name, c in panel.controls.items()
                     if hasattr(c, "min") and not hasattr(c, "options")})
    initial = panel.params()
    for control_name, control in panel.controls.items():
        for value in settings_of(control):
            control.value = value
            if panel.run_button is None:
                assert_sane(panel)  # every setting of a live panel redraws at once
            elif value in ends(control).values() or hasattr(control, "options"):
                panel.click_run()  # a Run-button panel (seconds per run): ends and options
                assert_sane(panel)
        control.value = initial[control_name]
    # every control at its lower end at once, then every control at its upper end
    for end in ("low", "high"):
        panel.set(**{control_name: ends(control)[end]
                     for control_name, control in panel.controls.items() if settings_of(control)})
        if panel.run_button is not None:
            panel.click_run()
        assert_sane(panel)


def ends(control):
    """The lowest and highest setting of a control."""
    values = settings_of(control)
    if hasattr(control, "min") and not hasattr(control, "options"):
        return {"low": control.min, "high": control.max}
    return {"low": values[0], "high": values[-1]}


def test_every_panel_module_is_imported_by_name():
    """``rlviz/widgets/__init__.py`` imports each panel module's factories explicitly (so
    go-to-definition finds them): a module left out there would register no panel."""
    import importlib
    import pkgutil

    import rlviz.widgets as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name == "common":
            continue
        module = importlib.import_module(f"rlviz.widgets.{info.name}")
        for name in module.__all__:
            assert getattr(package, name, None) is getattr(module, name), \
                f"rlviz.widgets does not import {info.name}.{name}"
            assert name in package.__all__, f"{name} is missing from rlviz.widgets.__all__"
