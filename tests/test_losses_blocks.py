"""The loss blocks against slow float64 loop references written here and hand-worked values.

Nothing here compares a function with itself: every expected number comes from a plain
Python loop over rows and tokens (``math`` only) or from arithmetic done by hand.
"""

import math
import statistics

import pytest
import torch
from references import loop_group_advantages, ref_aggregate

import rlviz

D = torch.float64


# ---------------------------------------------------------------- references (plain Python)

def ref_kl(logp, ref, kind):
    out = []
    for row_p, row_r in zip(logp.tolist(), ref.tolist(), strict=True):
        row = []
        for p, r in zip(row_p, row_r, strict=True):
            if kind == "k1":
                row.append(p - r)
            elif kind == "k2":
                row.append(0.5 * (p - r) ** 2)
            else:
                ratio = math.exp(r - p)  # pi_ref / pi_theta
                row.append(ratio - 1.0 - math.log(ratio))
        out.append(row)
    return out


def ref_token_loss(logp, old, adv, eps_low, eps_high, dual_clip=None):
    """One token: -min(rho A, clip(rho) A), then the dual-clip cap for A < 0."""
    rho = math.exp(logp - old)
    clipped = min(max(rho, 1 - eps_low), 1 + eps_high)
    loss = -min(rho * adv, clipped * adv)
    if dual_clip is not None and adv < 0:
        loss = min(loss, -dual_clip * adv)
    return loss


def ref_surrogate(logp, old, adv, mask, eps_low, eps_high, dual_clip=None, level="token"):
    logp, old, mask = logp.tolist(), old.tolist(), mask.tolist()
    adv = adv.tolist()
    out = []
    for i in range(len(logp)):
        a_row = adv[i] if isinstance(adv[i], list) else [adv[i]] * len(logp[i])
        length = sum(mask[i])
        if level == "sequence":
            mean_lr = sum((p - o) * m for p, o, m in zip(logp[i], old[i], mask[i], strict=True))
            mean_lr = mean_lr / length if length else 0.0
        row = []
        for t in range(len(logp[i])):
            if not mask[i][t]:
                row.append(0.0)
                continue
            if level == "sequence":
                row.append(ref_token_loss(mean_lr, 0.0, a_row[t], eps_low, eps_high, dual_clip))
            else:
                row.append(ref_token_loss(logp[i][t], old[i][t], a_row[t], eps_low, eps_high,
                                          dual_clip))
        out.append(row)
    return out


def ref_gae(rewards, values, mask, gamma, lam):
    """Compress each row to its response tokens, run textbook GAE, scatter back."""
    adv_out, ret_out = [], []
    for r_row, v_row, m_row in zip(rewards.tolist(), values.tolist(), mask.tolist(), strict=True):
        idx = [t for t, m in enumerate(m_row) if m]
        r = [r_row[t] for t in idx]
        v = [v_row[t] for t in idx] + [0.0]  # value after the last token is 0
        adv = [0.0] * len(idx)
        running = 0.0
        for k in reversed(range(len(idx))):
            delta = r[k] + gamma * v[k + 1] - v[k]
            running = delta + gamma * lam * running
            adv[k] = running
        a_row, ret_row = [0.0] * len(m_row), [0.0] * len(m_row)
        for k, t in enumerate(idx):
            a_row[t] = adv[k]
            ret_row[t] = adv[k] + v[k]
        adv_out.append(a_row)
        ret_out.append(ret_row)
    return adv_out, ret_out


def ref_whiten(x, mask):
    vals = [v for row_x, row_m in zip(x.tolist(), mask.tolist(), strict=True)
            for v, m in zip(row_x, row_m, strict=True) if m]
    mean = sum(vals) / len(vals)
    var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)
    return [[(v - mean) / math.sqrt(var + 1e-8) if m else 0.0
             for v, m in zip(row_x, row_m, strict=True)]
            for row_x, row_m in zip(x.tolist(), mask.tolist(), strict=True)]


