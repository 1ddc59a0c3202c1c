"""One loss over a batch split into micro-batches (gradient accumulation) and ranks (data
parallelism): the naive local normaliser against the global one.

A trainer rarely backpropagates the whole batch at once. The global batch of B responses
(B, T) is cut into R rank shards, and each shard into M micro-batches: K = R * M chunks of
b = B / K rows each. Chunk k = r * M + j holds rows [k b, (k + 1) b) (rank r, step j). Every
micro-batch backpropagates its own loss; the gradients add up over the M accumulation steps
and DistributedDataParallel *averages* them over the R ranks. So the optimizer sees the
gradient of

    total = (1 / R) * sum_r sum_j loss_(r, j).

Write every aggregation mode of ``rlviz.aggregate`` as numerator / normaliser:

    mode                     numerator S (a sum over rows)     normaliser D (a count)
    token-mean               sum_it l_it m_it                  N  = sum_it m_it   (tokens)
    seq-mean-token-mean      sum_i (1 / L_i) sum_t l_it m_it   B' = #{i: L_i > 0} (responses)
    seq-mean-token-sum       sum_it l_it m_it                  B'
    seq-mean-token-sum-norm  sum_it l_it m_it                  B * max_len

Both S and D add up over rows, which is what makes the fix cheap.

**Naive** (local normaliser): micro-batch k backpropagates ``aggregate(chunk k) / M``, i.e.
S_k / (M D_k); after the 1 / R of DDP, total = (1 / K) sum_k S_k / D_k.
**Global**: D is computed for the whole global batch first (one all-reduce of the R local
counts), and micro-batch k backpropagates R * S_k / D (verl's ``* dp_size``); then
total = sum_k S_k / D = S / D, the single-batch loss, exactly.

**The factor.** A token's weight d total / d l_it is the global weight times

    f_k = D / (K D_k)      for a token of chunk k,

D_k being the chunk's own count. Per mode:

* token-mean: f_k = N / (K N_k) = (mean tokens per chunk) / (tokens in chunk k). Tokens of a
  micro-batch of short responses weigh more, tokens of a long one less.
* seq-mean-token-mean and seq-mean-token-sum: f_k = B' / (K B'_k), which is 1 unless the
  chunks hold different numbers of non-empty responses (every chunk has b rows).
* seq-mean-token-sum-norm: D_k = b * max_len, so f_k = B max_len / (K b max_len) = 1: the
  naive way is already exact, provided ``max_len`` is one constant for every chunk (a chunk
  padded to its own longest response would get f_k = max_len / T_k instead).

Masked positions have weight 0 either way; their factor is reported as 1. A chunk with no
tokens (or no non-empty response) contributes 0 in both ways: no NaN.
"""

from __future__ import annotations

import torch

from .aggregation import AGG_MODES, aggregate
from .checks import check_mask, check_one_of, check_positive_int, check_tensor

NORMALISERS = ("naive", "global")


def chunk_rows(batch_size: int, n_ranks: int = 1, n_micro: int = 1) -> list[list[slice]]:
    """Row slices of every micro-batch: ``chunk_rows(B, R, M)[r][j]`` is rank r's step j."""
    batch_size = check_positive_int(batch_size, "batch_size")
    n_ranks = check_positive_int(n_ranks, "n_ranks")
    n_micro = check_positive_int(n_micro, "n_micro")
    chunks = n_ranks * n_micro
    if batch_size % chunks:
        raise ValueError(f"n_micro = {n_micro} on n_ranks = {n_ranks} must split the batch "
                         f"of {batch_size} rows evenly: {batch_size} is not divisible by "
                         f"n_ranks * n_micro = {chunks}")
    rows = batch_size // chunks
    return [[slice((r * n_micro + j) * rows, (r * n_micro + j + 1) * rows)
             for j in range(n_micro)] for r in range(n_ranks)]


