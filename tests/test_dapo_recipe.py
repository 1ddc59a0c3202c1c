"""DAPO's soft overlong punishment, overlong filtering and the zero-std share: by hand
from the paper's eq. 13, and through the trainer."""

import math

import pytest
import torch

from rlviz.losses.dapo import soft_overlong_penalty, truncated, zero_std_groups
from rlviz.tasks import EOS, PAD
from rlviz.trainer import TrainConfig, train


def test_soft_overlong_penalty_by_hand():
    # L_max = 8, L_cache = 4: no penalty up to 4 tokens, then -(|y| - 4) / 4 down to -1
    lengths = torch.tensor([1, 4, 5, 6, 8])
    expected = [0.0, 0.0, -0.25, -0.5, -1.0]
    assert soft_overlong_penalty(lengths, 8, 4).tolist() == pytest.approx(expected)
    assert soft_overlong_penalty(lengths, 8, 4, factor=0.5).tolist() == pytest.approx(
        [x / 2 for x in expected])


def test_truncated_and_zero_std_groups():
    responses = torch.tensor([[1, EOS, PAD], [1, 2, 3], [EOS, PAD, PAD]])
    assert truncated(responses, EOS).tolist() == [False, True, False]
    rewards = torch.tensor([1.0, 1.0, 0.0, 0.5, 0.2, 0.2])
    assert zero_std_groups(rewards, 2).tolist() == [True, False, True]


@pytest.mark.parametrize("call, word", [
    (lambda: soft_overlong_penalty(torch.tensor([1]), 4, 5), "buffer"),
    (lambda: zero_std_groups(torch.zeros(5), 2), "group_size"),
    (lambda: TrainConfig(overlong_buffer=99).validate(), "overlong_buffer"),
])
def test_bad_input_names_the_argument(call, word):
    with pytest.raises((ValueError, TypeError)) as error:
        call()
    assert word in str(error.value)


TINY = dict(steps=2, samples_per_step=32, epochs=1, minibatches=2, eval_every=1,
            eval_prompts=8)


def test_the_trainer_reports_the_zero_std_share_and_runs_the_options():
    plain = train(TrainConfig(algo="dapo", **TINY), progress=False).metrics
    assert all(0.0 <= row["frac_reward_zero_std"] <= 1.0 for row in plain)
    dapo = train(TrainConfig(algo="dapo", overlong_filter=True, overlong_buffer=3, **TINY),
                 progress=False).metrics
    for row in dapo:
        assert all(math.isfinite(row[k]) for k in ("loss", "entropy", "reward"))
    # the options change the update, not the first step's sampled batch or its task reward
    assert dapo[0]["reward"] == plain[0]["reward"]
    assert dapo[1]["reward"] != plain[1]["reward"]
    ppo = train(TrainConfig(algo="ppo_gae", **TINY), progress=False).metrics
    assert math.isnan(ppo[0]["frac_reward_zero_std"])  # no groups: not defined
