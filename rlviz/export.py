"""An rlviz recipe as settings of the real trainers: TRL 1.16.0 ``GRPOConfig`` and verl 0.9.1.

* ``to_trl(cfg)``: keyword arguments for ``trl.GRPOConfig`` (TRL 1.16.0).
* ``to_verl(cfg)``: Hydra overrides (``key=value`` strings) for ``python -m
  verl.trainer.main_ppo`` (verl 0.9.1; the keys of its ``_generated_ppo_trainer.yaml``).
* ``export(cfg, "trl" | "verl")``: the same with the differences that remain, and
  ``Export.command()``: a ready command line.

``cfg`` is an ``rlviz.Config`` (its ``algo`` and overrides) or an algorithm name. The start is the
algorithm's ``LibraryRecipe`` (``rlviz.algorithms``); every loss hyper-parameter of
``cfg.hparams()`` is then written in the library's terms, so an override (say ``eps_high``)
reaches the export. A setting the library cannot express raises ``ExportError`` naming it and
what the library does instead; nothing close is emitted in its place.
"""

from __future__ import annotations

from dataclasses import dataclass

from .algorithms import LOSS_FN_REGISTRY, TRL_VERSION, VERL_VERSION, get_spec
from .algorithms.library import ACTOR
from .config import Config

LIBRARIES = ("trl", "verl")

# rlviz aggregation -> TRL 1.16.0 loss_type (grpo_trainer.py::_compute_loss):
#   "grpo": ((l * m).sum(-1) / m.sum(-1).clamp(min=1)).mean()
#   "dapo": (l * m).sum() / tokens of the accumulated global batch
#   "dr_grpo": (l * m).sum() / (B * max_completion_length)
#   "luspo": (l * m).sum(-1).mean()
TRL_LOSS_TYPE = {"seq-mean-token-mean": "grpo", "token-mean": "dapo",
                 "seq-mean-token-sum-norm": "dr_grpo", "seq-mean-token-sum": "luspo"}
# rlviz KL estimator -> verl 0.9.1 kl_penalty names (core_algos.kl_penalty_forward)
VERL_KL = {"k1": "kl", "k2": "mse", "k3": "low_var_kl"}


class ExportError(ValueError):
    """The recipe has a setting the target library cannot express."""


@dataclass(frozen=True)
class Export:
    algo: str
    library: str
    version: str
    settings: dict
    differences: tuple[str, ...]

    def overrides(self) -> list[str]:
        """verl: ``key=value`` Hydra overrides; TRL: ``--key value`` pairs of ``trl grpo``."""
        if self.library == "verl":
            return [f"{key}={hydra_value(value)}" for key, value in self.settings.items()]
        return [f"--{key} {value}" for key, value in self.settings.items()]

    def command(self) -> str:
        """A ready command line, with the remaining differences as comments above it."""
        notes = [f"# {self.algo} on {self.library} {self.version}"]
        notes += [f"# differs: {d}" for d in self.differences]
        if self.library == "verl":
            head = "python3 -m verl.trainer.main_ppo \\\n"
        else:
            head = "trl grpo --model_name_or_path MODEL --dataset_name DATASET \\\n"
        body = " \\\n".join(f"    {item}" for item in self.overrides())
        return "\n".join(notes) + "\n" + head + body


