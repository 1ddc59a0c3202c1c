"""Models. ``TinyPolicy`` is the original demo's: embedding -> LayerNorm -> linear head.

It sees no context: the logits at a position depend only on the token at that position
(notebook 00 points this out; the toy task of notebook 06 uses a causal model instead).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import Config


class TinyPolicy(nn.Module):
    """The demo's policy. Layers are created in the demo's order, so the same
    ``torch.manual_seed`` gives the same weights."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.ln = nn.LayerNorm(cfg.hidden_size)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids (B, T) -> logits (B, T, V)."""
        x = self.embed(input_ids)  # (B, T, H)
        x = self.ln(x)
        logits = self.head(x)  # (B, T, V)
        return logits

    def log_prob(
        self, input_ids: torch.Tensor, actions: torch.Tensor, memory_efficient: bool = False
    ) -> torch.Tensor:
        """log pi(actions | input_ids) per position, (B, T).

        Like the demo, the log-prob at position t is read from the logits at the same
        position t (no shift: the model sees no context). The default path is the demo's
        ``log_softmax`` + ``gather`` (bit-for-bit parity); ``memory_efficient=True`` uses
        ``rlviz.selective_log_prob``, which never builds a second (B, T, V) tensor.
        """
        logits = self.forward(input_ids)  # (B, T, V)
        if memory_efficient:
            from .losses.logprob import selective_log_prob

            return selective_log_prob(logits, actions)
        logprobs = logits.log_softmax(dim=-1)  # (B, T, V)
        return logprobs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # (B, T)
