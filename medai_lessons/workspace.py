"""The learner's workspace: the released chapters (no solutions, no hidden tests) in a folder
the learner owns.

``sync_workspace`` generates each chapter's release with nbgrader in a temporary course and
copies it into ``<workspace>/<chapter>/``. A manifest (``.medai-workspace.json``) remembers the
hash of every file it delivered, so that a later run can tell an untouched file (updated in
place when the course changed) from one the learner edited, which is never overwritten: when
the course changed, its new version lands beside it as ``<name>.course-update-<date>.ipynb``
and the run says so; when the course did not change, nothing is written.

The workspace opens on ``START_HERE.ipynb`` (:func:`welcome_notebook`): what the course is, the
chapters in order with links, the glossary (``glossary.md``, delivered too) and how to check
one's work. What JupyterLab needs besides is kept out of the learner's file list, in the hidden
folder ``.medai/`` (:data:`LEARNER_CONFIG`), which ``medai-course study`` adds to Jupyter's
configuration path (``JUPYTER_CONFIG_PATH``):

- ``nbgrader_config.py`` (:func:`validate_config`): nbgrader's Validate button reads it (from
  Jupyter's configuration path, as from the folder JupyterLab was started in), and with it
  validates as the grader runs a submission: the course's kernel, time limit per cell and
  kernel guard, and the applied cells left out. (The grader runs a graded cell even if it
  carries the applied cells' tag; Validate, which has no such rule, would leave it out.)
- ``labconfig/page_config.json`` and ``jupyter_server_config.json``: nbgrader's instructor
  panels (Create Assignment, Formgrader, the course list) are off for a learner; they stay on
  wherever an instructor starts JupyterLab in a course folder.
- ``lab-settings/overrides.json``: the file browser shows names only (no date column), so that
  chapter folders are not cut off, and JupyterLab does not ask about fetching its news (a
  notice over the welcome page, and a request to the internet). A learner's own settings still
  win.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from medai_lessons.course import CONFIG_NAME, GradingCourse, chapters, find_course_dir, load_config

MANIFEST = ".medai-workspace.json"
WORKSPACE_ENV = "MEDAI_WORKSPACE"
#: the workspace's hidden folder of JupyterLab settings (added to ``JUPYTER_CONFIG_PATH``)
LEARNER_CONFIG = ".medai"
WELCOME = "START_HERE.ipynb"
#: nbgrader's JupyterLab panels and server parts an instructor uses, off in a learner's JupyterLab
INSTRUCTOR_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list")
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader",
                                "nbgrader.server_extensions.course_list")


def default_workspace() -> Path:
    """``$MEDAI_WORKSPACE``, else ``~/medai-lessons-workspace``."""
    return Path(os.environ.get(WORKSPACE_ENV) or Path.home() / "medai-lessons-workspace")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class SyncReport:
    workspace: Path
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept_with_update_beside: list[tuple[str, str]] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"Learner workspace: {self.workspace}"]
        out += [f"  NOTE:     {note}" for note in self.notes]
        out += [f"  new:      {p}" for p in self.added]
        out += [f"  updated:  {p} (you had not changed it)" for p in self.updated]
        for mine, new in self.kept_with_update_beside:
            out.append(f"  KEPT YOUR EDITS: {mine} is yours and was not touched; the course's "
                       f"new version is beside it as {new}")
        if self.edited:
            out.append(f"  yours:    {len(self.edited)} file(s) you edited; the course has not "
                       "changed them since (nothing written)")
        if self.unchanged:
            out.append(f"  up to date: {len(self.unchanged)} file(s)")
        return out


def _atomic_write(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a workspace file is a normal file
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def validate_config(course_dir: Path) -> bytes:
    """The workspace's ``nbgrader_config.py``: the course's settings for running a notebook
    (``c.Execute.*`` in ``course/nbgrader_config.py``, copied as values), and the applied cells
    (tagged :data:`~medai_lessons.grading.execute.SKIP_TAG`) left out by the executor's own
    tag skipping, as the grader leaves them out."""
    from medai_lessons.grading.execute import SKIP_TAG

    execute = load_config(course_dir).Execute
    settings = {key: execute[key] for key in execute} | {"skip_cells_with_tag": SKIP_TAG}
    lines = [
        '"""Settings for the Validate button of nbgrader in JupyterLab, written by `medai-course',
        'study` / `medai-course workspace` from the course\'s grading settings: Validate then runs',
        "a notebook as the grader does (same kernel, same time limit per cell, the applied cells",
        "tagged not-autograded left out). JupyterLab started by `medai-course study` reads it",
        "(this folder is on its JUPYTER_CONFIG_PATH). A later sync updates it unless you",
        'edited it."""',
        "",
        "c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file",
        "",
    ]
    lines += [f"c.Execute.{key} = {settings[key]!r}" for key in sorted(settings)]
    lines += [
        "",
        "# Validate's kernels talk over IPC (Unix sockets in Jupyter's runtime folder), as the",
        "# learner's own kernels do: no \"running over TCP without encryption\" warning.",
        "import os, sys  # noqa: E401,E402",
        "",
        'if sys.platform != "win32":',
        "    from jupyter_core.paths import jupyter_runtime_dir",
        "",
        "    os.makedirs(jupyter_runtime_dir(), exist_ok=True)",
        '    c.KernelManager.transport = "ipc"',
        '    c.KernelManager.ip = os.path.join(jupyter_runtime_dir(), "medai-validate-ipc")',
    ]
    return ("\n".join(lines) + "\n").encode()


