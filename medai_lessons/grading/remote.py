"""Verdicts decided outside the learner's process.

While autograding, a test cell never runs in the learner's kernel. The grader runs its source
(the instructor's, restored by nbgrader: hidden tests included) in its own process, where the
names the cell reads from the notebook (the learner's functions) are stand-ins that call into
the kernel: :class:`RemoteFunction` sends the checker's plain arguments, the kernel calls the
learner's function and sends back plain data (``medai_lessons.grading.plain``), and the
checker compares it with what it computed itself. Nothing in the kernel can reach the checker,
NumPy or the verdict; a learner's function that loops is interrupted at the cell's time limit,
one that fails fails its test.

A learner running the same notebook in JupyterLab runs the test cells in the kernel as usual.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import gc
import io
import json
import time
import warnings
from dataclasses import dataclass

import numpy as np

from medai_lessons.grading import plain, runner
from medai_lessons.grading.agent import CALLBACK_KEY, MIME
from medai_lessons.grading.guard import ANSWER_CHARS

#: set in the grader's process: checks run here, the learner's code in a kernel
TRUSTED_PROCESS = False
#: the largest answer (characters of JSON) the grader reads from a kernel: about five times
#: the largest a chapter's checks receive from a right answer (3.5 MB, an image batch); the
#: grading kernel sends none larger (``guard.cap_messages``)
MAX_ANSWER_CHARS = ANSWER_CHARS
#: the largest message part (bytes) any of the grader's sockets takes from a kernel: an answer
#: of :data:`MAX_ANSWER_CHARS`, escaped, with room to spare. ZeroMQ reads a part's length
#: before the part and closes the connection of a kernel that sends a larger one, for good,
#: so that it never reaches the grader's memory (:class:`Disconnects` tells the grader).
MAX_MESSAGE_BYTES = 2 * MAX_ANSWER_CHARS + 1024**2
#: messages each of the grader's sockets holds unread. A kernel can send without end on all
#: of its sockets, including those the grader is not reading at the time (the test cells'
#: connection while an answer cell runs): a socket that holds this many takes no more from
#: the kernel, which then drops what it publishes. With :data:`MAX_MESSAGE_BYTES`, this bounds
#: what a flood of output can cost the grader.
RECEIVE_QUEUE = 4

#: builtin exceptions a learner's function may raise that keep their type in the grader
_KEEP = {name: getattr(builtins, name) for name in (
    "NotImplementedError", "ValueError", "TypeError", "KeyError", "IndexError",
    "ZeroDivisionError", "FloatingPointError", "AssertionError", "AttributeError",
    "RuntimeError", "NameError", "RuntimeWarning", "OverflowError", "LookupError")}


def grader_context(cls=None):
    """A ZeroMQ context whose sockets take from a kernel at most :data:`RECEIVE_QUEUE`
    messages of at most :data:`MAX_MESSAGE_BYTES` per part (``cls``: ``zmq.asyncio.Context``
    for an asynchronous client)."""
    import zmq

    context = (cls or zmq.Context)()
    context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    context.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE)
    return context


#: why a kernel that closed one of the grader's connections is stopped
DISCONNECTED = ("the grader's connection to the kernel was closed: the kernel ended, or sent a "
                f"message of more than {MAX_MESSAGE_BYTES // 1024**2} MB or of too many parts "
                "(far too much output at once, or a message made to flood the grader)")


class Disconnects:
    """Tells whether any of a kernel client's connections (iopub, shell, stdin) was closed by
    the kernel's side. ZeroMQ closes a connection for good when the kernel sends a message
    over :data:`MAX_MESSAGE_BYTES`: the grader would then wait for output that never comes."""

    def __init__(self, client):
        import zmq

        self._monitors = []
        for channel in (client.iopub_channel, client.shell_channel, client.stdin_channel):
            monitor = channel.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            # a plain view of it (the client's sockets may be asynchronous): a poll that waits
            # for nothing
            self._monitors.append((monitor, zmq.Socket.shadow(monitor.underlying)))

    def seen(self) -> bool:
        return any(view.poll(0) for _, view in self._monitors)


def drain(get_message, marker: str, seconds: float = 10.0) -> bool:
    """Read and drop what a kernel published for the grader's other connection: the messages
    a client's iopub queue holds when this client starts a request of its own. The kernel
    keeps about a thousand messages for each connection that is not read and drops what it
    publishes after that, so an undrained queue could lose this request's own output and
    status. ``marker`` is the id of a request sent just before (``kernel_info``): everything
    up to its "idle" status was published before it. ``get_message(timeout)`` raises when
    nothing comes within ``timeout``; the drain stops after ``seconds`` in any case. Returns
    whether the marker's "idle" came (the kernel answered: it is not stuck in a cell)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            msg = get_message(max(0.01, end - time.monotonic()))
        except Exception:  # noqa: BLE001 - queue.Empty: nothing more within the time
            return False
        if (msg["parent_header"].get("msg_id") == marker and msg["msg_type"] == "status"
                and msg["content"].get("execution_state") == "idle"):
            return True
    return False


