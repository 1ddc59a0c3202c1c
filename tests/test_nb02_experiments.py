"""Notebook 02's experiments against independent references: plain loops in float64,
enumeration, finite differences and hand-computed values."""

import itertools
import math

import pytest
import torch
from references import loop_gae

from rlviz.experiments import policy_gradient as pg

PROBLEM = pg.one_token_problem()


def softmax_list(logits):
    m = max(logits)
    e = [math.exp(z - m) for z in logits]
    return [x / sum(e) for x in e]


# ---------------------------------------------------------------------------------------
# the one-token problem
# ---------------------------------------------------------------------------------------


def test_exact_gradient_matches_closed_form_by_loops():
    probs = softmax_list(list(pg.INIT_LOGITS))
    j = sum(p * r for p, r in zip(probs, pg.REWARDS))
    expected = [p * (r - j) for p, r in zip(probs, pg.REWARDS)]
    assert pg.exact_gradient(PROBLEM).tolist() == pytest.approx(expected, abs=1e-12)
    assert PROBLEM.expected_reward == pytest.approx(j, abs=1e-12)


def test_exact_gradient_matches_finite_differences():
    def j_of(logits):
        probs = softmax_list(logits)
        return sum(p * r for p, r in zip(probs, pg.REWARDS))

    h = 1e-6
    base = list(pg.INIT_LOGITS)
    for k in range(5):
        up, down = list(base), list(base)
        up[k] += h
        down[k] -= h
        fd = (j_of(up) - j_of(down)) / (2 * h)
        assert pg.exact_gradient(PROBLEM)[k].item() == pytest.approx(fd, abs=1e-8)


def test_score_is_the_gradient_of_log_softmax():
    probs = PROBLEM.probs
    for a in range(5):
        logits = PROBLEM.logits.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(logits.log_softmax(-1)[a], logits)
        assert torch.allclose(pg.score(probs, torch.tensor(a)), grad, atol=1e-12)


def test_estimates_equal_a_loop_over_the_same_samples():
    actions = pg.sample_actions(PROBLEM.probs, 3, 4, seed=7)  # (S, N)
    probs = softmax_list(list(pg.INIT_LOGITS))
    j = PROBLEM.expected_reward
    for baseline in pg.BASELINES:
        est = pg.score_function_estimates(PROBLEM, num_samples=4, num_seeds=3,
                                          baseline=baseline, seed=7)
        for s in range(3):
            rewards = [pg.REWARDS[a] for a in actions[s].tolist()]
            expected = [0.0] * 5
            for i, a in enumerate(actions[s].tolist()):
                others = [r for k, r in enumerate(rewards) if k != i]
                b = {"none": 0.0, "expected": j, "batch-mean": sum(rewards) / 4,
                     "leave-one-out": sum(others) / 3}[baseline]
                for k in range(5):
                    expected[k] += (rewards[i] - b) * ((k == a) - probs[k]) / 4
            assert est[s].tolist() == pytest.approx(expected, abs=1e-12), baseline


def test_baselines_unbiased_except_batch_mean_which_shrinks_by_n_minus_1_over_n():
    exact = pg.exact_gradient(PROBLEM)
    n, seeds = 8, 40000
    for baseline in pg.BASELINES:
        est = pg.score_function_estimates(PROBLEM, num_samples=n, num_seeds=seeds,
                                          baseline=baseline, seed=3)
        stats = pg.estimator_stats(est, exact)
        standard_error = math.sqrt(stats["variance"] / seeds)
        target = exact * ((n - 1) / n if baseline == "batch-mean" else 1.0)
        assert (stats["mean"] - target).norm().item() < 5 * standard_error, baseline


def test_measured_variance_matches_the_exact_one_sample_variance_over_n():
    n = 8
    for baseline, b in (("none", 0.0), ("expected", PROBLEM.expected_reward)):
        est = pg.score_function_estimates(PROBLEM, num_samples=n, num_seeds=40000,
                                          baseline=baseline, seed=5)
        exact_var = pg.baseline_variance(PROBLEM, [b])[0].item() / n
        assert est.var(0).sum().item() == pytest.approx(exact_var, rel=0.05)


