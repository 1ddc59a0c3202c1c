"""rlviz: the policy losses of PPO and GRPO for language models, to read, run and explore.

Layers, bottom to top: ``rlviz.losses`` (the math, pure torch) -> ``rlviz.algorithms``
(dispatch, defaults, library settings) -> config, models, masks and training loops -> ``rlviz.plots`` (data in, figure out) -> ``rlviz.widgets`` (slider
panels) -> notebooks and the command line (``python -m rlviz``).
"""

from .algorithms import (
    LOSS_FN_REGISTRY,
    AlgoSpec,
    HParams,
    LibraryRecipe,
    LossBatch,
    algo_advantages,
    compute_loss,
    get_spec,
    loss_table,
    loss_table_markdown,
    policy_loss_wrapper,
    resolve_hparams,
)
from .causal_policy import CausalPolicy
from .config import Config, set_seed
from .demo_training import (
    compute_advantage_from_reward,
    main,
    make_fake_batch,
    run_demo,
    train_step,
)
from .losses import (
    aggregate,
    clipped_surrogate,
    gae,
    group_advantages,
    grpo_kl,
    grpo_loss,
    kl_estimate,
    kl_token_rewards,
    ppo_policy_loss,
    selective_log_prob,
    surrogate_metrics,
    token_entropy,
    value_loss,
    value_metrics,
    whiten,
)
from .masks import compute_mask, mask_from_lengths
from .models import TinyPolicy
from .rollout import Rollout, collect_rollout, generate
from .tasks import TASKS, Task, get_task
from .trainer import TrainConfig, TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "AlgoSpec",
    "CausalPolicy",
    "Config",
    "HParams",
    "LibraryRecipe",
    "LossBatch",
    "LOSS_FN_REGISTRY",
    "Rollout",
    "TASKS",
    "Task",
    "TinyPolicy",
    "TrainConfig",
    "TrainResult",
    "aggregate",
    "algo_advantages",
    "clipped_surrogate",
    "collect_rollout",
    "compute_advantage_from_reward",
    "compute_mask",
    "compute_loss",
    "gae",
    "generate",
    "get_spec",
    "get_task",
    "group_advantages",
    "grpo_kl",
    "grpo_loss",
    "kl_estimate",
    "kl_token_rewards",
    "loss_table",
    "loss_table_markdown",
    "main",
    "make_fake_batch",
    "mask_from_lengths",
    "policy_loss_wrapper",
    "ppo_policy_loss",
    "resolve_hparams",
    "run_demo",
    "selective_log_prob",
    "set_seed",
    "surrogate_metrics",
    "token_entropy",
    "train",
    "train_step",
    "value_loss",
    "value_metrics",
    "whiten",
]
