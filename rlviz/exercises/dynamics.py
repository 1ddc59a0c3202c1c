"""Self-check of notebook 09: the 95% t interval of a mean over seeds."""

from __future__ import annotations

import math

from ..experiments.stats import t_quantile_975
from .common import ExerciseError, call_reader, check_close


def check_mean_interval(fn) -> None:
    """``fn(values) -> (mean, low, high)``: the 95% t interval of the mean of a list of
    per-seed numbers. Checked on cases worked out by hand (t_{0.975, df} from the table)."""
    cases = [
        ([1.0, 2.0, 3.0, 4.0], 2.5, 3.182 * math.sqrt(5 / 3) / 2),  # s^2 = 5/3, n = 4
        ([0.8, 0.8, 0.8], 0.8, 0.0),  # no spread, no width
        ([0.0, 1.0], 0.5, 12.706 * math.sqrt(0.5) / math.sqrt(2)),  # df = 1: very wide
    ]
    for values, mean, half in cases:
        got = call_reader(fn, f"values {values}", list(values))
        if not isinstance(got, tuple) or len(got) != 3:
            raise ExerciseError(f"values {values}: return a tuple (mean, low, high), got {got!r}")
        hint = ("the half-width is t_{0.975, n-1} * s / sqrt(n), with s the sample std "
                f"(divisor n - 1); t_(0.975, {len(values) - 1}) = "
                f"{t_quantile_975(len(values) - 1)}")
        check_close(f"values {values}", [float(x) for x in got],
                    [mean, mean - half, mean + half], atol=1e-3, hint=hint)
    print("Correct: mean +- t_{0.975, n-1} s / sqrt(n) on all 3 cases.")
