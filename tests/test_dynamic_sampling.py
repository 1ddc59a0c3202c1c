"""DAPO's dynamic sampling: the filter on hand-built reward rounds (expected picks written
out by hand), the per-prompt-length reward, and the trainer's metrics with it."""

import math
from types import SimpleNamespace

import pytest
import torch

from rlviz.losses.dapo import dynamic_sampling
from rlviz.rollout import Rollout
from rlviz.trainer import PROMPT_LENGTHS, TrainConfig, sampled_metrics, train


def rounds_of(*rewards):
    """A ``sample_round`` handing out the given reward rounds, and the count of calls."""
    pending = [SimpleNamespace(rewards=torch.tensor(r)) for r in rewards]
    calls = []

    def sample_round():
        calls.append(1)
        return pending[len(calls) - 1]

    return sample_round, calls


def test_the_filter_keeps_informative_groups_in_generation_order():
    # 3 groups of G = 2 per round. Round 0: only group 1 varies; round 1: group 2;
    # round 2: groups 0 and 1 -> 4 informative groups, the 3 first are kept, no 4th round
    sample_round, calls = rounds_of(
        [1.0, 1.0, 0.0, 1.0, 0.5, 0.5],
        [0.0, 0.0, 0.0, 0.0, 0.2, 0.3],
        [1.0, 0.0, 0.1, 0.2, 0.0, 0.0],
        [0.0, 1.0, 0.0, 1.0, 0.0, 1.0],
    )
    rounds, picks = dynamic_sampling(sample_round, num_groups=3, group_size=2, max_rounds=4)
    assert picks == [(0, 1), (1, 2), (2, 0)]
    assert len(rounds) == 3 and len(calls) == 3


def test_one_round_is_enough_when_every_group_varies():
    sample_round, calls = rounds_of([0.0, 1.0, 0.3, 0.2])
    rounds, picks = dynamic_sampling(sample_round, num_groups=2, group_size=2, max_rounds=5)
    assert picks == [(0, 0), (0, 1)] and len(calls) == 1


def test_at_the_cap_zero_variance_groups_fill_the_batch_in_generation_order():
    sample_round, calls = rounds_of(
        [1.0, 1.0, 0.0, 0.0, 0.5, 0.5],
        [0.2, 0.2, 0.0, 0.7, 1.0, 1.0],
        [0.0, 0.1, 0.0, 0.2, 0.0, 0.3],
    )
    rounds, picks = dynamic_sampling(sample_round, num_groups=3, group_size=2, max_rounds=2)
    assert len(calls) == 2  # the cap, although only one informative group was found
    assert picks == [(1, 1), (0, 0), (0, 1)]


def test_groups_of_one_are_kept_as_in_verl():
    sample_round, _ = rounds_of([1.0, 1.0, 0.0])
    _, picks = dynamic_sampling(sample_round, num_groups=3, group_size=1, max_rounds=3)
    assert picks == [(0, 0), (0, 1), (0, 2)]


