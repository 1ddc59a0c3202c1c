"""The math: losses, KL estimators, advantages, aggregation. Pure torch, no plotting."""

from .demo import grpo_kl, grpo_loss, ppo_policy_loss
from .registry import LOSS_FN_REGISTRY, AlgoSpec, get_spec, policy_loss_wrapper

__all__ = [
    "AlgoSpec",
    "LOSS_FN_REGISTRY",
    "get_spec",
    "grpo_kl",
    "grpo_loss",
    "policy_loss_wrapper",
    "ppo_policy_loss",
]
