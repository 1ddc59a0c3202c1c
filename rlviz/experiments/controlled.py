"""The controlled experiments of notebook 09: each changes one thing against a fixed base,
over ten seeds (``rlviz.experiments.catalog`` registers them; ``make experiments`` caches
them under ``data/experiments/``).

* ``length_bias``: ``"grpo_paper"``, only ``loss_agg_mode`` changes;
* ``std_difficulty``: ``"grpo_paper"`` on ``"sort"`` (prompts of 3-5 symbols), only
  ``adv_scale`` changes (group std on / off), reward per prompt length;
* ``entropy_collapse``: an off-policy setting (64 responses per step, 2 epochs x 4
  minibatches, no entropy bonus), the clipped surrogate against clip-higher, Clip-Cov,
  KL-Cov and the entropy bonus;
* ``zero_variance``: dynamic sampling off / on.

Every base starts from ``TWO_LAYER_SETTINGS`` (two layers, real-token positions, two epochs,
lr 1e-3: the trainer's defaults when these experiments were designed), so their results do
not move with the trainer's faster defaults. Base
settings were chosen so that each experiment runs in at most about 6 minutes on 2
busy cores: 128 responses per step (64 for entropy_collapse) and 40-60 steps; one run
took ~0.16 s (64 responses) to ~0.25 s (128) per early step with both cores loaded, each
experiment about 3 minutes (regenerated on 3 December 2026)."""

from __future__ import annotations

from ..trainer import TWO_LAYER_SETTINGS
from .runner import Experiment

TEN_SEEDS = tuple(range(10))

LENGTH_BIAS = Experiment(
    name="length_bias",
    description='"grpo_paper" (the trainer\'s entropy bonus, as in the arena) on reverse, '
                "only loss_agg_mode changes",
    configs={mode: {"loss_agg_mode": mode}
             for mode in ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm")},
    seeds=TEN_SEEDS,
    base={**TWO_LAYER_SETTINGS, "algo": "grpo_paper", "steps": 50, "samples_per_step": 128},
    metrics=("reward", "greedy_reward", "response_length", "entropy", "seconds"),
)

STD_DIFFICULTY = Experiment(
    name="std_difficulty",
    description='"grpo_paper" on sort (prompts of 3, 4 or 5 symbols), only adv_scale '
                "changes: group advantages divided by the group std, or not",
    configs={"group std": {"adv_scale": "group"}, "no std": {"adv_scale": "none"}},
    seeds=TEN_SEEDS,
    base={**TWO_LAYER_SETTINGS, "algo": "grpo_paper", "task": "sort", "steps": 60, "samples_per_step": 128},
    metrics=("reward", "reward_len3", "reward_len4", "reward_len5", "greedy_reward",
             "seconds"),
)

ENTROPY_COLLAPSE = Experiment(
    name="entropy_collapse",
    description="off-policy updates (64 responses per step, 2 epochs x 4 minibatches), no "
                'entropy bonus: the clipped surrogate of "dapo" with eps_high 0.2 against '
                "clip-higher, Clip-Cov, KL-Cov and an entropy bonus",
    configs={"clip 0.2 / 0.2": {},
             "clip-higher 0.28": {"eps_high": 0.28},
             "Clip-Cov": {"algo": "clip_cov"},
             "KL-Cov": {"algo": "kl_cov"},
             "entropy bonus 0.01": {"ent_coef": 0.01}},
    seeds=TEN_SEEDS,
    base={**TWO_LAYER_SETTINGS, "algo": "dapo", "eps_high": 0.2, "ent_coef": 0.0,
          "samples_per_step": 64,
          "epochs": 2, "minibatches": 4, "steps": 40},
    metrics=("reward", "greedy_reward", "entropy", "clipfrac", "seconds"),
)

ZERO_VARIANCE = Experiment(
    name="zero_variance",
    description='"grpo_paper" on reverse, only dynamic_sampling changes (at most 5 '
                "generation rounds per step)",
    configs={"every group": {}, "dynamic sampling": {"dynamic_sampling": True}},
    seeds=TEN_SEEDS,
    base={**TWO_LAYER_SETTINGS, "algo": "grpo_paper", "steps": 60, "samples_per_step": 128},
    metrics=("reward", "greedy_reward", "frac_reward_zero_std", "gen_rounds",
             "samples_generated", "seconds"),
)

CONTROLLED = (LENGTH_BIAS, STD_DIFFICULTY, ENTROPY_COLLAPSE, ZERO_VARIANCE)
