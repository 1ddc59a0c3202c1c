"""Figures of notebook 03: the clipped surrogate, clipping on a real batch, GSPO's ratio.

Data in (from ``rlviz.experiments.clipping``), ``matplotlib.figure.Figure`` out, no pyplot.
``SurrogateFigure`` and ``ClippingRunFigure`` are ``LiveFigure``s (``rlviz.plots.live``):
created once, updated in place by the panels.
"""

from __future__ import annotations

import math

from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .live import LiveFigure, nice_limits

__all__ = [
    "ClippingRunFigure",
    "SurrogateFigure",
    "plot_surrogate_cases",
    "plot_token_vs_sequence",
]

FLAT_COLOR = "#bbbbbb"
POS_COLOR = "#1f77b4"
NEG_COLOR = "#d62728"
MAX_FLAT_REGIONS = 3  # with dual clip, A < 0 has two flat regions; one spare


class _SurrogateAxes:
    """Artists of one advantage's curves on an objective axis and a gradient axis."""

    def __init__(self, ax_objective, ax_grad, rho_max: float, y_span: float):
        self.axes = (ax_objective, ax_grad)
        self.rho_max = rho_max
        self.y_span = y_span
        (self.unclipped,) = ax_objective.plot([], [], "--", color="gray", lw=1,
                                              label="unclipped  ρA")
        (self.objective,) = ax_objective.plot([], [], color=POS_COLOR, lw=2.2,
                                              label="clipped objective  -ℓ")
        (self.grad,) = ax_grad.plot([], [], color=POS_COLOR, lw=2.2)
        self.spans = []
        self.bounds = []
        self.zero_lines = []
        for ax in self.axes:
            self.zero_lines.append(ax.axhline(0, color="black", lw=0.6))
            ax.set_xlim(0, rho_max)
            # few ticks: text layout is most of the cost of a redraw
            ax.xaxis.set_major_locator(MaxNLocator(4))
            ax.yaxis.set_major_locator(MaxNLocator(5))
            ax.set_xlabel("ρ = π_θ / π_old")
            spans = [ax.axvspan(0, 0, color=FLAT_COLOR, alpha=0.5, lw=0, visible=False)
                     for _ in range(MAX_FLAT_REGIONS)]
            self.spans.append(spans)
            self.bounds.append([ax.axvline(1, color="black", lw=0.8, ls=":") for _ in range(3)])
        self.legend = ax_objective.legend(fontsize=8, loc="upper left")
        self.label = ax_grad.text(0.98, 0.04, "grey: gradient exactly 0",
                                  transform=ax_grad.transAxes, ha="right", va="bottom",
                                  fontsize=8, color="dimgray")
        # what ``update`` changes: the curves, flat regions and bounds; the label does not
        # change but is drawn over the grey regions. The y-limits follow |A| in round
        # steps (``nice_limits``: a new background only when they change), so the axes,
        # zero lines, titles and legend stay static
        self.moving = [self.unclipped, self.objective, self.grad, self.spans, self.bounds,
                       self.label]

    def update(self, curves: dict, advantage: float, eps_low: float, eps_high: float,
               dual_clip: float | None) -> bool:
        """Move the artists; True if a static artist (the legend) changed too."""
        color = POS_COLOR if advantage >= 0 else NEG_COLOR
        rho = curves["rho"]
        self.unclipped.set_data(rho, curves["unclipped"])
        self.objective.set_data(rho, curves["objective"])
        self.objective.set_color(color)
        handle = self.legend.legend_handles[1]  # the legend's line follows the curve
        legend_changed = handle.get_color() != color
        handle.set_color(color)
        self.grad.set_data(rho, curves["grad"])
        self.grad.set_color(color)
        for spans in self.spans:
            for span, interval in zip(spans, curves["flat"] + [None] * MAX_FLAT_REGIONS,
                                      strict=False):
                if interval is None:
                    span.set_visible(False)
                    continue
                low, high = interval
                span.set_x(low)
                span.set_width(high - low)
                span.set_visible(True)
        positions = [1 - eps_low, 1 + eps_high, dual_clip]
        for lines in self.bounds:
            for line, x in zip(lines, positions, strict=True):
                line.set_visible(x is not None)
                if x is not None:
                    line.set_xdata([x, x])
        size = max(abs(advantage), 1e-3)
        top = self.y_span * size
        limits = nice_limits(-top, top)  # round, and symmetric: ticks are multiples of a step
        self.axes[0].set_ylim(*limits)
        self.axes[1].set_ylim(*limits)
        # the label goes where the gradient curve is not: for A < 0 the curve runs down
        # to the lower right, for A > 0 it is flat at 0 there
        self.label.set_y(0.96 if advantage < 0 else 0.04)
        self.label.set_verticalalignment("top" if advantage < 0 else "bottom")
        return legend_changed


