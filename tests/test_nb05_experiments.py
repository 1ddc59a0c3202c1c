"""Notebook 05's computations against independent references: brute-force enumeration of
every reward outcome of a group, plain-Python statistics in float64, and the algebra of
the demo's 1/group_num (the demo's loss is P times the mean over groups)."""

import itertools
import math
import statistics

import pytest
import torch
from references import loop_expected_abs_advantage, loop_group_advantages

from rlviz.experiments import groups as ex

MODES = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


# ---------------------------------------------------------------------------------------
# references written here, in plain Python
# ---------------------------------------------------------------------------------------
def brute_force_share_all_equal(p, group_size):
    return sum(p ** sum(o) * (1 - p) ** (group_size - sum(o))
               for o in itertools.product((0, 1), repeat=group_size) if len(set(o)) == 1)


def ref_aggregation_weight(lengths, mode, max_len):
    """d loss / d l_it from the definitions in formulas.md, in plain Python."""
    batch = len(lengths)
    non_empty = max(sum(1 for n in lengths if n > 0), 1)
    total_tokens = max(sum(lengths), 1)
    rows = []
    for n in lengths:
        if mode == "seq-mean-token-mean":
            w = 1.0 / (n * non_empty) if n > 0 else 0.0
        elif mode == "token-mean":
            w = 1.0 / total_tokens
        elif mode == "seq-mean-token-sum":
            w = 1.0 / non_empty
        else:
            w = 1.0 / (batch * max_len)
        rows.append([w if t < n else 0.0 for t in range(max_len)])
    return rows


# ---------------------------------------------------------------------------------------
# 1. advantage steps
# ---------------------------------------------------------------------------------------
def test_advantage_steps_match_plain_python():
    rewards = [1.0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 1]
    steps = ex.advantage_steps(torch.tensor(rewards), 4)
    assert steps["grpo"].tolist() == pytest.approx(loop_group_advantages(rewards, 4, "group", 1e-6),
                                                   abs=1e-9)
    assert steps["group_centred"].tolist() == pytest.approx(
        loop_group_advantages(rewards, 4, "none", 0.0), abs=1e-12)
    batch_mean = sum(rewards) / len(rewards)
    assert steps["batch_centred"].tolist() == pytest.approx([r - batch_mean for r in rewards])
    assert steps["group_std"].tolist() == pytest.approx(
        [statistics.stdev(rewards[i:i + 4]) for i in range(0, 16, 4)])
    assert steps["all_equal"].tolist() == [False, False, False, True]
    # binary rewards: only the all-correct group disagrees (0 against +0.375)
    assert steps["sign_differs"].nonzero().flatten().tolist() == [12, 13, 14, 15]


def test_graded_rewards_flip_signs():
    graded = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]
    steps = ex.advantage_steps(torch.tensor(graded, dtype=torch.float64), 4)
    group = loop_group_advantages(graded, 4, "none", 0.0)
    batch = [r - 0.5 for r in graded]
    expected = [(g > 0) != (b > 0) for g, b in zip(group, batch)]
    assert steps["sign_differs"].tolist() == expected
    assert sum(expected) == 4


def test_advantage_steps_bad_input():
    with pytest.raises(ValueError, match="multiple of"):
        ex.advantage_steps(torch.tensor([1.0, 0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="1-D"):
        ex.advantage_steps(torch.ones(2, 2), 2)


# ---------------------------------------------------------------------------------------
# 2. no-signal share and the std bias
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("group_size", [2, 3, 5, 8])
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.77, 1.0])
def test_share_all_equal_against_enumeration(p, group_size):
    assert ex.share_all_equal(p, group_size) == pytest.approx(
        brute_force_share_all_equal(p, group_size), abs=1e-12)


def test_sampled_share_all_equal_is_close_to_closed_form():
    p_values = [0.05, 0.3, 0.5, 0.9]
    sampled = ex.sampled_share_all_equal(p_values, 6, num_groups=4000, seed=1)
    for p, s in zip(p_values, sampled.tolist()):
        closed = brute_force_share_all_equal(p, 6)
        sigma = math.sqrt(closed * (1 - closed) / 4000) + 1e-9
        assert abs(s - closed) < 4 * sigma + 1e-3