class RemoteError(Exception):
    """An error raised in the learner's kernel (its type and message, no object of it)."""


class RemoteTimeout(RemoteError):
    """The learner's code did not answer within the cell's time limit."""


class KernelGone(RemoteError):
    """The kernel died or stopped answering: every later check fails."""


class RemoteKernel:
    """The grader's connection to one grading kernel."""

    def __init__(self, connection_info: dict, interrupt=None, log=None,
                 answer_wait: float = 60.0):
        from jupyter_client import BlockingKernelClient

        self.kc = BlockingKernelClient(context=grader_context())
        self.kc._created_context = True  # destroyed with the client's channels
        self.kc.load_connection_info(connection_info)
        self.kc.start_channels()
        self.disconnects = Disconnects(self.kc)
        #: set by the executor when the kernel ran a cell of the notebook's own: its messages
        #: wait in this connection's queue
        self.published = False
        self.interrupt = interrupt
        self.log = log
        self.answer_wait = answer_wait
        self.deadline: float | None = None
        self.gone: str | None = None
        #: what the submitted notebook's text shows (``grading.notebook_scan``), set by the
        #: executor: probes are not run in a kernel whose notebook could change them
        self.scan = None
        #: the position (from 1) of the test cell running now, set by the executor
        self.cell_number: int | None = None
        self._callbacks: dict[int, object] = {}
        self._next = 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.kc.stop_channels()

    # -- one request -------------------------------------------------------------------------
    def _remaining(self) -> float:
        if self.deadline is None:
            return 120.0
        # the time the test waited on the model runner is not the learner's kernel's
        return max(0.5, self.deadline + runner.runner().waited - time.monotonic())

    def register_callback(self, fn) -> plain.Callback:
        self._next += 1
        self._callbacks[self._next] = fn
        return plain.Callback(self._next)

    def _answer_callback(self, prompt: str) -> str:
        try:
            req = json.loads(prompt)
            fn = self._callbacks[int(req[CALLBACK_KEY])]
            args = self.decode(req["args"])
            kwargs = self.decode(req["kwargs"])
            result = fn(*args, **kwargs)
            return json.dumps({"ok": True, "result": self.encode(result)})
        except Exception as exc:  # noqa: BLE001 - the kernel is told, the grader goes on
            return json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]})

    def request(self, op: str, **fields):
        if self.gone:
            raise KernelGone(self.gone)
        self._next += 1
        req = {"id": self._next, "op": op, **fields}
        code = ("__import__('medai_lessons.grading.agent', fromlist=['serve']).serve("
                f"{json.dumps(json.dumps(req))})")
        answers = []
        if self.published:  # by answer cells since the last request
            self.published = False
            drain(lambda timeout: self.kc.get_iopub_msg(timeout=timeout), self.kc.kernel_info(),
                  seconds=min(10.0, self._remaining()))

        def on_output(msg):
            kind, content = msg["msg_type"], msg["content"]
            text = content.get("data", {}).get(MIME) if kind == "display_data" else None
            if isinstance(text, str) and len(text) <= MAX_ANSWER_CHARS:
                try:
                    answer = json.loads(text)
                except ValueError:
                    return
                if isinstance(answer, dict) and answer.get("id") == req["id"]:
                    answers[:] = [answer]

        def on_stdin(msg):
            prompt = msg["content"].get("prompt", "")
            if CALLBACK_KEY in prompt[:64]:
                self.kc.input(self._answer_callback(prompt))
            else:
                self.kc.input("")  # input() in an answer: an empty line

        try:
            self._execute(code, on_output, on_stdin, self._remaining())
        except TimeoutError:
            self._recover()
            raise RemoteTimeout("the learner's code did not finish within the cell's time "
                                "limit (an endless loop, or far too slow)") from None
        if answers:
            return self._result(answers[0])
        raise RemoteError("the kernel sent no answer: the notebook may have replaced the "
                          "grader's helper or printed over it")

    def _execute(self, code: str, on_output, on_stdin, timeout: float) -> None:
        """Run ``code`` in the kernel, passing its output and its input requests to the hooks,
        until the kernel is idle again. Like the client's own ``execute_interactive``, except
        that the time limit holds however many messages the kernel sends: that one waits on
        while any message arrives, including messages that are not the request's own."""
        import zmq

        msg_id = self.kc.execute(code, silent=False, store_history=False, allow_stdin=True,
                                 stop_on_error=False)
        deadline = time.monotonic() + timeout
        iopub, stdin = self.kc.iopub_channel.socket, self.kc.stdin_channel.socket
        poller = zmq.Poller()
        poller.register(iopub, zmq.POLLIN)
        poller.register(stdin, zmq.POLLIN)
        while True:
            if not self.gone and self.disconnects.seen():
                self.gone = DISCONNECTED
            if self.gone:
                raise KernelGone(self.gone)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the kernel did not finish within the time limit")
            events = dict(poller.poll(int(min(left, 1.0) * 1000) + 1))
            if stdin in events:
                on_stdin(self.kc.stdin_channel.get_msg(timeout=0))
            if iopub not in events:
                continue
            msg = self.kc.iopub_channel.get_msg(timeout=0)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            on_output(msg)
            if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                break
        while time.monotonic() < deadline:  # the request's reply, so that none piles up
            try:
                reply = self.kc.get_shell_msg(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - queue.Empty: no reply in time; the answer counts
                return
            if reply["parent_header"].get("msg_id") == msg_id:
                return

    def _recover(self) -> None:
        """After a timeout: interrupt, and wait for the kernel to be idle again."""
        if self.interrupt is not None:
            with contextlib.suppress(Exception):
                self.interrupt()
        end = time.monotonic() + self.answer_wait
        while time.monotonic() < end and not self.gone:
            try:
                msg = self.kc.get_iopub_msg(timeout=1.0)
            except Exception:  # noqa: BLE001 - queue.Empty: nothing yet
                continue
            if (msg["msg_type"] == "status"
                    and msg["content"].get("execution_state") == "idle"):
                with contextlib.suppress(Exception):
                    while time.monotonic() < end:  # drop the interrupted request's reply
                        self.kc.get_shell_msg(timeout=0.2)
                return
        self.gone = self.gone or ("the kernel did not recover from an interrupt within "
                                  f"{self.answer_wait:.0f} s")

    def _result(self, answer: dict):
        if answer.get("ok"):
            return answer
        ename = str(answer.get("ename", "Exception"))[:100]
        evalue = str(answer.get("evalue", ""))[:4000]
        if ename == "KeyboardInterrupt":
            raise RemoteTimeout("the learner's code was interrupted")
        cls = _KEEP.get(ename)
        if cls is not None:
            raise cls(evalue)
        raise RemoteError(f"{ename}: {evalue}" if evalue else ename)

    # -- values ------------------------------------------------------------------------------
    def encode(self, value):
        def handle(obj):
            if isinstance(obj, (RemoteFunction, RemoteObject)):
                return plain.Handle(obj._handle, "", isinstance(obj, RemoteFunction))
            if callable(obj):
                return self.register_callback(obj)
            raise plain.PlainDataError(f"a {type(obj).__name__} cannot be sent to the kernel")
        return plain.encode(value, handle=handle)

    def decode(self, data):
        def handle(h: plain.Handle):
            return RemoteFunction(self, h) if h.callable else RemoteObject(self, h)
        return plain.decode(data, handle=handle, keras_guard=runner)

    def lookup(self, names: list[str]) -> dict:
        """The learner's values of ``names`` (absent names are left out)."""
        if not names:
            return {}
        values = self.request("lookup", names=names)["values"]
        out = {}
        for name, value in values.items():
            if isinstance(value, dict) and value.get("__missing__"):
                continue
            out[name] = self.decode(value)
            if isinstance(out[name], RemoteFunction):
                out[name].__name__ = out[name].__qualname__ = name
        return out


def _warnings_are_errors() -> bool:
    first = warnings.filters[0] if warnings.filters else None
    return bool(first and first[0] == "error" and issubclass(RuntimeWarning, first[2]))


def _write_back(arg, after) -> bool:
    """Whether the learner's function changed an argument in its kernel. A change to an array
    (or a table) the checker made for this case is copied into it, so that the checker sees it;
    the checking code's own module-level arrays are read-only here (:func:`freeze_modules`),
    and lists and dicts are never changed: those changes are only reported."""
    if isinstance(arg, np.ndarray) and isinstance(after, np.ndarray):
        if arg.shape == after.shape and arg.dtype == after.dtype and np.array_equal(
                arg, after, equal_nan=arg.dtype.kind in "fc"):
            return False
        if arg.shape == after.shape and arg.flags.writeable:
            np.copyto(arg, after.astype(arg.dtype, copy=False), casting="unsafe")
        return True
    if isinstance(arg, dict) and isinstance(after, dict):
        if set(arg) != set(after):
            return True
        return any([_write_back(arg[k], after[k]) for k in arg])
    if isinstance(arg, (list, tuple)) and isinstance(after, (list, tuple)):
        return len(arg) != len(after) or any(_differs(a, b) for a, b in zip(arg, after,
                                                                        strict=True))
    if (type(arg).__module__.split(".")[0] == "pandas" and type(after) is type(arg)
            and type(arg).__name__ in ("DataFrame", "Series")):
        if arg.equals(after) and list(getattr(arg, "columns", [])) == list(
                getattr(after, "columns", [])):
            return False
        _write_back_pandas(arg, after)
        return True
    return False


def freeze_modules(prefix: str = "medai_lessons") -> None:
    """Make every module-level array of the course's code read-only in this process, so that
    no learner's function, through the grader, can change what the next learner is checked
    with."""
    import sys

    for name, module in list(sys.modules.items()):
        if module is None or not (name == prefix or name.startswith(prefix + ".")):
            continue
        for value in list(vars(module).values()):
            if type(value) is np.ndarray:
                value.flags.writeable = False


def _differs(a, b) -> bool:
    try:
        return not bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:  # noqa: BLE001
        return True


def _write_back_pandas(arg, after) -> None:
    with contextlib.suppress(Exception):
        gone = arg.index.difference(after.index)
        if len(gone):
            arg.drop(index=gone, inplace=True)
        if hasattr(arg, "columns"):
            for col in [c for c in arg.columns if c not in after.columns]:
                del arg[col]
            for col in after.columns:
                arg[col] = after.loc[arg.index, col].to_numpy()
        else:
            arg[:] = after.loc[arg.index].to_numpy()


class RemoteObject:
    """An object that stays in the learner's kernel; its attributes are read from there."""

    def __init__(self, kernel: RemoteKernel, handle: plain.Handle):
        self._kernel, self._handle, self._type = kernel, handle.id, handle.type

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        answer = self._kernel.request("getattr", target={"handle": self._handle}, name=name)
        return self._kernel.decode(answer["value"])

    def __repr__(self) -> str:
        return f"<{self._type.rsplit('.', 1)[-1]} in the learner's kernel>"

    __str__ = __repr__


class RemoteFunction(RemoteObject):
    """A learner's function (or method) in the kernel, called with plain data."""

    def __init__(self, kernel: RemoteKernel, handle: plain.Handle, name: str = ""):
        super().__init__(kernel, handle)
        self.__name__ = self.__qualname__ = name or handle.type.rsplit(".", 1)[-1]
        #: indices of the arguments the last call changed in place
        self.changed_arguments: set[int] = set()

    @property
    def __signature__(self):
        import inspect

        info = self._kernel.request("describe", target={"handle": self._handle})
        if not info.get("params"):
            raise ValueError("no signature")
        kinds = inspect.Parameter
        return inspect.Signature([
            kinds(str(name), getattr(kinds, kind), default=None if has_default
                  else kinds.empty)
            for name, kind, has_default in info["params"]])

    def __call__(self, *args, **kwargs):
        answer = self._kernel.request(
            "call", target={"handle": self._handle}, args=self._kernel.encode(list(args)),
            kwargs=self._kernel.encode(dict(kwargs)),
            errstate={k: v for k, v in np.geterr().items() if k != "under"},
            warnings_as_errors=_warnings_are_errors())
        self.changed_arguments = set()
        for i, (arg, after) in enumerate(zip(args, answer.get("args_after") or [],
                                             strict=False)):
            if after is not None and _write_back(arg, self._kernel.decode(after)):
                self.changed_arguments.add(i)
        return self._kernel.decode(answer["value"])

    def probe(self, probe, *args):
        """Run ``probe(learner_function, *args)`` in the kernel (a function of
        ``medai_lessons.grading``) and return its plain result. Refused (a failed check)
        where the notebook's text could change what the probe reports."""
        scan = self._kernel.scan
        if scan is not None and scan.tampering:
            from medai_lessons.grading.core import CheckFailed
            from medai_lessons.grading.notebook_scan import tampering_message

            raise CheckFailed(tampering_message(self.__name__, scan.tampering))
        answer = self._kernel.request("probe", target={"handle": self._handle},
                                      probe=f"{probe.__module__}:{probe.__name__}",
                                      args=self._kernel.encode(list(args)))
        return self._kernel.decode(answer["value"])


def is_remote(obj) -> bool:
    return isinstance(obj, RemoteObject)


def run_probe(func, probe, *args):
    """``probe(func, *args)``: in this process for a local function, in the kernel for a
    learner's function there. A probe returns plain data only; the checker judges it."""
    if isinstance(func, RemoteFunction):
        return func.probe(probe, *args)
    return probe(func, *args)


# --- a test cell --------------------------------------------------------------------------

def free_names(source: str) -> list[str]:
    """Names a cell reads without binding them itself (and that are not builtins)."""
    tree = ast.parse(source)
    bound, read = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load):
                read.append(node.id)
            else:
                bound.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
    out = []
    for name in read:
        if name not in bound and not hasattr(builtins, name) and name not in out:
            out.append(name)
    return out


