"""Figures of notebook 05: group advantages, the std and length biases, the demo's 1/G.

Data in, ``matplotlib.figure.Figure`` out. The figures the slider panels redraw are
``LiveFigure``s (``rlviz.plots.live``): ``AbsAdvantageFigure`` and ``TokenWeightsFigure``,
created once and updated in place; their axes limits, ticks and labels never change, so
only the curves, bars and image are redrawn. ``plot_*`` draws one once.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .live import Bars, LiveFigure

SCALE_COLORS = {"group": "tab:blue", "none": "tab:orange", "batch": "tab:green"}
SCALE_LABELS = {"group": "/ group std (GRPO)", "none": "no std (Dr. GRPO)",
                "batch": "/ batch std"}
MODE_COLORS = {
    "seq-mean-token-mean": "tab:blue",
    "token-mean": "tab:orange",
    "seq-mean-token-sum": "tab:green",
    "seq-mean-token-sum-norm": "tab:red",
}
MODE_SHORT = {
    "seq-mean-token-mean": "seq-mean-\ntoken-mean",
    "token-mean": "token-mean",
    "seq-mean-token-sum": "seq-mean-\ntoken-sum",
    "seq-mean-token-sum-norm": "seq-mean-\ntoken-sum-norm",
}


def _relative(values, reference):
    values = np.asarray(values, dtype=float)
    return values / reference if reference > 0 else np.zeros_like(values)


# ---------------------------------------------------------------------------------------
# key picture
# ---------------------------------------------------------------------------------------
def plot_overview(p_grid, expected_by_scale: dict, response_labels, per_token_by_mode: dict,
                  group_size: int) -> Figure:
    """The two biases side by side.

    Left: E[sum_i |A_i|] of a prompt with success rate p, relative to a p = 0.5 prompt, with
    and without the std (``expected_by_scale``: scale -> values on ``p_grid``).
    Right: the weight per token of each response (``per_token_by_mode``: mode -> list), each
    mode scaled so its largest |weight| is 1.
    """
    fig = Figure(figsize=(10, 3.4), dpi=90, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.3])
    p_grid = np.asarray(p_grid, dtype=float)
    middle = int(np.argmin(np.abs(p_grid - 0.5)))
    for scale, values in expected_by_scale.items():
        left.plot(p_grid, _relative(values, values[middle]), color=SCALE_COLORS[scale],
                  lw=2, label=SCALE_LABELS[scale])
    left.set_xlabel("success rate p of the prompt")
    left.set_ylabel("E[sum_i |A_i|]  /  value at p = 0.5")
    left.set_title(f"Std bias: hard and easy prompts (G = {group_size})", fontsize=10)
    left.legend(fontsize=8, loc="lower center")
    left.set_ylim(0, 1.1)

    _grouped_bars(right, response_labels, per_token_by_mode, normalise=True)
    right.set_title("Length bias: weight per token, each mode scaled to max 1", fontsize=10)
    right.set_ylabel("per-token weight (signed)")
    fig.legend(*right.get_legend_handles_labels(), loc="outside lower right", ncol=4,
               fontsize=8, frameon=False)
    return fig


def _grouped_bars(ax, labels, values_by_mode: dict, normalise: bool):
    """Bars: one cluster per response, one bar per mode. Returns {mode: BarContainer}."""
    modes = list(values_by_mode)
    width, offsets = _bar_offsets(len(modes))
    x = np.arange(len(labels))
    bars = {}
    for mode, offset in zip(modes, offsets, strict=True):
        values = np.asarray(values_by_mode[mode], dtype=float)
        if normalise:
            values = _scaled(values)
        bars[mode] = ax.bar(x + offset, values, width, color=MODE_COLORS.get(mode), label=mode)
    _bar_frame(ax, labels)
    return bars


def _bar_offsets(n_modes: int) -> tuple[float, np.ndarray]:
    """Width of one bar and the (n_modes,) offsets of the bars from their cluster's centre."""
    width = 0.8 / n_modes
    return width, (np.arange(n_modes) - (n_modes - 1) / 2) * width


