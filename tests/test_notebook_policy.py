"""The notebook policy of CONTRIBUTING.md, checked on every committed notebook."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb):
    return [cell for cell in nb["cells"] if cell["cell_type"] == "code"]


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def test_there_are_notebooks_numbered_from_00_without_gaps():
    names = [path.name for path in NOTEBOOKS]
    assert names, "no notebooks found"
    numbers = []
    for name in names:
        match = re.fullmatch(r"(\d\d)_[a-z0-9_]+\.ipynb", name)
        assert match, f"{name}: notebooks are named NN_topic.ipynb"
        numbers.append(int(match.group(1)))
    assert numbers == list(range(len(numbers))), f"numbering has gaps or repeats: {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_top_to_bottom_in_one_run(path):
    counts = [cell.get("execution_count") for cell in code_cells(load(path))]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts}; run `make notebooks`")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_kept_no_errors_no_widget_state(path):
    nb = load(path)
    assert "widgets" not in nb.get("metadata", {}), f"{path.name}: saved widget state"
    outputs = [out for cell in code_cells(nb) for out in cell.get("outputs", [])]
    assert outputs, f"{path.name}: committed without outputs"
    errors = [out for out in outputs if out.get("output_type") == "error"]
    assert not errors, f"{path.name}: a cell raised {errors[0].get('ename')}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_numbers_are_checked_and_widgets_are_ignored(path):
    cells = code_cells(load(path))
    assert any("nbval-check-output" in tags(c) for c in cells), (
        f"{path.name}: no cell tagged nbval-check-output, so CI checks none of its numbers")
    for cell in cells:
        shows_widget = any(WIDGET_MIME in out.get("data", {}) for out in cell.get("outputs", []))
        if shows_widget:
            assert "nbval-ignore-output" in tags(cell), (
                f"{path.name}: a cell showing a live widget is not tagged nbval-ignore-output:\n"
                f"{''.join(cell['source'])[:200]}")
        assert not {"nbval-check-output", "nbval-ignore-output"} <= set(tags(cell))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_seeds_and_page_starts_with_a_title(path):
    nb = load(path)
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and "".join(first["source"]).startswith("# "), (
        f"{path.name}: the page starts with a markdown title")
    assert "set_seed(" in "".join(code_cells(nb)[0]["source"]), (
        f"{path.name}: the first code cell calls rlviz.set_seed()")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checked_cells_print_no_raw_tensor_reprs(path):
    for cell in code_cells(load(path)):
        if "nbval-check-output" not in tags(cell):
            continue
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            assert "tensor(" not in text, f"{path.name}: a checked cell prints a raw tensor repr"
            assert not re.search(r"(?<![\w.])-0\.0+(?!\d*[1-9])\b", text), (
                f"{path.name}: a checked cell prints a signed zero (its sign is noise): {text!r}")
