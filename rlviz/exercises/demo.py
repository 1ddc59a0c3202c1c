"""Self-check of notebook 00: write the demo's PPO loss yourself."""

from __future__ import annotations

import torch

from ..losses import ppo_policy_loss
from .common import ExerciseError, passed

__all__ = ["check_demo_ppo_loss"]


def _cases():
    """Batches with ratios inside and outside the clip range, advantages of both signs
    and responses of unequal lengths (so token-mean and a per-response mean differ)."""
    generator = torch.Generator().manual_seed(0)
    for bs, seq_len in ((2, 3), (4, 6), (8, 10)):
        pi = -torch.rand(bs, seq_len, generator=generator, dtype=torch.float64) * 3  # (B, T)
        old = pi + 0.5 * torch.randn(bs, seq_len, generator=generator, dtype=torch.float64)
        advantage = torch.randn(bs, generator=generator, dtype=torch.float64)  # (B,)
        lengths = torch.randint(1, seq_len + 1, (bs,), generator=generator)  # (B,)
        mask = (torch.arange(seq_len) < lengths[:, None]).double()  # (B, T)
        yield pi, old, advantage, mask


def _wrong_versions(pi, old, advantage, mask, clip_range):
    """The usual mistakes, each with the hint that names it."""
    ratio = torch.exp(pi - old)  # (B, T)
    adv = advantage.view(-1, 1)  # (B, 1)
    objective = torch.minimum(ratio * adv, ratio.clamp(1 - clip_range, 1 + clip_range) * adv)
    return {
        "The sign is flipped: the loss is minus the clipped objective.":
            (objective * mask).sum() / mask.sum(),
        "The mask is ignored: average over response tokens only (mask == 1).":
            -objective.mean(),
        "This is a mean per response, then over responses; the demo's PPO loss is one mean "
        "over all response tokens: sum(loss * mask) / sum(mask).":
            -((objective * mask).sum(1) / mask.sum(1)).mean(),
        "There is no clipping: take min(rho * A, clip(rho, 1 - eps, 1 + eps) * A).":
            -(ratio * adv * mask).sum() / mask.sum(),
    }


def check_demo_ppo_loss(fn) -> str:
    """Check ``fn(pi_logprob, pi_old_logprob, advantage, mask, clip_range) -> scalar``
    against the demo's ``ppo_policy_loss`` on batches where clipping acts and responses
    have unequal lengths. Raises ``ExerciseError`` naming the mistake; returns a line."""
    for pi, old, advantage, mask in _cases():
        for clip_range in (0.2, 0.1):
            expected = ppo_policy_loss(pi, old, advantage, mask, clip_range)
            got = torch.as_tensor(fn(pi.clone(), old.clone(), advantage.clone(), mask.clone(),
                                     clip_range), dtype=torch.float64)
            if got.numel() != 1:
                raise ExerciseError(f"return one number (a scalar loss), not shape "
                                    f"{tuple(got.shape)}")
            if torch.allclose(got, expected, atol=1e-9):
                continue
            for hint, wrong in _wrong_versions(pi, old, advantage, mask, clip_range).items():
                if torch.allclose(got, wrong, atol=1e-9):
                    raise ExerciseError(hint)
            raise ExerciseError(f"for B = {pi.shape[0]}, clip_range = {clip_range}: expected "
                                f"{expected.item():.6f}, got {got.item():.6f}")
    return passed("your loss matches ppo_policy_loss on 6 batches, clipped and unequal lengths")
