"""The autograder's executor: nbgrader's ``Execute`` with the submission's kernel in a sandbox
and every test decided outside it (the course's nbgrader config puts it in place of
``Execute``).

- **The kernel runs in a sandbox** (:mod:`medai_lessons.grading.sandbox`): its own user, no
  network, none of the course's files, limits on memory, CPU time, processes, file size and
  wall-clock time, and nothing it started survives it. Without a sandbox the executor refuses
  to run, unless the instructor turned ``sandbox`` off (``medai-course autograde
  --unsandboxed``), and says why.
- **Kernels are forked, not started** (:mod:`medai_lessons.grading.preload`): a sandboxed
  process of this grading process imports TensorFlow once and forks each submission's kernel,
  which makes namespaces and file systems of its own before any of its code runs; where that
  cannot work here, each kernel starts in a sandbox of its own from scratch (``preload``).
- **Test cells never run in the kernel.** Their source (the instructor's, hidden tests
  included: nbgrader restores it from the gradebook) runs in this process, which no answer cell
  reaches; the learner's functions are called in the kernel with plain data
  (:mod:`medai_lessons.grading.remote`). A test passes only on this process's verdict. The
  kernel never receives hidden-test code, and the autograded notebook and the feedback show a
  failed test's checker message (case, expected, got, hint), not a traceback through it; the
  hidden part of the cell's code is replaced by a line saying that it ran.
- **Applied cells are left out.** A chapter's applied cells (training a network, a gallery of
  plots), tagged :data:`SKIP_TAG`, earn no points and feed no test; they are not run, with a
  note in their output. Cells that carry points or answers always run, whatever their tags
  (nbclient's own ``skip-execution`` tag is not honoured either): a learner who tags a failing
  test cell gains nothing.
- **A kernel that dies** (a crash, the wall-clock limit) costs the cells after it, not the
  notebook: they are recorded as failed and the rest is graded.

This module is imported by ``course/nbgrader_config.py`` (in nbgrader's process), never by a
notebook's kernel.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

import zmq.asyncio
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Enum, Integer, Unicode

from medai_lessons.grading import core, notebook_scan, preload, remote, sandbox
from medai_lessons.grading.limits import coalesce_streams
from medai_lessons.grading.relay import Relay
from medai_lessons.grading.sandbox import Sandbox, SandboxPolicy, SandboxUnavailable, lock_run_dir

#: the cell tag of applied cells that autograding leaves out
SKIP_TAG = "not-autograded"

#: what a left-out cell shows in the autograded notebook and the feedback
SKIP_NOTE = ("(not run while autograding: this cell applies the chapter's functions and earns "
             "no points; run it in your own notebook to see its output)\n")

UNSANDBOXED_FLAG = "--unsandboxed"


def is_graded_or_answer(cell) -> bool:
    """True for a cell that carries points or holds an answer (never left out)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade") or meta.get("solution"))


