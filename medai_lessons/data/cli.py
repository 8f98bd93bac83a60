"""``python -m medai_lessons.data``: see, fetch and check the course's data cache.

Subcommands:

- ``where``: print the cache folder (``MEDAI_DATA_DIR`` if set, else the per-user cache).
- ``list``: every dataset with its state here: present / missing / bad checksum / corrupt.
- ``fetch NAME [NAME ...]`` or ``fetch --all``: download into the cache (checksum-verified).
- ``verify``: check every file in the cache; exit 1 if any is bad (with ``--strict``, also if
  a downloadable dataset is missing: use it to check a folder staged for an offline class).
  A ``MEDAI_DATA_DIR`` that names no folder is an error; an empty folder is reported as
  nothing to verify; known files in the wrong place (``pneumoniamnist.npz`` at the top instead
  of in ``medmnist/``) get a warning saying where they belong. ``list`` warns the same way.

Exit codes: 0 all good, 1 a dataset is bad, missing (strict) or could not be fetched, or
``MEDAI_DATA_DIR`` names no folder (verify), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from medai_lessons.data.cache import (
    ENV_VAR,
    cache_state,
    data_dir,
    dataset_path,
    file_md5,
    layout_warnings,
)
from medai_lessons.data.errors import DataError
from medai_lessons.data.registry import chapters_using, get_info, list_datasets


def _cmd_where(_: argparse.Namespace) -> int:
    print(data_dir())
    return 0


FETCH_HINT = (
    "`python -m medai_lessons.data fetch NAME` (or `fetch --all`) downloads datasets into it, "
    "checked against their official checksums; to stage them by hand, copy them into it as "
    "medmnist/<name>.npz and mitdb/<record>.hea, .dat, .atr"
)


def _folder_problem(root: Path) -> str | None:
    """Why the data folder cannot be looked at, when ``MEDAI_DATA_DIR`` names no folder."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw or root.is_dir():
        return None
    what = "is a file, not a folder" if root.exists() else "does not exist"
    return (
        f"the data folder {root} {what}: {ENV_VAR} is set to {raw!r}. Set {ENV_VAR} to the "
        "folder that holds medmnist/ and mitdb/ (e.g. the one your instructor staged for the "
        f"class), or unset it to use this computer's own cache folder."
    )


def _cmd_list(_: argparse.Namespace) -> int:
    root = data_dir()
    print(f"cache folder: {root}  (set {ENV_VAR} to use another)")
    rows = [(i.name, i.kind, cache_state(i), i.license) for i in list_datasets()]
    widths = [max(len(r[k]) for r in rows + [("dataset", "kind", "state", "license")])
              for k in range(3)]
    header = ("dataset", "kind", "state", "license")
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:3], widths, strict=True)), row[3])
    problem = _folder_problem(root)
    if problem:
        print(f"warning: {problem}")
    elif not root.exists():
        print(f"note: {root} does not exist yet (nothing fetched on this computer); {FETCH_HINT}.")
    for warning in layout_warnings(root) if root.is_dir() else []:
        print(f"warning: {warning}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    if args.all == bool(args.names):
        print("fetch: name one or more datasets, or use --all (not both)", file=sys.stderr)
        return 2
    from medai_lessons.data.download import fetch

    names = [i.name for i in list_datasets() if i.downloadable] if args.all else args.names
    failed = 0
    for name in names:
        try:
            info = get_info(name)
        except KeyError as exc:
            print(f"fetch: {exc.args[0]}", file=sys.stderr)
            failed += 1
            continue
        if not info.downloadable:
            print(f"{name}: ships inside a Python package: nothing to fetch")
            continue
        try:
            path = fetch(info, progress=None if args.progress else False)
        except DataError as exc:
            print(f"{name}: FAILED: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: ok ({path})")
    return 1 if failed else 0


def _cmd_verify(args: argparse.Namespace) -> int:
    root = data_dir()
    problem = _folder_problem(root)
    if problem:
        print(f"verify: ERROR: {problem}", file=sys.stderr)
        return 1
    print(f"verifying {root}")
    if not root.exists():
        print(f"verify: nothing to verify: {root} does not exist yet (nothing has been fetched "
              f"on this computer). {FETCH_HINT}.")
        return 1 if args.strict else 0
    bad = missing = present = 0
    unused = []
    for info in list_datasets():
        if not info.downloadable:
            continue
        state = cache_state(info)
        chapters = chapters_using(info.name)
        if not chapters and state.startswith("missing"):
            unused.append(info.name)
            continue
        detail = ""
        if state == "bad checksum":
            detail = (
                f": MD5 {file_md5(dataset_path(info))} != official {info.md5}; run "
                f"`python -m medai_lessons.data fetch {info.name}` (moves the course's damaged "
                "download aside and downloads it again) or copy the official file over it"
            )
        elif state.startswith("bad staged"):
            detail = (
                f": {dataset_path(info)} was put there by hand and is left as it is; replace it "
                f"with the official file ({info.url})"
            )
        elif state.startswith("staged copy"):
            detail = ": used as it is; figures made with it are not comparable with published ones"
        used = f" [{', '.join(chapters)}]" if chapters else " [no chapter uses it]"
        print(f"  {info.name}: {state}{used}{detail}")
        if state.startswith(("bad", "corrupt")):
            bad += 1
        elif state.startswith("missing"):
            missing += 1
        else:
            present += 1
    if unused:
        print(f"  not checked: {', '.join(unused)} (no chapter uses them; fetch them for your "
              "own projects if you like)")
    warnings = layout_warnings(root)
    for warning in warnings:
        print(f"  warning: {warning}")
    failed = bad + (missing if args.strict else 0)
    if failed:
        verdict = f"{bad} bad" + (f", {missing} missing" if args.strict else "")
    elif not present:
        verdict = f"nothing to verify: no dataset is in {root}"
        if warnings:
            verdict += " where the course looks for it (see the warnings above)"
        verdict += f". {FETCH_HINT}."
    else:
        verdict = "OK" + (f" ({len(warnings)} warning(s) above)" if warnings else "")
    print(f"verify: {verdict}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m medai_lessons.data",
        description="The MedAI Lessons data cache: list, fetch, verify, where.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("where", help="print the cache folder").set_defaults(func=_cmd_where)
    sub.add_parser("list", help="datasets and their state").set_defaults(func=_cmd_list)
    fetch = sub.add_parser("fetch", help="download datasets into the cache")
    fetch.add_argument("names", nargs="*", metavar="NAME")
    fetch.add_argument("--all", action="store_true", help="every downloadable dataset")
    fetch.add_argument("--no-progress", dest="progress", action="store_false")
    fetch.set_defaults(func=_cmd_fetch)
    verify = sub.add_parser("verify", help="check the cache; exit 1 if something is bad")
    verify.add_argument(
        "--strict", action="store_true", help="also fail when a dataset a chapter uses is missing"
    )
    verify.set_defaults(func=_cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return int(args.func(args))
