"""The registry of the loss family: defaults, overrides, the wrapper, metrics, the table.

Family losses are checked against loop references written here from the papers' formulas.
"""

import math
import pathlib
import statistics

import pytest
import torch
from references import loop_group_advantages

import rlviz

D = torch.float64
FAMILY = ["grpo_paper", "dr_grpo", "dapo", "gspo", "ppo_gae"]


# ---------------------------------------------------------------- defaults and overrides

# What each algorithm is, from the issue / the papers (not read from the implementation).
EXPECTED = {
    "grpo_paper": dict(eps_low=0.2, eps_high=0.2, beta=0.04, kl_estimator="k3",
                       adv_scale="group", loss_agg_mode="seq-mean-token-mean",
                       ratio_level="token", advantage="group", kl_in="loss",
                       needs_critic=False),
    "dr_grpo": dict(eps_low=0.2, eps_high=0.2, beta=0.0, adv_scale="none",
                    loss_agg_mode="seq-mean-token-sum-norm", max_len=None, ratio_level="token",
                    advantage="group", needs_critic=False),
    "dapo": dict(eps_low=0.2, eps_high=0.28, beta=0.0, loss_agg_mode="token-mean",
                 ratio_level="token", advantage="group", needs_critic=False),
    "gspo": dict(eps_low=3e-4, eps_high=4e-4, beta=0.0, loss_agg_mode="seq-mean-token-mean",
                 ratio_level="sequence", advantage="group", needs_critic=False),
    "ppo_gae": dict(eps_low=0.2, eps_high=0.2, kl_estimator="k1", advantage="gae",
                    kl_in="reward", needs_critic=True, vf_coef=0.5, ent_coef=0.01),
}


@pytest.mark.parametrize("algo", FAMILY)
def test_each_key_has_its_own_defaults_when_only_algo_changes(algo):
    hp = rlviz.Config(algo=algo).hparams()
    for key, value in EXPECTED[algo].items():
        assert hp[key] == value, (algo, key, hp[key], value)
    assert hp["algo"] == algo


def test_gspo_does_not_inherit_the_demo_clip_range():
    cfg = rlviz.Config()
    assert cfg.hparams()["eps_low"] == 0.2  # "ppo"
    cfg.algo = "gspo"
    assert (cfg.hparams()["eps_low"], cfg.hparams()["eps_high"]) == (3e-4, 4e-4)


def test_overrides_apply_to_family_algorithms():
    cfg = rlviz.Config(algo="gspo", eps_low=1e-3)
    assert (cfg.hparams()["eps_low"], cfg.hparams()["eps_high"]) == (1e-3, 1e-3)
    cfg = rlviz.Config(algo="dapo", eps_high=0.35, beta=0.01, kl_estimator="k2",
                       loss_agg_mode="seq-mean-token-mean", adv_scale="batch")
    hp = cfg.hparams()
    assert (hp["eps_low"], hp["eps_high"], hp["beta"], hp["kl_estimator"]) == (0.2, 0.35, 0.01,
                                                                               "k2")
    assert (hp["loss_agg_mode"], hp["adv_scale"]) == ("seq-mean-token-mean", "batch")
    hp = rlviz.Config(algo="ppo_gae", gamma=0.9, lam=0.5, vf_clip_range=0.4, vf_coef=0.1,
                      ent_coef=0.0).hparams()
    assert (hp["gamma"], hp["lam"], hp["vf_clip_range"], hp["vf_coef"], hp["ent_coef"]) == (
        0.9, 0.5, 0.4, 0.1, 0.0)
    hp = rlviz.Config(algo="dr_grpo", max_len=64).hparams()
    assert hp["max_len"] == 64


def test_demo_algorithms_keep_their_own_knobs():
    hp = rlviz.Config(algo="grpo", clip_range=0.3, beta_kl=0.5, eps_low=0.1, beta=0.9).hparams()
    assert (hp["eps_low"], hp["eps_high"], hp["beta"]) == (0.3, 0.3, 0.5)


def test_every_family_key_is_registered_with_sources():
    for algo in ["ppo", "grpo"] + FAMILY:
        spec = rlviz.get_spec(algo)
        assert spec.name == algo and spec.paper and spec.summary
        if algo in FAMILY:
            assert "arXiv" in spec.paper and spec.trl and spec.verl


