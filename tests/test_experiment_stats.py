"""Statistics over seeds against values worked out by hand."""

import math

import numpy as np
import pytest

from rlviz.experiments.dynamics import intervals_overlap
from rlviz.experiments.stats import interpolate_on, mean_ci, steps_to_threshold, t_quantile_975
from rlviz.plots.dynamics import plot_mean_bands, plot_threshold_distribution


def test_mean_ci_by_hand():
    # 1, 2, 3, 4: mean 2.5, s^2 = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3, t_{0.975,3} = 3.182
    mean, low, high = mean_ci(np.array([[1.0], [2.0], [3.0], [4.0]]))
    half = 3.182 * math.sqrt(5 / 3) / 2
    assert mean[0] == pytest.approx(2.5)
    assert (low[0], high[0]) == pytest.approx((2.5 - half, 2.5 + half))


def test_mean_ci_skips_nans_and_a_single_value_has_no_width():
    mean, low, high = mean_ci(np.array([[1.0, 5.0], [3.0, np.nan]]))
    assert mean.tolist() == [2.0, 5.0]
    assert high[0] - mean[0] == pytest.approx(12.706 * math.sqrt(2.0) / math.sqrt(2))
    assert low[1] == high[1] == 5.0
    with pytest.raises(ValueError, match="values"):
        mean_ci(np.array([[np.nan], [np.nan]]))


def test_t_quantiles_from_the_table():
    assert t_quantile_975(9) == 2.262  # 10 seeds
    assert t_quantile_975(1000) == 1.96
    with pytest.raises(ValueError, match="df"):
        t_quantile_975(0)


def test_steps_to_threshold_by_hand():
    rewards = [0.1, 0.9, 0.9, 0.95, 0.85, 1.0]
    assert steps_to_threshold(rewards, 0.9, window=1) == 2
    assert steps_to_threshold(rewards, 0.9, window=2) == 3
    assert steps_to_threshold(rewards, 0.9, window=3) == 4  # (0.9 + 0.9 + 0.95) / 3
    assert steps_to_threshold(rewards, 0.99, window=2) is None
    with pytest.raises(ValueError, match="window"):
        steps_to_threshold(rewards, 0.9, window=0)


def test_interpolate_on_a_common_time_grid():
    grid = np.array([0.0, 1.0, 1.5, 3.0])
    out = interpolate_on([[1.0, 2.0]], [[10.0, 20.0]], grid)
    assert np.isnan(out[0, 0]) and np.isnan(out[0, 3])
    assert out[0, 1:3].tolist() == [10.0, 15.0]


def test_intervals_overlap():
    assert intervals_overlap((1, 0, 2), (3, 1.5, 4))
    assert not intervals_overlap((1, 0, 2), (3, 2.5, 4))


def test_plots_draw_one_band_and_one_row_per_config():
    x = np.arange(4)
    fig = plot_mean_bands({"a": (x, x, x - 1, x + 1), "b": (x, -x, -x - 1, -x + 1)},
                          threshold=0.9)
    ax = fig.axes[0]
    assert len(ax.collections) == 2 and len(ax.lines) == 3  # 2 means + the threshold
    fig = plot_threshold_distribution({"a": [3, 4, None], "b": [None, None]}, budget=10)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["a (1 not reached)", "b (2 not reached)"]
    with pytest.raises(ValueError, match="bands"):
        plot_mean_bands({})
    with pytest.raises(ValueError, match="bands"):
        plot_mean_bands({"a": ([0, 1], [0], [0], [0])})
    with pytest.raises(ValueError, match="steps"):
        plot_threshold_distribution({}, budget=3)
