"""Notebook 05's self-checks: correct answers pass, typical mistakes fail with a hint."""

import pytest
import torch

from rlviz.exercises.common import ExerciseError
from rlviz.exercises.groups import (
    check_aggregation_weights,
    check_expected_abs_advantage,
    check_group_advantages,
)


def advantages(rewards, group_size, use_std, unbiased=True, per_group=True):
    """A plain-loop solution with switches for the usual mistakes."""
    out = []
    for start in range(0, len(rewards), group_size):
        group = [float(r) for r in rewards[start:start + group_size]]
        pool = group if per_group else [float(r) for r in rewards]
        mean = sum(pool) / len(pool)
        if use_std:
            n = len(pool) - 1 if unbiased else len(pool)
            std = (sum((r - mean) ** 2 for r in pool) / n) ** 0.5
            out += [0.0 if std == 0 else (r - mean) / (std + 1e-6) for r in group]
        else:
            out += [r - mean for r in group]
    return torch.tensor(out)


def test_group_advantages_correct_solution_passes():
    assert check_group_advantages(advantages).startswith("Correct")


def test_group_advantages_batch_centring_is_named():
    with pytest.raises(ExerciseError, match="whole batch"):
        check_group_advantages(lambda r, g, s: advantages(r, g, s, per_group=False))


def test_group_advantages_population_std_is_named():
    with pytest.raises(ExerciseError, match="unbiased"):
        check_group_advantages(lambda r, g, s: advantages(r, g, s, unbiased=False))


def test_group_advantages_nan_on_all_equal_group_is_caught():
    def nan_version(rewards, group_size, use_std):
        grouped = rewards.view(-1, group_size)
        centred = grouped - grouped.mean(dim=1, keepdim=True)
        if use_std:
            centred = centred / grouped.std(dim=1, keepdim=True)
        return centred.reshape(-1)

    with pytest.raises(ExerciseError, match="NaN"):
        check_group_advantages(nan_version)


def test_group_advantages_crash_is_reported():
    def broken(rewards, group_size, use_std):
        raise RuntimeError("oops")

    with pytest.raises(ExerciseError, match="RuntimeError: oops"):
        check_group_advantages(broken)


def weights(lengths, mode, max_len, count_empty=False):
    rows, non_empty = [], sum(1 for n in lengths if n > 0) if not count_empty else len(lengths)
    for n in lengths:
        w = {"seq-mean-token-mean": 1 / (n * non_empty) if n else 0.0,
             "token-mean": 1 / sum(lengths),
             "seq-mean-token-sum": 1 / non_empty,
             "seq-mean-token-sum-norm": 1 / (len(lengths) * max_len)}[mode]
        rows.append([w if t < n else 0.0 for t in range(max_len)])
    return torch.tensor(rows, dtype=torch.float64)


def test_aggregation_weights_correct_solution_passes():
    assert check_aggregation_weights(weights).startswith("Correct")


def test_aggregation_weights_counting_empty_responses_fails():
    with pytest.raises(ExerciseError, match="empty response"):
        check_aggregation_weights(lambda n, m, t: weights(n, m, t, count_empty=True))


def test_aggregation_weights_wrong_mode_is_named():
    def always_token_mean(lengths, mode, max_len):
        return weights(lengths, "token-mean", max_len)

    with pytest.raises(ExerciseError, match="'token-mean', not of 'seq-mean-token-mean'"):
        check_aggregation_weights(always_token_mean)


def test_aggregation_weights_padding_must_be_zero():
    def padded(lengths, mode, max_len):
        return weights(lengths, mode, max_len) + 0.01

    with pytest.raises(ExerciseError, match="Padding"):
        check_aggregation_weights(padded)


def test_expected_abs_advantage():
    assert check_expected_abs_advantage(lambda p, g: 2 * (g - 1) * p * (1 - p)).startswith(
        "Correct")
    with pytest.raises(ExerciseError, match="E\\[k\\^2\\]"):
        check_expected_abs_advantage(lambda p, g: 2 * g * p * (1 - p))
    with pytest.raises(ExerciseError, match="return a number"):
        check_expected_abs_advantage(lambda p, g: "0.5")
