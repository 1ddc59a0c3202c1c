"""Argument checks shared by the loss functions.

Every public function of ``rlviz.losses`` checks its inputs with these helpers, so a
mistake surfaces as a ``ValueError`` (or ``TypeError`` for a wrong type or dtype) that
names the argument and says what it got, instead of a broadcasting surprise or a NaN.
"""

from __future__ import annotations

import math
from typing import Iterable

import torch


def check_tensor(x, name: str, ndim: int | Iterable[int] | None = None,
                 floating: bool = True) -> torch.Tensor:
    """``x`` must be a tensor (floating point unless ``floating=False``) with ``ndim`` dims."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(x.shape)}")
    return x


def check_same_shape(x: torch.Tensor, name: str, ref: torch.Tensor, ref_name: str) -> None:
    """``x`` must have exactly the shape of ``ref``."""
    if x.shape != ref.shape:
        raise ValueError(f"{name} must have the shape of {ref_name} {tuple(ref.shape)}, "
                         f"got {tuple(x.shape)}")


def check_mask(mask, shape: torch.Size, name: str = "mask",
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A 0/1 mask (float or bool) of the given shape, returned as a float tensor of ``dtype``."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of 0/1, got {type(mask).__name__}")
    if mask.shape != shape:
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        if mask.is_complex():
            raise TypeError(f"{name} must be float, int or bool, got dtype {mask.dtype}")
        bad = (mask != 0) & (mask != 1)
        if bool(bad.any()):
            example = mask[bad].flatten()[0].item()
            raise ValueError(f"{name} must contain only 0 and 1, found {example!r}")
    return mask.to(dtype)


def check_one_of(value, name: str, options: Iterable[str]) -> str:
    """``value`` must be one of ``options``; the message lists them."""
    options = tuple(options)
    if value not in options:
        valid = ", ".join(repr(o) for o in options)
        raise ValueError(f"Unknown {name}: {value!r}. Valid values: {valid}")
    return value


def check_number(value, name: str, low: float | None = None, high: float | None = None,
                 low_open: bool = True, high_open: bool = True) -> float:
    """A finite real number inside the (open by default) interval (low, high)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


def check_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """An ``int`` (Python int or 0-dim integer tensor) in the closed range [low, high]."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point():
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            raise ValueError(f"{name} must be >= {low}, got {value}")
        if low is None:
            raise ValueError(f"{name} must be <= {high}, got {value}")
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")
    return value


def check_positive_int(value, name: str) -> int:
    """An ``int`` >= 1 (Python int or 0-dim integer tensor)."""
    return check_int(value, name, low=1)


def per_response(x: torch.Tensor, name: str, batch: int, shape: torch.Size) -> torch.Tensor:
    """A (B,) or (B, T) tensor as something that broadcasts against (B, T)."""
    check_tensor(x, name, ndim=(1, 2))
    if x.dim() == 1:
        if x.shape[0] != batch:
            raise ValueError(f"{name} of shape (B,) must have B = {batch} entries, "
                             f"got {tuple(x.shape)}")
        return x.unsqueeze(-1)  # (B, 1)
    if x.shape != shape:
        raise ValueError(f"{name} must have shape (B,) = ({batch},) or (B, T) = {tuple(shape)}, "
                         f"got {tuple(x.shape)}")
    return x


def check_logits(logits, per_token: torch.Tensor, name: str = "logits") -> torch.Tensor:
    """(B, T, V) floating logits aligned with a (B, T) per-token tensor."""
    check_tensor(logits, name, ndim=3)
    if logits.shape[:2] != per_token.shape:
        raise ValueError(f"{name} must have shape (B, T, V) with (B, T) = "
                         f"{tuple(per_token.shape)} (the log-probs' shape), got "
                         f"{tuple(logits.shape)}")
    return logits
