"""A simulated rollout engine: the policy that samples is not quite the one that trains.

Real trainers sample with a separate inference engine (vLLM, SGLang) and train with
another (FSDP, Megatron). Even with the same weights the two compute different
probabilities, and asynchronous pipelines add staleness. ``RolloutEngine`` reproduces both
on the toy policy, honestly and cheaply:

* ``dtype="bfloat16"``: the engine runs a bf16 copy of the trainer's weights, so its
  logits are rounded to bf16 (the trainer stays in float32);
* ``top_p < 1`` / ``top_k > 0``: the engine samples from a truncated, renormalised
  distribution and reports those log-probs (vLLM ``processed_logprobs``);
* ``staleness = k``: the engine's weights are those the trainer had k training steps ago.

``collect`` returns a ``Rollout`` whose ``old_logp`` are the engine's log-probs
(pi_rollout). ``recompute_old_logp`` gives the trainer's own (pi_old), the denominator of
PPO's ratio in verl's decoupled mode; ``rlviz.losses.is_correction_weights`` turns the two
into TIS / MIS weights.
"""

from __future__ import annotations

import copy
from collections import deque

import torch

from .causal_policy import CausalPolicy
from .rollout import Rollout, collect_rollout

ENGINE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class RolloutEngine:
    """Samples for the trainer with its own copy of the weights (see the module docstring).

    Call ``sync(policy)`` once per training step, before ``collect``: it records the
    trainer's weights and loads those of ``staleness`` steps ago into the engine.
    """

    def __init__(self, policy: CausalPolicy, dtype: str = "float32", top_p: float = 1.0,
                 top_k: int = 0, staleness: int = 0):
        if dtype not in ENGINE_DTYPES:
            raise ValueError(f"Unknown dtype: {dtype!r}. Valid values: "
                             + ", ".join(repr(d) for d in ENGINE_DTYPES))
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"top_k must be an int >= 0, got {top_k!r}")
        if isinstance(staleness, bool) or not isinstance(staleness, int) or staleness < 0:
            raise ValueError(f"staleness must be an int >= 0, got {staleness!r}")
        self.dtype, self.top_p, self.top_k, self.staleness = dtype, top_p, top_k, staleness
        self.model = copy.deepcopy(policy).to(ENGINE_DTYPES[dtype]).eval()
        self.model.requires_grad_(False)
        self._history: deque = deque(maxlen=staleness + 1)  # trainer states, oldest first

    def sync(self, policy: CausalPolicy) -> None:
        """Record the trainer's current weights; the engine takes those of ``staleness``
        syncs ago (the oldest recorded while fewer have been seen)."""
        self._history.append({k: v.detach().clone() for k, v in policy.state_dict().items()})
        self.model.load_state_dict(self._history[0])  # cast to the engine's dtype

    @torch.no_grad()
    def collect(self, reference: CausalPolicy, task, num_prompts: int, group_size: int,
                temperature: float = 1.0, generator: torch.Generator | None = None,
                prompts: list | None = None) -> Rollout:
        """``collect_rollout`` with the engine's model and sampler; ``old_logp`` is
        log pi_rollout."""
        return collect_rollout(self.model, reference, task, num_prompts, group_size,
                               temperature, generator, prompts=prompts, top_p=self.top_p,
                               top_k=self.top_k)


@torch.no_grad()
def recompute_old_logp(policy: CausalPolicy, batch: Rollout) -> torch.Tensor:
    """log pi_old of the batch's tokens by a trainer forward pass, (B, R), 0 off the mask."""
    logp, _, _ = policy.response_scores(batch.sequences, batch.attention_mask,
                                        batch.prompt_width, batch.temperature)  # (B, R)
    return logp * batch.response_mask
