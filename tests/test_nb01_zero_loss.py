"""Notebook 01: why the demo's loss sits at zero. Experiments, plots, panel and exercises,
checked against independent references (plain float64 loops, hand-computed values)."""

import math

import pytest
import torch
from matplotlib.figure import Figure

import rlviz
from rlviz.exercises.common import ExerciseError
from rlviz.exercises.zero_loss import check_adam_first_step, check_first_step_loss
from rlviz.experiments import zero_loss as zl
from rlviz.plots.zero_loss import EpochCurvesFigure, plot_demo_run, plot_off_zero_cases
from rlviz.threads import one_torch_thread
from rlviz.widgets import PANEL_REGISTRY, zero_loss_panel
from rlviz.widgets import zero_loss as zero_loss_widgets

MODES = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def loop_first_step_loss(advantages, lengths, mode, max_len=None):
    """The aggregated loss when every token's loss is -A_i, by plain loops in float64."""
    advantages = [float(a) for a in advantages]
    lengths = [int(n) for n in lengths]
    if mode == "token-mean":
        total = sum(-a * n for a, n in zip(advantages, lengths, strict=True))
        return total / max(sum(lengths), 1)
    if mode == "seq-mean-token-sum-norm":
        norm = max(lengths) if max_len is None else max_len
        return sum(-a * n for a, n in zip(advantages, lengths, strict=True)) / (len(lengths) * norm)
    per_response = []
    for a, n in zip(advantages, lengths, strict=True):
        if n == 0:
            continue  # empty responses are not counted
        per_response.append(-a if mode == "seq-mean-token-mean" else -a * n)
    return sum(per_response) / max(len(per_response), 1)


# ---------------------------------------------------------------- the demo, instrumented

@pytest.mark.parametrize("algo", ["ppo", "grpo"])
def test_diagnostics_run_is_the_demo_bit_for_bit(algo):
    cfg = zl.small_config(vocab_size=300, hidden_size=16)
    with one_torch_thread():
        torch.manual_seed(3)
        losses, policy = rlviz.run_demo(algo, 4, cfg=zl.small_config(vocab_size=300,
                                                                     hidden_size=16),
                                        print_fn=lambda *args: None)
    records, mine = zl.run_demo_diagnostics(algo, 4, cfg, seed=3, return_policy=True)
    assert [r.loss for r in records] == losses
    for (name, a), (_, b) in zip(policy.state_dict().items(), mine.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


def test_demo_records_rho_one_zero_loss_and_moving_parameters():
    records = zl.run_demo_diagnostics("grpo", 3, zl.small_config(vocab_size=300, hidden_size=16),
                                      seed=0)
    for r in records:
        assert r.ratio_min == 1.0 and r.ratio_max == 1.0
        assert abs(r.loss) < 1e-6
        assert abs(r.adv_sum) < 1e-5
        assert r.grad_norm > 0.05
        assert abs(r.policy_term + r.kl_term - r.loss) < 1e-6
        assert 0.9 < r.update_max < 1.1  # Adam: at most about one lr per step
    assert records[0].kl_term == 0.0  # policy == reference at step 0
    assert all(r.kl_term != 0.0 for r in records[1:])
    assert records[0].update_mean > 0.99  # first Adam step: lr * g / (|g| + eps)


def test_ppo_kl_term_is_zero_and_grpo_gradient_is_twice_ppo():
    cfg = zl.small_config(vocab_size=300, hidden_size=16)
    ppo = zl.run_demo_diagnostics("ppo", 1, cfg, seed=0)[0]
    grpo = zl.run_demo_diagnostics("grpo", 1, cfg, seed=0)[0]
    assert ppo.kl_term == 0.0
    # at rho = 1, equal lengths and no KL at step 0: grpo = ppo * B / G = 2 ppo
    assert grpo.grad_norm == pytest.approx(2 * ppo.grad_norm, rel=1e-5)


def test_sgd_step_is_the_gradient_and_scales_adam_does_not():
    cfg = zl.small_config(vocab_size=200, hidden_size=8, algo="grpo")
    sizes = zl.update_size_after_one_step(cfg, loss_scales=(1.0, 10.0), seed=1)
    assert sizes["sgd", 10.0] / sizes["sgd", 1.0] == pytest.approx(10.0, rel=1e-9)
    assert sizes["adam", 10.0] / sizes["adam", 1.0] == pytest.approx(1.0, abs=2e-3)
    assert sizes["adam", 1.0] == pytest.approx(1.0, abs=5e-3)

    # independent: the demo's GRPO loss at step 0 written out by hand, in float64: per token
    # -A_i rho / (G L) + beta k1 / (G L^2), with rho = 1 and k1 = 0 in value but not in gradient
    torch.manual_seed(1)
    policy = rlviz.TinyPolicy(cfg).double()
    rlviz.TinyPolicy(cfg)  # the demo creates the reference next: same random draws
    input_ids, actions, rewards = rlviz.make_fake_batch(cfg, cfg.group_num * 2)
    logp = policy.log_prob(input_ids, actions)  # (B, T)
    advantage = (rewards - rewards.mean()).double()
    length = cfg.seq_len - cfg.input_len
    loss = 0.0
    for i in range(logp.shape[0]):
        for t in range(cfg.input_len, cfg.seq_len):
            change = logp[i, t] - logp[i, t].detach()  # 0 in value, 1 in gradient
            loss = loss - advantage[i] * torch.exp(change) / (cfg.group_num * length)
            loss = loss + cfg.beta_kl * change / (cfg.group_num * length**2)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in policy.parameters()])
    mean_abs = grads[grads != 0].abs().mean().item()
    assert sizes["sgd", 1.0] == pytest.approx(mean_abs, rel=1e-6)


