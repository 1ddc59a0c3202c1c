"""selective_log_prob: equal to log_softmax + gather, in value and gradient, in every dtype."""

import math

import pytest
import torch

import rlviz


def naive(logits, tokens):
    return logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def _inputs(batch=3, seq_len=5, vocab=1000, dtype=torch.float32, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    logits = (scale * torch.randn(batch, seq_len, vocab, generator=g)).to(dtype)
    tokens = torch.randint(0, vocab, (batch, seq_len), generator=g)
    return logits, tokens


def test_hand_value():
    # logits [0, log 3] -> softmax [1/4, 3/4]
    logits = torch.tensor([[[0.0, math.log(3.0)]]], dtype=torch.float64)
    out = rlviz.selective_log_prob(logits, torch.tensor([[1]]))
    assert out.item() == pytest.approx(math.log(0.75), abs=1e-15)
    out = rlviz.selective_log_prob(logits, torch.tensor([[0]]))
    assert out.item() == pytest.approx(math.log(0.25), abs=1e-15)


@pytest.mark.parametrize("chunk_rows", [None, 1, 4, 1000])
def test_matches_log_softmax_gather_float32(chunk_rows):
    logits, tokens = _inputs()
    out = rlviz.selective_log_prob(logits, tokens, chunk_rows=chunk_rows)
    assert out.dtype == torch.float32 and out.shape == tokens.shape
    assert torch.allclose(out, naive(logits, tokens), atol=1e-5, rtol=0)


def test_demo_vocabulary_size():
    logits, tokens = _inputs(batch=2, seq_len=3, vocab=50257)
    out = rlviz.selective_log_prob(logits, tokens)
    assert torch.allclose(out, naive(logits, tokens), atol=1e-5, rtol=0)


def test_float64_and_bfloat16():
    logits, tokens = _inputs(dtype=torch.float64)
    assert torch.allclose(rlviz.selective_log_prob(logits, tokens), naive(logits, tokens),
                          atol=1e-12, rtol=0)
    bf16 = logits.to(torch.bfloat16)
    out = rlviz.selective_log_prob(bf16, tokens)
    assert out.dtype == torch.bfloat16
    exact = naive(bf16.double(), tokens)  # the exact log-prob of the rounded logits
    # computed in float32, one bf16 rounding of the result (8 mantissa bits)
    assert torch.allclose(out.double(), exact, rtol=2**-7, atol=1e-2)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-14)])
def test_gradient_matches_naive(dtype, tol):
    logits, tokens = _inputs(dtype=dtype)
    weights = torch.randn(tokens.shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    a = logits.clone().requires_grad_()
    b = logits.clone().requires_grad_()
    (rlviz.selective_log_prob(a, tokens, chunk_rows=4) * weights).sum().backward()
    (naive(b, tokens) * weights).sum().backward()
    assert a.grad.dtype == dtype
    assert torch.allclose(a.grad, b.grad, atol=tol, rtol=0)


def test_bfloat16_gradient_close_to_float64():
    logits, tokens = _inputs(vocab=50)
    bf16 = logits.to(torch.bfloat16).requires_grad_()
    rlviz.selective_log_prob(bf16, tokens).sum().backward()
    ref = logits.to(torch.bfloat16).double().requires_grad_()
    naive(ref, tokens).sum().backward()
    assert bf16.grad.dtype == torch.bfloat16
    assert torch.allclose(bf16.grad.double(), ref.grad, atol=1e-2)


def test_gradcheck_float64():
    logits, tokens = _inputs(batch=2, seq_len=3, vocab=7, dtype=torch.float64)
    logits.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: rlviz.selective_log_prob(x, tokens, chunk_rows=2), (logits,))


def test_other_layouts_and_shapes():
    logits, tokens = _inputs(batch=4, seq_len=3, vocab=11)
    transposed = logits.transpose(0, 1)  # non-contiguous (T, B, V)
    out = rlviz.selective_log_prob(transposed, tokens.T)
    assert torch.allclose(out, naive(transposed, tokens.T), atol=1e-6)
    flat = rlviz.selective_log_prob(logits.reshape(-1, 11), tokens.reshape(-1))  # (N, V)
    assert torch.allclose(flat, naive(logits, tokens).reshape(-1), atol=1e-6)
    int32 = rlviz.selective_log_prob(logits, tokens.to(torch.int32))
    assert torch.allclose(int32, naive(logits, tokens), atol=1e-6)
    empty = rlviz.selective_log_prob(logits[:0], tokens[:0])
    assert empty.shape == (0, 3)


def test_large_logits_stay_finite():
    logits, tokens = _inputs(vocab=20, scale=1e4)
    logits.requires_grad_()
    out = rlviz.selective_log_prob(logits, tokens)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(logits.grad).all()
    assert torch.allclose(out, naive(logits.detach(), tokens), atol=1e-2)


def test_no_grad_and_tiny_policy_option():
    cfg = rlviz.Config(vocab_size=300, hidden_size=16, seq_len=6)
    torch.manual_seed(0)
    policy = rlviz.TinyPolicy(cfg)
    ids = torch.randint(0, 300, (2, 6))
    actions = torch.randint(0, 300, (2, 6))
    with torch.no_grad():
        fast = policy.log_prob(ids, actions, memory_efficient=True)
    assert torch.allclose(fast, policy.log_prob(ids, actions), atol=1e-5, rtol=0)