@pytest.mark.parametrize("group_size", [2, 3, 6, 8])
@pytest.mark.parametrize("eps", [0.0, 1e-6, 0.1])
def test_per_k_values_against_plain_python(group_size, eps):
    for k in range(group_size + 1):
        rewards = [1.0] * k + [0.0] * (group_size - k)
        group = sum(abs(a) for a in loop_group_advantages(rewards, group_size, "group", eps))
        none = sum(abs(a) for a in loop_group_advantages(rewards, group_size, "none", 0.0))
        assert ex.abs_advantage_sum_given_k(k, group_size, "group", eps) == pytest.approx(group)
        assert ex.abs_advantage_sum_given_k(k, group_size, "none", eps) == pytest.approx(none)
        assert ex.abs_advantage_sum_given_k(k, group_size, "batch", eps, batch_std=0.4) == \
            pytest.approx(none / (0.4 + eps))


def test_closed_forms_of_the_issue():
    # with k successes of G: 2k(G-k)/G without std, 2 sqrt(k(G-k)(G-1)/G) with it (eps = 0)
    for group_size in (4, 8, 16):
        for k in range(1, group_size):
            assert ex.abs_advantage_sum_given_k(k, group_size, "none") == pytest.approx(
                2 * k * (group_size - k) / group_size)
            assert ex.abs_advantage_sum_given_k(k, group_size, "group") == pytest.approx(
                2 * math.sqrt(k * (group_size - k) * (group_size - 1) / group_size))
        # averaged over k ~ Binomial(G, p), no std: 2 (G - 1) p (1 - p)
        for p in (0.1, 0.5, 0.8):
            assert ex.expected_abs_advantage(p, group_size, "none") == pytest.approx(
                2 * (group_size - 1) * p * (1 - p))


@pytest.mark.parametrize("scale", ["group", "none", "batch"])
@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 0.5, 1.0])
def test_expected_abs_advantage_against_enumeration(scale, p):
    group_size, eps = 6, 1e-4
    expected = loop_expected_abs_advantage(p, group_size, scale, eps)  # batch std 0.5
    assert ex.expected_abs_advantage(p, group_size, scale, eps) == pytest.approx(expected,
                                                                                abs=1e-12)
    curve = ex.abs_advantage_curve([p, 0.5], group_size, scale, eps)
    assert curve[0].item() == pytest.approx(expected, abs=1e-12)


def test_eps_makes_group_value_smaller_than_eps_free_formula():
    for p in (0.1, 0.5):
        exact = ex.expected_abs_advantage(p, 8, "group", 0.0)
        assert ex.expected_abs_advantage(p, 8, "group", 1e-6) < exact
        assert ex.expected_abs_advantage(p, 8, "group", 0.1) < 0.85 * exact


@pytest.mark.parametrize("scale", ["group", "none"])
def test_sampled_abs_advantage_is_within_standard_errors(scale):
    p_values = [0.1, 0.5, 0.9]
    sampled = ex.sampled_abs_advantage(p_values, 5, scale, eps=1e-6, num_batches=3000, seed=3)
    for p, mean, stderr in zip(p_values, sampled["mean"].tolist(), sampled["stderr"].tolist()):
        expected = loop_expected_abs_advantage(p, 5, scale, 1e-6)
        assert abs(mean - expected) < 4 * stderr


def test_sampled_batch_scale_divides_by_the_batch_std():
    grid = [i / 10 for i in range(11)]
    batch = ex.sampled_abs_advantage(grid, 4, "batch", eps=0.0, num_batches=300, seed=5)
    none = ex.sampled_abs_advantage(grid, 4, "none", eps=0.0, num_batches=300, seed=5)
    assert batch["batch_std"] == pytest.approx(0.5, abs=0.02)
    ratio = batch["mean"][1:-1] / none["mean"][1:-1]
    assert torch.allclose(ratio, torch.full_like(ratio, 1 / batch["batch_std"]), rtol=0.02)


