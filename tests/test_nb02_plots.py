"""Notebook 02's figures: each plot function draws what it is given."""

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from rlviz.experiments import policy_gradient as pg
from rlviz.plots import policy_gradient as plots
from rlviz.widgets.common import render_png

PROBLEM = pg.one_token_problem()


def rendered(fig):
    assert isinstance(fig, Figure)
    assert render_png(fig)[:4] == b"\x89PNG"
    return fig


def test_gradient_alignment_histograms_the_cosines():
    exact = pg.exact_gradient(PROBLEM)
    est = {b: pg.score_function_estimates(PROBLEM, num_seeds=300, baseline=b)
           for b in ("none", "expected")}
    fig = rendered(plots.plot_gradient_alignment(est, exact))
    # the cosines, by a plain loop in float64
    g = exact.tolist()
    loop = []
    for row in est["none"].tolist():
        dot = sum(a * b for a, b in zip(row, g, strict=True))
        norms = math.sqrt(sum(a * a for a in row)) * math.sqrt(sum(b * b for b in g))
        loop.append(dot / norms if norms > 0 else 0.0)
    assert np.allclose(plots.cosines(est["none"], exact), loop, rtol=0, atol=1e-12)
    stats = pg.estimator_stats(est["none"], exact)
    assert abs(stats["cosine"] - sum(loop) / len(loop)) < 1e-12
    assert abs(stats["wrong_way"] - sum(c < 0 for c in loop) / len(loop)) < 1e-12
    # one filled histogram per estimator, plus the shaded "wrong way" span
    assert len(fig.axes[0].patches) >= 2
    assert fig.axes[0].get_xlim() == (-0.5, 1.0)


def test_static_figures_render():
    grid = torch.linspace(-0.5, 1.2, 11, dtype=torch.float64)
    rendered(plots.plot_baseline_variance(grid, pg.baseline_variance(PROBLEM, grid),
                                          {"none": (0.0, 0.17)}, 0.37, 0.33))
    reuse = pg.importance_reuse(PROBLEM, [0, 1, 2], num_seeds=200)
    fig = rendered(plots.plot_importance_reuse(reuse))
    assert np.allclose(fig.axes[0].lines[0].get_ydata(), reuse["naive_bias"].numpy())
    runs = {loss: pg.epochs_on_one_batch(PROBLEM, loss, epochs=5) for loss in pg.EPOCH_LOSSES}
    rendered(plots.plot_epochs_on_one_batch(runs))
    rendered(plots.plot_value_clip(pg.value_clip_curve()))
    rendered(plots.plot_entropy_runs(pg.entropy_bonus_run(PROBLEM, [0.0, 0.5], steps=5)))
    rendered(plots.plot_estimator_comparison({"a critic": (1.0, 0.4), "GRPO G=4": (0.75, 1.0)}))


def test_gae_figure_updates_in_place():
    study = pg.gae_study(num_episodes=500)
    lams = [i / 20 for i in range(21)]
    live = plots.GaeFigure(8, len(lams))
    for lam in (0.0, 0.95):
        episode = pg.example_episode(study, 1.0, lam, 0.5)
        stats = pg.gae_gradient_stats(study, 1.0, lams, 0.5)
        live.update(episode, stats, lam, 1.0, 0.5)
        assert np.allclose(live.gae.get_ydata(), episode["advantages"].numpy())
        assert np.allclose(live.mse.get_ydata(), stats["mse"].numpy())
        assert live.lam_line.get_xdata()[0] == lam
    assert len(live.figure.axes) == 2
    rendered(live.figure)