def test_baseline_variance_by_enumeration_loop_and_its_minimum():
    probs = softmax_list(list(pg.INIT_LOGITS))
    grad = pg.exact_gradient(PROBLEM).tolist()
    for b in (-0.3, 0.0, 0.4, 1.1):
        second = sum(
            probs[a] * (pg.REWARDS[a] - b) ** 2
            * sum(((k == a) - probs[k]) ** 2 for k in range(5))
            for a in range(5)
        )
        expected = second - sum(g * g for g in grad)
        assert pg.baseline_variance(PROBLEM, [b])[0].item() == pytest.approx(expected, abs=1e-12)
    best = pg.optimal_baseline(PROBLEM)
    at_best = pg.baseline_variance(PROBLEM, [best, best - 0.01, best + 0.01])
    assert at_best[0] < at_best[1] and at_best[0] < at_best[2]


def test_baseline_weights_leave_one_out_by_hand_and_bad_names():
    r = torch.tensor([[1.0, 2.0, 6.0]], dtype=torch.float64)
    loo = pg.baseline_weights(r, "leave-one-out", 0.0)
    assert loo.tolist() == [[1 - 4.0, 2 - 3.5, 6 - 1.5]]
    assert pg.baseline_weights(r, 0.5, 0.0).tolist() == [[0.5, 1.5, 5.5]]
    with pytest.raises(ValueError, match="leave-one-out"):
        pg.baseline_weights(r, "average", 0.0)
    with pytest.raises(ValueError, match="num_samples >= 2"):
        pg.baseline_weights(r[:, :1], "leave-one-out", 0.0)


def test_reinforce_loss_gradient_is_the_formula():
    actions = torch.tensor([0, 3, 3, 1])
    adv = torch.tensor([0.5, -0.2, 0.1, 0.3], dtype=torch.float64)
    probs = softmax_list(list(pg.INIT_LOGITS))
    expected = [sum(adv[i].item() * ((k == a) - probs[k]) for i, a in enumerate(actions.tolist()))
                / 4 for k in range(5)]
    got = pg.reinforce_loss_gradient(PROBLEM, actions, adv)
    assert got.tolist() == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------------------------------
# the importance ratio
# ---------------------------------------------------------------------------------------


def test_importance_reuse_exact_columns_by_loops():
    result = pg.importance_reuse(PROBLEM, [0.0, 1.5], num_samples=4, num_seeds=2000, seed=0)
    p_old = softmax_list(list(pg.INIT_LOGITS))
    b = PROBLEM.expected_reward
    grad0 = pg.exact_gradient(PROBLEM)
    direction = (grad0 / grad0.norm()).tolist()
    for i, step in enumerate([0.0, 1.5]):
        logits = [z + step * d for z, d in zip(pg.INIT_LOGITS, direction)]
        p_new = softmax_list(logits)
        j_new = sum(p * r for p, r in zip(p_new, pg.REWARDS))
        grad = [p * (r - j_new) for p, r in zip(p_new, pg.REWARDS)]
        naive = [sum(p_old[a] * (pg.REWARDS[a] - b) * ((k == a) - p_new[k]) for a in range(5))
                 for k in range(5)]
        naive_bias = math.sqrt(sum((x - g) ** 2 for x, g in zip(naive, grad)))
        m2 = sum(p_new[a] ** 2 / p_old[a] for a in range(5))
        ratio_var = sum(
            p_old[a] * (p_new[a] / p_old[a]) ** 2 * (pg.REWARDS[a] - b) ** 2
            * sum(((k == a) - p_new[k]) ** 2 for k in range(5)) for a in range(5)
        ) - sum(g * g for g in grad)
        kl = sum(p * math.log(p / q) for p, q in zip(p_old, p_new))
        assert result["naive_bias"][i].item() == pytest.approx(naive_bias, abs=1e-12)
        assert result["ratio_bias"][i].item() == pytest.approx(0.0, abs=1e-12)
        assert result["rho_second_moment"][i].item() == pytest.approx(m2, abs=1e-12)
        assert result["ratio_variance"][i].item() == pytest.approx(ratio_var, abs=1e-12)
        assert result["kl"][i].item() == pytest.approx(kl, abs=1e-12)
        assert result["ess"][i].item() == pytest.approx(4 / m2, abs=1e-12)
    assert result["naive_bias"][0].item() == pytest.approx(0.0, abs=1e-12)


