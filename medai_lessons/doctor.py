"""``medai-course doctor``: what this machine has for the course, and what to do about gaps.

One line per finding, each ``[ok]``, ``[warn]`` or ``[FAIL]``; a warning or a failure says what
to do. Only a failure (something the course cannot work without, or a damaged data file)
makes the exit code non-zero: a dataset that is not downloaded yet is a warning, since the
notebooks fetch it on first use or fall back to a stand-in.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "FAIL"
PACKAGES = ("tensorflow", "keras", "nbgrader", "jupyterlab", "ipykernel", "nbclient")
REINSTALL = "reinstall the course's dependencies: `pip install -e .` in the repository"


@dataclass
class Finding:
    level: str
    topic: str
    text: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.fix and self.level != OK else ""
        return f"[{self.level}]".ljust(7) + f"{self.topic}: {self.text}{fix}"


def python_and_packages() -> list[Finding]:
    from medai_lessons import __version__

    out = []
    # The package itself requires Python >= 3.10, so an older one never gets this far.
    out.append(Finding(OK, "Python", f"{platform.python_version()} ({sys.executable})"))
    here = Path(__file__).resolve().parent
    out.append(Finding(OK, "medai-lessons", f"{__version__} ({here})"))
    for name in PACKAGES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out.append(Finding(FAIL, name, "not installed", REINSTALL))
            continue
        if name == "keras" and not version.startswith("3."):
            out.append(Finding(FAIL, name, f"{version}: the course needs Keras 3", REINSTALL))
        else:
            out.append(Finding(OK, name, version))
    return out


def devices() -> list[Finding]:
    try:
        from medai_lessons.device import configure

        info = configure()
        import tensorflow as tf

        build = dict(tf.sysconfig.get_build_info())
    except Exception as exc:  # a broken TensorFlow install shows up here, whatever it raises
        return [Finding(FAIL, "TensorFlow", f"does not start ({type(exc).__name__}: {exc})",
                        REINSTALL)]
    cuda = (f"built with CUDA {build.get('cuda_version', '?')} / cuDNN "
            f"{build.get('cudnn_version', '?')}" if info.built_with_cuda
            else "built without CUDA (CPU only)")
    out = [Finding(OK, "devices", info.line()), Finding(OK, "TensorFlow build", cuda)]
    if info.gpus:
        out.append(Finding(OK, "GPU", ", ".join(info.gpus)))
    elif info.built_with_cuda:
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES") == "-1"
        out.append(Finding(OK, "GPU", "none visible to TensorFlow: the course runs on the CPU"
                           + (" (CUDA_VISIBLE_DEVICES=-1 hides GPUs here)" if hidden else "")
                           + ". With an NVIDIA GPU: check `nvidia-smi`, install `.[gpu]`"))
    else:
        out.append(Finding(OK, "GPU", "none (fine for this course). For an NVIDIA GPU on Linux: "
                           "`pip install -e \".[gpu]\"`"))
    out += [Finding(WARN, "devices", note, "see the instructor guide, 'GPU kernels'")
            for note in info.notes]
    return out


def _imports_course(python: str) -> bool:
    try:
        proc = subprocess.run([python, "-c", "import medai_lessons"], capture_output=True,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def kernels() -> list[Finding]:
    from medai_lessons.kernels import KERNELS, installed

    found = {k.name: k for k in installed()}
    out = []
    for k in found.values():
        python = k.argv[0] if k.argv else ""
        text = f"{k.name} \"{k.display_name}\" ({k.resource_dir})"
        if python in ("python", "python3"):  # Jupyter starts it with its own interpreter
            python = sys.executable
        if python != sys.executable and not _imports_course(python):
            level = FAIL if k.name == "python3" else WARN
            out.append(Finding(level, "kernel", f"{text} runs {python}, which cannot import "
                               "medai_lessons", "reinstall the kernel from this environment: "
                               "`python -m ipykernel install --sys-prefix` for python3, "
                               "`medai-course kernels install` for the MedAI kernels"))
        else:
            out.append(Finding(OK, "kernel", text))
    if "python3" not in found:
        out.append(Finding(FAIL, "kernel", "no 'python3' kernel: notebooks and nbgrader use it",
                           "`python -m ipykernel install --sys-prefix`"))
    missing = [k.display_name for k in KERNELS if k.name not in found]
    if missing:
        out.append(Finding(WARN, "kernel", f"{' and '.join(missing)} not installed",
                           "`medai-course kernels install` (or `--user`) to pick CPU or GPU in "
                           "JupyterLab's kernel menu"))
    return out


def course_and_workspace() -> list[Finding]:
    from medai_lessons.course import CourseError, chapters, find_course_dir
    from medai_lessons.workspace import default_workspace

    out = []
    try:
        course_dir = find_course_dir()
    except CourseError as exc:
        out.append(Finding(FAIL, "course", str(exc).split(". ")[0],
                           "run from a MedAI Lessons checkout or set MEDAI_COURSE_DIR"))
    else:
        out.append(Finding(OK, "course", f"{course_dir} ({', '.join(chapters(course_dir))})"))
    ws = default_workspace()
    if ws.is_dir():
        out.append(Finding(OK, "workspace", str(ws)))
    else:
        out.append(Finding(OK, "workspace", f"{ws} not created yet (`medai-course study` "
                           "creates it)"))
    return out


def data_cache() -> list[Finding]:
    from medai_lessons.data.cache import ENV_VAR, cache_state, data_dir, dataset_path
    from medai_lessons.data.registry import chapters_using, list_datasets

    where = data_dir()
    source = f"from {ENV_VAR}" if os.environ.get(ENV_VAR, "").strip() else f"set {ENV_VAR} to move"
    out = [Finding(OK, "data cache", f"{where} ({source})")]
    for info in list_datasets():
        state = cache_state(info)
        chapters = chapters_using(info.name)
        if not chapters and state.startswith("missing"):
            continue  # no chapter reads it: nothing to do
        text = f"{info.name}: {state}" + (f" (for {', '.join(chapters)})" if chapters else
                                          " (no chapter uses it)")
        fetch = f"`python -m medai_lessons.data fetch {info.name}`"
        if state.startswith("present"):
            out.append(Finding(OK, "data", text))
        elif state.startswith("staged copy"):
            out.append(Finding(WARN, "data", text, "the chapters use it as it is and say so; "
                               "their figures are then not comparable with published ones"))
        elif state.startswith("bad staged"):
            out.append(Finding(FAIL, "data", text, f"the file {dataset_path(info)} was put "
                               "there by hand, so the course leaves it as it is: replace it "
                               f"with the official file, or move it elsewhere and run {fetch}"))
        elif state.startswith(("bad", "corrupt")):
            out.append(Finding(FAIL, "data", text, f"{fetch} moves the damaged download "
                               "aside and downloads it again; `python -m medai_lessons.data "
                               "verify` says more"))
        elif info.downloadable:
            out.append(Finding(WARN, "data", text, f"{fetch}, or for offline use copy the "
                               f"official file(s) to {dataset_path(info)}; notebooks fall back "
                               "to a synthetic stand-in meanwhile"))
        else:
            out.append(Finding(WARN, "data", text, "install or update the package named above "
                               "(it ships this data)"))
    return out


def environment() -> list[Finding]:
    from medai_lessons.notebook import FAST_ENV, fast_mode

    return [Finding(OK, "mode", f"{FAST_ENV}={os.environ.get(FAST_ENV, '')!r}: notebooks run in "
                    + ("fast mode (short training)" if fast_mode() else "full mode"))]


def run(log=print) -> int:
    """Print every finding; return 1 if any is a failure, else 0."""
    findings: list[Finding] = []
    for section in (python_and_packages, devices, kernels, course_and_workspace, data_cache,
                    environment):
        for finding in section():
            log(finding.line())
            findings.append(finding)
    failures = [f for f in findings if f.level == FAIL]
    warnings = [f for f in findings if f.level == WARN]
    log(f"doctor: {len(failures)} problem(s), {len(warnings)} warning(s)"
        + ("" if failures else ": the course can run here"))
    return 1 if failures else 0
