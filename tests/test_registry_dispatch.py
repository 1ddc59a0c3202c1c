"""LOSS_FN_REGISTRY dispatch for the demo's algorithms, and the unknown-name error."""

import pytest
import torch

import rlviz


def _batch(bs=4, seq_len=6, input_len=2):
    torch.manual_seed(0)
    pi = torch.randn(bs, seq_len)
    old = pi + 0.2 * torch.randn(bs, seq_len)
    ref = pi + 0.1 * torch.randn(bs, seq_len)
    adv = torch.randn(bs)
    mask = rlviz.compute_mask(bs, seq_len, input_len, "cpu", torch.float32)
    len_oi = torch.full((bs,), seq_len - input_len)
    return pi, old, ref, adv, mask, len_oi


def test_wrapper_dispatches_through_the_registry(monkeypatch):
    """Replacing a registry entry changes what the wrapper calls: it really dispatches."""
    calls = []
    spec = rlviz.LOSS_FN_REGISTRY["ppo"]
    fake = type(spec)(**{**spec.__dict__, "loss_fn": lambda *a, **k: (calls.append(a) or 42.0, {})})
    monkeypatch.setitem(rlviz.LOSS_FN_REGISTRY, "ppo", fake)
    pi, old, ref, adv, mask, len_oi = _batch()
    assert rlviz.policy_loss_wrapper("ppo", pi, old, ref, adv, mask, len_oi, rlviz.Config()) == 42.0
    assert len(calls) == 1


@pytest.mark.parametrize("bad", ["PPO", "trpo", "", None])
def test_unknown_algo_lists_the_known_names(bad):
    pi, old, ref, adv, mask, len_oi = _batch()
    with pytest.raises(ValueError) as info:
        rlviz.policy_loss_wrapper(bad, pi, old, ref, adv, mask, len_oi, rlviz.Config())
    message = str(info.value)
    assert "Unknown algo" in message
    for name in rlviz.LOSS_FN_REGISTRY:
        assert repr(name) in message


def test_mask_from_lengths_matches_a_loop():
    lengths = torch.tensor([0, 1, 3, 5])
    mask = rlviz.mask_from_lengths(lengths, 5)
    for i, n in enumerate(lengths.tolist()):
        for t in range(5):
            assert mask[i, t].item() == (1.0 if t < n else 0.0)
    with pytest.raises(ValueError, match="lengths"):
        rlviz.mask_from_lengths(torch.tensor([6]), 5)
