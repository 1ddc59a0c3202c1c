"""Notebook 02, section 5: GRPO's answer, a group of samples as the baseline, no critic."""

from __future__ import annotations

import math

import torch

from ...formatting import fmt  # noqa: F401 (re-exported for the notebook)
from ...losses import (
    gae,
    group_advantages,
)
from ...losses.checks import check_positive_int
from ...threads import one_torch_thread
from .token_chain import (
    GaeStudy,
    TokenChain,
    chain_values,
    critic_values,
    exact_chain_gradient,
    sample_sequences,
)

DTYPE = torch.float64

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
    check_positive_int(group_size, "group_size")
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
