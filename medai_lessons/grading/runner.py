"""A learner's Keras model runs, when a check needs its outputs, in a process of its own.

The grader rebuilds a model that a kernel sends back only when what it describes is small
(:mod:`medai_lessons.grading.plain`), but a small model can still be slow or large to *run*:
an up-sampling by 50 followed by a 40 x 40 convolution took the grader 150 s of CPU on eight
noise vectors, and one attention layer over a sequence of 6272 steps needs a score matrix of
1.3 GB, none of which its configuration shows. So a rebuilt model inspects as any Keras model
in the grader (its layers, shapes, configuration, compile settings), but calling it
(``model(x)``) sends its configuration, its weights and ``x`` to the *runner*: a process that
imports Keras and nothing of the course, rebuilds the model in safe mode, runs it and sends the
outputs back as NumPy arrays (``.npz``, never pickle). The runner runs in a sandbox of its own
(no network, none of the grader's files, its own user) with a memory limit
(:data:`MEMORY_BYTES`), and stops itself when one call has used :data:`CALL_CPU_SECONDS` of
CPU, or all its calls for one test cell :data:`CELL_CPU_SECONDS`. Its outputs must have the
shape the model's outputs declare for the samples it was given. A model that breaks a limit
fails its own check with a message that says which; the runner is started again for the next
call. One runner serves a grading process for all its submissions (it keeps nothing of a model
once the call is answered).

Rebuilding a model can itself be costly (a forged configuration whose layers wait on each
other makes Keras's rebuild quadratic; a compile configuration of hundreds of metrics with a
million thresholds each holds gigabytes that no variable counts). So before the grader
rebuilds a model, the runner rebuilds it, within :data:`REBUILD_CPU_SECONDS` of CPU and
:data:`REBUILD_BYTES` of memory (:func:`vet`), and builds the loss and metrics its compile
configuration names (a check builds them later); the grader's own work is no more than that.

Run as a script (``python .../runner.py``), it is the runner: it answers ``R`` once Keras is
imported, then one reply per request on its standard output, until its standard input closes.
"""

from __future__ import annotations

import os
import struct
import sys

#: CPU time one call may use in the runner (rebuilding the model and running it): the
#: chapters' models need well under a second on the few samples a check uses
CALL_CPU_SECONDS = 20.0
#: CPU time all the runner's work for one test cell may use together (a check calls a model
#: once per case, and a test cell runs a visible and a hidden check)
CELL_CPU_SECONDS = 20.0
#: what rebuilding a model may cost: before the grader rebuilds a model a kernel sent, the
#: runner rebuilds it (configuration, weights, compile settings) and says what that took; the
#: grader rebuilds only a model that took at most this much CPU and memory there (a chapter
#: model takes a fraction of a second and a few megabytes)
REBUILD_CPU_SECONDS = 5.0
REBUILD_BYTES = 128 * 1024**2
#: the runner's memory: its address space (TensorFlow alone maps about 2.1 GiB) and, where
#: the grader can make control groups, its resident memory (TensorFlow alone uses 0.7 GiB)
MEMORY_BYTES = 4 * 1024**3
RESIDENT_BYTES = 2 * 1024**3
#: how long the grader waits for the runner to import Keras, and for one answer (the CPU
#: limit is the one that counts: these only end a runner that stopped making progress)
START_SECONDS = 600.0
CALL_WALL_SECONDS = 600.0
#: the largest answer the grader reads: the outputs of a few samples (a chapter model's, for
#: the samples of one case: at most a few hundred kilobytes)
MAX_REPLY_BYTES = 16 * 1024**2
#: the runner's exit status when a call used up its CPU time
CPU_EXIT = 5
_OK, _ERROR, _MEMORY = b"0", b"1", b"2"
_FRAME = struct.Struct(">Q")
#: errors after which the runner is not used again (TensorFlow's answers to an allocation
#: that failed, or to an internal state that one left behind)
_UNSOUND = tuple(f"{name}:".encode() for name in (
    "ResourceExhaustedError", "AbortedError", "InternalError", "UnknownError"))


class ModelRunFailed(AssertionError):
    """A learner's model could not be run within the runner's limits."""


# --- the grader's side ----------------------------------------------------------------------

