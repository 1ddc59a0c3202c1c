"""The off-policy corrections of rlviz.losses.rollout_correction against plain float64 loops
(tests/references.py) and hand-derived formulas; bad input and extreme log-ratios."""

import math

import pytest
import torch
from references import loop_clipped_loss, loop_is_weights

from rlviz.losses import aggregate, clipped_surrogate
from rlviz.losses.rollout_correction import (
    CORRECTION_MODES,
    is_correction_weights,
    k3_plus,
    k3_ratio_weighted,
    library_settings,
    masked_is_weights,
    old_logp_for_ratio,
    rollout_log_ratio,
    truncated_is_weights,
    weighted_advantages,
)

F64 = torch.float64


def batch(seed=0, b=5, t=6, spread=0.8):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(b, t, generator=g, dtype=F64) * 3  # (B, T)
    rollout = old + spread * torch.randn(b, t, generator=g, dtype=F64)
    lengths = torch.tensor([6, 1, 4, 0, 3])[:b]
    mask = (torch.arange(t)[None] < lengths[:, None]).to(F64)
    return old, rollout, mask


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("kind", ["tis", "mis"])
@pytest.mark.parametrize("cap", [1.5, 2.0, 5.0])
def test_weights_match_the_loop_reference(level, kind, cap):
    spread = (0.6 if level == "token" else 0.3) * max(1.0, math.log(cap) / math.log(2.0))
    old, rollout, mask = batch(spread=spread)
    fn = truncated_is_weights if kind == "tis" else masked_is_weights
    got = fn(old, rollout, mask, cap, level)
    want = torch.tensor(loop_is_weights(old.tolist(), rollout.tolist(), mask.tolist(), cap,
                                        level, kind), dtype=F64)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    # the reference reaches both branches: some weights are cut, some kept
    raw = torch.tensor(loop_is_weights(old.tolist(), rollout.tolist(), mask.tolist(), 1e30,
                                       level, "tis"), dtype=F64)
    on = mask > 0
    assert bool((raw[on] > cap).any()) or bool((raw[on] < 1 / cap).any())
    assert bool(((raw[on] <= cap) & (raw[on] >= 1 / cap)).any())


def test_dispatch_and_none_mode():
    old, rollout, mask = batch()
    assert torch.equal(is_correction_weights("none", old, rollout, mask), mask)
    for mode in CORRECTION_MODES[1:]:
        kind, level = mode.split("_")
        want = loop_is_weights(old.tolist(), rollout.tolist(), mask.tolist(), 2.0, level, kind)
        torch.testing.assert_close(is_correction_weights(mode, old, rollout, mask, 2.0),
                                   torch.tensor(want, dtype=F64))


def test_sequence_weight_is_the_product_of_token_weights():
    old, rollout, mask = batch(spread=0.2)
    log_w = rollout_log_ratio(old, rollout, mask, "sequence")  # (B, 1)
    for i in range(old.shape[0]):
        product = 1.0
        for t in range(old.shape[1]):
            if mask[i, t]:
                product *= math.exp(old[i, t].item()) / math.exp(rollout[i, t].item())
        assert math.isclose(math.exp(log_w[i, 0].item()), product, rel_tol=1e-12)


def test_weights_are_detached():
    old, rollout, mask = batch()
    old.requires_grad_(True)
    assert not truncated_is_weights(old, rollout, mask).requires_grad
    assert not masked_is_weights(old, rollout, mask, level="sequence").requires_grad


@pytest.mark.parametrize("dual_clip", [None, 3.0])
def test_weighted_advantages_equal_weighting_the_token_loss(dual_clip):
    """w * l_clip(rho, A) == l_clip(rho, w A) for w >= 0, checked against loops."""
    old, rollout, mask = batch(spread=0.5)
    g = torch.Generator().manual_seed(1)
    logp = old + 0.4 * torch.randn(old.shape, generator=g, dtype=F64)
    adv = torch.randn(old.shape[0], generator=g, dtype=F64)
    weights = truncated_is_weights(old, rollout, mask, 2.0)
    got = clipped_surrogate(logp, old, weighted_advantages(adv, weights), eps_low=0.2,
                            dual_clip=dual_clip, mask=mask)
    for i in range(old.shape[0]):
        for t in range(old.shape[1]):
            if not mask[i, t]:
                continue
            rho = math.exp(logp[i, t].item() - old[i, t].item())
            a = adv[i].item()
            loss = loop_clipped_loss(rho, a, 0.2)
            if dual_clip is not None and a < 0:
                loss = min(loss, -dual_clip * a)
            assert math.isclose(got[i, t].item(), weights[i, t].item() * loss,
                                rel_tol=1e-12, abs_tol=1e-15)


def test_k3_ratio_weighted_and_k3_plus_values_and_gradients():
    g = torch.Generator().manual_seed(2)
    logp = -torch.rand(3, 4, generator=g, dtype=F64) * 2
    old = logp.detach() + 0.3 * torch.randn(3, 4, generator=g, dtype=F64)
    ref = logp.detach() + 0.5 * torch.randn(3, 4, generator=g, dtype=F64)
    logp = logp.clone().requires_grad_(True)
    weighted = k3_ratio_weighted(logp, old, ref)
    plus = k3_plus(logp, ref)
    (g_w,) = torch.autograd.grad(weighted.sum(), logp)
    (g_p,) = torch.autograd.grad(plus.sum(), logp)
    for i in range(3):
        for t in range(4):
            lp, o, r = logp[i, t].item(), old[i, t].item(), ref[i, t].item()
            k3 = math.exp(r - lp) - (r - lp) - 1
            rho = math.exp(lp - o)
            assert math.isclose(weighted[i, t].item(), rho * k3, rel_tol=1e-12)
            # d(rho k3)/d lp = rho k3 + rho (1 - exp(r - lp))
            assert math.isclose(g_w[i, t].item(), rho * k3 + rho * (1 - math.exp(r - lp)),
                                rel_tol=1e-10)
            assert math.isclose(plus[i, t].item(), k3, rel_tol=1e-12)  # k3's value
            assert math.isclose(g_p[i, t].item(), lp - r, rel_tol=1e-10)  # k2's gradient