def is_test_cell(cell) -> bool:
    """An autograded test: a code cell with points that holds no answer."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def kernel_cells(nb, skip_tag: str = SKIP_TAG) -> list[tuple[int, str]]:
    """``(position from 1, source)`` of each code cell a grading kernel runs: not the tests
    (they run in the grader), not the applied cells left out (unless graded or an answer)."""
    return [(i + 1, cell.source) for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and not is_test_cell(cell)
            and (is_graded_or_answer(cell)
                 or skip_tag not in cell.get("metadata", {}).get("tags", []))]


class GraderKernelManager(AsyncKernelManager):
    """A kernel manager whose sockets, and its clients' sockets, take from the kernel at most a
    few messages of bounded size (:func:`medai_lessons.grading.remote.grader_context`): output
    that floods the grader's sockets is dropped by ZeroMQ, never held in the grader's memory."""

    def _context_default(self):
        self._created_context = True
        return remote.grader_context(zmq.asyncio.Context)

    def client(self, **kwargs):
        kwargs.setdefault("context", remote.grader_context(zmq.asyncio.Context))
        client = super().client(**kwargs)
        client._created_context = True  # destroyed with the client's channels
        return client


class SandboxedKernelManager(GraderKernelManager):
    """A kernel manager whose kernel starts inside :attr:`box` and talks over Unix sockets
    in the sandbox's run folder (no TCP port, so no network is needed, and none is open).
    Once the kernel is launched, this manager and its clients connect to a relay
    (:mod:`medai_lessons.grading.relay`) that binds in :attr:`relay_dir`, never to the kernel:
    a message the grader could not hold ends the relay, not the grader."""

    box: Sandbox | None = None
    relay_dir: Path | None = None
    relay: Relay | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"
        self.ip = str(self.box.run_dir / "kernel")
        self.connection_file = str(self.box.run_dir / "kernel.json")
        # ask the kernel to interrupt itself: a signal would reach the sandbox's launcher
        self.kernel_spec.interrupt_mode = "message"

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        # the kernel's own start-up lines go to a file beside its sockets, not to the grader's
        # terminal (nothing a learner's code prints there reaches an instructor's screen)
        kw["stdout"] = subprocess.DEVNULL
        kw["stderr"] = open(self.box.run_dir / "kernel.log", "ab")  # noqa: SIM115
        await super()._async_launch_kernel(kernel_cmd, **kw)
        self.relay_dir.mkdir(mode=0o700, exist_ok=True)
        self.relay = Relay(self.get_connection_info(), self.relay_dir)
        self.ip = self.relay.ip  # every connection from here on goes through the relay

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart)
        if self.relay is not None:
            self.relay.stop()
            self.relay = None

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        self.box.give(Path(self.connection_file))
        if isinstance(self.box, Sandbox) and cmd[1:3] == ["-m", "ipykernel_launcher"]:
            # started afresh, not forked: its writes restricted as a forked kernel's are
            cmd = [cmd[0], "-m", "medai_lessons.grading.zygote", *cmd[3:]]
        return self.box.command(cmd)


#: where the last notebook graded in this process spent its time, in seconds: ``kernel start``,
#: ``cells in the kernel``, ``tests in the grader``, ``executor`` (all of this step),
#: ``kernel CPU`` (all of the kernel's processes, where the sandbox can count it). Read by
#: :func:`medai_lessons.grading.job.run_job`.
LAST_PHASES: dict[str, float] = {}


class ExecuteGradedWork(Execute):
    """nbgrader's ``Execute``: sandboxed kernel, tests decided here, applied cells left out."""

    skip_cells_with_tag = Unicode(
        SKIP_TAG,
        help="code cells with this tag are not run while autograding (graded and answer cells "
             "always are)",
    ).tag(config=True)
    sandbox = Bool(
        True, help="run each submission's kernel in a sandbox; False (medai-course autograde "
                   "--unsandboxed) only where no sandbox can start and the instructor accepts "
                   "that a submission can then read and change what the grader can"
    ).tag(config=True)
    preload = Bool(
        True, help="fork each sandboxed kernel, in namespaces of its own, from a sandboxed "
                   "process that has imported TensorFlow once (medai_lessons.grading.preload); "
                   "False starts every kernel, and its imports, from scratch"
    ).tag(config=True)
    memory_limit = Integer(SandboxPolicy.memory_bytes,
                           help="bytes of address space of a grading kernel").tag(config=True)
    cpu_limit = Integer(SandboxPolicy.cpu_seconds,
                        help="seconds of CPU time of a grading kernel").tag(config=True)
    process_limit = Integer(SandboxPolicy.processes,
                            help="processes and threads of a grading kernel").tag(config=True)
    wall_limit = Integer(SandboxPolicy.wall_seconds,
                         help="seconds from a grading kernel's start to its end").tag(config=True)
    # After an interrupt the kernel may need a while to answer on a busy machine: waiting
    # for its output must not fail the whole notebook (nbclient's default is 4 s).
    iopub_timeout = Integer(60, allow_none=True).tag(config=True)
    raise_on_iopub_timeout = Bool(False).tag(config=True)
    # no timestamps in the autograded notebook: the same submission grades the same
    record_timing = Bool(False).tag(config=True)
    # a kernel's output arrives in as many pieces as the machine's load makes of it: one
    # output per stream, so that the same submission's autograded notebook is the same; joined
    # here (limits.coalesce_streams), in time linear in the text, not by nbclient, whose
    # handling of carriage returns takes time quadratic in a line's length
    coalesce_streams = Bool(False).tag(config=True)
    # nothing of a grading kernel is worth a graceful end (its atexit hooks are the learner's):
    # it is stopped at once, not after a wait of up to seconds
    shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate").tag(config=True)

    _box: Sandbox | None = None
    _scan: notebook_scan.NotebookScan | None = None
    _cell_number: int | None = None
    _remote: remote.RemoteKernel | None = None
    _dead: str | None = None
    _tests_since = False
    _disconnects: remote.Disconnects | None = None
    _timer: threading.Timer | None = None

    def policy(self) -> SandboxPolicy:
        return SandboxPolicy(memory_bytes=self.memory_limit, cpu_seconds=self.cpu_limit,
                             processes=self.process_limit, wall_seconds=self.wall_limit)

    def preprocess(self, nb, resources=None, km=None):
        if self.sandbox:
            ok, why = sandbox.availability()  # looked up when asked: it can be replaced
            if not ok:
                raise SandboxUnavailable(
                    f"refusing to autograde without a sandbox: {why}. To grade anyway, on a "
                    f"machine where submissions cannot harm anything, pass {UNSANDBOXED_FLAG} "
                    "to medai-course autograde (c.ExecuteGradedWork.sandbox = False).")
        self._dead = None
        self._disconnects = None
        self._tests_since = False
        self._output_used = {}
        self._scan = notebook_scan.scan(kernel_cells(nb, self.skip_cells_with_tag))
        self.phases = {"kernel start": 0.0, "cells in the kernel": 0.0,
                       "tests in the grader": 0.0}
        started = time.monotonic()
        if core.CASE_SALT is None:  # seeded cases this process checks cannot be looked up
            core.CASE_SALT = secrets.randbits(31)
        with sandbox.temp_dir("medai-grading-") as tmp:
            if self.sandbox:
                self._box = ((self.preload and preload.kernel_box(self.policy()))
                             or Sandbox(Path(tmp), self.policy()))
                self.kernel_manager_class = type(
                    "BoxedKernelManager", (SandboxedKernelManager,),
                    {"box": self._box, "relay_dir": Path(tmp) / "relay"})
            elif self.kernel_manager_class is AsyncKernelManager:  # nbclient's own
                self.kernel_manager_class = GraderKernelManager
            try:
                return super().preprocess(nb, resources, km)
            finally:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                if self._remote is not None:
                    self._remote.close()
                    self._remote = None
                self._disconnects = None
                if self._box is not None:
                    cpu = self._box.cpu_seconds()
                    if cpu is not None:
                        self.phases["kernel CPU"] = cpu
                    self._box.remove_cgroups()
                self._box = None
                self.phases["executor"] = time.monotonic() - started
                LAST_PHASES.clear()
                LAST_PHASES.update(self.phases)

    # -- the kernel ----------------------------------------------------------------------------
    async def async_start_new_kernel(self, **kwargs):
        started = time.monotonic()
        await super().async_start_new_kernel(**kwargs)
        self.phases["kernel start"] += time.monotonic() - started
        if self.wall_limit and self.wall_limit > 0:
            self._timer = threading.Timer(self.wall_limit, self._stop_kernel,
                                          args=(f"the wall-clock limit of {self.wall_limit} s",))
            self._timer.daemon = True
            self._timer.start()

    # nbclient binds its sync wrapper to its own coroutine: rebind it to this one, so that
    # the wall-clock limit starts with every kernel
    start_new_kernel = run_sync(async_start_new_kernel)

    def start_new_kernel_client(self):
        started = time.monotonic()  # until the kernel answers: its start, imports included
        try:
            client = super().start_new_kernel_client()
        finally:
            self.phases["kernel start"] += time.monotonic() - started
        if self._box is not None:  # its sockets are bound; none of the submission has run
            lock_run_dir(self._box.run_dir)
        self._disconnects = remote.Disconnects(self.kc)
        relay, process = getattr(self.km, "relay", None), self.km.provisioner.process
        if relay is not None:
            threading.Thread(target=self._watch_relay, args=(relay, process), daemon=True,
                             name="relay watcher").start()
        return client

    def _watch_relay(self, relay: Relay, process) -> None:
        """Stop the kernel as soon as its relay ends while it still runs: a cell waiting for
        the kernel would otherwise wait out its time limit."""
        relay.process.wait()
        if relay.stopping or self._dead:
            return
        try:
            process.wait(timeout=1.0)  # the kernel ended first: nbclient reports that
        except subprocess.TimeoutExpired:
            self._stop_kernel(f"{remote.DISCONNECTED}; {relay.why()}")

    def _stop_kernel(self, why: str) -> None:
        self._dead = why
        if self._remote is not None:
            self._remote.gone = why
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is not None:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)

    def _connection(self) -> remote.RemoteKernel:
        if self._remote is None:
            interrupt = None
            if self.km is not None:
                interrupt = run_sync(self.km.interrupt_kernel)
            self._remote = remote.RemoteKernel(self.km.get_connection_info(),
                                               interrupt=interrupt, log=self.log,
                                               answer_wait=float(self.iopub_timeout or 60))
            self._remote.scan = self._scan
        return self._remote

    #: characters of output kept per cell while it runs (the rest is dropped as it arrives,
    #: so that a flood of output cannot fill the grader's memory)
    max_output_chars = Integer(2_000_000, help="output characters kept per cell while it "
                                               "runs").tag(config=True)
    _output_used: dict = {}

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg.get("msg_type") == "stream":
            size = len(content.get("text", ""))
        else:  # all of it: images, JSON data, metadata, an error's traceback
            try:
                size = len(json.dumps(content))
            except (TypeError, ValueError):
                size = self.max_output_chars + 1
        used = self._output_used.get(cell_index, 0)
        self._output_used[cell_index] = used + size
        if used + size > self.max_output_chars:
            if used <= self.max_output_chars:
                outs.append(new_output("stream", name="stdout", text=(
                    "\n(further output of this cell dropped by the course's grader)\n")))
            return None
        return super().output(outs, msg, display_id, cell_index)

    # -- cells ---------------------------------------------------------------------------------
    def preprocess_cell(self, cell, resources, index):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.cell_type == "code" and self.skip_cells_with_tag in tags:
            if is_graded_or_answer(cell):
                self.log.warning("cell %s is graded or holds an answer: it runs although it is "
                                 "tagged %r", index, self.skip_cells_with_tag)
                cell.metadata["tags"] = [t for t in tags if t != self.skip_cells_with_tag]
            else:
                cell.outputs = [new_output("stream", name="stdout", text=SKIP_NOTE)]
                cell.execution_count = None
                return cell, resources
        if cell.cell_type != "code":
            return cell, resources
        if not self._dead and self._disconnected():
            self._stop_kernel(remote.DISCONNECTED)
        if self._dead:
            if is_test_cell(cell):
                cell.source = remote.hide_hidden_tests(cell.source)
            return self._failed(cell, "KernelStopped", f"not run: the grading kernel was "
                                                       f"stopped earlier ({self._dead})"), resources
        if is_test_cell(cell):
            started = time.monotonic()
            self._cell_number = index + 1
            try:
                return self._trusted_test(cell), resources
            finally:
                self.phases["tests in the grader"] += time.monotonic() - started
        if self._tests_since:  # what the test cells' requests published to this connection
            self._tests_since = False
            self._drain()
        if self._remote is not None:
            self._remote.published = True
        started = time.monotonic()
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            cell.outputs = coalesce_streams(cell.outputs)
        except Exception as exc:  # nbclient's DeadKernelError and kin: the kernel is gone
            if self._dead is None:
                self._dead = f"{type(exc).__name__}: {str(exc).strip()[:300]}"
            return self._failed(cell, "KernelStopped", f"the grading kernel stopped while this "
                                                       f"cell ran ({self._dead})"), resources
        finally:
            self.phases["cells in the kernel"] += time.monotonic() - started
        if (any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", []))
                and not self._drain(float(self.iopub_timeout or 60))):
            # interrupted at its time limit, and still busy: every later cell would wait out
            # its own limit behind it
            self._stop_kernel(f"cell {index} did not stop when it was interrupted at its time "
                              "limit")
        return cell, resources

    def _drain(self, seconds: float = 10.0) -> bool:
        """Drop what waits in this connection's iopub queue (:func:`remote.drain`); whether the
        kernel answered within ``seconds``."""
        return remote.drain(lambda timeout: run_sync(self.kc.get_iopub_msg)(timeout=timeout),
                            self.kc.kernel_info(), seconds)

    def _disconnected(self) -> bool:
        """Whether the kernel closed one of the grader's connections to it: neither its output
        nor its answers would reach the grader any more (:class:`remote.Disconnects`)."""
        return any(watch is not None and watch.seen() for watch in (
            self._disconnects, self._remote and self._remote.disconnects))

    def _failed(self, cell, ename: str, evalue: str):
        cell.outputs = [new_output("error", ename=ename, evalue=evalue,
                                   traceback=[f"{ename}: {evalue}"])]
        return cell

    def _trusted_test(self, cell):
        source, kernel = cell.source, None
        try:
            kernel = self._connection()
            kernel.cell_number = self._cell_number
            result = remote.run_test_cell(kernel, source, float(self.timeout or 120))
        except Exception as exc:  # noqa: BLE001 - no connection: the test cannot pass
            result = remote.TestResult(False, "", "GradingError",
                                       f"the test could not run: {type(exc).__name__}: {exc}")
        # Only what the checks printed: what the learner's code printed while it was called
        # stays in the kernel (it could show the checks' inputs).
        outputs = []
        if result.printed:
            outputs.append(new_output("stream", name="stdout", text=result.printed[:20_000]))
        if not result.passed:
            outputs.append(new_output("error", ename=result.ename, evalue=result.evalue,
                                      traceback=[f"{result.ename}: {line}" if i == 0 else line
                                                 for i, line in enumerate(
                                                     result.evalue.splitlines() or [""])]))
        cell.outputs = outputs
        cell.source = remote.hide_hidden_tests(source)
        self._tests_since = True
        if kernel is not None and kernel.gone and not self._dead:
            # the learner's function did not stop when interrupted: the kernel is still busy
            self._stop_kernel(kernel.gone)
        self.code_cells_executed += 1
        cell.execution_count = self.code_cells_executed
        return cell