class ModelRunner:
    """The runner process, as the grader sees it: started when first needed, started again
    after it ended."""

    def __init__(self):
        import threading

        self._lock = threading.Lock()
        self._process = None
        self._folder = None
        self._box = None
        self._ready = False
        self._cell_left = None  # CPU seconds left for this test cell (None: no cell)
        #: wall time this test cell waited on the runner (its start included), in seconds
        self.waited = 0.0
        #: the CPU time the last call that succeeded used in the runner, in seconds
        self.last_cpu = None
        #: the CPU time of all requests so far, as the runner measured them (a request that
        #: failed counts with the CPU time it was allowed), in seconds
        self.cpu_total = 0.0

    def start(self) -> None:
        """Start the runner unless it runs (it imports Keras while the grader goes on)."""
        import subprocess

        from medai_lessons.grading import sandbox

        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            self._close()
            self._folder = sandbox.held_temp_dir("medai-runner-")
            argv = [sys.executable, "-I", os.path.abspath(__file__)]
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
            command, preexec = _command(argv, self._folder, env)
            if command is None:  # no sandbox here: a process with limits of its own
                self._box = None
                command = argv
            else:
                self._box, command, env = command
            with open(self._folder / "runner.log", "ab") as log:
                self._process = subprocess.Popen(
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                    env=env, start_new_session=True, preexec_fn=preexec)
            self._ready = False

    def new_cell(self) -> None:
        """A test cell begins: its models have :data:`CELL_CPU_SECONDS` of the runner's CPU,
        and :attr:`waited` counts again from 0."""
        self._cell_left = CELL_CPU_SECONDS
        self.waited = 0.0

    def end_cell(self) -> None:
        """The test cell ended: no budget of its applies to later work."""
        self._cell_left = None

    def run(self, config: str, weights: list, x, training: bool = False):
        """The model's outputs for ``x`` (an array, or a list of arrays for a model with
        several outputs); raises :class:`ModelRunFailed` when it cannot be run."""
        import numpy as np

        data = self._exchange("running the model", {
            "op": np.asarray("call"), "config": _text(config), "n": np.asarray(len(weights)),
            "x": np.asarray(x), "training": np.asarray(bool(training)),
            **{f"w{i}": np.asarray(w) for i, w in enumerate(weights)}}, CALL_CPU_SECONDS)
        outputs = [data[f"y{i}"] for i in range(len(data) - 1)]
        return outputs[0] if len(outputs) == 1 else outputs

    def rebuild(self, config: str, compiled: str, weights: list) -> tuple[float, int]:
        """Rebuild a model in the runner as the grader would (safe mode, its weights, its
        compile settings): ``(CPU seconds, bytes of memory)`` that took there."""
        import numpy as np

        data = self._exchange("rebuilding the model", {
            "op": np.asarray("rebuild"), "config": _text(config), "compiled": _text(compiled),
            "n": np.asarray(len(weights)),
            **{f"w{i}": np.asarray(w) for i, w in enumerate(weights)}}, REBUILD_CPU_SECONDS)
        return float(data["cpu"]), int(data["grown"])

    def _exchange(self, what: str, arrays: dict, cpu: float) -> dict:
        """Send one request, with at most ``cpu`` seconds of CPU (less when the test cell has
        less left), and return the answer's arrays."""
        import io
        import time

        import numpy as np

        left = self._cell_left
        if left is not None and left <= 0:
            raise ModelRunFailed(f"the models of this test used up the {CELL_CPU_SECONDS:.0f} s "
                                 f"of CPU a test may use to run them, before {what}")
        cpu = cpu if left is None else min(cpu, left)
        buffer = io.BytesIO()
        np.savez(buffer, cpu=np.asarray(cpu), **arrays)
        request = buffer.getvalue()
        began = time.monotonic()
        try:
            return self._answer(what, request, cpu)
        finally:
            self.waited += time.monotonic() - began
            self.start()  # one that ended starts again now, not when the next model comes

    def _answer(self, what: str, request: bytes, cpu: float) -> dict:
        import io

        import numpy as np

        self.start()
        with self._lock:
            try:
                if not self._ready:
                    try:
                        started = self._read(1, START_SECONDS) == b"R"
                    except _Ended:
                        started = False
                    if not started:
                        _log_tail(self._folder)
                        self._stop()
                        raise ModelRunFailed("the grader's model runner did not start (see "
                                             "the grader's log); the model was not run")
                    self._ready = True
                self._process.stdin.write(_FRAME.pack(len(request)) + request)
                self._process.stdin.flush()
                status = self._read(1, CALL_WALL_SECONDS)
                (size,) = _FRAME.unpack(self._read(_FRAME.size, CALL_WALL_SECONDS))
                if size > MAX_REPLY_BYTES:
                    self._stop()
                    raise ModelRunFailed(f"the model's outputs ({size:,} bytes) are larger "
                                         "than a check needs")
                payload = self._read(size, CALL_WALL_SECONDS)
            except (_Ended, BrokenPipeError) as exc:
                self._charge(cpu)
                raise ModelRunFailed(self._why_ended(what, cpu, str(exc))) from None
        if status == _MEMORY or (status == _ERROR and payload.startswith(_UNSOUND)):
            # after a failed allocation TensorFlow's own state cannot be trusted (an honest
            # model then failed there with "AbortedError"): the next call gets a new runner
            self.stop()
        if status == _MEMORY:
            self._charge(cpu)
            raise ModelRunFailed(f"{what} needed more memory than the grader's limit "
                                 f"({RESIDENT_BYTES / 1024**3:.0f} GiB): it is far larger than "
                                 "the exercise needs (look at the sizes in model.summary())")
        if status == _ERROR:
            self._charge(cpu)
            raise ModelRunFailed(f"{what} raised " + payload.decode("utf-8", "replace")[:2000])
        _check_unpacked_size(payload)
        with np.load(io.BytesIO(payload), allow_pickle=False) as data:
            answer = {name: data[name] for name in data.files}
        self.last_cpu = float(answer["cpu"])
        self._charge(self.last_cpu)
        return answer

    def _charge(self, seconds: float) -> None:
        self.cpu_total += seconds
        if self._cell_left is not None:
            self._cell_left -= seconds

    def _read(self, size: int, seconds: float) -> bytes:
        import select
        import time

        out, deadline = bytearray(), time.monotonic() + seconds
        stream = self._process.stdout
        while len(out) < size:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([stream], [], [], max(left, 0))
            if not ready:
                raise _Ended(f"it gave no answer in {seconds:.0f} s")
            chunk = os.read(stream.fileno(), min(size - len(out), 1 << 20))
            if not chunk:
                raise _Ended
            out += chunk
        return bytes(out)

    def _why_ended(self, what: str, cpu: float, late: str = "") -> str:
        code = self._stop()
        if code == CPU_EXIT:
            return (f"{what} used more than {cpu:.0f} s of CPU: it is far slower than the "
                    "exercise needs (look at the sizes in model.summary())")
        how = late or f"the process that runs it ended with status {code}"
        return (f"{what} did not finish within the grader's limits ({cpu:.0f} s of CPU, "
                f"{RESIDENT_BYTES / 1024**3:.0f} GiB of memory; {how}): it is far larger or "
                "slower than the exercise needs (look at the sizes in model.summary())")

    def _stop(self):
        """End the runner; its exit status (None when it did not end)."""
        code = None
        if self._process is not None:
            if self._process.poll() is None:
                import signal

                try:
                    os.killpg(self._process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                code = self._process.wait(timeout=30)
            except Exception:  # noqa: BLE001 - a process that does not end: forget it
                code = None
            code = _exit_status(code, self._folder)
        self._close()
        return code

    def _close(self) -> None:
        from medai_lessons.grading import sandbox

        if self._process is not None:
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    stream.close()
            self._process = None
        if self._box is not None:
            self._box.remove_cgroups()
            self._box = None
        if self._folder is not None:
            sandbox.release_temp_dir(self._folder)
            self._folder = None
        self._ready = False

    def stop(self) -> None:
        with self._lock:
            self._stop()


def _check_unpacked_size(payload: bytes) -> None:
    """The runner writes its answers unpacked; one that would unpack to more than
    :data:`MAX_REPLY_BYTES` is not read (the grader trusts the runner's arrays, not its zip)."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            size = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise ModelRunFailed(f"the model runner's answer was not readable ({exc})") from None
    if size > MAX_REPLY_BYTES:
        raise ModelRunFailed(f"the model's outputs ({size:,} bytes) are larger than a check "
                             "needs")


class _Ended(Exception):
    """The runner ended, or did not answer in time."""


def _log_tail(folder) -> None:
    import logging

    try:
        tail = (folder / "runner.log").read_text(errors="replace")[-3000:]
    except (OSError, TypeError):
        tail = "(no log)"
    logging.getLogger(__name__).error("the model runner did not start: %s", tail)


def _exit_status(code, folder) -> int | None:
    """The runner's own exit status: a sandbox's launcher reports it as its own; what the
    runner last wrote to its log says when its watchdog stopped it at its CPU limit, and a
    runner the kernel stopped at its CPU limit ends on SIGXCPU."""
    import signal

    if code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):  # the kernel's CPU limit
        return CPU_EXIT
    try:
        if folder is not None and f"exit {CPU_EXIT}" in (folder / "runner.log").read_text(
                errors="replace")[-500:]:
            return CPU_EXIT
    except OSError:
        pass
    return code


def _command(argv: list[str], folder, env: dict):
    """``((box, command, env), None)`` for a sandboxed runner, or ``(None, preexec)`` where
    no sandbox starts (the runner then has only its resource limits)."""
    from medai_lessons.grading import sandbox

    policy = sandbox.SandboxPolicy(memory_bytes=MEMORY_BYTES, cpu_seconds=3600,
                                   processes=64, file_bytes=16 * 1024**2,
                                   total_memory_bytes=RESIDENT_BYTES)
    if sandbox.availability()[0]:
        box = sandbox.Sandbox(folder / "box", policy)
        return (box, box.command(argv), box.environment(env)), None
    limits = sandbox.rlimits(policy)

    def preexec():
        import resource

        for name, value in limits.items():
            resource.setrlimit(getattr(resource, name), (value, value))

    return None, preexec


_RUNNER: ModelRunner | None = None


def runner() -> ModelRunner:
    """This process's runner."""
    global _RUNNER
    if _RUNNER is None:
        import atexit

        _RUNNER = ModelRunner()
        atexit.register(_RUNNER.stop)
    return _RUNNER


def _text(text: str):
    import numpy as np

    return np.frombuffer(text.encode(), dtype=np.uint8)


def vet(config: str, compiled: str, weights: list) -> None:
    """Before the grader rebuilds a model a kernel sent (``config`` and ``compiled``: JSON):
    the runner rebuilds it first; a ``PlainDataError`` when that took more than
    :data:`REBUILD_CPU_SECONDS` or :data:`REBUILD_BYTES` there, or failed."""
    from medai_lessons.grading.plain import PlainDataError

    try:
        cpu, grown = runner().rebuild(config, compiled, weights)
    except ModelRunFailed as exc:
        raise PlainDataError(str(exc)) from None
    if grown > REBUILD_BYTES:
        raise PlainDataError(f"rebuilding the model took {grown / 1024**2:,.0f} MB of memory "
                             f"(at most {REBUILD_BYTES / 1024**2:.0f} MB): it is far larger "
                             "than the exercise needs")
    if cpu > REBUILD_CPU_SECONDS:  # the watchdog's margin
        raise PlainDataError(f"rebuilding the model took {cpu:.1f} s of CPU (at most "
                             f"{REBUILD_CPU_SECONDS:.0f} s)")


def attach(model, config: str, weights: list) -> None:
    """Make calls of ``model`` (a rebuilt learner's model) run in the runner: its class
    becomes a subclass, under the same name, whose ``__call__`` sends ``config`` (the JSON the
    model was rebuilt from), ``weights`` and the inputs there; ``predict``, ``evaluate`` and
    training are refused."""
    cls = type(model)
    model.__class__ = _elsewhere_class(cls)
    model._medai_runner_payload = (config, weights)


_CLASSES: dict = {}


def _elsewhere_class(cls):
    if cls in _CLASSES:
        return _CLASSES[cls]

    def __call__(self, x, training=False, **kwargs):
        if kwargs:
            raise TypeError(f"the grader runs a learner's model on inputs only, not with "
                            f"{sorted(kwargs)}")
        import numpy as np

        config, weights = self._medai_runner_payload
        return runner().run(config, weights, np.asarray(x), bool(training))

    def refused(name):
        def method(self, *args, **kwargs):
            raise ModelRunFailed(f"the grader does not {name} a learner's model; it only runs "
                                 "it on a few inputs")
        method.__name__ = name
        return method

    body = {"__call__": __call__, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    for name in ("predict", "predict_on_batch", "evaluate", "test_on_batch", "fit",
                 "train_on_batch", "call"):
        body[name] = refused(name)
    _CLASSES[cls] = type(cls.__name__, (cls,), body)
    return _CLASSES[cls]


# --- the runner's side ----------------------------------------------------------------------

def _read_exactly(stream, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = stream.read(size - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return bytes(out)


def _watchdog(state: dict) -> None:
    """Stop the process once the call in progress has used its CPU time (a model's layers run
    outside Python, where nothing else could stop them)."""
    import time

    while True:
        time.sleep(0.05)
        limit = state.get("until")
        if limit is not None and time.process_time() > limit:
            os.write(2, f"the call used up its CPU time: exit {CPU_EXIT}\n".encode())
            os._exit(CPU_EXIT)


def _cpu_limit(seconds: float | None) -> None:
    """The kernel's own limit behind the watchdog (which needs Python to run between a
    model's operations): the process is killed (SIGXCPU) once its CPU time passes ``seconds``
    (None: back to the sandbox's limit for the whole process)."""
    import math
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if seconds is None:
        soft = hard
    else:
        soft = math.ceil(seconds)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _resident_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _peak_from_here() -> int:
    """Start counting this process's peak memory afresh; its resident memory now. Memory the
    last request freed goes back to the system first: kept, a request that reused it would
    not show as growth (the same model rebuilt four times measured 86, 45, 0 and 0 MB)."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()  # a model's objects hold reference cycles
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak (VmHWM) becomes the resident memory of this moment
    except OSError:
        pass
    return _resident_bytes("VmRSS")


def _rebuild(keras, arrays: dict):
    import json

    config = json.loads(arrays["config"].tobytes().decode())
    with keras.saving.custom_object_scope({}):
        model = keras.saving.deserialize_keras_object(config, safe_mode=True)
    if not isinstance(model, keras.Model):
        raise TypeError(f"a {type(model).__name__} is not a Keras model")
    weights = [arrays[f"w{i}"] for i in range(int(arrays["n"]))]
    if weights:
        model.set_weights(weights)
    if "compiled" in arrays:
        compiled = json.loads(arrays["compiled"].tobytes().decode())
        if compiled:
            model.compile_from_config(compiled)
            _build_compiled(model)
    return model


def _build_compiled(model) -> None:
    """Build the loss and metrics a compile configuration names, as a check or the first
    ``fit`` would: Keras makes the objects behind names (``metrics=["auc"] * 5000``) only then,
    so a configuration of names is small while what it builds is not. One that cannot be built
    is left for the check to report."""
    import numpy as np

    samples = [np.zeros((2, *(d or 1 for d in tuple(out.shape)[1:])), "float32")
               for out in model.outputs]
    y = samples[0] if len(samples) == 1 else samples
    for name in ("_compile_loss", "_compile_metrics"):
        part = getattr(model, name, None)
        if part is not None and hasattr(part, "build") and not getattr(part, "built", False):
            try:
                part.build(y, y)
            except (ValueError, TypeError, AttributeError, KeyError):
                pass


def _outputs(keras, np, model, x, training: bool) -> list:
    """The model's outputs for ``x``, each of the shape its declared output has for
    ``len(x)`` samples (a layer can change the number of samples where a shape says nothing
    of it)."""
    outputs = model(x, training=training)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    arrays = [np.asarray(keras.ops.convert_to_numpy(y)) for y in outputs]
    for y, declared in zip(arrays, model.outputs, strict=False):
        want = (len(x), *tuple(declared.shape)[1:])
        if y.ndim != len(want) or any(w is not None and w != d for w, d in zip(want, y.shape,
                                                                             strict=True)):
            raise ValueError(f"an output of shape {y.shape}, where the model declares "
                             f"{tuple(declared.shape)} ({len(x)} samples given)")
    return arrays


def serve(stdin, stdout) -> int:
    import gc
    import io
    import threading
    import time

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    import keras
    import numpy as np

    # Set Keras's objects aside from the cyclic collector: each request collects twice (its
    # memory measured afresh, then Keras's session cleared), and each collection then walks
    # only what the request made, not the several hundred thousand objects of the imports.
    gc.collect()
    gc.freeze()
    state: dict = {}
    threading.Thread(target=_watchdog, args=(state,), daemon=True).start()
    stdout.write(b"R")
    stdout.flush()
    while True:
        try:
            (size,) = _FRAME.unpack(_read_exactly(stdin, _FRAME.size))
            request = _read_exactly(stdin, size)
        except EOFError:
            return 0
        model = None
        try:
            with np.load(io.BytesIO(request), allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            began = time.process_time()
            state["until"] = began + float(arrays["cpu"])
            _cpu_limit(began + float(arrays["cpu"]) + 1.0)
            before = _peak_from_here()
            model = _rebuild(keras, arrays)
            if str(arrays["op"]) == "rebuild":
                answer = {"grown": np.asarray(_resident_bytes("VmHWM") - before)}
            else:
                answer = {f"y{i}": y for i, y in enumerate(_outputs(
                    keras, np, model, arrays["x"], bool(arrays["training"])))}
            buffer = io.BytesIO()
            np.savez(buffer, cpu=np.asarray(time.process_time() - began), **answer)
            status, payload = _OK, buffer.getvalue()
        except Exception as exc:  # noqa: BLE001 - the model's error is the answer
            text = str(exc).strip().splitlines()
            status = _MEMORY if (isinstance(exc, MemoryError) or "ResourceExhausted"
                                 in type(exc).__name__) else _ERROR
            payload = f"{type(exc).__name__}: {text[0] if text else ''}"[:2000].encode()
        finally:
            state["until"] = None
            _cpu_limit(None)
            model = None
            keras.backend.clear_session()
        stdout.write(status + _FRAME.pack(len(payload)) + payload)
        stdout.flush()


def main() -> int:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
