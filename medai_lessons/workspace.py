"""The learner's workspace: the released chapters (no solutions, no hidden tests) in a folder
the learner owns.

``sync_workspace`` generates each chapter's release with nbgrader in a temporary course and
copies it into ``<workspace>/<chapter>/``. A manifest (``.medai-workspace.json``) remembers the
hash of every file it delivered, so that a later run can tell an untouched file (updated in
place when the course changed) from one the learner edited, which is never overwritten: when
the course changed, its new version lands beside it as ``<name>.course-update-<date>.ipynb``
and the run says so; when the course did not change, nothing is written.

The workspace also gets an ``nbgrader_config.py`` (:func:`validate_config`), delivered the same
way: JupyterLab's Validate button reads the one in the folder JupyterLab was started in (as
``medai-course study`` starts it), and with it validates as the grader runs a submission: the
course's kernel, time limit per cell and kernel guard, and the applied cells left out. (The
grader runs a graded cell even if it carries the applied cells' tag; Validate, which has no
such rule, would leave it out.)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from medai_lessons.course import CONFIG_NAME, GradingCourse, chapters, find_course_dir, load_config

MANIFEST = ".medai-workspace.json"
WORKSPACE_ENV = "MEDAI_WORKSPACE"


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
        "tagged not-autograded left out). JupyterLab reads this file when it is started in this",
        'folder, as `medai-course study` does. A later sync updates it unless you edited it."""',
        "",
        "c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file",
        "",
    ]
    lines += [f"c.Execute.{key} = {settings[key]!r}" for key in sorted(settings)]
    return ("\n".join(lines) + "\n").encode()


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
    deliver(CONFIG_NAME, validate_config(course_dir))
    manifest["course_dir"] = str(course_dir)
    manifest["synced_at"] = stamp
    _atomic_write(manifest_path, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return report
