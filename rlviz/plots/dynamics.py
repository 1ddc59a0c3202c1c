"""Figures of multi-seed experiments: mean curves with 95% bands, and distributions of
steps to a threshold. Data in (numbers per config), ``Figure`` out (no pyplot state); the
numbers come from ``rlviz.experiments.dynamics`` (``curve_bands``, ``threshold_steps``).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .training import RUN_COLORS

__all__ = ["plot_mean_bands", "plot_threshold_distribution"]


def _color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


def plot_mean_bands(bands: Mapping[str, tuple], xlabel: str = "step", ylabel: str = "reward",
                    title: str | None = None, threshold: float | None = None, ax=None,
                    width: float = 6.0, height: float = 3.6) -> Figure:
    """One mean line and its shaded 95% band per config.

    bands: label -> ``(x, mean, low, high)``, four equal-length sequences.
    ``threshold`` draws a dotted horizontal line (e.g. 0.9); ``ax`` draws into an existing
    axes (its figure is returned)."""
    if not isinstance(bands, Mapping) or not bands:
        raise ValueError("bands must be a non-empty mapping label -> (x, mean, low, high)")
    if ax is None:
        fig = Figure(figsize=(width, height), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    for i, (label, (x, mean, low, high)) in enumerate(bands.items()):
        if not len(x) == len(mean) == len(low) == len(high):
            raise ValueError(f"bands[{label!r}]: x, mean, low, high differ in length")
        ax.plot(x, mean, color=_color(i), lw=1.6, label=label)
        ax.fill_between(x, low, high, color=_color(i), alpha=0.2, lw=0)
    if threshold is not None:
        ax.axhline(threshold, color="0.4", ls=":", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return fig


def plot_threshold_distribution(steps: Mapping[str, Sequence], budget: float,
                                xlabel: str = "steps to a 5-step mean reward of 0.9",
                                title: str | None = None, ax=None, width: float = 6.0,
                                height: float | None = None) -> Figure:
    """One row of dots per config: each seed's steps (or seconds) to the threshold, its
    median as a bar; runs that never reached it are drawn as crosses at ``budget`` and
    counted in the label.

    steps: label -> one value per seed (``None`` or NaN = not reached)."""
    if not isinstance(steps, Mapping) or not steps:
        raise ValueError("steps must be a non-empty mapping label -> values per seed")
    if ax is None:
        fig = Figure(figsize=(width, height or 0.45 * len(steps) + 1.2), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    labels = []
    offsets = np.linspace(-0.15, 0.15, 7)  # deterministic spread of the dots
    for row, (label, values) in enumerate(steps.items()):
        reached = [float(v) for v in values if v is not None and not math.isnan(float(v))]
        missed = len(values) - len(reached)
        y = row + offsets[np.arange(len(reached)) % len(offsets)]
        ax.scatter(reached, y, s=14, color=_color(row), alpha=0.8, zorder=3)
        if missed:
            ax.scatter([budget] * missed, row + offsets[np.arange(missed) % len(offsets)],
                       marker="x", s=20, color=_color(row), zorder=3)
        if reached and len(reached) >= len(values) / 2:
            median = float(np.median(reached + [math.inf] * missed))
            ax.plot([median, median], [row - 0.3, row + 0.3], color="k", lw=2, zorder=4)
        labels.append(f"{label}" + (f" ({missed} not reached)" if missed else ""))
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.axvline(budget, color="0.6", ls=":", lw=1)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig
