"""Notebook 08: token weights when a batch is split into micro-batches and ranks, and the
scaling of a real run on paper. Pure torch/Python; the math is ``rlviz.losses.microbatch``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..algorithms import get_spec
from ..algorithms.hparams import HParams
from ..algorithms.library import ACTOR, TRL_AGGREGATES_AS
from ..losses.aggregation import AGG_MODES
from ..losses.checks import check_number, check_one_of, check_positive_int
from ..losses.microbatch import accumulated_loss
from ..masks import mask_from_lengths

__all__ = ["AGG_MODES", "LIBRARY_NORMALISERS", "MICRO_OPTIONS", "ModelShape",
           "library_table_markdown", "recipe_normalisers", "run_plan", "scaling_table",
           "scaling_table_markdown", "spread_lengths", "token_weights", "weights_data"]

BATCH, MAX_LEN = 8, 32  # the panel's batch: 8 responses padded to 32 tokens
# relative lengths, longest first, so that contiguous micro-batches differ (the last is empty
# at full spread)
LENGTH_PROFILE = (1.0, 0.9, 0.55, 0.45, 0.3, 0.2, 0.08, 0.0)
MICRO_OPTIONS = (1, 2, 4, 8)  # the micro-batch counts that split 8 rows evenly


def spread_lengths(spread: float, batch: int = BATCH, max_len: int = MAX_LEN) -> list[int]:
    """Lengths of the panel's responses: all max_len / 2 at ``spread`` 0, the profile
    (max_len ... 0, longest first) at 1, in between linearly, rounded."""
    spread = check_number(spread, "spread", 0.0, 1.0, low_open=False, high_open=False)
    if batch != len(LENGTH_PROFILE):
        raise ValueError(f"batch must be {len(LENGTH_PROFILE)}, got {batch}")
    middle = max_len / 2
    return [round(middle + spread * (max_len * p - middle)) for p in LENGTH_PROFILE]


def token_weights(lengths, mode: str, n_micro: int = 1, n_ranks: int = 1,
                  normaliser: str = "global", max_len: int = MAX_LEN) -> torch.Tensor:
    """(B, max_len) weight d total / d l_it of every token, by autograd through
    ``rlviz.losses.microbatch.accumulated_loss`` (float64)."""
    mask = mask_from_lengths(torch.tensor(lengths), max_len, dtype=torch.float64)  # (B, T)
    per_token = torch.zeros_like(mask, requires_grad=True)  # (B, T) values do not matter
    total = accumulated_loss(per_token, mask, mode, n_ranks, n_micro, normaliser)
    (grad,) = torch.autograd.grad(total, per_token)
    return grad  # (B, T)


def weights_data(n_micro: int = 4, spread: float = 1.0, mode: str = "token-mean") -> dict:
    """What the key picture and the panel draw for 8 responses: the per-token weight of each
    response with one batch (= the global normaliser) and with the naive normaliser over
    ``n_micro`` micro-batches (autograd, one backward for both), their ratio (the naive
    factor, measured), the micro-batch of each response, and the extreme factors.
    Weights are in units of 1 / (B max_len) (Dr. GRPO's constant weight)."""
    n_micro = check_positive_int(n_micro, "n_micro")
    check_one_of(mode, "mode", AGG_MODES)
    lengths = spread_lengths(spread)
    mask = mask_from_lengths(torch.tensor(lengths), MAX_LEN, dtype=torch.float64)  # (B, T)
    per_token = torch.zeros(2, BATCH, MAX_LEN, dtype=torch.float64,
                            requires_grad=True)  # (2, B, T): global, naive
    total = (accumulated_loss(per_token[0], mask, mode, 1, n_micro, "global")
             + accumulated_loss(per_token[1], mask, mode, 1, n_micro, "naive"))
    (grad,) = torch.autograd.grad(total, per_token)  # (2, B, T)
    first = (grad[:, :, 0] * BATCH * MAX_LEN).tolist()  # first token (on the mask if L > 0)
    present = [i for i, n in enumerate(lengths) if n > 0]
    factor = [first[1][i] / first[0][i] if i in present else 1.0 for i in range(BATCH)]
    rows = BATCH // n_micro
    return {
        "mode": mode, "n_micro": n_micro, "spread": spread, "lengths": lengths,
        "micro_of": [i // rows for i in range(BATCH)],
        "global": [first[0][i] if i in present else 0.0 for i in range(BATCH)],
        "naive": [first[1][i] if i in present else 0.0 for i in range(BATCH)],
        "factor": factor,
        "largest factor": max(factor[i] for i in present) if present else 1.0,
        "smallest factor": min(factor[i] for i in present) if present else 1.0,
    }


# ---------------------------------------------------------------------------------------
# scaling on paper
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelShape:
    """The model the memory estimate assumes: a 7B decoder with Qwen2.5-7B's shape (28
    layers, hidden 3584, vocabulary 152064), its parameter count rounded to 7e9."""

    params: float = 7e9
    layers: int = 28
    hidden: int = 3584
    vocab: int = 152064


GB = 1e9


def run_plan(n_ranks: int = 64, n_micro: int = 256, seq_len: int = 16384,
             prompts: int = 1024, responses_per_prompt: int = 16,
             response_fraction: float = 0.5, length_cv: float = 0.6,
             model: ModelShape = ModelShape()) -> dict:
    """One optimizer step of a GRPO run on paper: the normaliser, the all-reduces and the
    memory per rank, for ``n_ranks`` data-parallel ranks, ``n_micro`` micro-batches per rank
    and sequences (prompt + response) padded to ``seq_len`` tokens.

    Assumptions (rough, stated so a reader can change them):

    * the whole batch (``prompts`` x ``responses_per_prompt`` responses) is one optimizer
      step, split evenly: ``rows_per_micro`` = B / (R M) responses per micro-batch;
    * response lengths are i.i.d. with mean ``response_fraction * seq_len`` tokens and
      coefficient of variation ``length_cv``. The token count of b responses then has
      relative std ``length_cv / sqrt(b)``: the typical size of |f_k - 1|, the naive
      token-mean factor (for b = 1 naive token-mean is seq-mean-token-mean exactly);
    * memory: parameters and gradients in bf16 (2 + 2 bytes), fp32 master weights and
      Adam's two moments (4 + 4 + 4 bytes), 16 bytes per parameter, fully sharded over the
      ranks (FSDP / ZeRO-3); activations of one micro-batch padded to ``seq_len``: one bf16
      hidden state per layer (activation checkpointing, 2 * layers * hidden bytes per token)
      plus one fp32 copy of the logits (4 * vocab bytes per token). Buffers, fragmentation,
      the prompt's share and the reference / rollout models are left out: a lower bound;
    * all-reduces per optimizer step: DDP with ``no_sync`` all-reduces the bf16 gradient
      once (a ring sends 2 (R - 1) / R of its 2 * params bytes per rank); the global
      normaliser adds one all-reduce of one number per loss term (8 bytes).
    """
    n_ranks = check_positive_int(n_ranks, "n_ranks")
    n_micro = check_positive_int(n_micro, "n_micro")
    seq_len = check_positive_int(seq_len, "seq_len")
    responses = check_positive_int(prompts, "prompts") * check_positive_int(
        responses_per_prompt, "responses_per_prompt")
    response_fraction = check_number(response_fraction, "response_fraction", 0.0, 1.0,
                                      high_open=False)
    length_cv = check_number(length_cv, "length_cv", 0.0, low_open=False)
    if responses % (n_ranks * n_micro):
        raise ValueError(f"n_ranks * n_micro = {n_ranks * n_micro} must divide the batch of "
                         f"{responses} responses")
    rows = responses // (n_ranks * n_micro)
    mean_len = response_fraction * seq_len
    tokens_per_micro = rows * seq_len
    state_bytes = 16 * model.params / n_ranks
    activation_bytes = tokens_per_micro * (2 * model.layers * model.hidden + 4 * model.vocab)
    grad_bytes = 2 * model.params
    return {
        "ranks": n_ranks,
        "micro-batches per rank": n_micro,
        "seq_len": seq_len,
        "responses": responses,
        "rows per micro-batch": rows,
        "tokens per micro-batch": tokens_per_micro,
        "global token count N": responses * mean_len,
        "micro-batch token count N_k": rows * mean_len,
        "naive factor spread": length_cv / math.sqrt(rows),
        "count all-reduces per step": 1,
        "count bytes per step": 8,
        "gradient all-reduces per step": 1,
        "gradient GB sent per rank": 2 * (n_ranks - 1) / n_ranks * grad_bytes / GB,
        "state GB per rank": state_bytes / GB,
        "activation GB per micro-batch": activation_bytes / GB,
        "memory GB per rank": (state_bytes + activation_bytes) / GB,
    }


DEFAULT_PLANS = ((64, 16, 4096), (64, 64, 16384), (64, 256, 16384), (8, 2048, 16384),
                 (256, 64, 16384), (64, 256, 32768))


def scaling_table(plans=DEFAULT_PLANS, **kwargs) -> list[dict]:
    """``run_plan(n_ranks, n_micro, seq_len, **kwargs)`` for each (R, M, seq_len)."""
    return [run_plan(n_ranks, n_micro, seq_len, **kwargs) for n_ranks, n_micro, seq_len in plans]


TABLE_COLUMNS = (
    ("ranks", "R", "{:d}"), ("micro-batches per rank", "M", "{:d}"),
    ("seq_len", "seq len", "{:d}"), ("rows per micro-batch", "rows / micro", "{:d}"),
    ("global token count N", "N (global)", "{:.3g}"),
    ("micro-batch token count N_k", "N_k (micro)", "{:.3g}"),
    ("naive factor spread", "naive spread", "{:.2f}"),
    ("gradient GB sent per rank", "grad GB sent", "{:.1f}"),
    ("state GB per rank", "states GB", "{:.2f}"),
    ("activation GB per micro-batch", "activations GB", "{:.1f}"),
    ("memory GB per rank", "total GB", "{:.1f}"),
)


def scaling_table_markdown(plans=DEFAULT_PLANS, **kwargs) -> str:
    """The table of ``scaling_table`` as markdown, numbers rounded."""
    header = "| " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * len(TABLE_COLUMNS)]
    for row in scaling_table(plans, **kwargs):
        lines.append("| " + " | ".join(fmt.format(row[key]) for key, _, fmt in TABLE_COLUMNS)
                     + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# what TRL and verl divide each micro-batch by (read from their source, versions pinned)
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LibraryNormaliser:
    """One library setting: what each micro-batch's loss is divided by, and the factor
    f_k its per-token weights get relative to one batch (the library's own single-batch
    loss). ``source``: file:line in the pinned release and the line itself."""

    library: str
    version: str
    setting: str
    mode: str  # the rlviz aggregation mode it computes
    divides_by: str
    factor: str
    source: str


LIBRARY_NORMALISERS = (
    LibraryNormaliser(
        "TRL", "1.16.0", 'loss_type="grpo"', "seq-mean-token-mean",
        "its b rows (empty ones included), then gradient_accumulation_steps",
        "1 (every micro-batch has b rows; TRL counts empty responses in B)",
        "trainer/grpo_trainer.py:3154 `loss = ((per_token_loss * mask).sum(-1) / "
        "mask.sum(-1).clamp(min=1.0)).mean()`; :3157 `loss = loss / normalizer`"),
    LibraryNormaliser(
        "TRL", "1.16.0", 'loss_type="bnpo"', "token-mean",
        "its own token count N_k, then gradient_accumulation_steps",
        "N / (K N_k): naive",
        "trainer/grpo_trainer.py:3159 `loss = (per_token_loss * mask).sum() / "
        "mask.sum().clamp(min=1.0)`"),
    LibraryNormaliser(
        "TRL", "1.16.0", 'loss_type="dapo" (default)', "token-mean",
        "the token count of the generation batch gathered over processes, / num_processes "
        "x gradient_accumulation_steps / steps_per_generation",
        "1 when steps_per_generation = gradient_accumulation_steps (the default)",
        "trainer/grpo_trainer.py:2498 `num_items_in_batch = "
        "self.accelerator.gather(loss_mask.sum()).sum()`; :3170 `normalizer = "
        "inputs[\"num_items_in_batch\"].clamp(min=1.0) / self.accelerator.num_processes`"),
    LibraryNormaliser(
        "TRL", "1.16.0", 'loss_type="dr_grpo"', "seq-mean-token-sum-norm",
        "b x max_completion_length, then gradient_accumulation_steps",
        "1 (a constant)",
        "trainer/grpo_trainer.py:3164 `loss = (per_token_loss * mask).sum() / "
        "(per_token_loss.size(0) * self.max_completion_length)`"),
    LibraryNormaliser(
        "verl", "0.9.1", 'loss_agg_mode="token-mean" (default)', "token-mean",
        "the mini-batch's token count all-reduced over the dp group, x dp_size; "
        "micro-batch losses are summed",
        "1",
        "trainer/ppo/core_algos.py:1175 `loss = verl_F.masked_sum(loss_mat, loss_mask) / "
        "batch_num_tokens * dp_size`; workers/engine/fsdp/transformer_impl.py:731 "
        "`torch.distributed.all_reduce(batch_num_tokens, ...)`"),
    LibraryNormaliser(
        "verl", "0.9.1", 'loss_agg_mode="seq-mean-token-mean" / "seq-mean-token-sum"',
        "seq-mean-token-mean / seq-mean-token-sum",
        "global_batch_size = ppo_mini_batch_size x rollout.n, x dp_size",
        "1 (counts every response, empty ones too, when dp_size > 1)",
        "trainer/ppo/core_algos.py:1202 `loss = verl_F.masked_sum(seq_losses, seq_mask) / "
        "global_batch_size * dp_size`; trainer/ppo/ray_trainer.py:1362 "
        "`global_batch_size=ppo_mini_batch_size`"),
    LibraryNormaliser(
        "verl", "0.9.1", 'loss_agg_mode="seq-mean-token-sum-norm"', "seq-mean-token-sum-norm",
        "global_batch_size x dp_size, then loss_scale_factor (None: the micro-batch's "
        "padded width loss_mask.shape[-1])",
        "1 with loss_scale_factor set; max_len / T_k if None and micro-batches are padded "
        "to different widths T_k",
        "trainer/ppo/core_algos.py:1190-1193 `if loss_scale_factor is None: horizon = "
        "loss_mask.shape[-1]` ... `loss /= loss_scale_factor`"),
)


def library_table_markdown() -> str:
    """``LIBRARY_NORMALISERS`` as a markdown table."""
    lines = ["| library | setting | rlviz mode | each micro-batch divides by | naive factor f_k "
             "| source (file:line in the release) |", "|---|---|---|---|---|---|"]
    for row in LIBRARY_NORMALISERS:
        lines.append(f"| {row.library} {row.version} | `{row.setting}` | {row.mode} | "
                     f"{row.divides_by} | {row.factor} | {row.source} |")
    return "\n".join(lines)


def library_normaliser(library: str, setting: str) -> LibraryNormaliser:
    """The row of ``LIBRARY_NORMALISERS`` for ``library`` ("TRL" or "verl") whose setting
    names ``setting`` (e.g. ``'loss_type="dapo"'``); ``KeyError`` if there is none."""
    for row in LIBRARY_NORMALISERS:
        if row.library == library and setting in row.setting:
            return row
    raise KeyError(f"no {library} row for {setting} in LIBRARY_NORMALISERS")


def recipe_normalisers(algos) -> list[dict]:
    """For each algorithm of ``rlviz.LOSS_FN_REGISTRY``: its aggregation mode, the TRL
    ``loss_type`` and verl ``loss_agg_mode`` its library recipes name, and the naive
    factor each of those settings gives (from ``LIBRARY_NORMALISERS``)."""
    rows = []
    for name in algos:
        spec = get_spec(name)
        mode = spec.defaults.get("loss_agg_mode", HParams().loss_agg_mode)
        row = {"algo": name, "mode": mode, "trl": "-", "trl factor": "not in TRL",
               "verl": "-", "verl factor": "not in verl"}
        if spec.trl is not None and spec.trl.supported:
            loss_type = spec.trl.settings["loss_type"]
            setting = f'loss_type="{loss_type}"'
            same = f'loss_type="{TRL_AGGREGATES_AS.get(loss_type, loss_type)}"'
            row["trl"], row["trl factor"] = setting, library_normaliser("TRL", same).factor
        if spec.verl is not None and spec.verl.supported:
            verl_mode = spec.verl.settings.get(f"{ACTOR}.loss_agg_mode", mode)
            setting = f'loss_agg_mode="{verl_mode}"'
            row["verl"], row["verl factor"] = setting, library_normaliser("verl", setting).factor
        rows.append(row)
    return rows
