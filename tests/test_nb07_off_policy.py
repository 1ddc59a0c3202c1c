"""Notebook 07: the simulated rollout engine, the trainer's off-policy options, the exact
KL-gradient enumeration, GSPO vs GRPO off-policy, the cached grid, the exercises."""

import math

import pytest
import torch

from rlviz.exercises.common import ExerciseError
from rlviz.exercises.off_policy import check_clipfrac_prediction, check_tis_weight
from rlviz.experiments import off_policy as op
from rlviz.rollout import truncate_log_probs
from rlviz.rollout_engine import RolloutEngine
from rlviz.tasks import get_task
from rlviz.trainer import TrainConfig, build_policy, train

F64 = torch.float64


# ---- the truncated sampler -------------------------------------------------------------
@pytest.mark.parametrize("top_p, top_k", [(0.9, 0), (0.5, 0), (1.0, 3), (0.8, 2), (0.3, 0)])
def test_truncation_matches_a_loop(top_p, top_k):
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(4, 9, generator=g, dtype=F64).log_softmax(-1)
    got = truncate_log_probs(logp, top_p, top_k)
    for row, out in zip(logp.tolist(), got.tolist()):
        order = sorted(range(len(row)), key=lambda v: -row[v])
        kept, mass = [], 0.0
        for rank, v in enumerate(order):
            if (top_k and rank >= top_k) or (rank > 0 and mass >= top_p):
                break
            kept.append(v)
            mass += math.exp(row[v])
        z = sum(math.exp(row[v]) for v in kept)
        for v in range(len(row)):
            if v in kept:
                assert math.isclose(out[v], row[v] - math.log(z), rel_tol=1e-12, abs_tol=1e-12)
            else:
                assert out[v] == -math.inf


# ---- the engine ------------------------------------------------------------------------
def test_engine_staleness_serves_the_weights_of_k_syncs_ago():
    task = get_task("copy")
    policy = build_policy(TrainConfig(task="copy"), task)
    engine = RolloutEngine(policy, staleness=2)
    states = []
    for step in range(5):
        with torch.no_grad():
            policy.lm_head.bias.fill_(float(step))
        states.append(float(step))
        engine.sync(policy)
        assert float(engine.model.lm_head.bias[0]) == states[max(0, step - 2)]


def test_bf16_engine_differs_from_the_trainer_by_rounding_only():
    task = get_task("copy")
    cfg = TrainConfig(task="copy")
    policy = build_policy(cfg, task).eval()
    engine = RolloutEngine(policy, "bfloat16")
    engine.sync(policy)
    batch = engine.collect(policy, task, 8, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logp, _, _ = policy.response_scores(batch.sequences, batch.attention_mask,
                                            batch.prompt_width)
    diff = ((logp - batch.old_logp) * batch.response_mask).abs()
    assert 0 < float(diff.max()) < 0.05  # bf16 has 8 bits of mantissa: ~1e-2 relative


def test_engine_bad_input():
    policy = build_policy(TrainConfig(task="copy"), get_task("copy"))
    for kwargs, name in ((dict(dtype="float16"), "dtype"), (dict(top_p=0.0), "top_p"),
                         (dict(top_k=-1), "top_k"), (dict(staleness=-1), "staleness")):
        with pytest.raises(ValueError, match=name):
            RolloutEngine(policy, **kwargs)


# ---- the trainer's options -----------------------------------------------------------
TINY = dict(task="copy", steps=2, samples_per_step=32, minibatches=2, epochs=1,
            eval_every=100, eval_prompts=8, hidden_size=32, n_layers=1)


def test_matched_engine_with_recompute_has_weights_of_one():
    result = train(TrainConfig(**TINY, old_logp_source="recompute",
                               rollout_correction="tis_token"), progress=False)
    for row in result.metrics:
        assert row["rollout_kl"] < 1e-9  # cached decoding vs one forward pass: rounding
        assert abs(row["is_weight_mean"] - 1.0) < 1e-5


def test_default_training_is_unchanged_by_the_off_policy_fields():
    a = train(TrainConfig(**TINY), progress=False).metrics
    b = train(TrainConfig(**TINY, rollout_cap=3.0), progress=False).metrics  # cap unused
    assert [r["reward"] for r in a] == [r["reward"] for r in b]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]


