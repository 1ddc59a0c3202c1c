"""Figures of notebook 07: where rho != 1 comes from, and what the corrections do.

Data in (the cached grid of ``rlviz.experiments.off_policy.rho_sources_grid()``: per
source, one summary per knob setting), ``matplotlib.figure.Figure`` out. ``RhoSourceFigure``
is a ``LiveFigure``: the slider panel redraws only what moves.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .live import LiveFigure

SHARE_LINES = (  # key of the grid summary, label, colour
    ("clipfrac", "clipped by PPO (ε = 0.2)", "tab:red"),
    ("outside_token", "token weight outside [1/2, 2]", "tab:blue"),
    ("outside_sequence", "sequence weight outside [1/2, 2]", "tab:purple"),
)


def _edges(width: float, bins: int) -> np.ndarray:
    return np.linspace(-width, width, bins + 1)


def _shares(summary: Mapping) -> np.ndarray:
    counts = np.asarray(summary["hist"], dtype=float)
    return counts / max(summary["tokens"], 1)


def _guides(ax, eps: float, cap: float) -> None:
    """Dashed: PPO's clip range in log rho; dotted: [1/C, C]."""
    for x in (math.log(1 - eps), math.log(1 + eps)):
        ax.axvline(x, color="tab:red", ls="--", lw=0.9)
    for x in (-math.log(cap), math.log(cap)):
        ax.axvline(x, color="tab:blue", ls=":", lw=0.9)
    ax.axvline(0.0, color="0.6", lw=0.6)


FLOOR = 1e-4  # the log-scale histograms start here (an empty bin sits on the floor)


class RhoSourceFigure(LiveFigure):
    """Left: the share of tokens per log-rho bin for one (source, setting), log scale.
    Right: the shares of tokens clipped by PPO and outside [1/C, C] against the source's
    knob, with the current setting marked. ``update(grid, source, index)`` changes it in
    place; only the histogram and the marker move (a new source redraws the rest)."""

    def __init__(self, provenance: Mapping, dpi: int = 72):
        super().__init__(figsize=(9.0, 3.1), dpi=dpi)
        self.provenance = provenance
        fig = self.figure
        self.ax_hist = fig.add_axes((0.08, 0.17, 0.39, 0.68))
        self.ax_share = fig.add_axes((0.57, 0.17, 0.40, 0.68))
        width, bins = provenance["hist_range"], provenance["hist_bins"]
        self.edges = _edges(width, bins)
        self.stairs = self.ax_hist.stairs(np.full(bins, FLOOR), self.edges, fill=True,
                                          baseline=FLOOR, color="tab:gray", alpha=0.8)
        _guides(self.ax_hist, provenance["eps"], provenance["cap"])
        self.ax_hist.set_xlim(-width, width)
        self.ax_hist.set_yscale("log")
        self.ax_hist.set_ylim(FLOOR, 1.5)
        self.ax_hist.set_xlabel("log ρ   (dashed: clip range 1 ± ε; dotted: [1/C, C])",
                                fontsize=8)
        self.ax_hist.set_ylabel("share of tokens per bin", fontsize=8)
        self.lines = {}
        for key, label, color in SHARE_LINES:
            (self.lines[key],) = self.ax_share.plot([], [], "o-", color=color, ms=3, lw=1.2,
                                                    label=label)
        self.marker = self.ax_share.axvline(0, color="0.3", lw=1.0)
        self.ax_share.set_ylim(-0.02, 1.02)
        self.ax_share.set_xlim(-0.3, 5.3)
        self.ax_share.set_ylabel("share", fontsize=8)
        self.legend = self.ax_share.legend(fontsize=7, loc="upper left", frameon=True)
        self.ax_share.grid(alpha=0.3)
        for ax in (self.ax_hist, self.ax_share):
            ax.tick_params(labelsize=7)
        self.source = None
        self.moving = [self.stairs, self.marker]
        self.on_top = [self.legend]

    def update(self, grid: Mapping, source: str, index: int) -> RhoSourceFigure:
        summaries = grid[source]
        values = self.provenance["sources"][source]["values"]
        if source != self.source:  # new knob: new tick labels, title and curves
            self.source = source
            label = self.provenance["sources"][source]["label"]
            self.ax_share.set_xticks(range(len(values)), [f"{v:g}" for v in values])
            self.ax_share.set_xlabel(label, fontsize=8)
            # the engine's ratio is the IS weight omega = pi_old / pi_rollout, which is PPO's rho
            # at the first step only in verl's bypass mode
            quantity = "log ω (= log ρ in bypass mode)" if source == "engine" else "log ρ"
            self.ax_hist.set_title(f"{quantity} over the tokens the loss sees: {label}",
                                   fontsize=8)
            for key, line in self.lines.items():
                line.set_data(range(len(values)), [s[key] for s in summaries])
            self.invalidate()
        self.stairs.set_data(np.maximum(_shares(summaries[index]), FLOOR), self.edges)
        self.marker.set_xdata([index, index])
        return self


