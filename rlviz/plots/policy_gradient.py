"""Figures of notebook 02: REINFORCE, baselines, the importance ratio, GAE, the value loss
and the entropy bonus. Data in (from ``rlviz.experiments.policy_gradient``), Figure out.

The GAE and entropy figures are ``LiveFigure``s (``rlviz.plots.live``): ``GaeFigure`` and
``EntropyFigure`` are created once and updated in place by the panels in
``rlviz.widgets.policy_gradient``; ``plot_gae`` draws one once, for a static figure.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from .live import Bars, LiveFigure

COLORS = {
    "none": "tab:red",
    "expected": "tab:blue",
    "batch-mean": "tab:orange",
    "leave-one-out": "tab:green",
    "naive": "tab:red",
    "ratio": "tab:blue",
    "clipped": "tab:green",
    "fresh": "tab:grey",
    "td": "tab:orange",
    "mc": "tab:purple",
    "gae": "tab:blue",
}
LABELS = {
    "none": "no baseline",
    "expected": "baseline b = J (perfect critic)",
    "batch-mean": "baseline = batch mean (GRPO-style)",
    "leave-one-out": "baseline = mean of the others (RLOO)",
}


def _np(x):
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=float)


def _plain_log_labels(ax) -> None:
    """Label a log y-axis 0.05, 0.1, 0.2 ... instead of 10^-1: plain text draws much faster
    than mathtext, and reads as easily."""
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _plot_series(ax, x, result: dict, series) -> None:
    """One line per ``(key, style, color, label[, plot keywords])``: ``result[key]``
    against ``x``; a marker style ("o") draws points."""
    for key, style, color, label, *extra in series:
        ax.plot(x, _np(result[key]), style, color=color, label=label,
                **({"ms": 5} if style == "o" else {}), **(extra[0] if extra else {}))


def _label(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Axis labels, title and legend of one axes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)


def _figure(width: float, height: float, ncols: int = 1):
    fig = Figure(figsize=(width, height), dpi=90, layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


# ---------------------------------------------------------------------------------------
# REINFORCE and baselines
# ---------------------------------------------------------------------------------------


def cosines(estimates, exact) -> np.ndarray:
    """Cosine between each estimate (S, K) and the exact gradient (K,), (S,)."""
    est, ex = _np(estimates), _np(exact)
    norms = np.linalg.norm(est, axis=1) * np.linalg.norm(ex)
    return est @ ex / np.maximum(norms, 1e-300)


def plot_gradient_alignment(estimates: dict, exact) -> Figure:
    """Histogram of the cosine between each gradient estimate and the exact gradient, one
    histogram per estimator (estimates: name -> (S, K)). 1 = the exact direction; below 0
    the step would lower the expected reward."""
    fig, ax = _figure(7.5, 3.4)
    bins = np.linspace(-1, 1, 81)
    lowest = -0.5
    for name, est in estimates.items():
        cos = cosines(est, exact)
        lowest = min(lowest, float(cos.min()) - 0.025)
        color = COLORS.get(name, "tab:blue")
        ax.hist(cos, bins=bins, histtype="stepfilled", alpha=0.35, color=color,
                label=f"{LABELS.get(name, name)}: mean {cos.mean():.2f}, "
                      f"wrong way {100 * (cos < 0).mean():.1f}%")
        ax.axvline(cos.mean(), color=color, lw=1.5)
    ax.axvspan(-1, 0, color="grey", alpha=0.12)
    ax.text(lowest + 0.02, 0.55, "points the wrong way\n(cos < 0)",
            transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="dimgrey")
    ax.set_xlim(lowest, 1)
    ax.set_xlabel("cosine(estimate, exact gradient)")
    ax.set_ylabel("batches")
    ax.set_title(f"{len(cos)} gradient estimates, each from one batch of sampled tokens")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_baseline_variance(baselines, variances, points: dict, optimal: float,
                           expected: float) -> Figure:
    """Exact variance of the one-sample estimate against a constant baseline b (a
    parabola), with measured points (name -> (b, variance)) and the optimal b marked."""
    fig, ax = _figure(6.5, 3.4)
    ax.plot(_np(baselines), _np(variances), color="k", lw=1.5,
            label="exact: Var[(r - b) grad log pi]")
    for name, (b, var) in points.items():
        ax.plot(b, var, "o", ms=8, color=COLORS.get(name, "tab:blue"),
                label=f"measured, {LABELS.get(name, name)}")
    ax.axvline(optimal, color="tab:green", ls="--", lw=1,
               label=f"optimal constant b = {optimal:.3f}")
    ax.axvline(expected, color="tab:blue", ls=":", lw=1, label=f"J = {expected:.3f}")
    ax.set_xlabel("constant baseline b")
    ax.set_ylabel("variance (trace), one sample")
    ax.set_title("A baseline shifts the weights r - b: variance is a parabola in b")
    ax.legend(fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------
# The importance ratio
# ---------------------------------------------------------------------------------------


def plot_importance_reuse(result: dict) -> Figure:
    """Left: bias of the gradient estimated from old samples, with and without the ratio,
    against KL(pi_old || pi_theta). Right: per-sample variance."""
    fig, (ax1, ax2) = _figure(10, 3.6, 2)
    kl = _np(result["kl"])
    _plot_series(ax1, kl, result, [
        ("naive_bias", "-", COLORS["naive"], "no ratio: exact bias"),
        ("naive_bias_mc", "o", COLORS["naive"], "no ratio: measured"),
        ("ratio_bias", "-", COLORS["ratio"], "with ratio: exact bias (0)"),
        ("ratio_bias_mc", "o", COLORS["ratio"], "with ratio: measured"),
        ("grad_norm", ":", "k", "|grad J(theta)| for scale")])
    _label(ax1, "KL(pi_old || pi_theta)", "|E[estimate] - grad J(theta)|",
           "Reusing old samples: bias")
    _plot_series(ax2, kl, result, [
        ("ratio_variance", "-", COLORS["ratio"], "with ratio: exact"),
        ("ratio_variance_mc", "o", COLORS["ratio"], "with ratio: measured"),
        ("fresh_variance", "--", COLORS["fresh"], "fresh samples from pi_theta"),
        ("naive_variance", "-", COLORS["naive"], "no ratio", {"lw": 1})])
    _label(ax2, "KL(pi_old || pi_theta)", "variance per sample (trace)",
           "...and the price of the ratio: variance")
    return fig


def plot_epochs_on_one_batch(runs: dict) -> Figure:
    """KL(pi_old || pi_theta) and the true expected reward over epochs on one batch,
    one line per loss (runs: name -> result of ``epochs_on_one_batch``)."""
    fig, (ax1, ax2) = _figure(10, 3.3, 2)
    names = {"naive": "REINFORCE loss, reused", "ratio": "ratio surrogate, no clip",
             "clipped": "PPO clipped surrogate (eps 0.2)"}
    for name, run in runs.items():
        kl = _np(run["kl"])
        epochs = np.arange(len(kl))
        ax1.semilogy(epochs[1:], kl[1:], color=COLORS.get(name), label=names.get(name, name))
        ax2.plot(epochs, _np(run["expected_reward"]), color=COLORS.get(name),
                 label=names.get(name, name))
    _plain_log_labels(ax1)
    ax1.set_xlabel("gradient steps on the same batch")
    ax1.set_ylabel("KL(pi_old || pi_theta)")
    ax1.set_title("How far the policy walks from the sampler")
    ax1.legend(fontsize=8)
    ax2.set_xlabel("gradient steps on the same batch")
    ax2.set_ylabel("true expected reward J(theta)")
    ax2.set_title("What it is worth (best possible: 1.0)")
    return fig


# ---------------------------------------------------------------------------------------
# GAE: advantages on one episode, and the bias/variance trade-off
# ---------------------------------------------------------------------------------------


class GaeFigure(LiveFigure):
    """Left: one episode's token rewards, critic values and advantages, between the
    one-step TD error (lambda = 0) and the Monte-Carlo return minus the value (lambda = 1).
    Right: bias^2, variance and MSE of the one-episode policy-gradient estimate against
    lambda. ``update(episode, stats, lam, gamma, critic_error)`` with ``episode`` from
    ``example_episode`` and ``stats`` from ``gae_gradient_stats`` (``gamma`` and
    ``critic_error`` only go into the title, with ``numbers_in_title``).

    For a panel: ``legend=False`` leaves the legends out (the panel's description gives
    the key), ``numbers_in_title=False`` keeps gamma, lambda and the critic error out of
    the title (the sliders show them), ``episode_ylim`` fixes the y-limits of the episode
    axes to a range that covers every slider setting (None: fit them to the data);
    ``dpi`` 72 for a panel (fewer pixels to redraw and encode).
    """

    def __init__(self, num_tokens: int, num_lams: int, legend: bool = True,
                 numbers_in_title: bool = True, episode_ylim=None, dpi: float = 90):
        super().__init__(figsize=(10.5, 3.8), dpi=dpi, layout="constrained")
        self.ax_episode, self.ax_tradeoff = ax1, ax2 = self.figure.subplots(1, 2)
        self.legend, self.numbers_in_title = legend, numbers_in_title
        self.episode_ylim = episode_ylim
        self.tick_labels = None
        t = np.arange(num_tokens)
        zeros = np.zeros(num_tokens)
        (self.values,) = ax1.plot(t, zeros, "s", color="k", ms=5, mfc="white",
                                  label="critic V(s_t)")
        (self.mc,) = ax1.plot(t, zeros, "--", color=COLORS["mc"], lw=1.5,
                              label="lambda = 1: return - V (MC)")
        (self.td,) = ax1.plot(t, zeros, "--", color=COLORS["td"], lw=1.5,
                              label="lambda = 0: TD error")
        (self.gae,) = ax1.plot(t, zeros, "o-", color=COLORS["gae"], lw=2.2,
                               label="GAE advantage")
        # one collection (``Bars``): cheaper to redraw than a Rectangle per token; made
        # after the lines, so that the legend lists it last
        self.reward_bars = Bars(ax1, t, 0.6, "lightgrey", edgecolor="grey",
                                label="token reward r_t")
        zero_line = ax1.axhline(0, color="grey", lw=0.6)
        ax1.set_xticks(t)
        ax1.set_xlabel("token t (label: the sampled token)")
        ax1.set_ylabel("reward, value, advantage")
        self.episode_title = ax1.set_title("One episode: per-token advantages", fontsize=10)
        if episode_ylim is not None:
            ax1.set_ylim(*episode_ylim)
        if legend:
            ax1.legend(fontsize=7.5, loc="upper left", ncol=2)
        lams = np.linspace(0, 1, num_lams)
        empty = np.zeros(num_lams)
        (self.bias2,) = ax2.plot(lams, empty, color="tab:red", label="bias^2")
        (self.variance,) = ax2.plot(lams, empty, color="tab:blue", label="variance")
        (self.mse,) = ax2.plot(lams, empty, color="k", lw=2, label="MSE = bias^2 + variance")
        (self.bias2_sampled,) = ax2.plot(lams, empty, "o", color="tab:red", ms=3.5, alpha=0.7,
                                         label="dots: on sampled episodes")
        (self.variance_sampled,) = ax2.plot(lams, empty, "o", color="tab:blue", ms=3.5,
                                            alpha=0.7)
        self.lam_line = ax2.axvline(0.95, color="tab:green", ls="--", lw=1.2,
                                    label="current lambda")
        (self.best,) = ax2.plot([], [], "*", color="gold", mec="k", ms=13)  # the lowest MSE
        ax2.set_xlabel("lambda")
        ax2.xaxis.set_major_locator(MaxNLocator(5))
        ax2.yaxis.set_major_locator(MaxNLocator(5))
        ax1.yaxis.set_major_locator(MaxNLocator(6))
        ax2.set_ylabel("bias^2, variance, MSE")
        ax2.set_title("Bias / variance of sum_t A_t grad log pi(a_t); star: lowest MSE",
                      fontsize=10)
        if legend:
            ax2.legend(fontsize=7.5, loc="upper center")
        # what an update changes: the curves, the episode's y-axis if its limits follow
        # the data, and the trade-off's y-axis, whose limits move in round steps
        # (``follow``: its drawn ticks and label are kept per set of limits)
        self.moving = [self.reward_bars.artist, self.values, self.mc, self.td, self.gae, self.bias2,
                       self.variance, self.mse, self.bias2_sampled, self.variance_sampled,
                       self.lam_line, self.best, ax2.yaxis]
        if episode_ylim is None:
            self.moving += [ax1.yaxis, zero_line]  # the zero line sits on that y-axis
        if numbers_in_title:
            self.moving.append(self.episode_title)

    def update(self, episode: dict, stats: dict, lam: float, gamma: float,
               critic_error: float) -> "GaeFigure":
        ax1, ax2 = self.ax_episode, self.ax_tradeoff
        self.reward_bars.set_heights(_np(episode["rewards"]))
        self.values.set_ydata(_np(episode["values"]))
        self.mc.set_ydata(_np(episode["mc"]))
        self.td.set_ydata(_np(episode["td"]))
        self.gae.set_ydata(_np(episode["advantages"]))
        labels = [f"{t}:{int(a)}" for t, a in enumerate(_np(episode["actions"]))]
        if self.tick_labels != labels:  # new Text objects are costly: only when they change
            ax1.set_xticks(range(len(labels)), labels)
            self.tick_labels = labels
            self.invalidate()  # the x-axis is static: redraw it
        if self.episode_ylim is None:
            ax1.set_ylim(*episode_ylim_of([episode], self.legend))
        if self.numbers_in_title:
            self.episode_title.set_text(f"One episode: gamma = {gamma:.2f}, lambda = "
                                        f"{lam:.2f}, critic error = {critic_error:.2f}")
        lams = _np(stats["lams"])
        for line, key in ((self.bias2, "bias2"), (self.variance, "variance"),
                          (self.mse, "mse"), (self.bias2_sampled, "bias2_sampled"),
                          (self.variance_sampled, "variance_sampled")):
            line.set_data(lams, _np(stats[key]))
        mse = _np(stats["mse"])
        best = int(np.argmin(mse))
        self.best.set_data([lams[best]], [mse[best]])
        self.lam_line.set_xdata([lam, lam])
        top = max(mse.max(), _np(stats["variance_sampled"]).max(),
                  _np(stats["bias2_sampled"]).max())
        self.follow(ax2, "y", 0.0, (1.4 if self.legend else 1.03) * top)  # room for the legend
        ax2.set_xlim(-0.02, 1.02)
        return self


def episode_ylim_of(episodes, legend: bool = True) -> tuple[float, float]:
    """y-limits of the GAE figure's episode axes that show every number of ``episodes``
    (each an ``example_episode`` dict), with room for the legend above the bars."""
    stack = np.concatenate([_np(episode[k]) for episode in episodes
                            for k in ("rewards", "values", "mc", "td", "advantages")])
    headroom = 0.45 if legend else 0.1
    return min(stack.min(), 0) - 0.15, max(stack.max(), 0) + headroom


def plot_gae(episode: dict, stats: dict, lam: float, gamma: float,
             critic_error: float) -> Figure:
    """Static GAE figure (the panel's, for readers without a kernel)."""
    live = GaeFigure(len(episode["actions"]), len(stats["lams"]))
    return live.update(episode, stats, lam, gamma, critic_error).figure


def plot_estimator_comparison(rows: dict) -> Figure:
    """Noise-to-signal (std / |mean|) of the one-episode gradient estimate, one bar per
    estimator; the scale mean / exact printed on each bar. rows: name -> (scale, noise)."""
    names = list(rows)
    fig, ax = _figure(8.5, 0.42 * len(names) + 1.0)
    noise = [rows[n][1] for n in names]
    scale = [rows[n][0] for n in names]
    colors = ["tab:purple" if "GRPO" in n or "group" in n else
              ("tab:blue" if "critic" in n else "tab:red") for n in names]
    y = np.arange(len(names))[::-1]
    ax.barh(y, noise, color=colors, alpha=0.8)
    for yi, ni, si in zip(y, noise, scale):
        ax.text(ni + 0.02, yi, f"scale {si:.2f}", va="center", fontsize=8)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("noise-to-signal of the one-episode gradient: std / |mean|  (lower is better)")
    ax.set_xlim(0, max(noise) * 1.25)
    ax.set_title("Critic (blue) vs group baseline (purple) vs nothing (red)")
    return fig


# ---------------------------------------------------------------------------------------
# The clipped value loss
# ---------------------------------------------------------------------------------------


def plot_value_clip(curve: dict) -> Figure:
    """Clipped value loss and its gradient against the new value V, for fixed V_old, R.

    curve: ``values`` (M,), ``loss`` (M,), ``unclipped`` (M,), ``grad`` (M,), ``old_value``,
    ``ret``, ``clip_range`` (from ``value_clip_curve``)."""
    fig, (ax1, ax2) = _figure(10, 3.3, 2)
    v = _np(curve["values"])
    zero = _np(curve["grad"]) == 0
    for ax in (ax1, ax2):
        ax.axvspan(curve["old_value"] - curve["clip_range"],
                   curve["old_value"] + curve["clip_range"], color="tab:green", alpha=0.1,
                   label="V_old +- clip range")
        ax.axvline(curve["old_value"], color="tab:green", lw=1)
        ax.axvline(curve["ret"], color="k", ls=":", lw=1)
        if zero.any():
            ax.fill_between(v, 0, 1, where=zero, color="tab:red", alpha=0.12,
                            transform=ax.get_xaxis_transform(), label="gradient exactly 0")
    ax1.plot(v, _np(curve["unclipped"]), "--", color="grey", label="0.5 (V - R)^2")
    ax1.plot(v, _np(curve["loss"]), color="tab:blue", lw=2, label="clipped value loss")
    ax1.set_xlabel("new value V  (dotted: the return R)")
    ax1.set_ylabel("loss")
    ax1.legend(fontsize=8)
    ax1.set_title(f"V_old = {curve['old_value']}, R = {curve['ret']}, "
                  f"clip = {curve['clip_range']}")
    ax2.plot(v, _np(curve["grad"]), color="tab:blue", lw=2)
    ax2.axhline(0, color="grey", lw=0.6)
    ax2.set_xlabel("new value V")
    ax2.set_ylabel("d loss / d V")
    ax2.set_title("Gradient: zero while V is past V_old + c on the way to R")
    ax2.legend(fontsize=8, loc="upper left")
    return fig


# ---------------------------------------------------------------------------------------
# The entropy bonus
# ---------------------------------------------------------------------------------------


class EntropyFigure(LiveFigure):
    """Entropy over training, and the final policy next to the entropy-regularised
    optimum softmax(r / c). ``update(entropy_curve, zero_curve, limit, probs, target)``:
    the entropy per step with this ent_coef and without the bonus, the entropy of
    softmax(r / c), the final policy and softmax(r / c). ``legend=False`` leaves the
    legends out (the panel's description gives the key). The axes and titles stay (the
    panel's slider and readout show ent_coef and the final entropy)."""

    def __init__(self, num_steps: int, tokens, legend: bool = True):
        super().__init__(figsize=(10, 3.4), dpi=90, layout="constrained")
        ax1, ax2 = self.figure.subplots(1, 2)
        steps = np.arange(num_steps + 1)
        (self.curve,) = ax1.plot(steps, np.zeros(num_steps + 1), color="tab:blue", lw=2,
                                 label="entropy H(pi) (mean over seeds)")
        (self.zero,) = ax1.plot(steps, np.zeros(num_steps + 1), color="tab:red", lw=1,
                                alpha=0.7, label="ent_coef = 0")
        self.limit = ax1.axhline(0, color="k", ls="--", lw=1, label="H of softmax(r / c)")
        ax1.axhline(np.log(len(tokens)), color="grey", ls=":", lw=1)
        ax1.set_ylim(0, np.log(len(tokens)) * 1.08)
        ax1.yaxis.set_major_locator(MaxNLocator(5))
        ax1.xaxis.set_major_locator(MaxNLocator(5))
        ax1.set_xlabel("training step")
        ax1.set_ylabel("entropy (nats); dotted: log K")
        ax1.set_title("Entropy during training", fontsize=10)
        if legend:
            ax1.legend(fontsize=8, loc="upper right")
        x = np.arange(len(tokens))
        self.bars = ax2.bar(x - 0.2, np.zeros(len(tokens)), width=0.4, color="tab:blue",
                            label="after training")
        self.target = ax2.bar(x + 0.2, np.zeros(len(tokens)), width=0.4, color="lightgrey",
                              edgecolor="k", label="softmax(r / c)")
        ax2.set_xticks(x, list(tokens))
        ax2.set_ylim(0, 1.05)
        ax2.yaxis.set_major_locator(MaxNLocator(5))
        ax2.set_ylabel("pi(token)")
        ax2.set_title("Final policy", fontsize=10)
        if legend:
            ax2.legend(fontsize=8)
        self.moving = [self.curve, self.zero, self.limit, self.bars, self.target]

    def update(self, entropy_curve, zero_curve, limit: float, probs,
               target) -> "EntropyFigure":
        self.curve.set_ydata(_np(entropy_curve))
        self.zero.set_ydata(_np(zero_curve))
        self.limit.set_ydata([limit, limit])
        for bars, heights in ((self.bars, probs), (self.target, target)):
            for bar, p in zip(bars, _np(heights)):
                bar.set_height(p)
        return self


def plot_entropy_runs(result: dict) -> Figure:
    """Entropy over training for each ent_coef (result of ``entropy_bonus_run``), with the
    entropy of each coefficient's optimum softmax(r / c) dashed."""
    fig, ax = _figure(6.5, 3.4)
    ent = _np(result["entropy"])
    cmap = ["tab:red", "tab:orange", "tab:blue", "tab:purple", "tab:green", "tab:brown"]
    for k, coef in enumerate(_np(result["ent_coefs"])):
        color = cmap[k % len(cmap)]
        ax.plot(ent[k], color=color, lw=2, label=f"ent_coef = {coef:g}")
        ax.axhline(float(_np(result["limit_entropy"])[k]), color=color, ls="--", lw=1)
    ax.set_xlabel("training step")
    ax.set_ylabel("entropy H(pi) (nats)")
    ax.set_title("The entropy bonus holds the policy near softmax(r / ent_coef) (dashed)")
    ax.legend(fontsize=8)
    return fig