@pytest.mark.parametrize("field, value, message", [
    ("rollout_dtype", "float16", "rollout_dtype"),
    ("rollout_top_p", 0.0, "rollout_top_p"),
    ("staleness", -1, "staleness"),
    ("old_logp_source", "vllm", "old_logp_source"),
    ("rollout_correction", "tis", "rollout_correction"),
    ("rollout_cap", 1.0, "rollout_cap"),
])
def test_trainer_rejects_bad_off_policy_fields(field, value, message):
    extra = {"old_logp_source": "recompute"} if field == "rollout_cap" else {}
    with pytest.raises(ValueError, match=message):
        TrainConfig(**TINY, **extra, **{field: value}).validate()
    with pytest.raises(ValueError, match="recompute"):
        TrainConfig(**TINY, rollout_correction="tis_token").validate()
    with pytest.raises(ValueError, match="family algorithm"):
        TrainConfig(**TINY, algo="ppo", old_logp_source="recompute",
                    rollout_correction="tis_token").validate()


# ---- the KL off-policy: exact enumeration against closed forms -----------------------
def closed_forms(theta, old, ref):
    """Hand-derived expected gradients w.r.t. the logits z of pi_theta = softmax(z), with
    tokens from pi_old: grad log p_x = e_x - p."""
    p, o, q = (v.softmax(-1).tolist() for v in (theta, old, ref))
    n = len(p)
    kl = sum(p[x] * math.log(p[x] / q[x]) for x in range(n))
    reverse = [p[j] * (math.log(p[j] / q[j]) - kl) for j in range(n)]
    # k3+: E_old[(log p_x - log q_x)(e_x - p)]
    s = sum(o[x] * math.log(p[x] / q[x]) for x in range(n))
    plus = [o[j] * math.log(p[j] / q[j]) - p[j] * s for j in range(n)]
    # plain k3: grad k3(x) = (1 - q_x / p_x)(e_x - p)
    c = sum(o[x] * (1 - q[x] / p[x]) for x in range(n))
    k3 = [o[j] * (1 - q[j] / p[j]) - p[j] * c for j in range(n)]
    return {"reverse_kl": reverse, "k3_plus": plus, "k3": k3}


@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_kl_gradients_match_closed_forms(shift):
    g = torch.Generator().manual_seed(3)
    theta, ref, direction = (torch.randn(6, generator=g, dtype=F64) for _ in range(3))
    old = theta - shift * direction
    grads = op.kl_gradients(theta, old, ref)
    want = closed_forms(theta, old, ref)
    for name in ("reverse_kl", "k3_plus", "k3"):
        torch.testing.assert_close(grads[name], torch.tensor(want[name], dtype=F64))
    # rho * k3 is unbiased for the reverse-KL gradient whatever pi_old
    torch.testing.assert_close(grads["k3_ratio"], torch.tensor(want["reverse_kl"], dtype=F64))
    gap = float((torch.tensor(want["k3_plus"]) - torch.tensor(want["reverse_kl"])).abs().max())
    if shift == 0:
        assert gap < 1e-12  # k3+ is unbiased on-policy
    else:
        assert gap > 1e-3  # and biased off-policy


# ---- GSPO vs GRPO --------------------------------------------------------------------
def grad_reference(shift, level):
    """d loss / d logp_it by hand (no clip): -A_i w m_it / (L_i * nonempty), w = rho_it
    (token) or s_i = exp(mean_t log rho_it) (sequence)."""
    data = op.gspo_grpo_gradients(shift)
    mask = data["mask"]
    g = torch.Generator().manual_seed(0)
    batch, width = mask.shape
    logp0 = -torch.rand(batch, width, generator=g, dtype=F64) * 3
    old = logp0 - shift * torch.randn(batch, width, generator=g, dtype=F64)
    adv = torch.randn(batch, generator=g, dtype=F64)
    out = [[0.0] * width for _ in range(batch)]
    for i in range(batch):
        length = int(mask[i].sum())
        seq = math.exp(sum(logp0[i, t].item() - old[i, t].item() for t in range(length))
                       / length)
        for t in range(length):
            w = math.exp(logp0[i, t].item() - old[i, t].item()) if level == "token" else seq
            out[i][t] = -adv[i].item() * w / (length * batch)
    return data, torch.tensor(out, dtype=F64)


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_gspo_equals_grpo_on_policy_only(shift):
    data, want_token = grad_reference(shift, "token")
    _, want_seq = grad_reference(shift, "sequence")
    torch.testing.assert_close(data["grpo"], want_token)
    torch.testing.assert_close(data["gspo"], want_seq)
    if shift == 0:
        assert data["max_diff"] < 1e-15
    else:
        assert data["max_diff"] > 1e-3


# ---- the cached grid -----------------------------------------------------------------
def test_cached_grid_matches_its_definition():
    data = op.rho_sources_grid()
    assert data["provenance"]["sources"] == {
        k: {"label": v[0], "values": list(v[1])} for k, v in op.SOURCES.items()}
    for source, summaries in data["grid"].items():
        assert len(summaries) == len(op.SOURCES[source][1])
        for s in summaries:
            assert sum(s["hist"]) == s["tokens"]
            assert 0 <= s["clipfrac"] <= 1 and 0 <= s["outside_sequence"] <= 1
    # the first setting of the three trainer sources is on-policy: rho = 1 up to rounding
    for source in ("minibatches", "epochs", "staleness"):
        assert data["grid"][source][0]["max_abs_log_rho"] < 1e-5
        assert data["grid"][source][0]["clipfrac"] == 0


