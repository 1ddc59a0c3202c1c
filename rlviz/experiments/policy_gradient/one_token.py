"""Notebook 02, section 1: the one-token policy, REINFORCE and baselines."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...formatting import fmt  # noqa: F401 (re-exported for the notebook)
from ...losses.checks import check_positive_int
from ...threads import one_torch_thread

DTYPE = torch.float64

# ---------------------------------------------------------------------------------------
# 1. The one-token policy: REINFORCE and baselines
# ---------------------------------------------------------------------------------------

TOKENS = ("great", "good", "okay", "meh", "bad")
REWARDS = (1.0, 0.7, 0.4, 0.2, 0.0)
INIT_LOGITS = (-0.5, 0.0, 0.5, 1.0, 0.5)  # the policy starts out preferring "meh"

BASELINES = ("none", "expected", "batch-mean", "leave-one-out")


@dataclass(frozen=True)
class OneTokenProblem:
    """A one-token "language model": ``pi = softmax(logits)`` over ``tokens``, reward table.

    logits, rewards: (K,) float64 tensors; tokens: K names.
    """

    logits: torch.Tensor
    rewards: torch.Tensor
    tokens: tuple

    @property
    def probs(self) -> torch.Tensor:
        """pi(a), (K,)."""
        return self.logits.softmax(-1)

    @property
    def expected_reward(self) -> float:
        """J = sum_a pi(a) r(a)."""
        return float(expected_reward(self.logits, self.rewards))

    def with_logits(self, logits: torch.Tensor) -> "OneTokenProblem":
        return OneTokenProblem(_as_vector(logits, "logits", len(self.tokens)), self.rewards,
                               self.tokens)


def _as_vector(x, name: str, size: int | None = None) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=DTYPE)
    if t.dim() != 1 or (size is not None and t.shape[0] != size):
        want = f"({size},)" if size is not None else "1-D"
        raise ValueError(f"{name} must be a {want} vector, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {t.tolist()}")
    return t


def one_token_problem(logits=INIT_LOGITS, rewards=REWARDS, tokens=TOKENS) -> OneTokenProblem:
    """The notebook's problem: five tokens, rewards 1.0 / 0.7 / 0.4 / 0.2 / 0.0."""
    rewards = _as_vector(rewards, "rewards")
    logits = _as_vector(logits, "logits", rewards.shape[0])
    if len(tokens) != rewards.shape[0]:
        raise ValueError(f"tokens must name the {rewards.shape[0]} rewards, got {len(tokens)}")
    return OneTokenProblem(logits, rewards, tuple(tokens))