@pytest.mark.parametrize("kwargs, word", [
    (dict(num_groups=0, group_size=2, max_rounds=1), "num_groups"),
    (dict(num_groups=2, group_size=2, max_rounds=0), "max_rounds"),
    (dict(num_groups=3, group_size=2, max_rounds=1), "num_groups x group_size"),
])
def test_bad_input_names_the_argument(kwargs, word):
    sample_round, _ = rounds_of([0.0, 1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match=word):
        dynamic_sampling(sample_round, **kwargs)


@pytest.mark.parametrize("fields, word", [
    (dict(dynamic_sampling="yes"), "dynamic_sampling"),
    (dict(max_gen_batches=0), "max_gen_batches"),
    (dict(max_gen_batches=True), "max_gen_batches"),
    (dict(dynamic_sampling=True, algo="ppo_gae"), "dynamic_sampling"),
])
def test_bad_config_names_the_field(fields, word):
    with pytest.raises(ValueError, match=word):
        TrainConfig(**fields).validate()


def test_reward_per_prompt_length_by_hand():
    batch = SimpleNamespace(prompts=[[1, 2, 3], [1, 2, 3], [4, 5, 6, 7], [1, 2, 3]],
                            rewards=torch.tensor([0.5, 1.0, 0.25, 0.0]),
                            lengths=torch.tensor([4, 2, 5, 3]))
    out = sampled_metrics(batch)
    assert out["reward"] == pytest.approx(1.75 / 4)
    assert out["response_length"] == pytest.approx(3.5)
    assert out["reward_len3"] == pytest.approx(0.5)
    assert out["reward_len4"] == pytest.approx(0.25)
    assert PROMPT_LENGTHS == (3, 4, 5) and math.isnan(out["reward_len5"])


def test_concat_then_select_gives_back_the_parts():
    def part(offset):
        return Rollout(prompts=[[offset]] * 2, sequences=torch.arange(4).view(2, 2) + offset,
                       attention_mask=torch.ones(2, 2), responses=torch.zeros(2, 1),
                       response_mask=torch.ones(2, 1), lengths=torch.ones(2),
                       old_logp=torch.zeros(2, 1), ref_logp=torch.zeros(2, 1),
                       old_values=torch.zeros(2, 1), rewards=torch.tensor([0.0, 1.0]) + offset,
                       prompt_width=1, group_size=2, temperature=1.0)

    joined = Rollout.concat([part(0), part(10)])
    assert joined.rewards.tolist() == [0.0, 1.0, 10.0, 11.0]
    assert joined.prompts == [[0], [0], [10], [10]]
    back = joined.select(torch.tensor([2, 3]))
    assert torch.equal(back.sequences, part(10).sequences)
    with pytest.raises(ValueError, match="group_size"):
        Rollout.concat([part(0), Rollout(**{**part(1).__dict__, "group_size": 1})])


TINY = dict(steps=3, samples_per_step=32, epochs=1, minibatches=2, eval_every=10,
            eval_prompts=8)


def without_seconds(rows):
    return [{k: None if math.isnan(v) else v for k, v in row.items() if k != "seconds"}
            for row in rows]


def test_the_trainer_with_dynamic_sampling_reports_the_first_round():
    plain = train(TrainConfig(**TINY), progress=False).metrics
    dynamic = train(TrainConfig(dynamic_sampling=True, max_gen_batches=3, **TINY),
                    progress=False).metrics
    # step 0 samples the same first round from the same policy: same share, same reward
    for key in ("reward", "frac_reward_zero_std", "response_length", "reward_len3",
                "reward_len4", "reward_len5"):
        assert dynamic[0][key] == plain[0][key] or (
            math.isnan(dynamic[0][key]) and math.isnan(plain[0][key]))
    for row in plain:
        assert row["gen_rounds"] == 1 and row["samples_generated"] == 32
    for row in dynamic:
        assert 1 <= row["gen_rounds"] <= 3
        assert row["samples_generated"] == 32 * row["gen_rounds"]
        assert row["gen_rounds"] == 1 or row["frac_reward_zero_std"] > 0
    again = train(TrainConfig(dynamic_sampling=True, max_gen_batches=3, **TINY),
                  progress=False).metrics
    assert without_seconds(again) == without_seconds(dynamic)


def test_every_group_flat_until_the_cap_gives_finite_numbers():
    # a near-zero temperature samples the same response G times: every group is flat
    rows = train(TrainConfig(dynamic_sampling=True, max_gen_batches=2, temperature=1e-4,
                             **TINY), progress=False).metrics
    for row in rows:
        assert row["frac_reward_zero_std"] == 1.0
        assert row["gen_rounds"] == 2 and row["samples_generated"] == 64
        assert all(math.isfinite(row[k]) for k in ("loss", "policy_loss", "entropy",
                                                    "grad_norm", "reward"))


def test_verl_settings_named_in_the_docs_exist_in_the_installed_verl():
    """verl 0.9.1: algorithm.filter_groups {enable, metric, max_num_gen_batches} in the
    shipped trainer config (off, no cap by default), and the V1 trainer's note that it
    ignores the cap, as rlviz.losses.dapo.dynamic_sampling's docstring says."""
    import importlib.metadata
    import importlib.util
    from pathlib import Path

    import yaml

    assert importlib.metadata.version("verl") == "0.9.1"
    root = Path(importlib.util.find_spec("verl").submodule_search_locations[0])
    config = yaml.safe_load((root / "trainer/config/ppo_trainer.yaml").read_text())
    groups = config["algorithm"]["filter_groups"]
    assert groups["enable"] is False and groups["max_num_gen_batches"] == 0
    assert "metric" in groups
    trainer_base = (root / "trainer/ppo/v1/trainer_base.py").read_text()
    assert "is ignored by the built-in V1 ReplayBuffer" in trainer_base