def test_bad_input_of_the_std_bias_functions():
    with pytest.raises(ValueError, match="group_size"):
        ex.share_all_equal(0.5, 1)
    with pytest.raises(ValueError, match="p must"):
        ex.expected_abs_advantage(1.5, 4)
    with pytest.raises(ValueError, match="Unknown scale"):
        ex.abs_advantage_sum_given_k(1, 4, "std")
    with pytest.raises(ValueError, match="k must"):
        ex.abs_advantage_sum_given_k(5, 4)
    with pytest.raises(ValueError, match="p_values"):
        ex.abs_advantage_curve([-0.1], 4)


def test_extreme_inputs_stay_finite():
    for p in (0.0, 1.0, 1e-9, 1 - 1e-9):
        for scale in ("group", "none", "batch"):
            assert math.isfinite(ex.expected_abs_advantage(p, 32, scale, 0.0))
    assert torch.isfinite(ex.abs_advantage_curve(ex.P_GRID, 64, "group", 0.0)).all()


# ---------------------------------------------------------------------------------------
# 3. aggregation weights by autograd
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_aggregation_coefficients_against_definitions(mode):
    lengths, max_len = [2, 5, 0, 3], 6
    mask = torch.tensor([[1.0 if t < n else 0.0 for t in range(max_len)] for n in lengths])
    got = ex.aggregation_coefficients(mask, mode, max_len)
    expected = ref_aggregation_weight(lengths, mode, max_len)
    assert got.tolist() == [pytest.approx(row, abs=1e-15) for row in expected]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scale", ["group", "none"])
def test_token_weights_are_advantage_times_coefficient(mode, scale):
    lengths, rewards, max_len = [5, 20, 5, 30], [1.0, 1.0, 0.0, 0.0], 32
    result = ex.token_weights(lengths, rewards, mode, max_len, scale)
    adv = loop_group_advantages(rewards, 4, scale, 1e-6)
    coeff = ref_aggregation_weight(lengths, mode, max_len)
    expected = [[a * c for c in row] for a, row in zip(adv, coeff)]
    assert result["weights"].tolist() == [pytest.approx(row, abs=1e-12) for row in expected]
    assert result["totals"].tolist() == pytest.approx([sum(row) for row in expected])
    assert result["per_token"].tolist() == pytest.approx(
        [sum(row) / n for row, n in zip(expected, lengths)])


def test_length_bias_numbers_of_the_notebook():
    summary = ex.length_bias_summary([5, 20, 5, 30], [1, 1, 0, 0])
    a = 3 / math.sqrt(12)  # |A| = 0.5 / std([1, 1, 0, 0]) = 0.5 / sqrt(1/3)
    gtm = summary["seq-mean-token-mean"]
    assert gtm["totals"] == pytest.approx([a / 4, a / 4, -a / 4, -a / 4], rel=1e-5)
    assert gtm["per_token"][3] / gtm["per_token"][2] == pytest.approx(5 / 30)
    tm = summary["token-mean"]
    assert tm["per_token"] == pytest.approx([a / 60, a / 60, -a / 60, -a / 60], rel=1e-5)
    assert tm["totals"][3] / tm["totals"][2] == pytest.approx(6.0)


def test_empty_response_and_all_equal_group():
    result = ex.token_weights([0, 4, 4, 4], [1.0, 0.0, 1.0, 0.0], "seq-mean-token-mean", 8)
    assert result["weights"][0].abs().sum().item() == 0.0
    assert torch.isfinite(result["per_token"]).all()
    flat = ex.token_weights([3, 4, 5, 6], [1.0, 1.0, 1.0, 1.0], "token-mean", 8)
    assert flat["weights"].abs().sum().item() == 0.0
    with pytest.raises(ValueError, match="same length"):
        ex.token_weights([3, 4], [1.0, 0.0, 1.0], "token-mean", 8)


