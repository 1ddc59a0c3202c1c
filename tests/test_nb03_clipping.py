"""Notebook 03: ratio clipping. Curves, case table, the multi-epoch experiment, GSPO's
sequence ratio, panels and exercises, against hand values and plain-Python references."""

import math

import pytest
import torch
from matplotlib.figure import Figure

import rlviz
from rlviz.exercises.clipping import check_gets_gradient, check_surrogate
from rlviz.exercises.common import ExerciseError
from rlviz.experiments import clipping as cl
from rlviz.plots.clipping import (
    ClippingRunFigure,
    SurrogateFigure,
    plot_surrogate_cases,
    plot_token_vs_sequence,
)
from rlviz.widgets import PANEL_REGISTRY, clipping_panel, clipping_run_panel


def objective_by_hand(rho, adv, eps_low, eps_high, dual_clip=None):
    """min(rho A, clip(rho) A), then for A < 0 with dual clip max(..., c A), in plain floats."""
    clipped = min(max(rho, 1 - eps_low), 1 + eps_high)
    value = min(rho * adv, clipped * adv)
    if dual_clip is not None and adv < 0:
        value = max(value, dual_clip * adv)
    return value


def gradient_by_hand(rho, adv, eps_low, eps_high, dual_clip=None):
    """d objective / d log pi away from the kinks: rho A where the unclipped term is active."""
    if adv > 0:
        return 0.0 if rho > 1 + eps_high else rho * adv
    if dual_clip is not None and rho > dual_clip:
        return 0.0
    return 0.0 if rho < 1 - eps_low else rho * adv


# ---------------------------------------------------------------- one token

@pytest.mark.parametrize("adv,eps_low,eps_high,dual", [
    (1.0, 0.2, None, None), (-1.0, 0.2, None, None), (0.7, 0.2, 0.28, None),
    (-1.5, 0.2, 0.28, 3.0), (-0.4, 0.1, 0.3, 2.0),
])
def test_surrogate_curves_match_the_formula(adv, eps_low, eps_high, dual):
    curves = cl.surrogate_curves(adv, eps_low, eps_high, dual, rho_max=4.0, points=400)
    high = eps_low if eps_high is None else eps_high
    kinks = [1 - eps_low, 1 + high] + ([dual] if dual else [])
    for rho, objective, grad in zip(curves["rho"], curves["objective"], curves["grad"],
                                    strict=True):
        assert objective == pytest.approx(objective_by_hand(rho, adv, eps_low, high, dual),
                                          abs=1e-12)
        if min(abs(rho - k) for k in kinks) > 1e-9:
            assert grad == pytest.approx(gradient_by_hand(rho, adv, eps_low, high, dual),
                                         abs=1e-12)
    assert curves["unclipped"] == pytest.approx([r * adv for r in curves["rho"]])


def test_flat_intervals_sit_where_the_papers_say():
    (pos,) = cl.surrogate_curves(1.0, 0.2)["flat"]
    assert pos[0] == pytest.approx(1.2, abs=0.0021) and pos[1] == pytest.approx(3.0)
    (neg,) = cl.surrogate_curves(-1.0, 0.2)["flat"]
    assert neg[0] == pytest.approx(0.002) and neg[1] == pytest.approx(0.8, abs=0.0021)
    low, high = cl.surrogate_curves(-1.0, 0.2, 0.28, 3.0, rho_max=4.0, points=2000)["flat"]
    assert low[1] == pytest.approx(0.8, abs=0.0021)
    assert high[0] == pytest.approx(3.0, abs=0.0021) and high[1] == pytest.approx(4.0)
    assert cl.surrogate_curves(1.3, 0.2, 0.28)["flat"][0][0] == pytest.approx(1.28, abs=0.0021)


def test_flat_intervals_from_a_gradient():
    rho = torch.tensor([0.5, 0.6, 0.7, 0.8, 0.9])
    assert cl.flat_intervals(rho, torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])) == [
        (0.5, pytest.approx(0.6)), (pytest.approx(0.8), pytest.approx(0.9))]
    assert cl.flat_intervals(rho, torch.ones(5)) == []


