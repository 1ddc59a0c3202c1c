"""Off-policy corrections: importance weights between the rollout engine and the trainer,
and the KL to the reference when the tokens come from an older policy.

Three policies meet in an off-policy update (verl calls this the "decoupled" mode):

* ``pi_rollout``: what the rollout engine sampled from (vLLM/SGLang in bf16, a truncated
  sampler, or an older checkpoint in an asynchronous pipeline); its log-probs
  ``rollout_logp`` come with the samples;
* ``pi_old``: the trainer's own policy at the start of the update, recomputed with a
  forward pass (``old_logp``); PPO's ratio rho = pi_theta / pi_old is measured against it;
* ``pi_theta``: the policy being updated (``logp``, with gradient).

The corrections of Yao et al. 2025 ("Your efficient RL framework secretly brings you
off-policy RL training") reweight each token's policy loss by w = pi_old / pi_rollout:

* TIS, truncated importance sampling: ``w = min(pi_old / pi_rollout, C)``, detached;
* MIS, masked importance sampling: ``w`` where 1/C <= w <= C, else 0 (the token, or the
  whole sequence, is dropped from the gradient but still counted by the aggregation);

per token, or per sequence with w_i = prod_t pi_old / pi_rollout (the sum of the token
log-ratios, as TRL 1.16.0 and verl 0.9.1 both compute it). ``bypass`` mode (verl) skips
the recompute: ``old_logp = rollout_logp``, so PPO's own ratio and clip see the mismatch.

``LIBRARY_SETTINGS`` maps each mode to its TRL 1.16.0 and verl 0.9.1 settings, with the
source lines quoted. Everything here is pure torch; weights are always detached.
"""

from __future__ import annotations

import torch

from .checks import check_mask, check_number, check_one_of, check_same_shape, check_tensor
from .kl import LOG_RATIO_CLAMP

IS_LEVELS = ("token", "sequence")
CORRECTION_MODES = ("none", "tis_token", "tis_sequence", "mis_token", "mis_sequence")
OLD_LOGP_SOURCES = ("recompute", "rollout")


def check_log_probs(x, name: str, like: torch.Tensor | None = None,
                    like_name: str = "") -> torch.Tensor:
    """A floating (B, T) tensor of log-probs without NaN (and the shape of ``like``)."""
    check_tensor(x, name, ndim=2)
    if like is not None:
        check_same_shape(x, name, like, like_name)
    if bool(torch.isnan(x).any()):
        count = int(torch.isnan(x).sum())
        raise ValueError(f"{name} contains {count} NaN value(s); log-probs must be numbers "
                         "(a rollout engine that returns no log-prob for a token must be "
                         "fixed before the correction, not averaged over)")
    return x


def _check_cap(cap) -> float:
    """C > 1: a cap at or below 1 would truncate every token that is more likely under
    pi_old than under pi_rollout, and [1/C, C] would be empty or a point."""
    return check_number(cap, "cap", low=1.0)


def rollout_log_ratio(old_logp: torch.Tensor, rollout_logp: torch.Tensor, mask: torch.Tensor,
                      level: str = "token") -> torch.Tensor:
    """log w = log pi_old - log pi_rollout, clamped to [-20, 20], 0 off the mask.

    token:    (B, T), log w_it = old_it - rollout_it
    sequence: (B, 1), log w_i = sum_t m_it (old_it - rollout_it): the log of the product of
              the token weights (TRL 1.16.0 ``per_token_logps_diff.sum(dim=-1)``, verl 0.9.1
              ``masked_sum(log_ratio, response_mask)``), not GSPO's mean.
    """
    check_log_probs(old_logp, "old_logp")
    check_log_probs(rollout_logp, "rollout_logp", old_logp, "old_logp")
    mask = check_mask(mask, old_logp.shape, dtype=old_logp.dtype)  # (B, T)
    check_one_of(level, "level", IS_LEVELS)
    diff = torch.where(mask > 0, old_logp - rollout_logp, torch.zeros_like(old_logp))  # (B, T)
    if level == "sequence":
        diff = diff.sum(dim=1, keepdim=True)  # (B, 1)
    return diff.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP).detach()


