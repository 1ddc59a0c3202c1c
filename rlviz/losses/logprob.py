"""Log-probabilities of chosen tokens without a second (B, T, V) tensor."""

from __future__ import annotations

import torch

from .checks import check_positive_int, check_tensor

# Rows of the flattened (B*T, V) logits handled at once: about 16 MiB of float32 temporaries
# per chunk whatever the vocabulary size (83 rows for V = 50257). Below glibc's 32 MiB mmap
# threshold the chunk buffer is reused rather than page-faulted in afresh, which is why
# chunks of this size run faster than one (B*T, V) log_softmax (benchmarks/bench_losses.py).
CHUNK_BYTES = 2**24


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


class _SelectiveLogProb(torch.autograd.Function):
    """out_n = log_softmax(logits[n, :])[tok_n] for the rows n of (N, V) logits.

    Forward and backward run over chunks of rows. The forward takes each chunk's
    log_softmax, keeps only the gathered (N,) values and drops the chunk; the
    backward writes d out_n / d logits[n, v] = g_n (1[v = tok_n] - softmax_nv) straight into
    the (N, V) gradient, chunk by chunk (softmax recomputed from the saved logits). Neither
    pass holds a second (N, V) tensor next to the logits and their gradient.
    """

    @staticmethod
    def forward(ctx, logits, tokens, chunk_rows):
        num_rows = logits.shape[0]
        work_dtype = _compute_dtype(logits.dtype)
        out = torch.empty(num_rows, dtype=work_dtype, device=logits.device)  # (N,)
        for start in range(0, num_rows, chunk_rows):
            rows = slice(start, start + chunk_rows)
            chunk = logits[rows].to(work_dtype)  # (n, V), a view unless upcasting half floats
            # the (n, V) log_softmax is a temporary: freed before the next chunk's
            out[rows] = chunk.log_softmax(dim=-1).gather(-1, tokens[rows].unsqueeze(-1))[:, 0]
        ctx.save_for_backward(logits, tokens)
        ctx.chunk_rows = chunk_rows
        return out.to(logits.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        logits, tokens = ctx.saved_tensors
        work_dtype = _compute_dtype(logits.dtype)
        grad_logits = torch.empty_like(logits)  # (N, V), the one gradient autograd needs
        grad_out = grad_out.to(work_dtype)  # (N,)
        chunk_rows = ctx.chunk_rows
        in_place = logits.dtype == work_dtype  # half floats: compute in float32, copy back
        for start in range(0, logits.shape[0], chunk_rows):
            rows = slice(start, start + chunk_rows)
            g = grad_out[rows].unsqueeze(-1)  # (n, 1)
            chunk = logits[rows].to(work_dtype)  # (n, V)
            if in_place:
                block = torch.softmax(chunk, dim=-1, out=grad_logits[rows])  # (n, V)
            else:
                block = torch.softmax(chunk, dim=-1)  # (n, V)
            block.mul_(-g)  # -g * softmax
            block.scatter_add_(-1, tokens[rows].unsqueeze(-1), g)  # + g at the chosen token
            if not in_place:
                grad_logits[rows] = block
        return grad_logits, None, None


def selective_log_prob(logits: torch.Tensor, tokens: torch.Tensor, *,
                       chunk_rows: int | None = None) -> torch.Tensor:
    """log softmax(logits)[token] per position, without a second (B, T, V) tensor.

        log pi(tok | .) = logits[tok] - logsumexp(logits)     (computed chunk by chunk)

    ==========  =====================================================================
    logits      (B, T, V) float32 / float64 / bfloat16 / float16 (any leading dims)
    tokens      (B, T) integer token ids in [0, V)
    returns     (B, T) in the dtype of ``logits``
    chunk_rows  rows of the flattened (B*T, V) logits per chunk; default: 16 MiB of
                float32 (or float64) per chunk
    ==========  =====================================================================

    Equal to ``logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0]`` (within 1e-5
    in float32) while using far less memory: the naive path keeps a (B, T, V) log-softmax
    alive for the backward pass and builds two more (B, T, V) tensors in it; this one
    keeps nothing but the logits (which autograd holds anyway) and recomputes the softmax
    chunk by chunk, straight into the gradient, in the backward. Half-precision chunks are
    upcast to float32 (a bf16 log-sum-exp loses digits; TRL's ``selective_log_softmax``
    takes the same care). Measured: ``benchmarks/bench_losses.py``.
    """
    check_tensor(logits, "logits")
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have a non-empty last (vocabulary) dimension, "
                         f"got shape {tuple(logits.shape)}")
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"tokens must be a torch.Tensor, got {type(tokens).__name__}")
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        raise TypeError(f"tokens must be an integer tensor (int64), got dtype {tokens.dtype}")
    if tokens.shape != logits.shape[:-1]:
        raise ValueError(f"tokens must have shape logits.shape[:-1] = "
                         f"{tuple(logits.shape[:-1])}, got {tuple(tokens.shape)}")
    vocab = logits.shape[-1]
    if tokens.numel():
        low, high = (int(v) for v in tokens.aminmax())
        if low < 0 or high >= vocab:
            raise ValueError(f"tokens must lie in [0, V = {vocab}), got values in "
                             f"[{low}, {high}]")
    if chunk_rows is None:
        itemsize = torch.empty(0, dtype=_compute_dtype(logits.dtype)).element_size()
        chunk_rows = max(1, CHUNK_BYTES // (vocab * itemsize))
    chunk_rows = check_positive_int(chunk_rows, "chunk_rows")

    flat_logits = logits.reshape(-1, vocab)  # (N, V), a view for contiguous logits
    flat_tokens = tokens.reshape(-1).to(torch.long)  # (N,)
    if flat_logits.shape[0] == 0:
        return logits.sum(-1)  # (B, T) empty, keeps the graph
    out = _SelectiveLogProb.apply(flat_logits, flat_tokens, chunk_rows)  # (N,)
    return out.view(tokens.shape)  # (B, T)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the softmax at every position, (B, T) from (B, T, V) logits:

        H = -sum_v p_v log p_v,   p = softmax(logits)

    Differentiable (the entropy bonus of PPO: loss - ent_coef * H). Logits of -inf (a
    banned token) contribute 0, not NaN. Half-precision logits are computed in float32.
    """
    check_tensor(logits, "logits")
    if logits.dim() < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have a non-empty last (vocabulary) dimension, "
                         f"got shape {tuple(logits.shape)}")
    work = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    log_probs = work.log_softmax(dim=-1)  # (B, T, V)
    log_probs = log_probs.clamp_min(torch.finfo(work.dtype).min)  # 0 * log 0 = 0
    entropy = -(log_probs.exp() * log_probs).sum(dim=-1)  # (B, T)
    return entropy.to(logits.dtype)
