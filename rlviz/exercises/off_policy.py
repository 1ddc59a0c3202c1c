"""Self-checks of notebook 07: the TIS weight, and what TRL's step settings do to rho."""

from __future__ import annotations

import torch

from ..losses import truncated_is_weights
from .common import ExerciseError, check_close, passed

__all__ = ["check_clipfrac_prediction", "check_tis_weight"]

_CAPS = (1.5, 2.0, 5.0)


def _cases():
    generator = torch.Generator().manual_seed(7)
    old = -torch.rand(4, 6, generator=generator, dtype=torch.float64) * 3  # (B, T)
    rollout = old + 0.9 * torch.randn(4, 6, generator=generator, dtype=torch.float64)
    mask = (torch.arange(6)[None] < torch.tensor([6, 3, 1, 5])[:, None]).double()  # (B, T)
    return old, rollout, mask


def _diagnose(got, old, rollout, mask, cap) -> str:
    ratio = (old - rollout).exp()
    candidates = {
        "The ratio is upside down: the weight is pi_old / pi_rollout = exp(old_logp - "
        "rollout_logp) (the trainer's probability over the engine's).":
            (rollout - old).exp().clamp(max=cap) * mask,
        "The weight is not capped: TIS takes min(pi_old / pi_rollout, C).": ratio * mask,
        "The weight is clipped from below too: TIS caps it at C only (MIS with a lower "
        "bound is another correction).": ratio.clamp(1 / cap, cap) * mask,
        "Padding tokens must get weight 0: multiply by the mask.": ratio.clamp(max=cap),
    }
    for message, wrong in candidates.items():
        if got.shape == wrong.shape and torch.allclose(got, wrong, atol=1e-6):
            return message
    return ""


def check_tis_weight(fn) -> str:
    """Check ``fn(old_logp, rollout_logp, mask, cap) -> weights``: token-level truncated
    importance weights min(pi_old / pi_rollout, C), (B, T), 0 on padding, for float64
    tensors. The reference is ``rlviz.losses.truncated_is_weights``."""
    old, rollout, mask = _cases()
    for cap in _CAPS:
        expected = truncated_is_weights(old, rollout, mask, cap)
        try:
            got = fn(old.clone(), rollout.clone(), mask.clone(), cap)
        except Exception as error:  # report what the reader's code raised
            raise ExerciseError(f"cap={cap}: your function raised {type(error).__name__}: "
                                f"{error}") from error
        got = torch.as_tensor(got, dtype=torch.float64)
        if got.shape == expected.shape and not torch.allclose(got, expected, atol=1e-9):
            hint = _diagnose(got, old, rollout, mask, cap)
            if hint:
                raise ExerciseError(f"cap={cap}: {hint}")
        check_close(f"TIS weights with cap={cap}", got, expected, atol=1e-9)
    if isinstance(got, torch.Tensor) and got.requires_grad:
        raise ExerciseError("detach the weights: they change the measure, not the objective")
    return passed("min(pi_old / pi_rollout, C) per token, 0 on padding.")


def check_clipfrac_prediction(answer) -> str:
    """Check the predicted clip fraction of TRL 1.16.0's GRPOTrainer when
    ``steps_per_generation == gradient_accumulation_steps`` and ``num_iterations == 1``."""
    try:
        value = float(answer)
    except (TypeError, ValueError) as error:
        raise ExerciseError(f"answer with a number between 0 and 1, got {answer!r}") from error
    if value != 0.0:
        raise ExerciseError(
            f"{value:g} is not it. With steps_per_generation == gradient_accumulation_steps "
            "every micro-batch of a generation batch is accumulated into ONE optimizer step, "
            "so each is scored by the weights that sampled it: rho = 1 on every token. TRL "
            "1.16.0 does not even compute old_per_token_logps then "
            "(old_per_token_logps = per_token_logps.detach()).")
    # TRL 1.16.0 grpo_trainer.py:2643-2644: `if self.args.gradient_accumulation_steps %
    # generate_every != 0 or (self.use_vllm and self.vllm_importance_sampling_correction)`
    # recomputes old_per_token_logps with the trainer's own forward pass.
    return passed("0 exactly: one optimizer step per generation batch means rho = 1 on "
                  "every token. With vLLM, TRL 1.16.0 scores pi_old with the trainer "
                  "(a recompute), not with vLLM's log-probs, so rho = 1 and clip_ratio = 0 "
                  "there too; the engine mismatch shows in "
                  "sampling/importance_sampling_ratio/*, not in the clip ratio.")
