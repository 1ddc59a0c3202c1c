"""Figures of notebook 04: KL estimators k1 / k2 / k3, where the KL goes, the demo's KL.

Data in, ``matplotlib.figure.Figure`` out (no pyplot state). The figures the slider panels
redraw are ``LiveFigure``s (``rlviz.plots.live``): ``GaussianEstimatorsFigure`` and
``TokenEstimatorsFigure``, created once and updated in place; ``plot_*`` draws one once.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .live import LiveFigure

KIND_COLORS = {"k1": "tab:blue", "k2": "tab:orange", "k3": "tab:green"}
KIND_LABELS = {"k1": "k1 = -log u", "k2": "k2 = (log u)^2/2", "k3": "k3 = u - 1 - log u"}


def _np(x):
    return np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x, dtype=float)


# ---------------------------------------------------------------------------------------
# Gaussian experiment: histograms + running estimates (panel and static figure)
# ---------------------------------------------------------------------------------------
class GaussianEstimatorsFigure(LiveFigure):
    """Left: histograms of k1, k2, k3 on samples x ~ N(0, 1) (target KL[N(0,1), N(mu,1)],
    black line), overlaid on common bins. Right: their running averages against the number
    of samples (log x-axis). ``update(data)`` with ``data`` from
    ``rlviz.experiments.kl.gaussian_panel_data``.

    ``title=False`` drops the figure title (the panel shows its sliders instead).
    ``max_samples`` fixes the running averages' x-axis to [1, max_samples] (a panel passes
    the slider's maximum, so that axis is drawn once); None: [1, the number of samples].
    Fixed margins (no layout engine) and few text items keep the panel's redraw cheap:
    text dominates Agg's time, so the axis labels are static figure texts, drawn once into
    the background. ``dpi``: 72 in the panel; a static figure in a notebook passes ~100.
    """

    def __init__(self, data: dict, title: bool = True, max_samples: int | None = None,
                 dpi: int = 72):
        height = 3.3 if title else 3.1
        super().__init__(figsize=(9.0, height), dpi=dpi)
        fig = self.figure
        self.title, self.max_samples = title, max_samples
        bottom = 0.5 / height  # room for the tick labels and the x labels
        fig.subplots_adjust(left=0.04, right=0.92, bottom=bottom, top=0.86 if title else 0.9,
                            wspace=0.1)
        self.hist_ax, self.run_ax = hist_ax, run_ax = fig.subplots(1, 2)
        middle = (bottom + (0.86 if title else 0.9)) / 2
        for x, y, text, rotation in ((0.025, middle, "density", 90),
                                     (0.985, middle, "running average", 270),
                                     (0.26, 0.03, "estimate per sample", 0),
                                     (0.72, 0.03, "number of samples", 0)):
            fig.text(x, y, text, rotation=rotation, ha="center", va="center" if rotation else
                     "bottom", fontsize=9)
        self.hist, self.running = {}, {}
        for kind in KIND_LABELS:
            hist = data["hist"][kind]
            self.hist[kind] = hist_ax.stairs(hist["density"], hist["edges"], lw=1.6,
                                             color=KIND_COLORS[kind], label=KIND_LABELS[kind])
            n, values = data["running"][kind]
            (self.running[kind],) = run_ax.plot(n, values, color=KIND_COLORS[kind], lw=1.4,
                                                label=kind)
        self.hist_true = hist_ax.axvline(data["true_kl"], color="black", lw=1.4,
                                         label="true KL")
        self.run_true = run_ax.axhline(data["true_kl"], color="black", lw=1.4)
        self.hist_zero = hist_ax.axvline(0.0, color="grey", lw=0.6)
        hist_ax.set_yticks([])
        hist_ax.set_title("per-sample values", fontsize=10)
        self.on_top = [hist_ax.legend(fontsize=8, loc="upper right")]
        run_ax.set_xscale("log")
        run_ax.yaxis.tick_right()
        run_ax.set_title("running average vs samples", fontsize=10)
        for ax in (hist_ax, run_ax):
            ax.tick_params(labelsize=8)
            ax.locator_params(axis="y", nbins=4)
        hist_ax.locator_params(axis="x", nbins=5)
        if max_samples is not None:
            run_ax.set_xlim(1, max_samples)
        self.suptitle = fig.suptitle("", fontsize=10)
        # what an update changes: the curves, and the axes whose limits follow the data
        # (with the lines placed on them); the legend (on top of the curves) and the
        # titles stay. The histogram's x-axis and the running averages' y-axis snap to
        # round limits (``follow``), so their drawn ticks are kept per set of limits.
        self.moving = [list(self.hist.values()), list(self.running.values()), self.hist_true,
                       self.run_true, self.hist_zero, hist_ax.xaxis, hist_ax.yaxis,
                       run_ax.yaxis]
        if max_samples is None:
            self.moving.append(run_ax.xaxis)
        self.update(data)

    def update(self, data: dict) -> "GaussianEstimatorsFigure":
        true_kl = data["true_kl"]
        peak = 1e-12
        for kind in KIND_LABELS:
            hist = data["hist"][kind]
            self.hist[kind].set_data(hist["density"], hist["edges"])
            peak = max(peak, float(np.max(hist["density"])))
        edges = data["hist"]["k1"]["edges"]
        self.follow(self.hist_ax, "x", edges[0], edges[-1])
        self.hist_ax.set_ylim(0, 1.1 * peak)
        self.hist_true.set_xdata([true_kl, true_kl])
        low, high = true_kl, true_kl
        for kind in KIND_LABELS:
            n, values = data["running"][kind]
            self.running[kind].set_data(n, values)
            tail = values[len(values) // 4:]
            low, high = min(low, float(np.min(tail))), max(high, float(np.max(tail)))
        self.run_true.set_ydata([true_kl, true_kl])
        pad = 0.15 * (high - low) + 0.05 * true_kl
        self.follow(self.run_ax, "y", low - pad, high + pad, nbins=4)
        if self.max_samples is None:
            self.run_ax.set_xlim(1, max(2, data["n_samples"]))
        if self.title:
            self.set_static_text(self.suptitle, f"q = N(0, 1), p = N({data['mu']:.2f}, 1): "
                                 f"true KL = {true_kl:.4g}, {data['n_samples']} samples")
        return self


def plot_gaussian_estimators(data: dict, title: bool = True, max_samples: int | None = None,
                             dpi: int = 72) -> Figure:
    """``GaussianEstimatorsFigure`` drawn once, for a static figure."""
    return GaussianEstimatorsFigure(data, title, max_samples, dpi).figure


# ---------------------------------------------------------------------------------------
# Tokens: policy samples vs uniform tokens (panel and static figure)
# ---------------------------------------------------------------------------------------
SERIES_STYLE = {
    "policy_k1": {"label": "k1, policy samples", "color": "tab:blue", "ls": "-"},
    "policy_k3": {"label": "k3, policy samples", "color": "tab:green", "ls": "-"},
    "uniform_k1": {"label": "k1, uniform (demo)", "color": "tab:purple", "ls": "--"},
}


class TokenEstimatorsFigure(LiveFigure):
    """Left: the top tokens of the reference and their policy probabilities. Right: the
    per-step estimates (each the mean over one step's tokens) over many steps, on tokens
    sampled from the policy (k1, k3) and on uniform random tokens (k1, as the demo does),
    with the exact KL(pi || ref) and the exact E_U[k1] = KL(U || ref) - KL(U || pi).

    ``update(data)`` with ``data`` from ``rlviz.experiments.kl.token_panel_data``;
    ``title=False`` drops the figure title (the panel's sliders show the numbers).
    """

    def __init__(self, data: dict, title: bool = True):
        super().__init__(figsize=(9.0, 3.0 if title else 2.8), dpi=72)
        self.title = title
        self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.16,
                                    top=0.88 if title else 0.96, wspace=0.1)
        self.left, self.right = left, right = self.figure.subplots(1, 2, width_ratios=[1, 1.5])
        top_edges = np.arange(len(data["top_ref"]) + 1) - 0.5
        self.ref = left.stairs(data["top_ref"], top_edges, color="black", lw=1.5,
                               label="reference")
        self.policy = left.stairs(data["top_policy"], top_edges, color="tab:red", lw=1.5,
                                  label="policy", fill=True, alpha=0.35)
        left.set_xlabel(f"top {len(top_edges) - 1} reference tokens", fontsize=9)
        left.set_ylabel("probability", fontsize=9)
        left.set_xticks([])
        left.locator_params(axis="y", nbins=4)
        # static, drawn over the bars (``on_top``); the reference's top tokens are sorted,
        # so the bars are lowest on the right
        left_legend = left.legend(fontsize=8, loc="upper right")
        left.tick_params(labelsize=8)
        self.series = {}
        for name, style in SERIES_STYLE.items():
            self.series[name] = right.stairs(data["hists"][name], data["edges"],
                                             label=style["label"], color=style["color"],
                                             lw=1.6, ls=style["ls"])
        self.exact_v = right.axvline(data["exact_kl"], color="black", lw=1.6,
                                     label="KL(pi||ref)")
        self.uniform_v = right.axvline(data["uniform_k1"], color="tab:purple", lw=1.4, ls=":",
                                       label="E_U[k1]")
        zero_v = right.axvline(0.0, color="grey", lw=0.6)
        right.set_xlabel("per-step estimate", fontsize=9)
        right.set_yticks([])
        right.locator_params(axis="x", nbins=5)
        self.on_top = [right.legend(fontsize=7, loc="upper left"), left_legend]
        right.tick_params(labelsize=8)
        self.suptitle = self.figure.suptitle("", fontsize=10)
        # what an update changes: the curves, the lines, and the right axes, whose limits
        # follow the histograms (the x-axis with the lines placed on it; the y-axis has no
        # ticks); the left y-limits follow the data in round steps (``follow``: a static
        # axis, a new background only when they change); the legends stay
        self.moving = [self.ref, self.policy, list(self.series.values()), self.exact_v,
                       self.uniform_v, zero_v, right.xaxis, right.yaxis]
        self.update(data)

    def update(self, data: dict) -> "TokenEstimatorsFigure":
        edges_top = np.arange(len(data["top_ref"]) + 1) - 0.5
        self.ref.set_data(data["top_ref"], edges_top)
        self.policy.set_data(data["top_policy"], edges_top)
        self.follow(self.left, "y", 0.0,
                    1.05 * max(np.max(data["top_ref"]), np.max(data["top_policy"])), nbins=4)
        self.left.set_xlim(edges_top[0], edges_top[-1])
        peak = 1e-12
        for name in SERIES_STYLE:
            self.series[name].set_data(data["hists"][name], data["edges"])
            peak = max(peak, float(np.max(data["hists"][name])))
        self.exact_v.set_xdata([data["exact_kl"]] * 2)
        self.uniform_v.set_xdata([data["uniform_k1"]] * 2)
        self.right.set_xlim(data["edges"][0], data["edges"][-1])
        self.right.set_ylim(0, 1.25 * peak)
        if self.title:
            self.set_static_text(
                self.suptitle, f"V = {data['vocab_size']} tokens, {data['samples_per_step']} "
                f"samples per step, {data['n_steps']} steps: exact KL(pi||ref) = "
                f"{data['exact_kl']:.3f}")
        return self


def plot_token_estimators(data: dict, title: bool = True) -> Figure:
    """``TokenEstimatorsFigure`` drawn once, for a static figure."""
    return TokenEstimatorsFigure(data, title).figure


# ---------------------------------------------------------------------------------------
# Gradients by enumeration
# ---------------------------------------------------------------------------------------
def plot_expected_gradients(grads: dict, agreement: dict, n_tokens: int = 12) -> Figure:
    """Left: the exact expected gradient (w.r.t. the logits of the first ``n_tokens``
    tokens) of each estimator used as a loss, next to the gradients of the reverse and
    forward KL. Right: how far apart k2's and k3's gradients are, against KL(pi || ref)."""
    fig = Figure(figsize=(10, 3.4), dpi=80, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.6, 1])
    x = np.arange(n_tokens)
    bars = [("k1_loss", "k1 as loss", "tab:blue"), ("k2_loss", "k2 as loss", "tab:orange"),
            ("reverse_kl", "grad KL(pi||ref)", "peru"),
            ("k3_loss", "k3 as loss", "tab:green"), ("forward_kl", "grad KL(ref||pi)", "olive")]
    width = 0.8 / len(bars)
    for i, (key, label, color) in enumerate(bars):
        hatch = "//" if key.endswith("kl") else None
        left.bar(x + (i - 2) * width, _np(grads[key])[:n_tokens], width, label=label,
                 color=color, hatch=hatch, edgecolor="white" if hatch else None)
    left.axhline(0, color="grey", lw=0.6)
    left.set_xlabel("token (logit)", fontsize=9)
    left.set_ylabel("expected gradient", fontsize=9)
    left.set_xticks(x)
    left.legend(fontsize=7, ncol=3)
    left.tick_params(labelsize=8)
    right.plot(agreement["kl"], agreement["relative_difference"], "o-", color="tab:red")
    right.set_xscale("log")
    right.set_yscale("log")
    # margins of a factor 3 on the log axis keep the end tick labels (10^0) inside
    right.set_xlim(min(agreement["kl"]) / 3, max(agreement["kl"]) * 3)
    right.set_xlabel("KL(pi || ref)", fontsize=9)
    right.set_ylabel("||g_k2 - g_k3|| / ||g_k2||", fontsize=9)
    right.set_title("k2 and k3 agree near the reference", fontsize=10)
    right.tick_params(labelsize=8)
    return fig


# ---------------------------------------------------------------------------------------
# Where the KL goes (same batch)
# ---------------------------------------------------------------------------------------
def plot_kl_placement(batch: dict) -> Figure:
    """Per-token heat maps for one group of responses: k1 of each sampled token; the KL part
    of d loss / d logp in PPO (k1 in the reward: a sum over the tokens that follow); and in
    GRPO (beta k3 in the loss: local to each token). Blank = padding."""
    mask = _np(batch["mask"]) > 0
    panels = [(batch["k1"], "k1 per token (log pi - log ref)"),
              (batch["ppo_kl_grad"], "PPO: KL part of d loss / d logp"),
              (batch["grpo_kl_grad"], "GRPO: KL part of d loss / d logp")]
    fig = Figure(figsize=(10.5, 2.8), dpi=80, layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (values, title) in zip(axes, panels):
        grid = np.where(mask, _np(values), np.nan)
        limit = float(np.nanmax(np.abs(grid))) or 1.0
        image = ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("token t", fontsize=8)
        ax.set_ylabel("response i", fontsize=8)
        ax.set_yticks(range(grid.shape[0]))
        ax.tick_params(labelsize=7)
        fig.colorbar(image, ax=ax, shrink=0.85).ax.tick_params(labelsize=7)
    return fig


# ---------------------------------------------------------------------------------------
# beta sweep, adaptive controller, demo trace
# ---------------------------------------------------------------------------------------
def plot_tradeoff(sweep: dict, trained: dict, beta: float,
                  label_betas=(0.1, 0.3, 1.0, 3.0)) -> Figure:
    """Reward against KL(pi || ref): the optimum ref exp(r/beta)/Z for every beta (solid),
    the forward-KL-regularised optimum (dashed), and where training with k1 / k2 / k3 as the
    KL loss ends at one beta (markers)."""
    fig = Figure(figsize=(6.4, 3.6), dpi=80, layout="constrained")
    ax = fig.subplots()
    ax.plot(sweep["kl"], sweep["reward"], "-", color="black", lw=1.8,
            label="optimum of E[r] - beta KL(pi||ref)")
    ax.plot(sweep["forward_opt_kl"], sweep["forward_opt_reward"], "--", color="grey", lw=1.4,
            label="optimum of E[r] - beta KL(ref||pi)")
    smallest_kl = min(sweep["kl"])
    for label in label_betas:
        i = int(np.argmin(np.abs(np.log(np.asarray(sweep["beta"]) / label))))
        ax.plot(sweep["kl"][i], sweep["reward"][i], ".", color="black")
        # above and left of the point: the curve rises to the right, so that corner is
        # empty, and the trained markers (at large KL) sit to the right of the curve;
        # the point at the left edge is labelled on its right
        at_edge = sweep["kl"][i] == smallest_kl
        ax.annotate(f"beta={sweep['beta'][i]:.2g}", (sweep["kl"][i], sweep["reward"][i]),
                    fontsize=7, xytext=(7 if at_edge else -7, 5), textcoords="offset points",
                    ha="left" if at_edge else "right", va="bottom")
    markers = {"k1": "s", "k2": "o", "k3": "^"}
    for kind, result in trained.items():
        ax.plot(result["final_kl"], result["final_reward"], markers[kind], ms=9,
                color=KIND_COLORS[kind], label=f"trained, {kind} as loss, beta = {beta:g}",
                alpha=0.85)
    ax.set_xscale("symlog", linthresh=1e-2)
    ax.set_ylim(top=max(sweep["reward"]) + 0.04)  # room for the labels under the title
    ax.set_xlabel("KL(pi || ref)", fontsize=9)
    ax.set_ylabel("E_pi[r]", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.tick_params(labelsize=8)
    ax.set_title("Reward against KL: one point per beta", fontsize=10)
    return fig


def plot_adaptive_kl(runs: dict, target: float, beta_star: float) -> Figure:
    """KL(pi || ref) and beta per iteration for each run in ``runs`` (label -> history),
    with the target KL and the beta whose optimum has exactly the target KL."""
    fig = Figure(figsize=(10, 3.2), dpi=80, layout="constrained")
    kl_ax, beta_ax = fig.subplots(1, 2)
    colors = ["tab:blue", "tab:orange", "tab:grey", "tab:red"]
    for color, (label, history) in zip(colors, runs.items()):
        kl_ax.plot(history["kl"], color=color, lw=1.4, label=label)
        beta_ax.plot(history["beta"], color=color, lw=1.4, label=label)
    kl_ax.axhline(target, color="black", ls="--", lw=1.2, label="target KL")
    beta_ax.axhline(beta_star, color="black", ls="--", lw=1.2,
                    label="beta with KL(pi*||ref) = target")
    kl_ax.set_ylabel("KL(pi || ref)", fontsize=9)
    beta_ax.set_ylabel("beta", fontsize=9)
    beta_ax.set_yscale("log")
    for ax in (kl_ax, beta_ax):
        ax.set_xlabel("iteration", fontsize=9)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=8)
    return fig


def plot_demo_kl(trace: dict) -> Figure:
    """Left: what the demo's grpo_kl measures per step (k1 on uniform tokens), its exact
    expectation KL(U||ref) - KL(U||pi), the exact KL(pi||ref) and k3 on policy samples.
    Right: the KL term as it enters the loss: the demo's vs DeepSeekMath's."""
    fig = Figure(figsize=(10, 3.3), dpi=80, layout="constrained")
    left, right = fig.subplots(1, 2)
    steps = np.arange(len(trace["demo_kl"]))
    left.plot(steps, trace["demo_kl"], "o-", color="tab:purple", ms=3, lw=1.2,
              label="demo grpo_kl (k1, uniform tokens)")
    left.plot(steps, trace["uniform_expectation"], ":", color="tab:purple", lw=1.4,
              label="its expectation KL(U||ref) - KL(U||pi)")
    left.plot(steps, trace["exact_kl"], "-", color="black", lw=1.6, label="exact KL(pi||ref)")
    left.plot(steps, trace["k3_on_policy"], "--", color="tab:green", lw=1.2,
              label="k3 on policy samples")
    left.axhline(0, color="grey", lw=0.6)
    left.set_ylabel("nats per token", fontsize=9)
    right.plot(steps, trace["demo_kl_term"], "o-", color="tab:purple", ms=3, lw=1.2,
               label="demo: beta sum_i kl_i / (G L_i)")
    right.plot(steps, trace["paper_kl_term"], "-", color="tab:green", lw=1.4,
               label="paper: beta mean_i (1/L_i) sum_t k3")
    right.axhline(0, color="grey", lw=0.6)
    right.set_ylabel("KL term in the loss", fontsize=9)
    for ax in (left, right):
        ax.set_xlabel("demo step", fontsize=9)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=8)
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    return fig