def truncated_is_weights(old_logp: torch.Tensor, rollout_logp: torch.Tensor, mask: torch.Tensor,
                         cap: float = 2.0, level: str = "token") -> torch.Tensor:
    """TIS weights ``min(pi_old / pi_rollout, C)``, (B, T), detached, 0 off the mask.

    With ``level="sequence"`` every token of response i gets min(prod_t w_it, C).
    verl 0.9.1: ``rollout_is_weights = raw_rollout_is_weights.clamp(max=rollout_is_threshold_upper)``
    (trainer/ppo/rollout_corr_helper.py), then ``.detach()``.
    """
    cap = _check_cap(cap)
    log_w = rollout_log_ratio(old_logp, rollout_logp, mask, level)  # (B, T) or (B, 1)
    weights = log_w.exp().clamp(max=cap).expand(old_logp.shape)  # (B, T)
    return torch.where(mask > 0, weights, torch.zeros_like(weights))


def masked_is_weights(old_logp: torch.Tensor, rollout_logp: torch.Tensor, mask: torch.Tensor,
                      cap: float = 2.0, level: str = "token",
                      low: float | None = None) -> torch.Tensor:
    """MIS weights: w = pi_old / pi_rollout where ``low <= w <= cap``, 0 elsewhere; (B, T),
    detached. ``low`` defaults to 1 / cap (the interval [1/C, C]).

    Inside the interval the weight keeps its value (it is not set to 1), as both libraries
    do: TRL 1.16.0 ``masked_fill(invalid_mis_mask, value=0.0)``, verl 0.9.1 (IcePop)
    ``torch.where(token_kept_mask, raw_rollout_is_weights, 0)``.
    """
    cap = _check_cap(cap)
    low = 1.0 / cap if low is None else check_number(low, "low", low=0.0, high=cap)
    log_w = rollout_log_ratio(old_logp, rollout_logp, mask, level)  # (B, T) or (B, 1)
    weights = log_w.exp()
    keep = (weights >= low) & (weights <= cap)
    weights = torch.where(keep, weights, torch.zeros_like(weights)).expand(old_logp.shape)
    return torch.where(mask > 0, weights, torch.zeros_like(weights))  # (B, T)


def is_correction_weights(mode: str, old_logp: torch.Tensor, rollout_logp: torch.Tensor,
                          mask: torch.Tensor, cap: float = 2.0) -> torch.Tensor:
    """The weights of one ``CORRECTION_MODES`` entry, (B, T): ``"none"`` gives the mask
    itself (weight 1 on every token), ``"tis_token"`` ... ``"mis_sequence"`` call
    ``truncated_is_weights`` / ``masked_is_weights`` at that level."""
    check_one_of(mode, "mode", CORRECTION_MODES)
    if mode == "none":
        check_log_probs(old_logp, "old_logp")
        check_log_probs(rollout_logp, "rollout_logp", old_logp, "old_logp")
        _check_cap(cap)
        return check_mask(mask, old_logp.shape, dtype=old_logp.dtype)
    kind, level = mode.split("_")
    weight_fn = truncated_is_weights if kind == "tis" else masked_is_weights
    return weight_fn(old_logp, rollout_logp, mask, cap, level)


