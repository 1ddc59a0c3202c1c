"""rlviz.losses.microbatch against float64 loops: the global normaliser reproduces the
single-batch loss and gradient; the naive one differs by the factor D / (K D_k)."""

import pytest
import torch
from references import ref_aggregate, ref_token_weights

from rlviz.losses.aggregation import AGG_MODES, aggregate
from rlviz.losses.microbatch import (
    accumulated_loss,
    chunk_rows,
    loss_normaliser,
    micro_batch_loss,
    naive_factor,
)
from rlviz.masks import mask_from_lengths

D = torch.float64
T = 6
LENGTHS = {
    "unequal": [6, 5, 1, 1, 2, 4, 6, 3],
    "with empty responses": [6, 0, 1, 1, 2, 0, 6, 3],
    "an empty micro-batch": [0, 0, 4, 6, 1, 1, 2, 2],
}
SPLITS = [(1, 1), (1, 2), (2, 1), (2, 2), (1, 4), (4, 2), (2, 4), (1, 8)]  # (ranks, micro)
EVERY_CASE = pytest.mark.parametrize(
    "name, mode, split",
    [(name, mode, split) for name in sorted(LENGTHS) for mode in AGG_MODES for split in SPLITS])


def batch(name, seed=0):
    mask = mask_from_lengths(torch.tensor(LENGTHS[name]), T, dtype=D)  # (B, T)
    generator = torch.Generator().manual_seed(seed)
    loss = torch.randn(mask.shape, generator=generator, dtype=D)  # (B, T)
    return loss, mask


def weights_of(loss, mask, mode, n_ranks, n_micro, normaliser):
    """d total / d l_it by autograd, and the total."""
    loss = loss.clone().requires_grad_(True)
    total = accumulated_loss(loss, mask, mode, n_ranks, n_micro, normaliser)
    (grad,) = torch.autograd.grad(total, loss)
    return total.item(), grad


def loop_chunks(batch_size, n_ranks, n_micro):
    rows = batch_size // (n_ranks * n_micro)
    return [list(range(k * rows, (k + 1) * rows)) for k in range(n_ranks * n_micro)]


@EVERY_CASE
def test_global_normaliser_is_the_single_batch_loss_and_gradient(name, mode, split):
    loss, mask = batch(name)
    total, grad = weights_of(loss, mask, mode, *split, "global")
    assert total == pytest.approx(ref_aggregate(loss, mask, mode), rel=1e-13, abs=1e-15)
    expected = torch.tensor(ref_token_weights(mask, mode), dtype=D)  # (B, T)
    torch.testing.assert_close(grad, expected, rtol=1e-13, atol=1e-16)


@EVERY_CASE
def test_naive_normaliser_is_the_mean_of_micro_batch_losses(name, mode, split):
    loss, mask = batch(name, seed=1)
    total, grad = weights_of(loss, mask, mode, *split, "naive")
    chunks = loop_chunks(loss.shape[0], *split)
    expected_total = sum(ref_aggregate(loss[rows], mask[rows], mode, max_len=T)
                         for rows in chunks) / len(chunks)
    assert total == pytest.approx(expected_total, rel=1e-13, abs=1e-15)
    expected = torch.zeros_like(mask)  # (B, T)
    for rows in chunks:
        expected[rows] = torch.tensor(ref_token_weights(mask[rows], mode, T), dtype=D) / len(chunks)
    torch.testing.assert_close(grad, expected, rtol=1e-13, atol=1e-16)


@EVERY_CASE
def test_naive_differs_by_the_derived_factor(name, mode, split):
    loss, mask = batch(name, seed=2)
    _, naive = weights_of(loss, mask, mode, *split, "naive")
    _, exact = weights_of(loss, mask, mode, *split, "global")
    factor = naive_factor(mask, mode, *split)  # (B, T)
    torch.testing.assert_close(naive, exact * factor, rtol=1e-13, atol=1e-16)


