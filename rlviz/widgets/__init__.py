"""Slider panels. Each module registers its factories with ``@register_panel``; importing
them here makes ``rlviz.widgets.<factory>()`` work and fills ``PANEL_REGISTRY`` with every
panel (the generic tests, the benchmark and the browser tests read it).

A new panel module is imported here by name (``tests/test_panels_generic.py`` checks that
none is forgotten)."""

from .at_scale import micro_batch_weights_panel
from .clipping import clipping_panel, clipping_run_panel
from .common import PANEL_REGISTRY, Panel, register_panel, render_png, slider
from .groups import group_std_bias_panel, length_bias_panel
from .kl import gaussian_kl_panel, token_kl_panel
from .off_policy import rho_sources_panel
from .policy_gradient import entropy_bonus_panel, gae_panel
from .training import training_panel
from .zero_loss import zero_loss_panel

__all__ = [
    "PANEL_REGISTRY",
    "Panel",
    "clipping_panel",
    "clipping_run_panel",
    "entropy_bonus_panel",
    "gae_panel",
    "gaussian_kl_panel",
    "group_std_bias_panel",
    "length_bias_panel",
    "micro_batch_weights_panel",
    "register_panel",
    "render_png",
    "rho_sources_panel",
    "slider",
    "token_kl_panel",
    "training_panel",
    "zero_loss_panel",
]
