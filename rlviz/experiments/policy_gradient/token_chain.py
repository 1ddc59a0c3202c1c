"""Notebook 02, section 4: the critic on a token sequence: per-token rewards, values,
TD errors, GAE, the value loss."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...formatting import fmt  # noqa: F401 (re-exported for the notebook)
from ...losses import (
    gae,
    kl_estimate,
    value_loss,
)
from ...losses.checks import check_int, check_number
from ...threads import one_torch_thread

DTYPE = torch.float64

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
        check_int(self.length, "length", 1, 16)  # 2**16 responses at most, enumerated
        for name in ("p_policy", "p_ref"):
            check_number(getattr(self, name), name, 0.0, 1.0)
        check_number(self.beta, "beta", 0.0, low_open=False)

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
    check_number(critic_error, "critic_error", 0.0, 1.0, low_open=False, high_open=False)
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
    the study's sampled episodes. Advantages are ``rlviz.gae``'s (not whitened): its TD
    errors, summed with weights (gamma lam)^k for every lam in one product.
    """
    lams_t = torch.tensor([float(x) for x in lams], dtype=DTYPE)  # (L,)
    values = critic_values(study.chain, study.actions, gamma, critic_error)  # (2^T, T)
    # the TD errors delta_t are GAE at lam = 0; every episode of the chain runs all T tokens
    # (mask of ones), so the recursion A_t = delta_t + gamma lam A_{t+1} unrolls to
    # A_t = sum_{s >= t} (gamma lam)^(s - t) delta_s: one product for every lam at once
    deltas, _ = gae(study.token_rewards, values, study.mask, gamma=gamma, lam=0.0)  # (2^T, T)
    positions = torch.arange(deltas.shape[1])
    gap = positions[None, :] - positions[:, None]  # (T, T): s - t
    decay = torch.where(gap >= 0, (gamma * lams_t[:, None, None]) ** gap.clamp(min=0),
                        torch.zeros((), dtype=DTYPE))  # (L, T, T); 0 ** 0 = 1
    adv = torch.einsum("ns,lts->lnt", deltas, decay)  # (L, 2^T, T)
    g = (adv * study.scores).sum(-1)  # (L, 2^T): the one-episode gradient estimates
    result = {"lams": lams_t}
    freq = study.sample_counts / study.num_episodes  # (2^T,)
    for suffix, w in (("", study.probs), ("_sampled", freq)):
        mean = (w * g).sum(-1)  # (L,)
        variance = (w * (g - mean[:, None]) ** 2).sum(-1)  # (L,)
        bias2 = (mean - study.exact_gradient) ** 2  # (L,)
        result.update({"bias2" + suffix: bias2, "variance" + suffix: variance,
                       "mse" + suffix: bias2 + variance})
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
