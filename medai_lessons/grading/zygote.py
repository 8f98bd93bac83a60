"""The zygote's side of :mod:`medai_lessons.grading.preload`: the code that runs inside the
zygote's sandbox (it imports the heavy libraries once, then forks one kernel per request, each
in namespaces and file systems of its own). It imports nothing of the grader's: a grading
kernel's copy of the package keeps this module (see ``sandbox.KERNEL_GRADING_MODULES``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys

_CLONE = {"user": 0x10000000, "mount": 0x00020000, "pid": 0x20000000, "net": 0x40000000,
          "ipc": 0x08000000, "uts": 0x04000000}
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT = 1, 2, 4, 32
_MS_BIND, _MS_MOVE, _MS_REC, _MS_PRIVATE = 4096, 8192, 16384, 1 << 18
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_CAPBSET_DROP = 1, 4, 24
_PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                           ctypes.c_char_p]
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong]
    return libc


def _check(result: int, what: str) -> None:
    import ctypes

    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc, source, target, fstype, flags, data=None) -> None:
    def enc(text):
        return None if text is None else str(text).encode()

    _check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)),
           f"mount {fstype or source} on {target}")


def _tmpfs(libc, target: str, size: int, mode: str) -> None:
    _mount(libc, "tmpfs", target, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={size},mode={mode}")


def _own_namespaces(libc, job_dir: str, run_dir: str, work: str, scratch: int) -> None:
    """In the forked child, before the kernel's code: namespaces and file systems of its own."""
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(sum(_CLONE.values())), "unshare")
    # A process that is not dumpable cannot use its own /proc/self (its maps, its file
    # descriptors): dumpable while it makes its sandbox, before any of the submission's code
    # exists (kernels run one at a time), and not again from the end of this function, so that
    # the kernel cannot reach this process (it waits for the kernel outside the kernel's
    # process namespace).
    libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
    try:
        _sandbox_after_fork(libc, uid, gid, job_dir, run_dir, work, scratch)
    finally:
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def _sandbox_after_fork(libc, uid: int, gid: int, job_dir: str, run_dir: str, work: str,
                        scratch: int) -> None:
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    # What lies below /tmp and must stay (the Python installation, the package copy, when they
    # live there; this kernel's own connection folder) is held open, so that it can be bound
    # again on the fresh /tmp; the zygote's control socket and other kernels' folders are not.
    below = [p for p in _mount_points_below("/tmp") if not _inside(p, run_dir)]
    keep = [p for p in below if not any(_inside(p, q) for q in below if q != p)]
    held = [(path, os.open(path, os.O_PATH)) for path in [*keep, job_dir]]
    _tmpfs(libc, "/tmp", scratch, "1777")
    if os.path.isdir(run_dir):  # not below /tmp: cover it (control socket, other kernels)
        _tmpfs(libc, run_dir, 1024 * 1024, "0755")
    for path, fd in held:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(path, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "a").close()
        _mount(libc, f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
        os.close(fd)
    if not _inside(run_dir, "/tmp"):
        _mount(libc, "tmpfs", run_dir, None,
               _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV, "size=1m")
    os.makedirs("/tmp/home", mode=0o777)
    _tmpfs(libc, work, scratch, "0755")
    if os.path.isdir("/dev/shm"):
        _tmpfs(libc, "/dev/shm", scratch, "1777")
    with contextlib.suppress(OSError):
        socket.sethostname("grading-sandbox")


def _inside(path: str, folder: str) -> bool:
    return (path.rstrip("/") + "/").startswith(folder.rstrip("/") + "/")


def _mount_points_below(top: str) -> list[str]:
    """Mount points strictly below ``top`` in this process's view, outermost first."""
    import re

    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if _inside(point, top) and point.rstrip("/") != top.rstrip("/"):
                points.append(point)
    return sorted(set(points), key=lambda p: (p.count("/"), p))


def _drop_privileges(libc, limits: dict) -> None:
    import ctypes
    import resource

    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    for cap in range(64):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability this kernel knows
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _kernel_child(request: dict, run_dir: str, scratch: int) -> None:
    """The forked child (never returns): namespaces, then the kernel as the namespace's first
    process, while this process waits for it and passes on how it ended. SIGTERM (from the
    zygote) kills the kernel; this process ends only once the kernel's whole process namespace
    is gone (the kernel is its first process: its end is reaped after all the others')."""
    import signal

    os.closerange(3, 65536)  # the zygote's control socket and its other clients
    libc = _libc()
    job_dir = request["job_dir"]
    try:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        _own_namespaces(libc, job_dir, run_dir, request["work"], scratch)
        logfd = os.open(os.path.join(job_dir, "kernel-output.log"),
                        os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except BaseException as exc:  # noqa: BLE001 - say why, then end
        print(f"medai-preload: no sandbox for the kernel: {exc}", file=sys.stderr, flush=True)
        os._exit(70)
    pid = os.fork()
    if pid:
        os.close(logfd)

        def stop(*_):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

        signal.signal(signal.SIGTERM, stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        try:
            _, status = os.waitpid(pid, 0)  # retried after the handler (PEP 475)
        except ChildProcessError:
            os._exit(71)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    try:  # the kernel: the first process of its own process namespace
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.dup2(logfd, 1)
        os.dup2(logfd, 2)
        os.close(logfd)
        os.closerange(3, 65536)
        _drop_privileges(libc, request["limits"])
        libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)
        restrict_writes([request["work"], "/tmp", "/dev", job_dir])
        deny_process_access()
        os.chdir(request["work"])
        argv = list(request["argv"])
        if argv[:2] != ["-m", "ipykernel_launcher"]:
            raise ValueError(f"not a kernel command: {argv[:3]}")
        launch_kernel(argv[2:])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - the kernel's end, whatever it was
        print(f"medai-preload: the kernel ended: {type(exc).__name__}: {exc}", file=sys.stderr,
              flush=True)
        code = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


#: Landlock's system calls (the same number on every architecture) and the one right it is
#: asked to handle: opening a file for writing
_LANDLOCK_CREATE, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT = 444, 445, 446
_LANDLOCK_WRITE_FILE, _LANDLOCK_RULE_PATH_BENEATH = 1 << 1, 1


def restrict_writes(folders: list[str]) -> bool:
    """Let this process, and every thread and process it starts later, open files for
    writing only below ``folders`` (Landlock, Linux 5.13 and later). The sandbox's mounts
    already make everything else read-only except ``/proc``: this keeps a kernel from writing
    its own memory through ``/proc/self/mem``, with addresses that ``id()`` gives, which would
    reach any object without a line the grader's reading could name. Returns False, and
    changes nothing, where the machine's kernel has no Landlock or refuses a rule (the kernel
    then runs as it would without it: `python -m medai_lessons.grading.sandbox check` says
    so)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    class Ruleset(ctypes.Structure):
        _fields_ = [("handled_access_fs", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    ruleset = Ruleset(_LANDLOCK_WRITE_FILE)
    fd = libc.syscall(_LANDLOCK_CREATE, ctypes.byref(ruleset), ctypes.c_size_t(
        ctypes.sizeof(ruleset)), ctypes.c_uint32(0))
    if fd < 0:
        return False
    try:
        for folder in folders:
            try:
                folder_fd = os.open(folder, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = PathBeneath(_LANDLOCK_WRITE_FILE, folder_fd)
                _check(libc.syscall(_LANDLOCK_ADD_RULE, ctypes.c_int(fd),
                                    ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH),
                                    ctypes.byref(rule), ctypes.c_uint32(0)),
                       f"Landlock rule for {folder}")
            finally:
                os.close(folder_fd)
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(libc.syscall(_LANDLOCK_RESTRICT, ctypes.c_int(fd), ctypes.c_uint32(0)),
               "Landlock restriction")
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


#: per architecture (``uname -m``): its seccomp audit id and the numbers of the system calls
#: that reach another process's memory or file descriptors: ptrace, process_vm_readv,
#: process_vm_writev, pidfd_getfd
_PROCESS_ACCESS_CALLS = {"x86_64": (0xC000003E, (101, 310, 311, 438)),
                         "aarch64": (0xC00000B7, (117, 270, 271, 438))}
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_SECCOMP_RET_ALLOW, _SECCOMP_RET_EPERM = 0x7FFF0000, 0x00050000 | 1
_BPF_LD_W_ABS, _BPF_JEQ_K, _BPF_JGE_K, _BPF_RET_K = 0x20, 0x15, 0x35, 0x06


def deny_process_access() -> bool:
    """Refuse this process, and every process it starts later, the system calls that read or
    write another process's memory or take its file descriptors (a seccomp filter: they fail
    with EPERM). A kernel is dumpable (it needs its own ``/proc/self``), so a process it starts
    could otherwise write the kernel's memory with ``process_vm_writev`` or ``ptrace``, where
    Landlock does not reach: a library that starts a helper program or a Python worker (with
    ``LD_PRELOAD`` or ``PYTHONPATH`` set by the notebook beforehand) would run code the
    reading never saw, and change any object of the kernel, the probes included. System calls
    of another architecture's numbering (32-bit calls on x86-64, x32) are refused too. Returns
    False, and changes nothing, on an architecture not listed or where the machine refuses
    the filter."""
    import ctypes

    arch = _PROCESS_ACCESS_CALLS.get(os.uname().machine)
    if arch is None:
        return False
    audit_arch, calls = arch

    class Instruction(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Instruction))]

    # 0: load the architecture; 1: another one -> refuse; 3: load the call's number;
    # 4: x32 numbering -> refuse; then one comparison per call; allow; refuse
    deny = 5 + len(calls) + 1
    code = [(_BPF_LD_W_ABS, 0, 0, 4), (_BPF_JEQ_K, 1, 0, audit_arch),
            (_BPF_RET_K, 0, 0, _SECCOMP_RET_EPERM), (_BPF_LD_W_ABS, 0, 0, 0),
            (_BPF_JGE_K, deny - 5, 0, 0x40000000)]
    code += [(_BPF_JEQ_K, deny - (5 + i) - 1, 0, nr) for i, nr in enumerate(calls)]
    code += [(_BPF_RET_K, 0, 0, _SECCOMP_RET_ALLOW), (_BPF_RET_K, 0, 0, _SECCOMP_RET_EPERM)]
    instructions = (Instruction * len(code))(*[Instruction(*c) for c in code])
    program = Program(len(code), instructions)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                           ctypes.c_ulong]
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        return False
    return libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) == 0


def _freeze_imports() -> None:
    """Set what the imports made aside from the cyclic garbage collector: every collection of
    a process that imported TensorFlow otherwise walks its several hundred thousand objects
    again (a tenth of a second or more each time), and in a forked kernel that walk also
    copies the pages they lie on. They live as long as the process anyway."""
    import gc

    gc.collect()
    gc.freeze()


def zygote_main(control: str, run_dir: str, scratch: int, modules: list[str]) -> int:
    """The zygote's loop: import ``modules``, then fork a kernel for every request, one at a
    time: the next is forked only when the last one's process namespace is gone."""
    import collections
    import importlib
    import select
    import signal
    import time

    libc = _libc()
    libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)  # no kernel may read or write this process
    for name in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    _freeze_imports()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(control)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(control + ".new")
    os.chmod(control + ".new", 0o600)
    server.listen(8)
    os.rename(control + ".new", control)  # the socket appears when the zygote is ready
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    waiting: collections.deque = collections.deque()   # (client, request)
    current: list = []                                   # [pid, client, asked to stop at]

    def send(conn, reply) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(reply).encode() + b"\n")

    try:
        while True:
            watched = [server, *(c for c, _ in waiting), *(current[1:2])]
            readable, _, _ = select.select(watched, [], [], 0.2)
            if server in readable:
                conn, _ = server.accept()
                conn.settimeout(10)
                try:
                    waiting.append((conn, json.loads(conn.makefile("r").readline())))
                except (OSError, ValueError):
                    conn.close()
            for item in [w for w in waiting if w[0] in readable]:  # gone before its turn
                waiting.remove(item)
                item[0].close()
            if current and current[1] in readable and current[2] is None:
                current[2] = time.monotonic()  # the client went away: so does the kernel
                with contextlib.suppress(ProcessLookupError):
                    os.kill(current[0], signal.SIGTERM)
            if current and current[2] is not None and time.monotonic() - current[2] > 30:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(current[0], signal.SIGKILL)
            if current:
                pid, status = os.waitpid(current[0], os.WNOHANG)
                if pid:
                    send(current[1], {"exit": os.waitstatus_to_exitcode(status)})
                    current[1].close()
                    current = []
            if not current and waiting:
                conn, request = waiting.popleft()
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
                pid = os.fork()
                if pid == 0:
                    _kernel_child(request, run_dir, scratch)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
                current = [pid, conn, None]
                send(conn, {"pid": pid})
    finally:
        if current:
            with contextlib.suppress(ProcessLookupError):
                os.kill(current[0], signal.SIGKILL)


def restricted_kernel(argv: list[str]) -> None:
    """A kernel started afresh in a sandbox (``python -m medai_lessons.grading.zygote``
    with ipykernel's arguments): its writes and its access to other processes restricted as a
    forked kernel's are, then the kernel."""
    folders = [os.getcwd(), "/tmp", "/dev"]
    if "-f" in argv[:-1]:
        folders.append(os.path.dirname(os.path.abspath(argv[argv.index("-f") + 1])))
    restrict_writes(folders)
    deny_process_access()
    launch_kernel(argv)


def launch_kernel(argv: list[str]) -> None:
    """The IPython kernel, with ipykernel's arguments ``argv``, importing installed code only:
    its working folder is not on the import path (Python puts it first and IPython adds it
    again, unless told not to). A notebook could otherwise write ``seaborn.py``,
    ``statistics.py`` or ``wfdb.py`` there and import it under an allowed module's name,
    running code that the grader's reading of the notebook never sees. The course's notebooks
    import nothing from their own folder."""
    here = os.path.realpath(os.getcwd())
    sys.path[:] = [p for p in sys.path if p and os.path.realpath(p) != here]
    sys.argv = ["ipykernel_launcher", "--ignore-cwd", *argv]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    restricted_kernel(sys.argv[1:])
