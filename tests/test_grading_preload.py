"""Grading kernels forked from the preloaded zygote (medai_lessons.grading.preload): each one
in a sandbox of its own, made after the fork; nothing of one reaches the next or the zygote.

The attack submissions graded through nbgrader (one kernel planting for the next, reaching for
the zygote) are in test_grading_attacks.py; here the executor runs small notebooks directly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from conftest import need_sandbox

pytestmark = pytest.mark.slow

FACTS = """
import os, socket, sys
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
print("preloaded", "tensorflow" in sys.modules)
import gc
print("frozen", gc.get_freeze_count())
print("pid", os.getpid())
print("caps", status["CapEff"].strip(), status["CapPrm"].strip(), status["CapBnd"].strip())
print("no_new_privs", status["NoNewPrivs"].strip())
print("host", socket.gethostname())
print("cwd", os.getcwd(), sorted(os.listdir(".")))
print("tmp", sorted(os.listdir("/tmp")))
from ipykernel import get_connection_file
run = os.path.dirname(get_connection_file())
print("run", sorted(os.listdir(run)))
print("run_path", run)
print("beside", sorted(os.listdir(os.path.dirname(run))))
print("above", sorted(os.listdir(os.path.dirname(os.path.dirname(run)))))
open("/tmp/left-by-kernel", "w").write("x")
open("left-in-work", "w").write("x")
"""


def _run(source: str, **config):
    need_sandbox()
    from medai_lessons.grading.execute import ExecuteGradedWork

    nb = new_notebook(cells=[new_code_cell(source)])
    executor = ExecuteGradedWork(timeout=120, **config)
    out, _ = executor.preprocess(nb, {"metadata": {"path": "."}})
    return "".join(o.get("text", "") for o in out.cells[0].outputs), executor.phases


def _facts(text: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


def test_each_kernel_is_forked_preloaded_into_namespaces_of_its_own():
    from medai_lessons.grading import preload

    first, _ = _run(FACTS)
    second, phases = _run(FACTS)
    zygote = [_facts(t)["run_path"].rsplit("/jobs/", 1)[0] for t in (first, second)]
    assert zygote[0] == zygote[1], zygote  # both kernels came from one zygote
    assert any(str(z.box.run_dir) == zygote[0] for z in preload._ZYGOTES.values())
    for text in (first, second):
        facts = _facts(text)
        assert facts["preloaded"] == "True", text        # it was forked, not started afresh
        # the imports' objects are set aside from the cyclic collector (each collection of the
        # kernel would walk TensorFlow's several hundred thousand objects again)
        assert int(facts["frozen"]) > 100_000, text
        assert facts["pid"] == "1", text                 # first process of its own namespace
        assert facts["caps"] == " ".join(["0000000000000000"] * 3), text
        assert facts["no_new_privs"] == "1", text
        assert facts["host"] == "grading-sandbox", text
        assert facts["cwd"] == "/submission []", text    # an empty working folder of its own
        # nothing the other kernel left: a home of its own, the path to its connection folder
        # (and to the Python installation, where it lives below /tmp)
        assert "left-by-kernel" not in facts["tmp"] and "'home'" in facts["tmp"], text
        assert f"'{facts['run_path'].split('/')[2]}'" in facts["tmp"], text
        assert facts["beside"].startswith("['k") and facts["beside"].count("'k") == 1, text
        assert facts["above"] == "['jobs']", text        # no control socket to be seen
    assert phases["kernel CPU"] < 4, phases  # no TensorFlow import of its own (that is ~6 s)


def test_the_same_kernel_started_afresh_when_preloading_is_off():
    text, _ = _run(FACTS, preload=False)
    facts = _facts(text)
    assert facts["preloaded"] == "False" and facts["caps"].startswith("0000000000000000"), text
    assert facts["frozen"] == "0", text


def test_a_wall_clock_stop_ends_the_kernel_and_everything_it_started():
    token = f"medai-preload-{os.getpid()}-{time.time_ns()}"
    source = (f"import subprocess, sys, time\n"
              f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)  # {token}'],"
              f" start_new_session=True)\n"
              f"time.sleep(600)\n")
    started = time.monotonic()
    _run(source, wall_limit=20)
    assert time.monotonic() - started < 300
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        left = [ln for ln in out.splitlines() if token in ln and "ps -eo" not in ln]
        if not left:
            break
        time.sleep(0.5)
    assert not left, left


def test_a_zygote_that_died_is_started_again():
    from medai_lessons.grading import preload

    _run("print('warm')")
    zygote = next(iter(preload._ZYGOTES.values()))
    os.killpg(zygote.process.pid, 9)
    zygote.process.wait(30)
    text, _ = _run("import sys; print('preloaded', 'tensorflow' in sys.modules)")
    assert "preloaded True" in text, text
    assert zygote.alive()


def test_the_kernels_side_imports_only_the_standard_library():
    # the zygote's module runs inside the sandbox, where the kernel's copy of the package
    # hides the grader's modules (and the rest is preloaded by name, not imported by it)
    import ast

    from medai_lessons.grading import sandbox, zygote

    tree = ast.parse(open(zygote.__file__).read())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    assert names - {"__future__"} <= set(sys.stdlib_module_names) | {"ipykernel"}, names
    assert "zygote.py" in sandbox.KERNEL_GRADING_MODULES


#: a kernel writing its own memory at the address id() gives (a bytes object changed in place:
#: with the same few lines any object of the kernel, the probes included, could be rewritten)
OWN_MEMORY = """
import io, os
from pathlib import Path
openers = {
    "open": lambda: open("/pr" + "oc/self/mem", "r+b", buffering=0),
    "pathlib, by process id": lambda: Path("/proc").joinpath(str(os.getpid()), "mem").open(
        "r+b", buffering=0),
    "io.FileIO, the thread's own": lambda: io.FileIO("/proc/thread-self/m" + "em", "r+"),
}
for name, opener in openers.items():
    b = bytes(b"course")
    try:
        with opener() as f:
            f.seek(id(b) + 32)
            f.write(b"X")
        print(name, "written", b)
    except OSError as exc:
        print(name, "refused", type(exc).__name__)