class SurrogateFigure(LiveFigure):
    """One token's clipped objective (left) and its gradient w.r.t. log π (right) vs ρ.

    ``update(curves, advantage, eps_low, eps_high, dual_clip)`` with ``curves`` from
    ``surrogate_curves`` moves the lines, the shaded flat regions and the clip bounds. The
    objective's title shows its formula (with the dual-clip cap when it applies); a static
    figure (not blitting) also names A, c and the clip range there. In a panel the sliders
    show those values, and the titles stay out of the redrawn artists: a title changes
    only when the formula does (dual clip or the sign of A toggled), then the background
    is redrawn once.
    """

    def __init__(self, rho_max: float = 3.0, dpi: int = 72):
        super().__init__(figsize=(9, 3.2), dpi=dpi)
        self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.16, top=0.9, wspace=0.2)
        ax_objective, ax_grad = self.figure.subplots(1, 2)
        self.titles = (ax_objective.set_title("", fontsize=10),
                       ax_grad.set_title("", fontsize=10))
        self._axes = _SurrogateAxes(ax_objective, ax_grad, rho_max, y_span=rho_max + 0.5)
        self.moving = self._axes.moving
        self.on_top = [self._axes.legend]  # static, but drawn over the curves

    def update(self, curves: dict, advantage: float, eps_low: float, eps_high: float,
               dual_clip: float | None = None) -> "SurrogateFigure":
        if self._axes.update(curves, advantage, eps_low, eps_high, dual_clip):
            self.invalidate()  # the legend is static
        capped = dual_clip is not None and advantage < 0
        objective = "max(min(ρA, clip(ρ)A), cA)" if capped else "min(ρA, clip(ρ)A)"
        gradient = "gradient d/d log π: ρA or 0"
        if self.blitting:  # a panel: the sliders show the values
            titles = (f"objective {objective}", gradient)
        else:
            titles = (f"A = {advantage:+g}: objective {objective}"
                      + (f", c = {dual_clip:g}" if capped else ""),
                      f"{gradient} (clip range {1 - eps_low:.2f}..{1 + eps_high:.2f})")
        for title, text in zip(self.titles, titles, strict=True):
            self.set_static_text(title, text)
        return self


def plot_surrogate_cases(cases: dict, eps_low: float, eps_high: float,
                         dual_clip: float | None = None, rho_max: float = 3.0) -> Figure:
    """A > 0 and A < 0 side by side: ``cases`` maps a title to ``(advantage, curves)``.
    Top row: the objective; bottom row: its gradient w.r.t. log π; grey: flat regions."""
    fig = Figure(figsize=(10, 5.2), layout="constrained")
    axes = fig.subplots(2, len(cases), squeeze=False)
    for column, (title, (advantage, curves)) in enumerate(cases.items()):
        drawing = _SurrogateAxes(axes[0][column], axes[1][column], rho_max, y_span=rho_max + 0.5)
        drawing.update(curves, advantage, eps_low, eps_high, dual_clip)
        axes[0][column].set_title(f"{title}: objective", fontsize=10)
        axes[1][column].set_title(f"{title}: d objective / d log π", fontsize=10)
    return fig


# token states in the token map of ClippingRunFigure
TOKEN_STATES = ("gets a gradient", "clipped: A > 0, ρ > 1+ε_high", "clipped: A < 0, ρ < 1-ε_low",
                "dual clip: A < 0, ρ > c")
_TOKEN_COLORS = ListedColormap(["#f2f2f2", POS_COLOR, NEG_COLOR, "#9467bd"])


