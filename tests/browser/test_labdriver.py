"""The browser harness's plain-Python parts, without a browser: finding the panel
notebooks, decoding kernel websocket frames, and what counts as a kernel-side failure."""

from __future__ import annotations

import json
import re
import socket

from labdriver import (
    CONSOLE_ALLOW_LIST,
    KERNEL_STDERR_ALLOW_LIST,
    KernelWatcher,
    decode_kernel_frame,
    free_port,
    is_allowed,
    notebook_uses_widgets,
    notebooks_missing,
    panel_notebooks,
)

# A frame JupyterLab 4.6 received from jupyter_server 2.21 (binary kernel protocol
# v1.kernel.websocket.jupyter.org), copied byte for byte while developing these tests.
RECORDED_FRAME = (
    b"\x06\x00\x00\x00\x00\x00\x00\x008\x00\x00\x00\x00\x00\x00\x00=\x00\x00\x00\x00\x00"
    b"\x00\x00\x0c\x01\x00\x00\x00\x00\x00\x00\x0e\x01\x00\x00\x00\x00\x00\x00\x10\x01\x00"
    b"\x00\x00\x00\x00\x00b\x01\x00\x00\x00\x00\x00\x00iopub"
    b'{"msg_id": "78427fbc-2ba196b1465a0c79d5681d2c_20407_19", "msg_type": "stream", '
    b'"username": "username", "session": "78427fbc-2ba196b1465a0c79d5681d2c", '
    b'"date": "2026-11-24T04:37:33.730769Z", "version": "5.4"}{}{}'
    b'{"name": "stderr", "text": "No such comm: f074b35d-e6d6-4ef7-a6da-6bb95faa2f36\\n"}'
)


def binary_frame(channel, msg_type, parent_type="", content=None, buffers=()):
    """A frame in the binary protocol, built from its description: a uint64 count n of
    offsets, n uint64 offsets (little-endian), then the parts; the last offset is the end."""
    parts = [channel.encode(), json.dumps({"msg_type": msg_type}).encode(),
             json.dumps({"msg_type": parent_type} if parent_type else {}).encode(),
             b"{}", json.dumps(content or {}).encode(), *buffers]
    count = len(parts) + 1
    position, offsets = 8 * (count + 1), []
    for part in parts:
        offsets.append(position)
        position += len(part)
    offsets.append(position)
    return (count.to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
            + b"".join(parts))


def test_recorded_frame_decodes():
    message = decode_kernel_frame(RECORDED_FRAME)
    assert message.channel == "iopub"
    assert message.msg_type == "stream"
    assert message.parent_type == ""
    assert message.content == {"name": "stderr",
                               "text": "No such comm: f074b35d-e6d6-4ef7-a6da-6bb95faa2f36\n"}


def test_built_frames_decode_with_buffers_and_as_json_text():
    frame = binary_frame("iopub", "error", "comm_msg", {"ename": "ValueError"},
                         buffers=[b"\x00\x01binary"])
    message = decode_kernel_frame(frame)
    assert (message.channel, message.msg_type, message.parent_type) == (
        "iopub", "error", "comm_msg")
    assert message.content == {"ename": "ValueError"}
    text = json.dumps({"channel": "iopub", "header": {"msg_type": "status"},
                       "parent_header": {"msg_type": "execute_request"},
                       "content": {"execution_state": "idle"}})
    message = decode_kernel_frame(text)
    assert (message.msg_type, message.parent_type, message.content["execution_state"]) == (
        "status", "execute_request", "idle")


def test_malformed_frames_are_ignored():
    assert decode_kernel_frame(b"") is None
    assert decode_kernel_frame(b"\x06" + b"\x00" * 7) is None  # offsets missing
    assert decode_kernel_frame(RECORDED_FRAME[:-20]) is None  # content cut short
    assert decode_kernel_frame("not json") is None


