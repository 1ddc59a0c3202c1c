"""A tiny causal transformer policy with a value head, for the toy tasks of notebook 06.

Unlike the demo's ``TinyPolicy`` (which sees one token at a time), this model reads its
whole context: a pre-LayerNorm transformer (d = 64, 4 heads; 2 layers by default, about
100k parameters; the trainer builds 1 layer with column positions, 53k) with learned
positions, causal self-attention, a language-model head and a scalar value head on the
same trunk (the value head is trained by ``"ppo_gae"`` only).

Conventions (the same as Hugging Face causal LMs, TRL and verl):

* the logits at position t score the token at position t + 1, so the log-prob of token
  ``seq[:, t]`` is read from ``logits[:, t - 1]``;
* the value at position t - 1 is V(s_t), the value of the state before token t is chosen;
* sampling and scoring divide the logits by the same temperature.

Prompts are left-padded; ``attention_mask`` (1 on real tokens) hides the padding. Where
a token's position comes from is a choice, ``positions``:

* ``"real"`` (the default): positions count real tokens only, so a padded prompt is
  encoded like an unpadded one (Hugging Face's ``position_ids`` for padded batches);
* ``"column"``: a position is the column index in the padded block (nanoGPT's
  ``arange``, and Hugging Face's when no ``position_ids`` are given). The prompt block
  has the task's fixed width P, so the separator always sits at position P - 1 and the
  answer's k-th token at P + k whatever the prompt's length: reversing a prompt becomes
  one fixed pattern (answer position P + k reads prompt position P - 2 - k; measured in
  benchmarks/bench_learning.py: fewer steps, and one layer suffices). The price:
  the same prompt padded to another width is another input, so the prompt block must
  keep its width (``Rollout.trimmed(keep_prompt=True)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .losses.logprob import selective_log_prob

POSITIONS = ("real", "column")  # where a token's position comes from (module docstring)
KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values (B, H, S, D)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with an optional key/value cache."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x, allowed, past=None):
        """x (B, S, d); allowed (B, 1, S, S_past + S) bool, True where a query may look."""
        b, s, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)  # 3 x (B, S, d)
        q, k, v = (z.view(b, s, self.n_heads, d // self.n_heads).transpose(1, 2)
                   for z in (q, k, v))  # (B, H, S, D)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, H, S_past + S, D)
            v = torch.cat([past[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, H, S, D)
        y = y.transpose(1, 2).reshape(b, s, d)  # (B, S, d)
        return self.out(y), (k, v)


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, x, allowed, past=None):
        attn_out, present = self.attn(self.ln1(x), allowed, past)
        x = x + attn_out
        x = x + self.mlp(self.ln2(x))
        return x, present


class CausalPolicy(nn.Module):
    """Causal transformer policy pi(token | context) with a value head V(context).

    ``forward(input_ids, attention_mask)`` returns ``(logits, values)`` of shapes
    ``(B, S, V)`` and ``(B, S)``; ``response_scores`` reads the log-probs of a response
    with the shift done right. ``step`` runs one cached decoding step.
    """

    def __init__(self, vocab_size: int = 14, d_model: int = 64, n_heads: int = 4,
                 n_layers: int = 2, max_positions: int = 32, positions: str = "real"):
        super().__init__()
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        self.positions = positions
        self.vocab_size = vocab_size
        self.max_positions = max_positions
        self.tok_embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = nn.Embedding(max_positions, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size)
        self.value_head = nn.Linear(d_model, 1)
        # PyTorch's default initialisation (embeddings N(0, 1)): distinct positions from the
        # start. GPT-2's std-0.02 init was measured ~2x slower to learn the toy tasks.

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ---- the trunk -------------------------------------------------------------
    def _trunk(self, input_ids, positions, allowed, past=None):
        if int(positions.max()) >= self.max_positions:
            raise ValueError(f"sequence longer than max_positions={self.max_positions}")
        x = self.tok_embed(input_ids) + self.pos_embed(positions)  # (B, S, d)
        presents = []
        for i, block in enumerate(self.blocks):
            x, present = block(x, allowed, None if past is None else past[i])
            presents.append(present)
        h = self.ln_f(x)  # (B, S, d)
        logits = self.lm_head(h)  # (B, S, V)
        values = self.value_head(h).squeeze(-1)  # (B, S)
        return logits, values, presents

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """input_ids (B, S), attention_mask (B, S) of 0/1 -> logits (B, S, V), values (B, S)."""
        logits, values, _ = self.prefill(input_ids, attention_mask)
        return logits, values

    def prefill(self, input_ids, attention_mask=None):
        """Full causal pass that also returns the key/value cache for ``step``."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (B, S), got shape {tuple(input_ids.shape)}")
        b, s = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones(b, s, dtype=torch.long, device=input_ids.device)
        keep = attention_mask.bool()  # (B, S)
        if self.positions == "real":
            positions = (keep.long().cumsum(-1) - 1).clamp_min(0)  # (B, S), real tokens only
        else:
            positions = torch.arange(s, device=input_ids.device).expand(b, s)  # (B, S) columns
        causal = torch.ones(s, s, dtype=torch.bool, device=input_ids.device).tril()  # (S, S)
        eye = torch.eye(s, dtype=torch.bool, device=input_ids.device)  # (S, S)
        # query i sees key j <= i if j is real; always itself (no all-masked rows at pads)
        allowed = (causal & keep[:, None, :]) | eye  # (B, S, S)
        return self._trunk(input_ids, positions, allowed.unsqueeze(1))

    @property
    def padding_counts(self) -> bool:
        """Whether padding columns count as positions (``positions="column"``): then a
        prompt block must keep its width (``Rollout.trimmed(keep_prompt=...)``)."""
        return self.positions == "column"

    def first_response_position(self, prompt_mask: torch.Tensor) -> torch.Tensor:
        """(B, P) prompt mask -> (B,) the position of the first response token: the count
        of real prompt tokens (``positions="real"``) or the block's width P ("column")."""
        if self.positions == "real":
            return prompt_mask.long().sum(dim=1)  # (B,)
        return torch.full((prompt_mask.shape[0],), prompt_mask.shape[1],
                          dtype=torch.long, device=prompt_mask.device)  # (B,)

    def step(self, tokens, positions, key_mask, past):
        """One cached decoding step.

        tokens (B,), positions (B,), key_mask (B, S_past + 1) bool for the cached keys
        plus the new one -> logits (B, V), values (B,), updated cache.
        """
        allowed = key_mask[:, None, None, :]  # (B, 1, 1, S_past + 1)
        logits, values, presents = self._trunk(tokens[:, None], positions[:, None], allowed, past)
        return logits[:, -1], values[:, -1], presents

    # ---- scoring responses ------------------------------------------------------
    def response_scores(self, sequences, attention_mask, prompt_width: int,
                        temperature: float = 1.0, group_size: int = 1):
        """Log-probs, values and logits of the response part of ``sequences``.

        sequences (B, P + R): left-padded prompt block of width P = ``prompt_width``,
        then R response tokens. Returns

        * ``logp``   (B, R): log pi(seq[:, P + t] | seq[:, :P + t]) at ``temperature``,
        * ``values`` (B, R): V of the state before each response token,
        * ``logits`` (B, R, V): the temperature-scaled logits that score them.

        The shift: the token at position P + t is scored by the logits at P + t - 1.

        ``group_size`` G > 1 says rows g*G .. g*G+G-1 share one prompt (a GRPO group): the
        prompt is then run once per group and its keys and values are shared by the G
        responses (``_grouped_logits``): the same numbers up to float rounding, for about
        40% less work on the toy tasks (7 of ~15 positions are prompt).
        """
        if group_size > 1 and rows_share_prompts(sequences[:, :prompt_width],
                                                 attention_mask[:, :prompt_width], group_size):
            logits_all, values_all = self._grouped_logits(
                sequences, attention_mask, prompt_width, group_size)  # (B, R + 1, V), (B, R + 1)
            first = 0  # kept columns: the last prompt position, then the response
        else:
            logits_all, values_all = self.forward(sequences, attention_mask)  # (B, S, V), (B, S)
            first = prompt_width - 1
        logits = logits_all[:, first:-1] / temperature  # (B, R, V)
        tokens = sequences[:, prompt_width:]  # (B, R)
        logp = selective_log_prob(logits, tokens)  # (B, R)
        values = values_all[:, first:-1]  # (B, R)
        return logp, values, logits

    def _grouped_logits(self, sequences, attention_mask, prompt_width: int, group_size: int):
        """Logits and values at the last prompt position and every response position,
        (B, 1 + R, V) and (B, 1 + R), with each group's prompt run once.

        The prompt block of the first row of each group goes through ``prefill_groups``;
        then the response tokens run as one block that attends to the prompt's real keys
        and causally to each other."""
        b, s = sequences.shape
        last_logits, last_values, cache = self.prefill_groups(
            sequences[:, :prompt_width], attention_mask[:, :prompt_width], group_size)
        r = s - prompt_width
        keep = attention_mask[:, :prompt_width].bool()  # (B, P)
        start = self.first_response_position(keep)  # (B,)
        positions = start[:, None] + torch.arange(r, device=sequences.device)  # (B, R)
        causal = torch.ones(r, r, dtype=torch.bool, device=sequences.device).tril()  # (R, R)
        allowed = torch.cat([keep[:, None, :].expand(b, r, prompt_width),
                             causal.expand(b, r, r)], dim=2)  # (B, R, P + R)
        logits_r, values_r, _ = self._trunk(sequences[:, prompt_width:], positions,
                                            allowed.unsqueeze(1), cache)  # (B, R, V), (B, R)
        return (torch.cat([last_logits[:, None], logits_r], dim=1),
                torch.cat([last_values[:, None], values_r], dim=1))

    def prefill_groups(self, prompt_ids, prompt_mask, group_size: int):
        """``prefill`` for rows g*G .. g*G+G-1 that share one prompt (a GRPO group): each
        group's prompt runs once and its key/value cache is repeated G times
        (``repeat_interleave``: gradients from the G rows add up on the one prompt pass, as
        they would on G copies). Returns the logits and value at the last prompt position,
        (B, V) and (B,), and the cache, per layer (B, H, P, D)."""
        logits, values, cache = self.prefill(prompt_ids[::group_size],
                                             prompt_mask[::group_size])  # (B/G, P, V), (B/G, P)
        cache = [(k.repeat_interleave(group_size, dim=0), v.repeat_interleave(group_size, dim=0))
                 for k, v in cache]  # per layer (B, H, P, D)
        return (logits[:, -1].repeat_interleave(group_size, dim=0),  # (B, V)
                values[:, -1].repeat_interleave(group_size, dim=0), cache)  # (B,)


def rows_share_prompts(prompt_ids, prompt_mask, group_size: int) -> bool:
    """Whether the B rows of a (B, P) prompt block form B/G groups of G equal rows."""
    b, p = prompt_ids.shape
    if b % group_size:
        return False
    prompts = prompt_ids.reshape(b // group_size, group_size, p)  # (B/G, G, P)
    masks = prompt_mask.reshape(b // group_size, group_size, p)  # (B/G, G, P)
    return bool((prompts == prompts[:, :1]).all()) and bool((masks == masks[:, :1]).all())
