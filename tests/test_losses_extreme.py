"""Legal but extreme inputs: finite values and finite gradients everywhere.

The clamp: log-ratios are clamped to [-20, 20] before exp (as verl does), in the token and
sequence ratios and in k3; beyond it the gradient is 0.
"""

import math

import pytest
import torch

import rlviz

D = torch.float64


def _finite(*tensors):
    for x in tensors:
        assert x is not None and torch.isfinite(x).all(), x


@pytest.mark.parametrize("dtype", [torch.float32, D])
@pytest.mark.parametrize("kwargs", [{}, {"eps_high": 0.28, "dual_clip": 3.0},
                                    {"level": "sequence"}])
def test_log_ratios_of_plus_minus_1000(dtype, kwargs):
    old = torch.zeros(4, 3, dtype=dtype)
    logp = torch.tensor([[1000.0, -1000.0, 0.0]] * 4, dtype=dtype, requires_grad=True)
    adv = torch.tensor([1.0, -1.0, 1e6, -1e6], dtype=dtype)
    mask = torch.ones(4, 3, dtype=dtype)
    out = rlviz.clipped_surrogate(logp, old, adv, mask=mask, **kwargs)
    rlviz.aggregate(out, mask, "token-mean").backward()
    _finite(out, logp.grad)
    metrics = rlviz.surrogate_metrics(logp.detach(), old, adv, mask=mask, **kwargs)
    assert all(math.isfinite(v) for v in metrics.values())


def test_clamp_value_is_documented_value():
    # rho for a log-ratio of 1000 with A < 0 and no dual clip: exp(20) * |A|
    logp = torch.tensor([[1000.0]], dtype=D)
    out = rlviz.clipped_surrogate(logp, torch.zeros(1, 1, dtype=D), torch.tensor([-1.0], dtype=D))
    assert out.item() == pytest.approx(math.exp(20.0))


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_of_plus_minus_1000(kind):
    logp = torch.tensor([[1000.0, -1000.0, 0.0]], dtype=torch.float32, requires_grad=True)
    ref = torch.zeros(1, 3)
    kl = rlviz.kl_estimate(logp, ref, kind)
    kl.sum().backward()
    _finite(kl, logp.grad)
    assert (kl[0, :2] > 0).all() if kind != "k1" else True


@pytest.mark.parametrize("mode", ["seq-mean-token-mean", "token-mean", "seq-mean-token-sum",
                                  "seq-mean-token-sum-norm"])
def test_empty_masks_give_zero_and_finite_gradients(mode):
    loss = torch.randn(3, 4, dtype=D, requires_grad=True)
    empty = torch.zeros(3, 4, dtype=D)
    out = rlviz.aggregate(loss, empty, mode)
    out.backward()
    assert out.item() == 0.0
    assert torch.equal(loss.grad, torch.zeros_like(loss))


def test_empty_masks_in_every_block():
    logp = torch.randn(2, 3, dtype=D, requires_grad=True)
    empty = torch.zeros(2, 3, dtype=D)
    adv = torch.tensor([1.0, -1.0], dtype=D)
    seq = rlviz.clipped_surrogate(logp, logp.detach() + 0.1, adv, level="sequence", mask=empty)
    assert torch.equal(seq, torch.zeros_like(seq))
    assert torch.equal(rlviz.whiten(logp, empty), torch.zeros_like(logp))
    adv_gae, ret = rlviz.gae(logp, logp, empty)
    assert torch.equal(adv_gae, torch.zeros_like(logp)) and torch.equal(ret, adv_gae)
    vl = rlviz.value_loss(logp, logp.detach(), torch.zeros_like(logp), empty)
    vl.backward()
    assert vl.item() == 0.0
    _finite(logp.grad)
    metrics = rlviz.surrogate_metrics(logp.detach(), logp.detach(), adv, mask=empty)
    assert metrics == {"clipfrac": 0.0, "clipfrac_dual": 0.0, "approx_kl": 0.0,
                       "ratio_mean": 0.0, "ratio_max": 0.0}
    assert rlviz.losses.clip_fraction(logp.detach() + 5.0, logp.detach(), adv,
                                      mask=empty) == 0.0


def test_clip_fraction_rejects_bad_input_like_the_surrogate():
    logp = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="advantages"):
        rlviz.losses.clip_fraction(logp, logp, torch.zeros(3))
    with pytest.raises(ValueError, match="mask"):
        rlviz.losses.clip_fraction(logp, logp, torch.zeros(2), mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="eps_low"):
        rlviz.losses.clip_fraction(logp, logp, torch.zeros(2), eps_low=-0.1)