def test_demo_kl_weight_matches_the_hand_formula():
    kl = zl.demo_kl_weight()
    beta, groups, length = 0.01, 4, 24
    assert kl["kl_grad_min"] == pytest.approx(beta / (groups * length**2), rel=1e-5)
    assert kl["kl_grad_max"] == pytest.approx(beta / (groups * length**2), rel=1e-5)
    assert kl["kl_grad_outside_mask"] == 0.0
    assert kl["relative_weight"] == pytest.approx(beta / length, rel=1e-12)
    assert kl["kl_part"] == pytest.approx(kl["kl_part_formula"], rel=1e-4, abs=1e-12)
    assert kl["pg_grad_error"] < 1e-7


def test_inner_epochs_move_the_loss_like_a_hand_written_ppo_loop():
    cfg = zl.small_config(vocab_size=300, hidden_size=16)
    rows = zl.inner_epoch_losses("ppo", 3, cfg, seed=2)
    assert abs(rows[0]["loss"]) < 1e-6 and rows[0]["ratio_max_dev"] == 0.0
    assert abs(rows[1]["loss"]) > 1e-4 and rows[1]["ratio_max_dev"] > 0

    # the same three epochs with the PPO loss written out (no clipping is reached here)
    with one_torch_thread():
        torch.manual_seed(2)
        policy = rlviz.TinyPolicy(cfg)
        rlviz.TinyPolicy(cfg)
        opt = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
        input_ids, actions, rewards = rlviz.make_fake_batch(cfg, 8)
        with torch.no_grad():
            old = policy.log_prob(input_ids, actions)
        advantage = rewards - rewards.mean()
        for epoch in range(3):
            logp = policy.log_prob(input_ids, actions)
            ratio = torch.exp(logp - old)[:, cfg.input_len:]  # (B, L)
            assert float((ratio.detach() - 1).abs().max()) < 0.2
            loss = -(ratio * advantage.view(-1, 1)).mean()
            assert loss.item() == pytest.approx(rows[epoch]["loss"], abs=1e-6)
            opt.zero_grad()
            loss.backward()
            opt.step()


# ---------------------------------------------------------------- first-step loss

