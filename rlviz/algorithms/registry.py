"""``LOSS_FN_REGISTRY``: algorithm name -> ``AlgoSpec``.

A spec says everything a trainer needs to run an algorithm: how advantages are computed,
where the KL goes, whether a critic is needed, the defaults it changes in ``HParams``, the
loss function, and what the recipe is called in TRL and verl (``LibraryRecipe`` data).
The demo's ``ppo`` and ``grpo`` are ordinary entries: their loss functions call the demo's
losses exactly as the demo does, and they read only the demo's knobs from a ``Config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from .hparams import OVERRIDABLE, unknown_names
from .library import ACTOR, LibraryRecipe, trl, unsupported, verl
from .loss import compute_loss, demo_grpo_loss, demo_ppo_loss


@dataclass(frozen=True)
class AlgoSpec:
    """One algorithm.

    name:          registry key (``cfg.algo``)
    advantage:     a key of ``rlviz.algorithms.loss.ADVANTAGES`` ("batch-centred", "group",
                   "gae")
    kl_in:         where the KL to the reference goes: "loss", "reward" or "none" (a beta
                   set on a "none" algorithm puts it in the loss, as TRL's beta does)
    needs_critic:  True when the algorithm trains a value head
    defaults:      the ``HParams`` defaults this algorithm changes
    loss_fn:       ``loss_fn(batch: LossBatch, hp: HParams) -> (loss, metrics)``
    config_names:  hyper-parameter -> the ``Config`` field it is read from, or None to ignore
                   that field (default: the field of the same name)
    paper, summary: for the loss table; ``table_notes`` replaces a cell the table would
                   otherwise derive from the data (column name -> text)
    trl, verl:     the recipe in the pinned TRL and verl (``LibraryRecipe``)
    """

    name: str
    advantage: str
    kl_in: str
    needs_critic: bool
    defaults: Mapping = field(default_factory=dict)
    loss_fn: Callable = compute_loss
    config_names: Mapping = field(default_factory=dict)
    paper: str = ""
    summary: str = ""
    table_notes: Mapping = field(default_factory=dict)
    trl: LibraryRecipe | None = None
    verl: LibraryRecipe | None = None

    def __post_init__(self):
        unknown_names(self.defaults, f"AlgoSpec {self.name!r} defaults")
        unknown_names(self.config_names, f"AlgoSpec {self.name!r} config_names")


# Config always sets vf_coef and ent_coef (the demo declares them): only critic algorithms
# read them; the others keep HParams' defaults (no value loss, no entropy bonus).
NO_CRITIC_COEFS = {"vf_coef": None, "ent_coef": None}
# The demo's algorithms read the demo's knobs and nothing else from a Config.
DEMO_KNOBS = {**{name: None for name in OVERRIDABLE},
              "eps_low": "clip_range", "eps_high": "clip_range", "group_size": "group_num"}

# Facts of the pinned libraries, each checked in their installed source (file:line of
# TRL 1.16.0 under trl/, verl 0.9.1 under verl/; the notebooks and docs/losses.md quote them).
VERL_DUAL_CLIP = ("the vanilla policy loss always applies the dual clip with "
                  "actor.clip_ratio_c = 3 where A < 0 (it must be > 1 and cannot be switched "
                  "off: trainer/ppo/core_algos.py compute_policy_loss_vanilla); rlviz's "
                  "recipe has none: set dual_clip=3 in rlviz to compute what verl computes")
VERL_LOG_RATIO = "the log-ratio is clamped to [-20, 20] before exp (core_algos.py)"
VERL_SEQ_MEAN = ("the seq-mean modes divide by ppo_mini_batch_size * rollout.n, every "
                 "response of the mini-batch, empty ones included (rlviz.aggregate skips "
                 "empty responses)")
VERL_K3_CLAMP = "low_var_kl (k3) is clamped to [-10, 10]"
TRL_EMPTY = ("'grpo' averages over every completion, empty ones included "
             "(grpo_trainer.py: sum(-1) / mask.sum(-1).clamp(min=1)).mean()")
TRL_STD_EPS = "the group std gets + 1e-4 (rlviz: + 1e-6)"
TRL_MICRO = ("the loss is computed per micro-batch and divided by the gradient-accumulation "
             "steps, so the seq-mean is per micro-batch (notebook 08)")
VERL_GROUP = {"algorithm.adv_estimator": "grpo", "algorithm.use_kl_in_reward": False}
TRL_NO_PPO = unsupported("trl", "TRL 1.16.0 has no PPO trainer: trl.PPOTrainer (<= 0.25) "
                                "moved to trl.experimental.ppo in 0.26 and is absent from "
                                "1.16.0 (huggingface/trl PR #7020)")

LOSS_FN_REGISTRY: dict[str, AlgoSpec] = {}


def register(spec: AlgoSpec) -> AlgoSpec:
    """Add ``spec`` to ``LOSS_FN_REGISTRY`` (a ``ValueError`` if the name is taken)."""
    if spec.name in LOSS_FN_REGISTRY:
        raise ValueError(f"algo {spec.name!r} is already registered")
    LOSS_FN_REGISTRY[spec.name] = spec
    return spec


register(AlgoSpec(
    name="ppo", advantage="batch-centred", kl_in="none", needs_critic=False,
    loss_fn=demo_ppo_loss, config_names=DEMO_KNOBS,
    paper="the original demo (PPO's clipped surrogate, arXiv 1707.06347)",
    summary="demo: clipped surrogate, token-mean, no critic, A = r - mean(r)",
    table_notes={"defaults": "eps = cfg.clip_range (0.2)"},
))
register(AlgoSpec(
    name="grpo", advantage="batch-centred", kl_in="loss", needs_critic=False,
    defaults={"kl_estimator": "k1", "loss_agg_mode": "seq-mean-token-mean"},
    loss_fn=demo_grpo_loss, config_names={**DEMO_KNOBS, "beta": "beta_kl"},
    paper="the original demo (GRPO-style, arXiv 2402.03300)",
    summary="demo: clipped surrogate - beta * k1 / L^2, summed over prompts / G",
    table_notes={"kl": "beta * k1 / L per token of the loss (one 1/L too many), "
                       "beta = cfg.beta_kl",
                 "aggregation": "P x seq-mean-token-mean (the demo's: sum over prompts / G)",
                 "defaults": "eps = cfg.clip_range (0.2)"},
))
register(AlgoSpec(
    name="grpo_paper", advantage="group", kl_in="loss", needs_critic=False,
    defaults={"beta": 0.04, "kl_estimator": "k3", "adv_scale": "group",
              "loss_agg_mode": "seq-mean-token-mean"},
    config_names=NO_CRITIC_COEFS,
    paper="DeepSeekMath, arXiv 2402.03300 (eq. 3); eps = 0.2 is the PPO/TRL convention "
          "(the paper gives none)",
    summary="GRPO: group advantages / std, + beta * k3 in the loss, seq-mean-token-mean",
    trl=trl({"loss_type": "grpo", "scale_rewards": "group", "beta": 0.04, "epsilon": 0.2,
             "use_bias_correction_kl": False},
            "use_bias_correction_kl=False is needed: its default True multiplies the k3 "
            "term by the ratio rho, which turns its gradient into the reverse-KL gradient "
            "even on-policy (grpo_config.py, grpo_trainer.py: per_token_kl * coef_1)",
            TRL_STD_EPS, TRL_EMPTY, TRL_MICRO),
    verl=verl({**VERL_GROUP, "algorithm.norm_adv_by_std_in_grpo": True,
               f"{ACTOR}.use_kl_loss": True, f"{ACTOR}.kl_loss_coef": 0.04,
               f"{ACTOR}.kl_loss_type": "low_var_kl",
               f"{ACTOR}.loss_agg_mode": "seq-mean-token-mean",
               f"{ACTOR}.clip_ratio_low": 0.2, f"{ACTOR}.clip_ratio_high": 0.2},
              VERL_DUAL_CLIP, VERL_K3_CLAMP, VERL_LOG_RATIO, VERL_SEQ_MEAN),
))
register(AlgoSpec(
    name="dr_grpo", advantage="group", kl_in="none", needs_critic=False,
    defaults={"adv_scale": "none", "loss_agg_mode": "seq-mean-token-sum-norm"},
    config_names=NO_CRITIC_COEFS,
    paper="Dr. GRPO, 'Understanding R1-Zero-Like Training', arXiv 2503.20783",
    summary="GRPO without the std and the 1/L: sum over tokens / (B * max_len), no KL",
    trl=trl({"loss_type": "dr_grpo", "scale_rewards": "none", "beta": 0.0, "epsilon": 0.2},
            "the constant is max_completion_length: set it to rlviz's max_len (rlviz "
            "defaults to the padded width T)", TRL_MICRO),
    verl=verl({**VERL_GROUP, "algorithm.norm_adv_by_std_in_grpo": False,
               f"{ACTOR}.use_kl_loss": False,
               f"{ACTOR}.loss_agg_mode": "seq-mean-token-sum-norm",
               f"{ACTOR}.clip_ratio_low": 0.2, f"{ACTOR}.clip_ratio_high": 0.2},
              "the constant is actor.loss_scale_factor (default null: the padded width of "
              "each micro-batch): set it to rlviz's max_len; then it divides by "
              "ppo_mini_batch_size * rollout.n * max_len, empty responses counted, as rlviz",
              VERL_DUAL_CLIP, VERL_LOG_RATIO),
))
register(AlgoSpec(
    name="dapo", advantage="group", kl_in="none", needs_critic=False,
    defaults={"eps_low": 0.2, "eps_high": 0.28, "adv_scale": "group",
              "loss_agg_mode": "token-mean"},
    config_names=NO_CRITIC_COEFS,
    paper="DAPO, arXiv 2503.14476 (clip-higher and the token-level loss)",
    summary="GRPO with clip-higher 0.2 / 0.28, token-mean, no KL",
    trl=trl({"loss_type": "dapo", "scale_rewards": "group", "beta": 0.0, "epsilon": 0.2,
             "epsilon_high": 0.28},
            "'dapo' divides by the active tokens of the whole generation batch over all "
            "processes ('bnpo': of each device micro-batch); DAPO's eq. 8 normalises per "
            "prompt group, rlviz's token-mean over the batch",
            "DAPO's overlong filtering is mask_truncated_completions=True (off here, as in "
            "rlviz's dapo); dynamic sampling and the soft overlong punishment are not options"),
    verl=verl({**VERL_GROUP, "algorithm.norm_adv_by_std_in_grpo": True,
               f"{ACTOR}.use_kl_loss": False, f"{ACTOR}.loss_agg_mode": "token-mean",
               f"{ACTOR}.clip_ratio_low": 0.2, f"{ACTOR}.clip_ratio_high": 0.28},
              VERL_DUAL_CLIP, VERL_LOG_RATIO,
              "token-mean over the tokens of the mini-batch across data-parallel ranks"),
))
register(AlgoSpec(
    name="gspo", advantage="group", kl_in="none", needs_critic=False,
    defaults={"eps_low": 3e-4, "eps_high": 4e-4, "adv_scale": "group",
              "loss_agg_mode": "seq-mean-token-mean", "ratio_level": "sequence"},
    config_names=NO_CRITIC_COEFS,
    paper="GSPO, arXiv 2507.18071 (sequence-level ratio, section 5.1 clip range)",
    summary="sequence ratio s_i = exp(mean_t log rho), clip 3e-4 / 4e-4, no KL",
    trl=trl({"importance_sampling_level": "sequence", "loss_type": "grpo",
             "scale_rewards": "group", "beta": 0.0, "epsilon": 3e-4, "epsilon_high": 4e-4},
            TRL_EMPTY, TRL_STD_EPS,
            "the paper splits each rollout into 4 mini-batches: steps_per_generation = "
            "4 * gradient_accumulation_steps (rlviz's toy trainer: minibatches=4)"),
    verl=verl({**VERL_GROUP, "algorithm.norm_adv_by_std_in_grpo": True,
               f"{ACTOR}.policy_loss.loss_mode": "gspo", f"{ACTOR}.use_kl_loss": False,
               f"{ACTOR}.loss_agg_mode": "seq-mean-token-mean",
               f"{ACTOR}.clip_ratio_low": 3e-4, f"{ACTOR}.clip_ratio_high": 4e-4},
              "no dual clip in verl's GSPO loss; the log sequence ratio is clamped at 10",
              VERL_SEQ_MEAN),
))
register(AlgoSpec(
    name="ppo_gae", advantage="gae", kl_in="reward", needs_critic=True,
    defaults={"beta": 0.05, "kl_estimator": "k1", "loss_agg_mode": "token-mean",
              "gamma": 1.0, "lam": 0.95, "vf_clip_range": 0.2},
    paper="PPO, arXiv 1707.06347; GAE, arXiv 1506.02438; KL in the reward: InstructGPT",
    summary="critic + GAE (whitened), -beta * k1 in the reward, clipped value loss, entropy",
    trl=TRL_NO_PPO,
    verl=verl({"algorithm.adv_estimator": "gae", "algorithm.use_kl_in_reward": True,
               "algorithm.kl_penalty": "kl", "algorithm.kl_ctrl.type": "fixed",
               "algorithm.kl_ctrl.kl_coef": 0.05,
               "algorithm.gamma": 1.0, "algorithm.lam": 0.95,
               f"{ACTOR}.use_kl_loss": False, f"{ACTOR}.loss_agg_mode": "token-mean",
               f"{ACTOR}.clip_ratio_low": 0.2, f"{ACTOR}.clip_ratio_high": 0.2,
               "critic.cliprange_value": 0.2},
              VERL_DUAL_CLIP, VERL_LOG_RATIO,
              "no vf_coef: the critic is a separate model with its own optimiser",
              "rlviz's entropy bonus is actor.entropy_coeff (default 0 since verl 0.4)"),
))


def get_spec(algo: str) -> AlgoSpec:
    """The registry entry for ``algo``; a ``ValueError`` listing the known names otherwise."""
    if not isinstance(algo, str) or algo not in LOSS_FN_REGISTRY:
        known = ", ".join(repr(k) for k in LOSS_FN_REGISTRY)
        raise ValueError(f"Unknown algo: {algo!r}. Known algorithms: {known}")
    return LOSS_FN_REGISTRY[algo]