# ---------------------------------------------------------------------------------------
# 4. the demo's 1/group_num
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["independent", "copies"])
def test_demo_loss_is_num_prompts_times_the_mean(kind):
    prompts = (1, 3, 8)
    out = ex.demo_scale_vs_prompts(prompts, group_size=4, kind=kind)
    for i, num in enumerate(prompts):
        assert out["grad_demo"][i] / out["grad_mean"][i] == pytest.approx(num, rel=1e-4)
        assert out["loss_first_step"][i] < 1e-5  # rho = 1 and centred advantages
        assert out["demo_over_mean"][i] == pytest.approx(num, rel=2e-2)
    if kind == "copies":  # identical prompts: the mean does not change with P
        assert out["grad_mean"] == pytest.approx([out["grad_mean"][0]] * 3, rel=1e-4)


def test_demo_loss_by_hand_for_one_batch():
    """Independent of the experiment code: grpo_loss with group_num G over P*G rows equals
    P times the seq-mean-token-mean of -rho*A written out by hand."""
    from rlviz import grpo_loss

    torch.manual_seed(0)
    num_prompts, group_size, seq_len = 3, 4, 6
    batch = num_prompts * group_size
    logp = torch.randn(batch, seq_len, dtype=torch.float64)
    old = logp + 0.05 * torch.randn(batch, seq_len, dtype=torch.float64)
    adv = torch.randn(batch, dtype=torch.float64)
    mask = torch.ones(batch, seq_len, dtype=torch.float64)
    mask[:, :2] = 0.0
    len_oi = torch.full((batch,), seq_len - 2)
    demo = grpo_loss(logp, old, old, adv, mask, len_oi, group_size, 0.2, 0.0).item()
    mean = 0.0
    for i in range(batch):
        row = 0.0
        for t in range(2, seq_len):
            rho = math.exp(logp[i, t].item() - old[i, t].item())
            row += -min(rho * adv[i].item(), min(max(rho, 0.8), 1.2) * adv[i].item())
        mean += row / (seq_len - 2) / batch
    assert demo == pytest.approx(num_prompts * mean, rel=1e-9)


def test_adam_ignores_the_scale_and_sgd_follows_it():
    one_step = ex.optimizer_update_vs_prompts((1, 2, 4), group_size=4, steps=1)
    assert one_step["sgd_ratio"] == pytest.approx([1.0, 2.0, 4.0], rel=1e-4)
    assert one_step["adam_ratio"] == pytest.approx([1.0, 1.0, 1.0], abs=1e-3)
    three = ex.optimizer_update_vs_prompts((1, 4), group_size=4, steps=3)
    assert three["adam_ratio"] == pytest.approx([1.0, 1.0], abs=1e-3)
    assert three["sgd_ratio"][1] == pytest.approx(4.0, rel=0.1)


def test_unknown_batch_kind():
    with pytest.raises(ValueError, match="Unknown kind"):
        ex.demo_scale_vs_prompts((1,), kind="same")


def test_thread_setting_is_restored():
    before = torch.get_num_threads()
    ex.sampled_share_all_equal([0.5], 4, num_groups=10)
    assert torch.get_num_threads() == before


