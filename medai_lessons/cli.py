"""``medai-course``: the course's command line.

    medai-course study [--workspace DIR] [--no-browser] [--port N] [--no-launch]
        Copy the released chapters (no solutions) into the learner's workspace, keeping any
        notebook the learner edited, and open JupyterLab there.
    medai-course workspace [--workspace DIR] [CHAPTER ...]
        Only bring the workspace up to date.
    medai-course chapters
        List the course's chapters.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from medai_lessons.course import CourseError, chapters, find_course_dir
from medai_lessons.workspace import default_workspace, sync_workspace


def _sync(args) -> Path:
    report = sync_workspace(args.workspace, args.chapters or None)
    print("\n".join(report.lines()))
    return report.workspace


def cmd_study(args) -> int:
    workspace = _sync(args)
    if args.no_launch:
        return 0
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={workspace}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if args.port:
        cmd += [f"--ServerApp.port={args.port}", "--ServerApp.port_retries=0"]
    if args.ip:
        cmd.append(f"--ServerApp.ip={args.ip}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Containers and some hubs run as root; JupyterLab refuses that unless told.
        cmd.append("--allow-root")
        print("Running as root (as in many containers): starting JupyterLab with --allow-root.")
    print("Starting JupyterLab:", " ".join(cmd))
    # Started from the workspace, nbgrader's extensions (Validate) see it as their course root.
    return subprocess.call(cmd, cwd=workspace,
                           env=dict(os.environ, MEDAI_WORKSPACE=str(workspace)))


def cmd_workspace(args) -> int:
    _sync(args)
    return 0


def cmd_chapters(args) -> int:
    for ch in chapters(find_course_dir()):
        print(ch)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medai-course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add_workspace_args(p):
        p.add_argument("--workspace", type=Path, default=None,
                       help=f"the learner's folder (default: ${'MEDAI_WORKSPACE'} or "
                            f"{default_workspace()})")
        p.add_argument("chapters", nargs="*", help="chapter ids (default: all)")

    p = sub.add_parser("study", help="set up the learner workspace and open JupyterLab there")
    add_workspace_args(p)
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--no-launch", action="store_true", help="set up the workspace only")
    p.add_argument("--port", type=int, default=None, help="JupyterLab's port")
    p.add_argument("--ip", default=None, help="JupyterLab's address (default: localhost)")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("workspace", help="bring the learner workspace up to date")
    add_workspace_args(p)
    p.set_defaults(func=cmd_workspace)

    p = sub.add_parser("chapters", help="list the chapters")
    p.set_defaults(func=cmd_chapters)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CourseError as exc:
        print(f"medai-course: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