def ref_value_token(v, v_old, ret, c):
    v_clipped = v_old + min(max(v - v_old, -c), c)
    return 0.5 * max((v - ret) ** 2, (v_clipped - ret) ** 2)


def _batch(seed=0, batch=6, seq_len=7, scale=0.3):
    g = torch.Generator().manual_seed(seed)
    logp = torch.randn(batch, seq_len, generator=g, dtype=D) - 2.0
    old = logp + scale * torch.randn(batch, seq_len, generator=g, dtype=D)
    ref = logp + scale * torch.randn(batch, seq_len, generator=g, dtype=D)
    adv = torch.randn(batch, generator=g, dtype=D)
    lengths = torch.tensor([7, 5, 3, 1, 0, 6])[:batch]
    mask = rlviz.mask_from_lengths(lengths, seq_len, dtype=D)
    return logp, old, ref, adv, mask


def _close(actual, expected, tol=1e-12):
    expected = torch.tensor(expected, dtype=D)
    assert torch.allclose(actual.to(D), expected, atol=tol, rtol=tol), (actual, expected)


# ---------------------------------------------------------------- KL estimators

@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_estimate_matches_loop(kind):
    logp, _, ref, _, _ = _batch()
    _close(rlviz.kl_estimate(logp, ref, kind), ref_kl(logp, ref, kind))


def test_kl_estimate_hand_values():
    # logp = log 0.5, ref = log 0.25: d = ref - logp = -log 2, r = 0.5
    logp = torch.tensor([[math.log(0.5)]], dtype=D)
    ref = torch.tensor([[math.log(0.25)]], dtype=D)
    assert rlviz.kl_estimate(logp, ref, "k1").item() == pytest.approx(math.log(2))
    assert rlviz.kl_estimate(logp, ref, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)
    assert rlviz.kl_estimate(logp, ref, "k3").item() == pytest.approx(0.5 - 1 + math.log(2))


def test_approx_kl_is_k3_of_old_against_new():
    """CleanRL: approx_kl = mean((rho - 1) - log rho)."""
    logp, old, _, adv, mask = _batch()
    metrics = rlviz.surrogate_metrics(logp, old, adv, mask=mask)
    vals = [math.exp(p - o) - 1 - (p - o)
            for rp, ro, rm in zip(logp.tolist(), old.tolist(), mask.tolist(), strict=True)
            for p, o, m in zip(rp, ro, rm, strict=True) if m]
    assert metrics["approx_kl"] == pytest.approx(sum(vals) / len(vals), rel=1e-12)


# ---------------------------------------------------------------- group advantages

@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("group_size", [1, 2, 4])
def test_group_advantages_match_loop(scale, group_size):
    rewards = [1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 2.0, -1.0, 0.3, 0.7]
    out = rlviz.group_advantages(torch.tensor(rewards, dtype=D), group_size, scale)
    _close(out, loop_group_advantages(rewards, group_size, scale), tol=1e-10)


def test_group_advantages_hand_values():
    # group {1, 0, 0, 1}: mean 0.5, unbiased std sqrt(1/3)
    out = rlviz.group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=D), 4, eps=0.0)
    expected = 0.5 / math.sqrt(1 / 3)
    _close(out, [expected, -expected, -expected, expected])
    out = rlviz.group_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=D), 4, "none")
    _close(out, [0.5, -0.5, -0.5, 0.5])


def test_batch_scale_uses_the_std_of_all_raw_rewards():
    rewards = torch.tensor([0.0, 2.0, 10.0, 14.0], dtype=D)
    # groups {0, 2} and {10, 14}: centred -1, 1, -2, 2; batch std of the raw rewards:
    batch_std = statistics.stdev([0.0, 2.0, 10.0, 14.0])
    out = rlviz.group_advantages(rewards, 2, "batch", eps=0.0)
    _close(out, [-1 / batch_std, 1 / batch_std, -2 / batch_std, 2 / batch_std])


# ---------------------------------------------------------------- clipped surrogate

