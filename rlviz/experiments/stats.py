"""Statistics over seeds: means with 95% confidence intervals, steps to a threshold.

A run is one seed; the seeds of a config are independent samples of its learning curve.
At each step, the 95% interval of the mean over n seeds is

    mean +- t_{0.975, n-1} * s / sqrt(n),      s = the sample std (divisor n - 1),

Student's t interval (it assumes the per-step values are roughly normal across seeds; with
10 seeds it is a statement about the mean curve, not about a single run).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

# Student's t quantile t_{0.975, df} for df = 1 .. 30 (the standard table, e.g. NIST/SEMATECH
# e-Handbook of Statistical Methods, section 1.3.6.7.2); above 30 the normal 1.96 is within 2%.
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}: the half-width factor of a two-sided 95% interval."""
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be a positive integer, got {df!r}")
    return T_975[df - 1] if df <= len(T_975) else 1.96


def mean_ci(values, axis: int = 0):
    """``(mean, low, high)`` of the 95% t interval of the mean along ``axis``; NaNs are
    left out per position. With one finite value the interval is that value (no width)."""
    values = np.asarray(values, dtype=float)
    finite = ~np.isnan(values)
    n = finite.sum(axis=axis)
    if np.any(n == 0):
        raise ValueError("values: a position has no finite value over the seeds")
    mean = np.nansum(values, axis=axis) / n
    centred = np.where(finite, values - np.expand_dims(mean, axis), 0.0)
    var = (centred ** 2).sum(axis=axis) / np.maximum(n - 1, 1)
    factor = np.array([t_quantile_975(int(k) - 1) if k > 1 else 0.0
                       for k in np.ravel(n)]).reshape(np.shape(n))
    half = factor * np.sqrt(var / n)
    return mean, mean - half, mean + half


def steps_to_threshold(rewards: Sequence[float], threshold: float = 0.9, window: int = 5):
    """Steps run until the mean of ``window`` consecutive rewards first reaches
    ``threshold`` (the window's last index + 1), ``None`` if never."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    for end in range(window, len(rewards) + 1):
        if math.fsum(rewards[end - window:end]) / window >= threshold:
            return end
    return None


def interpolate_on(x_runs, y_runs, grid):
    """Each run's y at the points ``grid`` of x (linear; NaN outside the run's x range),
    e.g. reward against wall-clock seconds, whose grid differs from run to run."""
    out = np.full((len(x_runs), len(grid)), np.nan)
    for i, (x, y) in enumerate(zip(x_runs, y_runs)):
        x, y = np.asarray(x, float), np.asarray(y, float)
        inside = (grid >= x[0]) & (grid <= x[-1])
        out[i, inside] = np.interp(grid[inside], x, y)
    return out


def difference_ci(a, b) -> tuple[float, float, float]:
    """Mean of ``a`` minus mean of ``b`` (independent samples, e.g. one value per seed) and
    its 95% Welch t interval ``(diff, low, high)``; the degrees of freedom are
    Welch-Satterthwaite's, rounded down."""
    a, b = [float(x) for x in a], [float(x) for x in b]
    if len(a) < 2 or len(b) < 2:
        raise ValueError("a and b need at least two values each")
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    var_a = sum((x - mean_a) ** 2 for x in a) / (len(a) - 1) / len(a)  # squared standard errors
    var_b = sum((x - mean_b) ** 2 for x in b) / (len(b) - 1) / len(b)
    se = math.sqrt(var_a + var_b)
    diff = mean_a - mean_b
    if se == 0:
        return diff, diff, diff
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (len(a) - 1) + var_b ** 2 / (len(b) - 1))
    half = t_quantile_975(max(1, int(df))) * se
    return diff, diff - half, diff + half