def _bar_frame(ax, labels) -> None:
    """Zero line, one tick per response, and y-limits for bars scaled to [-1, 1]."""
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=8)
    ax.set_ylim(-1.15, 1.15)


class GroupedBarCollection:
    """The bars of ``_grouped_bars`` (one per response and mode, each mode scaled to a
    largest |value| of 1) as one ``rlviz.plots.live.Bars`` collection whose heights
    ``set_values`` changes: a live figure redraws one artist instead of G x modes
    ``Rectangle`` patches."""

    def __init__(self, ax, labels, modes):
        self.modes = list(modes)
        width, offsets = _bar_offsets(len(self.modes))
        centres = np.arange(len(labels))[None, :] + offsets[:, None]  # (M, G)
        colors = [MODE_COLORS.get(mode) for mode in self.modes for _ in labels]
        self.bars = Bars(ax, centres.ravel(), width, colors)  # mode by mode
        self.collection = self.bars.artist
        _bar_frame(ax, labels)

    def set_values(self, values_by_mode: dict) -> None:
        """New heights: mode -> G values, each mode scaled so its largest |value| is 1."""
        self.bars.set_heights(np.concatenate([_scaled(values_by_mode[mode])
                                              for mode in self.modes]))


def _scaled(values):
    values = np.asarray(values, dtype=float)
    peak = np.abs(values).max() if values.size else 0.0
    return values / peak if peak > 0 else values * 0.0


# ---------------------------------------------------------------------------------------
# centring: per group against the whole batch
# ---------------------------------------------------------------------------------------
def plot_centring(cases: dict, group_size: int) -> Figure:
    """One axis per case (title -> ``rlviz.experiments.groups.advantage_steps`` output plus
    ``"rewards"``): per response, r - group mean against the demo's r - batch mean, with the
    responses whose sign differs marked."""
    fig = Figure(figsize=(10, 3.0), dpi=90, layout="constrained")
    axes = fig.subplots(1, len(cases), squeeze=False)[0]
    for ax, (title, steps) in zip(axes, cases.items()):
        group = np.asarray(steps["group_centred"], dtype=float)
        batch = np.asarray(steps["batch_centred"], dtype=float)
        x = np.arange(len(group))
        ax.bar(x - 0.2, group, 0.4, color="tab:blue", label="r - group mean")
        ax.bar(x + 0.2, batch, 0.4, color="tab:grey", label="r - batch mean (demo)")
        flips = np.flatnonzero(np.asarray(steps["sign_differs"]))
        top = max(np.abs(group).max(), np.abs(batch).max(), 1e-9)
        ax.plot(flips, np.full(len(flips), 1.12 * top), "v", color="tab:red",
                label="sign differs")
        for boundary in range(group_size, len(group), group_size):
            ax.axvline(boundary - 0.5, color="black", lw=0.8, ls=":")
        ax.axhline(0.0, color="grey", lw=0.8)
        rewards = steps["rewards"]
        ax.set_xticks(x, [f"{float(r):g}" for r in rewards], fontsize=7)
        ax.set_xlabel("reward of each response (dotted lines: prompt groups)")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(-1.25 * top, 1.25 * top)
    axes[0].set_ylabel("advantage")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3,
               fontsize=8, frameon=False)
    return fig


def plot_no_signal(p_grid, closed_by_g: dict, sampled_p, sampled_by_g: dict) -> Figure:
    """Share of groups whose G rewards are all equal: p^G + (1 - p)^G (lines) and the share
    measured through ``rlviz.group_advantages`` (dots), one colour per G."""
    fig = Figure(figsize=(6, 3.2), dpi=90, layout="constrained")
    ax = fig.subplots()
    for j, (group_size, closed) in enumerate(closed_by_g.items()):
        color = f"C{j}"
        ax.plot(p_grid, closed, color=color, lw=2, label=f"G = {group_size}: p^G + (1-p)^G")
        ax.plot(sampled_p, sampled_by_g[group_size], "o", color=color, ms=4)
    ax.set_xlabel("success rate p of the prompt")
    ax.set_ylabel("share of groups with A = 0")
    ax.set_title("Groups with no signal (dots: sampled)", fontsize=10)
    ax.legend(fontsize=8)
    ax.set_ylim(0, 1.02)
    return fig


