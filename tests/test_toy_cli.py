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


def test_help_from_the_shell():
    done = subprocess.run([sys.executable, "-m", "rlviz", "train", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for word in ("--algo", "--task", "--steps", "--seed", "--out", "ppo_gae", "reverse"):
        assert word in done.stdout