def test_importance_reuse_monte_carlo_agrees_with_exact():
    result = pg.importance_reuse(PROBLEM, [0.0, 2.0, 4.0], num_samples=8, num_seeds=20000,
                                 seed=1)
    assert torch.allclose(result["ratio_variance_mc"], result["ratio_variance"], rtol=0.05)
    assert torch.allclose(result["naive_bias_mc"], result["naive_bias"], atol=0.005)
    assert (result["ratio_bias_mc"] < 0.005).all()
    # the variance grows with the distance, the effective sample size falls
    assert (result["ratio_variance"].diff() > 0).all()
    assert (result["ess"].diff() < 0).all()


def test_surrogate_gradient_is_the_importance_weighted_estimate():
    actions = torch.tensor([2, 0, 3, 3, 1])
    adv = torch.tensor([0.3, -0.5, 0.2, 0.1, -0.4], dtype=torch.float64)
    new_logits = [0.2, -0.1, 0.4, 0.9, 0.0]
    p_old = softmax_list(list(pg.INIT_LOGITS))
    p_new = softmax_list(new_logits)
    expected = [sum(p_new[a] / p_old[a] * adv[i].item() * ((k == a) - p_new[k])
                    for i, a in enumerate(actions.tolist())) / 5 for k in range(5)]
    got = pg.surrogate_gradient(PROBLEM, torch.tensor(new_logits, dtype=torch.float64), actions,
                                adv)
    assert got.tolist() == pytest.approx(expected, abs=1e-12)
    at_old = pg.surrogate_gradient(PROBLEM, PROBLEM.logits, actions, adv)
    assert torch.allclose(at_old, pg.reinforce_loss_gradient(PROBLEM, actions, adv), atol=1e-12)


def test_epochs_on_one_batch_clip_stops_the_walk():
    runs = {loss: pg.epochs_on_one_batch(PROBLEM, loss, epochs=60) for loss in pg.EPOCH_LOSSES}
    assert runs["clipped"]["kl"][-1] < 0.1 < runs["ratio"]["kl"][-1]
    assert runs["clipped"]["kl"][-1] == pytest.approx(runs["clipped"]["kl"][-10].item(),
                                                      abs=1e-9)  # stopped: zero gradient
    assert runs["naive"]["kl"][0] == 0.0 and len(runs["naive"]["kl"]) == 61
    with pytest.raises(ValueError, match="naive"):
        pg.epochs_on_one_batch(PROBLEM, "reinforce")


def loop_walk(actions, loss, epochs, lr, num_samples):
    """Gradient steps on one batch by plain float64 loops: the naive loss's gradient is
    -(1/N) sum_i A_i (onehot(a_i) - pi), the ratio loss's -(1/N) sum_i rho_i A_i (onehot - pi).
    Returns the final probabilities and ESS = N / sum_k pi_k^2 / pi_old_k."""
    p_old = softmax_list(list(pg.INIT_LOGITS))
    j_old = sum(p * r for p, r in zip(p_old, pg.REWARDS))
    theta = list(pg.INIT_LOGITS)
    for _ in range(epochs):
        probs = softmax_list(theta)
        grad = [0.0] * 5
        for a in actions:
            weight = pg.REWARDS[a] - j_old
            if loss == "ratio":
                weight *= probs[a] / p_old[a]
            for k in range(5):
                grad[k] -= weight * ((k == a) - probs[k]) / num_samples
        theta = [t - lr * g for t, g in zip(theta, grad)]
    probs = softmax_list(theta)
    return probs, num_samples / sum(q * q / p for p, q in zip(p_old, probs))


