"""rlviz's loss blocks side by side with verl 0.9.1's own ``core_algos`` functions.

Same float64 tensors in both; verl's functions are called the way its actor calls them
(``verl/workers/utils/losses.py::ppo_loss`` in 0.9.1: ``policy_loss_fn(old_log_prob, log_prob,
advantages, response_mask, loss_agg_mode, config=ActorConfig, rollout_is_weights)``).
Tolerance: 1e-12 absolute/relative, except where verl divides by ``n + 1e-8`` (its
``masked_mean``, used for the metrics and in ``masked_whiten``, and the per-response mean of
seq-mean-token-mean): there 1e-7 relative (``LOOSE``).

Where verl differs from rlviz the test asserts the difference as it is, so a library upgrade
that changes it fails here. The differences found (verl 0.9.1):
* vanilla always applies the dual clip (clip_ratio_c > 1 required, default 3);
* k3 ("low_var_kl") is clamped to [-10, 10]; "k3+" is k3 with the k2 gradient;
* seq-mean-token-sum-norm on one device divides by the non-empty responses, not B;
* token-mean divides a micro-batch by the global token count (batch_num_tokens) in training;
* GRPO advantages: a group of one keeps its raw score (rlviz: 0);
* GAE: non-zero values at mask-0 positions (rlviz: 0); never used by a masked loss;
* GSPO: log sequence ratio clamped at 10 from above (rlviz: +-20).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

# verl 0.9.1 is installed by `make setup` (no skip: a missing install must fail here)
from verl.trainer.ppo import core_algos
from verl.workers.config import ActorConfig

from rlviz.losses import aggregate, clipped_surrogate, gae, group_advantages, kl_estimate, whiten
from rlviz.losses.surrogate import surrogate_metrics

TOL = dict(rtol=1e-12, atol=1e-12)
LOOSE = dict(rtol=1e-7, atol=1e-12)  # verl's  x / (n + 1e-8)
B, T = 6, 7


def _batch(seed: int = 0, spread: float = 0.6, empty_row: bool = False):
    """log-probs (new, old, ref), per-token advantages and a ragged mask, float64."""
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3.0  # (B, T)
    old = logp + spread * torch.randn(B, T, generator=g, dtype=torch.float64)  # (B, T)
    ref = logp + spread * torch.randn(B, T, generator=g, dtype=torch.float64)  # (B, T)
    adv = torch.randn(B, 1, generator=g, dtype=torch.float64).expand(B, T).clone()  # (B, T)
    lengths = torch.tensor([7, 3, 5, 1, 6, 4])
    if empty_row:
        lengths[3] = 0
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(torch.float64)  # (B, T)
    return logp, old, ref, adv, mask


def _actor(**kw) -> ActorConfig:
    """An ActorConfig as verl builds it from its trainer yaml (strategy and micro-batch are
    required by its __post_init__ and do not enter the loss)."""
    return ActorConfig(strategy="fsdp", rollout_n=1, ppo_micro_batch_size_per_gpu=1, **kw)


AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


# ---------------------------------------------------------------- clipped surrogate (vanilla)

@pytest.mark.parametrize("eps_low,eps_high", [(0.2, 0.2), (0.2, 0.28)])
def test_vanilla_per_token_equals_rlviz_with_dual_clip_3(eps_low, eps_high):
    """verl's vanilla loss always applies the dual clip (clip_ratio_c, default 3.0:
    ``clip_ratio_c = config.get("clip_ratio_c", 3.0)``); rlviz's dual_clip=3 is the same.
    Per-token values are read out of verl with a one-token mask and token-sum aggregation."""
    logp, old, _, adv, mask = _batch(spread=1.5)  # large ratios: both clips are active
    ours = clipped_surrogate(logp, old, adv, eps_low, eps_high, dual_clip=3.0, mask=mask)  # (B, T)
    cfg = _actor(clip_ratio=eps_low, clip_ratio_low=eps_low, clip_ratio_high=eps_high,
                 clip_ratio_c=3.0, loss_agg_mode="token-sum")
    theirs = torch.zeros(B, T, dtype=torch.float64)
    for i, t in mask.nonzero().tolist():
        one = torch.zeros_like(mask)
        one[i, t] = 1.0
        loss, _ = core_algos.compute_policy_loss_vanilla(old, logp, adv, one, "token-sum", cfg)
        theirs[i, t] = loss
    assert (ours.abs() > 0).sum() > 10
    torch.testing.assert_close(ours, theirs, **TOL)


def test_vanilla_without_dual_clip_differs_where_ratio_exceeds_c_with_negative_advantage():
    """rlviz's default (dual_clip=None) is plain PPO; verl vanilla has no way to switch the
    dual clip off (clip_ratio_c must be > 1). They differ exactly on tokens with A < 0 and
    rho > 3, where verl caps the loss at -3 A."""
    logp, old, _, adv, mask = _batch(spread=1.5)
    plain = clipped_surrogate(logp, old, adv, 0.2, 0.2, dual_clip=None, mask=mask)  # (B, T)
    dual = clipped_surrogate(logp, old, adv, 0.2, 0.2, dual_clip=3.0, mask=mask)  # (B, T)
    ratio = torch.exp(logp - old)
    capped = (adv < 0) & (ratio > 3.0) & (mask > 0)
    assert capped.any()
    assert torch.equal(plain != dual, capped)
    torch.testing.assert_close(dual[capped], -3.0 * adv[capped], **TOL)


@pytest.mark.parametrize("mode", AGG_MODES)
def test_vanilla_aggregated_and_metrics(mode):
    logp, old, _, adv, mask = _batch(seed=1, spread=1.2)
    per_token = clipped_surrogate(logp, old, adv, 0.2, 0.28, dual_clip=3.0, mask=mask)
    ours = aggregate(per_token, mask, mode)
    cfg = _actor(clip_ratio_low=0.2, clip_ratio_high=0.28, clip_ratio_c=3.0, loss_agg_mode=mode)
    theirs, metrics = core_algos.compute_policy_loss_vanilla(old, logp, adv, mask, mode, cfg)
    rtol = 1e-7 if mode == "seq-mean-token-mean" else 1e-12  # verl: sum / (L + 1e-8)
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=1e-12)
    m = surrogate_metrics(logp, old, adv, 0.2, 0.28, dual_clip=3.0, mask=mask)
    assert m["clipfrac"] == pytest.approx(metrics["actor/pg_clipfrac"], rel=1e-7)
    assert m["clipfrac_dual"] == pytest.approx(metrics["actor/pg_clipfrac_lower"], rel=1e-7)
    assert m["clipfrac"] > 0 and m["clipfrac_dual"] > 0
    # verl's ppo_kl is the k1 estimate of KL(old || new): masked mean of old - new
    k1 = aggregate(kl_estimate(old, logp, "k1"), mask, "token-mean")
    assert float(k1) == pytest.approx(metrics["actor/ppo_kl"], rel=1e-7)


def test_vanilla_gradients_equal():
    logp, old, _, adv, mask = _batch(seed=2, spread=0.8)
    a = logp.clone().requires_grad_(True)
    aggregate(clipped_surrogate(a, old, adv, 0.2, 0.28, 3.0, mask=mask), mask, "token-mean").backward()
    b = logp.clone().requires_grad_(True)
    cfg = _actor(clip_ratio_low=0.2, clip_ratio_high=0.28, clip_ratio_c=3.0)
    core_algos.compute_policy_loss_vanilla(old, b, adv, mask, "token-mean", cfg)[0].backward()
    torch.testing.assert_close(a.grad, b.grad, **TOL)


# ---------------------------------------------------------------- aggregation

@pytest.mark.parametrize("mode", AGG_MODES)
def test_agg_loss_equals_aggregate(mode):
    g = torch.Generator().manual_seed(3)
    loss = torch.randn(B, T, generator=g, dtype=torch.float64)
    _, _, _, _, mask = _batch()
    rtol = 1e-7 if mode == "seq-mean-token-mean" else 1e-12
    torch.testing.assert_close(aggregate(loss, mask, mode),
                               core_algos.agg_loss(loss, mask, mode), rtol=rtol, atol=1e-12)


def test_seq_mean_token_sum_norm_counts_only_non_empty_responses_in_verl():
    """verl 0.9.1 agg_loss, seq-mean-token-sum-norm with one device: global_batch_size
    defaults to ``seq_mask.sum()`` (responses with >= 1 token) and loss_scale_factor to
    ``loss_mask.shape[-1]``; rlviz (Dr. GRPO's formula) divides by B * max_len with every
    response counted. With an empty response the two differ by B / (non-empty count)."""
    g = torch.Generator().manual_seed(4)
    loss = torch.randn(B, T, generator=g, dtype=torch.float64)
    _, _, _, _, mask = _batch(empty_row=True)
    ours = aggregate(loss, mask, "seq-mean-token-sum-norm")
    theirs = core_algos.agg_loss(loss, mask, "seq-mean-token-sum-norm")
    non_empty = int((mask.sum(1) > 0).sum())
    assert non_empty == B - 1
    torch.testing.assert_close(theirs, ours * B / non_empty, **TOL)
    # the global batch size passed explicitly (as verl's trainer does) restores Dr. GRPO's B
    explicit = core_algos.agg_loss(loss, mask, "seq-mean-token-sum-norm", global_batch_size=B)
    torch.testing.assert_close(explicit, ours, **TOL)


def test_token_mean_across_micro_batches_uses_global_token_count():
    """verl 0.9.1 divides every micro-batch's token sum by the token count of the whole
    mini-batch (``batch_num_tokens``), so micro-batch losses add up to rlviz's token-mean of
    the whole batch; the per-micro-batch mean (batch_num_tokens=None) does not."""
    g = torch.Generator().manual_seed(5)
    loss = torch.randn(B, T, generator=g, dtype=torch.float64)
    _, _, _, _, mask = _batch()
    total = mask.sum()
    halves = [slice(0, 3), slice(3, 6)]
    summed = sum(core_algos.agg_loss(loss[s], mask[s], "token-mean", batch_num_tokens=total)
                 for s in halves)
    torch.testing.assert_close(summed, aggregate(loss, mask, "token-mean"), **TOL)
    local = sum(core_algos.agg_loss(loss[s], mask[s], "token-mean") for s in halves) / 2
    assert abs(float(local) - float(aggregate(loss, mask, "token-mean"))) > 1e-3


# ---------------------------------------------------------------- KL estimators

@pytest.mark.parametrize("ours_kind,verl_names", [("k1", ("k1", "kl")), ("k2", ("k2", "mse")),
                                                  ("k3", ("k3", "low_var_kl"))])
def test_kl_estimators_equal_in_range(ours_kind, verl_names):
    logp, _, ref, _, _ = _batch(seed=6, spread=0.8)
    ours = kl_estimate(logp, ref, ours_kind)
    assert float(ours.abs().max()) < 10.0  # inside verl's k3 clamp
    for name in verl_names:
        torch.testing.assert_close(ours, core_algos.kl_penalty(logp, ref, name), **TOL)


def test_verl_clamps_k3_to_10_rlviz_does_not():
    """verl 0.9.1 kl_penalty_forward, low_var_kl: ``return torch.clamp(kld, min=-10, max=10)``.
    rlviz clamps only the log-ratio (to +-20). For ref/pi ratios above ~e^2.53 (k3 > 10) verl's
    value is 10 and its gradient 0; rlviz's value keeps growing."""
    d = torch.tensor([[-3.0, -1.0, 0.0, 1.0, 2.0, 2.5, 3.0, 5.0, 30.0]], dtype=torch.float64)
    logp = torch.zeros_like(d)
    ref = d  # d = ref - logp
    ours = kl_estimate(logp, ref, "k3")
    theirs = core_algos.kl_penalty(logp, ref, "low_var_kl")
    torch.testing.assert_close(theirs, ours.clamp(max=10.0), **TOL)
    assert bool((ours > 10.0).any())
    # the plain formula, by hand, for two points
    assert float(ours[0, 3]) == pytest.approx(np.exp(1.0) - 2.0, rel=1e-14)
    assert float(theirs[0, 7]) == 10.0


def test_k3_plus_is_k3_forward_with_k2_gradient():
    """verl's 'k3+' (straight-through): value of k3, gradient of k2 = (logp - ref). rlviz has
    no such estimator; stated here so the export never maps k3 to k3+."""
    logp, _, ref, _, _ = _batch(seed=7, spread=0.5)
    x = logp.clone().requires_grad_(True)
    val = core_algos.kl_penalty(x, ref, "k3+")
    torch.testing.assert_close(val.detach(), kl_estimate(logp, ref, "k3"), **TOL)
    val.sum().backward()
    torch.testing.assert_close(x.grad, logp - ref, **TOL)


# ---------------------------------------------------------------- group advantages

def _outcome_rewards(seed, group_size, num_groups):
    g = torch.Generator().manual_seed(seed)
    r = torch.randint(0, 3, (group_size * num_groups,), generator=g).to(torch.float64) / 2
    r[:group_size] = 0.5  # one group with all-equal rewards
    return r


@pytest.mark.parametrize("norm", [True, False])
def test_grpo_outcome_advantage(norm):
    G, n = 4, 3
    rewards = _outcome_rewards(8, G, n)  # (B,)
    lengths = torch.tensor([5, 2, 7, 1, 3, 6, 4, 4, 7, 2, 5, 1])
    mask = (torch.arange(T)[None, :] < lengths[:, None]).to(torch.float64)  # (B, T)
    token_rewards = torch.zeros_like(mask)
    token_rewards[torch.arange(G * n), lengths - 1] = rewards  # reward on the last token
    index = np.repeat(np.arange(n), G)
    theirs, returns = core_algos.compute_grpo_outcome_advantage(
        token_rewards, mask, index, epsilon=1e-6, norm_adv_by_std_in_grpo=norm)
    ours = group_advantages(rewards, G, "group" if norm else "none", eps=1e-6)  # (B,)
    torch.testing.assert_close(ours[:, None] * mask, theirs, **TOL)
    assert float(theirs[:G].abs().max()) < 1e-9  # all-equal group: no signal in either


def test_grpo_single_member_group_differs():
    """verl 0.9.1: a group of one gets mean 0 and std 1, so its advantage is the raw score
    (``id2mean[idx] = torch.tensor(0.0); id2std[idx] = torch.tensor(1.0)``); rlviz gives 0.
    (Those constants are float32, so 1 + 1e-6 is rounded: 1e-6 relative.)"""
    rewards = torch.tensor([0.7, -0.2, 1.0], dtype=torch.float64)
    mask = torch.ones(3, 2, dtype=torch.float64)
    token_rewards = torch.zeros_like(mask)
    token_rewards[:, -1] = rewards
    theirs, _ = core_algos.compute_grpo_outcome_advantage(token_rewards, mask, np.arange(3))
    torch.testing.assert_close(theirs[:, 0], rewards / (1.0 + 1e-6), rtol=1e-6, atol=0.0)
    assert torch.equal(group_advantages(rewards, 1), torch.zeros(3, dtype=torch.float64))


# ---------------------------------------------------------------- GAE

def test_gae_whitened_advantages_and_returns():
    g = torch.Generator().manual_seed(9)
    _, _, _, _, mask = _batch()
    rewards = torch.randn(B, T, generator=g, dtype=torch.float64) * mask
    values = torch.randn(B, T, generator=g, dtype=torch.float64)
    for gamma, lam in [(1.0, 0.95), (0.9, 1.0), (1.0, 1.0)]:
        theirs_adv, theirs_ret = core_algos.compute_gae_advantage_return(
            rewards, values, mask, gamma=gamma, lam=lam)
        adv, ret = gae(rewards, values, mask, gamma, lam)
        on = mask > 0
        torch.testing.assert_close(whiten(adv, mask)[on], theirs_adv[on], **LOOSE)
        torch.testing.assert_close(ret[on], theirs_ret[on], **TOL)


def test_gae_masked_positions_differ_only_off_the_mask():
    """verl leaves whitened garbage (and carried-through returns) at mask-0 positions; rlviz
    puts 0 there. Neither enters a masked loss."""
    g = torch.Generator().manual_seed(10)
    _, _, _, _, mask = _batch()
    rewards = torch.randn(B, T, generator=g, dtype=torch.float64) * mask
    values = torch.randn(B, T, generator=g, dtype=torch.float64)
    theirs_adv, _ = core_algos.compute_gae_advantage_return(rewards, values, mask, 1.0, 0.95)
    off = mask == 0
    assert float(theirs_adv[off].abs().max()) > 0.0
    assert float(whiten(gae(rewards, values, mask)[0], mask)[off].abs().max()) == 0.0


# ---------------------------------------------------------------- GSPO

@pytest.mark.parametrize("mode", ["seq-mean-token-mean", "token-mean"])
def test_gspo_loss_and_gradient(mode):
    """verl 0.9.1 compute_policy_loss_gspo: token ratio sg[s_i] * pi / sg[pi], equal in value to
    rlviz's sequence ratio broadcast over the tokens, and in gradient too."""
    logp, old, _, adv, mask = _batch(seed=11, spread=3e-3)  # GSPO's clip range is 3e-4 / 4e-4
    adv_seq = adv[:, 0]  # (B,)
    a = logp.clone().requires_grad_(True)
    per_token = clipped_surrogate(a, old, adv_seq, 3e-4, 4e-4, None, "sequence", mask)
    ours = aggregate(per_token, mask, mode)
    ours.backward()
    b = logp.clone().requires_grad_(True)
    cfg = _actor(clip_ratio_low=3e-4, clip_ratio_high=4e-4, loss_agg_mode=mode)
    theirs, metrics = core_algos.compute_policy_loss_gspo(old, b, adv_seq[:, None].expand(B, T), mask,
                                                          mode, cfg)
    theirs.backward()
    rtol = 1e-7 if mode == "seq-mean-token-mean" else 1e-12
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=1e-12)
    torch.testing.assert_close(a.grad, b.grad, rtol=rtol, atol=1e-12)
    m = surrogate_metrics(logp, old, adv_seq, 3e-4, 4e-4, None, "sequence", mask)
    assert 0.0 < metrics["actor/pg_clipfrac"] < 1.0
    assert m["clipfrac"] == pytest.approx(metrics["actor/pg_clipfrac"], rel=1e-7)


def test_gspo_clamps_the_log_sequence_ratio_at_10_rlviz_at_20():
    """verl: ``torch.clamp(log_seq_importance_ratio, max=10.0)``; rlviz clamps to [-20, 20].
    Visible only with a negative advantage (the clip does not cap rho A from above when A<0)."""
    logp = torch.zeros(1, 2, dtype=torch.float64)
    old = torch.full((1, 2), -15.0, dtype=torch.float64)  # log s = 15
    adv = torch.full((1, 2), -1.0, dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.float64)
    cfg = _actor(clip_ratio_low=3e-4, clip_ratio_high=4e-4)
    theirs, _ = core_algos.compute_policy_loss_gspo(old, logp, adv, mask, "token-mean", cfg)
    ours = aggregate(clipped_surrogate(logp, old, adv[:, 0], 3e-4, 4e-4, None, "sequence", mask),
                     mask, "token-mean")
    assert float(theirs) == pytest.approx(np.exp(10.0), rel=1e-12)
    assert float(ours) == pytest.approx(np.exp(15.0), rel=1e-12)