def hydra_value(value) -> str:
    """A value as Hydra's override grammar reads it back (true/false, null, plain numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_config(cfg) -> Config:
    if isinstance(cfg, str):
        get_spec(cfg)  # a ValueError listing the known names
        return Config(algo=cfg, device="cpu")
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be an rlviz.Config or an algorithm name, got "
                        f"{type(cfg).__name__}")
    return cfg


def _recipe(spec, library: str):
    recipe = getattr(spec, library)
    if recipe is None:
        raise ExportError(f"{spec.name!r} is the demo's algorithm (advantages r - mean(r) over "
                          f"the whole batch, the demo's own aggregation): {library} has no "
                          "such recipe. Export one of: " + ", ".join(exportable(library)))
    if not recipe.supported:
        raise ExportError(f"{spec.name!r} cannot run on {library} {recipe.version}: "
                          + "; ".join(recipe.differences))
    return recipe


def exportable(library: str) -> list[str]:
    """The algorithms with a runnable recipe in ``library``."""
    return [name for name, spec in LOSS_FN_REGISTRY.items()
            if getattr(spec, library) is not None and getattr(spec, library).supported]


def _trl_settings(hp, cfg: Config, recipe) -> dict:
    # a loss of its own ("cispo", "sapo") aggregates as TRL defines it for that loss type
    own_loss = recipe.settings.get("loss_type") not in (None, *TRL_LOSS_TYPE.values())
    errors = []
    if hp.dual_clip is not None:
        errors.append(f"dual_clip={hp.dual_clip}: TRL {TRL_VERSION} has no dual clip (its "
                      "`delta` caps rho from above for both signs of A, not the loss at -c A "
                      "for A < 0)")
    beta = hp.beta if hp.kl_in == "loss" else 0.0
    if beta != 0.0 and hp.kl_estimator != "k3":
        errors.append(f"kl_estimator={hp.kl_estimator!r}: TRL {TRL_VERSION}'s KL term is k3 "
                      "only")
    if not own_loss and hp.loss_agg_mode not in TRL_LOSS_TYPE:
        errors.append(f"loss_agg_mode={hp.loss_agg_mode!r} has no TRL loss_type")
    if errors:
        raise ExportError(f"{hp.algo!r} cannot be expressed in TRL {TRL_VERSION}: "
                          + "; ".join(errors))
    settings = {
        "loss_type": (recipe.settings["loss_type"] if own_loss
                      else TRL_LOSS_TYPE[hp.loss_agg_mode]),
        "scale_rewards": hp.adv_scale,
        "beta": beta,
        "epsilon": hp.eps_low,
        "importance_sampling_level": hp.ratio_level,
        "num_generations": cfg.group_num,
    }
    if hp.eps_high is not None and hp.eps_high != hp.eps_low:
        settings["epsilon_high"] = hp.eps_high
    if settings["loss_type"] == "cispo":
        # TRL bounds rho itself, with no lower bound: clamp(coef_1, max=epsilon_high)
        # (grpo_trainer.py); rlviz's cispo clips rho to [1 - eps_low, 1 + eps_high]
        settings["epsilon_high"] = 1.0 + hp.eps_high
        del settings["epsilon"]
    if settings["loss_type"] == "sapo":  # a soft gate, no clip range
        settings.update(sapo_temperature_pos=hp.tau_pos, sapo_temperature_neg=hp.tau_neg)
        del settings["epsilon"]
        settings.pop("epsilon_high", None)
    if beta != 0.0:
        # rlviz's KL term is plain k3; TRL 1.16.0 multiplies it by rho unless told not to
        settings["use_bias_correction_kl"] = False
    if hp.max_len is not None:
        settings["max_completion_length"] = hp.max_len
    return settings


def _verl_settings(hp, cfg: Config, recipe) -> dict:
    if hp.adv_scale == "batch" and hp.advantage == "group":
        raise ExportError(f"{hp.algo!r} with adv_scale='batch' cannot be expressed in verl "
                          f"{VERL_VERSION}: its grpo estimator divides by the group's std or "
                          "by nothing (algorithm.norm_adv_by_std_in_grpo)")
    if hp.ratio_level == "sequence" and hp.dual_clip is not None:
        raise ExportError(f"{hp.algo!r}: verl {VERL_VERSION}'s gspo loss has no dual clip")
    settings = {"algorithm.adv_estimator": recipe.settings["algorithm.adv_estimator"]}
    if hp.advantage == "group":
        settings["algorithm.norm_adv_by_std_in_grpo"] = hp.adv_scale == "group"
    if not hp.needs_critic:  # responses per prompt: the group (PPO samples one per prompt)
        settings["actor_rollout_ref.rollout.n"] = cfg.group_num
    settings["algorithm.use_kl_in_reward"] = hp.kl_in == "reward"
    if hp.kl_in == "reward":
        settings["algorithm.kl_penalty"] = VERL_KL[hp.kl_estimator]
        settings["algorithm.kl_ctrl.kl_coef"] = hp.beta
    use_kl_loss = hp.kl_in == "loss" and hp.beta != 0.0
    settings[f"{ACTOR}.use_kl_loss"] = use_kl_loss
    if use_kl_loss:
        settings[f"{ACTOR}.kl_loss_coef"] = hp.beta
        settings[f"{ACTOR}.kl_loss_type"] = VERL_KL[hp.kl_estimator]
    settings[f"{ACTOR}.loss_agg_mode"] = hp.loss_agg_mode
    if hp.max_len is not None:
        settings[f"{ACTOR}.loss_scale_factor"] = hp.max_len
    if hp.ratio_level == "sequence":
        settings[f"{ACTOR}.policy_loss.loss_mode"] = "gspo"
    settings[f"{ACTOR}.clip_ratio_low"] = hp.eps_low
    settings[f"{ACTOR}.clip_ratio_high"] = hp.eps_low if hp.eps_high is None else hp.eps_high
    if hp.dual_clip is not None:
        settings[f"{ACTOR}.clip_ratio_c"] = hp.dual_clip
    if hp.needs_critic:
        settings["algorithm.gamma"] = hp.gamma
        settings["algorithm.lam"] = hp.lam
        if hp.vf_clip_range is not None:
            settings["critic.cliprange_value"] = hp.vf_clip_range
        settings[f"{ACTOR}.entropy_coeff"] = hp.ent_coef
    return settings


def export(cfg, to: str) -> Export:
    """The recipe of ``cfg`` for library ``to`` ("trl" or "verl")."""
    if to not in LIBRARIES:
        raise ValueError(f"to must be one of {LIBRARIES}, got {to!r}")
    cfg = _as_config(cfg)
    spec = get_spec(cfg.algo)
    recipe = _recipe(spec, to)
    hp = cfg.hparams()
    derived = (_trl_settings if to == "trl" else _verl_settings)(hp, cfg, recipe)
    settings = {**recipe.settings, **derived}
    differences = list(recipe.differences)
    if to == "verl" and hp.dual_clip is not None:
        differences = [d for d in differences if "dual clip" not in d]
    return Export(spec.name, to, recipe.version, settings, tuple(differences))


def to_trl(cfg) -> dict:
    """``trl.GRPOConfig`` keyword arguments (TRL 1.16.0) for ``cfg``."""
    return dict(export(cfg, "trl").settings)


def to_verl(cfg) -> list[str]:
    """Hydra overrides for verl 0.9.1's ``main_ppo`` for ``cfg``."""
    return export(cfg, "verl").overrides()
