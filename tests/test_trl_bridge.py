"""TRL 1.16.0's own GRPOTrainer on the toy task, on the CPU: its logged numbers mean what the
notebooks say, and rlviz's loss recomputed on TRL's batch equals TRL's loss.

Two short seeded runs (two optimizer steps each, tens of seconds on a CPU). Tolerance of the
loss equality: 1e-6 absolute + 1e-5 relative (float32 model; TRL's log-probs come from its fused
lm-head path, rlviz's from ``selective_log_prob`` on the logits).
"""

from __future__ import annotations

import json

import pytest

from rlviz.diagnose import diagnose
from rlviz.tasks import get_task
from rlviz.trl_bridge import completion_symbols, toy_reward, toy_tokenizer  # TRL 1.16.0

LOSS_TOL = dict(abs=1e-6, rel=1e-5)


@pytest.fixture(scope="module")
def on_policy(tmp_path_factory):
    from rlviz.trl_bridge import run_grpo

    return run_grpo(output_dir=str(tmp_path_factory.mktemp("on")), max_steps=2)


@pytest.fixture(scope="module")
def reuse(tmp_path_factory):
    """steps_per_generation=2 > gradient_accumulation_steps=1: every second step reuses the
    generation of the step before, after one optimizer step (rho != 1); beta > 0."""
    from rlviz.trl_bridge import run_grpo

    return run_grpo(output_dir=str(tmp_path_factory.mktemp("reuse")), max_steps=2,
                    steps_per_generation=2, beta=0.04, learning_rate=1e-2)


def test_tokenizer_round_trip_and_reward():
    tok = toy_tokenizer()
    ids = tok("<bos> 3 1 4 |", add_special_tokens=False)["input_ids"]
    assert ids == [10, 3, 1, 4, 11]  # rlviz.tasks ids: BOS=10, SEP=11
    assert tok.decode([4, 1, 3, 12], skip_special_tokens=True) == "4 1 3"
    reward = toy_reward("reverse")
    # hand values: exact answer 1; one of three right, length 3 -> 1/3; "|" is a wrong symbol
    assert reward(["p"] * 3, ["4 1 3", "4 9 9", "| 1 3"], symbols=[[3, 1, 4]] * 3) == [
        1.0, pytest.approx(1 / 3), pytest.approx(2 / 3)]
    assert completion_symbols("7 | 2") == [7, -1, 2]
    assert get_task("reverse").reward([3, 1, 4], [4, 1, 3]) == 1.0


def test_on_policy_loss_is_zero_and_clip_ratio_is_zero(on_policy):
    rows = [r for r in on_policy.log_history if "loss" in r]
    assert len(rows) == 2
    for row in rows:
        # num_iterations=1, steps_per_generation == gradient_accumulation_steps: rho = 1,
        # the advantages of each group sum to 0 -> the loss VALUE is 0 (float32 rounding)
        assert abs(row["loss"]) < 1e-6
        assert row["clip_ratio/region_mean"] == 0.0
        assert row["grad_norm"] > 1e-3  # while the gradient is not 0


def test_rlviz_loss_equals_trl_loss_on_policy(on_policy):
    assert len(on_policy.captured) == 2
    for c in on_policy.captured:
        assert c.rlviz_loss == pytest.approx(c.trl_loss, **LOSS_TOL)


def test_reuse_clips_and_losses_match(reuse):
    rows = {r["step"]: r for r in reuse.log_history if "loss" in r}
    clip = {s: r["clip_ratio/region_mean"] for s, r in rows.items()}
    # step 1 is the first micro-batch of a generation: rho = 1, nothing clipped;
    # step 2 comes after an optimizer step on the same samples
    assert clip[1] == 0.0
    assert clip[2] > 0.0
    assert "old_per_token_logps" in reuse.captured[1].inputs
    losses = [c.trl_loss for c in reuse.captured]
    assert max(abs(v) for v in losses) > 1e-2  # not the trivial zero
    for c in reuse.captured:
        assert c.rlviz_loss == pytest.approx(c.trl_loss, **LOSS_TOL)
    # the Trainer's logged loss is the loss of that step (gradient_accumulation_steps=1)
    for step, c in zip(sorted(rows), reuse.captured):
        assert rows[step]["loss"] == pytest.approx(c.trl_loss, **LOSS_TOL)


def test_trl_state_is_diagnosed(on_policy):
    with open(on_policy.state_path) as handle:
        assert "log_history" in json.load(handle)
    found = {f.pattern: f for f in diagnose(on_policy.state_path, num_iterations=1).findings}
    assert found["zero_loss"].verdict == "expected"
    assert found["clip_ratio_zero"].steps == (1, 2)


def test_first_pass_loss_is_minus_mean_advantage_of_a_shuffled_micro_batch(reuse):
    """TRL 1.16.0 shuffles the generation batch before splitting it into steps_per_generation
    micro-batches (grpo_trainer.py: shuffle_sequence_dict, then split_tensor_dict), so a
    micro-batch does not hold whole groups: at rho = 1 and KL = 0 (first step, policy = ref)
    the 'grpo' loss is -mean_i A_i of that micro-batch, which is not 0."""
    first = reuse.captured[0]
    adv = first.inputs["advantages"]  # (B,)
    assert abs(float(adv.sum())) > 1e-2  # the groups are split: the advantages do not cancel
    assert first.trl_loss == pytest.approx(-float(adv.double().mean()), **LOSS_TOL)
