"""Notebook 08's slider panel: the weight of a token under each aggregation mode when the
batch is split into micro-batches, naive local normaliser against the global one."""

from __future__ import annotations

import ipywidgets as widgets

from ..experiments import at_scale as exp
from ..plots.at_scale import MicroWeightsFigure
from .common import Panel, register_panel, slider

__all__ = ["micro_batch_weights_panel"]


@register_panel("micro_batch_weights", notebook="08")
def micro_batch_weights_panel(n_micro: int = 4, spread: float = 1.0,
                              mode: str = "token-mean") -> Panel:
    """Micro-batch count, length spread and mode -> the per-token weight of 8 responses with
    one batch (= the global normaliser) and with the naive normaliser, and their ratio."""
    controls = {
        "n_micro": widgets.SelectionSlider(options=list(exp.MICRO_OPTIONS), value=n_micro,
                                           description="micro-batches",
                                           style={"description_width": "initial"},
                                           layout=widgets.Layout(width="22em")),
        "spread": slider("length spread", spread, 0.0, 1.0, 0.05, readout_format=".2f"),
        "mode": widgets.Dropdown(options=list(exp.AGG_MODES), value=mode,
                                 description="loss_agg_mode",
                                 style={"description_width": "initial"}),
    }
    figure = MicroWeightsFigure(exp.weights_data(n_micro, spread, mode))

    def update(n_micro, spread, mode):
        data = exp.weights_data(n_micro, spread, mode)
        figure.update(data)
        return {
            "largest naive factor": data["largest factor"],
            "smallest naive factor": data["smallest factor"],
            "tokens in the batch": sum(data["lengths"]),
            "shortest response": min(data["lengths"]),
            "longest response": max(data["lengths"]),
        }

    return Panel("Micro-batches: the weight of every token, naive vs global normaliser",
                 controls, figure, update,
                 description="8 responses padded to 32 tokens, split into equal micro-batches "
                             "of consecutive rows (longest first). Bars: naive (each "
                             "micro-batch normalises itself, then the steps are averaged); "
                             "black dashes: one batch, which the global normaliser "
                             "reproduces exactly. Weights by autograd through "
                             "rlviz.losses.microbatch.")
