"""The learner workspace of the study command: the released chapters without solutions, and
a learner's edited notebook never overwritten."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from conftest import COURSE
from medai_lessons.cli import main
from medai_lessons.workspace import (
    INSTRUCTOR_PLUGINS,
    MANIFEST,
    WELCOME,
    lab_arguments,
    lab_environment,
    sync_workspace,
)

pytestmark = pytest.mark.slow
CH = "ch02_activations_losses"


@pytest.fixture
def course_copy(tmp_path):
    """A private copy of the course, so a test can publish a 'course update'."""
    dest = tmp_path / "course"
    shutil.copytree(COURSE, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest


def publish_update(course_dir, text="A sentence added by a course update."):
    path = course_dir / "source" / CH / f"{CH}.ipynb"
    nb = nbformat.read(path, 4)
    nb.cells[0].source += "\n\n" + text
    nbformat.write(nb, path)


def test_first_sync_delivers_the_release_without_solutions(tmp_path, course_copy):
    ws = tmp_path / "ws"
    report = sync_workspace(ws, [CH], course_copy)
    nb_path = ws / CH / f"{CH}.ipynb"
    assert report.added == [f"{CH}/{CH}.ipynb", ".medai/nbgrader_config.py",
                            ".medai/labconfig/page_config.json",
                            ".medai/jupyter_server_config.json",
                            ".medai/lab-settings/overrides.json", WELCOME]
    # the learner's file list holds the welcome page and the chapters, nothing of the machinery
    assert sorted(p.name for p in ws.iterdir() if not p.name.startswith(".")) == [
        WELCOME, CH]
    text = nb_path.read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "strict=True" not in text, "hidden tests must not reach the learner"
    assert "raise NotImplementedError()" in text
    assert nbformat.read(nb_path, 4).metadata["kernelspec"]["name"] == "python3"
    assert json.loads((ws / MANIFEST).read_text())["delivered"]


def test_untouched_notebook_is_updated_and_edited_one_is_kept(tmp_path, course_copy):
    ws = tmp_path / "ws"
    sync_workspace(ws, [CH], course_copy)
    again = sync_workspace(ws, [CH], course_copy)
    assert again.unchanged and not (again.added or again.updated or again.kept_with_update_beside)

    # The course changes; the learner has not touched the notebook: it is updated in place.
    publish_update(course_copy, "First update.")
    report = sync_workspace(ws, [CH], course_copy)
    nb_path = ws / CH / f"{CH}.ipynb"
    assert report.updated == [f"{CH}/{CH}.ipynb"]
    assert "First update." in nb_path.read_text()

    # The learner edits it; the course changes again: their file is kept byte for byte.
    nb = nbformat.read(nb_path, 4)
    nb.cells[0].source += "\n\nMy own notes."
    nbformat.write(nb, nb_path)
    mine = nb_path.read_bytes()
    publish_update(course_copy, "Second update.")
    report = sync_workspace(ws, [CH], course_copy)
    assert nb_path.read_bytes() == mine
    [(kept, beside)] = report.kept_with_update_beside
    assert kept == f"{CH}/{CH}.ipynb" and ".course-update-" in beside
    assert "Second update." in (ws / beside).read_text()
    assert any("KEPT YOUR EDITS" in line for line in report.lines())

    # Running again neither touches the learner's file nor piles up copies of the update.
    sync_workspace(ws, [CH], course_copy)
    assert nb_path.read_bytes() == mine
    assert len(list((ws / CH).glob("*.course-update-*"))) == 1


def test_an_edited_notebook_with_no_course_change_gets_no_copy_beside_it(tmp_path, course_copy):
    ws = tmp_path / "ws"
    sync_workspace(ws, [CH], course_copy)
    nb_path = ws / CH / f"{CH}.ipynb"
    nb = nbformat.read(nb_path, 4)
    nb.cells[0].source += "\n\nMy own notes."
    nbformat.write(nb, nb_path)
    mine = nb_path.read_bytes()
    for _ in range(2):                                   # as `study` does every day
        report = sync_workspace(ws, [CH], course_copy)
        assert nb_path.read_bytes() == mine
        assert report.edited == [f"{CH}/{CH}.ipynb"]
        assert not (report.added or report.updated or report.kept_with_update_beside)
        assert not list((ws / CH).glob("*.course-update-*"))
        assert not any("KEPT YOUR EDITS" in line for line in report.lines())
        assert any("you edited" in line for line in report.lines())
    # When the course then changes, the update lands beside the learner's file as before.
    publish_update(course_copy, "An update.")
    report = sync_workspace(ws, [CH], course_copy)
    assert nb_path.read_bytes() == mine and len(report.kept_with_update_beside) == 1


def test_cli_study_without_launch_and_chapters(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEDAI_COURSE_DIR", str(COURSE))
    assert main(["chapters"]) == 0
    assert CH in capsys.readouterr().out.split()
    assert main(["study", "--no-launch", "--workspace", str(tmp_path / "ws")]) == 0
    assert "new:" in capsys.readouterr().out
    assert (tmp_path / "ws" / CH / f"{CH}.ipynb").is_file()


def test_cli_unknown_chapter_says_what_exists(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MEDAI_COURSE_DIR", str(COURSE))
    assert main(["workspace", "--workspace", str(tmp_path / "ws"), "ch99_nothing"]) == 2
    err = capsys.readouterr().err
    assert "ch99_nothing" in err and CH in err


def _graded_notebook_with_an_applied_cell(path):
    """An applied cell (tagged not-autograded) that leaves a file behind when it runs, and a
    graded test cell that passes."""
    from nbformat.v4 import new_code_cell, new_notebook

    applied = new_code_cell("open('applied-cell-ran', 'w').close()",
                            metadata={"tags": ["not-autograded"]})
    test = new_code_cell("assert 1 + 1 == 2", metadata={"nbgrader": {
        "grade": True, "grade_id": "test_sum", "locked": True, "points": 1,
        "schema_version": 3, "solution": False, "task": False}})
    nb = new_notebook(cells=[applied, test], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_validate_button_in_the_workspace_follows_the_graders_rules(tmp_path, course_copy,
                                                                     monkeypatch):
    from nbgrader.server_extensions.validate_assignment.handlers import (
        ValidateAssignmentHandler,
    )
    from nbgrader.validator import Validator

    from medai_lessons.course import load_config
    from medai_lessons.grading.execute import SKIP_TAG

    ws = tmp_path / "ws"
    assert ".medai/nbgrader_config.py" in sync_workspace(ws, [CH], course_copy).added
    nb_path = _graded_notebook_with_an_applied_cell(ws / "mine" / "mine.ipynb")
    trace = nb_path.parent / "applied-cell-ran"

    def validate_button():
        """What the button's server handler does: config from the folder JupyterLab runs in."""
        validator = Validator(config=ValidateAssignmentHandler.load_config(None))
        return validator, validator.validate(str(nb_path))

    monkeypatch.chdir(ws)                       # JupyterLab as `medai-course study` starts it
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", lab_environment(ws)["JUPYTER_CONFIG_PATH"])
    validator, result = validate_button()
    assert not result.get("failed"), result
    assert not trace.exists(), "Validate ran an applied cell that the grader leaves out"
    assert validator.config.Execute.skip_cells_with_tag == SKIP_TAG
    assert validator.config.Execute.timeout == load_config(course_copy).Execute.timeout == 120
    if os.name == "posix":   # its kernel talks over IPC: no unencrypted-TCP warning (the
        # warning itself is checked where a kernel is started in a process of its own, in
        # test_cli_learner.py: capturing file descriptors here breaks once TensorFlow has been
        # imported by an earlier test of the same process)
        assert validator.config.KernelManager.transport == "ipc"

    monkeypatch.chdir(tmp_path)                 # started elsewhere: nbgrader's own defaults
    monkeypatch.delenv("JUPYTER_CONFIG_PATH")
    validator, result = validate_button()
    assert not result.get("failed") and trace.exists()
    assert "skip_cells_with_tag" not in validator.config.Execute

    # The file is the course's: a learner's edit to it is kept like an edited notebook.
    config = ws / ".medai" / "nbgrader_config.py"
    config.write_text(config.read_text() + "c.Execute.timeout = 600\n")
    mine = config.read_bytes()
    report = sync_workspace(ws, [CH], course_copy)
    assert config.read_bytes() == mine and report.edited == [".medai/nbgrader_config.py"]