# ---------------------------------------------------------------------------------------
# section 5: the settings table, built from the package's names and its loss table
# ---------------------------------------------------------------------------------------
def test_settings_table_covers_every_scale_and_mode_and_matches_the_loss_table():
    import rlviz
    from rlviz.algorithms import LOSS_FN_REGISTRY

    rows = ex.settings_table()
    assert [r["setting"] for r in rows] == ["group", "batch", "none", *MODES]
    by_setting = {r["setting"]: r for r in rows}
    # which algorithms use each setting, by a loop over the registry written here
    for name, spec in LOSS_FN_REGISTRY.items():
        if name in ("ppo", "grpo"):  # the demo's batch centring and sum over prompts
            assert all(name not in r["algorithms"] for r in rows)
            continue
        hp = rlviz.Config(algo=name).hparams()
        if spec.advantage == "group":
            assert name in by_setting[hp.adv_scale]["algorithms"]
        assert name in by_setting[hp.loss_agg_mode]["algorithms"]
    # hand-checked facts of the libraries (TRL GRPOConfig, verl algorithm / actor config)
    assert by_setting["group"]["trl"] == 'scale_rewards="group"'
    assert by_setting["group"]["verl"] == "algorithm.norm_adv_by_std_in_grpo=True"
    assert by_setting["none"]["verl"] == "algorithm.norm_adv_by_std_in_grpo=False"
    assert by_setting["batch"]["verl"] == ""
    assert by_setting["seq-mean-token-sum-norm"]["trl"] == 'loss_type="dr_grpo"'
    assert by_setting["seq-mean-token-sum"]["trl"] == ""
    # every algorithm listed in a row sets the row's option (when it names it) to that value
    table = {row["algo"]: row for row in rlviz.loss_table()}
    for row in rows:
        for algo in row["algorithms"]:
            for library in ("trl", "verl"):
                option = row[library]
                if not option:
                    continue
                key = option.split("=")[0].split(".")[-1]
                if key + "=" in table[algo][library]:
                    values = [v.strip('"') for v in option.split("=", 1)[1].split(" / ")]
                    # TRL 1.16.0's own-loss types aggregate like these (grpo_trainer.py)
                    values += {"grpo": ["sapo"], "dapo": ["cispo"]}.get(values[-1], [])
                    assert any(f"{key}={v}" in table[algo][library].replace('"', "")
                               for v in values), (row["setting"], algo, library)


def test_settings_table_rejects_a_setting_the_loss_table_contradicts(monkeypatch):
    wrong = tuple(
        ex.LibrarySetting(s.kind, s.value, s.what, ("loss_type", ("bnpo",)), s.verl, s.paper)
        if s.value == "seq-mean-token-sum-norm" else s
        for s in ex.LIBRARY_SETTINGS)
    monkeypatch.setattr(ex, "LIBRARY_SETTINGS", wrong)
    with pytest.raises(ValueError, match="dr_grpo"):
        ex.settings_table()
    monkeypatch.setattr(ex, "LIBRARY_SETTINGS", wrong[1:])
    with pytest.raises(ValueError, match="no entry"):
        ex.settings_table()


def test_tables_as_markdown():
    text = ex.settings_table_markdown()
    lines = text.split("\n")
    assert len(lines) == 2 + 3 + len(MODES)
    assert lines[1] == "|---" * 6 + "|"
    assert all(line.count(" | ") == 5 for line in lines[:1] + lines[2:])  # 6 columns
    algos = ex.algorithms_table_markdown(("dapo", "grpo"))
    body = algos.split("\n")[2:]
    assert [line.split(" | ")[0] for line in body] == ["| `grpo`", "| `dapo`"]
    with pytest.raises(ValueError, match="unknown algorithms"):
        ex.algorithms_table_markdown(("grpo", "nope"))


@pytest.mark.parametrize("group_size", [2, 3, 5])
@pytest.mark.parametrize("p", [0.2, 0.65])
def test_group_gradient_scale_by_loops(group_size, p):
    """Plain loops over the 2^G outcomes, advantages r_i - group mean by hand."""
    import itertools

    expected = 0.0
    for outcome in itertools.product((0, 1), repeat=group_size):
        prob = 1.0
        for a in outcome:
            prob *= p if a else 1 - p
        mean = sum(outcome) / group_size
        g = sum((a - mean) * (a - p) for a in outcome) / group_size
        expected += prob * g
    loop_scale = expected / (p * (1 - p))
    assert ex.group_gradient_scale(p, group_size, "none") == pytest.approx(loop_scale, abs=1e-12)
    assert loop_scale == pytest.approx((group_size - 1) / group_size, abs=1e-12)


def test_group_gradient_scale_bad_input():
    with pytest.raises(ValueError, match="p must"):
        ex.group_gradient_scale(0.0, 4)
    with pytest.raises(ValueError, match="group_size"):
        ex.group_gradient_scale(0.5, 1)
