"""Self-checks for notebook 04 (KL estimation). Each runs the reader's function on a few
cases, compares with a reference written here with plain ``math``, and says what is wrong."""

from __future__ import annotations

import math

import torch

from .common import ExerciseError, check_close, passed

__all__ = [
    "check_adaptive_kl_update",
    "check_gaussian_k3_spread",
    "check_kl_estimators",
    "check_uniform_k1_expectation",
]


def _reference_estimate(logp: float, ref_logp: float, kind: str) -> float:
    log_r = ref_logp - logp  # log of r = ref / pi at the sampled token
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return 0.5 * log_r * log_r
    return math.exp(log_r) - 1.0 - log_r


def check_kl_estimators(fn) -> str:
    """``fn(logp, ref_logp, kind)`` -> per-token estimate of KL(pi || ref), same shape as
    the inputs, for kind in "k1", "k2", "k3" (Schulman 2020; r = pi_ref / pi_theta)."""
    pairs = [(math.log(0.5), math.log(0.25)), (math.log(0.1), math.log(0.3)),
             (-2.0, -2.0), (-0.05, -6.0), (-7.0, -0.2)]
    logp = torch.tensor([[a for a, _ in pairs]], dtype=torch.float64)  # (1, 5)
    ref_logp = torch.tensor([[b for _, b in pairs]], dtype=torch.float64)  # (1, 5)
    hints = {
        "k1": "k1 = log pi - log ref = -log r.",
        "k2": "k2 = (log r)^2 / 2 = (log pi - log ref)^2 / 2.",
        "k3": "k3 = (r - 1) - log r with r = ref / pi, i.e. exp(ref_logp - logp) - 1 - "
              "(ref_logp - logp). Check the direction of the ratio.",
    }
    for kind in ("k1", "k2", "k3"):
        got = fn(logp.clone(), ref_logp.clone(), kind)
        if not isinstance(got, torch.Tensor):
            raise ExerciseError(f"{kind}: return a tensor, got {type(got).__name__}")
        expected = [[_reference_estimate(a, b, kind) for a, b in pairs]]
        check_close(f"{kind} on log-prob pairs {[(round(a, 3), round(b, 3)) for a, b in pairs]}",
                    got, expected, atol=1e-9, hint=hints[kind])
    k3 = fn(logp, ref_logp, "k3")
    if bool((k3 < 0).any()):
        raise ExerciseError("k3 must never be negative (log r <= r - 1).")
    return passed("k1, k2 and k3 match Schulman's definitions, and k3 >= 0.")


def check_gaussian_k3_spread(fn) -> str:
    """``fn(mu)`` -> stdev(k3) / true KL for q = N(0, 1), p = N(mu, 1), in closed form."""
    for mu in (0.1, 0.5, 1.0, 1.5):
        v = mu * mu
        expected = math.sqrt(math.expm1(v) - v) / (v / 2)
        check_close(f"stdev/KL of k3 at mu = {mu}", float(fn(mu)), expected, atol=1e-6 * expected,
                    hint="log r = mu x - mu^2/2 ~ N(-v/2, v) with v = mu^2; Var(e^s) = e^v - 1, "
                         "Cov(e^s, s) = v, so Var(k3) = e^v - 1 - v; divide the stdev by v/2.")
    return passed("stdev(k3)/KL = sqrt(e^{mu^2} - 1 - mu^2) / (mu^2 / 2).")


def check_uniform_k1_expectation(fn) -> str:
    """``fn(policy_probs, ref_probs)`` -> the expectation of k1 = log pi - log ref over tokens
    drawn uniformly from the vocabulary (what the demo's grpo_kl averages), as a float."""
    cases = [
        ([0.7, 0.2, 0.1], [0.4, 0.4, 0.2]),
        ([0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]),
        ([0.05, 0.05, 0.1, 0.8], [0.25, 0.25, 0.25, 0.25]),
    ]
    for policy, ref in cases:
        n = len(policy)
        expected = sum(math.log(p) - math.log(q) for p, q in zip(policy, ref)) / n
        kl_pi_ref = sum(p * math.log(p / q) for p, q in zip(policy, ref))
        got = float(fn(torch.tensor(policy, dtype=torch.float64),
                       torch.tensor(ref, dtype=torch.float64)))
        if abs(got - kl_pi_ref) < 1e-9 and abs(expected - kl_pi_ref) > 1e-6:
            raise ExerciseError(f"policy {policy}, ref {ref}: you returned KL(pi || ref) = "
                                f"{kl_pi_ref:.4f}; the tokens are uniform, not drawn from pi, so "
                                "weight every token by 1/V.")
        check_close(f"E_U[k1] for policy {policy}, ref {ref}", got, expected, atol=1e-9,
                    hint="Average log pi(x) - log ref(x) over the V tokens with weight 1/V; it "
                         "equals KL(U || ref) - KL(U || pi).")
    return passed("E_U[k1] = mean_x (log pi - log ref) = KL(U || ref) - KL(U || pi).")


def check_adaptive_kl_update(fn) -> str:
    """``fn(beta, current_kl, target, n_steps, horizon)`` -> the new beta of PPO's adaptive
    KL controller (Ziegler et al. 2019)."""
    cases = [  # (beta, kl, target, n_steps, horizon)
        (0.1, 6.6, 6.0, 256, 10000),  # error +0.1, inside the clip
        (0.1, 30.0, 6.0, 256, 10000),  # error +4 -> clipped to +0.2
        (0.2, 0.5, 6.0, 512, 10000),  # error -0.92 -> clipped to -0.2
        (0.05, 6.0, 6.0, 64, 1000),  # on target: unchanged
    ]
    for beta, kl, target, n_steps, horizon in cases:
        error = min(max(kl / target - 1.0, -0.2), 0.2)
        expected = beta * (1.0 + error * n_steps / horizon)
        got = float(fn(beta, kl, target, n_steps, horizon))
        hint = "beta * (1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon)."
        if abs(error) == 0.2 and abs(kl / target - 1.0) > 0.2:
            unclipped = beta * (1.0 + (kl / target - 1.0) * n_steps / horizon)
            if abs(got - unclipped) < 1e-12:
                raise ExerciseError(f"beta={beta}, KL={kl}, target={target}: the proportional "
                                    "error must be clipped to [-0.2, 0.2]. " + hint)
        check_close(f"new beta for beta={beta}, KL={kl}, target={target}, n_steps={n_steps}, "
                    f"horizon={horizon}", got, expected, atol=1e-12, hint=hint)
    return passed("beta <- beta * (1 + clip(KL/target - 1, -0.2, 0.2) * n_steps / horizon).")
