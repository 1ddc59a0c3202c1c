"""Bad input: a clear ValueError / TypeError naming the argument, one test per kind of error."""

import pytest
import torch

import rlviz

B, T = 4, 5
logp = torch.zeros(B, T)
adv = torch.zeros(B)
mask = torch.ones(B, T)


def _raises(exc, func, *names):
    with pytest.raises(exc) as info:
        func()
    message = str(info.value)
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"
    return message


def test_mismatched_shapes_name_the_argument():
    _raises(ValueError, lambda: rlviz.kl_estimate(logp, torch.zeros(B, T + 1)), "ref_logp",
            "(4, 6)")
    _raises(ValueError, lambda: rlviz.clipped_surrogate(logp, torch.zeros(B, 1), adv),
            "old_logp")
    _raises(ValueError, lambda: rlviz.clipped_surrogate(logp, logp, torch.zeros(B + 1)),
            "advantages")
    _raises(ValueError, lambda: rlviz.clipped_surrogate(logp, logp, torch.zeros(B, T + 1)),
            "advantages")
    _raises(ValueError, lambda: rlviz.aggregate(logp, torch.ones(B, T + 1), "token-mean"),
            "mask")
    _raises(ValueError, lambda: rlviz.gae(logp, torch.zeros(B, T + 1), mask), "values")
    _raises(ValueError, lambda: rlviz.value_loss(logp, logp, torch.zeros(B, 1), mask),
            "returns")
    _raises(ValueError, lambda: rlviz.selective_log_prob(torch.zeros(B, T, 7),
                                                         torch.zeros(B, T + 1, dtype=torch.long)),
            "tokens")


def test_wrong_number_of_dimensions():
    _raises(ValueError, lambda: rlviz.group_advantages(torch.zeros(2, 2), 2), "rewards")
    _raises(ValueError, lambda: rlviz.aggregate(torch.zeros(B), mask, "token-mean"),
            "per_token_loss")


def test_integer_tensors_where_floats_are_needed_are_type_errors():
    ints = torch.zeros(B, T, dtype=torch.long)
    _raises(TypeError, lambda: rlviz.kl_estimate(ints, logp), "logp", "int64")
    _raises(TypeError, lambda: rlviz.clipped_surrogate(logp, logp, torch.zeros(B, dtype=torch.long)),
            "advantages")
    _raises(TypeError, lambda: rlviz.group_advantages(torch.tensor([1, 0]), 2), "rewards")
    _raises(TypeError, lambda: rlviz.selective_log_prob(torch.zeros(B, T, 3, dtype=torch.long),
                                                        ints), "logits")


def test_float_tokens_are_a_type_error():
    _raises(TypeError, lambda: rlviz.selective_log_prob(torch.zeros(B, T, 3), logp), "tokens")


def test_non_tensors_are_type_errors():
    _raises(TypeError, lambda: rlviz.kl_estimate([[0.0]], logp), "logp", "list")
    _raises(TypeError, lambda: rlviz.aggregate(logp, [[1.0]], "token-mean"), "mask")


def test_masks_must_be_zero_or_one():
    bad = mask.clone()
    bad[0, 0] = 0.5
    _raises(ValueError, lambda: rlviz.aggregate(logp, bad, "token-mean"), "mask", "0.5")
    _raises(ValueError, lambda: rlviz.clipped_surrogate(logp, logp, adv, mask=2 * mask), "mask")
    _raises(ValueError, lambda: rlviz.whiten(logp, -mask), "mask")
    # bool and integer 0/1 masks are fine
    rlviz.aggregate(logp, mask.bool(), "token-mean")
    rlviz.aggregate(logp, mask.long(), "token-mean")


@pytest.mark.parametrize("func, name, valid", [
    (lambda: rlviz.kl_estimate(logp, logp, "k4"), "kind", ["'k1'", "'k2'", "'k3'"]),
    (lambda: rlviz.aggregate(logp, mask, "mean"), "mode",
     ["'seq-mean-token-mean'", "'token-mean'", "'seq-mean-token-sum'",
      "'seq-mean-token-sum-norm'"]),
    (lambda: rlviz.clipped_surrogate(logp, logp, adv, level="seq", mask=mask), "level",
     ["'token'", "'sequence'"]),
    (lambda: rlviz.group_advantages(adv, 2, scale="std"), "scale",
     ["'group'", "'batch'", "'none'"]),
])
def test_unknown_names_list_the_valid_ones(func, name, valid):
    _raises(ValueError, func, name, *valid)


@pytest.mark.parametrize("eps_low", [0.0, 1.0, -0.1, 1.5])
def test_eps_low_outside_zero_one(eps_low):
    _raises(ValueError, lambda: rlviz.clipped_surrogate(logp, logp, adv, eps_low=eps_low),
            "eps_low", str(float(eps_low)))


def test_eps_high_must_be_positive():
    _raises(ValueError, lambda: rlviz.clipped_surrogate(logp, logp, adv, eps_high=0.0),
            "eps_high")


@pytest.mark.parametrize("dual_clip", [1.0, 0.5, -3.0])
def test_dual_clip_must_exceed_one(dual_clip):
    _raises(ValueError, lambda: rlviz.clipped_surrogate(logp, logp, adv, dual_clip=dual_clip),
            "dual_clip")


def test_group_size_below_one_and_not_dividing_the_batch():
    _raises(ValueError, lambda: rlviz.group_advantages(adv, 0), "group_size", "0")
    _raises(ValueError, lambda: rlviz.group_advantages(adv, 3), "group_size", "multiple")
    _raises(TypeError, lambda: rlviz.group_advantages(adv, 2.0), "group_size")


def test_sequence_level_needs_a_mask():
    _raises(ValueError, lambda: rlviz.clipped_surrogate(logp, logp, adv, level="sequence"),
            "mask")


def test_out_of_range_numbers():
    _raises(ValueError, lambda: rlviz.gae(logp, logp, mask, gamma=1.5), "gamma")
    _raises(ValueError, lambda: rlviz.gae(logp, logp, mask, lam=-0.1), "lam")
    _raises(ValueError, lambda: rlviz.aggregate(logp, mask, "seq-mean-token-sum-norm",
                                                max_len=0), "max_len")
    _raises(ValueError, lambda: rlviz.value_loss(logp, logp, logp, mask, clip_range=-1.0),
            "clip_range")
    _raises(ValueError, lambda: rlviz.group_advantages(adv, 2, eps=-1e-6), "eps")
    _raises(ValueError, lambda: rlviz.selective_log_prob(torch.zeros(B, T, 3),
                                                         torch.full((B, T), 3)), "tokens", "[0, V")


def test_wrapper_names_missing_keyword_arguments():
    cfg = rlviz.Config(algo="ppo_gae")
    message = _raises(ValueError, lambda: rlviz.policy_loss_wrapper(
        "ppo_gae", logp, logp, logp, logp, mask, None, cfg), "values", "old_values", "returns",
        "logits")
    assert "ppo_gae" in message
    cfg = rlviz.Config(algo="grpo_paper")
    _raises(ValueError, lambda: rlviz.policy_loss_wrapper(
        "grpo_paper", logp, logp, None, adv, mask, None, cfg), "pi_ref_logprob")


def test_unknown_algo_lists_every_key():
    message = _raises(ValueError, lambda: rlviz.Config(algo="grpo2").hparams(), "'grpo2'")
    for name in rlviz.LOSS_FN_REGISTRY:
        assert repr(name) in message
