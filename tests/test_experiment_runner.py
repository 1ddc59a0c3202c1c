"""The multi-seed runner: bad input fails before anything runs, parallel runs give the
numbers of a plain ``train`` call, an interrupted run loses no finished run, and the
reproduction check fails when the code changes its numbers."""

import json
import math

import numpy as np
import pytest

from rlviz.experiments import runner
from rlviz.experiments.dynamics import (
    curve_bands,
    final_values,
    median_or_none,
    threshold_steps,
    time_bands,
)
from rlviz.experiments.runner import (
    DIGITS,
    Experiment,
    compare_records,
    load_results,
    read_cache,
    reproduce_one,
    run_experiment,
)
from rlviz.trainer import TrainConfig, train

TINY = dict(steps=3, samples_per_step=16, group_num=4, epochs=1, minibatches=1,
            hidden_size=16, n_heads=2, n_layers=1, eval_every=1, eval_prompts=8)


def tiny_experiment(seeds=(0, 1), name="tiny"):
    return Experiment(name=name, configs={"grpo": {"algo": "grpo_paper"},
                                          "dr": {"algo": "dr_grpo"}},
                      seeds=seeds, base=TINY)


# ---- bad input ------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, words", [
    (dict(configs={"a": {"algo": "nope"}}), ["configs['a']", "nope"]),
    (dict(seeds=()), ["seeds"]),
    (dict(seeds=[0, 0]), ["seeds", "distinct"]),
    (dict(seeds=[0.5]), ["seeds", "integers"]),
    (dict(configs={"a": {"learning_rate": 1e-3}}), ["configs['a']", "learning_rate"]),
    (dict(base={"epochz": 2}), ["base", "epochz"]),
    (dict(configs={"a": {"seed": 3}}), ["configs['a']", "seed"]),
    (dict(configs={}), ["configs"]),
    (dict(configs={"a": {"task": "unknown"}}), ["configs['a']", "unknown"]),
    (dict(configs={"a": {"steps": 0}}), ["configs['a']", "steps"]),
    (dict(metrics=("reward", "banana")), ["metrics", "banana"]),
    (dict(name="a/b"), ["name"]),
])
def test_bad_input_fails_fast_naming_the_argument(kwargs, words):
    arguments = dict(name="bad", configs={"a": {}}, seeds=(0,), base=TINY)
    arguments.update(kwargs)
    with pytest.raises(ValueError) as error:
        Experiment(**arguments)
    for word in words:
        assert word in str(error.value)


def test_bad_workers_fail(tmp_path):
    with pytest.raises(ValueError, match="workers"):
        run_experiment(tiny_experiment(), cache_dir=tmp_path, workers=0, progress=False)
    with pytest.raises(TypeError, match="experiment"):
        run_experiment({"name": "x"}, cache_dir=tmp_path, progress=False)


# ---- running --------------------------------------------------------------------
def stored(value):
    return None if math.isnan(value) else float(f"{value:.{DIGITS}g}")


def test_parallel_runs_equal_plain_train_calls_and_make_a_tidy_table(tmp_path):
    experiment = tiny_experiment()
    table = run_experiment(experiment, cache_dir=tmp_path, workers=2, progress=False)
    assert len(table.rows) == 2 * 2 * TINY["steps"]
    assert {(r["config"], r["seed"]) for r in table.rows} == set(experiment.pairs())
    assert list(table.rows[0])[:3] == ["config", "seed", "step"]
    for config, algo in (("grpo", "grpo_paper"), ("dr", "dr_grpo")):
        plain = train(TrainConfig(algo=algo, seed=1, **TINY), progress=False).metrics
        rows = table.where(config=config, seed=1)
        assert [r["step"] for r in rows] == [0, 1, 2]
        for row, expected in zip(rows, plain):
            for metric in ("reward", "entropy", "greedy_reward", "kl_ref"):
                assert stored(row[metric]) == stored(expected[metric]), (config, metric)
    provenance = table.provenance
    assert provenance["experiment"]["seeds"] == [0, 1]
    assert provenance["experiment"]["configs"]["dr"] == {"algo": "dr_grpo"}
    assert len(provenance["code_hash"]) == 16 and provenance["torch"]
    assert provenance["rlviz"]


