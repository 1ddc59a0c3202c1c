"""Notebook 04's experiments (rlviz.experiments.kl) against independent references:
numerical integration, plain Python loops in float64, and values from the papers."""

import math

import numpy as np
import pytest
import torch

import rlviz
from rlviz.experiments import kl as kle

# ---------------------------------------------------------------------------------------
# Gaussian experiment
# ---------------------------------------------------------------------------------------

GRID = np.linspace(-14.0, 14.0, 400_001)  # x ~ N(0, 1); the tails beyond +-14 are negligible
DENSITY = np.exp(-GRID**2 / 2) / math.sqrt(2 * math.pi)


def integrate(values):
    """E[f(x)], x ~ N(0, 1), by the trapezoid rule on GRID."""
    return float(np.trapezoid(values * DENSITY, GRID))


def estimator_on_grid(mu, kind):
    log_q = -GRID**2 / 2
    log_p = -(GRID - mu) ** 2 / 2
    log_r = log_p - log_q
    return {"k1": -log_r, "k2": 0.5 * log_r**2, "k3": np.exp(log_r) - 1 - log_r}[kind]


@pytest.mark.parametrize("mu", [0.1, 0.5, 1.0, 1.7])
@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_closed_forms_match_numerical_integration(mu, kind):
    values = estimator_on_grid(mu, kind)
    mean = integrate(values)
    std = math.sqrt(integrate((values - mean) ** 2))
    true_kl = mu * mu / 2
    exact = kle.gaussian_closed_form(mu)
    assert exact["true_kl"] == pytest.approx(true_kl, rel=1e-15)
    assert exact[kind]["bias_over_kl"] == pytest.approx((mean - true_kl) / true_kl, abs=1e-8)
    assert exact[kind]["std_over_kl"] == pytest.approx(std / true_kl, rel=1e-7)
    assert exact[kind]["mean"] == pytest.approx(mean, rel=1e-9)


@pytest.mark.parametrize("mu", [0.1, 1.0, 1.7])
@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_quadrature_moments_match_numerical_integration(mu, kind):
    values = estimator_on_grid(mu, kind)
    mean = integrate(values)
    var = integrate((values - mean) ** 2)
    m4 = integrate((values - mean) ** 4)
    got_mean, got_var, got_m4 = kle.gaussian_estimator_moments(mu, kind)
    assert got_mean == pytest.approx(mean, rel=1e-9, abs=1e-15)
    assert got_var == pytest.approx(var, rel=1e-8)
    assert got_m4 == pytest.approx(m4, rel=1e-6)


def test_closed_forms_reproduce_schulmans_published_table():
    # Schulman 2020, "Approximating KL Divergence": (bias/true, stdev/true) as printed
    published = {0.1: {"k1": (0, 20), "k2": (0.002, 1.42), "k3": (0, 1.42)},
                 1.0: {"k1": (0, 2), "k2": (0.25, 1.73), "k3": (0, 1.7)}}
    for mu, table in published.items():
        exact = kle.gaussian_closed_form(mu)
        for kind, (bias, std) in table.items():
            digits = len(str(std).split(".")[1]) if "." in str(std) else 0
            assert round(exact[kind]["std_over_kl"], digits) == std
            assert abs(exact[kind]["bias_over_kl"] - bias) < 6e-4  # 0.0025 printed as 0.002
    assert kle.SCHULMAN_PUBLISHED == {mu: {k: tuple(map(float, v)) for k, v in t.items()}
                                      for mu, t in published.items()}


def test_closed_forms_are_finite_for_tiny_mu():
    exact = kle.gaussian_closed_form(1e-4)
    assert exact["k3"]["std_over_kl"] == pytest.approx(math.sqrt(2), rel=1e-6)
    assert exact["k1"]["std_over_kl"] == pytest.approx(2e4)
    assert kle.gaussian_closed_form(-1.0)["k3"] == kle.gaussian_closed_form(1.0)["k3"]