def test_first_step_loss_hand_values():
    adv, lengths = torch.tensor([1.5, -0.5, -0.5, -0.5]), torch.tensor([4, 12, 12, 12])
    assert zl.first_step_loss(adv, lengths, "token-mean") == pytest.approx(0.3, abs=1e-6)
    assert zl.first_step_loss(adv, lengths, "seq-mean-token-mean") == pytest.approx(0.0, abs=1e-7)
    assert zl.first_step_loss(adv, lengths, "seq-mean-token-sum") == pytest.approx(3.0, abs=1e-6)
    assert zl.first_step_loss(adv, lengths, "seq-mean-token-sum-norm") == pytest.approx(0.25)
    centred = torch.tensor([0.75, -0.25, -0.25, -0.25])
    assert zl.first_step_loss(centred, torch.tensor([0, 12, 12, 12]),
                              "seq-mean-token-mean") == pytest.approx(0.25)
    assert zl.first_step_loss(torch.tensor([1.0, 0, 0, 0]), torch.tensor([12] * 4),
                              "seq-mean-token-mean") == pytest.approx(-0.25)


@pytest.mark.parametrize("mode", MODES)
def test_first_step_loss_against_loops(mode):
    generator = torch.Generator().manual_seed(7)
    for _ in range(5):
        adv = torch.randn(6, generator=generator)
        lengths = torch.randint(0, 9, (6,), generator=generator)
        lengths[0] = 5  # at least one non-empty response
        expected = loop_first_step_loss(adv, lengths, mode, max_len=10)
        assert zl.first_step_loss(adv, lengths, mode, max_len=10) == pytest.approx(expected,
                                                                                     abs=1e-5)


# ---------------------------------------------------------------- the panel's lab

@pytest.fixture(scope="module")
def lab():
    return zl.ZeroLossLab(vocab_size=64, hidden_size=16)


@pytest.mark.parametrize("spread", [0.0, 0.4, 1.0])
def test_lab_first_epoch_is_the_first_step_loss(lab, spread):
    lengths = lab.lengths(spread)
    adv = lab.rewards - lab.rewards.mean()
    assert lengths.max() <= 24 and lengths.min() >= 4
    for mode in MODES:
        got = lab.run(1, spread=spread, mode=mode)["loss"][0]
        expected = loop_first_step_loss(adv, lengths, mode, max_len=24)
        assert got == pytest.approx(expected, abs=1e-6), mode
    uncentred = lab.run(1, spread=spread, centred=False)["loss"][0]
    assert uncentred == pytest.approx(-float(lab.rewards.double().mean()), abs=1e-6)


def test_lab_clipfrac_counts_tokens_outside_the_range():
    lab = zl.ZeroLossLab(vocab_size=64, hidden_size=16, lr=1e-2)  # large lr: clipping acts
    result = lab.run(1)
    assert result["clipfrac"] == [0.0]  # rho = 1 at epoch 1
    # clipfrac by hand at epoch 3, from the ratios the same training reaches
    with one_torch_thread():
        lab.policy.load_state_dict(lab.initial_state)
        opt = torch.optim.Adam(lab.policy.parameters(), lr=lab.cfg.lr)
        mask = lab.mask(0.0)
        adv = lab.advantages(True)
        old = None
        for _ in range(3):
            logp = lab.policy.log_prob(lab.input_ids, lab.actions)
            old = logp.detach() if old is None else old
            ratio = torch.exp(logp.detach() - old)
            loss = rlviz.aggregate(rlviz.clipped_surrogate(logp, old, adv, mask=mask), mask,
                                   "seq-mean-token-mean")
            opt.zero_grad()
            loss.backward()
            opt.step()
    count = clipped = 0
    for i in range(mask.shape[0]):
        for t in range(mask.shape[1]):
            if mask[i, t]:
                count += 1
                rho, a = ratio[i, t].item(), adv[i].item()
                clipped += (a > 0 and rho > 1.2) or (a < 0 and rho < 0.8)
    assert clipped > 0
    assert lab.run(3)["clipfrac"][2] == pytest.approx(clipped / count)


