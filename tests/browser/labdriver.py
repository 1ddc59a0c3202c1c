"""Drive the rlviz slider panels in a real JupyterLab with a headless Chromium.

Three parts, used by ``conftest.py`` and the tests beside it:

- finding the notebooks that show panels (``panel_notebooks``), plain Python;
- a JupyterLab server on a free localhost port with a generated token, isolated from the
  user's Jupyter settings and from the network (``JupyterLabServer``);
- what a person does in the browser (``LabNotebook``): open a notebook, run all cells, find
  each ``.rlviz-panel``, move a control with the keyboard (or pick a dropdown entry, or click
  Run), and read what changed: the readout table's text and the plot image's pixels.

Anything that goes wrong raises ``PanelCheckError`` with what was seen, so a failing test
says which panel, which control, and which message.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")

# Flags for a headless Chromium in a container; nothing that talks to the network by itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Browser console messages that are not failures: (regular expression searched in
# "<type>: <text>", why it is harmless). Add an entry only for a message seen and understood.
CONSOLE_ALLOW_LIST: list[tuple[str, str]] = []

# Kernel stderr written while handling a widget message that is not a failure: (regular
# expression, why it is harmless).
KERNEL_STDERR_ALLOW_LIST: list[tuple[str, str]] = [
    (r"^No such comm target registered: jupyter\.widget\.control\s*$",
     "JupyterLab's widget manager opens a 'jupyter.widget.control' comm as soon as the kernel "
     "connects, before any cell has imported ipywidgets; the kernel says it has no such "
     "target and the manager falls back to its normal path (harmless, as the ipywidgets "
     "maintainers say in jupyter-widgets/ipywidgets#3525)."),
    (r"^No such comm: [0-9a-f-]+\s*$",
     "the follow-up of the message above: the manager's next message on that same unopened "
     "control comm (seen only before the first cell has run)."),
]

class PanelCheckError(AssertionError):
    """A panel did not render, did not respond, or reported an error."""


# ---------------------------------------------------------------------------------------
# Which notebooks show panels
# ---------------------------------------------------------------------------------------

_WIDGETS_USE = re.compile(r"rlviz\.widgets|from\s+rlviz\s+import\s+[^\n]*\bwidgets\b")


def notebook_uses_widgets(path: Path) -> bool:
    """True when a code cell of the notebook mentions ``rlviz.widgets``."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            if _WIDGETS_USE.search(source):
                return True
    return False


def panels_by_notebook(registry) -> dict[str, list[str]]:
    """Registry ``name -> (factory, "NN")`` turned into ``"NN" -> [names]``."""
    numbers: dict[str, list[str]] = {}
    for name, (_factory, number) in registry.items():
        numbers.setdefault(str(number), []).append(name)
    return {number: sorted(names) for number, names in sorted(numbers.items())}


def panel_notebooks(notebooks_dir: Path, registry) -> dict[Path, list[str]]:
    """The notebooks that show panels, each with the registered panel names it must show.

    A notebook ``NN_topic.ipynb`` counts when a panel is registered with ``notebook="NN"``
    or when its code mentions ``rlviz.widgets`` (then it must show at least one panel).
    """
    numbers = panels_by_notebook(registry)
    found = {}
    for path in sorted(Path(notebooks_dir).glob("*.ipynb")):
        names = numbers.get(path.name[:2], []) if path.name[:2].isdigit() else []
        if names or notebook_uses_widgets(path):
            found[path] = names
    return found


def notebooks_missing(notebooks_dir: Path, registry) -> dict[str, list[str]]:
    """Registered notebook numbers with no ``NN_*.ipynb`` file: ``"NN" -> [panel names]``."""
    present = {p.name[:2] for p in Path(notebooks_dir).glob("*.ipynb")}
    return {n: names for n, names in panels_by_notebook(registry).items() if n not in present}