# ---------------------------------------------------------------------------------------
# the std bias (panel 1)
# ---------------------------------------------------------------------------------------
class AbsAdvantageFigure(LiveFigure):
    """E[sum_i |A_i|] / G against p for each scale mode, the same relative to a p = 0.5
    prompt, and the share of groups with no signal.

    ``data`` keys: ``p_grid``; ``expected`` (scale -> closed-form E[sum_i |A_i|] on p_grid);
    ``relative`` (scale -> the same divided by the value at p = 0.5); ``no_signal``
    (values on p_grid); ``p`` (the marked success rate); ``scale`` (the highlighted mode);
    ``group_size``; optional ``sampled`` (scale -> (p values, sampled E[sum_i |A_i|])).
    The left axis shows E[sum_i |A_i|] / G, the average |A| per response, which lies in
    [0, 1] for every G, so the axes never need rescaling.
    """

    def __init__(self, data: dict):
        super().__init__(figsize=(11, 3.2), dpi=80, layout="constrained")
        ax_abs, ax_rel, ax_zero = self.figure.subplots(1, 3)
        self.lines, self.rel, self.dots = {}, {}, {}
        p_grid = np.asarray(data["p_grid"], dtype=float)
        for scale in data["expected"]:
            color = SCALE_COLORS[scale]
            (self.lines[scale],) = ax_abs.plot(p_grid, p_grid * 0, color=color,
                                               label=SCALE_LABELS[scale])
            # relative to p = 0.5, "batch" is the "none" curve exactly (one std for all
            # prompts): dashed, so that both stay visible where they coincide
            label = SCALE_LABELS[scale] + (" (= no std here)" if scale == "batch" else "")
            (self.rel[scale],) = ax_rel.plot(p_grid, p_grid * 0, color=color, label=label,
                                             ls="--" if scale == "batch" else "-")
            (self.dots[scale],) = ax_abs.plot([], [], "o", ms=3.5, color=color)
        self.vlines = [ax.axvline(data["p"], color="grey", lw=1, ls="--")
                       for ax in (ax_abs, ax_rel, ax_zero)]
        (self.zero,) = ax_zero.plot(p_grid, data["no_signal"], color="black")
        (self.zero_dot,) = ax_zero.plot([], [], "o", color="tab:red")
        (self.rel_dot,) = ax_rel.plot([], [], "o", color="black", ms=5)
        ax_abs.set_xlabel("success rate p")
        ax_abs.set_ylabel("E[sum_i |A_i|] / G")
        ax_abs.set_title("average |A| per response (dots: sampled)", fontsize=10)
        legend = ax_abs.legend(fontsize=7, loc="upper left")
        ax_abs.set_ylim(0, 1.05)
        ax_rel.set_xlabel("success rate p")
        ax_rel.set_ylabel("relative to p = 0.5")
        ax_rel.set_title("relative to a p = 0.5 prompt", fontsize=10)
        ax_rel.set_ylim(0, 1.1)
        rel_legend = ax_rel.legend(fontsize=7, loc="lower center")  # inside the hump
        ax_zero.set_xlabel("success rate p")
        ax_zero.set_ylabel("share of groups with A = 0")
        ax_zero.set_title("no signal: p^G + (1 - p)^G", fontsize=10)
        ax_zero.set_ylim(0, 1.02)
        for ax in (ax_abs, ax_rel, ax_zero):
            ax.set_xlim(0, 1)
        self.moving = [list(self.lines.values()), list(self.rel.values()),
                       list(self.dots.values()), self.vlines, self.zero, self.zero_dot,
                       self.rel_dot]
        self.on_top = [legend, rel_legend]  # static, but drawn over the curves
        self.update(data)

    def update(self, data: dict) -> "AbsAdvantageFigure":
        p, scale, group_size = data["p"], data["scale"], data["group_size"]
        p_grid = np.asarray(data["p_grid"], dtype=float)
        for name, line in self.lines.items():
            line.set_ydata(np.asarray(data["expected"][name], dtype=float) / group_size)
            self.rel[name].set_ydata(data["relative"][name])
            chosen = name == scale
            for artist in (line, self.rel[name]):
                artist.set_linewidth(2.6 if chosen else 1.0)
                artist.set_alpha(1.0 if chosen else 0.45)
            sampled = data.get("sampled", {}).get(name)
            if sampled is not None:
                self.dots[name].set_data(sampled[0], np.asarray(sampled[1]) / group_size)
            else:
                self.dots[name].set_data([], [])
        self.zero.set_ydata(data["no_signal"])
        for vline in self.vlines:
            vline.set_xdata([p, p])
        index = int(np.argmin(np.abs(p_grid - p)))
        self.zero_dot.set_data([p_grid[index]], [data["no_signal"][index]])
        self.rel_dot.set_data([p_grid[index]], [data["relative"][scale][index]])
        return self


