"""Figures of notebook 06: training curves of the toy task, one line per algorithm.

Data in (``{label: metrics}``, where ``metrics`` is ``TrainResult.metrics``: a list of
one dict per step), ``matplotlib.figure.Figure`` out (no pyplot state).
``TrainingCurvesFigure`` is a ``LiveFigure`` (``rlviz.plots.live``): the Run-button panel
updates it in place.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .live import LiveFigure

__all__ = ["TrainingCurvesFigure", "metric_series", "plot_greedy_vs_sampled",
           "plot_training_curves"]

RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")

TITLES = {
    "reward": "mean reward of the sampled batch",
    "greedy_reward": "greedy reward, fresh prompts",
    "response_length": "response length (tokens, EOS included)",
    "loss": "loss value (what a trainer prints)",
    "policy_loss": "policy (surrogate) term of the loss",
    "policy_loss_first": "policy term, first minibatch (rho = 1)",
    "clipfrac": "clip fraction",
    "approx_kl": "approx KL(old || new)",
    "kl_ref": "KL(policy || reference), k3",
    "entropy": "entropy per token (nats)",
    "grad_norm": "gradient norm (before clipping)",
    "value_loss": "value loss",
}


def metric_series(rows: Sequence[Mapping], name: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of one metric, skipping steps where it is NaN (not measured)."""
    if rows and name not in rows[0]:
        raise ValueError(f"Unknown metric: {name!r}. Known metrics: {', '.join(rows[0])}")
    pairs = [(row["step"], row[name]) for row in rows if not math.isnan(row[name])]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _check_runs(runs: Mapping) -> None:
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs must be a non-empty mapping label -> list of metric rows")


def plot_training_curves(runs: Mapping[str, Sequence[Mapping]],
                         metrics: Sequence[str] = ("reward", "loss"),
                         threshold: float | None = None, ncols: int | None = None,
                         width: float = 4.2, height: float = 3.0) -> Figure:
    """One subplot per metric, one line per run (``{label: metrics rows}``).

    ``threshold`` draws a dotted line on the reward axes (e.g. 0.9).
    """
    _check_runs(runs)
    ncols = min(len(metrics), 3) if ncols is None else ncols
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, metrics):
        for (label, rows), color in zip(runs.items(), RUN_COLORS * 3):
            steps, values = metric_series(rows, name)
            ax.plot(steps, values, "-", color=color, lw=1.6, label=label,
                    marker="o" if len(steps) < 0.5 * len(rows) else None, ms=3)
        if name in ("loss", "policy_loss", "policy_loss_first"):
            ax.axhline(0, color="black", lw=0.8)
        if threshold is not None and "reward" in name:
            ax.axhline(threshold, color="gray", lw=0.8, ls=":")
        ax.set_title(TITLES.get(name, name), fontsize=10)
        ax.set_xlabel("step")
        ax.yaxis.set_major_locator(MaxNLocator(5))
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8, loc="best")
    return fig


def plot_greedy_vs_sampled(runs: Mapping[str, Sequence[Mapping]]) -> Figure:
    """Per run: the sampled batch's reward (line) and greedy decoding's reward on fresh
    prompts (markers), on one axis."""
    _check_runs(runs)
    fig = Figure(figsize=(6.5, 3.4), layout="constrained")
    ax = fig.subplots()
    for (label, rows), color in zip(runs.items(), RUN_COLORS * 3):
        steps, values = metric_series(rows, "reward")
        ax.plot(steps, values, "-", color=color, lw=1.4, label=f"{label}: sampled (T = 1)")
        steps, values = metric_series(rows, "greedy_reward")
        ax.plot(steps, values, "o--", color=color, ms=5, lw=0.8,
                label=f"{label}: greedy, fresh prompts")
    ax.set_xlabel("step")
    ax.set_ylabel("mean reward")
    ax.set_ylim(0, 1.05)
    ax.set_title("reward of sampled vs greedy responses", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


class TrainingCurvesFigure(LiveFigure):
    """Reward, response length and entropy per step for the latest run, with the run
    before it in grey for comparison. Created once; ``update(rows, previous)`` moves the
    artists in place (the Run-button panel of notebook 06)."""

    METRICS = ("reward", "response_length", "entropy")

    def __init__(self):
        # a fixed layout: a layout engine would re-run on every redraw of the panel
        super().__init__(figsize=(10, 2.9), dpi=72)
        self.figure.subplots_adjust(left=0.06, right=0.99, bottom=0.17, top=0.88, wspace=0.25)
        self.axes = self.figure.subplots(1, len(self.METRICS))
        self.lines, self.previous_lines = {}, {}
        for ax, name in zip(self.axes, self.METRICS):
            (self.previous_lines[name],) = ax.plot([], [], "-", color="#bbbbbb", lw=1.4,
                                                   label="previous run")
            (self.lines[name],) = ax.plot([], [], "-", color=RUN_COLORS[0], lw=1.8,
                                          label="this run")
            ax.set_title(TITLES[name], fontsize=10)
            ax.set_xlabel("step")
            ax.yaxis.set_major_locator(MaxNLocator(5))
        self.axes[0].axhline(0.9, color="gray", lw=0.8, ls=":")
        self.axes[0].set_ylim(0, 1.0)
        self.axes[0].legend(fontsize=8, loc="upper left")

    def update(self, rows: Sequence[Mapping], previous: Sequence[Mapping] | None = None,
               label: str = "this run",
               previous_label: str = "previous run") -> "TrainingCurvesFigure":
        for ax, name in zip(self.axes, self.METRICS):
            self.lines[name].set_data(*metric_series(rows, name))
            self.previous_lines[name].set_data(*(metric_series(previous, name) if previous
                                                 else ([], [])))
            shown = [v for line in (self.lines[name], self.previous_lines[name])
                     for v in line.get_ydata()]
            steps = [s for line in (self.lines[name], self.previous_lines[name])
                     for s in line.get_xdata()]
            ax.set_xlim(-0.5, max(steps + [1]) + 0.5)
            if name != "reward" and shown:
                low, high = min(shown), max(shown)
                pad = max(0.08 * (high - low), 0.05)
                ax.set_ylim(min(0.0, low - pad), high + pad)
        self.lines["reward"].set_label(label)
        self.previous_lines["reward"].set_label(previous_label)
        self.axes[0].legend(fontsize=8, loc="upper left")
        return self
