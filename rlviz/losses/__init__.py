"""The math: losses, KL estimators, advantages, aggregation. Pure torch, no plotting."""

from .advantages import group_advantages
from .aggregation import aggregate
from .critic import gae, kl_token_rewards, value_loss, value_metrics, whiten
from .demo import grpo_kl, grpo_loss, ppo_policy_loss
from .kl import kl_estimate
from .logprob import selective_log_prob, token_entropy
from .rollout_correction import (
    is_correction_weights,
    k3_plus,
    k3_ratio_weighted,
    masked_is_weights,
    truncated_is_weights,
    weighted_advantages,
)
from .surrogate import clip_fraction, clipped_surrogate, surrogate_metrics

__all__ = [
    "aggregate",
    "clip_fraction",
    "clipped_surrogate",
    "gae",
    "group_advantages",
    "grpo_kl",
    "grpo_loss",
    "kl_estimate",
    "kl_token_rewards",
    "ppo_policy_loss",
    "selective_log_prob",
    "surrogate_metrics",
    "token_entropy",
    "truncated_is_weights",
    "masked_is_weights",
    "is_correction_weights",
    "weighted_advantages",
    "k3_ratio_weighted",
    "k3_plus",
    "value_loss",
    "value_metrics",
    "whiten",
]
