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


def dynamic_sampling(sample_round, num_groups: int, group_size: int, max_rounds: int):
    """DAPO's dynamic sampling (arXiv 2503.14476, section 3.2 and Algorithm 1): sample
    rounds of groups, keep the groups whose G rewards are not all equal, and sample again
    until ``num_groups`` informative groups are kept or ``max_rounds`` rounds were run.

    ``sample_round()`` returns one round (anything with ``.rewards``, (B,) with
    B = num_groups x G, group g on rows g*G .. g*G+G-1). Returns ``(rounds, picks)``:
    the rounds sampled and ``num_groups`` pairs ``(round, group)``: the informative groups
    in the order they were generated, the surplus of the last round dropped. At the cap,
    the missing places are filled with zero-variance groups, again in generation order
    (they carry zero advantage), so the batch keeps its size and nothing divides by zero.

    verl's DAPO recipe (``recipe/dapo/dapo_ray_trainer.py`` of the verl repository, a
    recipe, not part of the installed ``verl`` 0.9.1 package) fills the batch the same
    way: ``kept_prompt_uids = [uid for uid, std in prompt_uid2metric_std.items() if std > 0
    or len(prompt_uid2metric_vals[uid]) == 1]``, ``continue`` while ``num_prompt_in_batch <
    prompt_bsz``, then ``batch = batch[:traj_bsz]``; at the cap it raises
    ``ValueError(f"{num_gen_batches=} >= {max_num_gen_batches=}." ...)`` where rlviz fills
    with zero-variance groups instead. verl 0.9.1's own V1 trainer filters in
    ``trainer/ppo/v1/replay_buffer.py`` and ignores the cap (``trainer_base.py``:
    "max_num_gen_batches=%s is ignored by the built-in V1 ReplayBuffer")."""
    num_groups = check_positive_int(num_groups, "num_groups")
    group_size = check_positive_int(group_size, "group_size")
    max_rounds = check_positive_int(max_rounds, "max_rounds")
    rounds, informative, flat = [], [], []
    while len(rounds) < max_rounds and len(informative) < num_groups:
        batch = sample_round()
        if batch.rewards.shape[0] != num_groups * group_size:
            raise ValueError(f"sample_round returned {batch.rewards.shape[0]} rewards, "
                             f"expected num_groups x group_size = {num_groups * group_size}")
        index = len(rounds)
        rounds.append(batch)
        flat_groups = (zero_std_groups(batch.rewards, group_size).tolist() if group_size > 1
                       else [False] * num_groups)  # a group of one is kept, as in verl
        informative += [(index, g) for g, flat_ in enumerate(flat_groups) if not flat_]
        flat += [(index, g) for g, flat_ in enumerate(flat_groups) if flat_]
    picks = (informative + flat)[:num_groups]
    return rounds, picks