def expected_reward(logits: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """J(theta) = sum_a softmax(theta)_a r_a, by enumeration (differentiable)."""
    return (logits.softmax(-1) * rewards).sum(-1)


@one_torch_thread()
def exact_gradient(problem: OneTokenProblem) -> torch.Tensor:
    """grad_theta J by enumeration and autograd, (K,). Closed form: pi_k (r_k - J)."""
    logits = problem.logits.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(expected_reward(logits, problem.rewards), logits)
    return grad


def score(probs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """grad_theta log pi(a) for a softmax policy: ``onehot(a) - pi``, shape (..., K).

    probs (..., K) broadcast against actions (...).
    """
    onehot = torch.nn.functional.one_hot(actions, probs.shape[-1]).to(probs.dtype)  # (..., K)
    return onehot - probs.expand_as(onehot)


def sample_actions(probs: torch.Tensor, num_seeds: int, num_samples: int,
                   seed: int = 0) -> torch.Tensor:
    """(S, N) token ids: S independent batches ("seeds") of N samples from ``probs`` (K,)."""
    check_positive_int(num_seeds, "num_seeds")
    check_positive_int(num_samples, "num_samples")
    generator = torch.Generator().manual_seed(seed)
    expanded = probs.detach().expand(num_seeds, -1)  # (S, K)
    return torch.multinomial(expanded, num_samples, replacement=True, generator=generator)


def baseline_weights(rewards: torch.Tensor, baseline, expected: float) -> torch.Tensor:
    """The factor ``r_i - b_i`` that multiplies each sample's score, (S, N).

    ``baseline``:
      * ``"none"``: b = 0 (plain REINFORCE)
      * ``"expected"``: b = J, the true expected reward (what a perfect critic would say)
      * ``"batch-mean"``: b = mean of the batch's rewards, sample i included (GRPO's group
        mean): biased by the factor (N - 1) / N, since r_i is in its own baseline
      * ``"leave-one-out"``: b_i = mean of the other N - 1 rewards (RLOO): unbiased
      * a number: that constant
    """
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return rewards - float(baseline)
    if baseline == "none":
        return rewards
    if baseline == "expected":
        return rewards - expected
    n = rewards.shape[-1]
    if baseline == "batch-mean":
        return rewards - rewards.mean(-1, keepdim=True)
    if baseline == "leave-one-out":
        if n < 2:
            raise ValueError("baseline='leave-one-out' needs num_samples >= 2")
        return rewards - (rewards.sum(-1, keepdim=True) - rewards) / (n - 1)
    raise ValueError(f"Unknown baseline {baseline!r}. Valid: {', '.join(BASELINES)} or a number")


@one_torch_thread()
def score_function_estimates(problem: OneTokenProblem, num_samples: int = 8,
                             num_seeds: int = 20000, baseline="none",
                             seed: int = 0) -> torch.Tensor:
    """REINFORCE estimates of grad J, (S, K): one per seed, each from N samples,

        g = (1/N) sum_i (r(a_i) - b_i) grad log pi(a_i),      a_i ~ pi.

    The same seed gives the same samples for every baseline, so baselines are compared
    on identical draws.
    """
    probs = problem.probs  # (K,)
    actions = sample_actions(probs, num_seeds, num_samples, seed)  # (S, N)
    rewards = problem.rewards[actions]  # (S, N)
    weights = baseline_weights(rewards, baseline, problem.expected_reward)  # (S, N)
    return (weights.unsqueeze(-1) * score(probs, actions)).mean(1)  # (S, K)


def estimator_stats(estimates: torch.Tensor, exact: torch.Tensor) -> dict:
    """Mean, bias and spread of gradient estimates (S, K) against the exact gradient (K,).

    mean (K,); ``bias`` = |mean - exact|; ``variance`` = trace of the covariance (sum of
    the per-component variances); ``mse`` = mean |g - exact|^2 = bias^2 + variance
    (up to the 1/S vs 1/(S-1) of the variance); ``scale`` = <mean, exact> / |exact|^2
    (1 for an unbiased estimator); ``cosine``: mean cosine between an estimate and the
    exact gradient; ``wrong_way``: share of estimates with a negative cosine (a step along
    them would lower the expected reward, to first order).
    """
    mean = estimates.mean(0)  # (K,)
    variance = estimates.var(0).sum()
    cos = (estimates @ exact) / (estimates.norm(dim=-1) * exact.norm()).clamp_min(1e-300)
    return {
        "mean": mean,
        "bias": float((mean - exact).norm()),
        "variance": float(variance),
        "mse": float(((estimates - exact) ** 2).sum(-1).mean()),
        "scale": float(mean @ exact / (exact @ exact)),
        "cosine": float(cos.mean()),
        "wrong_way": float((cos < 0).to(DTYPE).mean()),
    }


@one_torch_thread()
def baseline_variance(problem: OneTokenProblem, baselines) -> torch.Tensor:
    """Exact variance (trace) of the one-sample estimate (r(a) - b) grad log pi(a) for each
    constant baseline b, by enumeration over a. (M,)

        Var = sum_a pi(a) (r_a - b)^2 |onehot(a) - pi|^2 - |grad J|^2
    """
    b = torch.as_tensor(baselines, dtype=DTYPE).reshape(-1, 1)  # (M, 1)
    probs = problem.probs  # (K,)
    sq_score = ((torch.eye(probs.shape[0], dtype=DTYPE) - probs) ** 2).sum(-1)  # (K,)
    second = (probs * (problem.rewards - b) ** 2 * sq_score).sum(-1)  # (M,)
    return second - exact_gradient(problem).pow(2).sum()


def optimal_baseline(problem: OneTokenProblem) -> float:
    """The constant b minimising the variance: E[r |s|^2] / E[|s|^2], s = grad log pi(a)."""
    probs = problem.probs
    sq_score = ((torch.eye(probs.shape[0], dtype=DTYPE) - probs) ** 2).sum(-1)  # (K,)
    return float((probs * problem.rewards * sq_score).sum() / (probs * sq_score).sum())


def reinforce_loss_gradient(problem: OneTokenProblem, actions: torch.Tensor,
                            advantages: torch.Tensor) -> torch.Tensor:
    """The gradient autograd gets from the policy-gradient "loss"
    ``-(1/N) sum_i A_i log pi(a_i)``, negated (so it is an ascent direction), (K,).

    actions, advantages: (N,). Equal to (1/N) sum_i A_i (onehot(a_i) - pi).
    """
    logits = problem.logits.detach().clone().requires_grad_(True)
    logp = logits.log_softmax(-1)[actions]  # (N,)
    loss = -(advantages.detach() * logp).mean()
    (grad,) = torch.autograd.grad(loss, logits)
    return -grad