def weighted_advantages(advantages: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-token advantages ``A_it * w_it``, (B, T), for ``weights`` w >= 0 (detached).

    The clipped surrogate is positively homogeneous in A: for w >= 0,
    ``w * -min(rho A, clip(rho) A) = -min(rho (wA), clip(rho) (wA))``, and the dual clip's
    cap ``-c A`` scales the same way. So multiplying the per-token policy loss by w (what
    TRL 1.16.0 ``per_token_loss * inputs["importance_sampling_ratio"]`` and verl 0.9.1
    ``pg_losses * rollout_is_weights`` do) equals passing ``w A`` as the advantage: a
    trainer can apply any correction without touching its loss. The KL and entropy terms
    stay unweighted, as in both libraries.

    ``advantages`` (B,) or (B, T); ``weights`` (B, T), finite and >= 0.
    """
    check_tensor(weights, "weights", ndim=2)
    check_tensor(advantages, "advantages", ndim=(1, 2))
    if advantages.shape[0] != weights.shape[0] or (
            advantages.dim() == 2 and advantages.shape != weights.shape):
        raise ValueError(f"advantages must have shape (B,) or (B, T) with (B, T) = "
                         f"{tuple(weights.shape)} (the weights' shape), got "
                         f"{tuple(advantages.shape)}")
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ValueError("weights must be finite and >= 0 (importance weights)")
    adv = advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages  # (B, 1) or (B, T)
    return adv * weights.detach()  # (B, T)


def old_logp_for_ratio(source: str, recomputed_logp: torch.Tensor | None,
                       rollout_logp: torch.Tensor) -> torch.Tensor:
    """The denominator of PPO's ratio: ``"recompute"`` (a trainer forward pass over the
    rollout, verl's default "decoupled" mode, TRL's behaviour with vLLM) or ``"rollout"``
    (the engine's log-probs as they came, verl ``bypass_mode=True``: one forward pass less,
    and the ratio pi_theta / pi_rollout carries the engine mismatch into the clip)."""
    check_one_of(source, "source", OLD_LOGP_SOURCES)
    check_log_probs(rollout_logp, "rollout_logp")
    if source == "rollout":
        return rollout_logp
    if recomputed_logp is None:
        raise ValueError("recomputed_logp is needed with source='recompute'")
    return check_log_probs(recomputed_logp, "recomputed_logp", rollout_logp, "rollout_logp")


# ---- the KL to the reference, off-policy ----------------------------------------------

def k3_ratio_weighted(logp: torch.Tensor, old_logp: torch.Tensor,
                      ref_logp: torch.Tensor) -> torch.Tensor:
    """rho * k3, (B, T): the per-token KL estimate times the (differentiable) ratio
    rho = pi_theta / pi_old, for tokens sampled from pi_old.

        E_{x ~ pi_old}[rho k3] = E_{x ~ pi_theta}[k3] = KL(pi_theta || pi_ref)

    as a function of theta, so its expected gradient is the exact reverse-KL gradient,
    on- and off-policy. TRL 1.16.0 ``use_bias_correction_kl=True`` (the default):
    ``per_token_kl = per_token_kl * coef_1`` (grpo_trainer.py); DeepSeek-V3.2, eq. 7.
    Log-ratios are clamped to [-20, 20] before ``exp``.
    """
    check_log_probs(logp, "logp")
    check_log_probs(old_logp, "old_logp", logp, "logp")
    check_log_probs(ref_logp, "ref_logp", logp, "logp")
    ratio = (logp - old_logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP).exp()  # (B, T)
    d = (ref_logp - logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    return ratio * (torch.expm1(d) - d)  # (B, T)


def k3_plus(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """verl's ``"k3+"``, (B, T): the value of k3 with the gradient of k2 (straight-through):

        k2 - stopgrad(k2) + stopgrad(k3),   k2 = (logp - ref_logp)^2 / 2

    verl 0.9.1 core_algos.kl_penalty: ``backward_score - backward_score.detach() +
    forward_score.detach()``. Its gradient (logp - ref) grad logp has the reverse-KL
    gradient as its expectation when the tokens come from pi_theta itself; from pi_old
    it is biased (see ``rlviz.experiments.off_policy.kl_gradients``).
    """
    check_log_probs(logp, "logp")
    check_log_probs(ref_logp, "ref_logp", logp, "logp")
    k2 = 0.5 * (logp - ref_logp) ** 2  # (B, T)
    d = (ref_logp - logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    k3 = torch.expm1(d) - d  # (B, T)
    return k2 - k2.detach() + k3.detach()


# ---- the library settings of each correction, as data ---------------------------------
# TRL 1.16.0 (trl/trainer/grpo_config.py, grpo_trainer.py) and verl 0.9.1
# (verl/trainer/config/algorithm/rollout_correction.yaml, trainer/ppo/rollout_corr_helper.py).
# Same fields as rlviz.algorithms.library.LibraryRecipe (library, version, settings,
# differences, supported), so each dict can become one: LibraryRecipe(**recipe). C = cap.
#
# TRL grpo_trainer.py, the weight:
#   per_token_logps_diff = (old_per_token_logps - sampling_per_token_logps) * mask
#   per_sequence_logps_diff = per_token_logps_diff.sum(dim=-1, keepdim=True)   [sequence_*]
#   vllm_importance_sampling_ratio = torch.clamp(..., min=clip_min, max=clip_max)  [*_truncate]
#   vllm_importance_sampling_ratio.masked_fill(invalid_mis_mask, value=0.0)       [*_mask]
#   per_token_loss = per_token_loss * inputs["importance_sampling_ratio"]
# verl rollout_correction.yaml:
#   rollout_is: null   # IS aggregation level: null (disabled), "token", "sequence"
#   rollout_is_threshold: 2.0   # float: TIS upper bound; "lower_upper" string: IcePop bounds
#   bypass_mode: false  # Operating mode: false = Decoupled (3 policies), true = Bypass (2 policies)
_VERL = "algorithm.rollout_correction."
_TRL_MODE = "vllm_importance_sampling_mode"


def library_settings(mode: str, cap: float = 2.0) -> dict:
    """``{"trl": recipe, "verl": recipe}`` for a ``CORRECTION_MODES`` entry (or
    ``"bypass"``), each recipe a dict with ``library``, ``version``, ``settings`` (TRL:
    ``GRPOConfig`` keywords; verl: full Hydra keys), ``differences`` and ``supported``."""
    check_one_of(mode, "mode", CORRECTION_MODES + ("bypass",))
    cap = _check_cap(cap)
    low = f"{1.0 / cap:g}_{cap:g}"
    trl: dict = {"vllm_importance_sampling_correction": True}
    verl: dict = {}
    differences_trl: tuple = ()
    differences_verl: tuple = ()
    if mode == "none":
        trl = {"vllm_importance_sampling_correction": False}
        verl = {_VERL + "rollout_is": None, _VERL + "bypass_mode": False}
        differences_trl = ("TRL only recomputes pi_old when generation and optimizer steps are "
                           "misaligned; otherwise old_per_token_logps = per_token_logps.detach() "
                           "and the rollout engine's log-probs are not used at all",)
    elif mode == "bypass":
        trl = {}
        verl = {_VERL + "bypass_mode": True, _VERL + "loss_type": "ppo_clip"}
        differences_trl = ("no bypass mode: TRL never uses the engine's log-probs as pi_old",)
    else:
        kind, level = mode.split("_")
        trl[_TRL_MODE] = f"{level}_{'truncate' if kind == 'tis' else 'mask'}"
        trl["vllm_importance_sampling_clip_max"] = cap
        verl[_VERL + "rollout_is"] = level
        verl[_VERL + "bypass_mode"] = False
        if kind == "tis":
            verl[_VERL + "rollout_is_threshold"] = cap
            differences_trl = ("TRL's default mode is 'sequence_mask' with clip_max 3.0 and no "
                               "lower bound",)
        else:
            trl["vllm_importance_sampling_clip_min"] = 1.0 / cap
            verl[_VERL + "rollout_is_threshold"] = low
            differences_verl = ("verl calls the two-sided mask IcePop; rollout_rs (rejection "
                                "sampling) is a separate mask on k1/k2/k3 statistics",)
    return {
        "trl": {"library": "trl", "version": "1.16.0", "settings": trl,
                "differences": differences_trl, "supported": mode != "bypass"},
        "verl": {"library": "verl", "version": "0.9.1", "settings": verl,
                 "differences": differences_verl, "supported": True},
    }


CORRECTION_FORMULAS = {
    "none": "ω = 1 (pi_old recomputed, the engine mismatch ignored)",
    "tis_token": "ω_t = min(pi_old / pi_rollout, C)",
    "tis_sequence": "ω_t = min(prod_t pi_old / pi_rollout, C)",
    "mis_token": "ω_t = pi_old / pi_rollout if in [1/C, C] else 0",
    "mis_sequence": "ω_t = Ω_i = prod_t pi_old / pi_rollout if in [1/C, C] else 0",
    "bypass": "pi_old := pi_rollout, no weight (PPO's ratio and clip see the mismatch)",
}


def correction_table_markdown(cap: float = 2.0) -> str:
    """The corrections and their TRL 1.16.0 / verl 0.9.1 settings as a markdown table."""
    lines = ["| correction | weight on the per-token policy loss | TRL 1.16.0 `GRPOConfig` | "
             "verl 0.9.1 |", "|---|---|---|---|"]
    for mode, formula in CORRECTION_FORMULAS.items():
        recipes = library_settings(mode, cap)
        cells = [", ".join(f"`{k}={v!r}`" for k, v in recipes[lib]["settings"].items())
                 or "not available" for lib in ("trl", "verl")]
        lines.append(f"| `{mode}` | {formula} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)
