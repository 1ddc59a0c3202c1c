"""DAPO's recipe beyond clip-higher and token-mean (arXiv 2503.14476, section 3.3-3.4):
the soft overlong punishment, overlong filtering, and the share of prompts whose group
teaches nothing (all rewards equal: zero advantage under any group normalisation)."""

from __future__ import annotations

import torch

from .checks import check_positive_int, check_tensor


def soft_overlong_penalty(lengths: torch.Tensor, max_len: int, buffer: int,
                          factor: float = 1.0) -> torch.Tensor:
    """DAPO eq. 13, added to the reward, (B,):

        R_length(y) = 0                                 if |y| <= L_max - L_cache
                      ((L_max - L_cache) - |y|) / L_cache   if L_max - L_cache < |y| <= L_max
                      -1                                if |y| > L_max

    times ``factor``; ``max_len`` = L_max, ``buffer`` = L_cache. verl 0.9.1
    (``reward_manager/dapo.py``): ``overlong_reward = min(-exceed_len / overlong_buffer_len
    * overlong_penalty_factor, 0)`` with ``exceed_len = valid_response_length -
    (max_resp_len - overlong_buffer_len)`` (not capped at -1: the generation budget caps
    the length). TRL 1.16.0: ``trl.rewards.get_soft_overlong_punishment(max_completion_len,
    soft_punish_cache)``."""
    check_tensor(lengths, "lengths", ndim=1, floating=False)
    max_len = check_positive_int(max_len, "max_len")
    buffer = check_positive_int(buffer, "buffer")
    if buffer > max_len:
        raise ValueError(f"buffer = {buffer} must be <= max_len = {max_len}")
    exceed = lengths.double() - (max_len - buffer)  # (B,)
    penalty = (-exceed / buffer).clamp(min=-1.0, max=0.0)  # (B,)
    return (penalty * factor).float()


def truncated(responses: torch.Tensor, eos_id: int) -> torch.Tensor:
    """(B,) True for responses that never produced EOS (cut by the generation budget):
    the rows overlong filtering takes out of the loss (TRL 1.16.0
    ``mask_truncated_completions=True``)."""
    check_tensor(responses, "responses", ndim=2, floating=False)
    return ~(responses == eos_id).any(dim=1)


def zero_std_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(num_groups,) True where all G rewards of a prompt are equal (TRL 1.16.0 logs their
    share as ``frac_reward_zero_std``; DAPO's dynamic sampling drops them)."""
    check_tensor(rewards, "rewards", ndim=1)
    group_size = check_positive_int(group_size, "group_size")
    if rewards.shape[0] % group_size:
        raise ValueError(f"the batch size B = {rewards.shape[0]} of rewards must be a "
                         f"multiple of group_size = {group_size}")
    grouped = rewards.view(-1, group_size)  # (num_groups, G)
    return grouped.amax(dim=1) == grouped.amin(dim=1)
