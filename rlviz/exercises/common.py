"""Shared machinery of the self-check helpers: compare and explain."""

from __future__ import annotations

import torch


class ExerciseError(AssertionError):
    """Raised by a self-check when the reader's answer is wrong; the message says why."""


def call_reader(fn, what: str, *args):
    """``fn(*args)``; if the reader's function raises, an ``ExerciseError`` saying which
    case (``what``) it raised on, with the original error as its cause."""
    try:
        return fn(*args)
    except ExerciseError:
        raise
    except Exception as error:  # the reader's code failed: say where, keep the cause
        raise ExerciseError(f"{what}: your function raised {type(error).__name__}: {error}") \
            from error


def check_close(what: str, got, expected, atol: float = 1e-6, hint: str = "") -> None:
    """Raise ``ExerciseError`` naming ``what`` unless ``got`` matches ``expected``."""
    got_t = torch.as_tensor(got, dtype=torch.float64)
    expected_t = torch.as_tensor(expected, dtype=torch.float64)
    if got_t.shape != expected_t.shape:
        raise ExerciseError(
            f"{what}: expected shape {tuple(expected_t.shape)}, got {tuple(got_t.shape)}. {hint}"
        )
    if not torch.isfinite(got_t).all():
        raise ExerciseError(f"{what}: your result has NaN or inf: {got_t.tolist()}. {hint}")
    if not torch.allclose(got_t, expected_t, atol=atol, rtol=0):
        worst = (got_t - expected_t).abs().max().item()
        raise ExerciseError(
            f"{what}: expected {expected_t.tolist()}, got {got_t.tolist()} "
            f"(largest difference {worst:.3g}). {hint}"
        )


def passed(message: str) -> str:
    """The line a self-check prints (and returns) when everything matched."""
    line = f"Correct: {message}"
    print(line)
    return line