def test_kernel_watcher_tracks_state_and_reports_callback_failures():
    watcher = KernelWatcher()
    frames = [
        binary_frame("iopub", "status", "comm_msg", {"execution_state": "busy"}),
        binary_frame("shell", "status", "comm_msg", {"execution_state": "busy"}),  # not iopub
        binary_frame("iopub", "stream", "comm_open", {
            "name": "stderr", "text": "No such comm target registered: jupyter.widget.control\n"}),
        binary_frame("iopub", "stream", "execute_request", {"name": "stderr", "text": "10%|#"}),
        binary_frame("iopub", "stream", "comm_msg", {"name": "stdout", "text": "printed"}),
        binary_frame("iopub", "stream", "comm_msg", {
            "name": "stderr", "text": "RuntimeWarning: divide by zero\n"}),
        binary_frame("iopub", "error", "comm_msg", {"ename": "RuntimeError", "evalue": "boom"}),
        binary_frame("iopub", "status", "comm_msg", {"execution_state": "idle"}),
    ]
    for frame in frames:
        watcher._on_frame(frame)
    assert watcher.busy_count == 1
    assert watcher.state == "idle"
    assert watcher.allowed == ["No such comm target registered: jupyter.widget.control\n"]
    assert watcher.reports == [
        "kernel stderr (comm_msg): RuntimeWarning: divide by zero\n",
        "kernel error (comm_msg): RuntimeError: boom",
    ]
    assert watcher.quiet_for() >= 0.0
    watcher._on_frame(binary_frame("iopub", "status", "comm_msg", {"execution_state": "busy"}))
    assert watcher.busy_count == 2 and watcher.quiet_for() == 0.0


def test_allow_lists_have_reasons_and_match_only_what_they_mean():
    for pattern, reason in CONSOLE_ALLOW_LIST + KERNEL_STDERR_ALLOW_LIST:
        re.compile(pattern)
        assert len(reason) > 40, f"allow-list entry {pattern!r} needs a written reason"
    assert is_allowed("No such comm: 0f04ee93-3ce7-41c2-8898-d821d7414f19",
                      KERNEL_STDERR_ALLOW_LIST)
    assert not is_allowed("No such comm target registered: my.own.target",
                          KERNEL_STDERR_ALLOW_LIST)
    assert not is_allowed("Traceback: No such comm: 0f04ee93", KERNEL_STDERR_ALLOW_LIST)
    assert is_allowed("error: x failed", [(r"x failed", "a reason")])
    assert not is_allowed("error: y failed", [(r"x failed", "a reason")])


def write_notebook(path, *cells):
    """cells: (cell_type, source) pairs; source as a list of lines, as Jupyter saves it."""
    path.write_text(json.dumps({
        "cells": [{"cell_type": kind, "metadata": {}, "source": source.splitlines(True),
                   **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                  for kind, source in cells],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_panel_notebooks_by_registry_number_or_by_use(tmp_path):
    write_notebook(tmp_path / "00_intro.ipynb", ("code", "import rlviz\nrlviz.set_seed(0)"))
    write_notebook(tmp_path / "01_registered.ipynb", ("code", "import rlviz"))
    write_notebook(tmp_path / "02_uses.ipynb",
                   ("code", "import rlviz\npanel = rlviz.widgets.clipping_panel()"))
    write_notebook(tmp_path / "03_imports.ipynb", ("code", "from rlviz import plots, widgets"))
    write_notebook(tmp_path / "04_prose_only.ipynb",
                   ("markdown", "The panels live in `rlviz.widgets`."))

    def factory():
        raise AssertionError("discovery must not build panels")

    registry = {"b": (factory, "01"), "a": (factory, "01"), "lost": (factory, "09")}
    found = panel_notebooks(tmp_path, registry)
    assert {path.name: names for path, names in found.items()} == {
        "01_registered.ipynb": ["a", "b"],
        "02_uses.ipynb": [],
        "03_imports.ipynb": [],
    }
    assert notebooks_missing(tmp_path, registry) == {"09": ["lost"]}
    assert notebooks_missing(tmp_path, {}) == {}
    assert panel_notebooks(tmp_path / "missing-dir", {}) == {}
    assert not notebook_uses_widgets(tmp_path / "04_prose_only.ipynb")


def test_free_port_can_be_bound():
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
