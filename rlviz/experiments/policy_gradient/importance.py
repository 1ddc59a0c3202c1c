"""Notebook 02, section 2: reusing samples, the importance ratio."""

from __future__ import annotations

import torch

from ...formatting import fmt  # noqa: F401 (re-exported for the notebook)
from ...losses import (
    clipped_surrogate,
)
from ...losses.checks import check_one_of, check_positive_int
from ...threads import one_torch_thread
from .one_token import OneTokenProblem, exact_gradient, sample_actions, score

DTYPE = torch.float64

# ---------------------------------------------------------------------------------------
# 2. Reusing samples: the importance ratio
# ---------------------------------------------------------------------------------------


def stray_logits(problem: OneTokenProblem, step: float) -> torch.Tensor:
    """theta = theta_old + step * grad J / |grad J|: the policy after an update of size
    ``step`` in the direction of the exact gradient, (K,)."""
    grad = exact_gradient(problem)
    return problem.logits + step * grad / grad.norm()


def categorical_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum p log(p / q) over the last dimension."""
    return (p * (p.log() - q.log())).sum(-1)


@one_torch_thread()
def importance_reuse(problem: OneTokenProblem, steps, num_samples: int = 8,
                     num_seeds: int = 20000, seed: int = 0) -> dict:
    """Estimate grad J(theta) at a moved policy theta from samples of the old policy.

    For each update size in ``steps`` (theta = ``stray_logits(problem, step)``), samples
    a_i ~ pi_old and baseline b = J(theta_old) (known when the batch was collected):

        naive: (1/N) sum_i (r_i - b) grad log pi_theta(a_i)          (biased)
        ratio: (1/N) sum_i rho_i (r_i - b) grad log pi_theta(a_i),   rho = pi_theta / pi_old

    Exact values by enumeration and Monte-Carlo values over ``num_seeds`` batches, per step:
    ``kl`` = KL(pi_old || pi_theta); ``grad_norm`` = |grad J(theta)|; ``naive_bias`` and
    ``ratio_bias`` (exact, the ratio's is 0); ``naive_bias_mc`` / ``ratio_bias_mc``;
    ``ratio_variance`` (exact trace, per sample) and ``ratio_variance_mc`` (of the
    N-sample mean, times N, so per sample too); ``fresh_variance``: the same with fresh
    samples from pi_theta; ``rho_second_moment`` = E_old[rho^2] = 1 + chi^2(pi_theta ||
    pi_old); ``rho_max``; ``ess`` = N / E_old[rho^2], the effective sample size.
    """
    steps = [float(s) for s in steps]
    p_old = problem.probs  # (K,)
    k = p_old.shape[0]
    b = problem.expected_reward
    eye = torch.eye(k, dtype=DTYPE)
    actions = sample_actions(p_old, num_seeds, num_samples, seed)  # (S, N)
    centred = problem.rewards - b  # (K,)
    out = {name: [] for name in (
        "kl", "grad_norm", "naive_bias", "ratio_bias", "naive_bias_mc", "ratio_bias_mc",
        "ratio_variance", "ratio_variance_mc", "naive_variance", "fresh_variance",
        "rho_second_moment", "rho_max", "ess")}
    for step in steps:
        moved = problem.with_logits(stray_logits(problem, step))
        p_new = moved.probs  # (K,)
        grad = exact_gradient(moved)  # (K,)
        rho = p_new / p_old  # (K,)
        scores = eye - p_new  # (K, K): row a = grad log pi_theta(a)
        per_action = centred.unsqueeze(-1) * scores  # (K, K)
        naive_mean = (p_old.unsqueeze(-1) * per_action).sum(0)  # (K,)
        ratio_mean = (p_old.unsqueeze(-1) * rho.unsqueeze(-1) * per_action).sum(0)  # (K,)
        sq = (per_action**2).sum(-1)  # (K,)
        fresh_centred = problem.rewards - moved.expected_reward  # (K,)
        fresh_sq = ((fresh_centred.unsqueeze(-1) * scores) ** 2).sum(-1)  # (K,)
        # Monte Carlo with the same old-policy samples for every step
        sample_scores = score(p_new, actions)  # (S, N, K)
        weights = centred[actions].unsqueeze(-1)  # (S, N, 1)
        naive_est = (weights * sample_scores).mean(1)  # (S, K)
        ratio_est = (rho[actions].unsqueeze(-1) * weights * sample_scores).mean(1)  # (S, K)
        second_moment = float((p_old * rho**2).sum())
        out["kl"].append(float(categorical_kl(p_old, p_new)))
        out["grad_norm"].append(float(grad.norm()))
        out["naive_bias"].append(float((naive_mean - grad).norm()))
        out["ratio_bias"].append(float((ratio_mean - grad).norm()))
        out["naive_bias_mc"].append(float((naive_est.mean(0) - grad).norm()))
        out["ratio_bias_mc"].append(float((ratio_est.mean(0) - grad).norm()))
        out["ratio_variance"].append(float((p_old * rho**2 * sq).sum() - grad.pow(2).sum()))
        out["naive_variance"].append(float((p_old * sq).sum() - naive_mean.pow(2).sum()))
        out["ratio_variance_mc"].append(float(ratio_est.var(0).sum()) * num_samples)
        out["fresh_variance"].append(float((p_new * fresh_sq).sum() - grad.pow(2).sum()))
        out["rho_second_moment"].append(second_moment)
        out["rho_max"].append(float(rho.max()))
        out["ess"].append(num_samples / second_moment)
    result = {name: torch.tensor(values, dtype=DTYPE) for name, values in out.items()}
    result["steps"] = torch.tensor(steps, dtype=DTYPE)
    return result


def surrogate_gradient(problem: OneTokenProblem, logits: torch.Tensor, actions: torch.Tensor,
                       advantages: torch.Tensor) -> torch.Tensor:
    """Ascent direction autograd gets from the ratio surrogate
    ``-(1/N) sum_i rho_i A_i`` with ``rho_i = pi_theta(a_i) / pi_old(a_i)`` (pi_old is the
    problem's policy, held fixed), at ``logits`` theta, (K,).

    Its gradient is (1/N) sum_i rho_i A_i grad log pi_theta(a_i), the importance-weighted
    policy gradient: the ratio in PPO's loss is exactly this correction.
    """
    old_logp = problem.logits.log_softmax(-1)[actions].detach()  # (N,)
    theta = torch.as_tensor(logits, dtype=DTYPE).detach().clone().requires_grad_(True)
    logp = theta.log_softmax(-1)[actions]  # (N,)
    loss = -(torch.exp(logp - old_logp) * advantages.detach()).mean()
    (grad,) = torch.autograd.grad(loss, theta)
    return -grad


EPOCH_LOSSES = ("naive", "ratio", "clipped")


def _epochs_on_batches(problem: OneTokenProblem, loss: str, actions: torch.Tensor,
                       epochs: int, lr: float, clip: float) -> dict:
    """``epochs`` gradient steps on each of S fixed batches at once, actions (S, N).

    Each batch has its own logits theta_s (S, K); the losses of different batches share
    no parameter, so one backward pass of their sum gives every batch its own gradient.
    """
    check_one_of(loss, "loss", EPOCH_LOSSES)
    p_old = problem.probs  # (K,)
    num_batches, num_samples = actions.shape
    adv = problem.rewards[actions] - problem.expected_reward  # (S, N)
    old_logp = p_old.log()[actions]  # (S, N)
    theta = problem.logits.detach().expand(num_batches, -1).clone().requires_grad_(True)
    kls = [torch.zeros(num_batches, dtype=DTYPE)]
    rewards = [torch.full((num_batches,), problem.expected_reward, dtype=DTYPE)]
    ess = [torch.full((num_batches,), float(num_samples), dtype=DTYPE)]
    for _ in range(epochs):
        logp = theta.log_softmax(-1).gather(1, actions)  # (S, N)
        if loss == "naive":
            per_sample = -adv * logp  # (S, N)
        elif loss == "ratio":
            per_sample = -torch.exp(logp - old_logp) * adv  # (S, N)
        else:
            per_sample = clipped_surrogate(logp, old_logp, adv, eps_low=clip)  # (S, N)
        (grad,) = torch.autograd.grad(per_sample.mean(-1).sum(), theta)  # (S, K)
        with torch.no_grad():
            theta -= lr * grad
            p_new = theta.softmax(-1)  # (S, K)
            kls.append(categorical_kl(p_old, p_new))
            rewards.append((p_new * problem.rewards).sum(-1))
            ess.append(num_samples / (p_new**2 / p_old).sum(-1))  # N / E_old[rho^2]
    return {
        "kl": torch.stack(kls, dim=-1),  # (S, epochs + 1)
        "expected_reward": torch.stack(rewards, dim=-1),  # (S, epochs + 1)
        "ess": torch.stack(ess, dim=-1),  # (S, epochs + 1)
        "probs": theta.detach().softmax(-1),  # (S, K)
    }


@one_torch_thread()
def epochs_on_one_batch(problem: OneTokenProblem, loss: str, epochs: int = 50,
                        lr: float = 1.0, num_samples: int = 16, clip: float = 0.2,
                        seed: int = 0) -> dict:
    """Take ``epochs`` gradient steps on ONE batch of N samples from the initial policy.

    loss (per batch, A_i = r_i - J(theta_old)):
      * ``"naive"``:   -(1/N) sum A_i log pi_theta(a_i)             (REINFORCE, reused)
      * ``"ratio"``:   -(1/N) sum rho_i A_i                          (importance-weighted)
      * ``"clipped"``: PPO's clipped surrogate (``rlviz.clipped_surrogate``, eps ``clip``)

    Returns per epoch (epochs + 1 entries, epoch 0 = before any step): ``kl`` =
    KL(pi_old || pi_theta), ``expected_reward`` = the true J(theta), ``ess`` = N /
    E_old[rho^2] (exact, summed over the K tokens: how many fresh samples of pi_theta the
    batch is worth), and the final ``probs`` (K,) and the batch's ``actions`` (N,).
    """
    actions = sample_actions(problem.probs, 1, num_samples, seed)  # (1, N)
    run = _epochs_on_batches(problem, loss, actions, epochs, lr, clip)
    out = {name: values[0] for name, values in run.items()}
    out["actions"] = actions[0]
    return out


@one_torch_thread()
def epochs_on_many_batches(problem: OneTokenProblem, loss: str, num_batches: int = 100,
                           epochs: int = 50, lr: float = 1.0, num_samples: int = 16,
                           clip: float = 0.2, seed: int = 0) -> dict:
    """``epochs_on_one_batch`` on ``num_batches`` different batches (the batches of seeds
    ``seed``, ``seed + 1``, ...): how the outcome of many steps on one batch depends on
    what the batch happened to contain.

    Returns tensors (num_batches,): the final ``expected_reward`` J, ``best_prob`` (the
    final probability of the token with the highest reward), ``ess`` (final N /
    E_old[rho^2]) and ``best_in_batch`` (bool: the batch contains that token).
    """
    check_positive_int(num_batches, "num_batches")
    actions = torch.cat([sample_actions(problem.probs, 1, num_samples, seed + b)
                         for b in range(num_batches)])  # (S, N)
    run = _epochs_on_batches(problem, loss, actions, epochs, lr, clip)
    best = int(problem.rewards.argmax())
    return {
        "expected_reward": run["expected_reward"][:, -1],  # (S,)
        "best_prob": run["probs"][:, best],  # (S,)
        "ess": run["ess"][:, -1],  # (S,)
        "best_in_batch": (actions == best).any(-1),  # (S,)
    }


def sequence_ratio_second_moment(token_second_moment: float, lengths) -> torch.Tensor:
    """E_old[(prod_t rho_t)^2] = (E_old[rho^2])^T for T independent tokens: the variance
    of a sequence-level importance weight grows exponentially with the length."""
    lengths = torch.as_tensor(lengths, dtype=DTYPE)
    return torch.as_tensor(token_second_moment, dtype=DTYPE) ** lengths
