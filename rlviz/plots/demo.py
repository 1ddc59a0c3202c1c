"""Figures of notebook 00: the demo's mask and its printed loss per step."""

from __future__ import annotations

from matplotlib.figure import Figure

ALGO_COLORS = {"ppo": "tab:blue", "grpo": "tab:orange"}


def plot_mask(mask, input_len: int) -> Figure:
    """The response mask (B, T) as an image: prompt positions 0, response positions 1."""
    fig = Figure(figsize=(7, 2.4), dpi=90, layout="constrained")
    ax = fig.subplots()
    ax.imshow(mask.cpu().numpy(), cmap="Greys", vmin=0, vmax=1.6, aspect="auto",
              interpolation="nearest")
    ax.axvline(input_len - 0.5, color="tab:red", lw=1.5)
    ax.text(input_len / 2 - 0.5, -0.8, "prompt (mask 0)", ha="center", fontsize=9)
    ax.text((input_len + mask.shape[1]) / 2, -0.8, "response (mask 1)", ha="center", fontsize=9)
    ax.set_xlabel("position t")
    ax.set_ylabel("row i of the batch")
    ax.set_title("compute_mask(bs=8, seq_len=32, input_len=8)", pad=16)
    return fig


def plot_demo_losses(losses_by_algo: dict) -> Figure:
    """The loss ``train_step`` returns, per step, one line per algorithm."""
    fig = Figure(figsize=(7, 2.8), dpi=90, layout="constrained")
    ax = fig.subplots()
    for algo, losses in losses_by_algo.items():
        ax.plot(range(len(losses)), losses, "o-", label=f'cfg.algo = "{algo}"',
                color=ALGO_COLORS.get(algo))
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.set_xlabel("step")
    ax.set_ylabel("loss.item()")
    ax.set_title("The demo's printed loss: rounding noise around zero")
    ax.legend()
    return fig
