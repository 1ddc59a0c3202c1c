"""Experiments of notebook 02: from the policy gradient to PPO with a critic.

Two toy problems small enough to solve exactly, so every estimator can be compared with
the truth:

* **the one-token policy** (``OneTokenProblem``): a categorical policy
  ``pi = softmax(logits)`` over K tokens, each with a fixed reward. The expected reward
  ``J = sum_a pi(a) r(a)`` and its gradient ``pi_k (r_k - J)`` are computed by
  enumeration; the score-function (REINFORCE) estimates are sampled, many independent
  runs ("seeds") at once as a batch dimension.
* **the token chain** (``TokenChain``): a response of T binary tokens sampled with the
  same probability p at every step (one parameter, the logit of p), a terminal outcome
  reward, and the KL to a reference in the per-token reward (InstructGPT style). There
  are only 2**T responses, so the exact gradient, the true values V(t, c) and the exact
  mean and variance of every advantage estimator are sums over all of them.

Pure torch, float64, seeded; no plotting (``rlviz.plots.policy_gradient`` draws).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..algorithms import algo_advantages, policy_loss_wrapper
from ..config import Config
from ..formatting import fmt  # noqa: F401 (re-exported for the notebook)
from ..losses import (
    clipped_surrogate,
    gae,
    group_advantages,
    kl_estimate,
    kl_token_rewards,
    selective_log_prob,
    value_loss,
    whiten,
)
from ..masks import mask_from_lengths
from ..threads import one_torch_thread

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
    if num_seeds < 1 or num_samples < 1:
        raise ValueError(f"num_seeds and num_samples must be >= 1, got {num_seeds}, "
                         f"{num_samples}")
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
    if loss not in EPOCH_LOSSES:
        raise ValueError(f"Unknown loss {loss!r}. Valid: {', '.join(EPOCH_LOSSES)}")
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
    if not isinstance(num_batches, int) or num_batches < 1:
        raise ValueError(f"num_batches must be an int >= 1, got {num_batches!r}")
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


# ---------------------------------------------------------------------------------------
# 4. The critic on a token sequence: per-token rewards, values, TD errors, GAE
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenChain:
    """A response of ``length`` binary tokens ("1" = a good step, "0" = a bad one).

    The policy writes "1" with probability ``p_policy`` at every step (one parameter:
    theta = logit(p)); the frozen reference with ``p_ref``. Rewards per token (InstructGPT;
    DeepSeekMath eq. 2): ``-beta * k1_t`` on every token, k1_t = log pi(a_t) - log
    pi_ref(a_t), plus the outcome reward on the last token: 1 if at least ``threshold`` of
    the tokens are "1", else 0. State before token t: (t, c) with c = number of "1" so far.
    """

    length: int = 8
    p_policy: float = 0.6
    p_ref: float = 0.5
    beta: float = 0.1
    threshold: int = 5

    def __post_init__(self):
        if not (isinstance(self.length, int) and 1 <= self.length <= 16):
            raise ValueError(f"length must be an int in [1, 16], got {self.length!r}")
        for name in ("p_policy", "p_ref"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
        if self.beta < 0:
            raise ValueError(f"beta must be >= 0, got {self.beta!r}")

    def token_logp(self, actions: torch.Tensor, p: float) -> torch.Tensor:
        """log P(a_t) per token for a Bernoulli(p) policy, same shape as ``actions``."""
        a = actions.to(DTYPE)
        return a * math.log(p) + (1 - a) * math.log(1 - p)

    def outcome(self, actions: torch.Tensor) -> torch.Tensor:
        """Outcome reward per response, (E,): 1 if at least ``threshold`` tokens are "1"."""
        return (actions.sum(-1) >= self.threshold).to(DTYPE)

    def token_rewards(self, actions: torch.Tensor) -> torch.Tensor:
        """Per-token rewards (E, T): -beta * k1 on every token (``rlviz.kl_estimate``,
        kind "k1") and the outcome reward added on the last one."""
        logp = self.token_logp(actions, self.p_policy)  # (E, T)
        ref_logp = self.token_logp(actions, self.p_ref)  # (E, T)
        rewards = -self.beta * kl_estimate(logp, ref_logp, kind="k1")  # (E, T)
        rewards[:, -1] += self.outcome(actions)
        return rewards

    def counts_before(self, actions: torch.Tensor) -> torch.Tensor:
        """c_t = number of "1" among a_0 .. a_{t-1}, (E, T) long."""
        return actions.cumsum(-1) - actions

    def score(self, actions: torch.Tensor) -> torch.Tensor:
        """d log pi(a_t) / d theta = a_t - p per token, (E, T)."""
        return actions.to(DTYPE) - self.p_policy


def all_sequences(chain: TokenChain) -> tuple[torch.Tensor, torch.Tensor]:
    """Every response and its probability: actions (2^T, T) long, probs (2^T,)."""
    t = chain.length
    codes = torch.arange(2**t).unsqueeze(-1)  # (2^T, 1)
    actions = (codes >> torch.arange(t - 1, -1, -1)) & 1  # (2^T, T)
    logp = chain.token_logp(actions, chain.p_policy).sum(-1)  # (2^T,)
    return actions, logp.exp()


def sample_sequences(chain: TokenChain, num_episodes: int, seed: int = 0) -> torch.Tensor:
    """(E, T) long: E episodes sampled from the policy."""
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand(num_episodes, chain.length, generator=generator, dtype=DTYPE)
    return (u < chain.p_policy).long()


def chain_values(chain: TokenChain, gamma: float = 1.0) -> torch.Tensor:
    """True values V(t, c) under the policy, (T + 1, T + 1), by backward induction:

        V(t, c) = sum_a pi(a) [ r_t(a, c) + gamma V(t + 1, c + a) ],   V(T, .) = 0.

    Entries with c > t are unreachable (left at 0).
    """
    t_len, p = chain.length, chain.p_policy
    values = torch.zeros(t_len + 1, t_len + 1, dtype=DTYPE)
    kl_reward = {a: -chain.beta * (math.log(pa / pr))
                 for a, pa, pr in ((1, p, chain.p_ref), (0, 1 - p, 1 - chain.p_ref))}
    for t in reversed(range(t_len)):
        for c in range(t + 1):
            total = 0.0
            for a, prob in ((1, p), (0, 1 - p)):
                r = kl_reward[a]
                if t == t_len - 1:
                    r += float(c + a >= chain.threshold)
                total += prob * (r + gamma * float(values[t + 1, c + a]))
            values[t, c] = total
    return values


def position_values(chain: TokenChain, values: torch.Tensor) -> torch.Tensor:
    """The average value at each position, E_c[V(t, c)] with c ~ Binomial(t, p), (T,):
    what a critic that sees only the position (not how the answer is going) would learn."""
    p = chain.p_policy
    out = torch.zeros(chain.length, dtype=DTYPE)
    for t in range(chain.length):
        for c in range(t + 1):
            out[t] += math.comb(t, c) * p**c * (1 - p) ** (t - c) * values[t, c]
    return out


def critic_values(chain: TokenChain, actions: torch.Tensor, gamma: float = 1.0,
                  critic_error: float = 0.5) -> torch.Tensor:
    """An imperfect critic's V(s_t) for each token of each episode, (E, T):

        V_hat(t, c) = (1 - e) V(t, c) + e * E_c[V(t, c)]

    a blend of the true value (e = 0: a perfect critic) and the position-only average
    (e = 1: a critic that ignores how the answer is going), e = ``critic_error``.
    """
    if not 0.0 <= critic_error <= 1.0:
        raise ValueError(f"critic_error must lie in [0, 1], got {critic_error!r}")
    table = chain_values(chain, gamma)  # (T + 1, T + 1)
    avg = position_values(chain, table)  # (T,)
    counts = chain.counts_before(actions)  # (E, T)
    positions = torch.arange(chain.length).expand_as(counts)  # (E, T)
    true_v = table[positions, counts]  # (E, T)
    return (1 - critic_error) * true_v + critic_error * avg.expand_as(true_v)


def exact_chain_gradient(chain: TokenChain) -> float:
    """d/d theta of the expected total reward E[sum_t r_t] (undiscounted), by enumeration.

    Computed as sum over the 2^T responses of P * R * (sum_t a_t - p): the reward's own
    dependence on theta (through k1) adds E[-beta * d log pi / d theta] = 0.
    """
    actions, probs = all_sequences(chain)
    total = chain.token_rewards(actions).sum(-1)  # (2^T,)
    return float((probs * total * chain.score(actions).sum(-1)).sum())


def monte_carlo_advantages(token_rewards: torch.Tensor, values: torch.Tensor,
                           gamma: float) -> torch.Tensor:
    """G_t - V_t with G_t = sum_{k >= t} gamma^(k - t) r_k, (E, T): the lambda = 1 target."""
    returns = torch.zeros_like(token_rewards)
    running = torch.zeros_like(token_rewards[:, 0])
    for t in reversed(range(token_rewards.shape[1])):
        running = token_rewards[:, t] + gamma * running
        returns[:, t] = running
    return returns - values


def td_errors(token_rewards: torch.Tensor, values: torch.Tensor, gamma: float) -> torch.Tensor:
    """delta_t = r_t + gamma V_{t+1} - V_t with V_T = 0, (E, T): the lambda = 0 target."""
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    return token_rewards + gamma * next_values - values


EXAMPLE_ACTIONS = (1, 1, 0, 1, 0, 0, 1, 1)  # five "1": the outcome reward is earned


@dataclass
class GaeStudy:
    """Everything the GAE panel needs, precomputed for one chain.

    actions (2^T, T), probs (2^T,), token_rewards (2^T, T), scores (2^T, T): all responses;
    sample_counts (2^T,): how often each response was drawn in ``num_episodes`` sampled
    episodes; exact_gradient: the target; example: index of the example episode.
    """

    chain: TokenChain
    actions: torch.Tensor
    probs: torch.Tensor
    token_rewards: torch.Tensor
    scores: torch.Tensor
    mask: torch.Tensor
    sample_counts: torch.Tensor
    num_episodes: int
    exact_gradient: float
    example: int


@one_torch_thread()
def gae_study(chain: TokenChain | None = None, num_episodes: int = 20000,
              seed: int = 0, example_actions=EXAMPLE_ACTIONS) -> GaeStudy:
    """Enumerate every response of ``chain`` and draw ``num_episodes`` sampled episodes."""
    chain = TokenChain() if chain is None else chain
    actions, probs = all_sequences(chain)
    sampled = sample_sequences(chain, num_episodes, seed)  # (E, T)
    weights = 2 ** torch.arange(chain.length - 1, -1, -1)  # (T,)
    counts = torch.bincount((sampled * weights).sum(-1), minlength=2**chain.length)
    example = torch.as_tensor(example_actions)
    if example.shape != (chain.length,) or not ((example == 0) | (example == 1)).all():
        raise ValueError(f"example_actions must be {chain.length} zeros and ones, "
                         f"got {list(example_actions)}")
    return GaeStudy(
        chain=chain,
        actions=actions,
        probs=probs,
        token_rewards=chain.token_rewards(actions),
        scores=chain.score(actions),
        mask=torch.ones(actions.shape, dtype=DTYPE),
        sample_counts=counts.to(DTYPE),
        num_episodes=num_episodes,
        exact_gradient=exact_chain_gradient(chain),
        example=int((example * weights).sum()),
    )


@one_torch_thread()
def gae_gradient_stats(study: GaeStudy, gamma: float, lams, critic_error: float) -> dict:
    """Bias and variance of the one-episode policy-gradient estimate

        g = sum_t A_t^GAE(gamma, lam) (a_t - p)

    against the exact gradient of the undiscounted expected reward, for each lam in
    ``lams``. ``bias2``, ``variance``, ``mse`` (L,): exact, weighting all 2^T responses by
    their probability; ``bias2_sampled``, ``variance_sampled``, ``mse_sampled`` (L,): over
    the study's sampled episodes. Advantages come from ``rlviz.gae`` (not whitened).
    """
    lams = [float(x) for x in lams]
    values = critic_values(study.chain, study.actions, gamma, critic_error)  # (2^T, T)
    exact = study.exact_gradient
    freq = study.sample_counts / study.num_episodes  # (2^T,)
    out = {k: [] for k in ("bias2", "variance", "mse", "bias2_sampled", "variance_sampled",
                           "mse_sampled")}
    for lam in lams:
        adv, _ = gae(study.token_rewards, values, study.mask, gamma=gamma, lam=lam)  # (2^T, T)
        g = (adv * study.scores).sum(-1)  # (2^T,)
        for suffix, w in (("", study.probs), ("_sampled", freq)):
            mean = float((w * g).sum())
            var = float((w * (g - mean) ** 2).sum())
            out["bias2" + suffix].append((mean - exact) ** 2)
            out["variance" + suffix].append(var)
            out["mse" + suffix].append((mean - exact) ** 2 + var)
    result = {k: torch.tensor(v, dtype=DTYPE) for k, v in out.items()}
    result["lams"] = torch.tensor(lams, dtype=DTYPE)
    return result


@one_torch_thread()
def example_episode(study: GaeStudy, gamma: float, lam: float, critic_error: float) -> dict:
    """The example episode's per-token numbers, each (T,): ``actions``, ``rewards``,
    ``values`` (the critic's), ``advantages`` (GAE at lam), ``td`` (lam = 0: the TD errors),
    ``mc`` (lam = 1: return minus value), ``returns`` = advantages + values."""
    i = study.example
    rewards = study.token_rewards[i : i + 1]  # (1, T)
    values = critic_values(study.chain, study.actions[i : i + 1], gamma, critic_error)  # (1, T)
    mask = study.mask[i : i + 1]
    adv, returns = gae(rewards, values, mask, gamma=gamma, lam=lam)
    td, _ = gae(rewards, values, mask, gamma=gamma, lam=0.0)
    mc, _ = gae(rewards, values, mask, gamma=gamma, lam=1.0)
    return {"actions": study.actions[i], "rewards": rewards[0], "values": values[0],
            "advantages": adv[0], "td": td[0], "mc": mc[0], "returns": returns[0]}


@one_torch_thread()
def value_clip_curve(old_value: float = 0.5, ret: float = 1.0, clip_range: float = 0.2,
                     values=None) -> dict:
    """The clipped value loss of one token and its gradient, against the new value V.

    Uses ``rlviz.value_loss`` on a batch of M one-token responses (one per V), so loss
    and gradient are the per-token ones: ``values`` (M,), ``loss`` (M,) =
    0.5 max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2), ``unclipped`` (M,) =
    0.5 (V - R)^2, ``grad`` (M,) = d loss / d V (autograd), and the inputs.
    """
    if values is None:
        values = torch.linspace(old_value - 0.8, 2 * ret - old_value + 0.3, 221, dtype=DTYPE)
    v = torch.as_tensor(values, dtype=DTYPE).reshape(-1, 1).clone().requires_grad_(True)
    m = v.shape[0]
    old = torch.full_like(v, old_value)  # (M, 1)
    target = torch.full_like(v, ret)  # (M, 1)
    ones = torch.ones_like(v)
    # "seq-mean-token-sum" over M one-token rows = the mean of the M per-token losses
    mean_loss = value_loss(v, old, target, ones, clip_range=clip_range,
                           mode="seq-mean-token-sum")
    (grad,) = torch.autograd.grad(mean_loss, v)
    losses = torch.stack([
        value_loss(v[i : i + 1].detach(), old[i : i + 1], target[i : i + 1], ones[i : i + 1],
                   clip_range=clip_range) for i in range(m)
    ])  # (M,): one call per point, so each is exactly the per-token loss
    return {
        "values": v.detach().reshape(-1),
        "loss": losses,
        "unclipped": 0.5 * (v.detach().reshape(-1) - ret) ** 2,
        "grad": grad.reshape(-1) * m,
        "old_value": old_value,
        "ret": ret,
        "clip_range": clip_range,
    }


# ---------------------------------------------------------------------------------------
# 5. GRPO's answer: a group of samples as the baseline, no critic
# ---------------------------------------------------------------------------------------


@one_torch_thread()
def group_baseline_stats(chain: TokenChain, group_size: int, num_episodes: int = 2**15,
                         scale: str = "none", seed: int = 0) -> dict:
    """The one-episode gradient estimate with GRPO's advantage, the same on every token:

        g_i = A_i sum_t (a_it - p),   A_i = group_advantages(R, G, scale)_i

    with R_i the total reward of response i (outcome + KL rewards) and G = ``group_size``
    responses per prompt, over ``num_episodes`` sampled responses (rounded down to whole
    groups). Returns ``mean``, ``variance`` (per response), ``scale`` = mean / exact (the
    group mean contains R_i itself, so with scale "none" the expectation is (G - 1) / G of
    the gradient) and ``noise`` = std / |mean|, the noise-to-signal ratio (scale-free).
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size!r}")
    num_groups = max(num_episodes // group_size, 1)
    actions = sample_sequences(chain, group_size * num_groups, seed)  # (B, T)
    total = chain.token_rewards(actions).sum(-1)  # (B,)
    adv = group_advantages(total, group_size, scale=scale)  # (B,)
    g = adv * chain.score(actions).sum(-1)  # (B,)
    exact = exact_chain_gradient(chain)
    mean, var = float(g.mean()), float(g.var())
    return {"mean": mean, "variance": var, "scale": mean / exact, "exact": exact,
            "noise": math.sqrt(var) / max(abs(mean), 1e-12)}


@one_torch_thread()
def estimator_comparison(study: GaeStudy, gamma: float = 1.0) -> dict:
    """The one-episode gradient estimate with several advantage estimators, by enumeration:
    name -> (scale, variance, noise) with scale = mean / exact gradient and noise =
    std / |mean| (the noise-to-signal ratio, which does not depend on the scale)."""
    exact = study.exact_gradient
    total = study.token_rewards.sum(-1, keepdim=True).expand_as(study.token_rewards)
    v0 = float(chain_values(study.chain, 1.0)[0, 0])  # V(s_0): the expected total reward
    rows = {"no baseline (A_t = total reward)": (total * study.scores).sum(-1),
            "A_t = total reward - V(s_0) (GRPO as G -> inf)":
                ((total - v0) * study.scores).sum(-1)}
    for label, error, lam in (("GAE, perfect critic, lam=1", 0.0, 1.0),
                              ("GAE, perfect critic, lam=0.95", 0.0, 0.95),
                              ("GAE, half-right critic, lam=0.95", 0.5, 0.95),
                              ("GAE, half-right critic, lam=0", 0.5, 0.0)):
        values = critic_values(study.chain, study.actions, gamma, error)
        adv, _ = gae(study.token_rewards, values, study.mask, gamma=gamma, lam=lam)
        rows[label] = (adv * study.scores).sum(-1)
    out = {}
    for label, g in rows.items():
        mean = float((study.probs * g).sum())
        var = float((study.probs * (g - mean) ** 2).sum())
        out[label] = (mean / exact, var, math.sqrt(var) / abs(mean))
    return out


# ---------------------------------------------------------------------------------------
# 6. Putting it together: one "ppo_gae" update on a small batch
# ---------------------------------------------------------------------------------------


class TinyActorCritic(nn.Module):
    """A bigram language model with a value head on the same trunk.

    Input at position t: the previous token (BOS at t = 0) and the position t. Outputs
    ``logits`` (B, T, V): pi(a_t | a_{t-1}, t), and ``values`` (B, T): V(s_t), the value
    of the state before token t is chosen (the convention ``rlviz.gae`` expects).
    """

    def __init__(self, vocab_size: int = 6, hidden_size: int = 16, max_len: int = 6):
        super().__init__()
        self.vocab_size = vocab_size
        self.bos = vocab_size
        self.token = nn.Embedding(vocab_size + 1, hidden_size)
        self.position = nn.Embedding(max_len, hidden_size)
        self.ln = nn.LayerNorm(hidden_size)
        self.policy_head = nn.Linear(hidden_size, vocab_size)
        self.value_head = nn.Linear(hidden_size, 1)

    def inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) response tokens -> (B, T) previous tokens, BOS first."""
        bos = torch.full_like(tokens[:, :1], self.bos)
        return torch.cat([bos, tokens[:, :-1]], dim=1)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prev = self.inputs(tokens)  # (B, T)
        positions = torch.arange(tokens.shape[1], device=tokens.device)  # (T,)
        x = self.ln(self.token(prev) + self.position(positions))  # (B, T, H)
        return self.policy_head(x), self.value_head(x).squeeze(-1)  # (B, T, V), (B, T)

    @torch.no_grad()
    def sample(self, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """(B, length) tokens sampled one position at a time."""
        tokens = torch.zeros(batch, length, dtype=torch.long)
        for t in range(length):
            logits, _ = self.forward(tokens[:, : t + 1])  # (B, t + 1, V)
            probs = logits[:, t].softmax(-1)  # (B, V)
            tokens[:, t] = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        return tokens


GOOD_TOKEN = 1  # the outcome reward counts this token


@one_torch_thread()
def ppo_gae_update(epochs: int = 4, lr: float = 0.1, lengths=(6, 4, 5, 3),
                   vocab_size: int = 6, seed: int = 0, cfg: Config | None = None) -> dict:
    """One PPO-with-a-critic update (``"ppo_gae"``) on a batch of ``len(lengths)`` responses.

    1. rollout (no grad): sample responses from the policy, record ``old_logp``,
       ``old_values`` and the frozen reference's ``ref_logp``; the outcome reward of a
       response is the share of its tokens equal to ``GOOD_TOKEN``.
    2. per-token rewards ``-beta * k1`` (+ outcome on the last token), GAE, returns,
       whitened advantages (``kl_token_rewards``, ``gae``, ``whiten``).
    3. ``epochs`` full-batch gradient-descent steps on ``policy_loss_wrapper("ppo_gae", ...,
       return_metrics=True)``, the metrics recorded before each step.

    The policy starts as the reference plus a little noise (as after some training),
    so the KL to the reference is not zero. Returns the batch tensors, ``raw_advantages``,
    ``advantages`` (whitened), ``returns``, ``hparams`` and ``metrics`` (one dict per
    epoch, each with ``loss_check`` = |loss - (policy_loss + vf_coef * value_loss -
    ent_coef * entropy)|).
    """
    cfg = Config(algo="ppo_gae", device="cpu") if cfg is None else cfg
    hparams = cfg.hparams()
    lengths = torch.as_tensor(lengths)
    max_len = int(lengths.max())
    with torch.random.fork_rng(devices=[]):  # seeded weights, the caller's RNG untouched
        torch.manual_seed(seed)
        reference = TinyActorCritic(vocab_size, max_len=max_len)
        model = TinyActorCritic(vocab_size, max_len=max_len)
        model.load_state_dict(reference.state_dict())
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.15 * torch.randn_like(param))
    generator = torch.Generator().manual_seed(seed)

    # 1. rollout
    tokens = model.sample(len(lengths), max_len, generator)  # (B, T)
    mask = mask_from_lengths(lengths, max_len)  # (B, T)
    with torch.no_grad():
        logits, old_values = model(tokens)  # (B, T, V), (B, T)
        old_logp = selective_log_prob(logits, tokens)  # (B, T)
        ref_logits, _ = reference(tokens)
        ref_logp = selective_log_prob(ref_logits, tokens)  # (B, T)
    good = ((tokens == GOOD_TOKEN).float() * mask).sum(1)  # (B,)
    rewards = good / lengths.float()  # (B,)

    # 2. per-token rewards, GAE, whitening
    token_rewards = kl_token_rewards(rewards, mask, old_logp, ref_logp, beta=hparams["beta"],
                                     kind=hparams["kl_estimator"])  # (B, T)
    raw_adv, returns = gae(token_rewards, old_values, mask, gamma=hparams["gamma"],
                           lam=hparams["lam"])  # (B, T) each
    advantages = whiten(raw_adv, mask)  # (B, T)
    registry_adv, registry_returns = algo_advantages(
        hparams, rewards, mask, values=old_values, logp=old_logp, ref_logp=ref_logp)

    # 3. epochs of clipped-surrogate + value loss - entropy bonus
    params = list(model.parameters())
    history = []
    for _ in range(epochs):
        logits, values = model(tokens)  # (B, T, V), (B, T)
        logp = selective_log_prob(logits, tokens)  # (B, T)
        loss, metrics = policy_loss_wrapper(
            "ppo_gae", logp, old_logp, ref_logp, advantages, mask, lengths, cfg,
            values=values, old_values=old_values, returns=returns, logits=logits,
            return_metrics=True)
        parts = (metrics["policy_loss"] + hparams["vf_coef"] * metrics["value_loss"]
                 - hparams["ent_coef"] * metrics["entropy"])
        metrics["loss_check"] = abs(float(loss.detach()) - parts)
        history.append(metrics)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():  # plain gradient descent (torch.optim would import torch._dynamo)
            for param, grad in zip(params, grads):
                param -= lr * grad
    return {
        "tokens": tokens, "mask": mask, "lengths": lengths, "rewards": rewards,
        "old_logp": old_logp, "ref_logp": ref_logp, "old_values": old_values,
        "token_rewards": token_rewards, "raw_advantages": raw_adv, "advantages": advantages,
        "returns": returns, "registry_advantages": registry_adv,
        "registry_returns": registry_returns, "hparams": hparams, "metrics": history,
    }


def masked_stats(x: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Mean and unbiased std of ``x`` over the entries where ``mask`` is 1."""
    values = x[mask > 0]
    return float(values.mean()), float(values.std())


