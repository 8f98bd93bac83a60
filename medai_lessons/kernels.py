"""The course's two Jupyter kernels: "MedAI (CPU)" and "MedAI (GPU)".

Both run this environment's Python (ipykernel's own kernelspec, written by
``ipykernel.kernelspec.install``) and differ only in the environment they start with:

- ``medai-cpu``: ``CUDA_VISIBLE_DEVICES=-1`` hides every GPU, ``MEDAI_DEVICE=cpu``;
- ``medai-gpu``: ``MEDAI_DEVICE=gpu`` and ``TF_FORCE_GPU_ALLOW_GROWTH=true``: memory growth
  and (on GPUs with tensor cores) mixed precision, see :mod:`medai_lessons.device`; on a
  machine without a GPU it runs on the CPU and the set-up line says so.

They are for interactive study. Notebooks keep the standard ``python3`` kernel in their
metadata, so that nbgrader grades them on any machine; a learner picks a MedAI kernel in
JupyterLab's kernel menu.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from medai_lessons.device import POLICY_ENV


@dataclass(frozen=True)
class CourseKernel:
    name: str
    display_name: str
    env: dict[str, str]


KERNELS = (
    CourseKernel("medai-cpu", "MedAI (CPU)", {"CUDA_VISIBLE_DEVICES": "-1", POLICY_ENV: "cpu"}),
    CourseKernel("medai-gpu", "MedAI (GPU)", {POLICY_ENV: "gpu",
                                              "TF_FORCE_GPU_ALLOW_GROWTH": "true"}),
)


def install(user: bool = False,
            prefix: str | Path | None = None) -> list[tuple[CourseKernel, Path]]:
    """Install both kernelspecs: for this user (``user=True``), under ``prefix``
    (``<prefix>/share/jupyter/kernels``), or by default under this environment's
    ``sys.prefix``, where this environment's Jupyter finds them. Returns where each went."""
    from ipykernel.kernelspec import install as install_kernelspec

    if user and prefix is not None:
        raise ValueError("choose either user=True or a prefix, not both")
    if not user and prefix is None:
        prefix = sys.prefix
    done = []
    # ipykernel stages each spec in a folder of its own under the temporary folder and removes
    # only the spec, leaving an empty ``tmp*_kernels`` folder behind for every install: staged
    # under a folder of ours instead, nothing is left
    with tempfile.TemporaryDirectory(prefix="medai-kernelspecs-") as staging:
        default, tempfile.tempdir = tempfile.tempdir, staging
        try:
            for kernel in KERNELS:
                path = install_kernelspec(user=user,
                                          prefix=None if prefix is None else str(prefix),
                                          kernel_name=kernel.name,
                                          display_name=kernel.display_name,
                                          env=dict(kernel.env))
                done.append((kernel, Path(path)))
        finally:
            tempfile.tempdir = default
    return done


@dataclass(frozen=True)
class InstalledKernel:
    name: str
    display_name: str
    resource_dir: Path
    argv: list[str]
    env: dict[str, str]

    @property
    def policy(self) -> str:
        return self.env.get(POLICY_ENV, "auto")


def installed(kernel_spec_manager=None) -> list[InstalledKernel]:
    """Every kernelspec Jupyter finds here (``jupyter kernelspec list``), sorted by name."""
    from jupyter_client.kernelspec import KernelSpecManager

    ksm = kernel_spec_manager or KernelSpecManager()
    out = []
    for name, entry in sorted(ksm.get_all_specs().items()):
        spec = entry["spec"]
        out.append(InstalledKernel(name=name, display_name=spec.get("display_name", name),
                                   resource_dir=Path(entry["resource_dir"]),
                                   argv=list(spec.get("argv", [])), env=dict(spec.get("env", {}))))
    return out


# --- how kernels talk to JupyterLab and to `medai-course check` -------------------------------
#
# Over TCP, every kernel start logs "Kernel is running over TCP without encryption ...
# susceptible to eavesdropping". On Linux and macOS the course's own launches (the learner's
# JupyterLab, `medai-course check`) use IPC instead: Unix sockets in Jupyter's runtime folder,
# which only the user can open, so nothing travels over the network and the warning does not
# arise. Windows has no IPC transport for Jupyter kernels; there the kernels stay on TCP bound
# to 127.0.0.1 (this computer only), and the warning is harmless.


def ipc_transport() -> bool:
    """True where Jupyter kernels can talk over Unix sockets (every system but Windows)."""
    return sys.platform != "win32"


def server_arguments() -> list[str]:
    """Command-line settings for a JupyterLab server whose kernels talk over IPC."""
    return ["--KernelManager.transport=ipc"] if ipc_transport() else []


def kernel_manager_config():
    """A traitlets ``Config`` for the ``KernelManager`` of one local kernel (e.g. handed to
    nbclient's ``NotebookClient(config=...)``): over IPC where available, its socket files in
    Jupyter's runtime folder (removed when the kernel shuts down). ``None`` on Windows."""
    import uuid

    from jupyter_core.paths import jupyter_runtime_dir
    from traitlets.config import Config

    if not ipc_transport():
        return None
    runtime = Path(jupyter_runtime_dir())
    runtime.mkdir(parents=True, exist_ok=True)
    return Config({"KernelManager": {
        "transport": "ipc", "ip": str(runtime / f"medai-{uuid.uuid4().hex[:12]}-ipc")}})
