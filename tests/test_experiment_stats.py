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


def hand_table():
    """Two configs x 3 seeds x 3 steps, numbers chosen so the bands are easy by hand."""
    from rlviz.experiments.runner import ResultTable

    spec = {"configs": {"a": {}, "b": {}}, "seeds": [0, 1, 2],
            "metrics": ["reward", "samples_generated"]}
    records = [
        {"config": "a", "seed": s, "metrics": {"reward": [0.0 + d, 0.5 + d, 1.0 + d],
                                               "samples_generated": [10, 10, 10]}}
        for s, d in enumerate((-0.02, 0.0, 0.02))
    ] + [
        {"config": "b", "seed": s, "metrics": {"reward": [0.0 + d, 0.0 + d, 0.0 + d],
                                               "samples_generated": [10, 20, 30]}}
        for s, d in enumerate((-0.01, 0.0, 0.01))
    ]
    return ResultTable.from_records({"experiment": spec}, records)


def test_bands_apart_and_the_final_difference_by_hand():
    from rlviz.experiments.dynamics import bands_apart, difference_statement, final_difference

    table = hand_table()
    # step 0: {-0.02, 0, 0.02} vs {-0.01, 0, 0.01} (both bands hold 0); steps 1, 2 are
    # 0.5 and 1.0 apart
    assert bands_apart(table, "reward", "a", "b") == (2, 3)
    # last 2 steps: a's seeds average 0.73, 0.75, 0.77 (s^2 = 4e-4); b's -0.01, 0, 0.01
    # (s^2 = 1e-4); squared standard errors 4e-4 / 3 and 1e-4 / 3
    diff, low, high = final_difference(table, "reward", "a", "b", last=2)
    var_a, var_b = 4e-4 / 3, 1e-4 / 3
    welch_df = (var_a + var_b) ** 2 / (var_a ** 2 / 2 + var_b ** 2 / 2)  # 25 / 8.5 = 2.94
    assert diff == pytest.approx(0.75)
    assert (high - low) / 2 == pytest.approx(
        t_quantile_975(int(welch_df)) * math.sqrt(var_a + var_b))  # df rounded down: 2
    assert "excludes 0" in difference_statement("a - b", (diff, low, high))
    assert "not visible on this toy" in difference_statement("x", (0.1, -0.2, 0.4))


def test_against_bands_on_cumulative_samples():
    from rlviz.experiments.dynamics import against_bands

    bands = against_bands(hand_table(), "reward", "samples_generated", ["b"], points=3,
                          cumulative=True)
    x, mean, low, high = bands["b"]
    # b's cumulative samples are 10, 30, 60: the grid runs from 10 to 60
    assert list(x) == pytest.approx([10.0, 35.0, 60.0])
    assert list(mean) == pytest.approx([0.0, 0.0, 0.0])


def test_comparison_lines_and_count_apart():
    from rlviz.experiments.dynamics import comparison_lines, count_apart

    (line,) = comparison_lines(hand_table(), "reward", "b", last=2)
    assert line.startswith("reward, a vs b: bands apart at 2 of 3 steps; last 2 steps, "
                           "difference: +0.750, 95% CI [")
    assert line.endswith("the interval excludes 0")
    band = ([0, 1], [0.0, 0.0], [-1.0, -0.1], [1.0, 0.1])
    assert count_apart(band, ([0, 1], [0.5, 0.5], [0.4, 0.4], [0.6, 0.6])) == (1, 2)
    with pytest.raises(ValueError, match="same x"):
        count_apart(band, ([0, 2], [0, 0], [0, 0], [0, 0]))
