"""Panel of notebook 01: what moves the loss value off zero, and what the gradient does."""

from __future__ import annotations

from functools import lru_cache

import ipywidgets as widgets

from ..experiments.zero_loss import ZeroLossLab
from ..losses.aggregation import AGG_MODES
from ..plots.zero_loss import EpochCurvesFigure
from .common import Panel, register_panel, slider

__all__ = ["zero_loss_panel"]

MAX_EPOCHS = 8
RUNS_KEPT = 64  # settings whose trained runs the panel keeps (each ~0.3 MB: weights + Adam)


@register_panel("zero_loss", notebook="01")
def zero_loss_panel(lab: ZeroLossLab | None = None) -> Panel:
    """Inner epochs, beta, spread of response lengths, aggregation mode and centring of the
    advantages -> loss value (with its policy and KL parts) and gradient norm per epoch.

    The model is small (vocabulary 256, hidden 32, Adam lr 1e-3) so a run takes a few ms.
    One run is kept per (beta, spread, mode, centred), for the last ``RUNS_KEPT`` settings,
    and trained only as far as the epochs slider asks (``ZeroLossRun.extend``): the first K
    epochs of a run are exactly a K-epoch run, so moving the epochs slider trains at most
    the missing epochs, and going back to a setting trains nothing. A new beta reuses the
    first epoch of the same (spread, mode, centred) at any other beta: with the policy
    still equal to the reference, k3 and its gradient are exactly 0 there.
    """
    lab = ZeroLossLab() if lab is None else lab
    drawing = EpochCurvesFigure(max_epochs=MAX_EPOCHS)

    @lru_cache(maxsize=RUNS_KEPT)  # the least recently used setting's run goes first
    def run_for(beta: float, spread: float, mode: str, centred: bool):
        return lab.start(beta=beta, spread=spread, mode=mode, centred=centred)

    controls = {
        "epochs": slider("inner epochs", 4, 1, MAX_EPOCHS, 1),
        "beta": slider("beta (k3 KL weight)", 0.0, 0.0, 0.5, 0.05, readout_format=".2f"),
        "spread": slider("spread of lengths", 0.0, 0.0, 1.0, 0.1, readout_format=".1f"),
        "mode": widgets.Dropdown(options=list(AGG_MODES), value="seq-mean-token-mean",
                                 description="aggregation", style={"description_width": "initial"}),
        "centred": widgets.Checkbox(value=True, description="advantages centred (sum 0)",
                                    style={"description_width": "initial"}),
    }

    def update(epochs, beta, spread, mode, centred):
        key = (round(float(beta), 6), round(float(spread), 6), mode, bool(centred))
        result = run_for(*key).extend(epochs).record  # per-epoch lists, >= `epochs` long
        drawing.update(result, epochs)
        lengths = lab.lengths(key[1])
        return {
            "loss at epoch 1": result["loss"][0],
            "loss at last epoch": result["loss"][epochs - 1],
            "beta x KL at last epoch": result["kl_term"][epochs - 1],
            "grad norm at epoch 1": result["grad_norm"][0],
            "grad norm at last epoch": result["grad_norm"][epochs - 1],
            "clipfrac at last epoch": result["clipfrac"][epochs - 1],
            "sum of advantages": float(lab.advantages(key[3]).sum()),
            "shortest response": int(lengths.min()),
            "longest response": int(lengths.max()),
        }

    panel = Panel(
        "Why the loss sits at 0, and what moves it",
        controls,
        drawing,
        update,
        description="Loss = aggregate(clipped surrogate) + beta * aggregate(k3 KL), pi_old "
                    "frozen at epoch 1, on one batch of 8 responses (vocabulary 256).",
    )
    panel.runs = run_for  # runs.cache_info(): how many settings are kept
    return panel
