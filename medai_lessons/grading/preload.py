"""Grading kernels forked from a sandboxed process that has already imported TensorFlow.

Importing TensorFlow costs a grading kernel about 6 s of CPU, more than half of what a
submission of a TensorFlow chapter costs. A grading process therefore starts one *zygote*: a
process in a sandbox of its own (:class:`~medai_lessons.grading.sandbox.Sandbox`, the same
limits and the same view of the files as a kernel's), which imports the heavy libraries once
and then forks one kernel per submission. Every kernel still gets a sandbox of its own, made
after the fork and before any of the learner's code runs:

- new user, mount, process, network, IPC and host-name namespaces (``unshare``);
- an empty ``/tmp``, home, ``/dev/shm`` and working folder of its own (fresh in-memory file
  systems: nothing one kernel writes is seen by the next), and of the folder the zygote shares
  with the grader only the kernel's own connection folder (the zygote's control socket and any
  other kernel's folder are hidden under a read-only empty file system);
- its own process namespace, whose first process is the kernel: when it ends, everything the
  kernel started ends with it; the zygote and its other children cannot be named;
- no capabilities (bounding set emptied, ``no_new_privs``) and the sandbox's resource limits;
- the zygote is not dumpable, so no kernel can read or write its memory or open its files
  through ``/proc`` (the kernels' ``/proc`` is the zygote's, which cannot be mounted afresh
  inside a sandbox).

A kernel cannot reach the zygote: its file descriptors are closed in the child, its control
socket is hidden, it has no process id in the kernel's namespace, and it is not dumpable. The
grader starts each kernel through a small client (:data:`_CLIENT`) that asks the zygote for a
fork and lives as long as the kernel: killing the client (the wall-clock limit, the end of the
notebook) makes the zygote kill the kernel's whole process namespace.

Where a zygote cannot start or its children cannot make their namespaces (some container hosts
forbid nested user namespaces), the grader says so once and starts each kernel in a sandbox of
its own, as before (``ExecuteGradedWork.preload = False`` does that on purpose).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from medai_lessons.grading.sandbox import (
    WORK_MOUNT,
    Sandbox,
    SandboxPolicy,
    held_temp_dir,
    release_temp_dir,
    rlimits,
)

#: what the zygote imports before it forks kernels (the kernel imports the rest itself)
PRELOAD = ("numpy", "ipykernel.kernelapp", "tensorflow", "keras", "scipy.stats", "pandas",
           "sklearn.metrics", "matplotlib")

#: seconds a zygote may take to import :data:`PRELOAD` and answer (a busy machine is slow)
READY_SECONDS = 300

log = logging.getLogger(__name__)


# --- the grader's side -----------------------------------------------------------------------

#: asks the zygote for a kernel and lives as long as it does; ``python -I -S`` starts in
#: milliseconds. argv: control socket, request (JSON)
_CLIENT = ("import json, socket, sys\n"
           "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
           "s.connect(sys.argv[1])\n"
           "s.sendall(sys.argv[2].encode() + b'\\n')\n"
           "code = 1\n"
           "for line in s.makefile('r'):\n"
           "    reply = json.loads(line)\n"
           "    if 'exit' in reply:\n"
           "        code = reply['exit']\n"
           "        break\n"
           "sys.exit(code if 0 <= code < 256 else 1)\n")


class Zygote:
    """One grading process's zygote: started on first use, restarted if it ends."""

    def __init__(self, policy: SandboxPolicy):
        self.policy = policy
        self.base = held_temp_dir("medai-zygote-")
        # the zygote itself lives as long as the grading process: its CPU limit is a day's;
        # each kernel gets the policy's own limits after the fork
        self.box = Sandbox(self.base, dataclasses.replace(policy, cpu_seconds=86_400))
        self.control = str(self.box.run_dir / "control.sock")
        self.jobs = self.box.run_dir / "jobs"
        self.jobs.mkdir()
        self._give(self.jobs, 0o700)
        self.process: subprocess.Popen | None = None
        self._count = 0

    def _give(self, path: Path, mode: int) -> None:
        os.chmod(path, mode)
        self.box.give(path)

    def start(self) -> None:
        argv = [sys.executable, "-c", "import sys; from medai_lessons.grading.zygote import "
                "zygote_main; sys.exit(zygote_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), "
                "sys.argv[4:]))", self.control, str(self.box.run_dir),
                str(self.policy.scratch_bytes), *PRELOAD]
        with contextlib.suppress(FileNotFoundError):  # a zygote that ended before this one
            os.unlink(self.control)
        logfile = open(self.base / "zygote.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(self.box.command(argv), stdout=subprocess.DEVNULL,
                                        stderr=logfile, stdin=subprocess.DEVNULL,
                                        env=self.box.environment(os.environ),
                                        start_new_session=True)
        logfile.close()
        deadline = time.monotonic() + READY_SECONDS
        while not os.path.exists(self.control):
            if self.process.poll() is not None or time.monotonic() > deadline:
                why = self.log_tail()
                self.stop()
                raise RuntimeError(f"the grading zygote did not start ({why})")
            time.sleep(0.05)

    def log_tail(self) -> str:
        try:
            lines = (self.base / "zygote.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        useful = [ln for ln in lines if ln.strip() and not re.match(r"[IWE]\d{4} ", ln)]
        return (useful or lines or ["no message"])[-1][:300]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def job(self) -> ZygoteJob:
        if not self.alive():
            self.start()
        self._count += 1
        job_dir = self.jobs / f"k{self._count}"
        job_dir.mkdir()
        self._give(job_dir, 0o700)
        return ZygoteJob(self, job_dir)

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, 9)
            with contextlib.suppress(Exception):
                self.process.wait(10)
            self.process = None
        self.box.remove_cgroups()
        release_temp_dir(self.base)


