"""The math: losses, KL estimators, advantages, aggregation. Pure torch, no plotting."""

from .advantages import group_advantages
from .aggregation import aggregate
from .critic import gae, value_loss, value_metrics, whiten
from .demo import grpo_kl, grpo_loss, ppo_policy_loss
from .family import algo_advantages, family_loss, kl_token_rewards
from .kl import kl_estimate
from .logprob import selective_log_prob, token_entropy
from .registry import (
    LOSS_FN_REGISTRY,
    AlgoSpec,
    get_spec,
    policy_loss_wrapper,
    resolve_hparams,
)
from .surrogate import clipped_surrogate, surrogate_metrics
from .table import loss_table, loss_table_markdown

__all__ = [
    "AlgoSpec",
    "LOSS_FN_REGISTRY",
    "aggregate",
    "algo_advantages",
    "clipped_surrogate",
    "family_loss",
    "gae",
    "get_spec",
    "group_advantages",
    "grpo_kl",
    "grpo_loss",
    "kl_estimate",
    "kl_token_rewards",
    "loss_table",
    "loss_table_markdown",
    "policy_loss_wrapper",
    "ppo_policy_loss",
    "resolve_hparams",
    "selective_log_prob",
    "surrogate_metrics",
    "token_entropy",
    "value_loss",
    "value_metrics",
    "whiten",
]