@pytest.mark.parametrize("loss", ["naive", "ratio"])
def test_epochs_on_one_and_many_batches_match_loops(loss):
    many = pg.epochs_on_many_batches(PROBLEM, loss, num_batches=4, epochs=7, lr=1.0,
                                     num_samples=6, seed=10)
    for b in range(4):
        actions = pg.sample_actions(PROBLEM.probs, 1, 6, seed=10 + b)[0].tolist()
        probs, ess = loop_walk(actions, loss, epochs=7, lr=1.0, num_samples=6)
        one = pg.epochs_on_one_batch(PROBLEM, loss, epochs=7, lr=1.0, num_samples=6,
                                     seed=10 + b)
        assert one["probs"].tolist() == pytest.approx(probs, abs=1e-12)
        assert one["ess"][-1].item() == pytest.approx(ess, abs=1e-10)
        assert one["ess"][0].item() == 6.0
        assert many["best_prob"][b].item() == pytest.approx(probs[0], abs=1e-12)  # "great"
        assert many["ess"][b].item() == pytest.approx(ess, abs=1e-10)
        j = sum(p * r for p, r in zip(probs, pg.REWARDS))
        assert many["expected_reward"][b].item() == pytest.approx(j, abs=1e-12)
        assert bool(many["best_in_batch"][b]) == (0 in actions)
    with pytest.raises(ValueError, match="num_batches"):
        pg.epochs_on_many_batches(PROBLEM, loss, num_batches=0)


def test_sequence_ratio_second_moment_by_enumeration():
    # two independent tokens: E_old[(rho1 rho2)^2] = (E_old[rho^2])^2
    p_old = softmax_list([0.0, 0.5, -0.3])
    p_new = softmax_list([0.2, 0.1, 0.0])
    m2 = sum(q * q / p for p, q in zip(p_old, p_new))
    pair = sum(p_old[a] * p_old[b] * (p_new[a] / p_old[a] * p_new[b] / p_old[b]) ** 2
               for a, b in itertools.product(range(3), repeat=2))
    assert pg.sequence_ratio_second_moment(m2, [2])[0].item() == pytest.approx(pair, abs=1e-12)


# ---------------------------------------------------------------------------------------
# the entropy bonus
# ---------------------------------------------------------------------------------------


def test_entropy_gradient_matches_autograd():
    logits = torch.tensor([[0.3, -1.0, 2.0, 0.0], [5.0, 5.0, -3.0, 1.0]], dtype=torch.float64)
    x = logits.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(pg.entropy(x.softmax(-1)).sum(), x)
    assert torch.allclose(pg.entropy_gradient(logits.softmax(-1)), grad, atol=1e-12)


def test_entropy_bonus_run_one_step_equals_an_autograd_step():
    coefs, seeds, n, lr = [0.0, 0.3], 3, 4, 2.0
    run = pg.entropy_bonus_run(PROBLEM, coefs, steps=1, lr=lr, num_samples=n,
                               num_seeds=seeds, seed=11)
    # replay the same draws with an autograd loss written independently
    generator = torch.Generator().manual_seed(11)
    theta = PROBLEM.logits.expand(2, seeds, 5).clone().requires_grad_(True)
    probs = theta.softmax(-1)
    actions = torch.multinomial(probs.detach().reshape(-1, 5), n, replacement=True,
                                generator=generator).reshape(2, seeds, n)
    r = PROBLEM.rewards[actions]
    adv = r - (r.sum(-1, keepdim=True) - r) / (n - 1)
    logp = theta.log_softmax(-1).gather(-1, actions)
    ent = -(probs * probs.log()).sum(-1)
    loss = (-(adv * logp).mean(-1) - torch.tensor(coefs).view(2, 1) * ent).sum()
    (grad,) = torch.autograd.grad(loss, theta)
    new_probs = (theta - lr * grad).softmax(-1).detach()
    assert torch.allclose(run["probs"], new_probs.mean(1), atol=1e-12)
    new_ent = -(new_probs * new_probs.log()).sum(-1).mean(1)
    assert torch.allclose(run["entropy"][:, 1], new_ent, atol=1e-12)