# (A, rho, eps_low, eps_high, expected loss, expected d loss / d logp), worked by hand:
# loss = -min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A); gradient -rho A or 0 if clipped.
HAND_CASES = [
    (1.0, 0.5, 0.2, 0.2, -0.5, -0.5),
    (1.0, 1.25, 0.2, 0.2, -1.2, 0.0),
    (1.0, 1.5, 0.2, 0.2, -1.2, 0.0),
    (-1.0, 0.5, 0.2, 0.2, 0.8, 0.0),
    (-1.0, 1.25, 0.2, 0.2, 1.25, 1.25),
    (-1.0, 1.5, 0.2, 0.2, 1.5, 1.5),
    (1.0, 0.5, 0.2, 0.28, -0.5, -0.5),
    (1.0, 1.25, 0.2, 0.28, -1.25, -1.25),  # clip-higher: 1.25 < 1.28 is not clipped
    (1.0, 1.5, 0.2, 0.28, -1.28, 0.0),
    (-1.0, 0.5, 0.2, 0.28, 0.8, 0.0),
    (-1.0, 1.25, 0.2, 0.28, 1.25, 1.25),
    (-1.0, 1.5, 0.2, 0.28, 1.5, 1.5),
]


@pytest.mark.parametrize("adv, rho, eps_low, eps_high, loss, grad", HAND_CASES)
def test_single_token_clipping_hand_values(adv, rho, eps_low, eps_high, loss, grad):
    logp = torch.tensor([[math.log(rho)]], dtype=D, requires_grad=True)
    old = torch.zeros(1, 1, dtype=D)
    out = rlviz.clipped_surrogate(logp, old, torch.tensor([adv], dtype=D), eps_low, eps_high)
    out.sum().backward()
    assert out.item() == pytest.approx(loss, abs=1e-12)
    assert logp.grad.item() == pytest.approx(grad, abs=1e-12)
    clipfrac = rlviz.surrogate_metrics(logp.detach(), old, torch.tensor([adv], dtype=D),
                                       eps_low, eps_high)["clipfrac"]
    assert clipfrac == (1.0 if grad == 0.0 else 0.0)


def test_dual_clip_hand_values():
    # A = -1, c = 3: rho = 4 gives -min(-4, -0.8) = 4, capped at -c A = 3, zero gradient;
    # rho = 1.5 stays 1.5; A = +1 is never capped.
    logp = torch.tensor([[math.log(4.0), math.log(1.5), math.log(4.0)]], dtype=D,
                        requires_grad=True)
    adv = torch.tensor([[-1.0, -1.0, 1.0]], dtype=D)
    out = rlviz.clipped_surrogate(logp, torch.zeros_like(logp), adv, dual_clip=3.0)
    out.sum().backward()
    _close(out, [[3.0, 1.5, -1.2]])
    _close(logp.grad, [[0.0, 1.5, 0.0]])
    metrics = rlviz.surrogate_metrics(logp.detach(), torch.zeros_like(logp), adv, dual_clip=3.0)
    assert metrics["clipfrac_dual"] == pytest.approx(1 / 3)
    assert metrics["clipfrac"] == pytest.approx(1 / 3)  # the A > 0, rho = 4 token


@pytest.mark.parametrize("eps_high, dual_clip", [(None, None), (0.28, None), (0.28, 2.0)])
@pytest.mark.parametrize("adv_per_token", [False, True])
def test_token_surrogate_matches_loop(eps_high, dual_clip, adv_per_token):
    logp, old, _, adv, mask = _batch(scale=0.6)
    if adv_per_token:
        adv = adv.unsqueeze(1) * torch.linspace(-1, 2, logp.shape[1], dtype=D)
    out = rlviz.clipped_surrogate(logp, old, adv, 0.2, eps_high, dual_clip, mask=mask)
    _close(out, ref_surrogate(logp, old, adv, mask, 0.2, eps_high or 0.2, dual_clip))


