"""The sandbox a submission's kernel runs in while it is autograded.

Each grading kernel is started by :class:`Sandbox` through bubblewrap (Linux namespaces) as an
unprivileged user of its own, with limits on memory, CPU time, processes and file size:

- it sees the operating system and the Python installation read-only, a copy of the course's
  package in which the reference implementations are replaced by stubs (so an answer cannot
  call, clone or exec them), the data cache read-only, and an empty working folder, home and
  ``/tmp`` of its own; not the course folder (``source/``, ``gradebook.db``, ``submitted/``,
  ``autograded/``), not the project checkout, not the home folder;
- it has no network (a network namespace with only a loopback of its own) and talks to the
  grader through Unix sockets in one folder that only it and the grader share;
- every process it starts lives in its own process namespace and is gone when the kernel ends
  (bubblewrap's ``--die-with-parent``; the grader kills the sandbox at the wall-clock limit).

``python -m medai_lessons.grading.sandbox check`` says whether a sandbox can start on this
machine and why not. Where it cannot, the grader refuses to grade unless the instructor passes
``--unsandboxed`` (``ExecuteGradedWork.sandbox = False``), and says why.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: environment variables a grading kernel may see (everything else, e.g. tokens, is dropped)
ENV_ALLOWED = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "MEDAI_FAST", "NBGRADER_EXECUTION",
               "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "PYTHONHASHSEED",
               "TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES", "MEDAI_SEED")

#: where the data cache appears inside the sandbox (read-only)
DATA_MOUNT = "/medai-data"
#: the kernel's working folder inside the sandbox
WORK_MOUNT = "/submission"


class SandboxUnavailable(RuntimeError):
    """No sandbox can be started here; the message says why and what to do."""


@dataclass
class SandboxPolicy:
    """Limits of one grading kernel."""

    memory_bytes: int = 6 * 1024**3       # address space (TensorFlow alone maps about 2 GiB)
    cpu_seconds: int = 900                # CPU time of the kernel process
    processes: int = 256                  # processes and threads of the sandbox's own user
    file_bytes: int = 256 * 1024**2       # largest file it may write
    wall_seconds: int = 1200              # the whole notebook, from the kernel's start
    scratch_bytes: int = 512 * 1024**2    # each of /tmp and the working folder (in memory)
    total_memory_bytes: int = 8 * 1024**3  # all of the sandbox's processes together (cgroup)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=1)
def availability() -> tuple[bool, str]:
    """(True, "") when a sandbox starts here, else (False, why and what to do)."""
    if not sys.platform.startswith("linux"):
        return False, "sandboxed grading needs Linux (namespaces); this is " + sys.platform
    if bwrap_path() is None:
        return False, ("bubblewrap is not installed: `apt-get install bubblewrap` (Debian, "
                       "Ubuntu) or `dnf install bubblewrap` (Fedora)")
    try:
        with tempfile.TemporaryDirectory(prefix="medai-sbx-check-") as tmp:
            box = Sandbox(Path(tmp), SandboxPolicy(), strip_package=False)
            proc = subprocess.run(box.command([sys.executable, "-c", "print('ok')"]),
                                  capture_output=True, text=True, timeout=60,
                                  env=box.environment(os.environ))
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bubblewrap could not start: {exc}"
    if proc.returncode != 0 or proc.stdout.strip() != "ok":
        why = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        return False, (f"bubblewrap could not start a sandbox here ({why}); on a container "
                       "host allow unprivileged user namespaces (sysctl "
                       "kernel.unprivileged_userns_clone=1 or user.max_user_namespaces > 0)")
    return True, ""


def landlock() -> bool:
    """Whether this machine's kernel restricts a process with Landlock, which keeps a
    grading kernel from writing its own memory (asked in a process of its own: the restriction
    cannot be undone)."""
    probe = subprocess.run([sys.executable, "-c", "from medai_lessons.grading.zygote import "
                            "restrict_writes; print(restrict_writes(['/tmp']))"],
                           capture_output=True, text=True, timeout=120)
    return probe.returncode == 0 and probe.stdout.strip() == "True"


def process_filter() -> bool:
    """Whether a grading kernel's processes can be refused the system calls that write
    another process's memory (a seccomp filter; asked in a process of its own: the filter
    cannot be undone)."""
    probe = subprocess.run([sys.executable, "-c", "from medai_lessons.grading.zygote import "
                            "deny_process_access; print(deny_process_access())"],
                           capture_output=True, text=True, timeout=120)
    return probe.returncode == 0 and probe.stdout.strip() == "True"


def _package_dir() -> Path:
    import medai_lessons

    return Path(medai_lessons.__file__).resolve().parent


def reference_functions() -> dict[str, set[str]]:
    """module name -> names of the reference implementations the exercises are graded
    against (every chapter's ``EXERCISES``), of the course's other functions that compute the
    same (``SAME_AS_REFERENCE``), and of every function of the package they call, directly or
    through a module (``metrics.metrics_from_counts``), at any depth."""
    import inspect
    import types

    from medai_lessons import grading
    from medai_lessons.grading.probes import _code_objects

    def ours(obj) -> bool:
        module = getattr(obj, "__module__", "") or ""
        return (inspect.isfunction(obj) and module.startswith("medai_lessons")
                and not module.startswith("medai_lessons.grading")
                and obj.__qualname__ == obj.__name__)

    out: dict[str, set[str]] = {}
    todo = [inspect.unwrap(ref) for _, ref in grading.EXERCISES.values()]
    todo += [inspect.unwrap(f) for same in grading.SAME_AS_REFERENCE.values() for f in same]
    while todo:
        func = todo.pop()
        if not ours(func) or func.__name__ in out.get(func.__module__, ()):
            continue
        out.setdefault(func.__module__, set()).add(func.__name__)
        names = set()
        for code in _code_objects(func.__code__):
            names.update(code.co_names)
        for name in names:
            obj = func.__globals__.get(name)
            if isinstance(obj, types.ModuleType) and obj.__name__.startswith("medai_lessons"):
                todo += [inspect.unwrap(getattr(obj, attr)) for attr in names
                         if callable(getattr(obj, attr, None))]
            elif callable(obj):
                todo.append(inspect.unwrap(obj))
    return out


#: what a grading kernel keeps of ``medai_lessons.grading``: the rest (the checkers, their
#: cases and helpers) is not in its copy of the package
KERNEL_GRADING_MODULES = ("__init__.py", "agent.py", "plain.py", "guard.py", "probes.py",
                          "zygote.py", "runner.py")
_HIDDEN_MODULE = ('raise ImportError("{name} is not available while grading: the checks run '
                  'outside the learner\'s kernel")\n')
_KERNEL_GRADING_INIT = ('"""The part of the course\'s grading code a grading kernel has (see '
                        'medai_lessons.grading.sandbox)."""\n')