def test_cached_grid_reproduces():
    """Recompute one source (the engine's: warm start + 6 rollouts) and compare."""
    fresh = op.measure_rho_sources(0, sources=("engine",))["engine"]
    cached = op.rho_sources_grid()["grid"]["engine"]
    # Same machine and code: identical. Elsewhere a bf16 rounding may flip a sampled token,
    # so the tolerances allow a few tokens' worth of change and no more: a change of the
    # sampler's semantics moves log_rho_mean by 1e-2 or more (top-p 0.95: -0.036).
    for a, b in zip(fresh, cached):
        assert abs(a["tokens"] - b["tokens"]) <= 0.01 * b["tokens"]
        assert math.isclose(a["log_rho_mean"], b["log_rho_mean"], abs_tol=5e-4)
        assert math.isclose(a["log_rho_std"], b["log_rho_std"], rel_tol=0.05, abs_tol=1e-4)
        for key in ("clipfrac", "outside_sequence", "adv_negative"):
            assert math.isclose(a[key], b[key], abs_tol=0.03), key


def test_tally_shares_match_a_loop():
    """The clip fraction and the share of A < 0 of the grid's summaries, against plain loops
    over hand-made tokens (eps 0.2)."""
    log_rho = torch.tensor([[0.3, -0.3, 0.0], [0.1, -0.5, 0.9], [-0.25, 0.25, 0.0]])  # (B, R)
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    adv = torch.tensor([1.0, -2.0, 0.0])  # (B,)
    tally = op._Tally()
    tally.add(log_rho * mask, adv, mask)
    summary = tally.summary()
    tokens = [(log_rho[i, t].item(), adv[i].item()) for i in range(3) for t in range(3)
              if mask[i, t] > 0]
    clipped = sum(1 for lr, a in tokens if (a > 0 and math.exp(lr) > 1.2)
                  or (a < 0 and math.exp(lr) < 0.8))
    assert summary["tokens"] == len(tokens) == 8
    assert math.isclose(summary["clipfrac"], clipped / 8) and clipped == 2
    assert math.isclose(summary["adv_negative"], 3 / 8)


# ---- the exercises -------------------------------------------------------------------
def my_tis(old, rollout, mask, cap):
    return (old - rollout).exp().clamp(max=cap) * mask


def test_tis_exercise_accepts_a_correct_answer_and_names_mistakes():
    assert check_tis_weight(my_tis).startswith("Correct")
    with pytest.raises(ExerciseError, match="upside down"):
        check_tis_weight(lambda o, r, m, c: (r - o).exp().clamp(max=c) * m)
    with pytest.raises(ExerciseError, match="not capped"):
        check_tis_weight(lambda o, r, m, c: (o - r).exp() * m)
    with pytest.raises(ExerciseError, match="mask"):
        check_tis_weight(lambda o, r, m, c: (o - r).exp().clamp(max=c))


def test_clipfrac_exercise():
    assert check_clipfrac_prediction(0).startswith("Correct")
    with pytest.raises(ExerciseError, match="ONE optimizer step"):
        check_clipfrac_prediction(0.1)
    with pytest.raises(ExerciseError, match="number"):
        check_clipfrac_prediction("zero")


# ---- the learning experiment ---------------------------------------------------------
def test_difference_interval_matches_a_hand_computation():
    # means 2.5 and 0.75, worked out by hand:
    # se^2 = 0.41667 + 0.10417, Welch df = 4.41 -> 4, t = 2.776, half-width 2.0034
    diff, low, high = op.difference_ci([1, 2, 3, 4], [0, 0.5, 1, 1.5])
    assert diff == pytest.approx(1.75)
    assert low == pytest.approx(1.75 - 2.776 * math.sqrt(5 / 12 + 5 / 48), rel=1e-9)
    assert high == pytest.approx(1.75 + 2.776 * math.sqrt(5 / 12 + 5 / 48), rel=1e-9)
    with pytest.raises(ValueError, match="two values"):
        op.difference_ci([1.0], [1.0, 2.0])


def test_learning_cache_reproduces_an_off_policy_pair():
    """The catalog's cache test re-runs the first pair (the matched trainer); this re-runs
    one that goes through the bf16 / top-p engine, the recompute and TIS."""
    from rlviz.experiments.runner import reproduce_one

    assert reproduce_one("off_policy", pair=("engine, TIS", 0)) == []