def test_sequence_surrogate_matches_loop():
    logp, old, _, adv, mask = _batch(scale=0.05)
    out = rlviz.clipped_surrogate(logp, old, adv, 3e-4, 4e-4, level="sequence", mask=mask)
    _close(out, ref_surrogate(logp, old, adv, mask, 3e-4, 4e-4, level="sequence"))


def test_sequence_ratio_gradient_is_spread_over_the_response():
    """GSPO, unclipped: loss_i = -s_i A_i on each token; seq-mean-token-mean over B' non-empty
    responses gives d loss / d logp_it = -A_i s_i / (L_i B')."""
    logp = torch.tensor([[0.1, -0.2, 0.3], [0.05, 0.0, 0.0]], dtype=D, requires_grad=True)
    old = torch.zeros(2, 3, dtype=D)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=D)
    adv = torch.tensor([0.7, -1.3], dtype=D)
    per_token = rlviz.clipped_surrogate(logp, old, adv, 10.0 - 9.5, 10.0, level="sequence",
                                        mask=mask)
    rlviz.aggregate(per_token, mask, "seq-mean-token-mean").backward()
    s0, s1 = math.exp((0.1 - 0.2 + 0.3) / 3), math.exp(0.05)
    expected = [[-0.7 * s0 / 3 / 2] * 3, [1.3 * s1 / 1 / 2, 0.0, 0.0]]
    _close(logp.grad, expected)


# ---------------------------------------------------------------- aggregation

@pytest.mark.parametrize("mode", ["seq-mean-token-mean", "token-mean", "seq-mean-token-sum",
                                  "seq-mean-token-sum-norm"])
def test_aggregate_matches_loop(mode):
    logp, old, _, adv, mask = _batch()
    loss = torch.randn(mask.shape, dtype=D, generator=torch.Generator().manual_seed(3))
    assert rlviz.aggregate(loss, mask, mode).item() == pytest.approx(
        ref_aggregate(loss, mask, mode), rel=1e-12)
    bool_mask = mask.bool()
    assert rlviz.aggregate(loss, bool_mask, mode).item() == pytest.approx(
        ref_aggregate(loss, mask, mode), rel=1e-12)


def test_aggregate_hand_values():
    # two responses: [1, 2, 3] and [4, pad, pad]; one empty response [pad, pad, pad]
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 9.0, 9.0], [9.0, 9.0, 9.0]], dtype=D)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=D)
    agg = rlviz.aggregate
    assert agg(loss, mask, "seq-mean-token-mean").item() == pytest.approx((2.0 + 4.0) / 2)
    assert agg(loss, mask, "token-mean").item() == pytest.approx(10.0 / 4)
    assert agg(loss, mask, "seq-mean-token-sum").item() == pytest.approx((6.0 + 4.0) / 2)
    # B = 3 (the empty response counts), max_len = T = 3 or the given 8
    assert agg(loss, mask, "seq-mean-token-sum-norm").item() == pytest.approx(10.0 / 9)
    assert agg(loss, mask, "seq-mean-token-sum-norm", max_len=8).item() == pytest.approx(10 / 24)


# ---------------------------------------------------------------- critic

def test_gae_three_step_hand_example():
    rewards = torch.tensor([[0.0, 0.0, 1.0]], dtype=D)
    values = torch.tensor([[0.5, 0.6, 0.7]], dtype=D)
    mask = torch.ones(1, 3, dtype=D)
    # gamma = 1, lam = 0.95: delta = 0.1, 0.1, 0.3; A2 = 0.3, A1 = 0.1 + 0.95 * 0.3 = 0.385,
    # A0 = 0.1 + 0.95 * 0.385 = 0.46575; R = A + V
    adv, ret = rlviz.gae(rewards, values, mask, gamma=1.0, lam=0.95)
    _close(adv, [[0.46575, 0.385, 0.3]])
    _close(ret, [[0.96575, 0.985, 1.0]])
    # gamma = 0.9, lam = 0.8: delta = 0.04, 0.03, 0.3; A1 = 0.03 + 0.72 * 0.3 = 0.246,
    # A0 = 0.04 + 0.72 * 0.246 = 0.21712
    adv, ret = rlviz.gae(rewards, values, mask, gamma=0.9, lam=0.8)
    _close(adv, [[0.21712, 0.246, 0.3]])
    _close(ret, [[0.71712, 0.846, 1.0]])
    # lam = 1, gamma = 1: Monte-Carlo return minus value
    adv, _ = rlviz.gae(rewards, values, mask, gamma=1.0, lam=1.0)
    _close(adv, [[0.5, 0.4, 0.3]])
    # lam = 0: one-step TD errors
    adv, _ = rlviz.gae(rewards, values, mask, gamma=1.0, lam=0.0)
    _close(adv, [[0.1, 0.1, 0.3]])


