"""CPU/GPU set-up and the one-line device report every notebook prints.

On a machine with an NVIDIA GPU and a CUDA build of TensorFlow, :func:`configure` turns on
memory growth (so that one notebook does not reserve the whole card) and, where the GPU has
tensor cores (compute capability >= 7.0), mixed precision; ``MEDAI_MIXED_PRECISION=0`` opts
out. Without a GPU it does nothing and says so: every notebook runs on the CPU.

The device policy comes from ``MEDAI_DEVICE``, which the course's Jupyter kernels set (see
:mod:`medai_lessons.kernels`):

- ``cpu`` ("MedAI (CPU)" kernel): GPUs are hidden (the kernel also sets
  ``CUDA_VISIBLE_DEVICES=-1``), everything runs on the CPU;
- ``gpu`` ("MedAI (GPU)" kernel): the GPU options above; without a GPU it falls back to the
  CPU and the report says so;
- ``auto`` (unset, e.g. the standard ``python3`` kernel that nbgrader uses): a GPU is used with
  the same options when TensorFlow sees one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out

POLICY_ENV = "MEDAI_DEVICE"
MIXED_PRECISION_ENV = "MEDAI_MIXED_PRECISION"
POLICIES = ("auto", "cpu", "gpu")
#: how the report names each policy
POLICY_LABELS = {"cpu": "MedAI (CPU) kernel: GPUs hidden",
                 "gpu": "MedAI (GPU) kernel",
                 "auto": "device policy auto"}


def device_policy(notes: list[str] | None = None) -> str:
    """The policy named by ``MEDAI_DEVICE`` (``auto`` when unset or not understood)."""
    value = os.environ.get(POLICY_ENV, "").strip().lower() or "auto"
    if value not in POLICIES:
        if notes is not None:
            notes.append(f"{POLICY_ENV}={value!r} is not one of {', '.join(POLICIES)}: "
                         "using auto")
        value = "auto"
    return value


@dataclass
class DeviceInfo:
    tensorflow: str
    keras: str
    built_with_cuda: bool
    gpus: list[str] = field(default_factory=list)
    memory_growth: bool = False
    mixed_precision: bool = False
    policy: str = "auto"
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        label = POLICY_LABELS.get(self.policy, self.policy)
        if self.gpus:
            where = f"GPU x{len(self.gpus)} ({', '.join(self.gpus)})"
            extras = [x for x, on in (("memory growth", self.memory_growth),
                                      ("mixed precision", self.mixed_precision)) if on]
            if extras:
                where += ", " + " and ".join(extras) + " on"
            where += f" ({label})"
        elif self.policy == "gpu":
            why = ("" if self.built_with_cuda else
                   "; this TensorFlow has no CUDA support: install the package with [gpu]")
            where = f"CPU ({label}, but TensorFlow sees no GPU{why}: falling back to CPU)"
        elif self.policy == "cpu":
            where = f"CPU ({label})"
        elif self.built_with_cuda:
            where = f"CPU (this TensorFlow has CUDA support, but no GPU is visible; {label})"
        else:
            where = f"CPU (no GPU: fine for this course; {label})"
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


def apply_policy(tf, keras, policy: str, mixed_precision: bool) -> DeviceInfo:
    """Set up the devices TensorFlow sees under ``policy`` and return what was done.

    GPUs are hidden or given memory growth before anything starts TensorFlow's runtime (both
    can only be changed before). ``tf`` and ``keras`` are the modules (tests pass stand-ins).
    """
    info = DeviceInfo(tensorflow=tf.__version__, keras=keras.__version__,
                      built_with_cuda=bool(tf.test.is_built_with_cuda()), policy=policy)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus and policy == "cpu":
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
            info.memory_growth = True
        except (RuntimeError, ValueError) as exc:  # the runtime had already started
            info.notes.append(f"memory growth not set on {gpu.name}: {exc}")
        details = tf.config.experimental.get_device_details(gpu)
        info.gpus.append(details.get("device_name", gpu.name))
    if gpus and mixed_precision:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        if capability and capability >= (7, 0):
            keras.mixed_precision.set_global_policy("mixed_float16")
            info.mixed_precision = True
    tf.config.list_logical_devices()  # starts the runtime (and its CUDA probe) here
    return info


def configure(mixed_precision: bool | None = None) -> DeviceInfo:
    """Import TensorFlow, set up any GPUs under the policy of ``MEDAI_DEVICE``, and return what
    was found (idempotent)."""
    global _CONFIGURED
    if _CONFIGURED is not None:
        return _CONFIGURED
    notes: list[str] = []
    policy = device_policy(notes)
    if mixed_precision is None:
        mixed_precision = os.environ.get(MIXED_PRECISION_ENV, "1") != "0"
    with _native_stderr_captured():
        import keras
        import tensorflow as tf

        info = apply_policy(tf, keras, policy, mixed_precision)
    info.notes[:0] = notes
    _CONFIGURED = info
    return info
