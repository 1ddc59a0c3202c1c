"""Self-checks of notebook 01: the first-step loss value and Adam's first step."""

from __future__ import annotations

import torch

from ..experiments.zero_loss import first_step_loss
from .common import ExerciseError, check_close, passed

__all__ = ["check_adam_first_step", "check_first_step_loss"]

# (advantages, lengths) test cases; every response has at least one token
_FIRST_STEP_CASES = [
    ([1.5, -0.5, -0.5, -0.5], [4, 12, 12, 12]),
    ([0.3, -0.1, -0.2, 0.0], [24, 24, 24, 24]),
    ([2.0, 1.0], [3, 1]),
    ([-1.0, 0.25, 0.5, 0.25, 0.0, 0.0], [5, 1, 7, 2, 2, 6]),
]
_MODES = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def check_first_step_loss(fn) -> str:
    """Check ``fn(advantages, lengths, mode) -> float``: the aggregated loss at rho = 1.

    ``advantages`` (B,) float and ``lengths`` (B,) int tensors, every length >= 1; ``mode``
    one of the four aggregation modes of ``rlviz.aggregate`` (for seq-mean-token-sum-norm
    the constant is the longest length in the batch). The reference is
    ``rlviz.aggregate(rlviz.clipped_surrogate(...))`` at rho = 1.
    """
    for advantages, lengths in _FIRST_STEP_CASES:
        adv = torch.tensor(advantages)
        lens = torch.tensor(lengths)
        for mode in _MODES:
            expected = first_step_loss(adv, lens, mode, max_len=int(lens.max()))
            try:
                got = fn(adv.clone(), lens.clone(), mode)
            except Exception as error:  # report, with the inputs, what the reader's code raised
                raise ExerciseError(f"mode={mode!r}, advantages={advantages}, lengths={lengths}: "
                                    f"your function raised {type(error).__name__}: {error}") \
                    from error
            got = float(got)
            hint = ""
            if abs(got + expected) < 1e-6 and abs(expected) > 1e-6:
                hint = "The sign is flipped: the token loss at rho = 1 is -A, not +A."
            elif mode == "token-mean":
                hint = "token-mean divides the sum over all tokens by the number of tokens."
            elif mode == "seq-mean-token-mean":
                hint = "seq-mean-token-mean averages each response over its own tokens first."
            elif mode == "seq-mean-token-sum":
                hint = "seq-mean-token-sum sums each response's tokens, then averages responses."
            else:
                hint = "seq-mean-token-sum-norm divides the token sum by B * max(lengths)."
            check_close(f"mode={mode!r}, advantages={advantages}, lengths={lengths}", got,
                        expected, atol=1e-5, hint=hint)
    return passed(f"your first-step loss matches rlviz in all {len(_MODES)} modes "
                  f"on {len(_FIRST_STEP_CASES)} batches.")


def check_adam_first_step(fn) -> str:
    """Check ``fn(grad, lr) -> delta``: the change Adam's first step makes to a parameter
    with gradient ``grad`` (a float tensor), against ``torch.optim.Adam`` (betas 0.9, 0.999,
    eps 1e-8)."""
    cases = [
        torch.tensor([1e-3, -2e-5, 0.5, -7.0]),
        torch.tensor([1e-9, 0.0, -1e-7, 3.0]),
        torch.tensor([10.0, -10.0, 1e-4]),
    ]
    for lr in (1e-4, 1e-2):
        for grad in cases:
            param = torch.zeros_like(grad, dtype=torch.float64, requires_grad=True)
            optimizer = torch.optim.Adam([param], lr=lr)
            param.grad = grad.double().clone()
            optimizer.step()
            expected = param.detach().clone()
            got = fn(grad.double().clone(), lr)
            hint = ("Adam's first step: m_hat = g and v_hat = g**2 after bias correction, "
                    "so delta = -lr * g / (sqrt(g**2) + eps).")
            check_close(f"grad={grad.tolist()}, lr={lr}", got, expected, atol=1e-12, hint=hint)
    return passed("your Adam first step matches torch.optim.Adam: about lr per parameter, "
                  "whatever the gradient's size (unless it is near eps = 1e-8).")