# ---------------------------------------------------------------- the demo path is unchanged

def _demo_batch():
    torch.manual_seed(0)
    pi = torch.randn(8, 6)
    old = pi + 0.3 * torch.randn(8, 6)
    ref = pi + 0.1 * torch.randn(8, 6)
    adv = torch.randn(8)
    mask = rlviz.compute_mask(8, 6, 2, "cpu", torch.float32)
    return pi, old, ref, adv, mask, torch.full((8,), 4)


@pytest.mark.parametrize("algo", ["ppo", "grpo"])
def test_demo_losses_bit_for_bit_with_and_without_metrics(algo):
    pi, old, ref, adv, mask, len_oi = _demo_batch()
    cfg = rlviz.Config(algo=algo)
    if algo == "ppo":
        direct = rlviz.ppo_policy_loss(pi, old, adv, mask, 0.2)
    else:
        direct = rlviz.grpo_loss(pi, old, ref, adv, mask, len_oi, 4, 0.2, 0.01)
    plain = rlviz.policy_loss_wrapper(algo, pi, old, ref, adv, mask, len_oi, cfg)
    loss, metrics = rlviz.policy_loss_wrapper(algo, pi, old, ref, adv, mask, len_oi, cfg,
                                              logits=torch.randn(8, 6, 3), return_metrics=True)
    assert torch.equal(plain, direct) and torch.equal(loss, direct)
    assert metrics["loss"] == direct.item()
    assert set(metrics) >= {"clipfrac", "approx_kl", "kl", "entropy"}
    # clipfrac from a loop: A > 0 and rho > 1.2, or A < 0 and rho < 0.8, over the mask
    flags = [((a > 0 and math.exp(p - o) > 1.2) or (a < 0 and math.exp(p - o) < 0.8))
             for rp, ro, a, rm in zip(pi.tolist(), old.tolist(), adv.tolist(), mask.tolist(),
                                      strict=True)
             for p, o, m in zip(rp, ro, rm, strict=True) if m]
    assert metrics["clipfrac"] == pytest.approx(sum(flags) / len(flags))
    k1 = [p - r for rp, rr, rm in zip(pi.tolist(), ref.tolist(), mask.tolist(), strict=True)
          for p, r, m in zip(rp, rr, rm, strict=True) if m]
    assert metrics["kl"] == pytest.approx(sum(k1) / len(k1), rel=1e-5, abs=1e-7)


# ---------------------------------------------------------------- family losses vs loops

def _family_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    batch, seq_len, vocab = 4, 5, 6
    logits = torch.randn(batch, seq_len, vocab, generator=g, dtype=D)
    tokens = torch.randint(0, vocab, (batch, seq_len), generator=g)
    logp = logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    old = logp + 0.3 * torch.randn(batch, seq_len, generator=g, dtype=D)
    ref = logp + 0.3 * torch.randn(batch, seq_len, generator=g, dtype=D)
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.5], dtype=D)
    mask = rlviz.mask_from_lengths(torch.tensor([5, 2, 3, 0]), seq_len, dtype=D)
    return logits, logp, old, ref, rewards, mask


def _rows(mask):
    return [[t for t, m in enumerate(row) if m] for row in mask.tolist()]


def _token_loss(p, o, a, lo, hi):
    rho = math.exp(p - o)
    return -min(rho * a, min(max(rho, 1 - lo), 1 + hi) * a)


def _k3(p, r):
    return math.exp(r - p) - (r - p) - 1


def _entropy(logits_row):
    z = sum(math.exp(x) for x in logits_row)
    return -sum(math.exp(x) / z * (x - math.log(z)) for x in logits_row)