STUB_MESSAGE = ("the course's reference implementation of {name} is not available while "
                "grading: the exercise is graded on your own code")


def _stub_module(source: str, names: set[str]) -> str:
    """The module's source with the bodies of ``names`` (top-level functions) replaced by a
    stub that raises (docstrings kept, so the module's other code still imports)."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            message = STUB_MESSAGE.format(name=node.name)
            node.body = [ast.Raise(exc=ast.Call(func=ast.Name("NotImplementedError", ast.Load()),
                                                args=[ast.Constant(message)], keywords=[]))]
            node.decorator_list = []
    return ast.unparse(ast.fix_missing_locations(tree))


@functools.lru_cache(maxsize=1)
def grading_copy_of_package() -> Path:
    """A copy of the ``medai_lessons`` package for grading kernels, made once per grading
    process: the reference implementations of the exercises replaced by stubs."""
    import atexit

    src = _package_dir()
    dest = held_temp_dir("medai-grading-package-")
    atexit.register(release_temp_dir, dest)
    out = dest / "medai_lessons"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for module, names in reference_functions().items():
        rel = Path(*module.split(".")[1:])
        path = out / rel.with_suffix(".py")
        if not path.is_file():
            path = out / rel / "__init__.py"
        path.write_text(_stub_module(path.read_text(encoding="utf-8"), names), encoding="utf-8")
    for path in (out / "grading").glob("*.py"):
        if path.name == "__init__.py":
            path.write_text(_KERNEL_GRADING_INIT, encoding="utf-8")
        elif path.name not in KERNEL_GRADING_MODULES:
            name = f"medai_lessons.grading.{path.stem}"
            path.write_text(_HIDDEN_MODULE.format(name=name), encoding="utf-8")
    return out


def data_dir() -> Path | None:
    """The course's data cache, if there is one (it is shown read-only to the kernel)."""
    try:
        from medai_lessons.data.cache import data_dir as _data_dir

        path = Path(_data_dir())
    except Exception:  # noqa: BLE001 - no cache is a normal case
        return None
    return path if path.is_dir() else None