def test_lab_kl_appears_after_the_first_epoch_and_prefixes_match(lab):
    with_kl = lab.run(5, beta=0.2)
    assert with_kl["kl_term"][0] == 0.0
    assert all(v > 0 for v in with_kl["kl_term"][1:])
    assert lab.run(5, beta=0.0)["kl_term"] == [0.0] * 5
    three = lab.run(3, beta=0.2)
    for key in three:
        assert three[key] == with_kl[key][:3]  # what the panel's cache relies on
    assert lab.run(3, beta=0.2) == three  # deterministic


def _trained_weights(run):
    return [p.detach().clone() for p in run.policy.parameters()]


@pytest.mark.parametrize("first_beta, second_beta", [(0.0, 0.3), (0.3, 0.0), (0.1, 0.45)])
def test_runs_at_other_betas_share_epoch_one_and_match_a_run_from_scratch(first_beta,
                                                                           second_beta,
                                                                           monkeypatch):
    setting = dict(spread=0.6, mode="seq-mean-token-sum-norm", centred=True)
    alone = zl.ZeroLossLab(vocab_size=64, hidden_size=16).start(second_beta, **setting)
    alone.extend(5)  # nothing to share: trains its own epoch 1
    lab = zl.ZeroLossLab(vocab_size=64, hidden_size=16)
    lab.start(first_beta, **setting).extend(2)
    assert list(lab.first_epochs) == [(0.6, "seq-mean-token-sum-norm", True)]
    epochs = []
    original = zl.ZeroLossRun._epoch
    monkeypatch.setattr(zl.ZeroLossRun, "_epoch",
                        lambda run: (epochs.append(1), original(run))[1])
    shared = lab.start(second_beta, **setting).extend(5)
    assert len(epochs) == 4  # epoch 1 came from the first run
    assert shared.record == alone.record  # every number, bit for bit
    for a, b in zip(_trained_weights(shared), _trained_weights(alone), strict=True):
        assert torch.equal(a, b)


def test_epoch_one_is_not_shared_when_the_reference_differs_from_the_policy():
    lab = zl.ZeroLossLab(vocab_size=64, hidden_size=16)
    lab.ref_logp = lab.ref_logp - 0.1  # the reference no longer equals the initial policy
    record = lab.run(2, beta=0.2)
    assert lab.first_epochs == {}
    k3 = math.exp(-0.1) + 0.1 - 1  # d = ref - logp = -0.1 on every token
    assert record["kl_term"][0] == pytest.approx(0.2 * k3, rel=1e-4)


def test_grad_norm_against_a_float64_loop():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape)) for shape in ((3, 4), (5,), (2, 2, 2))]
    for p in params[:2]:
        p.grad = torch.randn_like(p) * 10
    expected = math.sqrt(sum(float(x) ** 2 for p in params[:2] for x in p.grad.flatten()))
    assert zl._grad_norm(params) == pytest.approx(expected, rel=1e-6)
    assert zl._grad_norm(params[2:]) == 0.0  # no gradient at all


def test_lab_bad_input(lab):
    with pytest.raises(ValueError, match="epochs"):
        lab.run(0)
    with pytest.raises(ValueError, match="beta"):
        lab.run(2, beta=-0.1)
    with pytest.raises(ValueError, match="spread"):
        lab.lengths(1.5)
    with pytest.raises(ValueError, match="algo"):
        zl.run_demo_diagnostics("dapo", 1)
    with pytest.raises(ValueError, match="optimizer"):
        zl.run_demo_diagnostics("ppo", 1, optimizer="rmsprop")


# ---------------------------------------------------------------- plots and panel

def test_plots_return_figures_and_reject_bad_input(lab):
    records = zl.run_demo_diagnostics("ppo", 2, zl.small_config(vocab_size=100, hidden_size=8),
                                      seed=0)
    assert isinstance(plot_demo_run({"ppo": records}), Figure)
    with pytest.raises(ValueError):
        plot_demo_run({})
    assert isinstance(plot_off_zero_cases(["a", "b"], [0.0, 0.3]), Figure)
    with pytest.raises(ValueError, match="same length"):
        plot_off_zero_cases(["a"], [0.0, 0.3])
    drawing = EpochCurvesFigure(max_epochs=4).update(lab.run(4), epochs=2)
    assert list(drawing.loss_line.get_xdata()) == [1, 2]
    with pytest.raises(ValueError, match="epochs"):
        drawing.update(lab.run(2), epochs=3)