def test_entropy_bonus_converges_to_softmax_of_r_over_c():
    run = pg.entropy_bonus_run(PROBLEM, [0.0, 0.5], steps=300, num_seeds=16, seed=2)
    target = softmax_list([r / 0.5 for r in pg.REWARDS])
    limit = -sum(p * math.log(p) for p in target)
    assert run["limit_entropy"][1].item() == pytest.approx(limit, abs=1e-12)
    assert run["limit_entropy"][0].item() == 0.0
    assert run["entropy"][1, -1].item() == pytest.approx(limit, abs=0.03)
    assert run["probs"][1].tolist() == pytest.approx(target, abs=0.03)
    assert run["entropy"][0, -1] < 0.1  # no bonus: collapse
    with pytest.raises(ValueError, match="ent_coefs"):
        pg.entropy_bonus_run(PROBLEM, [-0.1])


# ---------------------------------------------------------------------------------------
# the token chain and GAE
# ---------------------------------------------------------------------------------------

CHAIN = pg.TokenChain()


def chain_reward_list(chain, actions):
    """Per-token rewards of one response, by hand."""
    out = []
    for a in actions:
        p, q = (chain.p_policy, chain.p_ref) if a == 1 else (1 - chain.p_policy, 1 - chain.p_ref)
        out.append(-chain.beta * (math.log(p) - math.log(q)))
    out[-1] += 1.0 if sum(actions) >= chain.threshold else 0.0
    return out


def prob_of(chain, actions):
    return math.prod(chain.p_policy if a else 1 - chain.p_policy for a in actions)


def true_value(chain, prefix, gamma):
    """V(s_t) by enumerating every continuation of ``prefix``."""
    t = len(prefix)
    total = 0.0
    for rest in itertools.product((0, 1), repeat=chain.length - t):
        seq = list(prefix) + list(rest)
        rewards = chain_reward_list(chain, seq)
        total += prob_of(chain, rest) * sum(gamma ** (k - t) * rewards[k]
                                            for k in range(t, chain.length))
    return total




def test_token_rewards_by_hand():
    actions = torch.tensor([[1, 1, 0, 1, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0, 1]])
    got = CHAIN.token_rewards(actions)
    for i in range(2):
        assert got[i].tolist() == pytest.approx(chain_reward_list(CHAIN, actions[i].tolist()),
                                                abs=1e-12)


def test_chain_values_by_enumerating_continuations():
    for gamma in (1.0, 0.8):
        table = pg.chain_values(CHAIN, gamma)
        for prefix in ([], [1], [0, 1, 1], [1, 1, 1, 1, 0, 0, 1], [0] * 7):
            c, t = sum(prefix), len(prefix)
            assert table[t, c].item() == pytest.approx(true_value(CHAIN, prefix, gamma), abs=1e-12)