@dataclass
class Sandbox:
    """One grading kernel's sandbox in the host folder ``base`` (made by the grader)."""

    base: Path
    policy: SandboxPolicy = field(default_factory=SandboxPolicy)
    strip_package: bool = True

    def __post_init__(self):
        self.base = Path(self.base)
        self.uid = 100_000 + secrets.randbelow(800_000)
        self.run_dir = self.base / "run"      # connection file and the kernel's sockets
        for d in (self.run_dir,):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)
            if os.geteuid() == 0:
                os.chown(d, self.uid, self.uid)
        self.package = grading_copy_of_package() if self.strip_package else _package_dir()

    def give(self, path: Path) -> None:
        """Let the sandbox's user read a file the grader wrote (the connection file)."""
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.uid)

    def environment(self, env: dict) -> dict:
        out = {k: v for k, v in env.items() if k in ENV_ALLOWED}
        out.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        out.update(HOME="/tmp/home", MPLBACKEND="agg", JUPYTER_PLATFORM_DIRS="1",
                   PYTHONDONTWRITEBYTECODE="1", MEDAI_GRADING_SANDBOX="1",
                   # the package copy is found first, however the grader imported the package
                   # (installed, editable, or from a checkout on PYTHONPATH)
                   PYTHONPATH=str(_package_dir().parent))
        cache = data_dir()
        if cache is not None:
            out["MEDAI_DATA_DIR"] = DATA_MOUNT
        return out

    def _binds(self) -> list[str]:
        args: list[str] = []
        for path in ("/usr", "/etc", "/opt"):
            args += ["--ro-bind-try", path, path]
        for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            target = Path("/") / link
            if target.is_symlink():
                args += ["--symlink", os.readlink(target), str(target)]
            elif target.is_dir():
                args += ["--ro-bind", str(target), str(target)]
        seen = []
        for prefix in {sys.base_prefix, sys.prefix, sys.exec_prefix}:
            real = os.path.realpath(prefix)
            if real not in seen and not real.startswith(("/usr", "/opt")):
                seen.append(real)
        for entry in sys.path:  # site-packages outside the prefixes (a user site, say)
            real = os.path.realpath(entry) if entry else ""
            if (real and os.path.isdir(real) and "site-packages" in real
                    and not any(real.startswith(s + os.sep) for s in seen)
                    and not real.startswith(("/usr", "/opt"))):
                seen.append(real)
        for real in sorted(seen):
            args += ["--ro-bind", real, real]
        # the package as the kernel imports it, at the path Python finds it (editable or not)
        args += ["--ro-bind", str(self.package), str(_package_dir())]
        cache = data_dir()
        if cache is not None:
            args += ["--ro-bind", str(cache), DATA_MOUNT]
        return self._parents(args) + args

    def _parents(self, binds: list[str]) -> list[str]:
        """``--dir`` for every folder above a mount point, readable by the sandbox's user
        (bubblewrap would otherwise make some of them private to root)."""
        targets = [binds[i + 2] for i, a in enumerate(binds) if a.startswith("--ro-bind")
                   or a == "--bind"] + [str(self.run_dir)]
        parents = sorted({str(p) for t in targets for p in Path(t).parents if str(p) != "/"},
                         key=lambda p: (p.count("/"), p))
        out: list[str] = []
        for parent in parents:
            if parent in targets or Path(parent).is_symlink():
                continue
            out += ["--perms", "0755", "--dir", parent]
        return out

    def command(self, argv: list[str]) -> list[str]:
        """The command that runs ``argv`` inside this sandbox.

        As root (a grading server), bubblewrap makes the namespaces and ``setpriv`` then
        drops to the sandbox's own user id, which holds no capabilities and counts against
        the process limit. As another user, bubblewrap makes a user namespace too and the
        kernel keeps that user's id (the process limit is then not applied: it would count
        all of that user's processes)."""
        bwrap = bwrap_path()
        if bwrap is None:
            raise SandboxUnavailable(availability()[1])
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise SandboxUnavailable("setpriv (util-linux) is not installed")
            unshare = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                       "--unshare-cgroup-try"]
            drop = ["--ro-bind", setpriv, "/run/setpriv", "--",
                    "/run/setpriv", f"--reuid={self.uid}", f"--regid={self.uid}",
                    "--clear-groups", "--inh-caps=-all", "--"]
        else:
            unshare, drop = ["--unshare-all"], ["--"]
        env = [arg for key, value in sorted(self.environment(os.environ).items())
               for arg in ("--setenv", key, value)]
        inner = [bwrap, *unshare, "--die-with-parent", "--new-session", "--clearenv", *env,
                 "--proc", "/proc", "--dev", "/dev",
                 "--size", str(self.policy.scratch_bytes), "--tmpfs", "/tmp",
                 *self._binds(),
                 "--dir", "/tmp/home", "--chmod", "1777", "/tmp", "--chmod", "0777", "/tmp/home",
                 "--bind", str(self.run_dir), str(self.run_dir),
                 "--size", str(self.policy.scratch_bytes), "--tmpfs", WORK_MOUNT,
                 "--chdir", WORK_MOUNT,
                 "--hostname", "grading-sandbox",
                 *drop, *argv]
        return [sys.executable, "-I", "-S", "-c", _LAUNCHER, json.dumps(self.rlimits()),
                json.dumps(self.cgroup_files()), *inner]

    def cgroup_files(self) -> dict[str, str]:
        """Control-group files that bound all of the sandbox's processes together (memory,
        number of processes): written by the launcher, which then moves itself into the
        group. Empty where the grader cannot make groups (not root, no cgroup file system):
        the per-process limits still hold."""
        if os.geteuid() != 0:
            return {}
        global _SWEPT
        if not _SWEPT:
            _SWEPT = True
            sweep_stale_cgroups()
        p, name = self.policy, f"medai-grading-{self.uid}"
        out: dict[str, str] = {}
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        if v2.is_file():
            controllers = v2.read_text().split()
            group = Path("/sys/fs/cgroup") / name
            if "memory" in controllers:
                out[str(group / "memory.max")] = str(p.total_memory_bytes)
            if "pids" in controllers:
                out[str(group / "pids.max")] = str(p.processes)
            if out:
                out[str(group / "cgroup.procs")] = "self"
        else:
            for controller, file, value in (("memory", "memory.limit_in_bytes",
                                             p.total_memory_bytes),
                                            ("pids", "pids.max", p.processes)):
                root = Path("/sys/fs/cgroup") / controller
                if (root / "cgroup.procs").is_file() and os.access(root, os.W_OK):
                    out[str(root / name / file)] = str(value)
                    out[str(root / name / "cgroup.procs")] = "self"
            root = Path("/sys/fs/cgroup") / "cpuacct"  # accounting only: CPU time used
            if out and (root / "cgroup.procs").is_file() and os.access(root, os.W_OK):
                out[str(root / name / "cgroup.procs")] = "self"
        self.cgroups = sorted({str(Path(f).parent) for f in out})
        return out

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by all of the sandbox's processes together (also those that
        have ended), from its control group; None where it has none."""
        for group in getattr(self, "cgroups", []):
            path = Path(group)
            try:
                if path.parent.name == "cpuacct":
                    return int((path / "cpuacct.usage").read_text()) / 1e9
                if (path / "cpu.stat").is_file():
                    for line in (path / "cpu.stat").read_text().splitlines():
                        if line.startswith("usage_usec "):
                            return int(line.split()[1]) / 1e6
            except (OSError, ValueError):
                return None
        return None

    def remove_cgroups(self) -> None:
        """Remove the sandbox's control groups once its processes are gone."""
        import time

        for group in getattr(self, "cgroups", []):
            for _ in range(50):  # the last processes may take a moment to be reaped
                try:
                    os.rmdir(group)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)

    def rlimits(self) -> dict[str, int]:
        """The resource limits of everything in the sandbox (``resource.RLIMIT_*`` names)."""
        return rlimits(self.policy)


