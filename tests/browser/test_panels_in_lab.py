"""Every slider panel, driven in a real JupyterLab by a headless Chromium.

For each notebook that shows panels: open it, Run All Cells, wait for the panels, move a
control of each panel with the keyboard (or click Run), and check that the readout text
and the plot's pixels changed, with no error in the panel, the log console, a cell output
or the browser console. A screenshot of each panel after the move goes to
artifacts/screenshots/<notebook>_<panel index>.png.

The first test drives a small notebook built here, whose panels include a frozen one and
one that raises, to show the checks can fail.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest
from labdriver import PanelCheckError, notebooks_missing, panel_notebooks

from rlviz.widgets import PANEL_REGISTRY

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PANEL_NOTEBOOKS = panel_notebooks(NOTEBOOKS, PANEL_REGISTRY)


def test_every_registered_panel_has_its_notebook():
    missing = notebooks_missing(NOTEBOOKS, PANEL_REGISTRY)
    assert not missing, (
        "panels registered for notebooks that do not exist in notebooks/: "
        + "; ".join(f"{number}: {names}" for number, names in missing.items()))


# -- the harness on a notebook of known panels -------------------------------------------

SELFTEST_CELLS = [
    """
    import numpy as np

    import rlviz.widgets as W
    from rlviz.plots.live import LiveFigure

    x = np.linspace(0.0, 6.0, 50)

    def line_figure():
        live = LiveFigure(figsize=(3, 2), dpi=60)
        axes = live.figure.add_subplot()
        (line,) = axes.plot(x, np.sin(x))
        axes.set_ylim(-3, 3)
        live.moving = [line]  # what the updates change
        return live, line
    """,
    # 0: a working slider panel (update on release, as for slow panels)
    """
    figure, line = line_figure()

    def update(amplitude):
        line.set_ydata(amplitude * np.sin(x))
        return {"amplitude": amplitude, "peak": float(np.max(amplitude * np.sin(x)))}

    W.Panel("working", {"amplitude": W.slider("amplitude", 1.0, 0.0, 2.0, 0.1,
                                              continuous_update=False)}, figure, update)
    """,
    # 1: a working Run-button panel
    """
    run_figure, run_line = line_figure()

    def run(steps):
        run_line.set_ydata(np.sin(steps * x / 10))
        return {"steps": steps, "last": float(np.sin(steps * x[-1] / 10))}

    W.Panel("run", {"steps": W.slider("steps", 10, 1, 20, 1)}, run_figure, run,
            run_button=True)
    """,
    # 2: a frozen panel: the slider changes neither the numbers nor the plot
    """
    frozen_figure, _ = line_figure()
    W.Panel("frozen", {"ignored": W.slider("ignored", 1, 0, 5, 1)}, frozen_figure,
            lambda ignored: {"constant": 1.0})
    """,
    # 3: a panel whose callback raises once the slider moves
    """
    broken_figure, broken_line = line_figure()

    def broken(k):
        if k != 2:
            raise RuntimeError("boom from a slider callback")
        return {"k": k}

    W.Panel("broken", {"k": W.slider("k", 2, 0, 5, 1)}, broken_figure, broken)
    """,
]


def write_selftest_notebook(path):
    cells = [nbformat.v4.new_code_cell(textwrap.dedent(source).strip())
             for source in SELFTEST_CELLS]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)",
                                       "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)


def test_harness_sees_changes_and_catches_frozen_and_failing_panels(
        lab_server, open_notebook, screenshot_dir):
    relative = "_browser_selftest/harness.ipynb"
    write_selftest_notebook(lab_server.root / relative)
    lab = open_notebook(relative)
    lab.run_all_cells()
    assert lab.errors() == []
    assert lab.wait_for_panels(4) == 4
    panels = lab.panels()
    (screenshot_dir / "selftest").mkdir(exist_ok=True)

    for index in (0, 1):  # the working slider panel and the working Run-button panel
        result, _ = lab.exercise_panel(panels.nth(index))
        assert result.readout_changed and result.pixels_changed
        assert result.after.src != result.before.src
        panels.nth(index).screenshot(path=str(screenshot_dir / "selftest" / f"{index}.png"))
    assert "amplitude\t1.3" in lab.state(panels.nth(0)).readout  # 1.0 + 3 steps of 0.1
    assert "steps\t9" in lab.state(panels.nth(1)).readout  # 10 - 1 step, after Run

    with pytest.raises(PanelCheckError, match="no control changed both"):
        lab.exercise_panel(panels.nth(2))

    with pytest.raises(PanelCheckError, match="boom from a slider callback") as caught:
        lab.exercise_panel(panels.nth(3))
    message = str(caught.value)
    assert "in the panel: Traceback" in message  # Panel.error_area
    # the re-raised error, as the kernel reports it (JupyterLab shows it in the log console)
    assert "kernel error (comm_msg): RuntimeError: boom from a slider callback" in message
    assert lab.console.unexpected() == []


# -- the collection's notebooks ------------------------------------------------------------


@pytest.mark.parametrize("notebook", sorted(PANEL_NOTEBOOKS) or [None],
                         ids=lambda path: path.stem if path else "none")
def test_panels_respond_in_jupyterlab(notebook, request, screenshot_dir):
    if notebook is None:
        if PANEL_REGISTRY:
            pytest.fail("panels are registered but no notebook in notebooks/ shows one")
        pytest.skip("no panel is registered and no notebook uses rlviz.widgets")
    lab = request.getfixturevalue("open_notebook")(notebook.name)
    lab.run_all_cells()
    errors = lab.errors()
    assert not errors, f"{notebook.name}: running all cells raised:\n" + "\n".join(errors)

    registered = PANEL_NOTEBOOKS[notebook]
    count = lab.wait_for_panels(len(registered))
    assert count >= len(registered), (
        f"{notebook.name} shows {count} panels; registered for it: {registered}")

    for index in range(count):
        panel = lab.panels().nth(index)
        try:
            lab.exercise_panel(panel)
        except PanelCheckError as error:
            panel.screenshot(path=str(screenshot_dir / f"{notebook.stem}_{index}_FAILED.png"))
            raise PanelCheckError(f"{notebook.name}, panel {index}: {error}") from None
        panel.screenshot(path=str(screenshot_dir / f"{notebook.stem}_{index}.png"))

    errors = lab.errors()
    assert not errors, f"{notebook.name}:\n" + "\n".join(errors)
