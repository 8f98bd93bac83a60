"""The course in a real JupyterLab, driven in a real (headless) Chromium.

Starts the README's study command (JupyterLab on a free loopback port, a temporary
workspace, no browser of its own), then, through Playwright pointed at the system's Chromium:
opens the learner copy of ch02 and runs all cells from the menu; checks that no cell shows an
error other than the expected NotImplementedError of unanswered exercises and that plots
rendered as images (and the same for ch07, the newest chapter); fills one exercise in the
editor, re-runs its test cell and sees it pass;
clicks nbgrader's Validate button and reads its results (the failing tests, and an applied
cell left out as the grader leaves it out); opens the formgrader of an instructor session.
Also the learner's first screen (the welcome page, whole folder names, no instructor panels)
and a failed check (its message and the test cell's line, no grading internals). Screenshots
go to tests/artifacts/.

Needs Chromium (Debian's package: /usr/bin/chromium) and the playwright package; it skips
with a reason without them, except under CI (CI=true), where a skip would hide a missing
install step and is a failure instead.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import COURSE, ROOT

pytestmark = pytest.mark.slow
CH = "ch02_activations_losses"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
SIGMOID_ANSWER = '''def sigmoid(x):
    x = np.asarray(x, dtype=float)
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))
'''


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must install it (.ci/run), a skip would hide that")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = os.environ.get("MEDAI_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")
    if not path:
        _missing("no Chromium found (install Debian's chromium package)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A JupyterLab server started by a command on a free loopback port, with a known token."""

    def __init__(self, cmd: list[str], cwd: Path, log: Path, port: int):
        self.port, self.token, self.log = port, secrets.token_hex(16), log
        env = dict(os.environ, MEDAI_FAST="1", JUPYTER_TOKEN=self.token)
        env.pop("MPLBACKEND", None)  # the kernel draws inline, as for a learner
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log.open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"
        self.wait()

    def wait(self, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the server exited:\n{self.log.read_text()[-3000:]}")
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                time.sleep(1)
        raise AssertionError(f"no server after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
        return json.loads(text) if text else {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh --user-data-dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=chromium, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(60_000)
        yield context
        context.close()


@pytest.fixture(scope="module")
def study(chromium, tmp_path_factory):
    """The README's study command as a learner runs it, plus a port and no browser of its own."""
    ws = tmp_path_factory.mktemp("workspace")
    port = _free_port()
    cmd = [str(Path(sys.executable).parent / "medai-course"), "study", "--workspace", str(ws),
           "--no-browser", "--port", str(port), "--ip", "127.0.0.1"]
    server = Server(cmd, ROOT, tmp_path_factory.mktemp("logs") / "study.log", port)
    # Render every cell (JupyterLab 4 otherwise draws only the cells in view).
    server.api("PUT", "/lab/api/settings/@jupyterlab/notebook-extension:tracker",
               {"raw": json.dumps({"windowingMode": "none"})})
    # No "get notified about news?" toast over the screenshots.
    server.api("PUT", "/lab/api/settings/@jupyterlab/apputils-extension:notification",
               {"raw": json.dumps({"fetchNews": "false"})})
    yield server, ws
    server.stop()


def test_the_first_screen_is_the_courses_welcome_page(browser, study):
    """What a learner sees first: the welcome page (chapters, glossary, self-check), a file list
    of chapters with whole names and no grading machinery, no instructor panels."""
    server, ws = study
    page = browser.new_page()
    try:
        page.goto(f"{server.url}/?token={server.token}")
        welcome = page.locator(".jp-NotebookPanel").filter(has_text="Open chapter 1 first")
        welcome.first.wait_for()
        page.locator(".jp-DirListing-item").first.wait_for()
        time.sleep(2)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "first-screen.png"))
        names = page.locator(".jp-DirListing-itemName").all_inner_texts()
        assert "START_HERE.ipynb" in names and CH in names, names
        assert "nbgrader_config.py" not in names, names
        cut = page.locator(".jp-DirListing-itemText").evaluate_all(
            "els => els.filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent)")
        assert not cut, f"names cut off in the file browser: {cut}"
        for panel in ("Create Assignment", "Formgrader", "Course List"):
            assert page.get_by_text(panel, exact=True).count() == 0, panel
        page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").first.click()
        entries = page.locator(".lm-Menu-itemLabel").all_inner_texts()
        page.keyboard.press("Escape")
        assert not any("Formgrader" in e or "Course List" in e for e in entries), entries
    finally:
        page.close()


@pytest.fixture(scope="module")
def notebook_page(browser, study):
    server, ws = study
    assert (ws / CH / f"{CH}.ipynb").is_file(), "the study command made no learner copy"
    page = browser.new_page()
    page.goto(f"{server.url}/lab/tree/{CH}/{CH}.ipynb?token={server.token}")
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
    _wait_kernel_idle(server)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    _wait_done(page, server)
    yield page
    page.close()


def _kernel_states(server, ch: str = CH) -> list[str]:
    return [s["kernel"]["execution_state"] for s in server.api("GET", "/api/sessions")
            if s.get("path", "").endswith(f"{ch}.ipynb")]


def _wait_kernel_idle(server, timeout: float = 120, ch: str = CH) -> None:
    """Until the notebook's kernel has started and is idle (the server's own account: the
    page's indicator says 'idle' before a kernel is even connected)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _kernel_states(server, ch) == ["idle"]:
            return
        time.sleep(1)
    raise AssertionError(f"the kernel did not become idle: {_kernel_states(server, ch)}")


def _wait_done(page, server, timeout: float = 300, ch: str = CH) -> None:
    """Until no cell is queued or running (no [*] prompt) and the kernel is idle, three
    checks in a row."""
    deadline, calm = time.time() + timeout, 0
    time.sleep(2)
    while time.time() < deadline:
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        running = any("*" in t for t in prompts)
        ran = any(any(ch.isdigit() for ch in t) for t in prompts)
        calm = calm + 1 if (ran and not running and _kernel_states(server, ch) == ["idle"]) \
            else 0
        if calm >= 3:
            return
        time.sleep(1)
    raise AssertionError("the notebook did not finish running")


def _save_and_read(page, server, ch: str = CH) -> dict:
    page.keyboard.press("Control+s")
    time.sleep(2)
    return server.api("GET", f"/api/contents/{ch}/{ch}.ipynb?content=1")["content"]


def test_run_all_shows_only_the_expected_errors_and_plots(notebook_page, study):
    server, ws = study
    page = notebook_page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ch02-learner-notebook.png"))
    nb = _save_and_read(page, server)
    errors = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                gid = cell["metadata"].get("nbgrader", {}).get("grade_id", "(no id)")
                errors[gid] = out["ename"]
    assert errors, "an untouched learner copy must show its unanswered exercises"
    unexpected = {k: v for k, v in errors.items() if v != "NotImplementedError"}
    assert not unexpected, f"cells with unexpected errors: {unexpected}"
    assert all(k.startswith("test_") for k in errors), errors
    # an unanswered exercise says so in a few lines, not through the course's checking code
    untouched = page.locator(".jp-CodeCell").filter(
        has_text="from medai_lessons.grading import check_mse").first
    text = untouched.locator(".jp-OutputArea-output").filter(
        has_text="NotImplementedError").first.inner_text()
    assert "mse is not written yet" in text and "raise NotImplementedError()" in text, text
    assert "grading/core.py" not in text and len(text.splitlines()) <= 15, text
    plots = sum("image/png" in out.get("data", {}) for cell in nb["cells"]
                for out in cell.get("outputs", []))
    assert plots >= 5, f"only {plots} plots in the saved notebook"
    images = page.locator(".jp-OutputArea-output img")  # drawn in the page, not just stored
    assert images.count() >= 1, "no plot rendered as an image in the page"
    images.first.scroll_into_view_if_needed()
    assert images.first.evaluate("img => img.complete && img.naturalWidth") > 100
    page.screenshot(path=str(ARTIFACTS / "ch02-plot.png"))


def test_chapter_7_opens_and_runs_all_with_only_its_unanswered_exercises_failing(browser, study):
    """The newest chapter in the learner's JupyterLab: Run All (full mode, the reference
    standing in for each unanswered exercise) ends with NotImplementedError in its test cells
    only, and its survival curves and other plots drawn."""
    server, ws = study
    ch = "ch07_prognosis_treatment"
    assert (ws / ch / f"{ch}.ipynb").is_file(), "the study command made no learner copy of ch07"
    page = browser.new_page()
    try:
        page.goto(f"{server.url}/lab/tree/{ch}/{ch}.ipynb?token={server.token}")
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
        _wait_kernel_idle(server, ch=ch)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        _wait_done(page, server, timeout=900, ch=ch)
        nb = _save_and_read(page, server, ch=ch)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ch07-learner-notebook.png"))
    finally:
        page.close()
    errors = {cell["metadata"].get("nbgrader", {}).get("grade_id", "(no id)"): out["ename"]
              for cell in nb["cells"] for out in cell.get("outputs", [])
              if out["output_type"] == "error"}
    assert errors and set(errors.values()) == {"NotImplementedError"}, errors
    assert all(k.startswith("test_") for k in errors), errors
    plots = sum("image/png" in out.get("data", {}) for cell in nb["cells"]
                for out in cell.get("outputs", []))
    assert plots >= 8, f"only {plots} plots in the saved ch07 notebook"


def test_filling_an_exercise_in_the_editor_makes_its_test_pass(notebook_page, study):
    page = notebook_page
    answer = page.locator(".jp-CodeCell").filter(has_text="def sigmoid(x):").filter(
        has_text="raise NotImplementedError").first
    answer.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(SIGMOID_ANSWER)  # typed as text: no editor auto-indent
    page.keyboard.press("Shift+Enter")  # runs the answer, moves to its test cell
    page.keyboard.press("Shift+Enter")  # runs the test cell
    _wait_done(page, study[0])
    test_cell = page.locator(".jp-CodeCell").filter(
        has_text="from medai_lessons.grading import check_sigmoid").first
    test_cell.locator(".jp-OutputArea").filter(
        has_text="sigmoid: the visible checks passed.").wait_for()
    test_cell.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "ch02-sigmoid-passes.png"))


def test_a_failed_check_shows_its_message_and_the_learners_line(notebook_page, study):
    """A wrong answer's test shows the checker's message (case, expected, got, hint) and the
    test cell's line, not a traceback through the course's grading code."""
    page = notebook_page
    answer = page.locator(".jp-CodeCell").filter(has_text="def tanh(x):").filter(
        has_text="raise NotImplementedError").first
    answer.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text("def tanh(x):\n    return np.exp(x) / (1 + np.exp(x))\n")
    page.keyboard.press("Shift+Enter")  # runs the answer, moves to its test cell
    page.keyboard.press("Shift+Enter")  # runs the test cell
    _wait_done(page, study[0])
    test_cell = page.locator(".jp-CodeCell").filter(
        has_text="from medai_lessons.grading import check_tanh").first
    output = test_cell.locator(".jp-OutputArea-output").filter(has_text="failed on case")
    output.first.wait_for()
    text = output.first.inner_text()
    assert "AssertionError: tanh: failed on case" in text and "hint:" in text, text
    assert "Checked here:" in text and "check_tanh(tanh)" in text, text
    for internal in ("grading/core.py", "grading/ch02.py", "assert_close", "interactiveshell"):
        assert internal not in text, text
    assert len(text.splitlines()) <= 15, text
    test_cell.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "ch02-failed-check.png"))


def test_nbgrader_validate_button_is_in_the_toolbar(notebook_page):
    button = notebook_page.locator(".jp-NotebookPanel-toolbar:visible").get_by_text("Validate")
    button.first.wait_for()
    assert button.first.is_visible()


def _validate(page, timeout_ms: int = 300_000) -> str:
    """Click Validate and return the text of its results dialog (then close the dialog)."""
    page.locator(".jp-NotebookPanel-toolbar:visible").get_by_text("Validate").first.click()
    dialog = page.locator(".jp-Dialog").filter(has_text="Validation Results")
    dialog.wait_for(timeout=timeout_ms)
    text = dialog.locator(".jp-Dialog-body").inner_text()
    dialog.locator(".jp-mod-accept").first.click()
    return text


def test_validate_button_lists_exactly_the_failing_tests(notebook_page, study):
    server, _ = study
    page = notebook_page
    nb = _save_and_read(page, server)      # Validate reads the saved file
    graded = [cell for cell in nb["cells"] if cell["metadata"].get("nbgrader", {}).get("grade")]
    failing = [cell["source"] for cell in graded if cell["cell_type"] == "code"
               and any(out["output_type"] == "error" for out in cell.get("outputs", []))]
    unwritten = [cell for cell in graded if cell["cell_type"] == "markdown"
                 and cell["source"].strip() == "YOUR ANSWER HERE"]
    assert failing and unwritten, "the learner copy should still have unanswered exercises"
    text = _validate(page)
    assert text.count("The following cell failed:") == len(failing) + len(unwritten), text[:3000]
    assert text.count("You did not provide a response.") == len(unwritten), text[-3000:]
    assert "NotImplementedError" in text and "Timeout" not in text, text[:3000]
    for source in failing:
        assert source.strip().splitlines()[0] in text


def test_validate_button_leaves_out_the_applied_cells_as_the_grader_does(browser, study):
    """The workspace's nbgrader_config.py reaches the button's server handler: an applied cell
    (tagged not-autograded) that would leave a file behind is not run."""
    server, ws = study
    applied = {"cell_type": "code", "execution_count": None, "outputs": [],
               "metadata": {"tags": ["not-autograded"]},
               "source": "open('applied-cell-ran', 'w').close()"}
    test = {"cell_type": "code", "execution_count": None, "outputs": [],
            "source": "assert 1 + 1 == 2",
            "metadata": {"nbgrader": {"grade": True, "grade_id": "test_sum", "locked": True,
                                      "points": 1, "schema_version": 3, "solution": False,
                                      "task": False}}}
    content = {"cells": [applied, test], "nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    server.api("PUT", "/api/contents/applied.ipynb", {"type": "notebook", "content": content})
    page = browser.new_page()
    try:
        page.goto(f"{server.url}/lab/tree/applied.ipynb?token={server.token}")
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
        text = _validate(page)
    finally:
        page.close()
    assert "Success! Your notebook passes all the tests." in text, text
    assert (ws / "applied.ipynb").is_file()
    assert not (ws / "applied-cell-ran").exists(), "Validate ran a cell the grader leaves out"


def test_the_learners_kernels_start_without_the_unencrypted_tcp_warning(study):
    """JupyterLab started by `medai-course study` runs its kernels over IPC (Linux, macOS): the
    log holds kernel starts, and none of them warns about TCP without encryption."""
    from medai_lessons.kernels import ipc_transport

    server, _ = study
    log = server.log.read_text()
    assert "Kernel started" in log or "Connecting to kernel" in log, log[-2000:]
    if ipc_transport():
        assert "without encryption" not in log, log[-2000:]


def test_formgrader_in_an_instructor_session(browser, tmp_path_factory):
    from medai_lessons.course import GradingCourse

    root = tmp_path_factory.mktemp("instructor")
    course = GradingCourse.create(root / "course", COURSE, [CH])
    course.generate(CH)
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={course.root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    server = Server(cmd, course.root, root / "lab.log", port)
    try:
        page = browser.new_page()
        page.goto(f"{server.url}/formgrader?token={server.token}")
        page.get_by_text("Manage Assignments").first.wait_for()
        page.get_by_text(CH).first.wait_for()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "formgrader.png"))
        page.close()
    finally:
        server.stop()
