"""Notebook 10's self-checks accept a right answer and reject wrong ones with a useful message."""

import pytest

from rlviz.exercises.bridge import check_dead_steps, check_trl_loss_type
from rlviz.exercises.common import ExerciseError


def loops_trl_loss(loss, mask, loss_type, max_completion_length):
    """Plain loops, written apart from the checker's reference."""
    total, tokens, per_seq = 0.0, 0.0, []
    for row_loss, row_mask in zip(loss.tolist(), mask.tolist()):
        s = sum(v * m for v, m in zip(row_loss, row_mask))
        n = sum(row_mask)
        total, tokens = total + s, tokens + n
        per_seq.append(s / max(n, 1.0))
    if loss_type == "grpo":
        return sum(per_seq) / len(per_seq)
    if loss_type == "bnpo":
        return total / tokens
    return total / (len(per_seq) * max_completion_length)


def test_right_answers_pass():
    assert check_trl_loss_type(loops_trl_loss).startswith("Correct")
    assert check_dead_steps(lambda h: [r["step"] for r in h if r.get("grad_norm") == 0.0
                                       and r.get("frac_reward_zero_std") == 1.0]) \
        .startswith("Correct")


def test_wrong_answers_are_explained():
    def token_mean_everywhere(loss, mask, loss_type, max_completion_length):
        return loops_trl_loss(loss, mask, "bnpo", max_completion_length)

    with pytest.raises(ExerciseError, match="'grpo'"):
        check_trl_loss_type(token_mean_everywhere)
    with pytest.raises(ExerciseError, match="step 3"):
        check_dead_steps(lambda h: [r["step"] for r in h if r.get("frac_reward_zero_std") == 1.0])
    with pytest.raises(ExerciseError, match="raised KeyError"):
        check_dead_steps(lambda h: [r["step"] for r in h if r["grad_norm"] == 0.0])
