"""Properties that must hold for any input (hypothesis, modest example counts)."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rlviz

D = torch.float64
FAST = settings(max_examples=50, deadline=None)

seeds = st.integers(0, 2**31 - 1)
sizes = st.integers(1, 6)
finite = st.floats(-5.0, 5.0, allow_nan=False, allow_infinity=False)
eps_values = st.floats(0.01, 0.9)


def _tensors(seed, batch, seq_len, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    logp = torch.randn(batch, seq_len, generator=g, dtype=D) - 1.0
    old = logp + scale * torch.randn(batch, seq_len, generator=g, dtype=D)
    adv = torch.randn(batch, generator=g, dtype=D)
    lengths = torch.randint(0, seq_len + 1, (batch,), generator=g)
    mask = rlviz.mask_from_lengths(lengths, seq_len, dtype=D)
    return logp, old, adv, mask


@FAST
@given(seeds, sizes, sizes, eps_values, eps_values)
def test_ratio_one_gives_minus_advantage(seed, batch, seq_len, eps_low, eps_high):
    logp, _, adv, mask = _tensors(seed, batch, seq_len)
    for level in ("token", "sequence"):
        out = rlviz.clipped_surrogate(logp, logp.clone(), adv, eps_low, eps_high, 2.0,
                                      level=level, mask=mask)
        expected = torch.where(mask > 0, -adv.unsqueeze(1).expand_as(mask),
                               torch.zeros_like(mask))
        assert torch.equal(out, expected)


@FAST
@given(seeds, sizes, sizes, eps_values, eps_values)
def test_gradient_is_zero_exactly_where_clipped(seed, batch, seq_len, eps_low, eps_high):
    logp, old, adv, _ = _tensors(seed, batch, seq_len)
    logp.requires_grad_()
    rlviz.clipped_surrogate(logp, old, adv, eps_low, eps_high).sum().backward()
    for i in range(batch):
        for t in range(seq_len):
            rho = math.exp(logp[i, t].item() - old[i, t].item())
            a = adv[i].item()
            if min(abs(rho - 1 - eps_high), abs(rho - 1 + eps_low)) < 1e-9:
                continue  # exactly on the edge: a kink
            clipped = (a > 0 and rho > 1 + eps_high) or (a < 0 and rho < 1 - eps_low)
            grad = logp.grad[i, t].item()
            if clipped:
                assert grad == 0.0
            else:
                assert math.isclose(grad, -rho * a, rel_tol=1e-9, abs_tol=1e-12)


@FAST
@given(seeds, sizes, sizes, eps_values)
def test_clipfrac_is_the_share_of_zero_gradient_tokens(seed, batch, seq_len, eps_low):
    logp, old, adv, mask = _tensors(seed, batch, seq_len)
    logp.requires_grad_()
    rlviz.clipped_surrogate(logp, old, adv, eps_low, mask=mask).sum().backward()
    adv_tok = adv.unsqueeze(1).expand_as(mask)
    no_grad = (logp.grad == 0) & (adv_tok != 0) & (mask > 0)
    share = no_grad.sum().item() / max(mask.sum().item(), 1)
    metrics = rlviz.surrogate_metrics(logp.detach(), old, adv, eps_low, mask=mask)
    assert math.isclose(metrics["clipfrac"], share, abs_tol=1e-12)
    alone = rlviz.losses.clip_fraction(logp.detach(), old, adv, eps_low, mask=mask)
    assert math.isclose(alone, share, abs_tol=1e-12)


@FAST
@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]) | finite, min_size=1, max_size=24),
       st.integers(1, 6), st.sampled_from(["group", "batch", "none"]))
def test_group_advantages_sum_to_zero_per_group(values, group_size, scale):
    values = values[: len(values) // group_size * group_size] or [0.0] * group_size
    rewards = torch.tensor(values, dtype=D)
    adv = rlviz.group_advantages(rewards, group_size, scale)
    assert torch.isfinite(adv).all()
    sums = adv.view(-1, group_size).sum(dim=1)
    assert torch.allclose(sums, torch.zeros_like(sums), atol=1e-9)
    groups = rewards.view(-1, group_size)
    constant = groups.amax(1) == groups.amin(1)
    assert (adv.view(-1, group_size)[constant] == 0).all()


@FAST
@given(seeds, sizes, sizes)
def test_group_advantages_shift_invariant_and_scale_behaviour(seed, groups, group_size):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(groups * group_size, generator=g, dtype=D)
    base = rlviz.group_advantages(rewards, group_size, "none")
    assert torch.allclose(rlviz.group_advantages(rewards + 3.0, group_size, "none"), base,
                          atol=1e-12)
    # "none" is linear in the rewards; "group" is invariant to scaling them (eps aside)
    assert torch.allclose(rlviz.group_advantages(2 * rewards, group_size, "none"), 2 * base,
                          atol=1e-12)
    grouped = rlviz.group_advantages(rewards, group_size, "group", eps=0.0)
    assert torch.allclose(rlviz.group_advantages(5 * rewards, group_size, "group", eps=0.0),
                          grouped, atol=1e-9)


@FAST
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=30))
def test_k3_and_k2_are_non_negative_and_k3_zero_only_at_equality(pairs):
    logp = torch.tensor([[p for p, _ in pairs]], dtype=D)
    ref = torch.tensor([[r for _, r in pairs]], dtype=D)
    k3 = rlviz.kl_estimate(logp, ref, "k3")
    assert (k3 >= 0).all()
    assert (rlviz.kl_estimate(logp, ref, "k2") >= 0).all()
    assert (k3[(logp - ref).abs() >= 1e-7] > 0).all()
    assert torch.allclose(rlviz.kl_estimate(logp, logp, "k3"), torch.zeros_like(logp))


@FAST
@given(seeds, sizes, sizes)
def test_equal_lengths_seq_mean_token_mean_equals_token_mean(seed, batch, seq_len):
    g = torch.Generator().manual_seed(seed)
    loss = torch.randn(batch, seq_len + 2, generator=g, dtype=D)
    length = int(torch.randint(1, seq_len + 1, (1,), generator=g))
    mask = rlviz.mask_from_lengths(torch.full((batch,), length), seq_len + 2, dtype=D)
    a = rlviz.aggregate(loss, mask, "seq-mean-token-mean")
    b = rlviz.aggregate(loss, mask, "token-mean")
    assert math.isclose(a.item(), b.item(), rel_tol=1e-12, abs_tol=1e-12)
    # and seq-mean-token-sum = length * token-mean; seq-mean-token-sum-norm with max_len =
    # length (no empty rows) equals token-mean too
    c = rlviz.aggregate(loss, mask, "seq-mean-token-sum")
    assert math.isclose(c.item(), length * b.item(), rel_tol=1e-12, abs_tol=1e-12)
    d = rlviz.aggregate(loss, mask, "seq-mean-token-sum-norm", max_len=length)
    assert math.isclose(d.item(), b.item(), rel_tol=1e-12, abs_tol=1e-12)


@FAST
@given(seeds, sizes, sizes, st.sampled_from(["seq-mean-token-mean", "token-mean",
                                             "seq-mean-token-sum", "seq-mean-token-sum-norm"]))
def test_aggregate_ignores_masked_positions_and_is_linear(seed, batch, seq_len, mode):
    logp, old, _, mask = _tensors(seed, batch, seq_len)
    garbage = torch.where(mask > 0, logp, torch.full_like(logp, math.nan))
    a = rlviz.aggregate(garbage, mask, mode)
    assert torch.isfinite(a)
    assert math.isclose(a.item(), rlviz.aggregate(logp, mask, mode).item(), abs_tol=1e-12)
    combo = rlviz.aggregate(2 * logp - 3 * old, mask, mode)
    parts = 2 * rlviz.aggregate(logp, mask, mode) - 3 * rlviz.aggregate(old, mask, mode)
    assert math.isclose(combo.item(), parts.item(), rel_tol=1e-9, abs_tol=1e-9)


@FAST
@given(seeds, sizes, sizes, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_gae_returns_minus_values_equal_advantages_and_lambda_one_is_monte_carlo(
        seed, batch, seq_len, gamma, lam):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(batch, seq_len, generator=g, dtype=D)
    values = torch.randn(batch, seq_len, generator=g, dtype=D)
    lengths = torch.randint(0, seq_len + 1, (batch,), generator=g)
    mask = rlviz.mask_from_lengths(lengths, seq_len, dtype=D)
    adv, ret = rlviz.gae(rewards, values, mask, gamma, lam)
    assert torch.allclose(ret - values * mask, adv, atol=1e-12)
    mc, _ = rlviz.gae(rewards, values, mask, gamma, 1.0)
    for i in range(batch):
        for t in range(int(lengths[i])):
            discounted = sum(gamma ** (k - t) * rewards[i, k].item()
                             for k in range(t, int(lengths[i])))
            assert math.isclose(mc[i, t].item(), discounted - values[i, t].item(),
                                rel_tol=1e-9, abs_tol=1e-9)


@FAST
@given(seeds, sizes, sizes)
def test_whiten_has_mean_zero_and_variance_one(seed, batch, seq_len):
    logp, _, _, mask = _tensors(seed, batch, seq_len)
    out = rlviz.whiten(3 * logp + 1, mask)
    on = mask > 0
    n = int(on.sum())
    if n >= 1:
        assert abs(out[on].mean().item()) < 1e-9
    if n >= 2:
        var = (3 * logp[on] + 1).var().item()
        assert math.isclose(out[on].var().item(), var / (var + 1e-8), rel_tol=1e-9)
    if n == 1:
        assert out[on].item() == 0.0  # centred only
    assert (out[~on] == 0).all()


@FAST
@given(seeds, st.integers(1, 4), st.integers(1, 4), st.integers(2, 40),
       st.integers(1, 7))
def test_selective_log_prob_matches_naive(seed, batch, seq_len, vocab, chunk_rows):
    g = torch.Generator().manual_seed(seed)
    logits = 4 * torch.randn(batch, seq_len, vocab, generator=g)
    tokens = torch.randint(0, vocab, (batch, seq_len), generator=g)
    naive = logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    out = rlviz.selective_log_prob(logits, tokens, chunk_rows=chunk_rows)
    assert torch.allclose(out, naive, atol=1e-5, rtol=0)
    assert (out <= 0).all()
