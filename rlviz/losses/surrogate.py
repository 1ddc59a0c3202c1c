"""PPO's clipped surrogate, per token, with asymmetric, dual and sequence-level clipping."""

from __future__ import annotations

import torch

from .checks import (
    check_mask,
    check_number,
    check_one_of,
    check_same_shape,
    check_tensor,
    per_response,
)
from .kl import LOG_RATIO_CLAMP, kl_estimate

RATIO_LEVELS = ("token", "sequence")


def _check_clip(eps_low, eps_high, dual_clip):
    eps_low = check_number(eps_low, "eps_low", low=0.0, high=1.0)
    eps_high = eps_low if eps_high is None else check_number(eps_high, "eps_high", low=0.0)
    if dual_clip is not None:
        dual_clip = check_number(dual_clip, "dual_clip", low=1.0)
    return eps_low, eps_high, dual_clip


def _check_inputs(logp, old_logp, advantages, level, mask):
    check_tensor(logp, "logp", ndim=2)
    check_tensor(old_logp, "old_logp")
    check_same_shape(old_logp, "old_logp", logp, "logp")
    adv = per_response(advantages, "advantages", logp.shape[0], logp.shape)  # (B, 1) or (B, T)
    check_one_of(level, "level", RATIO_LEVELS)
    if mask is not None:
        mask = check_mask(mask, logp.shape, dtype=logp.dtype)  # (B, T)
    elif level == "sequence":
        raise ValueError("mask is required with level='sequence' (the sequence ratio is the "
                         "exp of the masked mean log-ratio of each response)")
    return adv, mask


