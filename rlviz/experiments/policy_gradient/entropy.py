"""Notebook 02, section 3: the entropy bonus."""

from __future__ import annotations

import torch

from ...formatting import fmt  # noqa: F401 (re-exported for the notebook)
from ...threads import one_torch_thread
from .one_token import OneTokenProblem, baseline_weights, score

DTYPE = torch.float64

# ---------------------------------------------------------------------------------------
# 3. The entropy bonus
# ---------------------------------------------------------------------------------------


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """H(pi) = -sum pi log pi over the last dimension (0 log 0 = 0)."""
    logp = probs.clamp_min(1e-300).log()
    return -(probs * logp).sum(-1)


def entropy_gradient(probs: torch.Tensor) -> torch.Tensor:
    """dH/dtheta for pi = softmax(theta): ``-pi_k (log pi_k + H)``, shape of ``probs``."""
    logp = probs.clamp_min(1e-300).log()
    return -probs * (logp + entropy(probs).unsqueeze(-1))


@one_torch_thread()
def entropy_bonus_run(problem: OneTokenProblem, ent_coefs, steps: int = 100, lr: float = 2.0,
                      num_samples: int = 8, num_seeds: int = 32, seed: int = 0) -> dict:
    """Train the one-token policy with REINFORCE plus an entropy bonus, for each
    ``ent_coef`` c, ``num_seeds`` independent runs at once:

        loss = -(1/N) sum_i A_i log pi(a_i) - c H(pi),  A_i = r_i - mean of the others (RLOO)

    (the entropy is exact: the full distribution is at hand, as the logits are in an LLM).
    Plain gradient descent with step ``lr``; the gradient is written out, not taken by
    autograd, to keep the loop fast: ``-(1/N) sum_i A_i (onehot(a_i) - pi) - c dH/dtheta``
    (the tests check it against autograd). Returns ``ent_coefs`` (C,); ``entropy`` and
    ``expected_reward`` (C, steps + 1), averaged over the seeds; final ``probs`` (C, K)
    averaged over the seeds; ``limit_entropy`` (C,): the entropy of the policy maximising
    J + c H, softmax(r / c) (0 for c = 0: the greedy policy).
    """
    coefs = torch.as_tensor(ent_coefs, dtype=DTYPE).reshape(-1)  # (C,)
    if (coefs < 0).any():
        raise ValueError(f"ent_coefs must be >= 0, got {coefs.tolist()}")
    num_coefs, k = coefs.shape[0], problem.logits.shape[0]
    generator = torch.Generator().manual_seed(seed)
    theta = problem.logits.expand(num_coefs, num_seeds, k).clone()  # (C, S, K)
    rewards = problem.rewards
    coef = coefs.view(-1, 1, 1)  # (C, 1, 1)
    ent_hist, rew_hist = [], []
    for step in range(steps + 1):
        probs = theta.softmax(-1)  # (C, S, K)
        ent_hist.append(entropy(probs).mean(1))  # (C,)
        rew_hist.append((probs * rewards).sum(-1).mean(1))  # (C,)
        if step == steps:
            break
        actions = torch.multinomial(probs.reshape(-1, k), num_samples, replacement=True,
                                    generator=generator).reshape(num_coefs, num_seeds, -1)
        adv = baseline_weights(rewards[actions], "leave-one-out", 0.0)  # (C, S, N)
        pg_grad = -(adv.unsqueeze(-1) * score(probs.unsqueeze(-2), actions)).mean(-2)  # (C,S,K)
        theta = theta - lr * (pg_grad - coef * entropy_gradient(probs))
    limit = torch.stack([
        entropy((rewards / c).softmax(-1)) if c > 0 else torch.zeros((), dtype=DTYPE)
        for c in coefs.tolist()
    ])
    return {
        "ent_coefs": coefs,
        "entropy": torch.stack(ent_hist, 1),  # (C, steps + 1)
        "expected_reward": torch.stack(rew_hist, 1),  # (C, steps + 1)
        "probs": theta.softmax(-1).mean(1),  # (C, K)
        "limit_entropy": limit,
    }