def learner_settings() -> dict[str, bytes]:
    """The files of the workspace's hidden settings folder besides ``nbgrader_config.py``, by
    path relative to the workspace."""
    page = {"disabledExtensions": dict.fromkeys(INSTRUCTOR_PLUGINS, True)}
    server = {"ServerApp": {"jpserver_extensions": dict.fromkeys(INSTRUCTOR_SERVER_EXTENSIONS,
                                                                  False)}}
    browser = {"@jupyterlab/filebrowser-extension:browser": {"showLastModifiedColumn": False},
               # no "get notified about official Jupyter news?" toast over the first screen
               "@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}
    files = {"labconfig/page_config.json": page, "jupyter_server_config.json": server,
             "lab-settings/overrides.json": browser}
    return {f"{LEARNER_CONFIG}/{rel}": (json.dumps(data, indent=1) + "\n").encode()
            for rel, data in files.items()}


def lab_environment(workspace: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a learner's JupyterLab: the workspace's settings folder first on
    Jupyter's configuration path."""
    env = dict(os.environ if env is None else env)
    extra = [str(Path(workspace) / LEARNER_CONFIG)]
    if env.get("JUPYTER_CONFIG_PATH"):
        extra.append(env["JUPYTER_CONFIG_PATH"])
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(extra)
    env[WORKSPACE_ENV] = str(workspace)
    return env


def lab_arguments(workspace: Path) -> list[str]:
    """JupyterLab's settings for a learner: opens on the welcome page, the workspace's
    settings overrides."""
    return [f"--LabApp.app_settings_dir={Path(workspace) / LEARNER_CONFIG / 'lab-settings'}",
            f"--LabApp.default_url=/lab/tree/{WELCOME}"]


def _title(notebook: Path) -> str:
    """A chapter's title: the first heading of its first cell, without '# ' and 'Chapter N · '."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"]).splitlines()[0] if nb.get("cells") else ""
    return first.lstrip("# ").split(" · ", 1)[-1].strip() or notebook.stem


def _command() -> str:
    """How a terminal reaches this installation's ``medai-course``: its full path (a new
    terminal does not have the course's environment active), else the bare name."""
    here = shutil.which("medai-course", path=str(Path(sys.executable).parent))
    return here if here and " " not in here else "medai-course"


def welcome_notebook(course_dir: Path, chapter_ids: list[str], glossary: bool) -> bytes:
    """``START_HERE.ipynb``: the page a learner's JupyterLab opens on (text only)."""
    import nbformat

    rows = "\n".join(
        f"| {i} | [{_title(course_dir / 'source' / ch / f'{ch}.ipynb')}]({ch}/{ch}.ipynb) "
        f"| `{ch}` |"
        for i, ch in enumerate(chapter_ids, 1))
    glossary_line = ("- **Words**: every technical term, in English and in the Chinese of the "
                     "source documents, is in the [glossary](glossary.md).\n" if glossary else "")
    cells = [
        "# MedAI Lessons: start here\n\n"
        "A course on neural networks for medical diagnosis and treatment. You write the building "
        "blocks yourself in NumPy, check them against TensorFlow, and apply them to real medical "
        "data: chest X-rays, ECGs, biopsies. Each chapter mirrors a part of two Chinese source "
        "documents, and shows and fixes their mistakes in boxes headed *From the source "
        "document*.\n\n"
        "**Open chapter 1 first**; the chapters build on each other.",
        "## The chapters\n\n| | chapter | folder |\n|---|---|---|\n" + rows,
        "## How to work\n\n"
        "- **Run** a chapter top to bottom (*Run > Run All Cells*), then work through it: write "
        "each exercise where it says `YOUR CODE HERE`, and run its test cell below it. A failed "
        "test says which case failed, what it expected, what it got, and gives a hint.\n"
        "- **Skip** an exercise if you are stuck: later cells use the course's own version and "
        "say so, so the rest of the chapter still runs.\n"
        "- **Check** a whole chapter: the *Validate* button in a notebook's toolbar, or in a "
        "terminal (*File > New > Terminal* opens one in this folder) "
        f"`{_command()} check ch01_background/ch01_background.ipynb`, which lists every "
        "exercise as passed, failed (with the message) or not attempted.\n"
        "- **Written answers** (*YOUR ANSWER HERE*) are graded by a person.\n"
        + glossary_line
        + "- **Your files are yours**: `medai-course study` brings new chapters and never "
        "overwrites a notebook you changed (a newer version lands beside it).",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text, id=f"welcome-{i}")
                for i, text in enumerate(cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return (nbformat.writes(nb) + "\n").encode()


def _read_manifest(path: Path, stamp: str, report: SyncReport) -> dict:
    """The manifest, or ``{}`` when there is none. A damaged one is moved aside (and the run
    says so): without it every existing file counts as the learner's, which loses nothing."""
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and isinstance(manifest.get("delivered", {}), dict):
            return manifest
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    path.replace(aside)
    report.notes.append(f"the workspace's record of delivered files was damaged; it is now "
                        f"{aside.name}, and every file already here counts as yours (an "
                        "update of one lands beside it)")
    return {}


def sync_workspace(workspace: Path | None = None, chapter_ids: list[str] | None = None,
                   course_dir: Path | None = None) -> SyncReport:
    """Bring the released chapters into ``workspace`` without losing any learner edit."""
    workspace = Path(workspace or default_workspace()).expanduser().resolve()
    course_dir = Path(course_dir or find_course_dir())
    chapter_ids = chapter_ids or chapters(course_dir)
    workspace.mkdir(parents=True, exist_ok=True)
    manifest_path = workspace / MANIFEST
    report = SyncReport(workspace=workspace)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    manifest = _read_manifest(manifest_path, stamp, report)
    delivered: dict[str, str] = manifest.setdefault("delivered", {})

    def deliver(rel: str, new: bytes) -> None:
        dest = workspace / rel
        new_hash = hashlib.sha256(new).hexdigest()
        if not dest.exists():
            _atomic_write(dest, new)
            delivered[rel] = new_hash
            report.added.append(rel)
            return
        current = _sha256(dest)
        if current == new_hash:
            delivered[rel] = new_hash
            report.unchanged.append(rel)
        elif delivered.get(rel) == new_hash:  # edited by the learner, course unchanged
            report.edited.append(rel)
        elif delivered.get(rel) == current:  # untouched since we delivered it
            _atomic_write(dest, new)
            delivered[rel] = new_hash
            report.updated.append(rel)
        else:  # the learner's own edits (or a file we did not deliver): keep it
            beside = dest.with_name(f"{dest.stem}.course-update-{stamp}{dest.suffix}")
            pattern = f"{dest.stem}.course-update-*{dest.suffix}"
            already = [p for p in dest.parent.glob(pattern) if _sha256(p) == new_hash]
            if already:
                beside = already[0]
            else:
                _atomic_write(beside, new)
            report.kept_with_update_beside.append(
                (rel, beside.relative_to(workspace).as_posix()))

    with tempfile.TemporaryDirectory(prefix="medai-release-") as tmp:
        course = GradingCourse.create(Path(tmp), course_dir, chapter_ids)
        for ch in chapter_ids:
            release = course.generate(ch)
            for src in sorted(p for p in release.rglob("*") if p.is_file()):
                rel = (Path(ch) / src.relative_to(release)).as_posix()
                deliver(rel, src.read_bytes())
    deliver(f"{LEARNER_CONFIG}/{CONFIG_NAME}", validate_config(course_dir))
    for rel, data in learner_settings().items():
        deliver(rel, data)
    glossary = course_dir.parent / "docs" / "glossary.md"
    if glossary.is_file():
        deliver("glossary.md", glossary.read_bytes())
    listed = [ch for ch in chapters(course_dir)
              if ch in chapter_ids or (workspace / ch / f"{ch}.ipynb").is_file()]
    deliver(WELCOME, welcome_notebook(course_dir, listed, glossary.is_file()))
    _retire_top_level_config(workspace, delivered, report)
    manifest["course_dir"] = str(course_dir)
    manifest["synced_at"] = stamp
    _atomic_write(manifest_path, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return report


def _retire_top_level_config(workspace: Path, delivered: dict[str, str],
                             report: SyncReport) -> None:
    """Earlier versions put ``nbgrader_config.py`` at the top of the workspace; it now lives
    in ``.medai/``. Removed when untouched since delivered; a learner's edited copy stays
    (and, read from the folder JupyterLab starts in, still takes effect)."""
    old = workspace / CONFIG_NAME
    if CONFIG_NAME not in delivered:
        return
    if old.is_file() and _sha256(old) == delivered[CONFIG_NAME]:
        old.unlink()
        report.notes.append(f"{CONFIG_NAME} moved out of sight, to {LEARNER_CONFIG}/ (you had "
                            "not changed it)")
        del delivered[CONFIG_NAME]
    elif not old.exists():
        del delivered[CONFIG_NAME]