def test_an_interrupted_run_loses_no_finished_run(tmp_path, monkeypatch):
    experiment = tiny_experiment()
    full = run_experiment(experiment, cache_dir=tmp_path, workers=1, progress=False)
    path = tmp_path / "tiny.jsonl"
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + 4  # provenance + one line per run
    # as if killed while writing the fourth run: three whole lines and half of one
    path.write_text("\n".join(lines[:4]) + "\n" + lines[4][: len(lines[4]) // 2])
    with pytest.raises(json.JSONDecodeError):
        json.loads(path.read_text().splitlines()[-1])
    calls = []
    real = runner.run_one
    monkeypatch.setattr(runner, "run_one", lambda *a: calls.append(a[1:]) or real(*a))
    again = run_experiment(experiment, cache_dir=tmp_path, workers=1, progress=False)
    assert calls == [experiment.pairs()[-1][:2]]  # only the lost run ran again
    def without_clock(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert without_clock(again.rows[:9]) == without_clock(full.rows[:9])
    assert again.rows[:9] == full.rows[:9]  # the kept runs are the cached ones, clock included
    assert without_clock(again.rows) == without_clock(full.rows)


def test_a_changed_experiment_starts_its_cache_afresh(tmp_path):
    run_experiment(tiny_experiment(seeds=(0,)), cache_dir=tmp_path, workers=1,
                   progress=False)
    table = run_experiment(tiny_experiment(seeds=(1,)), cache_dir=tmp_path, workers=1,
                           progress=False)
    assert {r["seed"] for r in table.rows} == {1}
    provenance, records = read_cache(tmp_path / "tiny.jsonl")
    assert provenance["experiment"]["seeds"] == [1] and len(records) == 2


def test_reproduction_fails_when_the_code_changes_its_numbers(tmp_path, monkeypatch):
    run_experiment(tiny_experiment(seeds=(0,)), cache_dir=tmp_path, workers=1,
                   progress=False)
    assert reproduce_one("tiny", cache_dir=tmp_path) == []
    assert reproduce_one("tiny", cache_dir=tmp_path, pair=("dr", 0)) == []
    real_train = runner.train

    def changed_code(cfg, progress=False):  # a "code change": a slightly different step size
        cfg.lr *= 1.01
        return real_train(cfg, progress=progress)

    monkeypatch.setattr(runner, "train", changed_code)
    problems = reproduce_one("tiny", cache_dir=tmp_path)
    assert problems and "at step" in problems[0]


def test_compare_records_ignores_only_the_wall_clock():
    cached = {"metrics": {"reward": [0.5, 0.25], "seconds": [1.0, 2.0]}}
    assert compare_records(cached, {"metrics": {"reward": [0.5, 0.25],
                                                "seconds": [9.0, 9.0]}}) == []
    assert compare_records(cached, {"metrics": {"reward": [0.5, 0.2500001],
                                                "seconds": [1.0, 2.0]}})
    assert compare_records(cached, {"metrics": {"reward": [0.5], "seconds": [1.0]}})


def test_load_results_of_a_missing_cache_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="make experiments"):
        load_results("absent", cache_dir=tmp_path)


# ---- summaries ------------------------------------------------------------------
def test_summaries_of_a_table(tmp_path):
    table = run_experiment(tiny_experiment(), cache_dir=tmp_path, workers=1, progress=False)
    bands = curve_bands(table, "reward")
    steps, mean, low, high = bands["grpo"]
    rewards = np.array([[r["reward"] for r in table.where(config="grpo", seed=s)]
                        for s in (0, 1)])  # (2, 3)
    assert list(steps) == [0, 1, 2]
    np.testing.assert_allclose(mean, rewards.mean(axis=0))
    half = 12.706 * rewards.std(axis=0, ddof=1) / math.sqrt(2)  # t_{0.975, 1}
    np.testing.assert_allclose(high - mean, half, rtol=1e-9, atol=1e-12)
    assert np.all(low <= mean) and np.all(mean <= high)
    seconds, tmean, _, _ = time_bands(table, "reward")["dr"]
    assert np.all(np.diff(seconds) > 0) and len(tmean) == len(seconds)
    assert threshold_steps(table, threshold=2.0) == {"grpo": [None, None], "dr": [None, None]}
    assert threshold_steps(table, threshold=0.0, window=2) == {"grpo": [2, 2], "dr": [2, 2]}
    final = final_values(table, "reward", last=1)["grpo"]
    assert final[0] == pytest.approx(rewards[:, -1].mean())
    assert median_or_none([3, None, 5]) == 5 and median_or_none([None, None, 4]) is None


def test_more_seeds_keep_the_finished_runs(tmp_path, monkeypatch):
    run_experiment(tiny_experiment(seeds=(0,)), cache_dir=tmp_path, workers=1, progress=False)
    calls = []
    real = runner.run_one
    monkeypatch.setattr(runner, "run_one", lambda *a: calls.append(a[1:]) or real(*a))
    table = run_experiment(tiny_experiment(seeds=(0, 1)), cache_dir=tmp_path, workers=1,
                           progress=False)
    assert sorted(calls) == [("dr", 1), ("grpo", 1)]  # seed 0 came from the cache
    assert {(r["config"], r["seed"]) for r in table.rows} == {
        ("grpo", 0), ("grpo", 1), ("dr", 0), ("dr", 1)}
    assert table.provenance["experiment"]["seeds"] == [0, 1]