def test_gaussian_estimates_use_log_r_equal_mu_x_minus_half_mu_squared():
    x = torch.tensor([-2.0, -0.3, 0.0, 0.7, 3.1], dtype=torch.float64)
    mu = 0.8
    got = kle.gaussian_estimates(x, mu)
    for i, xi in enumerate(x.tolist()):
        log_r = mu * xi - mu * mu / 2
        assert got["k1"][i].item() == pytest.approx(-log_r, abs=1e-12)
        assert got["k2"][i].item() == pytest.approx(0.5 * log_r**2, abs=1e-12)
        assert got["k3"][i].item() == pytest.approx(math.exp(log_r) - 1 - log_r, abs=1e-12)


def test_schulman_table_within_four_standard_errors_and_consistent():
    rows = kle.schulman_table(n_samples=200_000, seed=1)
    assert [(r["mu"], r["kind"]) for r in rows] == [
        (mu, k) for mu in (0.1, 1.0) for k in ("k1", "k2", "k3")]
    for row in rows:
        assert row["bias_ok"] and row["std_ok"], row
        assert row["bias_published"] is not None and row["std_published"] is not None
    k1 = rows[0]  # mu = 0.1: SE(mean)/KL = 20 / sqrt(N); SE(std)/KL = 20 / sqrt(2N) (Gaussian)
    assert k1["bias_se"] == pytest.approx(20 / math.sqrt(200_000), rel=1e-6)
    assert k1["std_se"] == pytest.approx(20 / math.sqrt(2 * 200_000), rel=1e-5)
    text = kle.format_schulman_table(rows)
    assert len(text.splitlines()) == 2 + len(rows)
    assert "-0.0000" not in text