def test_the_welcome_page_links_every_chapter_and_opens_first(tmp_path):
    ws = tmp_path / "ws"
    sync_workspace(ws, ["ch01_background", CH], COURSE)   # a second sync brings another
    sync_workspace(ws, ["ch03_cnn"], COURSE)
    nb = nbformat.read(ws / WELCOME, 4)
    text = "\n".join(c.source for c in nb.cells)
    assert all(c.cell_type == "markdown" for c in nb.cells)
    assert "Open chapter 1 first" in text and "medai-course check" in text
    # a new terminal lacks the course's environment: the page names this installation's command
    here = shutil.which("medai-course", path=str(Path(sys.executable).parent))
    if here and " " not in here:
        assert f"`{here} check ch01_background/ch01_background.ipynb`" in text, text
    for ch in ("ch01_background", CH, "ch03_cnn"):
        assert f"]({ch}/{ch}.ipynb)" in text and (ws / ch / f"{ch}.ipynb").is_file()
    assert "ch04_rnn" not in text                    # not in this workspace yet
    assert text.index("ch01_background") < text.index(CH) < text.index("ch03_cnn")
    assert "[glossary](glossary.md)" in text and (ws / "glossary.md").is_file()
    assert "Convolutional networks on medical images" in text
    assert f"--LabApp.default_url=/lab/tree/{WELCOME}" in lab_arguments(ws)
    page = json.loads((ws / ".medai" / "labconfig" / "page_config.json").read_text())
    assert set(page["disabledExtensions"]) == set(INSTRUCTOR_PLUGINS)
    # no "get notified about official Jupyter news?" toast over the learner's first screen
    overrides = json.loads((ws / ".medai" / "lab-settings" / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false"}


def test_a_top_level_config_of_an_earlier_sync_moves_out_of_sight(tmp_path, course_copy):
    ws = tmp_path / "ws"
    sync_workspace(ws, [CH], course_copy)
    manifest = json.loads((ws / MANIFEST).read_text())
    old = ws / "nbgrader_config.py"                  # what an earlier version delivered
    old.write_bytes((ws / ".medai" / "nbgrader_config.py").read_bytes())
    manifest["delivered"]["nbgrader_config.py"] = manifest["delivered"][
        ".medai/nbgrader_config.py"]
    (ws / MANIFEST).write_text(json.dumps(manifest))
    report = sync_workspace(ws, [CH], course_copy)
    assert not old.exists() and any("moved out of sight" in n for n in report.notes)
    # an edited one is the learner's and stays
    old.write_text("c = get_config()\nc.Execute.timeout = 600\n")
    manifest = json.loads((ws / MANIFEST).read_text())
    manifest["delivered"]["nbgrader_config.py"] = "0" * 64
    (ws / MANIFEST).write_text(json.dumps(manifest))
    sync_workspace(ws, [CH], course_copy)
    assert old.read_text().endswith("600\n")


@pytest.mark.parametrize("damage", ['{"delivered": {', "[]", '{"delivered": 3}'])
def test_a_damaged_manifest_is_set_aside_and_nothing_is_lost(tmp_path, course_copy, damage):
    ws = tmp_path / "ws"
    sync_workspace(ws, [CH], course_copy)
    nb_path = ws / CH / f"{CH}.ipynb"
    mine = nb_path.read_bytes()
    (ws / MANIFEST).write_text(damage)
    report = sync_workspace(ws, [CH], course_copy)
    assert any("was damaged" in line for line in report.lines())
    [aside] = ws.glob(f"{MANIFEST}.damaged-*")
    assert aside.read_text() == damage
    assert nb_path.read_bytes() == mine
    assert json.loads((ws / MANIFEST).read_text())["delivered"]   # a sound record again
