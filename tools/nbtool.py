"""Author and execute the notebooks.

    python tools/nbtool.py build SRC.py NOTEBOOK.ipynb   percent-format .py -> executed notebook
    python tools/nbtool.py execute NOTEBOOK.ipynb ...    re-execute notebooks in place
    python tools/nbtool.py to-py NOTEBOOK.ipynb SRC.py   notebook -> percent-format .py

Percent format: a cell starts with ``# %%``; ``# %% [markdown]`` starts a markdown cell
(its lines are written as ``# text``); tags go in the marker: ``# %% tags=["nbval-check-output"]``.
Execution follows the notebook policy (CONTRIBUTING.md): a fresh kernel runs every cell
top to bottom (execution counts 1..N), outputs are kept, widget state is not saved.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

MARKER = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def py_to_notebook(text: str) -> nbformat.NotebookNode:
    """Parse percent-format source into an (unexecuted) notebook."""
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.split("\n")
            )
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.split("\n"):
        match = MARKER.match(line)
        if match:
            flush()
            kind = "markdown" if match.group("md") else "code"
            tags = json.loads(match.group("tags")) if match.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def notebook_to_py(notebook: nbformat.NotebookNode) -> str:
    """The inverse of ``py_to_notebook`` (outputs are dropped)."""
    parts = []
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        marker = "# %%" + (" [markdown]" if cell.cell_type == "markdown" else "")
        if tags:
            marker += " tags=" + json.dumps(tags)
        if cell.cell_type == "markdown":
            body = "\n".join(("# " + line) if line else "#" for line in cell.source.split("\n"))
        else:
            body = cell.source
        parts.append(marker + "\n" + body + "\n")
    return "\n".join(parts)


def execute(notebook: nbformat.NotebookNode, workdir: Path, timeout: int = 600):
    """Run every cell in a fresh kernel; keep outputs, drop widget state."""
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", store_widget_state=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
    return notebook


def write(notebook: nbformat.NotebookNode, path: Path) -> None:
    nbformat.validate(notebook)
    path.write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="percent-format .py -> executed notebook")
    build.add_argument("source", type=Path)
    build.add_argument("notebook", type=Path)
    build.add_argument("--no-execute", action="store_true")
    run = sub.add_parser("execute", help="re-execute notebooks in place")
    run.add_argument("notebooks", type=Path, nargs="+")
    to_py = sub.add_parser("to-py", help="notebook -> percent-format .py")
    to_py.add_argument("notebook", type=Path)
    to_py.add_argument("source", type=Path)
    args = parser.parse_args(argv)

    if args.command == "to-py":
        args.source.write_text(notebook_to_py(nbformat.read(args.notebook, as_version=4)))
        return 0
    if args.command == "build":
        jobs = [(py_to_notebook(args.source.read_text(encoding="utf-8")), args.notebook)]
    else:
        jobs = [(nbformat.read(path, as_version=4), path) for path in args.notebooks]
    for notebook, path in jobs:
        if not (args.command == "build" and args.no_execute):
            start = time.perf_counter()
            execute(notebook, path.resolve().parent)
            print(f"{path}: executed in {time.perf_counter() - start:.1f} s")
        write(notebook, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