class ZygoteJob:
    """One kernel forked from the zygote, with the interface of a kernel's :class:`Sandbox`
    that :class:`~medai_lessons.grading.execute.SandboxedKernelManager` uses."""

    def __init__(self, zygote: Zygote, run_dir: Path):
        self.zygote, self.run_dir = zygote, run_dir
        self._cpu_start = zygote.box.cpu_seconds()

    def give(self, path: Path) -> None:
        self.zygote.box.give(path)

    def command(self, argv: list[str]) -> list[str]:
        if len(argv) < 3 or argv[1:3] != ["-m", "ipykernel_launcher"]:
            raise ValueError(f"the zygote starts IPython kernels only, not {argv[:3]}")
        request = {"job_dir": str(self.run_dir), "argv": argv[1:], "work": WORK_MOUNT,
                   "limits": rlimits(self.zygote.policy)}
        return [sys.executable, "-I", "-S", "-c", _CLIENT, self.zygote.control,
                json.dumps(request)]

    def cpu_seconds(self) -> float | None:
        now = self.zygote.box.cpu_seconds()
        if now is None or self._cpu_start is None:
            return None
        return now - self._cpu_start

    def remove_cgroups(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)


_ZYGOTES: dict[str, Zygote] = {}
_BROKEN: dict[str, str] = {}
_LOCK = threading.Lock()


def kernel_box(policy: SandboxPolicy) -> ZygoteJob | None:
    """A kernel from this process's zygote for ``policy``, or None (with the reason logged
    once) where no zygote can start here: the caller then makes a sandbox of its own."""
    key = policy.to_json()
    with _LOCK:
        if key in _BROKEN:
            return None
        zygote = _ZYGOTES.get(key)
        try:
            if zygote is None:
                zygote = _ZYGOTES[key] = Zygote(policy)
            return zygote.job()
        except (OSError, RuntimeError) as exc:
            _BROKEN[key] = str(exc)
            _ZYGOTES.pop(key, None)
            if zygote is not None:
                zygote.stop()
            log.warning("grading kernels start one by one (no preloaded zygote: %s)", exc)
            return None


@atexit.register
def stop_all() -> None:
    for zygote in list(_ZYGOTES.values()):
        zygote.stop()
    _ZYGOTES.clear()