def plot_rho_growth(grid: Mapping, provenance: Mapping, source: str = "minibatches",
                    indices: Sequence[int] = (0, 2, 4, 5), dpi: int = 100) -> Figure:
    """The key picture: log-rho distributions of several settings of one source (left),
    and the clip fraction and the spread against the knob (right)."""
    summaries = grid[source]
    values = provenance["sources"][source]["values"]
    width = provenance["hist_range"]
    edges = _edges(width, provenance["hist_bins"])
    fig = Figure(figsize=(9.5, 3.3), dpi=dpi, layout="constrained")
    ax_hist, ax_share = fig.subplots(1, 2)
    colors = ("0.2", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:cyan")
    for color, i in zip(colors, indices):
        ax_hist.stairs(np.maximum(_shares(summaries[i]), FLOOR), edges, color=color, lw=1.4,
                       label=f"{values[i]:g}")
    _guides(ax_hist, provenance["eps"], provenance["cap"])
    ax_hist.set_yscale("log")
    ax_hist.set_ylim(FLOOR, 1.5)
    ax_hist.set_xlabel("log ρ over the tokens the loss sees")
    ax_hist.set_ylabel("share of tokens per bin")
    ax_hist.legend(title=provenance["sources"][source]["label"], fontsize=8, title_fontsize=8)
    x = np.arange(len(values))
    for key, label, color in SHARE_LINES[:1]:
        ax_share.plot(x, [s[key] for s in summaries], "o-", color=color, label=label)
    ax_share.set_ylabel("clip fraction", color="tab:red")
    ax_std = ax_share.twinx()
    ax_std.plot(x, [s["log_rho_std"] for s in summaries], "s--", color="0.3",
                label="std of log ρ")
    ax_std.set_ylabel("std of log ρ")
    ax_share.set_xticks(x, [f"{v:g}" for v in values])
    ax_share.set_xlabel(provenance["sources"][source]["label"])
    ax_share.grid(alpha=0.3)
    lines = ax_share.get_lines() + ax_std.get_lines()
    ax_share.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper left")
    return fig


def plot_sources_side_by_side(grid: Mapping, provenance: Mapping, key: str = "clipfrac",
                              dpi: int = 100) -> Figure:
    """One panel per source: ``key`` (and the sequence-level MIS drop share) against
    the knob."""
    fig = Figure(figsize=(11.0, 2.8), dpi=dpi, layout="constrained")
    axes = fig.subplots(1, len(grid), sharey=True)
    for ax, (source, summaries) in zip(axes, grid.items()):
        values = provenance["sources"][source]["values"]
        x = np.arange(len(values))
        for k, label, color in SHARE_LINES:
            ax.plot(x, [s[k] for s in summaries], "o-", color=color, ms=3, label=label)
        ax.set_xticks(x, [f"{v:g}" for v in values], fontsize=7)
        ax.set_xlabel(provenance["sources"][source]["label"], fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of tokens / sequences")
    axes[0].legend(fontsize=7, loc="upper left")
    return fig


def plot_kl_gradient_errors(rows: Sequence[Mapping], dpi: int = 100) -> Figure:
    """Relative error of each estimator's expected gradient against grad KL(theta||ref),
    when the tokens come from pi_old, against KL(pi_old || pi_theta)."""
    fig = Figure(figsize=(5.5, 3.0), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    x = [row["kl_old_theta"] for row in rows]
    for key, label, style in (("k3", "k3 (plain)", "o-"), ("k3_plus", "k3+ (verl)", "s-"),
                              ("k3_ratio", "ρ·k3 (TRL use_bias_correction_kl)", "^-")):
        ax.plot(x, [max(row[key], 1e-17) for row in rows], style, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("KL(π_old || π_θ): how far off-policy")
    ax.set_ylabel("relative error of E[grad]")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