# ---------------------------------------------------------------------------------------
# The JupyterLab server
# ---------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_allowed(message: str, allow_list=None) -> bool:
    """True when a console message matches an allow-list entry."""
    entries = CONSOLE_ALLOW_LIST if allow_list is None else allow_list
    return any(re.search(pattern, message) for pattern, _reason in entries)


class JupyterLabServer:
    """JupyterLab from this venv on a free 127.0.0.1 port, serving a COPY of the notebooks.

    Everything the server writes (config, runtime files, settings, workspaces, IPython
    history) goes to ``workdir``, so the committed notebooks and the user's Jupyter setup
    are untouched. News, update checks and the PyPI extension manager are off: nothing
    leaves the machine.
    """

    def __init__(self, notebooks_dir: Path, workdir: Path, token: str,
                 startup_timeout: float = 90.0):
        self.workdir = Path(workdir)
        self.root = self.workdir / "root"
        self.token = token
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "jupyter-server.log"
        self.process: subprocess.Popen | None = None
        self._notebooks_dir = Path(notebooks_dir)
        self._startup_timeout = startup_timeout
        self._shutdowns: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        shutil.copytree(self._notebooks_dir, self.root,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        dirs = {name: self.workdir / name for name in
                ("config", "runtime", "data", "settings", "workspaces", "ipython")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        # The answer a reader gives to "get notified about official Jupyter news?": no.
        notification = dirs["settings"] / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True)
        (notification / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = dict(os.environ,
                   JUPYTER_CONFIG_DIR=str(dirs["config"]),
                   JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
                   JUPYTER_DATA_DIR=str(dirs["data"]),
                   IPYTHONDIR=str(dirs["ipython"]),
                   JUPYTER_PLATFORM_DIRS="1")
        env.pop("JUPYTER_PATH", None)
        command = [
            str(Path(sys.executable).with_name("jupyter")), "lab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            f"--LabApp.user_settings_dir={dirs['settings']}",
            f"--LabApp.workspaces_dir={dirs['workspaces']}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # containers and CI often run as root
        log = open(self.log_path, "wb")
        try:
            # Own process group, so stop() can end the server and everything it started.
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=env,
                                            cwd=self.workdir, start_new_session=True)
        finally:
            log.close()
        atexit.register(self.stop)  # a safety net if the test run is interrupted
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n"
                                   + self.log_tail())
            try:
                self.api("GET", "/api/status")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        raise RuntimeError(f"JupyterLab did not answer within {self._startup_timeout:.0f} s:\n"
                           + self.log_tail())

    def stop(self) -> None:
        """Shut the kernels down, then end the server's process group (TERM, then KILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        for thread in self._shutdowns:
            thread.join(timeout=60)
        try:
            self.shutdown_kernels()
        except Exception:  # the server may already be unhealthy; the kill below still runs
            pass
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=15)

    # -- REST helpers --------------------------------------------------------------------
    def api(self, method: str, path: str, timeout: float = 10.0):
        request = urllib.request.Request(self.base_url + path, method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self, wait: bool = True) -> None:
        """End the sessions and kernels running now (frees a notebook's torch kernel).
        ``wait=False`` does the (slow) shutdown in a background thread; ``stop`` joins it."""
        paths = [f"/api/sessions/{s['id']}" for s in self.api("GET", "/api/sessions")]
        paths += [f"/api/kernels/{k['id']}" for k in self.api("GET", "/api/kernels")]

        def shut_down():
            for path in paths:
                try:
                    self.api("DELETE", path, timeout=60)
                except urllib.error.HTTPError as error:
                    if error.code != 404:  # 404: the session's kernel went with the session
                        raise

        if wait:
            shut_down()
        else:
            thread = threading.Thread(target=shut_down, daemon=True)
            thread.start()
            self._shutdowns.append(thread)

    def url(self, notebook_path: str, workspace: str) -> str:
        """The page that opens one notebook in a fresh workspace (no restored tabs)."""
        return (f"{self.base_url}/lab/workspaces/{workspace}/tree/{notebook_path}"
                f"?reset&token={self.token}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------------
# What the page hears: browser console and kernel messages
# ---------------------------------------------------------------------------------------


@dataclass
class ConsoleRecorder:
    """Collects console errors and uncaught page errors of one page."""

    messages: list[str] = field(default_factory=list)  # errors
    everything: list[str] = field(default_factory=list)  # every message, for the record

    def attach(self, page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_page_error(self, error) -> None:
        self.messages.append(f"pageerror: {error}")
        self.everything.append(f"pageerror: {error}")

    def _on_console(self, message) -> None:
        self.everything.append(f"{message.type}: {message.text}")
        if message.type == "error":
            location = message.location or {}
            where = f" ({location.get('url', '')}:{location.get('lineNumber', '')})"
            self.messages.append(f"error: {message.text}{where}")

    def unexpected(self, allow_list=None) -> list[str]:
        return [m for m in self.messages if not is_allowed(m, allow_list)]


@dataclass(frozen=True)
class KernelMessage:
    channel: str
    msg_type: str
    parent_type: str  # msg_type of the request this message answers (e.g. comm_msg)
    content: dict


def decode_kernel_frame(payload) -> KernelMessage | None:
    """One websocket frame from ``/api/kernels/<id>/channels`` as a ``KernelMessage``.

    JupyterLab 4 speaks the binary ``v1.kernel.websocket.jupyter.org`` protocol: a uint64
    (little-endian) count n, n uint64 offsets, then the parts channel, header, parent
    header, metadata, content (and buffers) at those offsets, the last offset being the
    end. A text frame is the older all-JSON form. Anything else: None.
    """
    try:
        if isinstance(payload, str):
            message = json.loads(payload)
            return KernelMessage(message.get("channel", ""), message["header"]["msg_type"],
                                 (message.get("parent_header") or {}).get("msg_type", ""),
                                 message.get("content") or {})
        count = int.from_bytes(payload[:8], "little")
        if count < 6 or len(payload) < 8 * (count + 1):
            return None
        offsets = [int.from_bytes(payload[8 * (i + 1):8 * (i + 2)], "little")
                   for i in range(count)]
        parts = [payload[offsets[i]:offsets[i + 1]] for i in range(count - 1)]
        header, parent = json.loads(parts[1]), json.loads(parts[2] or b"{}")
        return KernelMessage(parts[0].decode(), header["msg_type"],
                             parent.get("msg_type", ""), json.loads(parts[4] or b"{}"))
    except (ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError):
        return None


class KernelWatcher:
    """Follows the notebook kernel's iopub messages as the page receives them: the kernel's
    busy/idle state, errors it reports (a traceback from a cell or from a widget callback,
    which JupyterLab shows in the log console), and stderr written while handling a widget
    message (warnings from a slider callback)."""

    def __init__(self):
        self.state = "unknown"
        self.busy_count = 0  # how often the kernel went busy
        self.last_message = time.monotonic()
        self.reports: list[str] = []  # failures, in the order they arrived
        self.allowed: list[str] = []  # allow-listed stderr, kept for the record

    def attach(self, page) -> None:
        page.on("websocket", self._on_websocket)

    def _on_websocket(self, websocket) -> None:
        if "/api/kernels/" in websocket.url and "/channels" in websocket.url:
            websocket.on("framereceived", self._on_frame)

    def _on_frame(self, payload) -> None:
        message = decode_kernel_frame(payload)
        if message is None or message.channel != "iopub":
            return
        self.last_message = time.monotonic()
        content = message.content
        if message.msg_type == "status":
            self.state = content.get("execution_state", self.state)
            if self.state == "busy":
                self.busy_count += 1
        elif message.msg_type == "error":
            self.reports.append(f"kernel error ({message.parent_type}): "
                                f"{content.get('ename')}: {content.get('evalue')}")
        elif (message.msg_type == "stream" and content.get("name") == "stderr"
              and message.parent_type.startswith("comm")):
            text = content.get("text", "")
            if is_allowed(text.strip(), KERNEL_STDERR_ALLOW_LIST):
                self.allowed.append(text)
            else:
                self.reports.append(f"kernel stderr ({message.parent_type}): {text}")

    def quiet_for(self) -> float:
        """Seconds the kernel has been idle without sending anything (0 when busy)."""
        return time.monotonic() - self.last_message if self.state == "idle" else 0.0


# JavaScript: pixels of an <img> drawn onto a canvas -> size, SHA-256 of the RGBA bytes,
# and whether the picture has more than one colour (an empty plot would not).
_IMAGE_PIXELS_JS = """
async (img) => {
  if (!img.complete || img.naturalWidth === 0) { await img.decode(); }
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let colours = 1;
  for (let i = 4; i < data.length; i += 4) {
    if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) {
      colours = 2; break;
    }
  }
  const digest = await crypto.subtle.digest('SHA-256', data);
  const hash = Array.from(new Uint8Array(digest)).map(b => b.toString(16).padStart(2, '0'));
  return {width: canvas.width, height: canvas.height, hash: hash.join(''), colours};
}
"""

_PROMPTS_JS = """
() => Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt'))
          .map(e => e.textContent.trim())
"""


@dataclass(frozen=True)
class PanelState:
    """What a reader sees of a panel: the readout text and the plot image."""

    readout: str
    src: str
    pixels: str  # SHA-256 of the image's RGBA pixels
    size: tuple[int, int]


@dataclass
class MoveResult:
    control: str
    before: PanelState
    after: PanelState

    @property
    def readout_changed(self) -> bool:
        return self.after.readout != self.before.readout

    @property
    def pixels_changed(self) -> bool:
        return self.after.pixels != self.before.pixels

    def describe(self) -> str:
        return (f"{self.control}: readout {'changed' if self.readout_changed else 'unchanged'}"
                f", image pixels {'changed' if self.pixels_changed else 'unchanged'}")


class LabNotebook:
    """One notebook opened in JupyterLab in its own page."""

    def __init__(self, page, server: JupyterLabServer, notebook_path: str,
                 timeout_s: float = 180.0):
        self.page = page
        self.server = server
        self.notebook_path = notebook_path
        self.timeout_s = timeout_s
        self.console = ConsoleRecorder()
        self.console.attach(page)
        self.kernel = KernelWatcher()
        self.kernel.attach(page)
        self.timings: list[tuple[str, float]] = []  # (step, seconds), for the timing report

    def _took(self, step: str, start: float) -> None:
        self.timings.append((step, time.monotonic() - start))

    # -- opening and running -----------------------------------------------------------
    def open(self) -> None:
        start = time.monotonic()
        workspace = re.sub(r"[^A-Za-z0-9]+", "-", self.notebook_path).strip("-")
        self.page.goto(self.server.url(self.notebook_path, workspace),
                       timeout=self.timeout_s * 1000)
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=self.timeout_s * 1000)
        self.wait_for_idle_kernel()
        self._took("open notebook, kernel idle", start)

    def wait_for_idle_kernel(self) -> None:
        """Wait until the status bar says the notebook's kernel is connected and idle
        (before that, Run All would ask which kernel to start)."""
        self.page.locator("#jp-main-statusbar .jp-StatusBar-TextItem",
                          has_text=re.compile(r"\| Idle$")).wait_for(
                              timeout=self.timeout_s * 1000)
        self.fail_on_dialog()

    def fail_on_dialog(self) -> None:
        """A modal dialog (kernel choice, error box) means the page is not as expected."""
        dialog = self.page.locator(".jp-Dialog")
        if dialog.count():
            raise PanelCheckError("JupyterLab shows a dialog: " + dialog.first.inner_text())

    def run_all_cells(self) -> None:
        """Menu Run > Run All Cells, then wait until no cell is queued or running and the
        kernel has gone quiet."""
        start = time.monotonic()
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        self.page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
        # Run All marks every code cell "[*]" at once; then they finish one by one.
        self.page.wait_for_function(
            f"() => ({_PROMPTS_JS})().some(t => t.includes('*'))"
            " || document.querySelector('.jp-Dialog') !== null", timeout=30_000)
        self.fail_on_dialog()
        self.page.wait_for_function(f"() => !({_PROMPTS_JS})().some(t => t.includes('*'))",
                                    timeout=self.timeout_s * 1000)
        self.wait_for_kernel(self.kernel.busy_count - 1, "Run All Cells")
        self._took("run all cells", start)

    def wait_for_kernel(self, busy_before: int, what: str, timeout_s: float | None = None,
                        quiet_s: float = 0.5) -> None:
        """Wait until the kernel has handled what the page sent: it went busy after
        ``busy_before`` and has since been idle and silent for ``quiet_s``."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.kernel.busy_count > busy_before and self.kernel.quiet_for() >= quiet_s:
                return
            self.page.wait_for_timeout(100)
        raise PanelCheckError(f"{what}: the kernel did not finish within {timeout_s:.0f} s "
                              f"(state {self.kernel.state})")

    def cell_errors(self) -> list[str]:
        """Tracebacks shown in cell outputs (error outputs render as stderr in Lab)."""
        texts = self.page.locator(
            ".jp-Notebook .jp-Cell-outputArea "
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
        ).all_inner_texts()
        return [t for t in texts if "Traceback" in t or "Error" in t]

    def errors(self) -> list[str]:
        """Everything wrong so far: tracebacks in cells, kernel errors and callback stderr,
        browser console errors (allow-list applied)."""
        return ([f"in a cell output: {t}" for t in self.cell_errors()]
                + self.kernel.reports
                + [f"browser console: {m}" for m in self.console.unexpected()])

    # -- panels ------------------------------------------------------------------------
    def panels(self):
        return self.page.locator(".jp-Notebook .rlviz-panel")

    def wait_for_panels(self, minimum: int) -> int:
        """Wait until at least ``minimum`` panels show a readout and a plot image."""
        self.page.wait_for_function(
            """(minimum) => {
                const panels = document.querySelectorAll('.jp-Notebook .rlviz-panel');
                if (panels.length < minimum) return false;
                return Array.from(panels).every(p => {
                    const img = p.querySelector('img');
                    const readout = p.querySelector('.rlviz-readout');
                    return img && img.src && readout && readout.textContent.trim() !== '';
                });
            }""", arg=max(minimum, 1), timeout=self.timeout_s * 1000)
        return self.panels().count()

    def state(self, panel) -> PanelState:
        panel.scroll_into_view_if_needed()
        image = panel.locator("img").first
        pixels = image.evaluate(_IMAGE_PIXELS_JS)
        if pixels["colours"] < 2:
            raise PanelCheckError("the panel's plot image is a single flat colour")
        return PanelState(readout=panel.locator(".rlviz-readout").first.inner_text().strip(),
                          src=image.get_attribute("src") or "",
                          pixels=pixels["hash"], size=(pixels["width"], pixels["height"]))

    def panel_errors(self, panel) -> list[str]:
        """Text in the panel's own error area (``Panel.error_area``, a traceback)."""
        texts = panel.locator(".jp-OutputArea-output").all_inner_texts()
        return [t for t in texts if t.strip()]

    def _settled_change(self, panel, before: PanelState, timeout_s: float = 3.0,
                        settle_s: float = 0.3) -> bool:
        """After the kernel went quiet: wait until the readout or the image source differs
        from ``before`` and stays put for ``settle_s``. False if nothing changes."""
        readout = panel.locator(".rlviz-readout").first
        image = panel.locator("img").first
        start = time.monotonic()
        last, last_seen = None, 0.0
        while time.monotonic() - start < timeout_s:
            now = (readout.inner_text().strip(), image.get_attribute("src") or "")
            if now != (before.readout, before.src):
                if now != last:
                    last, last_seen = now, time.monotonic()
                elif time.monotonic() - last_seen >= settle_s:
                    return True
            self.page.wait_for_timeout(100)
        return last is not None

    def controls(self, panel) -> list[tuple[str, object]]:
        """The panel's controls a person can change: sliders, then dropdowns, then
        checkboxes, each as (label, locator)."""
        found = []
        for kind, selector in (("slider", ".widget-slider"), ("dropdown", ".widget-dropdown"),
                               ("checkbox", ".widget-checkbox")):
            for widget in panel.locator(selector).all():
                label = (widget.locator(".widget-label").first.text_content() or "").strip()
                found.append((f"{kind} {label!r}", widget))
        return found

    def move(self, label: str, widget, prefer_down: bool) -> str:
        """Change one control as a person would; returns what was done.

        Sliders: focus the handle and press arrow keys (3 steps up, or down when near the
        top; 1 step down when ``prefer_down``). Dropdowns: pick the next entry.
        Checkboxes: click."""
        kind = label.split()[0]
        if kind == "slider":
            handle = widget.locator(".noUi-handle").first
            handle.scroll_into_view_if_needed()
            value = float(handle.get_attribute("aria-valuenow"))
            low = float(handle.get_attribute("aria-valuemin"))
            high = float(handle.get_attribute("aria-valuemax"))
            down = (prefer_down and value > low) or value >= high
            key = "ArrowLeft" if down else "ArrowRight"
            presses = 1 if prefer_down else 3
            readout = widget.locator(".widget-readout").first
            shown = readout.text_content().strip()
            handle.focus()
            for _ in range(presses):
                self.page.keyboard.press(key)
            for _ in range(30):  # the number beside the slider follows the handle
                moved = readout.text_content().strip()
                if moved != shown:
                    return f"{label}: {presses}x {key}, {shown} -> {moved}"
                self.page.wait_for_timeout(100)
            raise PanelCheckError(f"{label}: {presses}x {key} did not move the slider "
                                  f"(shows {shown}, range {low:g}..{high:g})")
        if kind == "dropdown":
            select = widget.locator("select").first
            current = select.input_value()
            options = select.locator("option").evaluate_all("os => os.map(o => o.value)")
            others = [o for o in options if o != current]
            if not others:
                raise PanelCheckError(f"{label}: only one choice")
            select.select_option(others[0])
            return f"{label}: {current!r} -> {others[0]!r}"
        widget.locator("input[type=checkbox]").first.click()
        return f"{label}: clicked"

    def exercise_panel(self, panel, run_timeout_s: float = 120.0,
                       ) -> tuple[MoveResult, list[MoveResult]]:
        """Move the panel's controls one at a time until one changes both the readout and
        the plot pixels (for a Run-button panel: change a control, then click Run).

        After each move: wait for the kernel to handle it, then for the page to show the
        result; any error in the panel, the kernel or the console fails at once.
        Returns the move that changed both and every move tried.
        """
        run_button = panel.locator("button", has_text=re.compile(r"^\s*Run\s*$"))
        has_run = run_button.count() > 0
        controls = self.controls(panel)
        if not controls:
            raise PanelCheckError("the panel has no slider, dropdown or checkbox")
        tried = []
        start = time.monotonic()
        for label, widget in controls:
            before = self.state(panel)
            errors_before = self.errors()
            busy_before = self.kernel.busy_count
            action = self.move(label, widget, prefer_down=has_run)
            if has_run:
                # A Run-button panel waits for the click; the move alone computes nothing.
                run_button.first.click()
                action += ", clicked Run"
            self.wait_for_kernel(busy_before, action, timeout_s=run_timeout_s)
            changed = self._settled_change(panel, before)
            problems = ([f"in the panel: {t}" for t in self.panel_errors(panel)]
                        + [e for e in self.errors() if e not in errors_before])
            if problems:
                raise PanelCheckError(f"{action} raised an error:\n" + "\n".join(problems))
            result = MoveResult(action, before, self.state(panel) if changed else before)
            tried.append(result)
            if result.readout_changed and result.pixels_changed:
                self._took(f"panel: {action}", start)
                return result, tried
        raise PanelCheckError("no control changed both the readout and the plot:\n"
                              + "\n".join(t.describe() for t in tried))
