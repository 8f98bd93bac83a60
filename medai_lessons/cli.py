"""``medai-course``: the course's command line, a thin layer over nbgrader and Jupyter.

Learners:
    medai-course study [--workspace DIR] [--no-browser] [--port N] [--no-launch]
        Copy the released chapters (no solutions) into the learner's workspace, keeping any
        notebook the learner edited, and open JupyterLab there.
    medai-course workspace [--workspace DIR] [CHAPTER ...]
        Only bring the workspace up to date.
    medai-course check NOTEBOOK [--timeout S] [--kernel NAME]
        Run a notebook's visible tests (fast mode) and summarise them per exercise.
    medai-course chapters
        List the course's chapters.
    medai-course answers CHAPTER
        The model answers and rubrics of a chapter's written answers (after writing yours).
Everyone:
    medai-course doctor
        Versions, CPU/GPU, Jupyter kernels, data cache; what to do about each gap.
    medai-course kernels install [--user | --sys-prefix | --prefix PATH] / kernels list
        The "MedAI (CPU)" and "MedAI (GPU)" Jupyter kernels.
Instructors (nbgrader's steps, in course/ or in --course-root DIR):
    medai-course release [CHAPTER ...]            nbgrader generate_assignment
    medai-course autograde [CHAPTER ...]          nbgrader autograde, then a score table
        [--workers N | --scheduler ADDRESS] [--only-missing] [--db-url URL] [--unsandboxed]
    medai-course export [--to grades.csv]         nbgrader export (CSV)
    medai-course feedback [CHAPTER ...]           nbgrader generate_feedback
    medai-course integrity CHAPTER [--threshold X] [--to report.html|.csv]
                                                  near-copies of the reference or of each
                                                  other, for a person to judge
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from medai_lessons import kernels
from medai_lessons.course import CourseError, chapters, find_course_dir
from medai_lessons.selfcheck import CheckError
from medai_lessons.workspace import (
    default_workspace,
    lab_arguments,
    lab_environment,
    sync_workspace,
)


def _sync(args) -> Path:
    report = sync_workspace(args.workspace, args.chapters or None)
    print("\n".join(report.lines()))
    return report.workspace


def cmd_study(args) -> int:
    workspace = _sync(args)
    if args.no_launch:
        return 0
    # kernels over IPC where possible: no "running over TCP without encryption" warning
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={workspace}",
           *lab_arguments(workspace), *kernels.server_arguments()]
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
    # The workspace's hidden settings (Validate's nbgrader_config.py, no instructor panels)
    # come in through JUPYTER_CONFIG_PATH.
    return subprocess.call(cmd, cwd=workspace, env=lab_environment(workspace))


def cmd_workspace(args) -> int:
    _sync(args)
    return 0


def cmd_chapters(args) -> int:
    for ch in chapters(find_course_dir()):
        print(ch)
    return 0


def cmd_answers(args) -> int:
    from medai_lessons.model_answers import written_answers

    answers = written_answers(args.chapter)
    if not answers:
        print(f"{args.chapter} has no written answer.")
    for answer in answers:
        print(answer.text())
    return 0


def cmd_check(args) -> int:
    from medai_lessons.selfcheck import check_notebook

    report = check_notebook(args.notebook, timeout=args.timeout, kernel_name=args.kernel,
                            log=lambda text: print(text, flush=True))
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def cmd_doctor(args) -> int:
    from medai_lessons.doctor import run

    return run()


def cmd_kernels_install(args) -> int:
    from medai_lessons import kernels

    for kernel, path in kernels.install(user=args.user, prefix=args.prefix):
        print(f"installed \"{kernel.display_name}\" ({kernel.name}) in {path}")
    print("Pick them in JupyterLab's kernel menu (restart JupyterLab if it is running). Notebooks "
          "keep the standard python3 kernel for grading.")
    return 0


def cmd_kernels_list(args) -> int:
    from medai_lessons.kernels import installed

    for k in installed():
        print(f"{k.name:<14} {k.display_name:<24} policy {k.policy:<5} {k.resource_dir}")
    return 0


def cmd_release(args) -> int:
    from medai_lessons.instructor import release

    release(args.course_root, args.chapters or None)
    return 0


def cmd_autograde(args) -> int:
    from medai_lessons.instructor import autograde, cell_timeout, course_root, table, time_summary

    course = course_root(args.course_root, timeout=args.timeout,
                         sandbox=not args.unsandboxed, db_url=args.db_url)
    print(f"Autograding in {course.root}, per-cell limit {cell_timeout(course)}, "
          + ("each submission in a sandbox" if course.sandbox else
             "WITHOUT a sandbox (--unsandboxed): a submission can read and change what this "
             "user can"), flush=True)
    where = (f"on the Dask cluster at {args.scheduler}" if args.scheduler
             else f"with {args.workers} worker(s)")
    print(f"Grading {where}; gradebook {course.db_url}", flush=True)
    rows = autograde(course, args.chapters or None, args.student or None,
                     workers=args.workers, scheduler=args.scheduler,
                     only_missing=args.only_missing)
    print("\n".join(table(rows)))
    summary = time_summary(rows)
    if summary:
        print(summary)
    failed = [r for r in rows if not r.graded]
    if any(r.graded for r in rows):
        print("Written answers wait for a person: grade them in nbgrader's formgrader "
              "(JupyterLab started in the course root, menu Nbgrader > Formgrader), then "
              "`medai-course export`.")
    if failed:
        print(f"{len(failed)} of {len(rows)} submission(s) could not be graded (see "
              "their notes in the table); the others were graded.")
    return 1 if failed else 0


def cmd_export(args) -> int:
    from medai_lessons.instructor import course_root, export

    course = course_root(args.course_root)
    if not (course.root / "gradebook.db").is_file():
        raise CourseError(f"No Gradebook in {course.root} yet: release and autograde first.")
    dest, rows = export(course, args.to, args.chapters or None, args.student or None)
    print(f"exported {rows} grade row(s) to {dest}")
    return 0


def cmd_feedback(args) -> int:
    from medai_lessons.instructor import course_root, feedback

    course = course_root(args.course_root)
    files, problems = feedback(course, args.chapters or None, args.student or None)
    print(f"{len(files)} feedback file(s) in {course.root / 'feedback'}"
          + (f"; {len(problems)} failed" if problems else ""))
    return 1 if problems else 0


def cmd_integrity(args) -> int:
    from medai_lessons.instructor import course_root
    from medai_lessons.integrity import build_report

    course = course_root(args.course_root)
    report = build_report(course.root, args.chapter, threshold=args.threshold,
                          min_tokens=args.min_tokens)
    print("\n".join(report.lines()))
    dest = report.write(args.to or Path(f"integrity-{args.chapter}.html"))
    print(f"report written to {dest}")
    return 0


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a share in (0, 1], e.g. 0.6, got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds > 0, got {text!r}")
    return value


def _positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medai-course", description=__doc__.splitlines()[0],
                                     epilog="\n".join(__doc__.splitlines()[2:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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

    p = sub.add_parser("answers", help="a chapter's model answers and rubrics for its written "
                                       "answers (open them after writing your own)")
    p.add_argument("chapter", help="chapter id, e.g. ch03_cnn (see: medai-course chapters)")
    p.set_defaults(func=cmd_answers)

    p = sub.add_parser("check", help="run a notebook's visible tests and summarise them")
    p.add_argument("notebook", type=Path, help="the notebook, e.g. <workspace>/<ch>/<ch>.ipynb")
    p.add_argument("--timeout", type=_positive, default=120, help="seconds per cell (120)")
    p.add_argument("--kernel", default=None,
                   help="Jupyter kernel to run it with (default: the notebook's, python3)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("doctor", help="check this machine for the course")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("kernels", help="the MedAI (CPU) and MedAI (GPU) Jupyter kernels")
    ksub = p.add_subparsers(dest="kernels_command", required=True)
    k = ksub.add_parser("install", help="install both kernelspecs")
    where = k.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user only")
    where.add_argument("--sys-prefix", action="store_true",
                       help=f"in this environment ({sys.prefix}); the default")
    where.add_argument("--prefix", type=Path, default=None,
                       help="under PATH/share/jupyter/kernels (e.g. a hub's shared prefix)")
    k.set_defaults(func=cmd_kernels_install)
    k = ksub.add_parser("list", help="the kernels Jupyter finds here")
    k.set_defaults(func=cmd_kernels_list)

    def add_course_root(p):
        p.add_argument("--course-root", type=Path, default=None,
                       help="the nbgrader course folder (default: the course's course/)")

    def add_selection(p, chapters_help):
        p.add_argument("chapters", nargs="*", metavar="CHAPTER", help=chapters_help)
        p.add_argument("--student", action="append", default=None,
                       help="only this student (repeat for more)")

    p = sub.add_parser("release", help="nbgrader generate_assignment for chapters")
    add_course_root(p)
    p.add_argument("chapters", nargs="*", metavar="CHAPTER", help="chapter ids (default: all)")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("autograde", help="autograde submitted/<student>/<chapter>/ and "
                                         "print a score table")
    add_course_root(p)
    add_selection(p, "chapters to grade (default: every one submitted)")
    p.add_argument("--timeout", type=_positive, default=None,
                   help="seconds per cell (default: Execute.timeout of the course's config)")
    p.add_argument("--workers", type=_positive, default=os.cpu_count() or 1,
                   help="submissions graded at once on this machine (default: the number of "
                        "cores)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="grade on a Dask cluster (e.g. tcp://10.0.0.5:8786); every worker "
                        "needs the course package installed")
    p.add_argument("--only-missing", action="store_true",
                   help="grade only submissions not recorded yet (after a stopped run)")
    p.add_argument("--db-url", default=None,
                   help="the gradebook's database, e.g. postgresql://user@host/course "
                        "(default: the config's db_url, else gradebook.db in the course root)")
    p.add_argument("--unsandboxed", action="store_true",
                   help="grade without a sandbox where none can start (a submission can then "
                        "read and change what this user can: only for trusted submissions)")
    p.set_defaults(func=cmd_autograde)

    p = sub.add_parser("export", help="nbgrader export: the grades as CSV")
    add_course_root(p)
    p.add_argument("--to", type=Path, default=Path("grades.csv"),
                   help="the CSV file to write (default: grades.csv)")
    add_selection(p, "chapters to export (default: all)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("feedback", help="nbgrader generate_feedback for graded submissions")
    add_course_root(p)
    add_selection(p, "chapters (default: every one autograded)")
    p.set_defaults(func=cmd_feedback)

    from medai_lessons.integrity import MIN_TOKENS, THRESHOLD

    p = sub.add_parser("integrity", help="list answers that are near-copies of the reference "
                                         "implementation or of another student's, to judge")
    add_course_root(p)
    p.add_argument("chapter", metavar="CHAPTER", help="the chapter whose submissions to compare")
    p.add_argument("--threshold", type=_share, default=THRESHOLD,
                   help="list pairs whose shared code makes up at least this share of either "
                        f"answer ({THRESHOLD})")
    p.add_argument("--min-tokens", type=_positive_count, default=MIN_TOKENS,
                   help="and at least this many shared normalised tokens: shorter code has "
                        f"few ways to be written ({MIN_TOKENS})")
    p.add_argument("--to", type=Path, default=None,
                   help="the report, .html (side by side code) or .csv (default: "
                        "integrity-CHAPTER.html)")
    p.set_defaults(func=cmd_integrity)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CourseError, CheckError) as exc:
        print(f"medai-course: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path that is a file where a folder is needed, or the reverse
        where = f" {exc.filename}" if exc.filename else ""
        print(f"medai-course: cannot use{where}: {exc.strerror or exc}. Check the paths given "
              "to --workspace, --course-root, --to or --prefix.", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