def test_old_logp_sources():
    old, rollout, mask = batch()
    assert old_logp_for_ratio("rollout", None, rollout) is rollout
    assert old_logp_for_ratio("recompute", old, rollout) is old
    with pytest.raises(ValueError, match="recomputed_logp"):
        old_logp_for_ratio("recompute", None, rollout)
    with pytest.raises(ValueError, match="source"):
        old_logp_for_ratio("bypass", old, rollout)


def test_library_settings():
    tis = library_settings("tis_token", 2.0)
    assert tis["trl"]["settings"] == {"vllm_importance_sampling_correction": True,
                                      "vllm_importance_sampling_mode": "token_truncate",
                                      "vllm_importance_sampling_clip_max": 2.0}
    assert tis["verl"]["settings"] == {"algorithm.rollout_correction.rollout_is": "token",
                                       "algorithm.rollout_correction.bypass_mode": False,
                                       "algorithm.rollout_correction.rollout_is_threshold": 2.0}
    mis = library_settings("mis_sequence", 4.0)
    assert mis["trl"]["settings"]["vllm_importance_sampling_mode"] == "sequence_mask"
    assert mis["trl"]["settings"]["vllm_importance_sampling_clip_min"] == 0.25
    assert mis["verl"]["settings"]["algorithm.rollout_correction.rollout_is_threshold"] == "0.25_4"
    assert library_settings("bypass")["verl"]["settings"][
        "algorithm.rollout_correction.bypass_mode"] is True
    assert (tis["trl"]["version"], tis["verl"]["version"]) == ("1.16.0", "0.9.1")


# ---- bad input ------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [truncated_is_weights, masked_is_weights])
def test_bad_input_names_the_argument(fn):
    old, rollout, mask = batch()
    with pytest.raises(ValueError, match="rollout_logp"):
        fn(old, rollout[:, :-1], mask)  # a rollout log-prob tensor of another length
    with pytest.raises(ValueError, match="rollout_logp"):
        fn(old, rollout[:-1], mask)
    for cap in (1.0, 0.5, -2.0):
        with pytest.raises(ValueError, match="cap"):
            fn(old, rollout, mask, cap)
    nan_old = old.clone()
    nan_old[0, 0] = float("nan")
    with pytest.raises(ValueError, match="old_logp.*NaN"):
        fn(nan_old, rollout, mask)
    nan_rollout = rollout.clone()
    nan_rollout[1, 2] = float("nan")
    with pytest.raises(ValueError, match="rollout_logp.*NaN"):
        fn(old, nan_rollout, mask)
    with pytest.raises(ValueError, match="mask"):
        fn(old, rollout, mask[:, :-1])
    with pytest.raises(ValueError, match="level"):
        fn(old, rollout, mask, 2.0, "batch")
    with pytest.raises(TypeError, match="rollout_logp"):
        fn(old, rollout.tolist(), mask)


def test_bad_input_of_the_other_blocks():
    old, rollout, mask = batch()
    with pytest.raises(ValueError, match="mode"):
        is_correction_weights("tis", old, rollout, mask)
    with pytest.raises(ValueError, match="cap"):
        is_correction_weights("none", old, rollout, mask, cap=1.0)
    with pytest.raises(ValueError, match="advantages"):
        weighted_advantages(torch.ones(4, dtype=F64), mask)
    with pytest.raises(ValueError, match="weights"):
        weighted_advantages(torch.ones(5, dtype=F64), -mask)
    with pytest.raises(ValueError, match="ref_logp"):
        k3_plus(old, rollout[:, :-1])
    with pytest.raises(ValueError, match="old_logp"):
        k3_ratio_weighted(old, rollout[:-1], old)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_log_ratios_of_1000_stay_finite(sign):
    old, rollout, mask = batch()
    far = old - sign * 1000.0
    for mode in CORRECTION_MODES:
        weights = is_correction_weights(mode, old, far, mask, 2.0)
        assert bool(torch.isfinite(weights).all())
    assert float(truncated_is_weights(old, far, mask).max()) <= 2.0
    logp = old.clone().requires_grad_(True)
    for value in (k3_ratio_weighted(logp, old + sign * 1000, old - sign * 1000),
                  k3_plus(logp, old + sign * 1000)):
        (grad,) = torch.autograd.grad(value.sum(), logp)
        assert bool(torch.isfinite(value).all()) and bool(torch.isfinite(grad).all())
    loss = aggregate(clipped_surrogate(logp, old, weighted_advantages(
        torch.ones(5, dtype=F64), truncated_is_weights(old, far, mask)), mask=mask), mask,
        "token-mean")
    assert math.isfinite(loss.item())


def test_empty_mask_gives_zero_weights():
    old, rollout, mask = batch()
    empty = torch.zeros_like(mask)
    for mode in CORRECTION_MODES[1:]:
        assert float(is_correction_weights(mode, old, rollout, empty).abs().sum()) == 0.0


def test_docs_carry_the_correction_table():
    import pathlib

    from rlviz.losses.rollout_correction import correction_table_markdown

    doc = pathlib.Path(__file__).resolve().parents[1] / "docs" / "losses.md"
    assert correction_table_markdown() in doc.read_text(encoding="utf-8")
