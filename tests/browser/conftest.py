"""Fixtures for the browser tests: one JupyterLab server and one headless Chromium for the
whole session, and a fresh page per notebook. See README.md in this folder."""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest
from labdriver import CHROMIUM, CHROMIUM_ARGS, JupyterLabServer, LabNotebook

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
ARTIFACTS = REPO / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
TIMINGS = ARTIFACTS / "browser" / "timings.tsv"
CONSOLE_LOG = ARTIFACTS / "browser" / "console.log"
VIEWPORT = {"width": 1280, "height": 1600}
TRACING = os.environ.get("RLVIZ_BROWSER_TRACE") == "1"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium. Missing: a failure under CI (CI=true), a skip elsewhere
    (``make test`` says so plainly; ``make test-browser`` installs it)."""
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (on Debian: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; the browser tests are required under CI")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Empty artifacts/browser and artifacts/screenshots: each run replaces the last one's."""
    for stale in (ARTIFACTS / "browser", SCREENSHOTS):
        shutil.rmtree(stale, ignore_errors=True)
        stale.mkdir(parents=True)
    TIMINGS.write_text("seconds\tnotebook\tstep\n")
    CONSOLE_LOG.write_text("")
    return ARTIFACTS


@pytest.fixture(scope="session")
def lab_server(chromium, artifacts, tmp_path_factory):
    """JupyterLab on a free localhost port with a generated token, serving a temporary copy
    of notebooks/. Stopped at the end of the session, pass or fail."""
    server = JupyterLabServer(NOTEBOOKS, tmp_path_factory.mktemp("jupyterlab"),
                              token=secrets.token_hex(24))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if server.log_path.exists():
            shutil.copy(server.log_path, ARTIFACTS / "browser" / "jupyter-server.log")


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def browser_context(browser):
    """One context for the whole session, so JupyterLab's scripts are fetched once."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    if TRACING:
        context.tracing.start(screenshots=True, snapshots=True)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def open_notebook(browser_context, lab_server, request):
    """``open_notebook("NN_topic.ipynb") -> LabNotebook`` in a new page.

    On failure a full-page screenshot goes to artifacts/browser/. Afterwards the page is
    closed and every kernel shut down. RLVIZ_BROWSER_TRACE=1 also saves a Playwright trace
    per notebook (open with ``.venv/bin/playwright show-trace FILE``)."""
    opened = []

    def open_(notebook_path: str) -> LabNotebook:
        if TRACING:
            browser_context.tracing.start_chunk()
        lab = LabNotebook(browser_context.new_page(), lab_server, notebook_path)
        opened.append(lab)
        lab.open()
        return lab

    yield open_

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    out = ARTIFACTS / "browser"
    for lab in opened:
        name = Path(lab.notebook_path).stem
        with TIMINGS.open("a") as timings:
            timings.writelines(f"{seconds:.1f}\t{lab.notebook_path}\t{step}\n"
                               for step, seconds in lab.timings)
        with CONSOLE_LOG.open("a") as log:
            log.write(f"== {lab.notebook_path}\n")
            log.writelines(f"{line}\n" for line in lab.console.everything + [
                f"kernel stderr (allow-listed): {text.strip()}" for text in lab.kernel.allowed])
        try:
            if failed:
                lab.page.screenshot(path=str(out / f"{name}_FAILED.png"), full_page=True)
            if TRACING:
                browser_context.tracing.stop_chunk(path=str(out / f"{name}_trace.zip"))
        finally:
            lab.page.close()
    lab_server.shutdown_kernels(wait=False)


@pytest.fixture(scope="session")
def screenshot_dir(artifacts) -> Path:
    return SCREENSHOTS


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
