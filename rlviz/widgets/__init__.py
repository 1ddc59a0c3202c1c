"""Slider panels. Each module registers its factories with ``@register_panel``; all of
them are imported here so ``rlviz.widgets.<factory>()`` works and ``PANEL_REGISTRY``
lists every panel (the generic tests, the benchmark and the browser tests use it)."""

import importlib
import pkgutil

from .common import PANEL_REGISTRY, Panel, register_panel, render_png, slider

__all__ = ["PANEL_REGISTRY", "Panel", "register_panel", "render_png", "slider"]

for _module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _module_info.name == "common":
        continue
    _module = importlib.import_module(f"{__name__}.{_module_info.name}")
    for _name in getattr(_module, "__all__", []):
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