def hide_hidden_tests(source: str, begin: str = "### BEGIN HIDDEN TESTS",
                      end: str = "### END HIDDEN TESTS") -> str:
    """The cell's source with its hidden tests replaced by one line saying they ran."""
    lines, out, hidden = source.splitlines(), [], False
    for line in lines:
        if line.strip() == begin:
            hidden = True
            out.append("# (hidden tests ran here; their code is not shown)")
        elif line.strip() == end:
            hidden = False
        elif not hidden:
            out.append(line)
    return "\n".join(out)


@dataclass
class TestResult:
    """A test cell's verdict, decided in the grader's process."""

    passed: bool
    printed: str
    ename: str = ""
    evalue: str = ""


#: what a failed test says of an exercise whose answer cell still raises NotImplementedError
NOT_WRITTEN = ("not written yet: the answer cell still raises NotImplementedError (replace "
               "that line with your code, run the cell, and submit again)")


def run_test_cell(kernel: RemoteKernel, source: str, timeout: float) -> TestResult:
    """Run a test cell's source in this process against the learner's kernel.

    The failure's message is the checker's own (case, expected, got, hint), never a traceback
    through the cell's code."""
    global TRUSTED_PROCESS
    TRUSTED_PROCESS = True
    freeze_modules()
    kernel.deadline = time.monotonic() + timeout
    runner.runner().new_cell()  # the models this cell runs share one CPU budget
    out = io.StringIO()
    try:
        code = compile(source, "<test cell>", "exec")
        names = kernel.lookup(free_names(source))
        namespace = {"__name__": "__main__", "__builtins__": builtins, **names}
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(code, namespace)  # noqa: S102 - the instructor's test cell, in the grader
    except NameError as exc:
        return TestResult(False, out.getvalue(), "NameError",
                          f"{exc} (the answer cell that defines it was not run, failed, or "
                          "was deleted)")
    except KernelGone as exc:
        return TestResult(False, out.getvalue(), "KernelStopped",
                          f"the grading kernel stopped: {exc}")
    except Exception as exc:  # noqa: BLE001 - any failure is this test's failure
        ename = "AssertionError" if isinstance(exc, AssertionError) else type(exc).__name__
        evalue = str(exc)
        if isinstance(exc, NotImplementedError) and not evalue.strip():
            evalue = NOT_WRITTEN
        return TestResult(False, out.getvalue(), ename, evalue)
    finally:
        kernel.deadline = None
        runner.runner().end_cell()
        # the learner's models this cell rebuilt are garbage in cycles: collected now, not
        # when the interpreter next gets round to it (they piled up over submissions)
        gc.collect()
        _freeze_libraries()
    return TestResult(True, out.getvalue())


_FROZEN = False


def _freeze_libraries() -> None:
    """Once Keras is imported in the grader (the first check that rebuilds a model imports
    it), set what is alive then aside from the cyclic collector: the collection after each
    test cell then walks only what later cells made, not Keras's and TensorFlow's several
    hundred thousand objects (about a tenth of a second each time)."""
    global _FROZEN
    import sys

    if not _FROZEN and "keras" in sys.modules:
        gc.freeze()
        _FROZEN = True