class ClippingRunFigure(LiveFigure):
    """Several inner epochs on one batch: clipfrac per epoch, the distribution of ρ at the
    last epoch (by the sign of A, clip range shaded), and the map of which response tokens
    got no gradient at the last epoch.

    ``update(clipfracs, ratios, positive, states, eps_low, eps_high)``: ``clipfracs`` one
    per epoch; ``ratios`` the last epoch's ρ of the response tokens and ``positive``
    whether each one's A > 0 (lists); ``states`` the (B, R) token map as nested lists of
    0..3 (see ``TOKEN_STATES``); all from ``ClippingExperiment.summary``.
    """

    BINS_PER_OCTAVE = 8  # histogram bins per doubling of ρ

    def __init__(self, max_epochs: int = 10, batch: int = 32, response_len: int = 16,
                 dpi: int = 72, log2_range: float = 3.0):
        """``log2_range``: the histogram covers log2(ρ) in [-log2_range, log2_range]
        (default ρ in [1/8, 8], for the panel's large learning rates); ratios outside
        fall into the end bins."""
        self.max_epochs = max_epochs
        self.log2_range = log2_range
        self.bins = max(1, round(2 * log2_range * self.BINS_PER_OCTAVE))
        super().__init__(figsize=(11, 3.7), dpi=dpi)
        self.figure.subplots_adjust(left=0.06, right=0.99, bottom=0.24, top=0.9, wspace=0.3)
        self.ax_frac, self.ax_hist, self.ax_map = self.figure.subplots(
            1, 3, gridspec_kw={"width_ratios": [1, 1.2, 1]})
        (self.frac_line,) = self.ax_frac.plot([], [], "o-", color="black")
        self.ax_frac.set_xlim(0.5, max_epochs + 0.5)
        self.ax_frac.set_ylim(0, 1)
        self.ax_frac.set_xlabel("inner epoch")
        self.ax_frac.set_title("clipfrac (tokens with no gradient)", fontsize=10)

        step = 2 * log2_range / self.bins
        self.edges = [2 ** (-log2_range + i * step) for i in range(self.bins + 1)]
        zeros = [0] * self.bins
        self.band = self.ax_hist.axvspan(0.8, 1.2, color=FLAT_COLOR, alpha=0.4, lw=0)
        self.hist_pos = self.ax_hist.stairs(zeros, self.edges, color=POS_COLOR, lw=1.8,
                                            label="tokens with A > 0")
        self.hist_neg = self.ax_hist.stairs(zeros, self.edges, color=NEG_COLOR, lw=1.8,
                                            label="tokens with A < 0")
        self.ax_hist.set_xscale("log", base=2)
        self.ax_hist.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        self.ax_hist.set_xlim(self.edges[0], self.edges[-1])
        self.ax_hist.set_xlabel("ρ at the last epoch (grey: clip range)")
        self.ax_hist.legend(fontsize=7, loc="upper left")
        self.hist_title = self.ax_hist.set_title("", fontsize=10)

        self.image = self.ax_map.imshow([[0] * response_len] * batch, cmap=_TOKEN_COLORS,
                                        vmin=-0.5, vmax=3.5, aspect="auto",
                                        interpolation="nearest")
        self.ax_map.set_xlabel("response token")
        self.ax_map.set_ylabel("response (row)")
        key = [Patch(facecolor=color, edgecolor="#999999", lw=0.5, label=label)
               for color, label in zip(_TOKEN_COLORS.colors, TOKEN_STATES, strict=True)]
        self.figure.legend(handles=key, fontsize=8, ncol=4, loc="lower center",
                           title="token map:", title_fontsize=8, frameon=False,
                           alignment="left", bbox_to_anchor=(0.5, 0.0))
        self.map_title = self.ax_map.set_title("", fontsize=10)

    def update(self, clipfracs: list[float], ratios: list[float], positive: list[bool],
               states: list[list[int]], eps_low: float, eps_high: float) -> "ClippingRunFigure":
        epochs = list(range(1, len(clipfracs) + 1))
        self.frac_line.set_data(epochs, clipfracs)
        self.band.set_x(1 - eps_low)
        self.band.set_width(eps_low + eps_high)
        low, high = -self.log2_range, self.log2_range
        width = (high - low) / self.bins
        counts = {True: [0] * self.bins, False: [0] * self.bins}
        for rho, is_positive in zip(ratios, positive, strict=True):
            x = math.log2(max(rho, 1e-30))
            index = min(max(int((x - low) / width), 0), self.bins - 1)  # outliers: end bins
            counts[is_positive][index] += 1
        self.hist_pos.set_data(counts[True], self.edges)
        self.hist_neg.set_data(counts[False], self.edges)
        self.ax_hist.set_ylim(0, max(counts[True] + counts[False] + [1]) * 1.15)
        self.hist_title.set_text(f"ρ of {len(ratios)} response tokens, epoch {len(clipfracs)}")
        self.image.set_data(states)
        self.map_title.set_text(f"tokens with no gradient at epoch {len(clipfracs)}")
        return self


