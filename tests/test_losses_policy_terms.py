"""CISPO, SAPO, GMPO, RLOO and REINFORCE++ against plain float64 loops written from the
papers' equations (and verl 0.9.1's code where the papers leave a choice), gradients
included, plus bad input and extreme log-ratios."""

import math

import pytest
import torch

from rlviz.losses.policy_terms import (
    cispo_term,
    clip_cov_term,
    gmpo_sequence_loss,
    kl_cov_term,
    reinforce_pp_advantages,
    rloo_advantages,
    sapo_term,
)


def data(seed=0, batch=4, width=5):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(batch, width, generator=g, dtype=torch.float64) * 3
    old = logp + 0.4 * torch.randn(batch, width, generator=g, dtype=torch.float64)
    adv = torch.randn(batch, generator=g, dtype=torch.float64)
    mask = torch.ones(batch, width, dtype=torch.float64)
    mask[1, 3:] = 0
    mask[2, 1:] = 0
    return logp, old, adv, mask


def test_cispo_value_and_gradient_by_loop():
    logp, old, adv, _ = data()
    logp.requires_grad_(True)
    loss = cispo_term(logp, old, adv, 0.2, 0.28)
    loss.sum().backward()
    for i in range(logp.shape[0]):
        for t in range(logp.shape[1]):
            rho = math.exp(logp[i, t].item() - old[i, t].item())
            weight = min(max(rho, 0.8), 1.28)
            assert loss[i, t].item() == pytest.approx(-weight * adv[i].item() * logp[i, t].item())
            # d/dlogp of -sg(w) A logp = -w A: the weight carries no gradient
            assert logp.grad[i, t].item() == pytest.approx(-weight * adv[i].item())


def test_cispo_keeps_a_gradient_where_the_clipped_surrogate_has_none():
    logp = torch.tensor([[0.0]], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([[-1.0]], dtype=torch.float64)  # rho = e > 1 + eps
    cispo_term(logp, old, torch.tensor([1.0], dtype=torch.float64), 0.2, 0.2).sum().backward()
    assert logp.grad.item() == pytest.approx(-1.2)


def test_sapo_value_and_gradient_by_loop():
    logp, old, adv, _ = data(1)
    logp.requires_grad_(True)
    loss = sapo_term(logp, old, adv, tau_pos=1.0, tau_neg=1.05)
    loss.sum().backward()
    for i in range(logp.shape[0]):
        tau = 1.0 if adv[i].item() > 0 else 1.05
        for t in range(logp.shape[1]):
            rho = math.exp(logp[i, t].item() - old[i, t].item())
            s = 1.0 / (1.0 + math.exp(-tau * (rho - 1.0)))
            assert loss[i, t].item() == pytest.approx(-(4.0 / tau) * s * adv[i].item())
            # d/dlogp = -(4/tau) * tau * s (1 - s) * rho * A
            assert logp.grad[i, t].item() == pytest.approx(-4.0 * s * (1 - s) * rho * adv[i].item())


def test_sapo_on_policy_gradient_equals_ppo():
    logp = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    adv = torch.tensor([0.7, -1.3], dtype=torch.float64)
    sapo_term(logp, logp.detach(), adv).sum().backward()
    assert torch.allclose(logp.grad, -adv[:, None].expand(2, 3))  # f'(1) = 1 for any tau


def test_gmpo_by_loop():
    logp, old, adv, mask = data(2)
    logp.requires_grad_(True)
    loss = gmpo_sequence_loss(logp, old, adv, mask, 0.4, 0.4)
    for i in range(logp.shape[0]):
        a = adv[i].item()
        sign = (a > 0) - (a < 0)
        terms = []
        for t in range(logp.shape[1]):
            if mask[i, t] == 0:
                continue
            lr = logp[i, t].item() - old[i, t].item()
            clipped = min(max(lr, -0.4), 0.4)
            terms.append(sign * min(sign * lr, sign * clipped))
        expected = -a * math.exp(sum(terms) / len(terms))
        assert loss[i].item() == pytest.approx(expected)
    loss.sum().backward()
    assert torch.all(logp.grad[mask == 0] == 0)


def test_rloo_is_leave_one_out_and_g_over_g_minus_1_times_grpo_centring():
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.25, 3.0, 3.0], dtype=torch.float64)
    adv = rloo_advantages(rewards, 3)
    for i in range(6):
        group = range(3 * (i // 3), 3 * (i // 3) + 3)
        others = [rewards[j].item() for j in group if j != i]
        assert adv[i].item() == pytest.approx(rewards[i].item() - sum(others) / 2)
        mean = sum(rewards[j].item() for j in group) / 3
        assert adv[i].item() == pytest.approx(3 / 2 * (rewards[i].item() - mean))
    assert torch.equal(rloo_advantages(rewards, 1), torch.zeros(6, dtype=torch.float64))


def masked_whiten_loop(values, mask):
    on = [(i, t) for i in range(len(mask)) for t in range(len(mask[0])) if mask[i][t]]
    mean = sum(values[i][t] for i, t in on) / len(on)
    var = sum((values[i][t] - mean) ** 2 for i, t in on) / (len(on) - 1)
    return [[(values[i][t] - mean) / math.sqrt(var + 1e-8) if mask[i][t] else 0.0
             for t in range(len(mask[0]))] for i in range(len(mask))]


def test_reinforce_pp_returns_then_global_whitening():
    _, _, _, mask = data()
    rewards = torch.tensor([1.0, 0.2, 0.5, 0.0], dtype=torch.float64)
    gamma = 0.9
    adv = reinforce_pp_advantages(rewards, mask, gamma=gamma)
    m = mask.tolist()
    returns = []
    for i in range(4):
        length = int(sum(m[i]))
        returns.append([rewards[i].item() * gamma ** (length - 1 - t) if m[i][t] else 0.0
                        for t in range(5)])
    expected = masked_whiten_loop(returns, m)
    for row, want in zip(adv.tolist(), expected):
        assert row == pytest.approx(want)


def test_reinforce_pp_baseline_subtracts_the_group_mean_then_whitens():
    _, _, _, mask = data()
    rewards = torch.tensor([1.0, 0.2, 0.5, 0.0], dtype=torch.float64)
    adv = reinforce_pp_advantages(rewards, mask, group_size=2)
    m = mask.tolist()
    centred = [1.0 - 0.6, 0.2 - 0.6, 0.5 - 0.25, 0.0 - 0.25]
    expected = masked_whiten_loop([[centred[i] * m[i][t] for t in range(5)] for i in range(4)], m)
    for row, want in zip(adv.tolist(), expected):
        assert row == pytest.approx(want)


def test_extreme_log_ratios_stay_finite():
    logp = torch.tensor([[0.0, -1000.0]], requires_grad=True)
    old = torch.tensor([[-1000.0, 0.0]])
    adv = torch.tensor([1.0])
    mask = torch.ones(1, 2)
    for loss in (cispo_term(logp, old, adv, 0.2, 0.2), sapo_term(logp, old, adv),
                 gmpo_sequence_loss(logp, old, adv, mask)):
        assert torch.isfinite(loss).all()
        logp.grad = None
        loss.sum().backward()
        assert torch.isfinite(logp.grad).all()
    equal = reinforce_pp_advantages(torch.ones(4), torch.ones(4, 3), group_size=2)
    assert torch.equal(equal, torch.zeros(4, 3))  # all-equal rewards: zeros, not NaN


@pytest.mark.parametrize("call, word", [
    (lambda: cispo_term(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2), 0.2, 0.2),
     "old_logp"),
    (lambda: cispo_term(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3), 0.2, 0.2),
     "advantages"),
    (lambda: cispo_term(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), -0.1, 0.2),
     "eps_low"),
    (lambda: sapo_term(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), tau_pos=0.0),
     "tau_pos"),
    (lambda: gmpo_sequence_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2),
                                torch.ones(2, 2)), "mask"),
    (lambda: rloo_advantages(torch.zeros(5), 2), "group_size"),
    (lambda: rloo_advantages(torch.zeros(4), 0), "group_size"),
    (lambda: reinforce_pp_advantages(torch.zeros(4), torch.ones(4, 3), gamma=1.5), "gamma"),
    (lambda: reinforce_pp_advantages(torch.zeros(4), torch.ones(3, 3)), "mask"),
])
def test_bad_input_names_the_argument(call, word):
    with pytest.raises((ValueError, TypeError)) as error:
        call()
    assert word in str(error.value)