_SWEPT = False  # whether this process has swept the stale control groups


def sweep_stale_cgroups(older_than: float = 600.0, top: Path = Path("/sys/fs/cgroup")) -> int:
    """Remove the sandboxes' control groups that their grader could not remove (it was
    killed): those with no process left, made more than ``older_than`` seconds ago (a newer one
    may belong to a sandbox that is starting). The system refuses to remove a group that still
    holds a process. Returns how many were removed."""
    import time

    removed, now = 0, time.time()
    for group in [*top.glob("medai-grading-*"), *top.glob("*/medai-grading-*")]:
        try:
            if now - group.stat().st_mtime < older_than:
                continue
            os.rmdir(group)
            removed += 1
        except OSError:  # still in use, or gone already
            continue
    return removed


#: the file a grading process holds a lock on in each temporary folder of its own
OWNER_FILE = ".medai-owner"
#: the temporary folders of grading (a package copy, a zygote's, a kernel's, a job's, the
#: model runner's)
TEMP_PREFIXES = ("medai-grading-", "medai-zygote-", "medai-job-", "medai-runner-")
_HELD: dict[str, int] = {}
_TEMP_SWEPT = False


def held_temp_dir(prefix: str) -> Path:
    """A new temporary folder that this process holds (a lock on a file in it) until
    :func:`release_temp_dir` or its end: one that a killed grading process left behind has no
    holder, and the next grading process removes it (:func:`sweep_abandoned_temp_dirs`)."""
    import fcntl

    global _TEMP_SWEPT
    if not _TEMP_SWEPT:
        _TEMP_SWEPT = True
        sweep_abandoned_temp_dirs()
    path = Path(tempfile.mkdtemp(prefix=prefix))
    fd = os.open(path / OWNER_FILE, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _HELD[str(path)] = fd
    return path


def release_temp_dir(path: Path) -> None:
    """Remove a folder of :func:`held_temp_dir`, and let go of it."""
    shutil.rmtree(path, ignore_errors=True)
    fd = _HELD.pop(str(path), None)
    if fd is not None:
        os.close(fd)


@contextmanager
def temp_dir(prefix: str):
    """:func:`held_temp_dir` for a ``with`` block."""
    path = held_temp_dir(prefix)
    try:
        yield path
    finally:
        release_temp_dir(path)


def sweep_abandoned_temp_dirs(top: Path | None = None, unheld_after: float = 86_400.0) -> int:
    """Remove the grading folders in the temporary folder ``top`` that no process holds (their
    grading process was killed; they can hold submissions and gradebooks), and those made
    without a holder (by an older version) more than ``unheld_after`` seconds ago. Returns how
    many were removed."""
    import fcntl
    import time

    top = Path(tempfile.gettempdir() if top is None else top)
    removed = 0
    for path in top.iterdir():
        if not path.name.startswith(TEMP_PREFIXES) or str(path) in _HELD:
            continue
        try:
            if path.is_symlink() or not path.is_dir():
                continue
            owner = path / OWNER_FILE
            if owner.is_file():
                fd = os.open(owner, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a running grading process holds it
                finally:
                    os.close(fd)
            elif time.time() - path.stat().st_mtime < unheld_after:
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += not path.exists()
    return removed


def lock_run_dir(run_dir: Path) -> None:
    """Once the kernel has bound its sockets, before any of the submission's code runs: the
    folder it shares with the grader, and everything in it, belong to root and cannot be
    written by the kernel. It can then neither put a link where the grader connects later (the
    grader would follow it as root, to a socket of the submission's choosing on the host) nor
    fill the host's disk through that folder. Only where the grader runs as root (the kernel
    owns the folder otherwise)."""
    import stat

    if os.geteuid() != 0:
        return
    for entry in os.scandir(run_dir):
        mode = os.lstat(entry.path).st_mode
        if stat.S_ISLNK(mode):  # not there before the kernel's code runs: never followed
            os.unlink(entry.path)
            continue
        os.lchown(entry.path, 0, 0)
        if not stat.S_ISSOCK(mode):
            os.chmod(entry.path, 0o600)
    os.chown(run_dir, 0, 0)
    os.chmod(run_dir, 0o755)


def rlimits(p: SandboxPolicy) -> dict[str, int]:
    """The resource limits of a policy's processes (``resource.RLIMIT_*`` names)."""
    limits = {"RLIMIT_AS": p.memory_bytes, "RLIMIT_CPU": p.cpu_seconds,
              "RLIMIT_FSIZE": p.file_bytes, "RLIMIT_CORE": 0}
    if os.geteuid() == 0:  # counted per user id: only meaningful for the sandbox's own id
        limits["RLIMIT_NPROC"] = p.processes
    return limits


#: sets the limits (inherited by everything the sandbox starts), then execs the sandbox; it
#: runs with ``python -I -S`` so that starting it costs milliseconds
_LAUNCHER = ("import json, os, resource, sys\n"
             "for name, value in json.loads(sys.argv[1]).items():\n"
             "    resource.setrlimit(getattr(resource, name), (value, value))\n"
             "for path, value in json.loads(sys.argv[2]).items():\n"
             "    try:\n"
             "        os.makedirs(os.path.dirname(path), exist_ok=True)\n"
             "        with open(path, 'w') as f:\n"
             "            f.write(str(os.getpid()) if value == 'self' else value)\n"
             "    except OSError:\n"
             "        pass\n"
             "os.execv(sys.argv[3], sys.argv[3:])\n")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["check"]:
        ok, why = availability()
        print("a grading sandbox starts on this machine" if ok else f"no sandbox: {why}")
        if ok and not landlock():
            print("this machine's kernel has no Landlock: a grading kernel could write its own "
                  "memory, and ch05's probe checks could be forged (the instructor guide's "
                  "security section)")
        if ok and not process_filter():
            print("no seccomp filter on this machine (or this processor): a process a grading "
                  "kernel starts could write the kernel's memory, and ch05's probe checks "
                  "could be forged (the instructor guide's security section)")
        return 0 if ok else 1
    print("usage: python -m medai_lessons.grading.sandbox check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