def test_schulman_table_mc_values_match_a_direct_computation():
    n = 50_000
    rows = kle.schulman_table(mus=(0.5,), n_samples=n, seed=3)
    x = torch.randn(n, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    log_r = 0.5 * x - 0.125
    k3 = torch.exp(log_r) - 1 - log_r
    row = rows[2]
    assert row["kind"] == "k3" and row["bias_published"] is None
    assert row["bias_mc"] == pytest.approx((k3.mean().item() - 0.125) / 0.125, abs=1e-10)
    assert row["std_mc"] == pytest.approx(k3.std().item() / 0.125, rel=1e-10)


def test_gaussian_bad_input():
    with pytest.raises(ValueError, match="mu"):
        kle.gaussian_closed_form(0.0)
    with pytest.raises(TypeError, match="mu"):
        kle.gaussian_closed_form("1")
    with pytest.raises(ValueError, match="kind"):
        kle.gaussian_estimator_moments(1.0, "k4")
    with pytest.raises(ValueError, match="n_samples"):
        kle.schulman_table(n_samples=1)
    with pytest.raises(ValueError, match="n_samples"):
        kle.gaussian_panel_data(torch.zeros(10, dtype=torch.float64), 1.0, 11)


def test_gaussian_panel_data_stats_and_running_mean():
    x = torch.randn(3000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    data = kle.gaussian_panel_data(x, 0.6, 2500)
    log_r = 0.6 * x[:2500] - 0.18
    k1 = (-log_r).tolist()
    assert data["stats"]["k1"]["mean"] == pytest.approx(sum(k1) / 2500, abs=1e-12)
    assert data["stats"]["k1"]["frac_negative"] == sum(v < 0 for v in k1) / 2500
    n, running = data["running"]["k1"]
    assert n[0] == 1 and n[-1] == 2500
    for count, value in zip(n[::17], running[::17]):
        assert value == pytest.approx(sum(k1[:count]) / count, abs=1e-10)
    for kind in ("k1", "k2", "k3"):
        hist = data["hist"][kind]
        width = hist["edges"][1] - hist["edges"][0]
        assert hist["density"].sum() * width <= 1 + 1e-9
        assert hist["density"].sum() * width > 0.97  # central 99 % of each, common bins


# ---------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------

def loop_kl(p_logp, q_logp):
    return sum(math.exp(a) * (a - b) for a, b in zip(p_logp.tolist(), q_logp.tolist()))


def test_token_distributions_and_exact_kl():
    policy, ref = kle.token_distributions(200, shift=0.0, temperature=1.0)
    assert torch.equal(policy, ref)
    policy, ref = kle.token_distributions(200, shift=1.3, temperature=0.8, seed=4)
    assert math.fsum(policy.exp().tolist()) == pytest.approx(1.0, abs=1e-12)
    assert kle.exact_kl(policy, ref).item() == pytest.approx(loop_kl(policy, ref), rel=1e-10)
    # reimplemented: ref logits 2 N(0,1), policy (ref + shift g) / T from the same generator
    gen = torch.Generator().manual_seed(4)
    z = 2.0 * torch.randn(200, generator=gen, dtype=torch.float64)
    g = torch.randn(200, generator=gen, dtype=torch.float64)
    assert torch.allclose(policy, ((z + 1.3 * g) / 0.8).log_softmax(-1), atol=1e-12)
    with pytest.raises(ValueError, match="temperature"):
        kle.token_distributions(10, temperature=0.0)
    with pytest.raises(ValueError, match="vocab_size"):
        kle.token_distributions(1)


def test_uniform_expectation_is_a_difference_of_two_kls():
    policy, ref = kle.token_distributions(300, shift=0.7, temperature=1.2, seed=2)
    v = 300
    log_u = [-math.log(v)] * v
    kl_u_ref = sum(math.exp(a) * (a - b) for a, b in zip(log_u, ref.tolist()))
    kl_u_pi = sum(math.exp(a) * (a - b) for a, b in zip(log_u, policy.tolist()))
    expected = sum(a - b for a, b in zip(policy.tolist(), ref.tolist())) / v
    got = kle.uniform_expectations(policy, ref)
    assert got["k1"] == pytest.approx(expected, abs=1e-12)
    assert got["k1"] == pytest.approx(kl_u_ref - kl_u_pi, abs=1e-12)
    expected_k3 = sum(math.exp(b - a) - 1 - (b - a)
                      for a, b in zip(policy.tolist(), ref.tolist())) / v
    assert got["k3"] == pytest.approx(expected_k3, rel=1e-10)


def test_sample_from_logp_is_the_inverse_cdf():
    probs = [0.1, 0.25, 0.05, 0.6]
    logp = torch.tensor(probs, dtype=torch.float64).log()
    u = torch.tensor([0.0, 0.0999, 0.1001, 0.3499, 0.3501, 0.3999, 0.4001, 0.9999999])
    got = kle.sample_from_logp(logp, u.to(torch.float64)).tolist()
    expected = []
    for ui in u.tolist():
        total, chosen = 0.0, len(probs) - 1
        for index, p in enumerate(probs):
            total += p
            if ui < total:
                chosen = index
                break
        expected.append(chosen)
    assert got == expected


def test_token_experiment_estimates():
    experiment = kle.TokenKLExperiment(vocab_size=500, n_steps=200, max_samples=128, seed=0)
    result = experiment.run(shift=1.0, temperature=0.9, samples_per_step=128)
    policy, ref = result["policy_logp"], result["ref_logp"]
    assert result["exact_kl"] == pytest.approx(loop_kl(policy, ref), rel=1e-10)
    assert result["forward_kl"] == pytest.approx(loop_kl(ref, policy), rel=1e-10)
    # on policy samples k1 and k3 average to KL(pi||ref); on uniform tokens k1 averages to
    # E_U[k1]; each within 5 standard errors of the 200 x 128 samples
    for series, target in [(result["policy_steps"]["k1"], result["exact_kl"]),
                           (result["policy_steps"]["k3"], result["exact_kl"]),
                           (result["uniform_steps"]["k1"], result["uniform_expectation"]["k1"])]:
        se = series.std().item() / math.sqrt(series.numel())
        assert abs(series.mean().item() - target) < 5 * se
    assert result["kl_u_ref"] - result["kl_u_pi"] == pytest.approx(
        result["uniform_expectation"]["k1"], abs=1e-12)
    again = experiment.run(shift=1.0, temperature=0.9, samples_per_step=128)
    assert torch.equal(again["policy_steps"]["k3"], result["policy_steps"]["k3"])
    with pytest.raises(ValueError, match="samples_per_step"):
        experiment.run(samples_per_step=129)


def test_token_panel_data_numbers():
    result = kle.token_experiment(vocab_size=100, shift=0.5, samples_per_step=16, n_steps=50)
    data = kle.token_panel_data(result, 16, n_top=10)
    ref_probs = sorted(result["ref_logp"].exp().tolist(), reverse=True)[:10]
    assert data["top_ref"].tolist() == pytest.approx(ref_probs)
    uniform = result["uniform_steps"]["k1"].tolist()
    assert data["numbers"]["uniform_k1"]["mean"] == pytest.approx(sum(uniform) / 50)
    assert data["numbers"]["uniform_k1"]["frac_negative"] == sum(v < 0 for v in uniform) / 50
    assert data["n_steps"] == 50 and data["edges"][0] < min(0.0, data["uniform_k1"])


# ---------------------------------------------------------------------------------------
# Gradients by enumeration
# ---------------------------------------------------------------------------------------

def test_expected_gradients_match_analytic_formulas():
    policy, ref = kle.token_distributions(40, shift=0.8, temperature=1.1, ref_scale=1.0, seed=5)
    grads = kle.expected_gradients(policy, ref)
    pi, rf = policy.exp().tolist(), ref.exp().tolist()
    kl = loop_kl(policy, ref)
    # d KL(pi||ref) / dz_j = pi_j (log pi_j - log ref_j - KL); d KL(ref||pi) / dz_j = pi_j - ref_j
    reverse = [p * (math.log(p) - math.log(q) - kl) for p, q in zip(pi, rf)]
    forward = [p - q for p, q in zip(pi, rf)]
    assert grads["reverse_kl"].tolist() == pytest.approx(reverse, abs=1e-12)
    assert grads["forward_kl"].tolist() == pytest.approx(forward, abs=1e-12)
    assert grads["k1_loss"].abs().max().item() < 1e-14
    assert grads["k2_loss"].tolist() == pytest.approx(reverse, abs=1e-12)
    assert grads["k3_loss"].tolist() == pytest.approx(forward, abs=1e-12)
    assert grads["k1_reward"].tolist() == pytest.approx(reverse, abs=1e-12)


def test_k2_and_k3_gradients_agree_to_first_order():
    out = kle.gradient_agreement([0.001, 0.01, 1.0])
    small, medium, large = out["relative_difference"]
    assert medium / small == pytest.approx(10.0, rel=0.02)  # linear in the shift
    assert large > 0.2
    assert out["kl"][0] < out["kl"][1] < out["kl"][2]


# ---------------------------------------------------------------------------------------
# Where the KL goes
# ---------------------------------------------------------------------------------------

def test_kl_placement_batch_against_loops():
    beta, lengths = 0.2, (6, 2, 4, 5)
    out = kle.kl_placement_batch(beta=beta, lengths=lengths, vocab_size=30, shift=1.0, seed=2)
    logp, ref = out["logp"].tolist(), out["ref_logp"].tolist()
    rewards = out["rewards"].tolist()
    n_tokens = sum(lengths)
    mean_r = sum(rewards) / 4
    std_r = math.sqrt(sum((r - mean_r) ** 2 for r in rewards) / 3)
    for i, length in enumerate(lengths):
        k1 = [logp[i][t] - ref[i][t] for t in range(length)]
        for t in range(length):
            advantage = rewards[i] - beta * sum(k1[t:])  # gamma = lam = 1, zero values
            assert out["ppo_advantages"][i, t].item() == pytest.approx(advantage, abs=1e-12)
            assert out["ppo_grad"][i, t].item() == pytest.approx(-advantage / n_tokens,
                                                                  abs=1e-12)
            ratio = math.exp(ref[i][t] - logp[i][t])
            a_grpo = (rewards[i] - mean_r) / (std_r + 1e-6)
            grpo = (-a_grpo + beta * (1 - ratio)) / (4 * length)
            assert out["grpo_grad"][i, t].item() == pytest.approx(grpo, abs=1e-12)
            assert out["grpo_kl_grad"][i, t].item() == pytest.approx(
                beta * (1 - ratio) / (4 * length), abs=1e-12)
        for t in range(length, max(lengths)):
            assert out["ppo_grad"][i, t].item() == 0.0 and out["grpo_grad"][i, t].item() == 0.0
        assert out["ppo_sequence_k1"][i].item() == pytest.approx(sum(k1), abs=1e-12)
    k3_mean = sum(sum(math.exp(ref[i][t] - logp[i][t]) - 1 - (ref[i][t] - logp[i][t])
                      for t in range(n)) / n for i, n in enumerate(lengths)) / 4
    assert out["grpo_mean_k3"] == pytest.approx(k3_mean, rel=1e-12)
    assert out["grpo_loss"] - out["grpo_loss_no_kl"] == pytest.approx(beta * k3_mean, rel=1e-10)


# ---------------------------------------------------------------------------------------
# beta sweep, optima, training
# ---------------------------------------------------------------------------------------

def test_reverse_kl_optimum_is_the_closed_form_and_is_optimal():
    ref, reward = kle.toy_bandit(8, seed=1)
    beta = 0.25
    logp = kle.reverse_kl_optimum(ref, reward, beta)
    weights = [math.exp(a) * math.exp(r / beta) for a, r in zip(ref.tolist(), reward.tolist())]
    z = sum(weights)
    assert logp.exp().tolist() == pytest.approx([w / z for w in weights], abs=1e-12)

    def objective(lp):
        return (lp.exp() * reward).sum().item() - beta * kle.exact_kl(lp, ref).item()

    best = objective(logp)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        other = (logp + 0.1 * torch.randn(8, generator=gen, dtype=torch.float64)).log_softmax(-1)
        assert objective(other) < best


def test_forward_kl_optimum_is_stationary():
    ref, reward = kle.toy_bandit(8, seed=1)
    beta = 0.25
    pi = kle.forward_kl_optimum(ref, reward, beta).exp().tolist()
    assert sum(pi) == pytest.approx(1.0, abs=1e-12)
    # r_x + beta ref_x / pi_x is the same for every x (the Lagrange multiplier)
    lam = [r + beta * math.exp(a) / p for r, a, p in zip(reward.tolist(), ref.tolist(), pi)]
    assert max(lam) - min(lam) < 1e-9


def test_beta_sweep_monotone_and_matches_optimum():
    ref, reward = kle.toy_bandit()
    sweep = kle.beta_sweep(ref, reward, [0.05, 0.2, 1.0, 5.0])
    assert sweep["kl"] == sorted(sweep["kl"], reverse=True)
    assert sweep["reward"] == sorted(sweep["reward"], reverse=True)
    logp = kle.reverse_kl_optimum(ref, reward, 0.2)
    assert sweep["kl"][1] == pytest.approx(loop_kl(logp, ref), rel=1e-10)


def test_training_with_each_estimator_ends_where_the_math_says():
    ref, reward = kle.toy_bandit()
    beta = 0.3
    k2 = kle.train_toy_policy(ref, reward, beta, "k2", steps=600, lr=0.1)
    k3 = kle.train_toy_policy(ref, reward, beta, "k3", steps=600, lr=0.1)
    k1 = kle.train_toy_policy(ref, reward, beta, "k1", steps=300, lr=0.1)
    none = kle.train_toy_policy(ref, reward, beta, None, steps=300, lr=0.1)
    reverse = kle.reverse_kl_optimum(ref, reward, beta).exp()
    forward = kle.forward_kl_optimum(ref, reward, beta).exp()
    assert (k2["logp"].exp() - reverse).abs().max().item() < 1e-3
    assert (k3["logp"].exp() - forward).abs().max().item() < 1e-3
    assert (k1["logp"] - none["logp"]).abs().max().item() < 1e-9  # k1 in the loss = no KL
    with pytest.raises(ValueError, match="kl_in_loss"):
        kle.train_toy_policy(ref, reward, beta, "k4")


def test_beta_for_target_kl():
    ref, reward = kle.toy_bandit()
    beta = kle.beta_for_target_kl(ref, reward, 0.5)
    kl = kle.exact_kl(kle.reverse_kl_optimum(ref, reward, beta), ref).item()
    assert kl == pytest.approx(0.5, abs=1e-8)


# ---------------------------------------------------------------------------------------
# Adaptive KL controller
# ---------------------------------------------------------------------------------------

def test_adaptive_kl_controller_hand_computed():
    # Ziegler et al. 2019: beta *= 1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon
    controller = kle.AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    assert controller.update(6.6, 256) == pytest.approx(0.1 * (1 + 0.1 * 0.0256), rel=1e-12)
    controller = kle.AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    assert controller.update(60.0, 256) == pytest.approx(0.1 * 1.00512, rel=1e-12)
    controller = kle.AdaptiveKLController(0.2, target=6.0, horizon=10_000)
    assert controller.update(0.0, 512) == pytest.approx(0.2 * (1 - 0.2 * 0.0512), rel=1e-12)
    assert controller.value == pytest.approx(0.2 * (1 - 0.2 * 0.0512), rel=1e-12)
    with pytest.raises(ValueError, match="horizon"):
        kle.AdaptiveKLController(0.1, 6.0, 0.0)


def test_adaptive_run_reaches_the_beta_of_the_target():
    ref, reward = kle.toy_bandit()
    beta_star = kle.beta_for_target_kl(ref, reward, 0.5)
    for init in (0.05, 1.0):
        history = kle.adaptive_kl_run(ref, reward, 0.5, init_beta=init)
        assert sum(history["beta"][-100:]) / 100 == pytest.approx(beta_star, rel=0.15)
        assert sum(history["kl"][-100:]) / 100 == pytest.approx(0.5, rel=0.15)
    fixed = kle.adaptive_kl_run(ref, reward, 0.5, init_beta=0.05, adaptive=False,
                                iterations=50)
    assert set(fixed["beta"]) == {0.05}


# ---------------------------------------------------------------------------------------
# The demo's grpo_kl
# ---------------------------------------------------------------------------------------

def test_demo_kl_trace_is_the_demo_run_and_its_kl_term():
    threads = torch.get_num_threads()
    trace = kle.demo_kl_trace(steps=4, vocab_size=300, seed=0)
    assert torch.get_num_threads() == threads
    rlviz.set_seed(0)
    losses, _ = rlviz.run_demo("grpo", steps=4, cfg=rlviz.Config(vocab_size=300, device="cpu"),
                               print_fn=lambda *args: None)
    assert trace["loss"] == losses
    for key in ("demo_kl", "demo_kl_term", "paper_kl_term", "uniform_expectation", "exact_kl"):
        assert trace[key][0] == 0.0  # policy = reference before the first update
    cfg = rlviz.Config()
    length, batch = cfg.seq_len - cfg.input_len, 2 * cfg.group_num
    for term, kl, exact in zip(trace["demo_kl_term"], trace["demo_kl"], trace["exact_kl"]):
        # grpo_loss's KL part: beta * sum_i kl_i / (G L_i), all L_i = 24, B = 8
        assert term == pytest.approx(cfg.beta_kl * batch * kl / (cfg.group_num * length),
                                     rel=1e-4, abs=1e-14)
        assert exact >= 0
    assert trace["exact_kl"][3] > trace["exact_kl"][1] > 0


# ---------------------------------------------------------------------------------------
# Added with the review fixes: k1 on uniform tokens, GRPO's k3 noise, section 5's formula
# checks, the fixed-beta run's final policy, and section 8's summary numbers
# ---------------------------------------------------------------------------------------

def test_k1_as_loss_on_uniform_tokens_pushes_away_from_uniform():
    policy_logp, ref_logp = kle.token_distributions(vocab_size=20, shift=0.7, ref_scale=1.0)
    grads = kle.expected_gradients(policy_logp, ref_logp)
    pi = policy_logp.exp().tolist()
    n = len(pi)
    # d/d theta_j of (1/V) sum_x log softmax(theta)_x = 1/V - pi_j, by hand
    assert grads["k1_loss_uniform"].tolist() == pytest.approx([1 / n - p for p in pi],
                                                              abs=1e-12)
    # KL(U || pi) = sum_x (1/V) (log(1/V) - log pi_x): gradient pi_j - 1/V
    assert grads["uniform_kl"].tolist() == pytest.approx([p - 1 / n for p in pi], abs=1e-12)


def test_grpo_k3_expectation_and_standard_error_by_loops():
    lengths = (4, 2, 3)
    out = kle.kl_placement_batch(beta=0.1, lengths=lengths, vocab_size=12, shift=1.0, seed=5)
    pol, ref = out["policy_logp_all"].tolist(), out["ref_logp_all"].tolist()
    expected, variance = 0.0, 0.0
    for i, length in enumerate(lengths):
        weight = 1 / (len(lengths) * length)
        for t in range(length):
            probs = [math.exp(a) for a in pol[i][t]]
            k3 = [math.exp(b - a) - 1 - (b - a) for a, b in zip(pol[i][t], ref[i][t])]
            mean = sum(p * k for p, k in zip(probs, k3))
            second = sum(p * k * k for p, k in zip(probs, k3))
            kl = sum(p * (a - b) for p, a, b in zip(probs, pol[i][t], ref[i][t]))
            assert mean == pytest.approx(kl, rel=1e-9)  # k3 is unbiased
            expected += weight * kl
            variance += weight**2 * (second - mean**2)
    assert out["grpo_expected_k3"] == pytest.approx(expected, rel=1e-10)
    assert out["grpo_k3_stderr"] == pytest.approx(math.sqrt(variance), rel=1e-10)


def test_kl_placement_gradient_checks_detect_a_wrong_gradient():
    out = kle.kl_placement_batch(beta=0.2, lengths=(6, 2, 4, 5), vocab_size=30, shift=1.0,
                                 seed=2)
    assert kle.kl_placement_gradient_checks(out) == {"ppo": True, "grpo": True}
    broken = dict(out, ppo_kl_grad=out["ppo_kl_grad"] * 1.01)
    assert kle.kl_placement_gradient_checks(broken) == {"ppo": False, "grpo": True}
    broken = dict(out, grpo_kl_grad=out["grpo_kl_grad"].flip(-1))
    assert kle.kl_placement_gradient_checks(broken)["grpo"] is False


def test_adaptive_run_final_probs_match_its_last_kl():
    ref, reward = kle.toy_bandit()
    history = kle.adaptive_kl_run(ref, reward, 0.5, init_beta=0.05, adaptive=False,
                                  iterations=40)
    probs = history["final_probs"]
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)
    kl = sum(p * (math.log(p) - a) for p, a in zip(probs, ref.tolist()))
    assert history["kl"][-1] == pytest.approx(kl, rel=1e-10)
    assert history["reward"][-1] == pytest.approx(
        sum(p * r for p, r in zip(probs, reward.tolist())), rel=1e-10)


def test_demo_kl_summary_on_a_hand_made_trace():
    cfg = rlviz.Config()  # beta 0.01, G 4, B = 8, L = 24
    factor = cfg.beta_kl * 8 / (4 * 24)
    demo_kl = [0.0, 2e-4, -1e-4, 3e-4]
    trace = {
        "demo_kl": demo_kl,
        "demo_kl_term": [factor * k for k in demo_kl],
        "uniform_expectation": [0.0, -1e-5, -2e-5, 4e-5],
        "exact_kl": [0.0, 1e-6, 3e-6, 6e-6],
        "k3_on_policy": [0.0, 2e-6, 2e-6, 5e-6],
        "paper_kl_term": [0.0, 1e-8, 3e-8, 2e-8],
    }
    out = kle.demo_kl_summary(trace, cfg)
    assert out["steps"] == 3 and out["step0_zero"] and out["term_formula"]
    assert out["term_negative"] == 1 and out["expectation_negative"] == 2
    assert out["exact_kl_growing"] and out["final_exact_kl"] == 6e-6
    assert out["k3_over_exact"] == pytest.approx(9e-6 / 10e-6)
    assert out["typical_demo_kl"] == pytest.approx(6e-4 / 3)
    assert out["typical_uniform_expectation"] == pytest.approx(7e-5 / 3)
    assert out["typical_paper_term"] == pytest.approx(6e-8 / 3)
    assert out["k1_weight"] == pytest.approx(0.01 / (4 * 24 * 24))
    wrong = dict(trace, demo_kl_term=[0.0, 1e-7, 0.0, 0.0], exact_kl=[0.0, 2e-6, 1e-6, 3e-6])
    out = kle.demo_kl_summary(wrong, cfg)
    assert not out["term_formula"] and not out["exact_kl_growing"]
    with pytest.raises(ValueError, match="at least 2 steps"):
        kle.demo_kl_summary({key: values[:1] for key, values in trace.items()}, cfg)
