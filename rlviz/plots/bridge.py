"""Notebook 10's figure: what TRL's GRPOTrainer logged, step by step, for two runs."""

from __future__ import annotations

import matplotlib.pyplot as plt


def plot_trl_logs(runs: dict, keys=("loss", "clip_ratio/region_mean")):
    """One panel per logged metric ``keys``; one line per run.

    ``runs``: name -> TRL ``log_history`` (a list of dicts with ``"step"``).
    """
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.0))
    for ax, key in zip(axes, keys):
        steps = set()
        for name, history in runs.items():
            points = [(row["step"], row[key]) for row in history if key in row]
            steps |= {s for s, _ in points}
            ax.plot([s for s, _ in points], [v for _, v in points], marker="o", ms=8,
                    linestyle="none", label=name)
        ax.set_xticks(sorted(steps))
        ax.set_xlim(min(steps, default=0) - 0.5, max(steps, default=1) + 0.5)
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlabel("optimizer step")
        ax.set_title(f"TRL logged '{key}'")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
