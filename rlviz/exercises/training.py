"""Self-checks of notebook 06: the response mask and the logits/token shift."""

from __future__ import annotations

import torch

from .common import ExerciseError, check_close, passed

__all__ = ["check_response_mask", "check_shifted_log_probs"]

EOS_ID = 12
PAD_ID = 13

# (responses, expected mask) worked out by hand; EOS = 12, PAD = 13
_MASK_CASES = [
    ([[4, 1, 3, 12, 13, 13]], [[1, 1, 1, 1, 0, 0]]),
    ([[12, 13, 13, 13, 13, 13]], [[1, 0, 0, 0, 0, 0]]),
    ([[1, 2, 3, 4, 5, 6]], [[1, 1, 1, 1, 1, 1]]),  # no EOS: the whole budget counts
    ([[1, 12, 2, 12, 13, 13]], [[1, 1, 0, 0, 0, 0]]),  # the first EOS ends the response
    ([[4, 1, 3, 12, 13, 13], [7, 12, 13, 13, 13, 13]], [[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]]),
]


def _call(fn, what: str, *args):
    try:
        return fn(*args)
    except Exception as error:  # report, with the inputs, what the reader's code raised
        raise ExerciseError(f"{what}: your function raised {type(error).__name__}: {error}") \
            from error


def check_response_mask(fn) -> str:
    """Check ``fn(responses, eos_id) -> mask``: ``responses`` (B, R) int64 tokens, the mask
    (B, R) is 1 on every token up to and including the first ``eos_id``, 0 after it, and
    1 everywhere in a row without ``eos_id``."""
    for responses, expected in _MASK_CASES:
        got = _call(fn, f"responses={responses}", torch.tensor(responses), EOS_ID)
        got = torch.as_tensor(got, dtype=torch.float64)
        want = torch.tensor(expected, dtype=torch.float64)
        hint = ""
        if got.shape == want.shape and bool(((got - want) == -1).any()):
            missing = ((want - got) == 1).nonzero()[0].tolist()
            token = responses[missing[0]][missing[1]]
            hint = ("The EOS token must be in the mask: it is an action the policy chose, and "
                    "its gradient teaches the policy to stop." if token == EOS_ID else
                    "A row without EOS ran to the end of the budget: all its tokens count.")
        elif got.shape == want.shape and bool(((got - want) == 1).any()):
            hint = "Tokens after the first EOS are padding: they must be 0."
        check_close(f"responses={responses}", got, want, atol=0.0, hint=hint)
    return passed(f"your response mask matches on all {len(_MASK_CASES)} cases "
                  "(EOS included, padding excluded).")


def _reference_shifted(logits: torch.Tensor, sequences: torch.Tensor, width: int):
    """Plain loops in float64: the token at position t is scored by the logits at t - 1."""
    batch, length, _ = logits.shape
    out = torch.zeros(batch, length - width, dtype=torch.float64)
    for b in range(batch):
        for t in range(width, length):
            row = logits[b, t - 1].double()
            out[b, t - width] = row[sequences[b, t]] - torch.logsumexp(row, dim=0)
    return out


def check_shifted_log_probs(fn) -> str:
    """Check ``fn(logits, sequences, prompt_width) -> logp``: ``logits`` (B, S, V) from a
    causal model run on ``sequences`` (B, S); return the log-probs (B, S - P) of the
    response tokens ``sequences[:, P:]``, where P = ``prompt_width``."""
    generator = torch.Generator().manual_seed(0)
    for batch, length, vocab, width in [(2, 7, 5, 3), (3, 9, 14, 4), (1, 4, 6, 1)]:
        logits = torch.randn(batch, length, vocab, generator=generator)
        sequences = torch.randint(0, vocab, (batch, length), generator=generator)
        what = f"B={batch}, S={length}, V={vocab}, prompt_width={width}"
        got = _call(fn, what, logits.clone(), sequences.clone(), width)
        expected = _reference_shifted(logits, sequences, width)
        got_t = torch.as_tensor(got, dtype=torch.float64)
        hint = ""
        unshifted = torch.log_softmax(logits[:, width:].double(), -1).gather(
            -1, sequences[:, width:, None]).squeeze(-1)
        if got_t.shape == unshifted.shape and torch.allclose(got_t, unshifted, atol=1e-5):
            hint = ("You read the logits at the token's own position. The logits at t predict "
                    "the token at t + 1: use logits[:, P - 1:-1] for tokens[:, P:].")
        check_close(what, got_t, expected, atol=1e-5, hint=hint)
    return passed("your log-probs read each response token from the logits one position "
                  "earlier, as a causal model must.")
