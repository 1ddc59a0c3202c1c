"""Figures of notebook 01: the printed loss next to what actually moves.

Data in, ``matplotlib.figure.Figure`` out (no pyplot state). ``EpochCurvesFigure`` is a
``LiveFigure`` (``rlviz.plots.live``): created once, updated in place by the slider panel.
"""

from __future__ import annotations

import math
from typing import Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .live import LiveFigure

__all__ = ["EpochCurvesFigure", "plot_demo_run", "plot_off_zero_cases"]

LOSS_COLOR = "#d62728"
GRAD_COLOR = "#1f77b4"
KL_COLOR = "#9467bd"
UPDATE_COLOR = "#2ca02c"


def _positive_or_nan(values: Sequence[float]) -> list[float]:
    """|v| for a log axis; exact zeros become NaN (not drawn)."""
    return [abs(v) if v != 0 else math.nan for v in values]


RUN_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")


def plot_demo_run(runs: dict) -> Figure:
    """Demo runs side by side (``{label: run_demo_diagnostics(...) records}``).

    Left, on a log axis: the gradient norm (solid) and |printed loss| (dashed) per step;
    below the dotted line at 5e-5 the demo's ``{loss:.4f}`` prints ±0.0000. Right: the
    parameter update in units of the learning rate (mean over the parameters that moved).
    """
    if not runs:
        raise ValueError("runs must hold at least one label -> records entry")
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    for (label, records), color in zip(runs.items(), RUN_COLORS, strict=False):
        steps = [r.step for r in records]
        left.semilogy(steps, [r.grad_norm for r in records], "o-", color=color,
                      label=f"{label}: gradient norm")
        left.semilogy(steps, _positive_or_nan([r.loss for r in records]), "s--", color=color,
                      alpha=0.7, label=f"{label}: |printed loss|")
        right.plot(steps, [r.update_mean for r in records], "o-", color=color, label=label)
    left.axhline(5e-5, color="gray", lw=0.8, ls=":")  # {:.4f} rounds |x| < 5e-5 to 0.0000
    left.text(0, 7e-5, "below this line the demo prints ±0.0000", va="bottom", fontsize=8,
              color="gray")
    left.set_xlabel("step")
    left.set_title("loss value vs gradient norm", fontsize=10)
    left.legend(fontsize=7, loc="center right")
    right.axhline(1.0, color="black", lw=0.8, ls=":")
    right.set_ylim(0, 1.2)
    right.set_xlabel("step")
    right.set_title("mean |Δθ| / lr over the parameters that moved (Adam)", fontsize=10)
    right.legend(fontsize=8, loc="lower left")
    return fig


def plot_off_zero_cases(labels: Sequence[str], values: Sequence[float],
                        title: str = "the loss value, case by case") -> Figure:
    """Horizontal bars: the loss value of each case (label -> value).

    The x-axis is symmetric-log (linear within +-1e-3, logarithmic outside), so values of
    different orders of magnitude all show; each bar carries its value.
    """
    if len(labels) != len(values):
        raise ValueError(f"labels and values must have the same length, got {len(labels)} "
                         f"and {len(values)}")
    fig = Figure(figsize=(8, 0.45 * len(labels) + 1.0), layout="constrained")
    ax = fig.subplots()
    positions = list(range(len(labels)))[::-1]
    colors = [LOSS_COLOR if abs(v) >= 5e-5 else "gray" for v in values]  # 0.0000 below
    ax.barh(positions, values, color=colors)
    for y, v in zip(positions, values, strict=True):
        ax.text(v, y, f" {v:+.4f} " if abs(v) >= 5e-5 else " 0.0000 ", va="center",
                ha="left" if v >= 0 else "right", fontsize=8)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xscale("symlog", linthresh=1e-3)
    span = max([abs(v) for v in values] + [1e-2])
    ax.set_xlim(-8 * span, 8 * span)  # room for the value labels on the log scale
    ax.set_xlabel("loss value (symmetric log scale: linear within ±0.001)")
    ax.set_title(title, fontsize=10)
    return fig


