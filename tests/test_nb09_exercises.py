"""Notebook 09's self-check accepts a right interval and names what is wrong otherwise."""

import math

import pytest

from rlviz.exercises.common import ExerciseError
from rlviz.exercises.dynamics import check_mean_interval
from rlviz.experiments.stats import t_quantile_975


def interval(values, divisor_offset=1, factor=None):
    n = len(values)
    mean = sum(values) / n
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - divisor_offset))
    half = (t_quantile_975(n - 1) if factor is None else factor) * s / math.sqrt(n)
    return mean, mean - half, mean + half


def test_a_right_answer_passes(capsys):
    check_mean_interval(interval)
    assert "Correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda v: interval(v, divisor_offset=0), ["sample std", "n - 1"]),
    (lambda v: interval(v, factor=1.96), ["t_(0.975"]),
    (lambda v: sum(v) / len(v), ["tuple"]),
])
def test_wrong_answers_are_explained(wrong, words):
    with pytest.raises(ExerciseError) as error:
        check_mean_interval(wrong)
    for word in words:
        assert word in str(error.value)
