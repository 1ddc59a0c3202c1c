"""Self-checks for notebook 05: group advantages, aggregation weights, the std bias."""

from __future__ import annotations

import math

import torch

from ..experiments.groups import AGG_MODES, aggregation_coefficients, expected_abs_advantage
from ..losses.advantages import group_advantages
from ..masks import mask_from_lengths
from .common import ExerciseError, check_close, passed
from .common import call_reader as _call

__all__ = [
    "check_aggregation_weights",
    "check_expected_abs_advantage",
    "check_group_advantages",
]

ADVANTAGE_CASES = [
    # (rewards, group_size): binary with an all-correct group, graded, an all-wrong group
    ([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], 4),
    ([0.9, 0.6, 0.8, 0.2, 0.0, 0.1], 3),
    ([0.0, 0.0, 0.0, 1.0, 0.0, 1.0], 3),
]


def check_group_advantages(fn) -> str:
    """``fn(rewards, group_size, use_std)`` -> (B,) GRPO advantages: r minus its group's
    mean, divided by the group's unbiased std + 1e-6 when ``use_std`` (else not divided).
    Checked against ``rlviz.group_advantages`` on three batches."""
    for rewards_list, group_size in ADVANTAGE_CASES:
        rewards = torch.tensor(rewards_list, dtype=torch.float64)  # (B,)
        for use_std in (True, False):
            what = f"rewards {rewards_list}, group_size {group_size}, use_std {use_std}"
            got = _call(fn, what, rewards.clone(), group_size, use_std)
            got = torch.as_tensor(got, dtype=torch.float64).detach()
            expected = group_advantages(rewards, group_size, "group" if use_std else "none")
            if got.shape == expected.shape and torch.isfinite(got).all() and \
                    not torch.allclose(got, expected, atol=1e-3, rtol=0):
                raise ExerciseError(_advantage_hint(what, got, rewards, group_size, use_std,
                                                    expected))
            check_close(what, got, expected, atol=1e-3,
                        hint="A group whose rewards are all equal must give zeros "
                             "(its std is 0: divide by std + eps, or skip it).")
    return passed("group means, unbiased stds and all-equal groups are right.")


def _advantage_hint(what, got, rewards, group_size, use_std, expected) -> str:
    grouped = rewards.view(-1, group_size)  # (num_groups, G)
    batch_centred = rewards - rewards.mean()  # (B,)
    message = f"{what}: expected {expected.tolist()}, got {got.tolist()}."
    if torch.allclose(got, batch_centred, atol=1e-3) or (
            use_std and torch.allclose(got, batch_centred / (rewards.std() + 1e-6), atol=1e-3)):
        return message + " You centred over the whole batch (as the demo does); subtract " \
                         "each group's own mean (rows g*G .. g*G+G-1 form group g)."
    if use_std:
        centred = grouped - grouped.mean(dim=1, keepdim=True)
        biased = centred / (grouped.std(dim=1, unbiased=False, keepdim=True) + 1e-6)
        biased = torch.where(centred == 0, torch.zeros_like(biased), biased).view(-1)
        if torch.allclose(got, biased, atol=1e-3):
            return message + " You divided by the population std (divide by n); GRPO in " \
                             "TRL and verl uses the unbiased one (divide by n - 1)."
    else:
        if not torch.allclose(got, expected, atol=1e-3) and torch.allclose(
                got, group_advantages(rewards, group_size, "group"), atol=1e-3):
            return message + " With use_std=False, do not divide by the std (Dr. GRPO)."
    return message


AGG_LENGTHS = [2, 5, 0, 3]
AGG_MAX_LEN = 6


def check_aggregation_weights(fn) -> str:
    """``fn(lengths, mode, max_len)`` -> (B, max_len) tensor: the weight d loss / d l_it
    each token's loss has in ``rlviz.aggregate(l, mask, mode, max_len)``, for responses of
    the given lengths (one response is empty). Checked against autograd, for every mode."""
    mask = mask_from_lengths(torch.tensor(AGG_LENGTHS), AGG_MAX_LEN, dtype=torch.float64)
    expected_by_mode = {mode: aggregation_coefficients(mask, mode, AGG_MAX_LEN)
                        for mode in AGG_MODES}
    for mode in AGG_MODES:
        what = f"lengths {AGG_LENGTHS}, mode {mode!r}, max_len {AGG_MAX_LEN}"
        got = _call(fn, what, list(AGG_LENGTHS), mode, AGG_MAX_LEN)
        got = torch.as_tensor(got, dtype=torch.float64).detach()
        expected = expected_by_mode[mode]
        if got.shape == expected.shape and torch.isfinite(got).all() and \
                not torch.allclose(got, expected, atol=1e-9, rtol=1e-6):
            hint = ""
            if bool((got * (1 - mask)).abs().max() > 0):
                hint = " Padding positions (t >= L_i) must get weight 0."
            for other, weights in expected_by_mode.items():
                if other != mode and torch.allclose(got, weights, atol=1e-9):
                    hint = f" These are the weights of {other!r}, not of {mode!r}."
            if mode.startswith("seq-mean") and mode != "seq-mean-token-sum-norm":
                hint += " An empty response is not counted in the mean over responses."
            if mode == "seq-mean-token-sum-norm":
                hint += " Here the divisor is B * max_len with B the whole batch."
            raise ExerciseError(f"{what}: expected {expected.tolist()}, got {got.tolist()}."
                                + hint)
        check_close(what, got, expected, atol=1e-9)
    return passed("your weights match autograd through rlviz.aggregate for all four modes.")


ABS_ADV_CASES = [(0.5, 8), (0.1, 4), (0.9, 16), (0.0, 8), (1.0, 2), (0.3, 2)]


def check_expected_abs_advantage(fn) -> str:
    """``fn(p, G)`` -> E[sum_i |A_i|] without the std (A_i = r_i - group mean) for G binary
    rewards of success rate p: the average over k ~ Binomial(G, p) of 2 k (G - k) / G.
    The check wants the closed form (no sum over k needed)."""
    for p, group_size in ABS_ADV_CASES:
        what = f"p = {p}, G = {group_size}"
        got = _call(fn, what, p, group_size)
        if isinstance(got, torch.Tensor):
            got = float(got)
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            raise ExerciseError(f"{what}: return a number, got {type(got).__name__}")
        expected = expected_abs_advantage(p, group_size, "none")
        if not math.isfinite(got) or abs(got - expected) > 1e-9 * max(1.0, abs(expected)):
            hint = ""
            if abs(got - 2 * group_size * p * (1 - p)) < 1e-9:
                hint = (" That is 2 G p (1 - p): E[k (G - k)] is not G p * G (1 - p); use "
                        "E[k^2] = G p (1 - p) + G^2 p^2.")
            raise ExerciseError(f"{what}: expected {expected:.6f}, got {got!r}.{hint}")
    return passed("E[sum_i |A_i|] = 2 (G - 1) p (1 - p) without the std.")
