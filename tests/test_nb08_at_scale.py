"""Notebook 08's experiments, panel and exercises, against numbers worked out by hand."""

import importlib.metadata
import importlib.util
import re
from pathlib import Path

import pytest
import torch

from rlviz.exercises.at_scale import (
    check_global_micro_loss,
    check_naive_factor,
    check_predictions,
)
from rlviz.exercises.common import ExerciseError
from rlviz.experiments import at_scale as ex
from rlviz.widgets import PANEL_REGISTRY, micro_batch_weights_panel

# spread 1: 16 + (32 p - 16) for p = 1, .9, .55, .45, .3, .2, .08, 0, rounded
FULL_SPREAD = [32, 29, 18, 14, 10, 6, 3, 0]


def test_lengths_by_hand():
    assert ex.spread_lengths(1.0) == FULL_SPREAD
    assert ex.spread_lengths(0.0) == [16] * 8
    with pytest.raises(ValueError, match="spread must be <= 1.0"):
        ex.spread_lengths(1.5)


def test_token_mean_weights_by_hand():
    # N = 112 tokens; chunks of two rows hold 61, 32, 16 and 3 tokens; K = 4
    data = ex.weights_data(n_micro=4, spread=1.0, mode="token-mean")
    unit = 8 * 32  # weights are reported in units of 1 / (B max_len)
    assert data["global"][:7] == pytest.approx([unit / 112] * 7, rel=1e-12)
    assert data["global"][7] == 0.0  # the empty response
    expected = [112 / (4 * 61)] * 2 + [112 / 128] * 2 + [112 / 64] * 2 + [112 / 12]
    assert data["factor"][:7] == pytest.approx(expected, rel=1e-12)
    assert data["naive"][6] == pytest.approx(unit / (4 * 3), rel=1e-12)  # 1 / (K N_4)
    assert data["largest factor"] == pytest.approx(112 / 12, rel=1e-12)
    assert data["micro_of"] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_seq_mean_factor_comes_from_the_empty_response():
    # B' = 7 non-empty responses; the last chunk holds 1 of them: factor 7 / (4 * 1)
    data = ex.weights_data(n_micro=4, spread=1.0, mode="seq-mean-token-mean")
    assert data["factor"][6] == pytest.approx(7 / 4, rel=1e-12)
    assert data["factor"][0] == pytest.approx(7 / 8, rel=1e-12)
    equal = ex.weights_data(n_micro=8, spread=0.0, mode="token-mean")
    assert equal["factor"] == pytest.approx([1.0] * 8, rel=1e-12)


def test_run_plan_by_hand():
    row = ex.run_plan(64, 256, 16384)  # 1024 prompts x 16 responses, 7e9 parameters
    assert row["responses"] == 16384
    assert row["rows per micro-batch"] == 1
    assert row["global token count N"] == 16384 * 8192
    assert row["micro-batch token count N_k"] == 8192
    assert row["naive factor spread"] == pytest.approx(0.6)
    assert row["state GB per rank"] == pytest.approx(16 * 7e9 / 64 / 1e9)  # 1.75
    per_token = 2 * 28 * 3584 + 4 * 152064  # 808960 bytes
    assert row["activation GB per micro-batch"] == pytest.approx(16384 * per_token / 1e9)
    assert row["memory GB per rank"] == pytest.approx(1.75 + 13.25400064, rel=1e-9)
    assert row["gradient GB sent per rank"] == pytest.approx(2 * 63 / 64 * 14.0)
    small = ex.run_plan(64, 16, 4096)
    assert small["rows per micro-batch"] == 16
    assert small["naive factor spread"] == pytest.approx(0.15)
    assert small["activation GB per micro-batch"] == pytest.approx(16 * 4096 * per_token / 1e9)
    with pytest.raises(ValueError, match="must divide the batch of 16384 responses"):
        ex.run_plan(64, 3, 16384)


def test_scaling_table_markdown_has_a_row_per_plan():
    text = ex.scaling_table_markdown()
    assert text.count("\n") == 1 + len(ex.DEFAULT_PLANS)
    assert "| 64 | 256 | 16384 | 1 |" in text


def test_panel_is_registered_and_shows_the_factors():
    assert PANEL_REGISTRY["micro_batch_weights"][1] == "08"
    panel = micro_batch_weights_panel()
    values = panel.set(n_micro=4, spread=1.0, mode="token-mean")
    assert values["largest naive factor"] == pytest.approx(112 / 12, rel=1e-12)
    assert values["smallest naive factor"] == pytest.approx(112 / 244, rel=1e-12)
    values = panel.set(mode="seq-mean-token-sum-norm")
    assert values["largest naive factor"] == pytest.approx(1.0, rel=1e-12)
    assert panel.errors == []