def test_zero_loss_panel_numbers(lab):
    assert PANEL_REGISTRY["zero_loss"][1] == "01"
    panel = zero_loss_panel(lab)
    panel.set(epochs=3, beta=0.0, spread=0.0, mode="seq-mean-token-mean", centred=True)
    assert abs(panel.values["loss at epoch 1"]) < 1e-6
    assert panel.values["grad norm at epoch 1"] > 0
    assert panel.values["shortest response"] == panel.values["longest response"] == 24

    panel.controls["mode"].value = "token-mean"
    panel.controls["spread"].value = 1.0
    lengths = lab.lengths(1.0)
    expected = loop_first_step_loss(lab.rewards - lab.rewards.mean(), lengths, "token-mean")
    assert panel.values["loss at epoch 1"] == pytest.approx(expected, abs=1e-6)
    assert panel.values["shortest response"] == int(lengths.min())

    panel.controls["beta"].value = 0.3
    panel.controls["epochs"].value = 6
    reference = lab.run(6, beta=0.3, spread=1.0, mode="token-mean")
    assert panel.values["loss at last epoch"] == reference["loss"][5]
    assert panel.values["beta x KL at last epoch"] == reference["kl_term"][5] > 0
    assert panel.values["grad norm at last epoch"] == reference["grad_norm"][5]
    assert panel.values["clipfrac at last epoch"] == reference["clipfrac"][5]

    panel.controls["centred"].value = False
    assert panel.values["sum of advantages"] == pytest.approx(float(lab.rewards.sum()), abs=1e-5)
    assert panel.errors == []
    assert all(math.isfinite(v) for v in panel.values.values())


def test_zero_loss_panel_keeps_a_bounded_number_of_runs(lab, monkeypatch):
    monkeypatch.setattr(zero_loss_widgets, "RUNS_KEPT", 3)
    panel = zero_loss_panel(lab)
    for beta in (0.1, 0.2, 0.3, 0.4):
        panel.controls["beta"].value = beta
    assert panel.runs.cache_info().currsize == 3
    kept = dict(panel.values)
    panel.controls["beta"].value = 0.0  # dropped: trained again from the start
    panel.controls["beta"].value = 0.4  # kept: nothing trained
    assert panel.values == kept
    assert panel.runs.cache_info().hits >= 1
    fresh = zero_loss_panel(lab)
    fresh.controls["beta"].value = 0.4
    assert fresh.values == kept
    assert fresh.image.value == panel.image.value


# ---------------------------------------------------------------- exercises

def reader_first_step_loss(advantages, lengths, mode):
    return loop_first_step_loss(advantages, lengths, mode)


def test_first_step_exercise_accepts_a_correct_answer_and_explains_wrong_ones():
    assert check_first_step_loss(reader_first_step_loss).startswith("Correct")
    with pytest.raises(ExerciseError, match="sign"):
        check_first_step_loss(lambda a, n, mode: -reader_first_step_loss(a, n, mode))
    with pytest.raises(ExerciseError, match="token-mean divides"):
        check_first_step_loss(lambda a, n, mode: 123.0 if mode == "token-mean"
                              else reader_first_step_loss(a, n, mode))
    with pytest.raises(ExerciseError, match="raised ZeroDivisionError"):
        check_first_step_loss(lambda a, n, mode: 1 / 0)


def test_adam_exercise():
    def adam_first_step(grad, lr):
        return -lr * grad / (grad.abs() + 1e-8)

    assert check_adam_first_step(adam_first_step).startswith("Correct")
    with pytest.raises(ExerciseError, match="bias correction"):
        check_adam_first_step(lambda grad, lr: -lr * grad)  # plain SGD