def loss_numerator(per_token_loss: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """S of the table above for these rows: the part of the loss that adds up over rows."""
    on = mask > 0  # (b, T)
    masked = torch.where(on, per_token_loss, torch.zeros_like(per_token_loss))  # (b, T)
    if mode == "seq-mean-token-mean":
        lengths = mask.sum(dim=1, keepdim=True).clamp_min(1.0)  # (b, 1)
        return (masked / lengths).sum()
    return masked.sum()


def loss_normaliser(mask: torch.Tensor, mode: str, max_len: int | None = None) -> torch.Tensor:
    """D of the table above for these rows, as a 0-dim tensor (not clamped, so the counts of
    several shards add up: all-reduce them with SUM to get the global D)."""
    mask = check_mask(mask, mask.shape if isinstance(mask, torch.Tensor) else (), "mask",
                      dtype=torch.float64)  # (b, T)
    check_one_of(mode, "mode", AGG_MODES)
    if mask.dim() != 2:
        raise ValueError(f"mask must have 2 dimensions (B, T), got shape {tuple(mask.shape)}")
    if mode == "token-mean":
        return mask.sum()
    if mode == "seq-mean-token-sum-norm":
        width = mask.shape[1] if max_len is None else check_positive_int(max_len, "max_len")
        return torch.tensor(float(mask.shape[0] * width), dtype=torch.float64)
    return (mask.sum(dim=1) > 0).sum().to(torch.float64)


def micro_batch_loss(per_token_loss: torch.Tensor, mask: torch.Tensor, mode: str,
                     normaliser: str, n_micro: int = 1, n_ranks: int = 1,
                     global_count: torch.Tensor | float | None = None,
                     max_len: int | None = None) -> torch.Tensor:
    """The scalar one micro-batch (b, T) backpropagates.

    ``"naive"``: ``aggregate(l, m, mode) / n_micro`` (the chunk's own normaliser; the
    ``/ n_micro`` is gradient accumulation's usual scaling, TRL's ``/ gradient_accumulation_steps``).
    ``"global"``: ``n_ranks * S / D`` with ``global_count`` = D of the whole global batch
    (``loss_normaliser`` of all rows, clamped to >= 1 here), as verl 0.9.1's ``agg_loss``
    does with ``batch_num_tokens`` / ``global_batch_size`` and ``dp_size``.
    """
    check_tensor(per_token_loss, "per_token_loss", ndim=2)
    mask = check_mask(mask, per_token_loss.shape, dtype=per_token_loss.dtype)  # (b, T)
    check_one_of(mode, "mode", AGG_MODES)
    check_one_of(normaliser, "normaliser", NORMALISERS)
    n_micro = check_positive_int(n_micro, "n_micro")
    n_ranks = check_positive_int(n_ranks, "n_ranks")
    if normaliser == "naive":
        return aggregate(per_token_loss, mask, mode, max_len) / n_micro
    if global_count is None:
        raise ValueError("global_count (D of the whole global batch, see loss_normaliser) is "
                         "required when normaliser='global'")
    count = torch.as_tensor(global_count, dtype=per_token_loss.dtype).clamp_min(1.0)
    return n_ranks * loss_numerator(per_token_loss, mask, mode) / count


def accumulated_loss(per_token_loss: torch.Tensor, mask: torch.Tensor, mode: str,
                     n_ranks: int = 1, n_micro: int = 1, normaliser: str = "global",
                     max_len: int | None = None) -> torch.Tensor:
    """The loss whose gradient the optimizer sees after M accumulation steps on R ranks
    averaged by DDP: (1 / R) sum_r sum_j ``micro_batch_loss`` of chunk (r, j), in one process.

    per_token_loss, mask: (B, T), B divisible by ``n_ranks * n_micro``.
    ``normaliser="global"`` equals ``aggregate(per_token_loss, mask, mode, max_len)`` and its
    gradient; ``"naive"`` scales token (i, t) of chunk k by f_k (module docstring).
    """
    check_tensor(per_token_loss, "per_token_loss", ndim=2)
    mask = check_mask(mask, per_token_loss.shape, dtype=per_token_loss.dtype)  # (B, T)
    check_one_of(mode, "mode", AGG_MODES)
    check_one_of(normaliser, "normaliser", NORMALISERS)
    chunks = chunk_rows(per_token_loss.shape[0], n_ranks, n_micro)
    global_count = loss_normaliser(mask, mode, max_len) if normaliser == "global" else None
    rank_sums = []
    for rank in chunks:
        steps = [micro_batch_loss(per_token_loss[rows], mask[rows], mode, normaliser,
                                  n_micro, n_ranks, global_count, max_len) for rows in rank]
        rank_sums.append(torch.stack(steps).sum())  # gradient accumulation adds
    return torch.stack(rank_sums).mean()  # DDP averages over ranks


def naive_factor(mask: torch.Tensor, mode: str, n_ranks: int = 1, n_micro: int = 1,
                 max_len: int | None = None) -> torch.Tensor:
    """(B, T) factor f_k = D / (K D_k) by which the naive weight of each token differs from
    the global one (1 on masked positions and in chunks with D_k = 0)."""
    mask = check_mask(mask, mask.shape if isinstance(mask, torch.Tensor) else (), "mask",
                      dtype=torch.float64)  # (B, T)
    check_one_of(mode, "mode", AGG_MODES)
    if mask.dim() != 2:
        raise ValueError(f"mask must have 2 dimensions (B, T), got shape {tuple(mask.shape)}")
    chunks = [rows for rank in chunk_rows(mask.shape[0], n_ranks, n_micro) for rows in rank]
    total = loss_normaliser(mask, mode, max_len)
    factor = torch.ones_like(mask)  # (B, T)
    for rows in chunks:
        own = loss_normaliser(mask[rows], mode, max_len)
        if own > 0:
            factor[rows] = torch.where(mask[rows] > 0, total / (len(chunks) * own),
                                       torch.ones_like(mask[rows]))
    return factor
