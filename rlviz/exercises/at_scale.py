"""Self-checks for notebook 08: the naive factor, a micro-batch loss with the global
normaliser, and three predictions (panel, TRL's bnpo, the scaling table)."""

from __future__ import annotations

import torch

from ..experiments.at_scale import scaling_table, weights_data
from ..losses.aggregation import AGG_MODES, aggregate
from ..losses.microbatch import chunk_rows, loss_normaliser, naive_factor
from ..masks import mask_from_lengths
from .common import ExerciseError, call_reader, check_close, passed

__all__ = ["check_global_micro_loss", "check_naive_factor", "check_predictions"]

FACTOR_CASES = [  # (lengths, n_micro): unequal lengths, an empty response, an empty chunk
    ([6, 5, 1, 1], 2),
    ([6, 0, 1, 1, 4, 4], 3),
    ([0, 0, 3, 2, 5, 1, 2, 2], 4),
]
MAX_LEN = 6


def check_naive_factor(fn) -> str:
    """``fn(lengths, mode, n_micro)`` -> list of B numbers: for each response, its tokens'
    naive weight divided by their single-batch weight, when the batch is cut into
    ``n_micro`` micro-batches of consecutive rows (1 for an empty response). Checked against
    ``rlviz.losses.microbatch.naive_factor`` for every mode."""
    for lengths, n_micro in FACTOR_CASES:
        mask = mask_from_lengths(torch.tensor(lengths), MAX_LEN, dtype=torch.float64)
        for mode in AGG_MODES:
            what = f"lengths {lengths}, mode {mode!r}, n_micro {n_micro}"
            got = call_reader(fn, what, list(lengths), mode, n_micro)
            expected = naive_factor(mask, mode, n_micro=n_micro)[:, 0]  # (B,)
            hint = {
                "token-mean": "Compare the chunk's token count N_k with N / K.",
                "seq-mean-token-sum-norm": "Every chunk has b rows and the same max_len.",
            }.get(mode, "Count the non-empty responses B'_k of each chunk, not its rows.")
            check_close(what, got, expected, atol=1e-9, hint=hint)
    return passed("your factors N/(K N_k), B'/(K B'_k) and 1 match for every mode.")


LOSS_CASES = [  # (lengths, n_ranks, n_micro)
    ([6, 5, 1, 1, 2, 4, 6, 3], 2, 2),
    ([6, 0, 1, 1, 0, 0, 6, 3], 1, 4),
    ([0, 0, 3, 2, 5, 1, 2, 2], 4, 1),
]


def check_global_micro_loss(fn) -> str:
    """``fn(per_token_loss, mask, mode, global_count, n_ranks)`` -> the scalar one
    micro-batch backpropagates, such that summing over a rank's micro-batches and averaging
    over ranks (as DDP does) gives ``rlviz.aggregate`` of the whole batch, loss and
    gradient. ``global_count`` is D of the whole batch (``loss_normaliser``)."""
    generator = torch.Generator().manual_seed(0)
    for lengths, n_ranks, n_micro in LOSS_CASES:
        mask = mask_from_lengths(torch.tensor(lengths), MAX_LEN, dtype=torch.float64)
        for mode in AGG_MODES:
            what = f"lengths {lengths}, {n_ranks} ranks x {n_micro} micro-batches, {mode!r}"
            loss = torch.randn(mask.shape, generator=generator, dtype=torch.float64)
            loss.requires_grad_(True)
            count = loss_normaliser(mask, mode)
            rank_sums = []
            for rank in chunk_rows(len(lengths), n_ranks, n_micro):
                parts = [call_reader(fn, what, loss[rows], mask[rows], mode, count, n_ranks)
                         for rows in rank]
                if not all(isinstance(p, torch.Tensor) and p.dim() == 0 for p in parts):
                    raise ExerciseError(f"{what}: return a 0-dim tensor (keep the graph)")
                rank_sums.append(torch.stack(parts).sum())
            total = torch.stack(rank_sums).mean()
            (grad,) = torch.autograd.grad(total, loss)
            expected_loss = aggregate(loss, mask, mode)
            (expected_grad,) = torch.autograd.grad(expected_loss, loss)
            hint = ("DDP divides by the number of ranks: multiply by n_ranks. Divide by the "
                    "global count, never by the micro-batch's own.")
            check_close(what + " (loss)", total.detach(), expected_loss.detach(), atol=1e-10,
                        hint=hint)
            check_close(what + " (gradient)", grad, expected_grad, atol=1e-10, hint=hint)
    return passed("summed over micro-batches and averaged over ranks, your micro-batch loss "
                  "is the single-batch loss, with the same gradient, for every mode.")


ONE_ROW_PLANS = ((64, 256, 16384), (256, 64, 16384))  # one response per micro-batch, 16k


def check_predictions(largest_factor, bnpo_mode, memory_ratio) -> str:
    """Exercise 3 of notebook 08: (a) ``largest_factor``, the largest naive token-mean
    factor in the panel at spread 1 with 2 micro-batches; (b) ``bnpo_mode``, the rlviz
    ``loss_agg_mode`` whose gradient TRL's ``"bnpo"`` follows with one response per
    micro-batch; (c) ``memory_ratio``, memory per rank at 256 ranks over that at 64 ranks,
    one response per micro-batch at 16k tokens (the scaling table's two such rows)."""
    expected_factor = weights_data(n_micro=2, spread=1.0, mode="token-mean")["largest factor"]
    check_close("(a) largest token-mean factor", largest_factor, expected_factor, atol=0.01,
                hint="N / (K N_k): all 112 tokens over 2 micro-batches, the second holding 19.")
    if bnpo_mode not in AGG_MODES:
        raise ExerciseError(f"(b) name one of rlviz's modes {list(AGG_MODES)}, "
                            f"got {bnpo_mode!r}")
    if bnpo_mode != "seq-mean-token-mean":
        raise ExerciseError(f"(b) {bnpo_mode!r} is not it: a token-mean over one response is "
                            "that response's mean, and the micro-batches are then averaged.")
    small, large = (row["memory GB per rank"] for row in scaling_table(ONE_ROW_PLANS))
    check_close("(c) memory per rank, 256 ranks / 64 ranks", memory_ratio, large / small,
                atol=0.01, hint="Sharding divides the 16 bytes per parameter by the ranks; "
                                "the activations of one micro-batch are not divided.")
    return passed(f"(a) {expected_factor:.2f}, (b) seq-mean-token-mean, (c) x{large / small:.2f}:"
                  " with one response per micro-batch the activations, not the sharded "
                  "states, fill a rank's memory.")