def covariances(logp, adv, mask):
    on = [(i, t) for i in range(logp.shape[0]) for t in range(logp.shape[1]) if mask[i, t]]
    mean_a = sum(adv[i].item() for i, _ in on) / len(on)
    mean_l = sum(logp[i, t].item() for i, t in on) / len(on)
    return {(i, t): (adv[i].item() - mean_a) * (logp[i, t].item() - mean_l) for i, t in on}


def test_kl_cov_penalises_the_top_covariance_tokens_by_loop():
    logp, old, adv, mask = data(4)
    loss = kl_cov_term(logp, old, adv, mask, ratio=0.2, kl_coef=0.5)
    cov = covariances(logp, adv, mask)
    count = max(int(0.2 * len(cov)), 1)
    top = sorted(cov, key=cov.get, reverse=True)[:count]
    for i in range(logp.shape[0]):
        for t in range(logp.shape[1]):
            lr = logp[i, t].item() - old[i, t].item()
            expected = -adv[i].item() * math.exp(lr) + (0.5 * abs(lr) if (i, t) in top else 0.0)
            assert loss[i, t].item() == pytest.approx(expected)


def test_clip_cov_zeroes_only_unclipped_tokens_inside_the_covariance_window():
    logp, old, adv, mask = data(5)
    cov = covariances(logp, adv, mask)
    low, high = sorted(cov.values())[2], 10.0  # a window that holds several tokens
    loss = clip_cov_term(logp, old, adv, mask, 0.2, 0.2, ratio=0.25, low=low, high=high,
                         generator=torch.Generator().manual_seed(0))
    zeroed = []
    for i in range(logp.shape[0]):
        for t in range(logp.shape[1]):
            rho = math.exp(logp[i, t].item() - old[i, t].item())
            a = adv[i].item()
            ppo = max(-a * rho, -a * min(max(rho, 0.8), 1.2))
            if loss[i, t].item() == 0.0 and ppo != 0.0:
                zeroed.append((i, t))
                assert mask[i, t] == 1 and low < cov[(i, t)] < high
                assert not (-a * min(max(rho, 0.8), 1.2) > -a * rho)  # not cut by the clip
            else:
                assert loss[i, t].item() == pytest.approx(ppo)
    assert len(zeroed) == max(int(0.25 * len(cov)), 1)
