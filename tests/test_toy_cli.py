"""``python -m rlviz train``: output, CSV, help and one-line errors with exit code 2."""

import csv
import subprocess
import sys

import pytest

from rlviz.cli import main

FAST = ["--steps", "2", "--samples", "32", "--no-progress"]


def test_train_prints_a_summary_and_writes_the_csv(tmp_path, capsys):
    out = tmp_path / "metrics.csv"
    code = main(["train", "--algo", "ppo_gae", "--task", "sort", "--seed", "3", *FAST,
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "algo ppo_gae on task sort: 2 steps" in printed
    assert "final reward" in printed and f"metrics written to {out}" in printed
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert all(0.0 <= float(r["reward"]) <= 1.0 for r in rows)
    assert [int(r["step"]) for r in rows] == [0, 1]


def test_the_same_seed_writes_the_same_rewards(tmp_path, capsys):
    tables = []
    for name in ("a.csv", "b.csv"):
        assert main(["train", *FAST, "--out", str(tmp_path / name)]) == 0
        with open(tmp_path / name) as handle:
            tables.append([r["reward"] for r in csv.DictReader(handle)])
    assert tables[0] == tables[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--algo", "nope"], "argument --algo: invalid choice: 'nope'"),
        (["--task", "nope"], "argument --task: invalid choice: 'nope'"),
        (["--steps", "0"], "argument --steps: must be a positive integer"),
        (["--steps", "many"], "argument --steps"),
        (["--samples", "100"], "samples_per_step=100 must be a multiple of group_num=8"),
        (["--stop-reward", "2"], "argument --stop-reward: must be a number in [0, 1]"),
        (["--out", "/no/such/dir/m.csv"], "cannot write --out"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--epochs", "0"], "argument --epochs: must be a positive integer"),
        (["--minibatches", "64"], "cannot fill minibatches=64"),
        (["--lr", "0"], "argument --lr: must be a number > 0"),
        (["--ent-coef", "-1"], "argument --ent-coef: must be a number >= 0"),
        (["--eps-high", "x"], "argument --eps-high: must be a number >= 0, got 'x'"),
        (["--loss-agg-mode", "sum"], "argument --loss-agg-mode: invalid choice: 'sum'"),
        (["--adv-scale", "std"], "argument --adv-scale: invalid choice: 'std'"),
        (["--max-gen-batches", "0"], "argument --max-gen-batches: must be a positive integer"),
        (["--overlong-buffer", "-2"], "argument --overlong-buffer: must be an integer >= 0"),
        (["--overlong-buffer", "99"], "overlong_buffer must be an integer in [0, 8]"),
        (["--positions", "rope"], "argument --positions: invalid choice: 'rope'"),
        (["--n-layers", "0"], "argument --n-layers: must be a positive integer"),
        (["--algo", "ppo_gae", "--dynamic-sampling"], "dynamic_sampling needs groups"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_code_2(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        code = main(["train", *args, "--steps", "1"] if "--steps" not in args
                    else ["train", *args])
        raise SystemExit(code)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("python -m rlviz train: error:") and message in lines[0]


def test_the_knobs_reach_the_trainer(tmp_path, capsys, monkeypatch):
    import rlviz.trainer

    seen = []
    real_train = rlviz.trainer.train
    monkeypatch.setattr(rlviz.trainer, "train",
                        lambda cfg, progress: seen.append(cfg) or real_train(cfg, progress))
    code = main(["train", *FAST, "--epochs", "1", "--minibatches", "2", "--lr", "0.002",
                 "--ent-coef", "0", "--loss-agg-mode", "token-mean", "--adv-scale", "none",
                 "--eps-low", "0.1", "--eps-high", "0.28", "--dynamic-sampling",
                 "--max-gen-batches", "2", "--overlong-filter", "--overlong-buffer", "3",
                 "--n-layers", "1", "--hidden-size", "32", "--positions", "column"])
    assert code == 0
    cfg = seen[0]
    assert (cfg.epochs, cfg.minibatches, cfg.lr, cfg.ent_coef) == (1, 2, 0.002, 0.0)
    assert (cfg.loss_agg_mode, cfg.adv_scale, cfg.eps_low, cfg.eps_high) == (
        "token-mean", "none", 0.1, 0.28)
    assert (cfg.dynamic_sampling, cfg.max_gen_batches) == (True, 2)
    assert (cfg.overlong_filter, cfg.overlong_buffer) == (True, 3)
    assert (cfg.n_layers, cfg.hidden_size, cfg.positions) == (1, 32, "column")
    hp = cfg.hparams()
    assert (hp.loss_agg_mode, hp.adv_scale, hp.eps_high) == ("token-mean", "none", 0.28)


def test_unset_loss_knobs_keep_the_algorithms_defaults(capsys, monkeypatch):
    import rlviz.trainer

    seen = []
    monkeypatch.setattr(rlviz.trainer, "train", lambda cfg, progress: seen.append(cfg) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["train", "--algo", "dr_grpo", *FAST])
    assert seen[0].hparams().loss_agg_mode == "seq-mean-token-sum-norm"
    assert seen[0].hparams().adv_scale == "none"
    assert not seen[0].dynamic_sampling and not seen[0].overlong_filter


def test_help_from_the_shell():
    done = subprocess.run([sys.executable, "-m", "rlviz", "train", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for word in ("--algo", "--task", "--steps", "--seed", "--out", "ppo_gae", "reverse"):
        assert word in done.stdout