"""


@pytest.mark.parametrize("preload", [True, False], ids=["forked", "afresh"])
def test_a_kernel_cannot_write_its_own_memory(preload):
    from medai_lessons.grading.sandbox import landlock

    if not landlock():
        pytest.skip("this machine's kernel has no Landlock: a grading kernel's writes below "
                    "/proc are not restricted here")
    text, _ = _run(OWN_MEMORY, preload=preload)
    lines = text.splitlines()
    assert len(lines) == 3, text
    assert all(line.endswith("refused PermissionError") for line in lines), text


#: what a process the kernel starts runs to change one byte of the kernel's memory (at the
#: address in MEDAI_TARGET): process_vm_writev, or ptrace's attach and poke
WRITE_PARENT = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
target, parent = int(os.environ["MEDAI_TARGET"]), os.getppid()
if os.environ["MEDAI_HOW"] == "vm":
    class V(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    x = ctypes.create_string_buffer(b"X", 1)
    libc.process_vm_writev(parent, ctypes.byref(V(ctypes.addressof(x), 1)), 1,
                           ctypes.byref(V(target, 1)), 1, 0)
elif libc.ptrace(16, parent, None, None) == 0:            # PTRACE_ATTACH
    os.waitpid(parent, 0x40000000)                        # stopped (__WALL)
    word = libc.ptrace(2, parent, ctypes.c_void_p(target), None)   # PTRACE_PEEKDATA
    word = (word & ~0xFF) | ord("X")
    libc.ptrace(5, parent, ctypes.c_void_p(target), ctypes.c_void_p(word))  # PTRACE_POKEDATA
    libc.ptrace(17, parent, None, None)                   # PTRACE_DETACH
"""

#: a kernel's code starting such a process: a Python program writing with process_vm_writev
#: or with ptrace, and a forked copy of the kernel writing with process_vm_writev
OTHER_PROCESS = """
import os, subprocess, sys
open("/tmp/child.py", "w").write(WRITE_PARENT)
def forked():
    pid = os.fork()
    if pid == 0:
        exec(WRITE_PARENT, {})
        os._exit(0)
    os.waitpid(pid, 0)
program = lambda: subprocess.run([sys.executable, "/tmp/child.py"], timeout=60)
for name, how, start in (("program", "vm", program), ("program", "ptrace", program),
                         ("fork", "vm", forked)):
    b = bytes(bytearray(b"course"))       # an object of its own, not the constant
    os.environ.update(MEDAI_TARGET=str(id(b) + 32), MEDAI_HOW=how)
    start()
    print(name, how, "written" if b.startswith(b"X") else "refused", b)
""".replace("WRITE_PARENT", repr(WRITE_PARENT))


@pytest.mark.parametrize("preload", [True, False], ids=["forked", "afresh"])
def test_a_process_the_kernel_starts_cannot_write_the_kernels_memory(preload):
    text, _ = _run(OTHER_PROCESS, preload=preload)
    assert text.splitlines() == ["program vm refused b'course'",
                                 "program ptrace refused b'course'",
                                 "fork vm refused b'course'"], text


def test_the_sandbox_check_says_when_kernels_could_write_their_memory(capsys, monkeypatch):
    need_sandbox()
    from medai_lessons.grading import sandbox

    assert sandbox.main(["check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("a grading sandbox starts on this machine"), out
    assert ("no Landlock" in out) is (not sandbox.landlock()), out
    assert ("no seccomp filter" in out) is (not sandbox.process_filter()), out
    monkeypatch.setattr(sandbox, "landlock", lambda: False)
    monkeypatch.setattr(sandbox, "process_filter", lambda: False)
    assert sandbox.main(["check"]) == 0
    out = capsys.readouterr().out
    assert "no Landlock: a grading kernel could write its own memory" in out
    assert "no seccomp filter on this machine" in out