def _reference_loss(algo, logp, old, ref, adv, mask, logits):
    lp, ol, rf = logp.tolist(), old.tolist(), ref.tolist()
    rows = _rows(mask)
    batch, seq_len = logp.shape
    if algo == "grpo_paper":  # (1/B') sum_i (1/L_i) sum_t [l^clip + 0.04 k3]
        per_seq = [sum(_token_loss(lp[i][t], ol[i][t], adv[i], 0.2, 0.2)
                       + 0.04 * _k3(lp[i][t], rf[i][t]) for t in idx) / len(idx)
                   for i, idx in enumerate(rows) if idx]
        return sum(per_seq) / len(per_seq)
    if algo == "dr_grpo":  # sum_{i,t} l^clip / (B * T)
        return sum(_token_loss(lp[i][t], ol[i][t], adv[i], 0.2, 0.2)
                   for i, idx in enumerate(rows) for t in idx) / (batch * seq_len)
    if algo == "dapo":  # token-mean with clip 0.2 / 0.28
        tokens = [_token_loss(lp[i][t], ol[i][t], adv[i], 0.2, 0.28)
                  for i, idx in enumerate(rows) for t in idx]
        return sum(tokens) / len(tokens)
    if algo == "gspo":  # s_i = exp(mean log-ratio); every token gets -min(s A, clip(s) A)
        per_seq = []
        for i, idx in enumerate(rows):
            if idx:
                log_s = sum(lp[i][t] - ol[i][t] for t in idx) / len(idx)
                per_seq.append(_token_loss(log_s, 0.0, adv[i], 3e-4, 4e-4))
        return sum(per_seq) / len(per_seq)
    raise AssertionError(algo)


@pytest.mark.parametrize("algo", ["grpo_paper", "dr_grpo", "dapo", "gspo"])
def test_group_family_losses_match_loops(algo):
    logits, logp, old, ref, rewards, mask = _family_batch()
    cfg = rlviz.Config(algo=algo, group_num=2)
    hp = cfg.hparams()
    adv, returns = rlviz.algo_advantages(hp, rewards, mask, group_size=2)
    assert returns is None
    with_std = algo != "dr_grpo"
    expected_adv = loop_group_advantages(rewards.tolist(), 2, "group" if with_std else "none")
    assert adv.tolist() == pytest.approx(expected_adv, abs=1e-12)
    loss, metrics = rlviz.policy_loss_wrapper(algo, logp, old, ref, adv, mask, None, cfg,
                                              logits=logits, return_metrics=True)
    expected = _reference_loss(algo, logp, old, ref, expected_adv, mask, logits)
    assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    entropies = [_entropy(logits[i, t].tolist()) for i, idx in enumerate(_rows(mask))
                 for t in idx]
    assert metrics["entropy"] == pytest.approx(sum(entropies) / len(entropies), rel=1e-10)
    k = [_k3(logp[i, t].item(), ref[i, t].item()) for i, idx in enumerate(_rows(mask))
         for t in idx]
    assert metrics["kl"] == pytest.approx(sum(k) / len(k), rel=1e-10)


def test_beta_override_puts_the_kl_in_a_kl_free_algorithm():
    logits, logp, old, ref, rewards, mask = _family_batch()
    adv = torch.tensor([0.5, -0.5, 1.0, -1.0], dtype=D)
    base = rlviz.policy_loss_wrapper("dapo", logp, old, None, adv, mask, None,
                                     rlviz.Config(algo="dapo"))
    cfg = rlviz.Config(algo="dapo", beta=0.1, kl_estimator="k1")
    with_kl = rlviz.policy_loss_wrapper("dapo", logp, old, ref, adv, mask, None, cfg)
    k1 = [logp[i, t].item() - ref[i, t].item() for i, idx in enumerate(_rows(mask)) for t in idx]
    assert with_kl.item() - base.item() == pytest.approx(0.1 * sum(k1) / len(k1), rel=1e-10)


def test_dr_grpo_max_len_override_is_the_constant_normaliser():
    logits, logp, old, ref, rewards, mask = _family_batch()
    adv = torch.tensor([0.5, -0.5, 1.0, -1.0], dtype=D)
    t_norm = rlviz.policy_loss_wrapper("dr_grpo", logp, old, ref, adv, mask, None,
                                       rlviz.Config(algo="dr_grpo"))
    budget = rlviz.policy_loss_wrapper("dr_grpo", logp, old, ref, adv, mask, None,
                                       rlviz.Config(algo="dr_grpo", max_len=20))
    assert budget.item() == pytest.approx(t_norm.item() * 5 / 20, rel=1e-12)


