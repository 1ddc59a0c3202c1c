"""GRPO's group-relative advantages from one scalar reward per response."""

from __future__ import annotations

import torch

from .checks import check_number, check_one_of, check_positive_int, check_tensor

ADV_SCALES = ("group", "batch", "none")


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group",
                     eps: float = 1e-6) -> torch.Tensor:
    """Group-relative advantages, (B,): ``A_i = (r_i - mean_group(r)) / (std + eps)``.

    Rows ``g*G .. g*G+G-1`` of ``rewards`` (B,) are the G = ``group_size`` responses to
    prompt g. Every response is compared with the mean of its own group, then

    * ``scale="group"``: divided by the group's unbiased (n - 1) std + eps
      (DeepSeekMath GRPO; TRL ``scale_rewards="group"``, verl ``norm_adv_by_std_in_grpo=True``);
    * ``scale="batch"``: divided by the unbiased std of the whole batch's raw rewards + eps
      (TRL ``scale_rewards="batch"``);
    * ``scale="none"``: not divided (Dr. GRPO, arXiv 2503.20783; TRL ``scale_rewards="none"``,
      verl ``norm_adv_by_std_in_grpo=False``).

    A group whose rewards are all equal gets exactly 0 (no signal from that prompt), never
    NaN. ``group_size=1`` gives zeros: a lone response has nothing to be compared with
    (verl's GRPO instead returns the raw score for a single-member group).
    eps: 1e-6 as in verl (TRL uses 1e-4).
    """
    check_tensor(rewards, "rewards", ndim=1)
    group_size = check_positive_int(group_size, "group_size")
    check_one_of(scale, "scale", ADV_SCALES)
    eps = check_number(eps, "eps", low=0.0, low_open=False)
    batch = rewards.shape[0]
    if batch % group_size != 0:
        raise ValueError(f"the batch size B = {batch} of rewards must be a multiple of "
                         f"group_size = {group_size}")
    if batch == 0 or group_size == 1:
        return torch.zeros_like(rewards)  # (B,)

    grouped = rewards.view(-1, group_size)  # (num_groups, G)
    centred = grouped - grouped.mean(dim=1, keepdim=True)  # (num_groups, G)
    # all-equal groups: exactly zero (the mean of equal floats can differ from them by rounding)
    constant = grouped.amax(dim=1, keepdim=True) == grouped.amin(dim=1, keepdim=True)
    centred = torch.where(constant, torch.zeros_like(centred), centred)  # (num_groups, G)

    if scale == "group":
        std = _safe_std(grouped, constant)  # (num_groups, 1), unbiased
        centred = centred / (std + eps).masked_fill(constant, 1.0)
    elif scale == "batch":
        flat = rewards.view(1, batch)  # (1, B)
        all_equal = flat.amax() == flat.amin()
        std = _safe_std(flat, all_equal.view(1, 1))  # (1, 1), unbiased std of all raw rewards
        centred = centred / (std + eps).masked_fill(all_equal.view(1, 1), 1.0)
    return centred.reshape(batch)  # (B,)


def _safe_std(x: torch.Tensor, constant: torch.Tensor) -> torch.Tensor:
    """Unbiased std over dim 1, (N, 1); 0 where ``constant``, with a finite gradient there
    (sqrt has an infinite derivative at 0, so the constant rows never reach it)."""
    var = x.var(dim=1, keepdim=True)  # (N, 1)
    var = torch.where(constant, torch.ones_like(var), var)
    return torch.where(constant, torch.zeros_like(var), var.sqrt())  # (N, 1)
