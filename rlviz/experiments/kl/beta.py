"""Notebook 04, sections 5 and 6: the effect of beta on a categorical policy optimised on
reward - beta * KL, and PPO's adaptive KL controller (Ziegler et al. 2019)."""

from __future__ import annotations

import math

import torch

from ...losses.checks import check_number, check_one_of
from ...losses.kl import KL_KINDS, kl_estimate
from .tokens import exact_kl, sample_from_logp

F64 = torch.float64

# --------------------------------------------------------------------------------------
# 5. The effect of beta: a categorical policy optimised on reward - beta * KL
# --------------------------------------------------------------------------------------

def toy_bandit(vocab_size: int = 10, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A toy "one-token response" problem: reference log-probs (V,) from N(0, 1) logits and
    a reward in [0, 1) per token (V,), float64, seeded."""
    generator = torch.Generator().manual_seed(seed)
    ref_logp = torch.randn(vocab_size, generator=generator, dtype=F64).log_softmax(-1)  # (V,)
    reward = torch.rand(vocab_size, generator=generator, dtype=F64)  # (V,)
    return ref_logp, reward


def reverse_kl_optimum(ref_logp: torch.Tensor, reward: torch.Tensor, beta: float) -> torch.Tensor:
    """argmax_pi E_pi[r] - beta KL(pi || ref) = ref * exp(r / beta) / Z, as log-probs (V,)."""
    check_number(beta, "beta", 0.0)
    return (ref_logp + reward / beta).log_softmax(-1)


def forward_kl_optimum(ref_logp: torch.Tensor, reward: torch.Tensor, beta: float,
                       iterations: int = 200) -> torch.Tensor:
    """argmax_pi E_pi[r] - beta KL(ref || pi), as log-probs (V,).

    Stationarity: r_x + beta ref_x / pi_x = lam, so pi_x = beta ref_x / (lam - r_x) with
    lam > max r chosen by bisection so that the pi_x sum to 1.
    """
    check_number(beta, "beta", 0.0)
    ref = ref_logp.exp()
    r_max = reward.max().item()
    low, high = r_max, r_max + beta + 1.0  # sum at `high` is <= beta / (beta + 1) < 1

    def total(lam):
        return (beta * ref / (lam - reward)).sum().item()

    for _ in range(iterations):
        mid = 0.5 * (low + high)
        if mid == low or mid == high:
            break
        if total(mid) > 1.0:
            low = mid
        else:
            high = mid
    pi = beta * ref / (high - reward)  # (V,)
    return (pi / pi.sum()).log()


def beta_sweep(ref_logp: torch.Tensor, reward: torch.Tensor, betas) -> dict[str, list[float]]:
    """The trade-off curve: for each beta, E[r] and KL(pi* || ref) at the optimum
    pi* = ref exp(r / beta) / Z, and the same for the forward-KL-regularised optimum."""
    out = {"beta": [], "reward": [], "kl": [], "forward_opt_reward": [], "forward_opt_kl": []}
    for beta in betas:
        logp = reverse_kl_optimum(ref_logp, reward, float(beta))
        logp_f = forward_kl_optimum(ref_logp, reward, float(beta))
        out["beta"].append(float(beta))
        out["reward"].append((logp.exp() * reward).sum().item())
        out["kl"].append(exact_kl(logp, ref_logp).item())
        out["forward_opt_reward"].append((logp_f.exp() * reward).sum().item())
        out["forward_opt_kl"].append(exact_kl(logp_f, ref_logp).item())
    return out


def train_toy_policy(ref_logp: torch.Tensor, reward: torch.Tensor, beta: float,
                     kl_in_loss: str | None = "k2", steps: int = 600, lr: float = 0.1,
                     init_logits: torch.Tensor | None = None) -> dict:
    """Optimise a categorical policy (logits, V) on the loss
    -E_pi[r] + beta * (estimator ``kl_in_loss`` used as a loss on samples from pi),
    with exact expected gradients (sums over the vocabulary, samples held fixed), Adam.

    ``kl_in_loss``: "k1" (expected gradient 0: no pull back at all), "k2" (gradient of
    KL(pi || ref): ends at ref exp(r/beta)/Z), "k3" (gradient of KL(ref || pi): ends at the
    forward-KL optimum), or None (no KL term). Returns final log-probs, and the history of
    E[r] and KL(pi || ref).
    """
    if kl_in_loss is not None:
        check_one_of(kl_in_loss, "kl_in_loss", KL_KINDS)
    ref_logp = ref_logp.detach().to(F64)
    start = ref_logp if init_logits is None else init_logits.detach().to(F64)
    theta = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=lr)
    rewards, kls = [], []
    for _ in range(steps):
        logp = theta.log_softmax(-1)  # (V,)
        pi = logp.exp()
        loss = -(pi * reward).sum()
        if kl_in_loss is not None:
            loss = loss + beta * (pi.detach() * kl_estimate(logp, ref_logp, kl_in_loss)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            rewards.append((pi * reward).sum().item())
            kls.append(exact_kl(logp, ref_logp).item())
    final = theta.detach().log_softmax(-1)
    return {"logp": final, "reward": rewards, "kl": kls,
            "final_reward": (final.exp() * reward).sum().item(),
            "final_kl": exact_kl(final, ref_logp).item()}


def beta_for_target_kl(ref_logp: torch.Tensor, reward: torch.Tensor, target: float,
                       low: float = 1e-4, high: float = 1e4, iterations: int = 200) -> float:
    """The beta whose optimum ref exp(r/beta)/Z has KL(pi* || ref) = target (bisection in
    log beta; the KL falls as beta grows)."""
    lo, hi = math.log(low), math.log(high)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        kl = exact_kl(reverse_kl_optimum(ref_logp, reward, math.exp(mid)), ref_logp).item()
        if kl > target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


# --------------------------------------------------------------------------------------
# 6. PPO's adaptive KL controller (Ziegler et al. 2019)
# --------------------------------------------------------------------------------------

class AdaptiveKLController:
    """beta <- beta * (1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon).

    Ziegler et al. 2019 (arXiv 1909.08593, section 2.2; lm-human-preferences); TRL's
    ``AdaptiveKLController`` is the same rule (n_steps = the batch size).
    """

    def __init__(self, init_beta: float, target: float, horizon: float):
        for value, name in ((init_beta, "init_beta"), (target, "target"), (horizon, "horizon")):
            check_number(value, name, 0.0)
        self.value = float(init_beta)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value


def adaptive_kl_run(ref_logp: torch.Tensor, reward: torch.Tensor, target: float = 0.5,
                    init_beta: float = 0.05, horizon: float = 1000.0, batch_size: int = 64,
                    iterations: int = 300, lr: float = 1.0, adaptive: bool = True,
                    seed: int = 0) -> dict[str, list[float]]:
    """A short simulation: a categorical policy, one exact gradient step per iteration on
    E_pi[r] - beta KL(pi || ref) (what k1 in the reward gives in expectation), the KL the
    controller sees estimated from ``batch_size`` samples with k1 (TRL's default), and beta
    updated by ``AdaptiveKLController`` (or kept fixed with ``adaptive=False``).

    Returns per-iteration lists: beta, kl_estimate, kl (exact), reward; and
    ``final_probs``, the policy's probabilities (V,) after the last iteration, as a list.
    """
    generator = torch.Generator().manual_seed(seed)
    ref_logp = ref_logp.detach().to(F64)
    theta = ref_logp.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([theta], lr=lr)
    controller = AdaptiveKLController(init_beta, target, horizon)
    history = {"beta": [], "kl_estimate": [], "kl": [], "reward": []}
    for _ in range(iterations):
        beta = controller.value
        logp = theta.log_softmax(-1)  # (V,)
        loss = -(logp.exp() * reward).sum() + beta * exact_kl(logp, ref_logp)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            logp = theta.log_softmax(-1)
            uniforms = torch.rand(batch_size, generator=generator, dtype=F64)
            tokens = sample_from_logp(logp, uniforms)  # (batch_size,)
            kl_hat = kl_estimate(logp[tokens], ref_logp[tokens], "k1").mean().item()
            history["beta"].append(beta)
            history["kl_estimate"].append(kl_hat)
            history["kl"].append(exact_kl(logp, ref_logp).item())
            history["reward"].append((logp.exp() * reward).sum().item())
        if adaptive:
            controller.update(kl_hat, batch_size)
    history["final_probs"] = theta.detach().softmax(-1).tolist()
    return history
