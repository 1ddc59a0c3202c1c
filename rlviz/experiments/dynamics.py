"""Summaries of multi-seed experiments (``rlviz.experiments.runner.ResultTable``): mean
curves with 95% bands, steps and seconds to a threshold, final values with intervals.
The figures are in ``rlviz.plots.dynamics``."""

from __future__ import annotations

import math

import numpy as np

from .runner import ResultTable
from .stats import difference_ci, interpolate_on, mean_ci, steps_to_threshold


def _configs(table: ResultTable, configs):
    return table.configs if configs is None else tuple(configs)


def curve_bands(table: ResultTable, metric: str = "reward", configs=None) -> dict:
    """config -> ``(steps, mean, low, high)`` of ``metric`` over the seeds (95% t band).
    Steps where a metric was not measured (NaN in every seed) are left out."""
    bands = {}
    for config in _configs(table, configs):
        steps, values = table.matrix(config, metric)  # (n,), (seeds, n)
        measured = ~np.all(np.isnan(values), axis=0)
        mean, low, high = mean_ci(values[:, measured])
        bands[config] = (steps[measured], mean, low, high)
    return bands


def time_bands(table: ResultTable, metric: str = "reward", configs=None, points: int = 60,
               until: float | None = None) -> dict:
    """config -> ``(seconds, mean, low, high)``: ``metric`` against wall-clock seconds,
    each run interpolated on a common grid up to the time every seed of the config reached
    (or ``until``)."""
    return against_bands(table, metric, "seconds", configs, points, until)


def against_bands(table: ResultTable, metric: str, x_metric: str, configs=None,
                  points: int = 60, until: float | None = None,
                  cumulative: bool = False, start: float | None = None) -> dict:
    """config -> ``(x, mean, low, high)``: ``metric`` against another per-step column
    ``x_metric`` that grows along each run (``"seconds"``, or ``"samples_generated"`` with
    ``cumulative=True``: summed over the steps), each run interpolated on a common grid up
    to the x every seed of the config reached (or ``until``), from the first x every seed
    has (or ``start``; give both to put several configs on one grid)."""
    bands = {}
    for config in _configs(table, configs):
        _, x_runs = table.matrix(config, x_metric)  # (seeds, n)
        if cumulative:
            x_runs = np.cumsum(x_runs, axis=1)
        _, values = table.matrix(config, metric)
        end = x_runs[:, -1].min() if until is None else until
        grid = np.linspace(x_runs[:, 0].max() if start is None else start, end, points)
        on_grid = interpolate_on(x_runs, values, grid)  # (seeds, points)
        keep = ~np.any(np.isnan(on_grid), axis=0)
        mean, low, high = mean_ci(on_grid[:, keep])
        bands[config] = (grid[keep], mean, low, high)
    return bands


def count_apart(band_a: tuple, band_b: tuple) -> tuple[int, int]:
    """``(apart, points)``: at how many points two bands ``(x, mean, low, high)`` on the
    same x do not overlap, of how many."""
    (x_a, _, low_a, high_a), (x_b, _, low_b, high_b) = (
        [np.asarray(v, dtype=float) for v in band] for band in (band_a, band_b))
    if len(x_a) != len(x_b) or not np.allclose(x_a, x_b):
        raise ValueError("band_a and band_b must be on the same x points")
    return int(((low_a > high_b) | (low_b > high_a)).sum()), len(x_a)


def bands_apart(table: ResultTable, metric: str, a: str, b: str) -> tuple[int, int]:
    """``(apart, measured)``: at how many of the measured steps the 95% bands of configs
    ``a`` and ``b`` do not overlap, of how many."""
    bands = curve_bands(table, metric, [a, b])
    return count_apart(bands[a], bands[b])


def comparison_lines(table: ResultTable, metric: str, reference: str, configs=None,
                     last: int = 10) -> list[str]:
    """One line per config other than ``reference``: at how many steps the 95% bands of
    ``metric`` separate, and the Welch interval of the difference of the last ``last``
    steps' means (``difference_statement``)."""
    lines = []
    for config in _configs(table, configs):
        if config == reference:
            continue
        apart, steps = bands_apart(table, metric, config, reference)
        lines.append(f"{metric}, {config} vs {reference}: bands apart at {apart} of {steps} "
                     "steps; " + difference_statement(
                         f"last {last} steps, difference",
                         final_difference(table, metric, config, reference, last)))
    return lines