def test_factor_by_hand():
    # lengths 6, 5 | 1, 1 in two chunks: N = 13, N_0 = 11, N_1 = 2, K = 2
    mask = mask_from_lengths(torch.tensor([6, 5, 1, 1]), 6, dtype=D)
    token = naive_factor(mask, "token-mean", n_micro=2)
    assert token[0, 0].item() == pytest.approx(13 / 22, rel=1e-15)
    assert token[3, 0].item() == pytest.approx(13 / 4, rel=1e-15)
    assert token[3, 1].item() == 1.0  # masked position
    # lengths 6, 0 | 1, 1: B' = 3, B'_0 = 1, B'_1 = 2, K = 2 -> 3/2 and 3/4
    mask = mask_from_lengths(torch.tensor([6, 0, 1, 1]), 6, dtype=D)
    for mode in ("seq-mean-token-mean", "seq-mean-token-sum"):
        factor = naive_factor(mask, mode, n_ranks=2)
        assert factor[0, 0].item() == pytest.approx(3 / 2, rel=1e-15)
        assert factor[2, 0].item() == pytest.approx(3 / 4, rel=1e-15)
    assert bool((naive_factor(mask, "seq-mean-token-sum-norm", n_ranks=2) == 1).all())


def test_global_gradient_of_model_parameters_equals_single_batch():
    torch.manual_seed(0)
    mask = mask_from_lengths(torch.tensor([6, 5, 1, 1, 2, 0, 6, 3]), T, dtype=D)  # (B, T)
    features = torch.randn(8, T, 3, dtype=D)  # (B, T, H)
    actions = torch.randint(0, 4, (8, T))  # (B, T)
    advantages = torch.randn(8, 1, dtype=D)  # (B, 1)
    weight = torch.randn(3, 4, dtype=D)  # (H, V)

    def per_token_loss(w):
        logp = torch.log_softmax(features @ w, dim=-1)  # (B, T, V)
        return -advantages * logp.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # (B, T)

    for mode in AGG_MODES:
        w_one = weight.clone().requires_grad_(True)
        aggregate(per_token_loss(w_one), mask, mode).backward()
        w_split = weight.clone().requires_grad_(True)
        accumulated_loss(per_token_loss(w_split), mask, mode, 2, 2, "global").backward()
        torch.testing.assert_close(w_split.grad, w_one.grad, rtol=1e-13, atol=1e-15)


def test_chunk_rows_layout():
    assert chunk_rows(8, 2, 2) == [[slice(0, 2), slice(2, 4)], [slice(4, 6), slice(6, 8)]]


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_micro=3), "n_micro = 3 on n_ranks = 1 must split the batch of 8 rows"),
    (dict(n_micro=0), "n_micro must be >= 1, got 0"),
    (dict(n_ranks=-2), "n_ranks must be >= 1, got -2"),
    (dict(mode="seq-mean"), "Valid values: 'seq-mean-token-mean', 'token-mean', "
                            "'seq-mean-token-sum', 'seq-mean-token-sum-norm'"),
    (dict(normaliser="local"), "Unknown normaliser: 'local'. Valid values: 'naive', 'global'"),
])
def test_bad_input_names_the_argument(kwargs, message):
    loss, mask = batch("unequal")
    arguments = dict(mode="token-mean", n_ranks=1, n_micro=1, normaliser="global") | kwargs
    with pytest.raises(ValueError) as error:
        accumulated_loss(loss, mask, **arguments)
    assert message in str(error.value)


def test_bad_types_and_missing_count():
    loss, mask = batch("unequal")
    with pytest.raises(TypeError, match="n_micro must be an int"):
        accumulated_loss(loss, mask, "token-mean", n_micro=2.0)
    with pytest.raises(ValueError, match="global_count"):
        micro_batch_loss(loss, mask, "token-mean", "global")
    with pytest.raises(ValueError, match="mask must contain only 0 and 1"):
        loss_normaliser(mask * 2, "token-mean")


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("normaliser", ["naive", "global"])
def test_empty_masks_give_zero_not_nan(mode, normaliser):
    loss = torch.full((4, T), 1000.0, dtype=D)
    loss[0, 0] = float("inf")  # masked: must not leak
    for mask in (torch.zeros(4, T, dtype=D),
                 mask_from_lengths(torch.tensor([0, 0, 3, 2]), T, dtype=D)):
        total, grad = weights_of(loss, mask, mode, 2, 1, normaliser)
        assert torch.isfinite(torch.tensor(total)) and torch.isfinite(grad).all()
        assert bool((grad[mask == 0] == 0).all())
    assert torch.isfinite(naive_factor(torch.zeros(4, T), mode, 2, 2)).all()
