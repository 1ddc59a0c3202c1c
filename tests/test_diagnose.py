"""``rlviz diagnose`` on small hand-written TRL and verl logs (metric names of TRL 1.16.0 and
verl 0.9.1)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from rlviz.diagnose import LogFormatError, diagnose, load_log, report


def trl_state(rows):
    """A trainer_state.json as the HF Trainer writes it: log_history + a final summary entry."""
    history = [dict(step=i + 1, epoch=0.1 * (i + 1), learning_rate=1e-6, **row)
               for i, row in enumerate(rows)]
    history.append({"step": len(rows), "train_runtime": 12.0, "train_loss": 0.0})
    return {"global_step": len(rows), "log_history": history}


def write(tmp_path, name, obj):
    path = tmp_path / name
    if isinstance(obj, list):
        path.write_text("\n".join(json.dumps(o) for o in obj) + "\n")
    else:
        path.write_text(json.dumps(obj))
    return path


def healthy_trl(n=8):
    return [{"loss": 0.0, "grad_norm": 0.5, "reward": 0.3 + 0.01 * i, "reward_std": 0.3,
             "frac_reward_zero_std": 0.1, "entropy": 1.5, "clip_ratio/region_mean": 0.0,
             "completions/clipped_ratio": 0.0, "completions/mean_length": 10.0}
            for i in range(n)]


def by_pattern(diagnosis):
    return {f.pattern: f for f in diagnosis.findings}


def test_on_policy_trl_log_zero_loss_and_zero_clip_are_expected(tmp_path):
    found = by_pattern(diagnose(write(tmp_path, "trainer_state.json", trl_state(healthy_trl())),
                                num_iterations=1))
    assert set(found) == {"zero_loss", "clip_ratio_zero"}
    assert found["zero_loss"].verdict == "expected"
    assert found["clip_ratio_zero"].verdict == "expected"
    assert found["zero_loss"].steps == tuple(range(1, 9))
    assert found["zero_loss"].notebook[0] == "notebooks/01_why_the_loss_is_zero.ipynb"


def test_zero_clip_with_reuse_is_a_problem_and_unknown_setting_is_a_check():
    state = trl_state(healthy_trl())
    assert by_pattern(diagnose(state, num_iterations=2))["clip_ratio_zero"].verdict == "problem"
    assert by_pattern(diagnose(state))["clip_ratio_zero"].verdict == "check"


def test_no_learning_signal_names_the_dead_steps():
    rows = healthy_trl(6)
    for i in (2, 4):
        rows[i].update(grad_norm=0.0, frac_reward_zero_std=1.0)
    rows[5].update(frac_reward_zero_std=1.0, grad_norm=0.02)  # beta > 0: KL gradient only
    found = by_pattern(diagnose(trl_state(rows)))
    assert found["no_learning_signal"].verdict == "problem"
    assert found["no_learning_signal"].steps == (3, 5)
    assert "05_group_normalization" in found["no_learning_signal"].notebook[0]


def test_loss_rising_with_reward_and_kl_rising():
    rows = healthy_trl(9)
    for i, row in enumerate(rows):
        kl = 0.01 * (i + 1) ** 2
        row.update(kl=kl, loss=0.04 * kl, reward=0.1 + 0.08 * i)
    found = by_pattern(diagnose(trl_state(rows)))
    assert found["loss_rises_with_reward"].verdict == "expected"
    assert found["kl_rising"].verdict == "check"  # 0.01*(7..9)^2 ~ 0.65 < 1 nat
    assert "zero_loss" not in found  # 0.04 * kl exceeds 1e-3 from step 3 on
    # hand computation of the reported thirds: kl of steps 1-3 and 7-9
    assert "0.0467 -> 0.647" in found["kl_rising"].seen


def test_truncation_entropy_collapse_and_clip_high():
    rows = healthy_trl(9)
    for i, row in enumerate(rows):
        row.update(entropy=2.0 * 0.7**i, **{"completions/clipped_ratio": 0.05 * i,
                                           "clip_ratio/region_mean": 0.3})
    found = by_pattern(diagnose(trl_state(rows)))
    assert found["truncated"].verdict == "problem"
    assert found["truncated"].steps == (3, 4, 5, 6, 7, 8, 9)  # 0.05 * i >= 0.1
    assert found["entropy_collapse"].verdict == "problem"  # 2 * 0.7^8 = 0.115 < 0.4
    assert found["clip_ratio_high"].verdict == "problem"
    assert "clip_ratio_zero" not in found


def test_verl_file_logger_lines(tmp_path):
    lines = []
    for step in range(1, 7):
        flat = step in (2, 3)
        data = {"actor/pg_loss": 1e-5 * step, "actor/pg_clipfrac": 0.0,
                "actor/grad_norm": 0.0 if flat else 0.3, "critic/score/mean": 0.2,
                "critic/advantages/min": 0.0 if flat else -1.1,
                "critic/advantages/max": 0.0 if flat else 1.3,
                "response_length/clip_ratio": 0.0, "actor/entropy": 1.2,
                "response_length/mean": 40.0}
        lines.append({"step": step, "data": data})
    path = write(tmp_path, "run.jsonl", lines)
    result = diagnose(path, num_iterations=1)
    assert result.source == "verl"
    found = by_pattern(result)
    assert found["no_learning_signal"].steps == (2, 3)
    assert found["zero_loss"].verdict == "expected"
    assert found["clip_ratio_zero"].verdict == "expected"
    assert any(item.startswith("kl_rising") for item in result.not_checked)


def test_flat_verl_lines_and_partial_last_line(tmp_path):
    path = tmp_path / "flat.jsonl"
    rows = [json.dumps({"step": s, "actor/pg_loss": 0.2, "actor/kl_loss": 0.001 * s})
            for s in range(1, 5)]
    path.write_text("\n".join(rows) + '\n{"step": 5, "actor/pg_lo')  # still being written
    log = load_log(path)
    assert log.source == "verl" and log.num_records == 4
    assert log.keys["kl"] == "actor/kl_loss"


def test_report_text_has_verdict_seen_why_read():
    text = report(diagnose(trl_state(healthy_trl()), num_iterations=1))
    assert "[expected] the loss is ~0" in text
    assert "seen: loss at steps {1: 0, 2: 0" in text
    assert 'read: notebooks/03_ratio_clipping.ipynb, section "On a real batch' in text


def test_nan_is_reported_not_raised():
    rows = healthy_trl(4)
    rows[2]["loss"] = float("nan")
    found = by_pattern(diagnose(trl_state(rows)))
    assert found["non_finite"].steps == (3,)
    assert math.isnan(found["non_finite"].values[0])


@pytest.mark.parametrize("content,match", [
    ("", "empty"),
    ("hello world", "not JSON"),
    ('{"a": 1}', "unknown log format"),
    ('[1, 2, 3]', "unknown log format"),
    ('{"log_history": 5}', "'log_history' list"),
    ('{"log_history": [{"epoch": 1}]}', "no record with a 'step'"),
    ('{"log_history": [{"step": 1, "foo": 2.0}]}', "none of the metrics"),
    ('{"step": 1, "data": {"x": 1}}\n{"step": 2, "data": {"x": 2}}', "none of the metrics"),
])
def test_bad_input_messages(tmp_path, content, match):
    path = tmp_path / "log.json"
    path.write_text(content)
    with pytest.raises(LogFormatError, match=match):
        diagnose(path)


def test_missing_file_and_bad_num_iterations(tmp_path):
    with pytest.raises(LogFormatError, match="cannot read"):
        diagnose(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="num_iterations"):
        diagnose(trl_state(healthy_trl()), num_iterations=0)


def test_partial_log_single_step_does_not_crash():
    result = diagnose(trl_state([{"loss": 0.1}]))
    assert result.findings == []
    assert any(item.startswith("no_learning_signal") for item in result.not_checked)


def test_cli(tmp_path):
    path = write(tmp_path, "trainer_state.json", trl_state(healthy_trl()))
    ok = subprocess.run([sys.executable, "-m", "rlviz", "diagnose", str(path),
                         "--num-iterations", "1"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("trl log, 8 logged steps: 2 pattern(s) found")
    as_json = subprocess.run([sys.executable, "-m", "rlviz", "diagnose", str(path), "--json"],
                             capture_output=True, text=True, timeout=120)
    assert [f["pattern"] for f in json.loads(as_json.stdout)["findings"]] == [
        "zero_loss", "clip_ratio_zero"]
    bad = tmp_path / "bad.txt"
    bad.write_text("not a log")
    err = subprocess.run([sys.executable, "-m", "rlviz", "diagnose", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert err.returncode == 2 and "not JSON" in err.stderr and "Traceback" not in err.stderr