def test_ppo_gae_matches_loop_reference():
    logits, logp, old, ref, rewards, mask = _family_batch()
    g = torch.Generator().manual_seed(11)
    values = torch.randn(4, 5, generator=g, dtype=D)
    old_values = values + 0.3 * torch.randn(4, 5, generator=g, dtype=D)
    cfg = rlviz.Config(algo="ppo_gae")
    hp = cfg.hparams()
    adv, returns = rlviz.algo_advantages(hp, rewards, mask, values=old_values, logp=old,
                                         ref_logp=ref)
    rows = _rows(mask)
    # loop reference: r_t = -0.05 * k1 (old vs ref) + reward on the last token; GAE with
    # gamma = 1, lam = 0.95, next value 0 after the last token; whiten over all tokens
    ref_adv, ref_ret = {}, {}
    for i, idx in enumerate(rows):
        running = 0.0
        for k in reversed(range(len(idx))):
            t = idx[k]
            r = -0.05 * (old[i, t].item() - ref[i, t].item())
            if k == len(idx) - 1:
                r += rewards[i].item()
            next_v = old_values[i, idx[k + 1]].item() if k + 1 < len(idx) else 0.0
            running = r + next_v - old_values[i, t].item() + 0.95 * running
            ref_adv[i, t] = running
            ref_ret[i, t] = running + old_values[i, t].item()
    vals = list(ref_adv.values())
    mean = sum(vals) / len(vals)
    std = math.sqrt(statistics.variance(vals) + 1e-8)
    for (i, t), a in ref_adv.items():
        assert adv[i, t].item() == pytest.approx((a - mean) / std, rel=1e-10, abs=1e-12)
        assert returns[i, t].item() == pytest.approx(ref_ret[i, t], rel=1e-10, abs=1e-12)

    loss, metrics = rlviz.policy_loss_wrapper(
        "ppo_gae", logp, old, ref, adv, mask, None, cfg, values=values, old_values=old_values,
        returns=returns, logits=logits, return_metrics=True)
    tokens = [(i, t) for i, idx in enumerate(rows) for t in idx]
    n = len(tokens)
    policy = sum(_token_loss(logp[i, t].item(), old[i, t].item(), adv[i, t].item(), 0.2, 0.2)
                 for i, t in tokens) / n
    value = 0.0
    for i, t in tokens:
        v, vo, r = values[i, t].item(), old_values[i, t].item(), returns[i, t].item()
        vc = vo + min(max(v - vo, -0.2), 0.2)
        value += 0.5 * max((v - r) ** 2, (vc - r) ** 2) / n
    entropy = sum(_entropy(logits[i, t].tolist()) for i, t in tokens) / n
    expected = policy + 0.5 * value - 0.01 * entropy
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    assert metrics["policy_loss"] == pytest.approx(policy, rel=1e-10)
    assert metrics["value_loss"] == pytest.approx(value, rel=1e-10)
    assert metrics["entropy"] == pytest.approx(entropy, rel=1e-10)
    # the keyword ent_coef overrides the entropy weight
    no_bonus = rlviz.policy_loss_wrapper(
        "ppo_gae", logp, old, ref, adv, mask, None, cfg, values=values, old_values=old_values,
        returns=returns, logits=logits, ent_coef=0.0)
    assert no_bonus.item() == pytest.approx(policy + 0.5 * value, rel=1e-10)


def test_first_inner_step_of_grpo_paper_is_zero_but_not_its_gradient():
    """rho = 1 and pi = pi_ref: token loss -A, advantages sum to 0 per group, equal lengths
    -> the loss is 0 (formulas.md), while the gradient is -A_i / (B L) per token."""
    logp = torch.randn(4, 3, dtype=D).requires_grad_()
    mask = torch.ones(4, 3, dtype=D)
    cfg = rlviz.Config(algo="grpo_paper", group_num=2)
    adv, _ = rlviz.algo_advantages(cfg.hparams(), torch.tensor([1.0, 0.0, 0.3, 0.9], dtype=D),
                                   mask, group_size=2)
    loss = rlviz.policy_loss_wrapper("grpo_paper", logp, logp.detach(), logp.detach(), adv,
                                     mask, None, cfg)
    loss.backward()
    assert abs(loss.item()) < 1e-12
    expected = (-adv / (4 * 3)).unsqueeze(1).expand(4, 3)
    assert torch.allclose(logp.grad, expected, atol=1e-12)


