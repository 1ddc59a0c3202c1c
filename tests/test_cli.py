"""The command line: ``python -m rlviz demo``."""

import subprocess
import sys

import torch
from demo_reference import RefConfig, ref_main

import rlviz
import rlviz.cli  # noqa: F401  (imported for rlviz.cli.main)


def run(*args):
    return subprocess.run([sys.executable, "-m", "rlviz", *args], capture_output=True,
                          text=True, timeout=300)


def test_demo_prints_the_demos_lines_for_a_seed():
    result = run("demo", "--algo", "ppo", "--steps", "3", "--seed", "7")
    assert result.returncode == 0, result.stderr
    torch.manual_seed(7)
    want, _, _ = ref_main(RefConfig(algo="ppo"), steps=3)
    assert result.stdout.splitlines() == want


def test_default_is_grpo_seed_0(capsys):
    assert rlviz.cli.main(["demo", "--steps", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    torch.manual_seed(0)
    want, _, _ = ref_main(RefConfig(algo="grpo"), steps=2)
    assert lines == want


def test_help_works():
    result = run("demo", "--help")
    assert result.returncode == 0
    assert "--algo" in result.stdout and "--seed" in result.stdout
    assert run("--help").returncode == 0


def test_bad_algo_is_a_one_line_error_with_exit_code_2():
    result = run("demo", "--algo", "trpo")
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(error_lines) == 1
    assert "'ppo'" in error_lines[0] and "'grpo'" in error_lines[0]


def test_bad_steps_exit_code_2():
    assert run("demo", "--steps", "0").returncode == 2
    assert run("demo", "--steps", "x").returncode == 2
