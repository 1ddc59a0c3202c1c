"""Self-checks of notebook 03: the clipped surrogate of one token, and who gets a gradient."""

from __future__ import annotations

import torch

from ..losses import clipped_surrogate
from .common import ExerciseError, passed

__all__ = ["check_gets_gradient", "check_surrogate"]

_SETTINGS = [(0.2, 0.2), (0.2, 0.28), (0.1, 0.3)]
_RATIOS = [0.3, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 4.0]
# check_gets_gradient: (eps_low, eps_high, dual_clip) settings, advantages and ratios chosen so
# that no ratio sits on a kink (1 - eps_low, 1 + eps_high or c), where either answer is defensible.
_GRADIENT_SETTINGS = [(0.2, 0.2, None), (0.2, 0.28, None), (0.2, 0.28, 3.0), (0.15, 0.3, 2.2)]
_GRADIENT_ADVANTAGES = (1.0, -1.0, 0.3, -2.5, 0.0)
_GRADIENT_RATIOS = _RATIOS + [0.05, 2.5, 3.5, 10.0]


def _reference_loss(rho: torch.Tensor, advantage: torch.Tensor, eps_low: float, eps_high: float,
                    dual_clip: float | None = None) -> torch.Tensor:
    """rlviz's per-token loss at ratios ``rho`` (N,) with advantages (N,), float64."""
    logp = torch.log(rho.double()).view(1, -1)  # (1, N)
    return clipped_surrogate(logp, torch.zeros_like(logp), advantage.double().view(1, -1),
                             eps_low=eps_low, eps_high=eps_high, dual_clip=dual_clip).view(-1)


def _diagnose(got, rho, adv, eps_low, eps_high) -> str:
    """Name the usual mistake that ``got`` matches, if any."""
    clipped = rho.clamp(1 - eps_low, 1 + eps_high)
    symmetric = rho.clamp(1 - eps_low, 1 + eps_low)
    candidates = {
        "The sign is flipped: return the loss, -min(rho*A, clip(rho)*A), which training "
        "minimises; min(...) itself is the objective.":
            torch.minimum(rho * adv, clipped * adv),
        "There is no clipping: -rho*A is the unclipped surrogate; take the min with the "
        "clipped term.": -rho * adv,
        "Only the clipped term is used: the loss is -min(rho*A, clip(rho)*A), the pessimistic "
        "(smaller) of both objectives.": -clipped * adv,
        "max and min are swapped: the objective takes the min of the two terms (the loss is "
        "minus that).": -torch.maximum(rho * adv, clipped * adv),
        "eps_high is ignored: clip rho to [1 - eps_low, 1 + eps_high].":
            -torch.minimum(rho * adv, symmetric * adv),
    }
    for message, wrong in candidates.items():
        if torch.allclose(got, wrong, atol=1e-6) and not torch.allclose(
                wrong, _reference_loss(rho, adv, eps_low, eps_high), atol=1e-6):
            return message
    return ""


def check_surrogate(fn) -> str:
    """Check ``fn(rho, advantage, eps_low, eps_high) -> loss``: the per-token clipped
    surrogate loss -min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A), elementwise for
    float64 tensors ``rho`` and ``advantage`` of shape (N,). The reference is
    ``rlviz.clipped_surrogate``."""
    rho = torch.tensor(_RATIOS * 2, dtype=torch.float64)  # (N,)
    adv = torch.tensor([1.0] * len(_RATIOS) + [-1.0] * len(_RATIOS), dtype=torch.float64)
    batches = [(rho, adv), (rho, 0.5 * adv), (rho, -2.0 * adv)]
    for eps_low, eps_high in _SETTINGS:
        for r, a in batches:
            expected = _reference_loss(r, a, eps_low, eps_high)
            try:
                got = fn(r.clone(), a.clone(), eps_low, eps_high)
            except Exception as error:  # report what the reader's code raised, with the inputs
                raise ExerciseError(f"eps_low={eps_low}, eps_high={eps_high}: your function "
                                    f"raised {type(error).__name__}: {error}") from error
            got = torch.as_tensor(got, dtype=torch.float64)
            if got.shape != expected.shape:
                raise ExerciseError(f"expected one loss per token, shape {tuple(expected.shape)}, "
                                    f"got shape {tuple(got.shape)}")
            if not torch.isfinite(got).all():
                raise ExerciseError(f"your losses contain NaN or inf: {got.tolist()}")
            wrong = (got - expected).abs() > 1e-6
            if wrong.any():
                i = int(wrong.nonzero()[0])
                hint = _diagnose(got, r, a, eps_low, eps_high)
                raise ExerciseError(
                    f"rho={r[i].item():g}, A={a[i].item():g}, eps_low={eps_low}, "
                    f"eps_high={eps_high}: expected loss {expected[i].item():.4f}, got "
                    f"{got[i].item():.4f}. {hint}".strip())
    return passed(f"your surrogate matches rlviz.clipped_surrogate on "
                  f"{len(_SETTINGS) * len(batches) * len(rho)} tokens.")


def _reference_gets_gradient(rho: float, advantage: float, eps_low: float, eps_high: float,
                             dual_clip: float | None) -> bool:
    logp = torch.tensor([[float(torch.log(torch.tensor(rho, dtype=torch.float64)))]],
                        dtype=torch.float64, requires_grad=True)  # (1, 1)
    loss = clipped_surrogate(logp, torch.zeros_like(logp),
                             torch.tensor([advantage], dtype=torch.float64), eps_low=eps_low,
                             eps_high=eps_high, dual_clip=dual_clip)  # (1, 1)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    return bool(grad.item() != 0.0)


def check_gets_gradient(fn) -> str:
    """Check ``fn(rho, advantage, eps_low, eps_high, dual_clip) -> bool``: does a token with
    ratio ``rho`` and advantage ``advantage`` get a gradient? ``dual_clip`` is ``None`` or
    c > 1. The reference is autograd through ``rlviz.clipped_surrogate``. No case sits
    exactly on a clip boundary (1 - eps_low, 1 + eps_high, c), so strict and non-strict
    inequalities are both accepted. One case has A = 0, where the loss is 0 whatever rho."""
    count = 0
    for eps_low, eps_high, dual_clip in _GRADIENT_SETTINGS:
        for advantage in _GRADIENT_ADVANTAGES:
            for rho in _GRADIENT_RATIOS:
                expected = _reference_gets_gradient(rho, advantage, eps_low, eps_high, dual_clip)
                got = fn(rho, advantage, eps_low, eps_high, dual_clip)
                if not isinstance(got, (bool, torch.Tensor)) and got not in (0, 1):
                    raise ExerciseError(f"return True or False, got {got!r}")
                count += 1
                if bool(got) != expected:
                    if advantage == 0:
                        why = ("with A = 0 the token's loss is 0 whatever rho, so its gradient "
                               "is 0 too")
                    elif advantage > 0:
                        why = ("with A > 0 the clipped branch (flat) is active only for "
                               "rho > 1 + eps_high")
                    elif dual_clip is not None and rho > dual_clip:
                        why = "with A < 0 the dual clip makes the loss flat for rho > c"
                    else:
                        why = ("with A < 0 the clipped branch (flat) is active for "
                               "rho < 1 - eps_low" + (" (and rho > c with dual clip)"
                                                      if dual_clip else ""))
                    raise ExerciseError(
                        f"rho={rho}, A={advantage}, eps_low={eps_low}, eps_high={eps_high}, "
                        f"dual_clip={dual_clip}: expected {expected}, got {bool(got)}; {why}.")
    return passed(f"you know which tokens get a gradient ({count} cases).")