def plot_abs_advantage(data: dict) -> Figure:
    """``AbsAdvantageFigure`` drawn once, for a static figure."""
    return AbsAdvantageFigure(data).figure


def plot_abs_advantage_per_k(group_size: int, per_k_by_scale: dict) -> Figure:
    """sum_i |A_i| of a group with k successes among G, for each scale (closed form),
    each scaled so that the group with k = G/2 (rounded down) is 1."""
    fig = Figure(figsize=(6, 3.0), dpi=90, layout="constrained")
    ax = fig.subplots()
    k = np.arange(group_size + 1)
    width = 0.8 / len(per_k_by_scale)
    for j, (scale, values) in enumerate(per_k_by_scale.items()):
        values = np.asarray(values, dtype=float)
        ax.bar(k + (j - (len(per_k_by_scale) - 1) / 2) * width,
               _relative(values, values[group_size // 2]), width,
               color=SCALE_COLORS[scale], label=SCALE_LABELS[scale])
    ax.set_xticks(k)
    ax.set_xlabel(f"k = number of correct answers among G = {group_size}")
    ax.set_ylabel(f"sum_i |A_i|  /  value at k = {group_size // 2}")
    ax.set_title("Signal per group, given k", fontsize=10)
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------
# aggregation and the length bias (panel 2)
# ---------------------------------------------------------------------------------------
class TokenWeightsFigure(LiveFigure):
    """Per-token gradient weights of one group under one aggregation mode (image, scaled so
    the largest |w_it| is 1), and each response's per-token weight and total weight under
    all four modes (bars, each mode scaled so its largest |value| is 1).

    ``data`` keys: ``mode``; ``weights`` (G, T) of that mode; ``labels`` (G,) short names;
    ``per_token`` and ``totals`` (mode -> list of G values); ``update`` takes the same G
    and T.
    """

    def __init__(self, data: dict):
        super().__init__(figsize=(11, 3.4), dpi=80, layout="constrained")
        ax_img, ax_tok, ax_tot = self.figure.subplots(1, 3, width_ratios=[1.3, 1, 1])
        rows, columns = np.asarray(data["weights"], dtype=float).shape  # (G, T)
        # one coloured cell per token: a QuadMesh draws in a third of an AxesImage's time
        # (no resampling to the screen), row 0 at the top as in ``imshow``
        self.image = ax_img.pcolormesh(np.arange(columns + 1) - 0.5, np.arange(rows + 1) - 0.5,
                                       np.zeros((rows, columns)), cmap="RdBu", vmin=-1, vmax=1)
        ax_img.invert_yaxis()
        self.figure.colorbar(self.image, ax=ax_img, fraction=0.05, pad=0.02,
                             label="w_it / max |w_it|")
        ax_img.set_xlabel("token position t")
        ax_img.set_yticks(range(len(data["labels"])), data["labels"], fontsize=8)
        self.title = ax_img.set_title("", fontsize=10)
        modes = list(data["per_token"])
        self.bars = {"per_token": GroupedBarCollection(ax_tok, data["labels"], modes),
                     "totals": GroupedBarCollection(ax_tot, data["labels"], modes)}
        ax_tok.set_title("weight per token (scaled)", fontsize=10)
        ax_tot.set_title("total weight per response (scaled)", fontsize=10)
        self.figure.legend(handles=[Patch(facecolor=MODE_COLORS.get(mode), linewidth=0)
                                    for mode in modes],
                           labels=modes, loc="outside lower center", ncol=4, fontsize=8,
                           frameon=False)
        # the title (the mode's name) is redrawn with the image (~3 ms): kept static, each
        # mode's first visit would cost a full draw of the figure (~150-250 ms)
        self.moving = [self.image, self.title, [bars.collection for bars in self.bars.values()]]
        self.update(data)

    def update(self, data: dict) -> "TokenWeightsFigure":
        self.image.set_array(_scaled(data["weights"]))
        self.title.set_text(data["mode"])
        for key, bars in self.bars.items():
            bars.set_values(data[key])
        return self


def plot_token_weights(data: dict) -> Figure:
    """``TokenWeightsFigure`` drawn once, for a static figure."""
    return TokenWeightsFigure(data).figure


# ---------------------------------------------------------------------------------------
# the demo's 1/group_num
# ---------------------------------------------------------------------------------------
def _prompts_axes(ax, ylabel: str, title: str, log_y: bool = False,
                  legend_size: float = 8) -> None:
    """An axes against the number of prompts P (log2 x-axis, log2 y-axis if ``log_y``)."""
    ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log", base=2)
    ax.set_xlabel("number of prompts P")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=legend_size)
    ax.set_title(title, fontsize=10)


def plot_demo_scale(independent: dict, copies: dict, optimizers: dict) -> Figure:
    """Gradient norm and second-step loss of the demo's loss and of the mean over groups
    against the number of prompts P, and the update-size ratio demo / mean for Adam and SGD.
    Inputs: outputs of ``demo_scale_vs_prompts`` (kind "independent" and "copies") and of
    ``optimizer_update_vs_prompts``."""
    fig = Figure(figsize=(11, 3.3), dpi=90, layout="constrained")
    ax_grad, ax_loss, ax_opt = fig.subplots(1, 3)
    prompts = np.asarray(independent["num_prompts"], dtype=float)
    for result, style, kind in ((independent, "-", "unrelated prompts"),
                                (copies, "--", "identical prompts")):
        ax_grad.plot(prompts, result["grad_demo"], "o" + style, color="tab:red",
                     label=f"demo (sum / G), {kind}")
        ax_grad.plot(prompts, result["grad_mean"], "s" + style, color="tab:blue",
                     label=f"mean over groups, {kind}")
    _prompts_axes(ax_grad, "gradient norm at rho = 1", "Gradient norm", log_y=True,
                  legend_size=6.5)
    ax_loss.plot(prompts, independent["loss_demo"], "o-", color="tab:red", label="demo")
    ax_loss.plot(prompts, independent["loss_mean"], "s-", color="tab:blue",
                 label="mean over groups")
    ax_loss.axhline(0.0, color="grey", lw=0.8)
    _prompts_axes(ax_loss, "loss on the 2nd inner step",
                  "Loss after one Adam step (unrelated prompts)")
    ax_opt.plot(prompts, optimizers["sgd_ratio"], "o-", color="tab:purple", label="SGD")
    ax_opt.plot(prompts, optimizers["adam_ratio"], "s-", color="tab:olive", label="Adam")
    ax_opt.plot(prompts, prompts, ":", color="grey", label="y = P")
    _prompts_axes(ax_opt, "update size: demo / mean", "Update after 3 steps (unrelated prompts)",
                  log_y=True)
    return fig
