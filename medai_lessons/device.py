"""CPU/GPU set-up and the one-line device report every notebook prints.

On a machine with an NVIDIA GPU and a CUDA build of TensorFlow, :func:`configure` turns on
memory growth (so that one notebook does not reserve the whole card) and, where the GPU has
tensor cores (compute capability >= 7.0), mixed precision; ``MEDAI_MIXED_PRECISION=0`` opts
out. Without a GPU it does nothing and says so: every notebook runs on the CPU.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out


@dataclass
class DeviceInfo:
    tensorflow: str
    keras: str
    built_with_cuda: bool
    gpus: list[str] = field(default_factory=list)
    memory_growth: bool = False
    mixed_precision: bool = False
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.gpus:
            where = f"GPU x{len(self.gpus)} ({', '.join(self.gpus)})"
            extras = [x for x, on in (("memory growth", self.memory_growth),
                                      ("mixed precision", self.mixed_precision)) if on]
            if extras:
                where += ", " + " and ".join(extras) + " on"
        elif self.built_with_cuda:
            where = "CPU (this TensorFlow has CUDA support, but no GPU is visible)"
        else:
            where = "CPU (no GPU: fine for this course)"
        return f"TensorFlow {self.tensorflow} / Keras {self.keras} on {where}"


_CONFIGURED: DeviceInfo | None = None


@contextlib.contextmanager
def _native_stderr_captured():
    """Hold back what TensorFlow's C++ start-up writes straight to file descriptor 2 (log
    lines printed before its logging is configured, a failed CUDA probe on CPU-only
    machines): notebooks show it as alarming red text. If the block raises, the captured
    text is printed so that nothing useful is lost."""
    fd = 2  # native code writes to descriptor 2 (in a kernel, sys.stderr is something else)
    try:
        saved = os.dup(fd)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def configure(mixed_precision: bool | None = None) -> DeviceInfo:
    """Import TensorFlow, set up any GPUs, and return what was found (idempotent)."""
    global _CONFIGURED
    if _CONFIGURED is not None:
        return _CONFIGURED
    with _native_stderr_captured():
        import keras
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        tf.config.list_logical_devices()  # starts the runtime (and its CUDA probe) here
    info = DeviceInfo(tensorflow=tf.__version__, keras=keras.__version__,
                      built_with_cuda=bool(tf.test.is_built_with_cuda()))
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
            info.memory_growth = True
        except (RuntimeError, ValueError) as exc:  # already initialised
            info.notes.append(f"memory growth not set on {gpu.name}: {exc}")
        details = tf.config.experimental.get_device_details(gpu)
        info.gpus.append(details.get("device_name", gpu.name))
    if mixed_precision is None:
        mixed_precision = os.environ.get("MEDAI_MIXED_PRECISION", "1") != "0"
    if gpus and mixed_precision:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        if capability and capability >= (7, 0):
            keras.mixed_precision.set_global_policy("mixed_float16")
            info.mixed_precision = True
    _CONFIGURED = info
    return info
