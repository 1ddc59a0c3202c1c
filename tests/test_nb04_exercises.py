"""Notebook 04's self-checks accept correct answers and reject typical mistakes, saying why."""

import math

import pytest
import torch

from rlviz.exercises.common import ExerciseError
from rlviz.exercises.kl import (
    check_adaptive_kl_update,
    check_gaussian_k3_spread,
    check_kl_estimators,
    check_uniform_k1_expectation,
)


def good_kl(logp, ref_logp, kind):
    d = ref_logp - logp
    return {"k1": -d, "k2": d**2 / 2, "k3": torch.exp(d) - 1 - d}[kind]


def test_kl_estimators_check():
    assert check_kl_estimators(good_kl).startswith("Correct")

    def wrong_direction(logp, ref_logp, kind):  # r = pi / ref instead of ref / pi
        return good_kl(ref_logp, logp, kind) if kind == "k3" else good_kl(logp, ref_logp, kind)

    with pytest.raises(ExerciseError, match="k3"):
        check_kl_estimators(wrong_direction)

    def k2_without_half(logp, ref_logp, kind):
        return (logp - ref_logp) ** 2 if kind == "k2" else good_kl(logp, ref_logp, kind)

    with pytest.raises(ExerciseError, match="k2"):
        check_kl_estimators(k2_without_half)
    with pytest.raises(ExerciseError, match="tensor"):
        check_kl_estimators(lambda logp, ref_logp, kind: 0.0)


def test_gaussian_k3_spread_check():
    def good(mu):
        return math.sqrt(math.expm1(mu * mu) - mu * mu) / (mu * mu / 2)

    assert check_gaussian_k3_spread(good).startswith("Correct")
    with pytest.raises(ExerciseError, match="mu = 0.1"):
        check_gaussian_k3_spread(lambda mu: math.sqrt(2 + mu * mu))  # k2's answer


def test_uniform_k1_expectation_check():
    assert check_uniform_k1_expectation(
        lambda pi, ref: (pi.log() - ref.log()).mean().item()).startswith("Correct")
    with pytest.raises(ExerciseError, match="uniform"):
        check_uniform_k1_expectation(lambda pi, ref: (pi * (pi.log() - ref.log())).sum().item())
    with pytest.raises(ExerciseError, match="E_U"):
        check_uniform_k1_expectation(lambda pi, ref: (pi.log() - ref.log()).sum().item())


def test_adaptive_kl_update_check():
    def good(beta, kl, target, n_steps, horizon):
        return beta * (1 + min(max(kl / target - 1, -0.2), 0.2) * n_steps / horizon)

    assert check_adaptive_kl_update(good).startswith("Correct")

    def unclipped(beta, kl, target, n_steps, horizon):
        return beta * (1 + (kl / target - 1) * n_steps / horizon)

    with pytest.raises(ExerciseError, match="clipped"):
        check_adaptive_kl_update(unclipped)
    with pytest.raises(ExerciseError, match="new beta"):
        check_adaptive_kl_update(lambda beta, kl, target, n, h: beta)