def test_empty_response_in_a_batch_gets_no_sequence_ratio_gradient():
    logp = torch.randn(2, 3, dtype=D, requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [0, 0, 0]], dtype=D)
    out = rlviz.clipped_surrogate(logp, torch.zeros(2, 3, dtype=D), torch.tensor([1.0, 1.0],
                                  dtype=D), 0.5, 0.5, level="sequence", mask=mask)
    rlviz.aggregate(out, mask, "seq-mean-token-mean").backward()
    assert torch.equal(logp.grad[1], torch.zeros(3, dtype=D))
    _finite(logp.grad)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_all_equal_rewards_and_single_member_groups(scale):
    rewards = torch.tensor([0.1, 0.1, 0.1, 0.7, 0.7, 0.7], dtype=D, requires_grad=True)
    adv = rlviz.group_advantages(rewards, 3, scale)
    assert torch.equal(adv.detach(), torch.zeros(6, dtype=D))
    adv.sum().backward()
    _finite(rewards.grad)
    for eps in (1e-6, 0.0):
        adv = rlviz.group_advantages(rewards, 1, scale, eps=eps)  # single-member groups
        assert torch.equal(adv.detach(), torch.zeros(6, dtype=D))
    same = torch.full((4,), 0.3, dtype=D, requires_grad=True)
    adv = rlviz.group_advantages(same, 2, scale, eps=0.0)  # all equal and no eps at all
    adv.sum().backward()
    assert torch.equal(adv.detach(), torch.zeros(4, dtype=D))
    _finite(same.grad)


def test_mixed_constant_and_varied_groups_keep_finite_gradients():
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0], dtype=D, requires_grad=True)
    adv = rlviz.group_advantages(rewards, 2, "group")
    (adv * torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=D)).sum().backward()
    _finite(rewards.grad)
    assert adv[:2].abs().sum() == 0


def test_infinite_padding_does_not_leak():
    loss = torch.tensor([[1.0, math.inf], [2.0, math.nan]], dtype=D, requires_grad=True)
    mask = torch.tensor([[1, 0], [1, 0]], dtype=D)
    for mode in ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"):
        out = rlviz.aggregate(loss, mask, mode)
        out.backward()
        _finite(out, loss.grad)
        loss.grad = None


def test_family_loss_with_extreme_log_ratios_and_empty_responses():
    torch.manual_seed(0)
    logp = torch.tensor([[1000.0, -1000.0, 0.0], [0.0, 0.0, 0.0], [3.0, -3.0, 0.5],
                         [0.0, 0.0, 0.0]], dtype=torch.float32, requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [0, 0, 0], [1, 1, 0], [1, 0, 0]], dtype=torch.float32)
    old = torch.zeros(4, 3)
    ref = torch.full((4, 3), -500.0)
    logits = torch.randn(4, 3, 5, requires_grad=True)
    values = torch.randn(4, 3, requires_grad=True)
    for algo in ("grpo_paper", "dr_grpo", "dapo", "gspo", "ppo_gae"):
        cfg = rlviz.Config(algo=algo, group_num=2)
        adv = torch.tensor([1.0, -1.0, 0.0, 0.0])
        loss, metrics = rlviz.policy_loss_wrapper(
            algo, logp, old, ref, adv, mask, None, cfg, values=values,
            old_values=values.detach() + 1e3, returns=torch.zeros(4, 3), logits=logits,
            return_metrics=True)
        loss.backward()
        _finite(loss, logp.grad)
        if algo == "ppo_gae":  # the entropy bonus and the value loss have gradients too
            _finite(logits.grad, values.grad)
        assert all(math.isfinite(v) for v in metrics.values()), (algo, metrics)
        logp.grad = logits.grad = values.grad = None


def test_metrics_build_no_graph_from_inputs_that_require_grad():
    """The diagnostics run under no_grad: a logp that requires grad (the trainer's) gives
    floats without the 'requires_grad to a scalar' warning and without a graph."""
    import warnings

    logp = torch.randn(2, 3, requires_grad=True)
    old, adv, mask = torch.zeros(2, 3), torch.tensor([1.0, -1.0]), torch.ones(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = rlviz.surrogate_metrics(logp, old, adv, mask=mask)
        share = rlviz.losses.clip_fraction(logp, old, adv, mask=mask)
    assert share == metrics["clipfrac"]
    assert logp.grad is None and all(isinstance(v, float) for v in metrics.values())
