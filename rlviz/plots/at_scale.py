"""Notebook 08's figures: the weight of a token when the batch is split into micro-batches.

Input: dicts from ``rlviz.experiments.at_scale.weights_data`` (per-token weights of 8
responses with the global and the naive normaliser, their ratio, the micro-batch of each).
``MicroWeightsFigure`` is the panel's ``LiveFigure`` (``rlviz.plots.live``).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .live import Bars, LiveFigure

MICRO_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
                 "tab:pink", "tab:olive")
FACTOR_LIMITS = (0.05, 20.0)
WEIGHT_LIMITS = (0.5, 100.0)  # units of 1 / (B max_len): every setting of the panel fits
GLOBAL_MARKS = dict(linestyle="none", marker="_", markersize=22, markeredgewidth=2.5,
                    color="black")  # the global weights: a black dash per response


def _colours(data) -> list[str]:
    return [MICRO_COLOURS[k % len(MICRO_COLOURS)] for k in data["micro_of"]]


def _tick_labels(data) -> list[str]:
    return [f"{i + 1}\nL={n}" for i, n in enumerate(data["lengths"])]


def _weight_bars(ax, data):
    """Naive weights as bars coloured by micro-batch, global weights as black dashes."""
    x = np.arange(len(data["lengths"]))
    bars = ax.bar(x, data["naive"], color=_colours(data), width=0.7)
    (marks,) = ax.plot(x, data["global"], **GLOBAL_MARKS)
    ax.set_xticks(x, _tick_labels(data), fontsize=7)
    return bars, marks


def _legend_handles(n_micro: int) -> list:
    handles = [Line2D([], [], linestyle="none", marker="_", markersize=14, markeredgewidth=2.5,
                      color="black", label="one batch (= global normaliser)")]
    handles += [Patch(color=MICRO_COLOURS[k], label=f"naive: micro-batch {k + 1}")
                for k in range(n_micro)]
    return handles


def plot_weights_by_mode(data_by_mode: dict) -> Figure:
    """The key picture: for each aggregation mode, the per-token weight of 8 responses of
    unequal lengths: one batch (black dashes, identical to the global normaliser) against
    the naive normaliser over micro-batches (bars, one colour per micro-batch)."""
    fig = Figure(figsize=(11, 5.6), dpi=80, layout="constrained")
    axes = fig.subplots(2, 2).flatten()
    any_data = next(iter(data_by_mode.values()))
    for ax, (mode, data) in zip(axes, data_by_mode.items()):
        _weight_bars(ax, data)
        ax.set_title(f"{mode}: naive factor {data['smallest factor']:.2f} .. "
                     f"{data['largest factor']:.2f}", fontsize=10)
        ax.set_ylabel("weight per token\n(units of 1 / (B max_len))", fontsize=8)
        ax.set_ylim(0, 1.12 * max(max(data["naive"]), max(data["global"]), 1e-12))
    fig.legend(handles=_legend_handles(any_data["n_micro"]), loc="outside lower center",
               ncol=any_data["n_micro"] + 1, fontsize=8, frameon=False)
    fig.suptitle(f"{len(any_data['lengths'])} responses in {any_data['n_micro']} micro-batches "
                 "(x: response and its length)", fontsize=10)
    return fig


class MicroWeightsFigure(LiveFigure):
    """One mode: the response lengths, the per-token weights (naive bars, global dashes) and
    the naive factor naive / global per response (log scales). ``update(data)`` with a
    ``weights_data`` dict of the same number of responses."""

    def __init__(self, data: dict):
        super().__init__(figsize=(11, 3.4), dpi=80, layout="constrained")
        ax_len, ax_w, ax_f = self.figure.subplots(1, 3, width_ratios=[0.8, 1.2, 1])
        x = np.arange(len(data["lengths"]))
        colours = _colours(data)
        # each bar group is one collection (``Bars``): cheaper to redraw than 8 Rectangles
        self.length_bars = Bars(ax_len, x, 0.7, colours)
        ax_len.set_ylim(0, 34)
        ax_len.set_xticks(x, [str(i + 1) for i in x])
        ax_len.set_xlabel("response", fontsize=8)
        ax_len.set_title("response length L_i", fontsize=10)
        self.weight_bars = Bars(ax_w, x, 0.7, colours, bottom=WEIGHT_LIMITS[0] / 10)
        (self.marks,) = ax_w.plot(x, data["global"], **GLOBAL_MARKS)
        ax_w.set_xticks(x, [str(i + 1) for i in x], fontsize=10)
        ax_w.set_xlabel("response", fontsize=8)
        ax_w.set_yscale("log")  # fixed limits: the axis is drawn once, not on every move
        ax_w.set_ylim(*WEIGHT_LIMITS)
        ax_w.set_title("weight per token (x 1 / (B max_len))", fontsize=10)
        self.mode_text = ax_w.text(0.98, 0.97, "", transform=ax_w.transAxes, ha="right",
                                   va="top", fontsize=9,
                                   bbox=dict(facecolor="white", edgecolor="none", pad=1))
        self.factor_bars = Bars(ax_f, x, 0.7, colours, bottom=FACTOR_LIMITS[0] / 10)
        ax_f.set_yscale("log")
        ax_f.set_ylim(*FACTOR_LIMITS)
        ax_f.axhline(1.0, color="black", lw=0.8)
        ax_f.set_xticks(x, [str(i + 1) for i in x])
        ax_f.set_xlabel("response", fontsize=8)
        ax_f.set_title("naive / global weight (f_k)", fontsize=10)
        self.figure.legend(handles=_legend_handles(len(MICRO_COLOURS)),
                           loc="outside right center", fontsize=7, frameon=False)
        self.moving = [self.length_bars.artist, self.weight_bars.artist, self.marks,
                       self.factor_bars.artist]
        self.update(data)

    def update(self, data: dict) -> "MicroWeightsFigure":
        colours = _colours(data)
        # an empty response has no tokens, hence no factor: its bar drops below the log axis
        factors = [f if n > 0 else FACTOR_LIMITS[0] / 10 for f, n in zip(data["factor"],
                                                                          data["lengths"])]
        # an empty response's naive weight is 0: below the log axis, like its factor
        naive = [w if n > 0 else WEIGHT_LIMITS[0] / 10 for w, n in zip(data["naive"],
                                                                      data["lengths"])]
        for bars, values in ((self.length_bars, data["lengths"]), (self.weight_bars, naive),
                             (self.factor_bars, factors)):
            bars.set_heights(values, colours)
        self.marks.set_ydata(data["global"])
        self.mode_text.set_text(f"{data['mode']}, {data['n_micro']} micro-batches")
        return self

    def enable_blit(self) -> None:
        """In a panel, the controls above the figure name the mode and the number of
        micro-batches: the text naming them goes (redrawn, a text costs ~5 ms a move;
        kept in the background, each new string would cost a full draw)."""
        self.mode_text.set_visible(False)
        super().enable_blit()


def plot_micro_weights(data: dict) -> Figure:
    """``MicroWeightsFigure`` drawn once, for a static figure."""
    return MicroWeightsFigure(data).figure
