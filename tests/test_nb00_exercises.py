"""The self-check of notebook 00 accepts a correct loss and names each usual mistake."""

import pytest
import torch

from rlviz.exercises.common import ExerciseError
from rlviz.exercises.demo import check_demo_ppo_loss


def correct(pi, old, advantage, mask, clip_range):
    # written independently of rlviz, token by token
    total, count = 0.0, 0.0
    for i in range(pi.shape[0]):
        for t in range(pi.shape[1]):
            if mask[i, t] == 0:
                continue
            rho = torch.exp(pi[i, t] - old[i, t]).item()
            a = advantage[i].item()
            clipped = min(max(rho, 1 - clip_range), 1 + clip_range)
            total += -min(rho * a, clipped * a)
            count += 1
    return total / count


def test_accepts_a_correct_loss():
    assert check_demo_ppo_loss(correct).startswith("Correct")


@pytest.mark.parametrize("wrong, hint", [
    (lambda *args: -correct(*args), "sign"),
    (lambda pi, old, a, m, c: correct(pi, old, a, torch.ones_like(m), c), "mask"),
    (lambda pi, old, a, m, c: sum(
        correct(pi[i:i + 1], old[i:i + 1], a[i:i + 1], m[i:i + 1], c) for i in range(len(a))
    ) / len(a), "per response"),
    (lambda pi, old, a, m, c: correct(pi, old, a, m, 1e9), "clipping"),
    (lambda pi, old, a, m, c: torch.zeros(2), "scalar"),
])
def test_names_the_mistake(wrong, hint):
    with pytest.raises(ExerciseError, match=hint):
        check_demo_ppo_loss(wrong)
