"""Bit-for-bit parity of rlviz's demo functions with the original demo (re-stated in
tests/demo_reference.py), on CPU float32, same seeds."""

import dataclasses
import io
from contextlib import redirect_stdout

import pytest
import torch
from demo_reference import (
    RefConfig,
    RefPolicy,
    ref_advantage,
    ref_fake_batch,
    ref_grpo,
    ref_kl,
    ref_main,
    ref_mask,
    ref_ppo,
    ref_train_step,
)

import rlviz

SMALL = dict(vocab_size=97, hidden_size=16, device="cpu")

DEMO_FIELDS = [
    ("algo", "ppo"), ("lr", 1e-4), ("clip_range", 0.2), ("beta_kl", 0.01), ("vf_coef", 0.5),
    ("ent_coef", 0.01), ("group_num", 4), ("input_len", 8), ("seq_len", 32),
    ("vocab_size", 50257), ("hidden_size", 256), ("device", "cpu"),
]


def test_config_has_the_demo_fields_first_in_order_with_their_defaults():
    fields = dataclasses.fields(rlviz.Config)
    assert [f.name for f in fields[: len(DEMO_FIELDS)]] == [name for name, _ in DEMO_FIELDS]
    cfg = rlviz.Config()
    for name, default in DEMO_FIELDS:
        assert getattr(cfg, name) == default, name


def test_same_seed_gives_the_same_weights():
    torch.manual_seed(3)
    ours = rlviz.TinyPolicy(rlviz.Config(**SMALL))
    torch.manual_seed(3)
    theirs = RefPolicy(RefConfig(**SMALL))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert torch.equal(a, b), name


def _inputs(seed=0, bs=8, cfg=None):
    cfg = cfg or RefConfig(**SMALL)
    torch.manual_seed(seed)
    policy = RefPolicy(cfg)
    input_ids, actions, rewards = ref_fake_batch(cfg, bs)
    pi = policy.log_prob(input_ids, actions)
    old = pi.detach() + 0.3 * torch.randn_like(pi)  # rho != 1 so the clip acts
    ref = pi.detach() + 0.1 * torch.randn_like(pi)
    return cfg, pi.detach(), old, ref, ref_advantage(rewards)


def test_mask():
    for dtype in (torch.float32, torch.float64):
        assert torch.equal(rlviz.compute_mask(3, 10, 4, "cpu", dtype),
                           ref_mask(3, 10, 4, "cpu", dtype))


def test_losses_bit_for_bit():
    cfg, pi, old, ref, adv = _inputs()
    mask = ref_mask(8, cfg.seq_len, cfg.input_len, "cpu", pi.dtype)
    len_oi = torch.full((8,), cfg.seq_len - cfg.input_len, dtype=torch.long)
    assert torch.equal(rlviz.ppo_policy_loss(pi, old, adv, mask, 0.2), ref_ppo(pi, old, adv, mask, 0.2))
    assert torch.equal(rlviz.grpo_kl(pi, ref, mask), ref_kl(pi, ref, mask))
    ours = rlviz.grpo_loss(pi, old, ref, adv, mask, len_oi, 4, 0.2, 0.01)
    assert torch.equal(ours, ref_grpo(pi, old, ref, adv, mask, len_oi, 4, 0.2, 0.01))
    # the wrapper dispatches to the same numbers
    for algo in ("ppo", "grpo"):
        cfg_ours = rlviz.Config(algo=algo, **SMALL)
        got = rlviz.policy_loss_wrapper(algo, pi, old, ref, adv, mask, len_oi, cfg_ours)
        want = (ref_ppo(pi, old, adv, mask, 0.2) if algo == "ppo"
                else ref_grpo(pi, old, ref, adv, mask, len_oi, 4, 0.2, 0.01))
        assert torch.equal(got, want), algo


def test_fake_batch_and_advantage_draw_the_same_numbers():
    cfg_ref, cfg = RefConfig(**SMALL), rlviz.Config(**SMALL)
    torch.manual_seed(5)
    theirs = ref_fake_batch(cfg_ref, 6)
    torch.manual_seed(5)
    ours = rlviz.make_fake_batch(cfg, 6)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    assert torch.equal(rlviz.compute_advantage_from_reward(ours[2]), ref_advantage(theirs[2]))


@pytest.mark.parametrize("algo", ["ppo", "grpo"])
def test_train_step_gives_same_loss_and_weights(algo):
    cfg_ref, cfg = RefConfig(algo=algo, **SMALL), rlviz.Config(algo=algo, **SMALL)
    torch.manual_seed(11)
    ref_pol, ref_ref = RefPolicy(cfg_ref), RefPolicy(cfg_ref)
    torch.manual_seed(11)
    pol, ref = rlviz.TinyPolicy(cfg), rlviz.TinyPolicy(cfg)
    opt_ref = torch.optim.Adam(ref_pol.parameters(), lr=1e-2)
    opt = torch.optim.Adam(pol.parameters(), lr=1e-2)
    for step in range(3):
        torch.manual_seed(100 + step)
        batch = ref_fake_batch(cfg_ref, 8)
        want = ref_train_step(cfg_ref, ref_pol, ref_ref, opt_ref, *batch)
        got = rlviz.train_step(cfg, pol, ref, opt, *batch)
        assert got == want
    for a, b in zip(pol.parameters(), ref_pol.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("algo", ["ppo", "grpo"])
def test_run_demo_small_config_matches_line_for_line(algo):
    lines = []
    torch.manual_seed(0)
    losses, policy = rlviz.run_demo(algo, steps=10, cfg=rlviz.Config(**SMALL),
                                    print_fn=lambda *a: lines.append(" ".join(map(str, a))))
    torch.manual_seed(0)
    want_lines, want_losses, want_policy = ref_main(RefConfig(algo=algo, **SMALL))
    assert lines == want_lines
    assert losses == want_losses
    for a, b in zip(policy.parameters(), want_policy.parameters()):
        assert torch.equal(a, b)


def test_main_runs_the_demo_loop(monkeypatch):
    """main() is the demo's entry point: "grpo", 10 steps, its printed lines, returns None."""
    import rlviz.demo_training as demo_training

    monkeypatch.setattr(demo_training, "Config", lambda: rlviz.Config(**SMALL))
    torch.manual_seed(0)
    out = io.StringIO()
    with redirect_stdout(out):
        assert rlviz.main() is None
    torch.manual_seed(0)
    want_lines, _, _ = ref_main(RefConfig(algo="grpo", **SMALL))
    assert out.getvalue().splitlines() == want_lines


def test_demo_at_full_size_same_losses_and_final_weights():
    """The demo's sizes (V = 50257, H = 256): about 10 s for each of the two runs."""
    torch.manual_seed(0)
    losses, policy = rlviz.run_demo("grpo", 10, cfg=rlviz.Config(device="cpu"),
                                    print_fn=lambda *a: None)
    torch.manual_seed(0)
    _, want_losses, want_policy = ref_main(RefConfig(algo="grpo"))
    assert losses == want_losses
    assert all(abs(loss) < 1e-4 for loss in losses)  # the demo's "±0.0000"
    for a, b in zip(policy.parameters(), want_policy.parameters()):
        assert torch.equal(a, b)