def final_difference(table: ResultTable, metric: str, a: str, b: str,
                     last: int = 10) -> tuple[float, float, float]:
    """``(diff, low, high)``: config ``a`` minus config ``b`` of each seed's mean of
    ``metric`` over its last ``last`` measured steps, with its 95% Welch t interval."""
    return difference_ci(per_seed_final(table, a, metric, last),
                         per_seed_final(table, b, metric, last))


def difference_statement(label: str, diff: tuple[float, float, float]) -> str:
    """One line saying what a Welch interval ``(diff, low, high)`` shows: a difference when
    it excludes 0, "not visible on this toy" when it contains 0."""
    d, low, high = diff
    verdict = ("the interval excludes 0" if low > 0 or high < 0
               else "the interval contains 0: not visible on this toy")
    return f"{label}: {d:+.3f}, 95% CI [{low:+.3f}, {high:+.3f}]; {verdict}"


def threshold_steps(table: ResultTable, threshold: float = 0.9, window: int = 5,
                    configs=None) -> dict:
    """config -> one entry per seed: steps until the ``window``-step mean reward first
    reaches ``threshold`` (None if never)."""
    out = {}
    for config in _configs(table, configs):
        runs = table.runs(config)
        out[config] = [steps_to_threshold([r["reward"] for r in rows], threshold, window)
                       for rows in runs.values()]
    return out


def threshold_seconds(table: ResultTable, threshold: float = 0.9, window: int = 5,
                      configs=None) -> dict:
    """config -> one entry per seed: wall seconds at that step (None if never reached)."""
    out = {}
    for config in _configs(table, configs):
        runs = table.runs(config)
        values = []
        for rows in runs.values():
            steps = steps_to_threshold([r["reward"] for r in rows], threshold, window)
            values.append(None if steps is None else rows[steps - 1]["seconds"])
        out[config] = values
    return out


def per_seed_means(table: ResultTable, config: str, metric: str, pick) -> list[float]:
    """One number per seed: the mean of the measured values of ``metric`` (NaN steps
    skipped) that ``pick(values)`` selects; NaN when it selects none."""
    out = []
    for rows in table.runs(config).values():
        chosen = pick([r[metric] for r in rows if not math.isnan(r[metric])])
        out.append(sum(chosen) / len(chosen) if chosen else math.nan)
    return out


def per_seed_final(table: ResultTable, config: str, metric: str, last: int = 10) -> list[float]:
    """One number per seed: the mean of ``metric`` over the run's last ``last`` measured
    steps (NaN steps skipped; NaN when the run never measured it)."""
    return per_seed_means(table, config, metric, lambda values: values[-last:])


def _interval_of_run_means(table: ResultTable, metric: str, pick, configs) -> dict:
    """config -> ``(mean, low, high)`` over seeds of each run's mean of the measured values
    ``pick(values)`` selects (``per_seed_means``)."""
    out = {}
    for config in _configs(table, configs):
        per_seed = per_seed_means(table, config, metric, pick)
        mean, low, high = mean_ci(np.array(per_seed)[:, None])
        out[config] = (float(mean[0]), float(low[0]), float(high[0]))
    return out


def final_values(table: ResultTable, metric: str, last: int = 1, configs=None) -> dict:
    """config -> ``(mean, low, high)`` over seeds of the mean of ``metric`` over each
    run's last ``last`` measured steps."""
    return _interval_of_run_means(table, metric, lambda values: values[-last:], configs)


def window_values(table: ResultTable, metric: str, first: int, last: int | None,
                  configs=None) -> dict:
    """config -> ``(mean, low, high)`` over seeds of each run's mean of ``metric`` over
    steps ``first .. last - 1`` (for metrics measured at every step)."""
    return _interval_of_run_means(table, metric, lambda values: values[first:last], configs)


def median_or_none(values) -> float | None:
    """Median over seeds, a run that never reached the threshold counting as infinitely
    slow; ``None`` when half or more never reached it."""
    finite = sorted(v for v in values if v is not None)
    padded = finite + [math.inf] * (len(values) - len(finite))
    median = float(np.median(padded))
    return None if math.isinf(median) else median


def intervals_overlap(a: tuple, b: tuple) -> bool:
    """Whether two ``(mean, low, high)`` intervals overlap."""
    return a[1] <= b[2] and b[1] <= a[2]
