"""Four ways to turn a (B, T) per-token loss into one number."""

from __future__ import annotations

import torch

from .checks import check_mask, check_one_of, check_positive_int, check_tensor

AGG_MODES = (
    "seq-mean-token-mean",
    "token-mean",
    "seq-mean-token-sum",
    "seq-mean-token-sum-norm",
)


def aggregate(per_token_loss: torch.Tensor, mask: torch.Tensor, mode: str,
              max_len: int | None = None) -> torch.Tensor:
    """Masked reduction of a per-token loss ``l`` (B, T) with ``mask`` m (B, T) to a scalar.

    With L_i = sum_t m_it the length of response i:

    * ``"seq-mean-token-mean"``: mean over responses of sum_t l m / L_i. GRPO paper
      (DeepSeekMath eq. 3); TRL ``loss_type="grpo"``; verl ``loss_agg_mode``
      ``"seq-mean-token-mean"``. Every response weighs the same, so each token of a long
      response weighs less (the length bias Dr. GRPO points out).
    * ``"token-mean"``: sum(l m) / sum(m). DAPO's token-level loss (DAPO eq. 8 normalises per
      prompt group; the libraries over the whole batch); TRL ``"bnpo"`` (tokens of the
      device's micro-batch) and ``"dapo"`` (tokens of the whole accumulated generation
      batch: the same on one device with one micro-batch); verl's default.
    * ``"seq-mean-token-sum"``: mean over responses of sum_t l m. TRL 1.16.0
      ``loss_type="luspo"`` aggregates this way (``(per_token_loss * mask).sum(-1).mean()``,
      grpo_trainer.py:3179).
    * ``"seq-mean-token-sum-norm"``: sum(l m) / (B * max_len), with a constant ``max_len``
      (default: T). Dr. GRPO (arXiv 2503.20783); TRL ``"dr_grpo"`` (``max_len`` =
      ``max_completion_length``). Here B is the batch size, empty responses included.

    In the three seq-mean modes a response with no tokens contributes nothing and **is not
    counted** in the mean. The libraries count it: TRL ``loss_type="grpo"`` takes
    ``((l * m).sum(-1) / m.sum(-1).clamp(min=1.0)).mean()`` over all rows (TRL 1.16.0
    grpo_trainer.py:3154), and the verl 0.9.1 trainer passes ``global_batch_size =
    ppo_mini_batch_size * rollout.n`` (ray_trainer.py:1352-1362), by which ``agg_loss``
    divides the seq-mean modes (core_algos.py:1180-1203), empty responses included; for
    ``"seq-mean-token-sum-norm"`` it then divides by ``loss_scale_factor`` (default: the
    padded width), which makes it Dr. GRPO's sum / (B * max_len). Counting the non-empty
    responses is only ``agg_loss``'s fallback when no global batch size is passed. verl
    0.4 to 0.8 divided "seq-mean-token-sum-norm" by T alone per micro-batch, then by the
    accumulation steps. See docs/library-defaults.md.

    An all-zero mask gives 0 (never NaN). Masked positions are never read, so
    inf/NaN there do not leak into the result or the gradient.
    When training pads each batch to its longest sample, pass the generation budget as
    ``max_len`` so the normaliser of "seq-mean-token-sum-norm" stays constant. ``max_len``
    is ignored by the other modes.
    """
    check_tensor(per_token_loss, "per_token_loss", ndim=2)
    mask = check_mask(mask, per_token_loss.shape, dtype=per_token_loss.dtype)  # (B, T)
    check_one_of(mode, "mode", AGG_MODES)
    if max_len is not None:
        max_len = check_positive_int(max_len, "max_len")

    on = mask > 0  # (B, T)
    masked = torch.where(on, per_token_loss, torch.zeros_like(per_token_loss))  # (B, T)
    batch, seq_len = per_token_loss.shape

    if mode == "token-mean":
        return masked.sum() / mask.sum().clamp_min(1.0)
    if mode == "seq-mean-token-sum-norm":
        norm = seq_len if max_len is None else max_len
        return masked.sum() / max(batch * norm, 1)

    lengths = mask.sum(dim=1)  # (B,)
    per_response = masked.sum(dim=1)  # (B,)
    if mode == "seq-mean-token-mean":
        per_response = per_response / lengths.clamp_min(1.0)  # (B,)
    non_empty = (lengths > 0).sum().clamp_min(1).to(per_token_loss.dtype)
    return per_response.sum() / non_empty  # empty responses add 0 and are not counted