def log_ratio(logp: torch.Tensor, old_logp: torch.Tensor, level: str = "token",
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """log rho, clamped to [-20, 20]: (B, T) for ``"token"``, (B, 1) for ``"sequence"``.

    token:    log rho_it = logp_it - old_it
    sequence: log s_i = sum_t m_it (logp_it - old_it) / L_i   (GSPO, arXiv 2507.18071),
              0 for a response with no tokens. The gradient flows through the mean, so
              d log s_i / d logp_it = m_it / L_i.
    The clamp (as in verl) keeps exp() finite for log-ratios of +-1000; inside it nothing
    changes, outside it the gradient is 0 (those tokens are clipped anyway).
    """
    diff = logp - old_logp  # (B, T)
    if level == "sequence":
        lengths = mask.sum(dim=1, keepdim=True)  # (B, 1)
        masked = torch.where(mask > 0, diff, torch.zeros_like(diff))  # (B, T)
        diff = masked.sum(dim=1, keepdim=True) / lengths.clamp_min(1.0)  # (B, 1)
    return diff.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    eps_low: float = 0.2,
    eps_high: float | None = None,
    dual_clip: float | None = None,
    level: str = "token",
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-token clipped surrogate loss, (B, T) (aggregate it with ``rlviz.aggregate``).

        l_it = -min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A)      (PPO, arXiv 1707.06347)

    ====================  =========================================================
    logp, old_logp        (B, T) log-probs of the sampled tokens, new (with grad) / old
    advantages            (B,) one per response, or (B, T) one per token
    eps_low, eps_high     clip range; ``eps_high=None`` means ``eps_low`` (DAPO's
                          clip-higher: 0.2 / 0.28, arXiv 2503.14476)
    dual_clip             c > 1: where A < 0 the loss is also capped at -c A (Ye et al.
                          2020; verl ``clip_ratio_c``, default 3), so a huge rho with a
                          negative advantage cannot blow the loss up
    level                 ``"token"``: rho_it = exp(logp_it - old_it);
                          ``"sequence"``: one ratio per response, s_i = exp(masked mean of
                          logp - old_logp), broadcast over its tokens (GSPO; needs ``mask``)
    mask                  (B, T) 0/1; masked positions get loss 0
    ====================  =========================================================

    With A > 0 the loss is flat (zero gradient) for rho > 1 + eps_high; with A < 0 for
    rho < 1 - eps_low (and rho > c with dual clip). Elsewhere it is -rho A.
    Log-ratios are clamped to [-20, 20] before ``exp`` (as verl does).
    """
    eps_low, eps_high, dual_clip = _check_clip(eps_low, eps_high, dual_clip)
    adv, mask = _check_inputs(logp, old_logp, advantages, level, mask)

    ratio = torch.exp(log_ratio(logp, old_logp, level, mask))  # (B, T) or (B, 1)
    ratio_clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high)
    loss_unclipped = -ratio * adv  # (B, T)
    loss_clipped = -ratio_clipped * adv  # (B, T)
    loss = torch.maximum(loss_unclipped, loss_clipped)  # (B, T) = -min(rho A, clip(rho) A)
    if dual_clip is not None:
        capped = torch.minimum(loss, -dual_clip * adv)  # (B, T)
        loss = torch.where(adv < 0, capped, loss)
    loss = loss.expand(logp.shape)  # (B, T) also when A is (B,) and the ratio (B, 1)
    if mask is not None:
        loss = torch.where(mask > 0, loss, torch.zeros_like(loss))
    return loss


def _clipped_tokens(ratio: torch.Tensor, adv: torch.Tensor, eps_low: float,
                    eps_high: float) -> torch.Tensor:
    """(B, T) bool: the clipped branch is active (the token gets no gradient)."""
    return ((adv > 0) & (ratio > 1.0 + eps_high)) | ((adv < 0) & (ratio < 1.0 - eps_low))


@torch.no_grad()
def clip_fraction(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                  eps_low: float = 0.2, eps_high: float | None = None, level: str = "token",
                  mask: torch.Tensor | None = None) -> float:
    """``surrogate_metrics(...)["clipfrac"]`` alone, without the other four metrics:
    the masked share of tokens with (A > 0 and rho > 1 + eps_high) or (A < 0 and
    rho < 1 - eps_low). 0 for an all-zero mask."""
    eps_low, eps_high, _ = _check_clip(eps_low, eps_high, None)
    adv, mask = _check_inputs(logp, old_logp, advantages, level, mask)
    ratio = torch.exp(log_ratio(logp, old_logp, level, mask)).expand(logp.shape)  # (B, T)
    clipped = _clipped_tokens(ratio, adv.expand(logp.shape), eps_low, eps_high)  # (B, T)
    on = torch.ones_like(clipped) if mask is None else mask > 0  # (B, T)
    return float((clipped & on).sum()) / max(int(on.sum()), 1)


@torch.no_grad()
def surrogate_metrics(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    eps_low: float = 0.2,
    eps_high: float | None = None,
    dual_clip: float | None = None,
    level: str = "token",
    mask: torch.Tensor | None = None,
) -> dict:
    """Diagnostics of ``clipped_surrogate`` (same arguments), as Python floats.

    * ``clipfrac``: masked share of tokens where the clipped branch is active, i.e.
      (A > 0 and rho > 1 + eps_high) or (A < 0 and rho < 1 - eps_low): the tokens that get
      no gradient (verl's ``pg_clipfrac``; CleanRL's counts |rho - 1| > eps whatever A).
    * ``clipfrac_dual``: masked share of tokens with A < 0 and rho > c (verl's
      ``pg_clipfrac_lower``); 0 without dual clip.
    * ``approx_kl``: masked mean of (rho - 1) - log rho = ``kl_estimate(old_logp, logp, "k3")``,
      the k3 estimate of KL(old || new) (CleanRL's ``approx_kl``), always per token.
    * ``ratio_mean``, ``ratio_max``: of the ratio used (token or sequence), over the mask.

    An all-zero mask gives 0 for every metric.
    """
    eps_low, eps_high, dual_clip = _check_clip(eps_low, eps_high, dual_clip)
    adv, mask = _check_inputs(logp, old_logp, advantages, level, mask)
    if mask is None:
        mask = torch.ones_like(logp)  # (B, T)
    ratio = torch.exp(log_ratio(logp, old_logp, level, mask)).expand(logp.shape)  # (B, T)
    adv = adv.expand(logp.shape)  # (B, T)
    on = mask > 0  # (B, T)
    count = max(int(on.sum()), 1)

    def share(flags: torch.Tensor) -> float:
        return float((flags & on).sum()) / count

    clipped = _clipped_tokens(ratio, adv, eps_low, eps_high)  # (B, T) bool
    dual = (adv < 0) & (ratio > dual_clip) if dual_clip is not None else torch.zeros_like(on)
    approx_kl = kl_estimate(old_logp, logp, "k3")  # (B, T)
    zero = torch.zeros_like(ratio)
    return {
        "clipfrac": share(clipped),
        "clipfrac_dual": share(dual),
        "approx_kl": float(torch.where(on, approx_kl, zero).sum()) / count,
        "ratio_mean": float(torch.where(on, ratio, zero).sum()) / count,
        "ratio_max": float(torch.where(on, ratio, zero).max()) if bool(on.any()) else 0.0,
    }