class EpochCurvesFigure(LiveFigure):
    """Loss (and its policy and KL parts) and gradient norm per inner epoch.

    Created once; ``update(result, epochs)`` moves the artists in place. ``result`` is
    ``ZeroLossLab.run(...)``'s dict of per-epoch lists; only the first ``epochs`` are shown.
    """

    def __init__(self, max_epochs: int = 8, dpi: float = 72):
        self.max_epochs = max_epochs
        # a fixed layout: a layout engine would re-run on every redraw of the panel;
        # the panel keeps the low dpi (fewer pixels per redraw), a static copy can ask for more
        super().__init__(figsize=(9, 3.2), dpi=dpi)
        self.figure.subplots_adjust(left=0.08, right=0.98, bottom=0.15, top=0.9, wspace=0.25)
        self.ax_loss, self.ax_grad = self.figure.subplots(1, 2)
        ax = self.ax_loss
        (self.loss_line,) = ax.plot([], [], "o-", color=LOSS_COLOR, label="loss value")
        (self.policy_line,) = ax.plot([], [], "--", color="#ff7f0e", label="policy term")
        (self.kl_line,) = ax.plot([], [], ":", color=KL_COLOR, lw=2, label="beta x KL term")
        self.zero_line = ax.axhline(0, color="black", lw=0.8)
        ax.set_xlim(0.5, max_epochs + 0.5)
        ax.set_xlabel("inner epoch on the same batch")
        ax.set_title("loss value", fontsize=10)
        self.legend = ax.legend(fontsize=8, loc="lower left")
        (self.grad_line,) = self.ax_grad.plot([], [], "o-", color=GRAD_COLOR)
        self.ax_grad.set_xlim(0.5, max_epochs + 0.5)
        self.ax_grad.set_xlabel("inner epoch on the same batch")
        self.ax_grad.set_title("gradient norm", fontsize=10)
        for axis in (self.ax_loss.yaxis, self.ax_grad.yaxis):
            axis.set_major_locator(MaxNLocator(5))  # the ticks ``follow`` snaps to
        self.first_text = ax.text(0.98, 0.95, "", transform=ax.transAxes, ha="right",
                                  va="top", fontsize=8)
        # what ``update`` changes: the curves, and the y-axes, whose limits follow the data
        # in round steps (``follow``: their drawn ticks are kept per set of limits, so a
        # move that changes them needs no new background), with the zero line on the loss
        # axis; the titles and legend stay static, and so does the text (its string
        # changes only with the first epoch's printed loss: set_static_text)
        self.moving = [self.loss_line, self.policy_line, self.kl_line, self.grad_line,
                       self.ax_loss.yaxis, self.ax_grad.yaxis, self.zero_line]
        self.on_top = [self.legend]  # static, but drawn over the curves

    def update(self, result: dict, epochs: int | None = None) -> "EpochCurvesFigure":
        shown = len(result["loss"]) if epochs is None else epochs
        if not 1 <= shown <= len(result["loss"]):
            raise ValueError(f"epochs must lie in [1, {len(result['loss'])}], got {epochs}")
        x = list(range(1, shown + 1))
        loss = result["loss"][:shown]
        self.loss_line.set_data(x, loss)
        self.policy_line.set_data(x, result["policy_term"][:shown])
        self.kl_line.set_data(x, result["kl_term"][:shown])
        self.grad_line.set_data(x, result["grad_norm"][:shown])
        low = min(loss + result["policy_term"][:shown] + result["kl_term"][:shown] + [0.0])
        high = max(loss + result["policy_term"][:shown] + result["kl_term"][:shown] + [0.0])
        pad = max(0.05 * (high - low), 0.005)
        self.follow(self.ax_loss, "y", low - pad, high + pad)
        top = max(result["grad_norm"][:shown])
        self.follow(self.ax_grad, "y", 0.0, 1.05 * top if top > 0 else 1.0)
        first = result["loss"][0]
        shown_first = "0.0000" if abs(first) < 5e-5 else f"{first:+.4f}"
        self.set_static_text(self.first_text, f"epoch 1 prints {shown_first}")
        return self
