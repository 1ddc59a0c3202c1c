"""Panel of notebook 07: the four sources of rho != 1 on the toy policy, from the cached grid."""

from __future__ import annotations

import ipywidgets as widgets

from ..experiments.off_policy import SOURCES, rho_sources_grid
from ..plots.off_policy import RhoSourceFigure
from .common import Panel, register_panel, slider

__all__ = ["rho_sources_panel"]


@register_panel("rho_sources", notebook="07")
def rho_sources_panel(data: dict | None = None) -> Panel:
    """Source (mini-batches per rollout, epochs, staleness, rollout engine) and its setting
    -> the distribution of log rho over the tokens the loss sees, and the shares of tokens
    PPO clips and an importance weight with C = 2 would truncate or mask, against the knob.

    Everything was measured once on the toy policy (``rlviz.experiments.off_policy``,
    cached in ``data/off_policy/rho_sources.json``): a move only looks the numbers up."""
    data = rho_sources_grid() if data is None else data
    grid, provenance = data["grid"], data["provenance"]
    drawing = RhoSourceFigure(provenance)
    controls = {
        "source": widgets.ToggleButtons(
            options=[("mini-batches", "minibatches"), ("epochs", "epochs"),
                     ("staleness", "staleness"), ("engine (bf16, top-p)", "engine")],
            value="minibatches", description="source", style={"description_width": "initial"}),
        "setting": slider("setting (left → right on the knob)", 4, 0,
                          len(SOURCES["minibatches"][1]) - 1, 1),
    }

    def update(source, setting):
        index = int(setting)
        drawing.update(grid, source, index)
        summary = grid[source][index]
        values = provenance["sources"][source]["values"]
        return {
            "knob": f"{provenance['sources'][source]['label']} = {values[index]:g}",
            "tokens": summary["tokens"],
            "std of log ρ": summary["log_rho_std"],
            "1% / 99% quantile of log ρ": (f"{summary['log_rho_q01']:+.3f} / "
                                           f"{summary['log_rho_q99']:+.3f}"),
            "clip fraction (ε = 0.2)": summary["clipfrac"],
            "dual-clipped (A < 0, ρ > 3)": summary["dual_frac"],
            "token weight outside [1/2, 2]": summary["outside_token"],
            "sequence weight outside [1/2, 2]": summary["outside_sequence"],
            "approx KL (k3)": summary["approx_kl"],
        }

    return Panel("Where ρ ≠ 1 comes from", controls, drawing, update,
                 description="GRPO on the toy 'reverse' task after 10 steps; one rollout of "
                             "256 responses. Engine: the IS weight ω = π_old / π_rollout, "
                             "PPO's ρ at the first step in verl's bypass mode.")