def good_factor(lengths, mode, n_micro):
    rows = len(lengths) // n_micro

    def count(ls):
        if mode == "token-mean":
            return sum(ls)
        if mode == "seq-mean-token-sum-norm":
            return len(ls)
        return sum(1 for n in ls if n > 0)

    out = []
    for k in range(n_micro):
        chunk = lengths[k * rows:(k + 1) * rows]
        for n in chunk:
            own = count(chunk)
            out.append(count(lengths) / (n_micro * own) if n > 0 and own > 0 else 1.0)
    return out


def good_micro_loss(loss, mask, mode, count, n_ranks):
    kept = torch.where(mask > 0, loss, torch.zeros_like(loss))  # (b, T)
    if mode == "seq-mean-token-mean":
        kept = kept / mask.sum(dim=1, keepdim=True).clamp_min(1.0)
    return n_ranks * kept.sum() / count.clamp_min(1.0)


def test_exercises_accept_right_answers_and_explain_wrong_ones():
    assert check_naive_factor(good_factor).startswith("Correct")
    assert check_global_micro_loss(good_micro_loss).startswith("Correct")
    with pytest.raises(ExerciseError, match="N_k with N / K"):
        check_naive_factor(lambda lengths, mode, n_micro: [1.0] * len(lengths))
    with pytest.raises(ExerciseError, match="multiply by n_ranks"):
        check_global_micro_loss(lambda loss, m, mode, c, r: good_micro_loss(loss, m, mode, c, 1))
    with pytest.raises(ExerciseError, match="your function raised ZeroDivisionError"):
        check_naive_factor(lambda lengths, mode, n_micro: 1 / 0)


def test_predictions_by_hand():
    # (a) spread 1: lengths 32 29 18 14 | 10 6 3 0, N = 112, the second half holds 19:
    # factor N / (K N_k) = 112 / 38; (c) states 16 * 7e9 / R bytes, activations of one
    # 16k-token response 16384 * (2 * 28 * 3584 + 4 * 152064) bytes, the same at both R
    activations = 16384 * (2 * 28 * 3584 + 4 * 152064) / 1e9
    ratio = (16 * 7e9 / 256 / 1e9 + activations) / (16 * 7e9 / 64 / 1e9 + activations)
    assert check_predictions(112 / 38, "seq-mean-token-mean", ratio).startswith("Correct")
    with pytest.raises(ExerciseError, match="second holding 19"):
        check_predictions(112 / 56, "seq-mean-token-mean", ratio)
    with pytest.raises(ExerciseError, match="is not it"):
        check_predictions(112 / 38, "token-mean", ratio)
    with pytest.raises(ExerciseError, match="one of rlviz's modes"):
        check_predictions(112 / 38, "bnpo", ratio)
    with pytest.raises(ExerciseError, match="not divided"):
        check_predictions(112 / 38, "seq-mean-token-mean", 0.25)  # states only


def test_every_registered_recipe_has_a_normaliser_row():
    from rlviz import LOSS_FN_REGISTRY

    rows = ex.recipe_normalisers(sorted(LOSS_FN_REGISTRY))  # KeyError if a setting is missing
    by_algo = {row["algo"]: row for row in rows}
    assert by_algo["dapo"]["trl"] == 'loss_type="dapo"'
    assert by_algo["dr_grpo"]["verl"] == 'loss_agg_mode="seq-mean-token-sum-norm"'
    with pytest.raises(KeyError, match="no TRL row"):
        ex.library_normaliser("TRL", 'loss_type="sapo"')


SOURCE_REFERENCE = re.compile(r"(?:([\w/]+\.py))?:(\d+)(?:-(\d+))?\s+`([^`]+)`")


def test_every_library_row_cites_lines_that_hold_its_code():
    """Each file:line of LIBRARY_NORMALISERS' sources, read in the installed TRL 1.16.0 /
    verl 0.9.1: the quoted code is on that line (or within two lines of it)."""
    table = ex.library_table_markdown()
    for row in ex.LIBRARY_NORMALISERS:
        assert row.source in table  # the notebook's table shows where each claim comes from
        package = {"TRL": "trl", "verl": "verl"}[row.library]
        assert importlib.metadata.version(package) == row.version
        root = Path(importlib.util.find_spec(package).submodule_search_locations[0])
        path = None
        references = list(SOURCE_REFERENCE.finditer(row.source))
        assert references, row.source
        for match in references:
            path = match.group(1) or path  # ":3157" continues the previous file
            first = int(match.group(2))
            last = int(match.group(3) or first)
            lines = (root / path).read_text().splitlines()[first - 3:last + 2]
            window = "".join("".join(lines).split())  # whitespace left out: code wraps
            for piece in match.group(4).split("..."):
                piece = "".join(piece.split()).strip(",")
                assert piece in window, (row.setting, path, first, piece)