def plot_token_vs_sequence(result: dict, advantage: float,
                           eps_token: tuple[float, float] = (0.2, 0.2),
                           eps_sequence: tuple[float, float] = (3e-4, 4e-4)) -> Figure:
    """One response: its token ratios against its single GSPO sequence ratio (left), and
    each token's gradient of the objective, d objective / d log π (positive: pushed up),
    under token-level and sequence-level clipping (right); a gradient of exactly 0 is
    drawn as a marker on the zero line. ``result`` comes from ``token_vs_sequence``."""
    ratios = [float(r) for r in result["token_ratio"]]
    positions = list(range(len(ratios)))
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.axhspan(1 - eps_token[0], 1 + eps_token[1], color=FLAT_COLOR, alpha=0.4, lw=0,
                 label=f"token clip range 1-{eps_token[0]} .. 1+{eps_token[1]}")
    left.plot(positions, ratios, "o", color=POS_COLOR if advantage > 0 else NEG_COLOR,
              label="token ratios ρ_t")
    left.axhline(result["sequence_ratio"], color="black", lw=1.5,
                 label=f"sequence ratio s = {result['sequence_ratio']:.3f}")
    left.axhline(1.0, color="gray", lw=0.6, ls=":")
    left.set_xlabel("token of the response")
    left.set_title(f"one response, A = {advantage:+.2f}: token ratios vs GSPO's s", fontsize=10)
    left.legend(fontsize=7, loc="best")
    width = 0.4
    series = [
        ("token", -width / 2, "#7f7f7f", "x",
         f"token-level ratio, ε {eps_token[0]}/{eps_token[1]}"),
        ("sequence", width / 2, "black", "o",
         f"sequence-level ratio (GSPO), ε {eps_sequence[0]:g}/{eps_sequence[1]:g}"),
    ]
    stopped = {}
    for level, offset, color, marker, label in series:
        grad = [float(g) for g in result[f"{level}_grad"]]
        right.bar([p + offset for p in positions], grad, width, color=color, label=label)
        zeros = [p + offset for p, g in zip(positions, grad, strict=True) if g == 0]
        stopped[level] = (len(zeros), len(grad))
        if zeros:
            right.plot(zeros, [0.0] * len(zeros), marker, ls="none", ms=6, color=color,
                       mfc="none" if marker == "o" else color, clip_on=False, zorder=3,
                       label=f"{level} level: gradient exactly 0")
    right.axhline(0, color="black", lw=0.6)
    # for A > 0 the bars point up: the legend goes below the zero line, and vice versa
    low_side = advantage > 0
    bottom, top = right.get_ylim()
    if low_side:
        right.set_ylim(min(bottom, -1.0 * top), top)
    else:
        right.set_ylim(bottom, max(top, -1.0 * bottom))
    right.set_xlabel(f"token of the response\ngradient exactly 0: token level "
                     f"{stopped['token'][0]}/{stopped['token'][1]}, sequence level "
                     f"{stopped['sequence'][0]}/{stopped['sequence'][1]}")
    right.set_title("each token's gradient  d objective / d log π_t", fontsize=10)
    right.legend(fontsize=7, loc="lower left" if low_side else "upper left")
    return fig
