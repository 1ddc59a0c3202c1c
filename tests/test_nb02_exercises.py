"""Notebook 02's self-checks: right answers pass, the usual mistakes get named."""

import math

import pytest
import torch
from references import loop_gae as good_gae

from rlviz.exercises.common import ExerciseError
from rlviz.exercises.policy_gradient import check_gae, check_score_function, check_value_loss

# ---- the score function --------------------------------------------------------------


def good_score(logits, action):
    z = logits.tolist()
    e = [math.exp(x - max(z)) for x in z]
    p = [x / sum(e) for x in e]
    return [(k == action) - p[k] for k in range(len(z))]


def test_score_passes_a_correct_answer(capsys):
    check_score_function(good_score)
    assert capsys.readouterr().out.startswith("Correct")


@pytest.mark.parametrize("wrong,message", [
    (lambda z, a: [-x for x in good_score(z, a)], "sign is flipped"),
    (lambda z, a: torch.nn.functional.one_hot(torch.tensor(a), len(z)).double(), "onehot"),
    (lambda z, a: [x if k == a else 0.0 for k, x in enumerate(good_score(z, a))],
     "The others are -pi"),
    (lambda z, a: [0.0] * len(z), "expected"),
    (lambda z, a: [0.0], "shape"),
    (lambda z, a: 1 / 0, "ZeroDivisionError"),
    (lambda z, a: "text", "return numbers"),
])
def test_score_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_score_function(wrong)


# ---- GAE -----------------------------------------------------------------------------




def td_only(rewards, values, gamma, lam):
    nxt = values[1:] + [0.0]
    return [r + gamma * n - v for r, n, v in zip(rewards, nxt, values)]


def returns_instead(rewards, values, gamma, lam):
    return [a + v for a, v in zip(good_gae(rewards, values, gamma, lam), values)]


def forward(rewards, values, gamma, lam):
    delta = td_only(rewards, values, gamma, lam)
    out, running = [], 0.0
    for d in delta:
        running = d + gamma * lam * running
        out.append(running)
    return out


def no_gamma(rewards, values, gamma, lam):
    delta = td_only(rewards, values, gamma, lam)
    out, running = [0.0] * len(delta), 0.0
    for t in reversed(range(len(delta))):
        running = delta[t] + lam * running
        out[t] = running
    return out


def bootstrap(rewards, values, gamma, lam):
    nxt = values[1:] + [values[-1]]
    delta = [r + gamma * n - v for r, n, v in zip(rewards, nxt, values)]
    out, running = [0.0] * len(delta), 0.0
    for t in reversed(range(len(delta))):
        running = delta[t] + gamma * lam * running
        out[t] = running
    return out


def test_gae_passes_a_correct_answer_and_is_hand_checked(capsys):
    check_gae(good_gae)
    assert capsys.readouterr().out.startswith("Correct")
    # the exercise's episode at gamma = 1, lam = 1: A_t = (sum of rewards from t) - V_t
    rewards, values = [0.0, -0.1, 0.0, 1.0], [0.5, 0.6, 0.4, 0.8]
    assert good_gae(rewards, values, 1.0, 1.0) == pytest.approx(
        [0.9 - 0.5, 0.9 - 0.6, 1.0 - 0.4, 1.0 - 0.8])


@pytest.mark.parametrize("wrong,message", [
    (td_only, "TD errors"),
    (returns_instead, "returns"),
    (forward, "forward"),
    (no_gamma, "gamma \\* lam"),
    (bootstrap, "V_T = 0"),
    (lambda rewards, values, gamma, lam: [0.0] * 3, "shape"),
])
def test_gae_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_gae(wrong)


# ---- the clipped value loss ------------------------------------------------------------


def good_value_loss(v, v_old, ret, clip):
    v_clipped = min(max(v, v_old - clip), v_old + clip)
    return 0.5 * max((v - ret) ** 2, (v_clipped - ret) ** 2)


def test_value_loss_passes_a_correct_answer(capsys):
    check_value_loss(good_value_loss)
    assert capsys.readouterr().out.startswith("Correct")


@pytest.mark.parametrize("wrong,message", [
    (lambda v, o, r, c: 0.5 * min((v - r) ** 2, (min(max(v, o - c), o + c) - r) ** 2),
     "min"),
    (lambda v, o, r, c: 2 * good_value_loss(v, o, r, c), "0.5 is missing"),
    (lambda v, o, r, c: 0.5 * max((v - r) ** 2, (min(max(v, r - c), r + c) - r) ** 2),
     "OLD value"),
    (lambda v, o, r, c: 0.5 * (v - r) ** 2, "plain squared error"),
    (lambda v, o, r, c: 0.5 * max((v - r) ** 2, (min(max(v, o - c), o + c) - r) ** 2) + 0.1,
     "expected"),
])
def test_value_loss_names_the_mistake(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        check_value_loss(wrong)