def test_position_values_and_critic_blend():
    gamma = 0.9
    table = pg.chain_values(CHAIN, gamma)
    avg = pg.position_values(CHAIN, table)
    for t in (0, 3, 7):
        expected = sum(prob_of(CHAIN, prefix) * true_value(CHAIN, list(prefix), gamma)
                       for prefix in itertools.product((0, 1), repeat=t))
        assert avg[t].item() == pytest.approx(expected, abs=1e-12)
    actions = torch.tensor([[1, 0, 1, 1, 0, 1, 1, 0]])
    perfect = pg.critic_values(CHAIN, actions, gamma, 0.0)[0].tolist()
    half = pg.critic_values(CHAIN, actions, gamma, 0.5)[0].tolist()
    seq = actions[0].tolist()
    for t in range(8):
        v = true_value(CHAIN, seq[:t], gamma)
        assert perfect[t] == pytest.approx(v, abs=1e-12)
        assert half[t] == pytest.approx(0.5 * v + 0.5 * avg[t].item(), abs=1e-12)
    with pytest.raises(ValueError, match="critic_error"):
        pg.critic_values(CHAIN, actions, gamma, 1.5)


def test_exact_chain_gradient_by_finite_differences_of_the_logit():
    """The KL reward depends on theta too; the score-function sum still gives dJ/dtheta."""

    def j_of(theta):
        p = 1 / (1 + math.exp(-theta))
        chain = pg.TokenChain(p_policy=p)
        return sum(prob_of(chain, seq) * sum(chain_reward_list(chain, list(seq)))
                   for seq in itertools.product((0, 1), repeat=chain.length))

    theta = math.log(0.6 / 0.4)
    h = 1e-5
    fd = (j_of(theta + h) - j_of(theta - h)) / (2 * h)
    assert pg.exact_chain_gradient(CHAIN) == pytest.approx(fd, abs=1e-7)


def test_td_and_monte_carlo_helpers_by_loops():
    rewards = torch.tensor([[0.1, -0.2, 0.0, 1.0]], dtype=torch.float64)
    values = torch.tensor([[0.5, 0.4, 0.7, 0.6]], dtype=torch.float64)
    gamma = 0.9
    td = [0.1 + 0.9 * 0.4 - 0.5, -0.2 + 0.9 * 0.7 - 0.4, 0.0 + 0.9 * 0.6 - 0.7, 1.0 - 0.6]
    assert pg.td_errors(rewards, values, gamma)[0].tolist() == pytest.approx(td, abs=1e-12)
    returns = [0.1 - 0.2 * 0.9 + 0.0 + 1.0 * 0.9**3, -0.2 + 0.0 + 0.9**2, 0.9, 1.0]
    mc = [g - v for g, v in zip(returns, [0.5, 0.4, 0.7, 0.6])]
    assert pg.monte_carlo_advantages(rewards, values, gamma)[0].tolist() == pytest.approx(
        mc, abs=1e-12)


def gradient_moments(chain, gamma, lam, error):
    """Exact mean and variance of sum_t A_t (a_t - p), by loops over all responses."""
    table = pg.chain_values(chain, gamma)
    avg = pg.position_values(chain, table).tolist()
    mean = second = 0.0
    for seq in itertools.product((0, 1), repeat=chain.length):
        seq = list(seq)
        counts = [sum(seq[:t]) for t in range(chain.length)]
        values = [(1 - error) * table[t, counts[t]].item() + error * avg[t]
                  for t in range(chain.length)]
        adv = loop_gae(chain_reward_list(chain, seq), values, gamma, lam)
        g = sum(a * (x - chain.p_policy) for a, x in zip(adv, seq))
        w = prob_of(chain, seq)
        mean += w * g
        second += w * g * g
    return mean, second - mean * mean


@pytest.mark.parametrize("gamma,lam,error", [(1.0, 0.95, 0.5), (1.0, 0.0, 1.0), (0.9, 0.5, 0.3)])
def test_gae_gradient_stats_against_loops(gamma, lam, error):
    study = pg.gae_study(num_episodes=2000, seed=0)
    stats = pg.gae_gradient_stats(study, gamma, [lam], error)
    mean, var = gradient_moments(CHAIN, gamma, lam, error)
    exact = study.exact_gradient
    assert stats["bias2"][0].item() == pytest.approx((mean - exact) ** 2, abs=1e-10)
    assert stats["variance"][0].item() == pytest.approx(var, abs=1e-10)
    assert stats["mse"][0].item() == pytest.approx((mean - exact) ** 2 + var, abs=1e-10)