def test_gae_matches_loop_with_prompt_padding_and_holes():
    g = torch.Generator().manual_seed(5)
    rewards = torch.randn(4, 8, dtype=D, generator=g)
    values = torch.randn(4, 8, dtype=D, generator=g)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1],
                         [0, 1, 0, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0]], dtype=D)
    adv, ret = rlviz.gae(rewards, values, mask, gamma=0.97, lam=0.9)
    ref_adv, ref_ret = ref_gae(rewards, values, mask, 0.97, 0.9)
    _close(adv, ref_adv)
    _close(ret, ref_ret)


def test_whiten_matches_loop_and_edge_cases():
    logp, *_, mask = _batch()
    out = rlviz.whiten(logp, mask)
    _close(out, ref_whiten(logp, mask))
    on = mask.bool()
    assert out[on].mean().item() == pytest.approx(0.0, abs=1e-12)
    assert out[on].var().item() == pytest.approx(1.0, abs=1e-6)
    one = torch.zeros_like(mask)
    one[0, 2] = 1
    _close(rlviz.whiten(logp, one), [[0.0] * 7] * 6)  # one entry: centred value is 0


def test_value_loss_matches_loop():
    g = torch.Generator().manual_seed(7)
    values = torch.randn(6, 7, dtype=D, generator=g)
    old_values = values + 0.4 * torch.randn(6, 7, dtype=D, generator=g)
    returns = torch.randn(6, 7, dtype=D, generator=g)
    *_, mask = _batch()
    per_token = [[ref_value_token(v, vo, r, 0.2)
                  for v, vo, r in zip(rv, rvo, rr, strict=True)]
                 for rv, rvo, rr in zip(values.tolist(), old_values.tolist(), returns.tolist(),
                                        strict=True)]
    expected = ref_aggregate(torch.tensor(per_token, dtype=D), mask, "token-mean")
    out = rlviz.value_loss(values, old_values, returns, mask, 0.2)
    assert out.item() == pytest.approx(expected, rel=1e-12)
    # hand: V = 1.0, V_old = 0.5, R = 0: unclipped 1.0, clipped (0.7)^2 = 0.49 -> 0.5 * 1.0
    one = torch.ones(1, 1, dtype=D)
    assert rlviz.value_loss(one, 0.5 * one, 0 * one, one).item() == pytest.approx(0.5)
    # V = 1.0, V_old = 0.5, R = 2: unclipped 1.0, clipped (0.7 - 2)^2 = 1.69 -> 0.845
    assert rlviz.value_loss(one, 0.5 * one, 2 * one, one).item() == pytest.approx(0.845)
    metrics = rlviz.value_metrics(one, 0.5 * one, 2 * one, one)
    assert metrics["vf_clipfrac"] == 1.0


def test_token_entropy_matches_loop():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 5, dtype=D, generator=g)
    logits[0, 0, 1] = -math.inf
    out = rlviz.token_entropy(logits)
    for i in range(2):
        for t in range(3):
            row = logits[i, t].tolist()
            z = sum(math.exp(x) for x in row)
            h = -sum(math.exp(x) / z * (x - math.log(z)) for x in row if x != -math.inf)
            assert out[i, t].item() == pytest.approx(h, rel=1e-12)