def test_six_case_table_hand_values():
    rows = {(r["A"], r["region"]): r for r in cl.clipping_cases(eps_low=0.2)}
    expected = {  # (A, region): (rho, loss, gradient of the objective, gets a gradient)
        (1.0, "below"): (0.5, -0.5, 0.5, True),
        (1.0, "inside"): (1.0, -1.0, 1.0, True),
        (1.0, "above"): (1.5, -1.2, 0.0, False),
        (-1.0, "below"): (0.5, 0.8, 0.0, False),
        (-1.0, "inside"): (1.0, 1.0, -1.0, True),
        (-1.0, "above"): (1.5, 1.5, -1.5, True),
    }
    assert set(rows) == set(expected)
    for key, (rho, loss, grad, gets) in expected.items():
        row = rows[key]
        assert row["rho"] == pytest.approx(rho)
        assert row["loss"] == pytest.approx(loss, abs=1e-12)
        assert row["grad"] == pytest.approx(grad, abs=1e-12)
        assert row["gets_gradient"] is gets


def test_case_table_with_clip_higher_and_dual_clip():
    rows = {(r["A"], r["region"]): r for r in cl.clipping_cases(0.2, 0.28, 3.0, advantage=2.0)}
    assert len(rows) == 7
    assert rows[2.0, "above"]["rho"] == pytest.approx(1.58)
    assert rows[2.0, "above"]["loss"] == pytest.approx(-2 * 1.28)
    assert rows[-2.0, "above c"]["rho"] == pytest.approx(4.0)
    assert rows[-2.0, "above c"]["loss"] == pytest.approx(6.0)  # capped at -c A
    assert rows[-2.0, "above c"]["gets_gradient"] is False
    with pytest.raises(ValueError, match="non-zero"):
        cl.clipping_cases(advantage=0.0)


def test_objective_gradients_hand_values():
    got = cl.objective_gradients([0.5, 1.0, 1.5, 2.5, 3.8], -1.0, 0.2, 0.28, 3.0)
    assert got == pytest.approx([0.0, -1.0, -1.5, -2.5, 0.0])
    assert cl.objective_gradients([0.5, 1.25, 1.3], 2.0, 0.2, 0.28) == pytest.approx(
        [1.0, 2.5, 0.0])
    with pytest.raises(ValueError, match="ratios"):
        cl.objective_gradients([0.0], 1.0)


# ---------------------------------------------------------------- a real batch

@pytest.fixture(scope="module")
def experiment():
    return cl.ClippingExperiment(vocab_size=32, hidden_size=16, num_prompts=2, group_size=4,
                                 prompt_len=3, response_len=8, seed=1)


def test_batch_is_sampled_from_the_policy_and_scored_by_its_rule(experiment):
    ex = experiment
    assert (ex.advantages == 0).any()  # this small batch has tokens with A = 0: tested below
    start = ex.cfg.input_len
    sampler = rlviz.TinyPolicy(ex.cfg)
    sampler.load_state_dict(ex.initial_state)  # the weights the batch was sampled with
    with torch.no_grad():
        scores = sampler(ex.input_ids)  # (B, T, V)
    for i in range(ex.input_ids.shape[0]):
        response = ex.actions[i, start:].tolist()
        assert ex.rewards[i].item() == pytest.approx(sum(t < 16 for t in response) / len(response))
        for t in range(start, ex.input_ids.shape[1]):
            if t > start:
                assert ex.input_ids[i, t] == ex.actions[i, t - 1]  # fed back: bigram rollout
            row = scores[i, t].double()
            expected = row[ex.actions[i, t]] - torch.logsumexp(row, dim=0)
            assert ex.old_logp[i, t].item() == pytest.approx(expected.item(), abs=1e-5)
    groups = ex.advantages.view(-1, 4)
    assert groups.sum(dim=1).abs().max() < 1e-5


def test_zero_gradient_tokens_are_exactly_the_clipped_ones(experiment):
    records = experiment.run(epochs=5, lr=3e-2, eps_low=0.2, eps_high=0.28)
    assert torch.equal(records[0].ratio, torch.ones_like(records[0].ratio))
    assert records[0].metrics["clipfrac"] == 0.0
    mask = experiment.mask
    batch, width = mask.shape
    seen_clipped = 0
    for record in records:
        clipped, count = 0, 0
        for i in range(batch):
            adv = experiment.advantages[i].item()
            for t in range(width):
                if mask[i, t] == 0:
                    assert not record.no_grad[i, t]
                    continue
                count += 1
                rho = record.ratio[i, t].item()
                rule = (adv > 0 and rho > 1.28) or (adv < 0 and rho < 0.8)
                clipped += rule
                assert bool(record.no_grad[i, t]) == rule, (record.epoch, i, t, rho, adv)
        assert record.metrics["clipfrac"] == pytest.approx(clipped / count)
        seen_clipped += clipped
    assert seen_clipped > 0, "the learning rate was meant to push ratios out of the range"