def test_gae_trade_off_shape():
    study = pg.gae_study()
    perfect = pg.gae_gradient_stats(study, 1.0, [0.0, 0.5, 1.0], 0.0)
    assert (perfect["bias2"] < 1e-20).all()  # a perfect critic: unbiased at every lambda
    half = pg.gae_gradient_stats(study, 1.0, [0.0, 0.9, 1.0], 0.5)
    assert half["bias2"][0] > half["bias2"][1] > half["bias2"][2]
    assert half["bias2"][2] < 1e-20  # lambda = 1, gamma = 1: the critic cannot bias it
    assert half["mse"][1] < min(half["mse"][0], half["mse"][2])  # the best lambda is inside
    # sampled episodes estimate the same numbers
    assert torch.allclose(half["mse_sampled"], half["mse"], atol=0.004)


def test_sampled_episode_counts_follow_the_probabilities():
    study = pg.gae_study(num_episodes=50000, seed=1)
    assert int(study.sample_counts.sum()) == 50000
    freq = study.sample_counts / 50000
    assert (freq - study.probs).abs().max() < 0.005
    assert study.probs.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_example_episode_is_the_requested_one_and_its_ends_are_td_and_mc():
    study = pg.gae_study(num_episodes=100)
    ep = pg.example_episode(study, 0.95, 0.7, 0.5)
    assert ep["actions"].tolist() == list(pg.EXAMPLE_ACTIONS)
    rewards, values = ep["rewards"].tolist(), ep["values"].tolist()
    assert ep["td"].tolist() == pytest.approx(loop_gae(rewards, values, 0.95, 0.0), abs=1e-12)
    assert ep["mc"].tolist() == pytest.approx(loop_gae(rewards, values, 0.95, 1.0), abs=1e-12)
    assert ep["advantages"].tolist() == pytest.approx(loop_gae(rewards, values, 0.95, 0.7),
                                                      abs=1e-12)
    assert torch.allclose(ep["returns"], ep["advantages"] + ep["values"], atol=1e-12)
    with pytest.raises(ValueError, match="example_actions"):
        pg.gae_study(example_actions=(1, 0, 2))


def test_group_baseline_scale_is_g_minus_1_over_g():
    for g in (2, 4):
        stats = pg.group_baseline_stats(CHAIN, g, num_episodes=2**15, seed=0)
        assert stats["scale"] == pytest.approx((g - 1) / g, abs=0.03)
    with pytest.raises(ValueError, match="group_size"):
        pg.group_baseline_stats(CHAIN, 0)


def test_estimator_comparison_rows():
    study = pg.gae_study(num_episodes=100)
    rows = pg.estimator_comparison(study)
    mean, var = gradient_moments(CHAIN, 1.0, 1.0, 0.0)
    scale, variance, noise = rows["GAE, perfect critic, lam=1"]
    assert scale == pytest.approx(1.0, abs=1e-10)
    assert variance == pytest.approx(var, abs=1e-10)
    assert noise == pytest.approx(math.sqrt(var) / abs(mean), abs=1e-10)
    assert rows["no baseline (A_t = total reward)"][0] == pytest.approx(1.0, abs=1e-10)


def test_token_chain_rejects_bad_settings():
    with pytest.raises(ValueError, match="p_policy"):
        pg.TokenChain(p_policy=1.0)
    with pytest.raises(ValueError, match="length"):
        pg.TokenChain(length=0)
    with pytest.raises(ValueError, match="beta"):
        pg.TokenChain(beta=-1.0)


# ---------------------------------------------------------------------------------------
# the value loss and the full ppo_gae update
# ---------------------------------------------------------------------------------------