def test_kl_token_rewards_hand_example():
    rewards = torch.tensor([2.0, 5.0], dtype=D)
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]], dtype=D)
    logp = torch.tensor([[0.0, -1.0, -2.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=D)
    ref = torch.tensor([[9.0, -1.5, -1.0, 9.0], [0.0, 0.0, 0.0, 0.0]], dtype=D)
    out = rlviz.kl_token_rewards(rewards, mask, logp, ref, beta=0.1)
    # k1 = logp - ref = 0.5 and -1.0 on the two response tokens; reward 2 on the last one
    expected = torch.tensor([[0.0, -0.05, 2.0 + 0.1, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=D)
    assert torch.allclose(out, expected, atol=1e-12)


# ---------------------------------------------------------------- the table

def test_loss_table_lists_every_key_with_sources():
    rows = rlviz.loss_table()
    assert [r["algo"] for r in rows] == list(rlviz.LOSS_FN_REGISTRY)
    for row in rows:
        assert all(isinstance(row[c], str) for c in ("formula", "defaults", "paper", "trl",
                                                      "verl"))
    md = rlviz.loss_table_markdown()
    assert md.count("\n") == len(rows) + 1
    for name in rlviz.LOSS_FN_REGISTRY:
        assert f"`{name}`" in md
    with pytest.raises(ValueError, match="Unknown columns"):
        rlviz.loss_table_markdown(("algo", "nope"))


def test_docs_carry_the_current_tables():
    """README.md and docs/losses.md carry the tables generated from the registry's data."""
    from rlviz.algorithms.table import write_generated

    root = pathlib.Path(__file__).resolve().parents[1]
    assert write_generated(root, check=True) == [], "run: .venv/bin/python tools/tables.py"


def test_a_stale_table_is_detected(tmp_path):
    from rlviz.algorithms.table import GENERATED, write_generated

    root = pathlib.Path(__file__).resolve().parents[1]
    for relative in GENERATED:
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((root / relative).read_text().replace("`dapo`", "`dapo2`"))
    assert sorted(write_generated(tmp_path, check=True)) == sorted(GENERATED)


# ---------------------------------------------------------------- HParams and Config agree

def test_every_loss_override_of_config_is_a_hyperparameter_and_changes_it():
    """Config's override fields (default None) are exactly HParams' overridable fields that
    Config has; setting one on a family algorithm changes what it runs with."""
    import dataclasses

    config_fields = {f.name: f.default for f in dataclasses.fields(rlviz.Config)}
    overrides = [name for name, default in config_fields.items() if default is None]
    hparam_names = {f.name for f in dataclasses.fields(rlviz.HParams)}
    assert set(overrides) <= hparam_names, set(overrides) - hparam_names
    probe = {"eps_low": 0.123, "eps_high": 0.321, "dual_clip": 4.5, "beta": 0.77,
             "kl_estimator": "k2", "adv_scale": "batch", "loss_agg_mode": "seq-mean-token-sum",
             "max_len": 99, "gamma": 0.5, "lam": 0.25, "vf_clip_range": 0.7}
    assert set(probe) == set(overrides)  # a new override field needs a probe value here
    for name, value in probe.items():
        assert rlviz.Config(algo="ppo_gae", **{name: value}).hparams()[name] == value, name


def test_a_spec_with_an_unknown_default_fails_naming_it():
    with pytest.raises(ValueError, match="epsilon_low"):
        rlviz.AlgoSpec(name="x", advantage="group", kl_in="none", needs_critic=False,
                       defaults={"epsilon_low": 0.2})


def test_hparams_reads_like_the_dict_it_replaces():
    hp = rlviz.Config(algo="dapo").hparams()
    assert hp["eps_high"] == hp.eps_high == hp.get("eps_high") == 0.28
    assert hp.get("nope", 7) == 7 and "beta" in hp and "nope" not in hp
    with pytest.raises(KeyError):
        hp["nope"]