def test_runs_are_deterministic_and_summary_states(experiment):
    first = experiment.run(epochs=3, lr=3e-2, dual_clip=1.5)
    second = experiment.run(epochs=3, lr=3e-2, dual_clip=1.5)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a.ratio, b.ratio) and a.loss == b.loss
    summary = experiment.summary(first, dual_clip=1.5)
    start = experiment.cfg.input_len
    last = first[-1]
    for i, row in enumerate(summary["states"]):
        adv = experiment.advantages[i].item()
        for j, state in enumerate(row):
            rho = last.ratio[i, start + j].item()
            if adv == 0:
                expected = 0  # no signal, nothing to clip
            elif adv > 0:
                expected = 1 if rho > 1.2 else 0
            elif rho > 1.5:
                expected = 3
            else:
                expected = 2 if rho < 0.8 else 0
            assert state == expected
    assert len(summary["ratios"]) == len(summary["positive"]) == int(experiment.mask.sum())
    assert summary["clipfracs"] == [r.metrics["clipfrac"] for r in first]


def test_experiment_bad_input(experiment):
    with pytest.raises(ValueError, match="epochs"):
        experiment.run(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        experiment.run(lr=-1.0)
    with pytest.raises(ValueError, match="row"):
        experiment.response(experiment.run(epochs=1)[0], row=99)


# ---------------------------------------------------------------- GSPO

def test_token_vs_sequence_by_hand():
    old = torch.tensor([-1.0, -2.0, -3.0, -0.5], dtype=torch.float64)
    changes = [0.3, 0.0, -0.1, 0.05]  # log-ratios: rho = 1.35, 1, 0.905, 1.051
    logp = old + torch.tensor(changes, dtype=torch.float64)
    result = cl.token_vs_sequence(logp, old, advantage=2.0)
    s = math.exp(sum(changes) / 4)
    assert result["sequence_ratio"] == pytest.approx(s)
    # token level, eps 0.2: token 0 (rho 1.35 > 1.2, A > 0) is flat; the others get
    # d objective / d log pi = rho A / L (positive for A > 0)
    for t, change in enumerate(changes):
        rho = math.exp(change)
        expected = 0.0 if rho > 1.2 else rho * 2.0 / 4
        assert result["token_grad"][t].item() == pytest.approx(expected)
    # sequence level: s = 1.064 > 1 + 4e-4 with A > 0: the whole response is flat
    assert torch.equal(result["sequence_grad"], torch.zeros(4, dtype=torch.float64))

    tiny = old + torch.tensor([1e-4, -1e-4, 2e-4, 0.0], dtype=torch.float64)
    inside = cl.token_vs_sequence(tiny, old, advantage=-1.0)
    s = math.exp(2e-4 / 4)
    for t in range(4):  # every token gets the same weight s A / L, negative for A < 0
        assert inside["sequence_grad"][t].item() == pytest.approx(-s / 4)
    assert not any(math.copysign(1, g) < 0 for g in result["sequence_grad"].tolist())
    with pytest.raises(ValueError, match="1-D"):
        cl.token_vs_sequence(tiny.view(2, 2), old.view(2, 2), 1.0)


# ---------------------------------------------------------------- figures and panels

def test_figures(experiment):
    curves = cl.surrogate_curves(-1.0, 0.2, 0.28, 3.0, rho_max=4.0)
    drawing = SurrogateFigure(rho_max=4.0).update(curves, -1.0, 0.2, 0.28, 3.0)
    visible = [span for span in drawing._axes.spans[0] if span.get_visible()]
    assert len(visible) == 2
    assert isinstance(plot_surrogate_cases({"A = -1": (-1.0, curves)}, 0.2, 0.28, 3.0), Figure)
    records = experiment.run(epochs=2, lr=3e-2)
    summary = experiment.summary(records)
    run = ClippingRunFigure(batch=8, response_len=8).update(
        summary["clipfracs"], summary["ratios"], summary["positive"], summary["states"],
        0.2, 0.2)
    counts = list(run.hist_pos.get_data().values) + list(run.hist_neg.get_data().values)
    assert sum(counts) == len(summary["ratios"])
    logp, old, adv = experiment.response(records[1], row=0)
    assert isinstance(plot_token_vs_sequence(cl.token_vs_sequence(logp, old, adv), adv), Figure)


def test_clipping_panel_numbers():
    assert PANEL_REGISTRY["clipping"][1] == "03"
    panel = clipping_panel()
    v = panel.values
    assert v["gradient at ρ = 1.0"] == pytest.approx(1.0)
    assert v["gradient at ρ = 1.5"] == 0.0
    assert v["flat (zero-gradient) ρ ranges"] == "1.20..4.00"
    panel.controls["eps_high"].value = 0.5
    assert panel.values["gradient at ρ = 1.5"] == pytest.approx(1.5)
    panel.set(sign=-1.0, size=2.0, dual=True, c=2.0, eps_low=0.3)
    v = panel.values
    for probe in (0.5, 1.0, 1.5, 2.5, 3.8):
        assert v[f"gradient at ρ = {probe}"] == pytest.approx(
            gradient_by_hand(probe, -2.0, 0.3, 0.5, 2.0)), probe
    assert v["flat (zero-gradient) ρ ranges"] == "0.00..0.70; 2.00..4.00"
    assert v["clip range"] == "[0.70, 1.50]"
    assert panel.errors == []


def test_clipping_run_panel_numbers(experiment):
    assert PANEL_REGISTRY["clipping_run"][1] == "03"
    panel = clipping_run_panel(experiment)
    assert panel.run_button is not None
    before = dict(panel.values)
    panel.controls["lr"].value = 3e-2
    panel.controls["epochs"].value = 4
    assert panel.values == before  # nothing recomputes until Run
    values = panel.click_run()
    records = experiment.run(epochs=4, lr=3e-2)
    last = records[-1]
    on = experiment.mask > 0
    assert values["clipfrac, last epoch"] == pytest.approx(
        float(last.no_grad[on].float().mean()))
    zero_adv = on & (experiment.advantages.view(-1, 1) == 0)
    assert not last.no_grad[zero_adv].any()
    assert values["max ρ"] == pytest.approx(float(last.ratio[on].max()))
    assert values["loss, last epoch"] == last.loss
    assert panel.errors == []


# ---------------------------------------------------------------- exercises

def good_surrogate(rho, adv, eps_low, eps_high):
    out = []
    for r, a in zip(rho.tolist(), adv.tolist(), strict=True):
        out.append(-objective_by_hand(r, a, eps_low, eps_high))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("wrong,message", [
    (lambda r, a, lo, hi: -good_surrogate(r, a, lo, hi), "sign"),
    (lambda r, a, lo, hi: -r * a, "no clipping"),
    (lambda r, a, lo, hi: -r.clamp(1 - lo, 1 + hi) * a, "Only the clipped term"),
    (lambda r, a, lo, hi: -torch.maximum(r * a, r.clamp(1 - lo, 1 + hi) * a), "max and min"),
    (lambda r, a, lo, hi: good_surrogate(r, a, lo, lo), "eps_high is ignored"),
    (lambda r, a, lo, hi: good_surrogate(r, a, lo, hi)[:3], "shape"),
])
def test_surrogate_exercise(wrong, message):
    assert check_surrogate(good_surrogate).startswith("Correct")
    with pytest.raises(ExerciseError, match=message):
        check_surrogate(wrong)


def test_gets_gradient_exercise():
    def good(rho, adv, eps_low, eps_high, dual_clip):
        return gradient_by_hand(rho, adv, eps_low, eps_high, dual_clip) != 0

    assert check_gets_gradient(good).startswith("Correct")
    with pytest.raises(ExerciseError, match="dual clip"):
        check_gets_gradient(lambda rho, adv, lo, hi, c: good(rho, adv, lo, hi, None))
    with pytest.raises(ExerciseError, match="A > 0"):
        check_gets_gradient(lambda rho, adv, lo, hi, c: True)


def test_gets_gradient_exercise_accepts_strict_and_non_strict_bounds():
    from rlviz.exercises import clipping as ex

    for eps_low, eps_high, dual in ex._GRADIENT_SETTINGS:  # no probe sits on a kink
        kinks = [1 - eps_low, 1 + eps_high] + ([dual] if dual is not None else [])
        assert all(abs(rho - k) > 1e-6 for rho in ex._GRADIENT_RATIOS for k in kinks)

    def strict(rho, adv, eps_low, eps_high, dual_clip):
        if adv == 0:
            return False
        if adv > 0:
            return rho < 1 + eps_high
        if dual_clip is not None and rho >= dual_clip:
            return False
        return rho > 1 - eps_low

    def non_strict(rho, adv, eps_low, eps_high, dual_clip):
        if adv == 0:
            return False
        if adv > 0:
            return rho <= 1 + eps_high
        if dual_clip is not None and rho > dual_clip:
            return False
        return rho >= 1 - eps_low

    assert check_gets_gradient(strict).startswith("Correct")
    assert check_gets_gradient(non_strict).startswith("Correct")
    with pytest.raises(ExerciseError, match="A = 0"):  # A = 0: the loss is 0, no gradient
        check_gets_gradient(lambda rho, adv, lo, hi, c: non_strict(rho, adv or 1.0, lo, hi, c))


def test_figure_review_fixes():
    # static surrogate figure: the titles name A, c and the clip range; in a panel only the
    # formula (with the dual-clip cap when it applies)
    curves = cl.surrogate_curves(-1.0, 0.2, 0.28, 3.0, rho_max=4.0)
    static = SurrogateFigure(rho_max=4.0).update(curves, -1.0, 0.2, 0.28, 3.0)
    assert static.titles[0].get_text() == "A = -1: objective max(min(ρA, clip(ρ)A), cA), c = 3"
    assert "0.80..1.28" in static.titles[1].get_text()
    panel_figure = SurrogateFigure(rho_max=4.0)
    panel_figure.enable_blit()
    panel_figure.update(curves, -1.0, 0.2, 0.28, 3.0)
    assert panel_figure.titles[0].get_text() == "objective max(min(ρA, clip(ρ)A), cA)"
    panel_figure.update(cl.surrogate_curves(1.0, 0.2, 0.28, None, rho_max=4.0), 1.0, 0.2,
                        0.28, None)
    assert panel_figure.titles[0].get_text() == "objective min(ρA, clip(ρ)A)"
    # GSPO figure: gradients of the objective (positive for A > 0); zeros as markers
    old = torch.tensor([-1.0, -2.0, -3.0, -0.5], dtype=torch.float64)
    logp = old + torch.tensor([0.3, 0.0, -0.1, 0.05], dtype=torch.float64)  # rho 1.35 ...
    result = cl.token_vs_sequence(logp, old, advantage=2.0)  # token 0 and s are clipped
    assert min(result["token_grad"].tolist()[1:]) > 0
    fig = plot_token_vs_sequence(result, 2.0)
    right = fig.axes[1]
    markers = {line.get_label(): len(line.get_xdata()) for line in right.get_lines()
               if line.get_linestyle() == "None"}
    assert markers["sequence level: gradient exactly 0"] == int((result["sequence_grad"] == 0)
                                                                 .sum())
    assert markers["token level: gradient exactly 0"] == int((result["token_grad"] == 0).sum())
    assert "d objective" in right.get_title()
    # run figure: narrower histogram range with the same bin width, and a key for the map
    narrow = ClippingRunFigure(max_epochs=6, log2_range=1.5)
    assert narrow.bins == 24 and ClippingRunFigure().bins == 48
    assert narrow.edges[0] == pytest.approx(2 ** -1.5) and narrow.ax_frac.get_xlim()[1] == 6.5
    key = narrow.figure.legends[0]
    assert [t.get_text() for t in key.get_texts()][0] == "gets a gradient"


def test_clipped_tokens_drift_counts_by_hand():
    from rlviz.experiments.clipping import EpochRecord, clipped_tokens_drift

    mask = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    first = EpochRecord(epoch=1, ratio=torch.tensor([[1.0, 1.3, 0.7, 1.1]]),
                        no_grad=torch.tensor([[False, True, True, False]]), loss=0.0, metrics={})
    second = EpochRecord(epoch=2, ratio=torch.tensor([[1.0, 1.4, 0.75, 1.5]]),
                         no_grad=torch.tensor([[False, True, False, True]]), loss=0.0, metrics={})
    (row,) = clipped_tokens_drift([first, second], mask)
    # stopped at epoch 1: tokens 1 (1.3 -> 1.4, further out) and 2 (0.7 -> 0.75, back in)
    assert row == {"epoch": 1, "stopped": 2, "moved_out": 0.5, "max_rho": 1.5,
                   "max_was_stopped": False}