def test_value_clip_curve_by_hand():
    v_old, ret, c = 0.5, 1.0, 0.2
    curve = pg.value_clip_curve(v_old, ret, c, values=[0.1, 0.5, 0.65, 0.8, 1.0, 1.29, 1.4])
    for v, loss, grad in zip(curve["values"].tolist(), curve["loss"].tolist(),
                             curve["grad"].tolist()):
        clipped_v = min(max(v, v_old - c), v_old + c)
        unclipped, clipped = (v - ret) ** 2, (clipped_v - ret) ** 2
        assert loss == pytest.approx(0.5 * max(unclipped, clipped), abs=1e-12)
        if clipped > unclipped:
            assert grad == 0.0  # exactly: the clipped branch has no path to V
        else:
            assert grad == pytest.approx(v - ret, abs=1e-12)


def test_ppo_gae_update_terms_and_first_epoch():
    result = pg.ppo_gae_update(epochs=3, seed=0)
    first = result["metrics"][0]
    assert first["clipfrac"] == 0.0 and first["approx_kl"] == pytest.approx(0.0, abs=1e-9)
    assert first["policy_loss"] == pytest.approx(0.0, abs=1e-6)  # -mean of whitened A
    assert result["metrics"][-1]["approx_kl"] > 0
    mask = result["mask"]
    assert mask.sum(1).tolist() == [6, 4, 5, 3]
    mean, std = pg.masked_stats(result["advantages"], mask)
    assert abs(mean) < 1e-6 and std == pytest.approx(1.0, abs=1e-4)


def test_ppo_gae_update_advantages_by_loops():
    result = pg.ppo_gae_update(epochs=1, seed=1)
    beta = result["hparams"]["beta"]
    lam = result["hparams"]["lam"]
    for i, length in enumerate(result["lengths"].tolist()):
        old = result["old_logp"][i, :length].double().tolist()
        ref = result["ref_logp"][i, :length].double().tolist()
        rewards = [-beta * (o - r) for o, r in zip(old, ref)]
        rewards[-1] += result["rewards"][i].item()
        values = result["old_values"][i, :length].double().tolist()
        adv = loop_gae(rewards, values, 1.0, lam)
        assert result["raw_advantages"][i, :length].tolist() == pytest.approx(adv, abs=1e-5)
        assert result["returns"][i, :length].tolist() == pytest.approx(
            [a + v for a, v in zip(adv, values)], abs=1e-5)
        assert (result["raw_advantages"][i, length:] == 0).all()
        good = (result["tokens"][i, :length] == pg.GOOD_TOKEN).sum().item()
        assert result["rewards"][i].item() == pytest.approx(good / length, abs=1e-7)


def test_tiny_actor_critic_sampling_is_seeded_and_shapes():
    torch.manual_seed(0)
    model = pg.TinyActorCritic(vocab_size=5, hidden_size=8, max_len=4)
    a = model.sample(3, 4, torch.Generator().manual_seed(2))
    b = model.sample(3, 4, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and a.shape == (3, 4) and int(a.max()) < 5
    logits, values = model(a)
    assert logits.shape == (3, 4, 5) and values.shape == (3, 4)
    # position t only sees the previous token: changing the last token changes nothing
    c = a.clone()
    c[:, -1] = (c[:, -1] + 1) % 5
    assert torch.equal(model(c)[0], logits)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def test_one_token_problem_rejects_bad_input():
    with pytest.raises(ValueError, match="logits"):
        pg.one_token_problem(logits=[0.0, 1.0])
    with pytest.raises(ValueError, match="tokens"):
        pg.one_token_problem(tokens=("a", "b"))
    with pytest.raises(ValueError, match="finite"):
        pg.one_token_problem(rewards=[1.0, float("nan"), 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="num_seeds"):
        pg.sample_actions(PROBLEM.probs, 0, 4)


def test_ppo_gae_update_leaves_the_callers_rng_alone():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    pg.ppo_gae_update(epochs=1)
    assert torch.equal(torch.rand(3), expected)
