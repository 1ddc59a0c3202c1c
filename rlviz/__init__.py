"""rlviz: the policy losses of PPO and GRPO for language models, to read, run and explore.

Layers, bottom to top: ``rlviz.losses`` (the math, pure torch) -> models, masks and
training loops -> ``rlviz.plots`` (data in, figure out) -> ``rlviz.widgets`` (slider
panels) -> notebooks and the command line (``python -m rlviz``).
"""

from .config import Config, set_seed
from .demo_training import (
    compute_advantage_from_reward,
    main,
    make_fake_batch,
    run_demo,
    train_step,
)
from .losses import (
    LOSS_FN_REGISTRY,
    AlgoSpec,
    get_spec,
    grpo_kl,
    grpo_loss,
    policy_loss_wrapper,
    ppo_policy_loss,
)
from .masks import compute_mask, mask_from_lengths
from .models import TinyPolicy

__version__ = "0.1.0"

__all__ = [
    "AlgoSpec",
    "Config",
    "LOSS_FN_REGISTRY",
    "TinyPolicy",
    "compute_advantage_from_reward",
    "compute_mask",
    "get_spec",
    "grpo_kl",
    "grpo_loss",
    "main",
    "make_fake_batch",
    "mask_from_lengths",
    "policy_loss_wrapper",
    "ppo_policy_loss",
    "run_demo",
    "set_seed",
    "train_step",
]
