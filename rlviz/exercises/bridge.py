"""Self-checks for notebook 10 (your trainer: TRL and verl). Each runs the reader's function on
a few cases, compares with a reference written here with plain Python loops, and says what is
wrong."""

from __future__ import annotations

import torch

from .common import ExerciseError, call_reader, check_close, passed

__all__ = ["check_dead_steps", "check_trl_loss_type"]


def _reference_trl_loss(loss, mask, loss_type, max_completion_length):
    """TRL 1.16.0 _compute_loss, one micro-batch, no gradient accumulation, plain loops."""
    rows = [[(v, m) for v, m in zip(lr, mr)] for lr, mr in zip(loss, mask)]
    if loss_type == "grpo":
        per_seq = [sum(v * m for v, m in row) / max(sum(m for _, m in row), 1.0) for row in rows]
        return sum(per_seq) / len(per_seq)
    total = sum(v * m for row in rows for v, m in row)
    if loss_type == "bnpo":
        return total / max(sum(m for row in rows for _, m in row), 1.0)
    return total / (len(rows) * max_completion_length)  # "dr_grpo"


def check_trl_loss_type(fn) -> str:
    """``fn(per_token_loss, mask, loss_type, max_completion_length)`` -> TRL 1.16.0's loss of
    one micro-batch for loss_type "grpo", "bnpo" or "dr_grpo" (both tensors (B, T))."""
    loss = torch.tensor([[0.5, -1.0, 2.0, 9.0], [1.5, 0.25, 7.0, 7.0], [-0.5, 3.0, 1.0, 4.0]],
                        dtype=torch.float64)  # (3, 4)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.float64)
    hints = {
        "grpo": "'grpo': mean over completions of each completion's token mean.",
        "bnpo": "'bnpo': sum of the masked losses / number of masked-in tokens.",
        "dr_grpo": "'dr_grpo': sum of the masked losses / (B * max_completion_length), a "
                   "constant that does not depend on the lengths.",
    }
    for loss_type, hint in hints.items():
        got = call_reader(fn, loss_type, loss, mask, loss_type, 6)
        want = _reference_trl_loss(loss.tolist(), mask.tolist(), loss_type, 6)
        check_close(f"loss_type={loss_type!r}", float(got), want, atol=1e-9, hint=hint)
    return passed("the three aggregations of TRL 1.16.0 (grpo, bnpo, dr_grpo) match.")


def check_dead_steps(fn) -> str:
    """``fn(log_history)`` -> the steps (ints, in order) where ``grad_norm`` is 0 and
    ``frac_reward_zero_std`` is 1, in a TRL ``log_history`` (a list of dicts, some without
    those keys)."""
    history = [
        {"step": 1, "loss": 0.0, "grad_norm": 0.4, "frac_reward_zero_std": 0.25},
        {"step": 2, "loss": 0.0, "grad_norm": 0.0, "frac_reward_zero_std": 1.0},
        {"step": 3, "loss": 0.0, "grad_norm": 0.02, "frac_reward_zero_std": 1.0},
        {"step": 4, "loss": 0.0, "grad_norm": 0.0, "frac_reward_zero_std": 0.5},
        {"step": 5, "loss": 0.0, "grad_norm": 0.0, "frac_reward_zero_std": 1.0},
        {"step": 5, "train_runtime": 3.0},
    ]
    want = [s["step"] for s in history
            if s.get("grad_norm") == 0.0 and s.get("frac_reward_zero_std") == 1.0]
    got = call_reader(fn, "the log_history", history)
    if list(got) != want:
        raise ExerciseError(
            f"expected steps {want}, got {list(got)}. Both conditions must hold; step 3 has "
            "flat groups but a gradient (beta > 0 gives a KL gradient), step 4 a zero gradient "
            "with some signal left; the last entry has neither key.")
    return passed("steps 2 and 5 are the wasted ones: every group flat and no gradient.")
