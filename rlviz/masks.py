"""Response masks: 1 on response tokens, 0 on prompt tokens and padding."""

from __future__ import annotations

import torch


def compute_mask(bs, seq_len, input_len, device, dtype):
    """The demo's mask, (bs, seq_len): 0 on the first ``input_len`` (prompt) positions,
    1 after them. Every response has the same length ``seq_len - input_len``."""
    mask = torch.zeros(bs, seq_len, device=device, dtype=dtype)
    mask[:, input_len:] = 1.0
    return mask


def mask_from_lengths(lengths: torch.Tensor, max_len: int, dtype=torch.float32) -> torch.Tensor:
    """(B,) response lengths -> (B, max_len) mask with ``lengths[i]`` leading ones.

    >>> mask_from_lengths(torch.tensor([1, 3]), 4)
    tensor([[1., 0., 0., 0.],
            [1., 1., 1., 0.]])
    """
    if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1:
        raise ValueError(f"lengths must be a 1-D tensor, got {type(lengths).__name__} "
                         f"{getattr(lengths, 'shape', '')}")
    if (lengths < 0).any() or (lengths > max_len).any():
        raise ValueError(f"lengths must lie in [0, max_len={max_len}], got {lengths.tolist()}")
    positions = torch.arange(max_len, device=lengths.device)  # (T,)
    return (positions.unsqueeze(0) < lengths.unsqueeze(1)).to(dtype)  # (B, T)
