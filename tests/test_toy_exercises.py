"""Self-checks of notebook 06 accept right answers and explain wrong ones."""

import pytest
import torch

from rlviz.exercises.common import ExerciseError
from rlviz.exercises.training import check_response_mask, check_shifted_log_probs


def good_mask(responses, eos_id):
    is_eos = (responses == eos_id).long()  # (B, R)
    before = is_eos.cumsum(dim=1) - is_eos  # EOS seen strictly before t
    return (before == 0).float()


def test_right_answers_pass():
    assert check_response_mask(good_mask).startswith("Correct")
    assert check_shifted_log_probs(
        lambda logits, seq, p: torch.log_softmax(logits[:, p - 1:-1], -1).gather(
            -1, seq[:, p:, None]).squeeze(-1)).startswith("Correct")


def test_mask_without_eos_is_explained():
    def no_eos(responses, eos_id):
        is_eos = (responses == eos_id).long()
        return (is_eos.cumsum(dim=1) == 0).float()

    with pytest.raises(ExerciseError, match="EOS token must be in the mask"):
        check_response_mask(no_eos)


def test_mask_keeping_padding_is_explained():
    with pytest.raises(ExerciseError, match="after the first EOS are padding"):
        check_response_mask(lambda responses, eos_id: torch.ones(responses.shape))


def test_unshifted_log_probs_are_explained():
    def unshifted(logits, seq, p):
        return torch.log_softmax(logits[:, p:], -1).gather(-1, seq[:, p:, None]).squeeze(-1)

    with pytest.raises(ExerciseError, match="logits at t predict the token at t \\+ 1"):
        check_shifted_log_probs(unshifted)


def test_errors_inside_the_readers_code_are_reported():
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError"):
        check_response_mask(lambda responses, eos_id: 1 / 0)
