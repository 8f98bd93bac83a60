# ruff: noqa: E501 - the attacks are code as a student would write it
"""Cheating and hostile submissions against the sandboxed grader, by kind.

One temporary course for chapter 1, one batch of submissions graded by nbgrader's own
``nbgrader autograde <chapter>`` (as an instructor runs it, with the course's configuration),
once on a quiet machine and once (a subset) while other processes compete for both cores.
Every attack answers ``ppv_from_prevalence`` wrongly and then tries to get its points anyway,
or to read, change or stop what it must not; every other answer is right. Each submission must
earn exactly what its honest work deserves, and nothing may change for anyone else.

Kinds (issue "Grading that a submission cannot game"), at least two cases each:
- patching what the checks rely on, from an answer cell;
- using the course's reference implementation;
- reading what a student must never read (the source notebook, the gradebook, classmates'
  notebooks, the project checkout, the home folder);
- writing what a student must never write (the gradebook, classmates' files, the installed
  package) or stopping the grader;
- denial of service and resource abuse (malformed metadata, invented grade cells, detached
  processes, memory, a fork bomb, huge outputs, floods of output at
  the grader's sockets, killing its own kernel).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from conftest import COURSE, need_sandbox
from medai_lessons.course import GradingCourse
from nbtools import UNCAP, answered, cell, expected_scores, nbg, read

pytestmark = pytest.mark.slow
CH = "ch01_background"
TARGET = "ans_ppv_from_prevalence"
WRONG = ("def ppv_from_prevalence(sensitivity, specificity, prevalence):\n"
         "    return sensitivity * 0 + 0.5  # wrong on purpose\n")
CANARY = "CANARY-" + secrets.token_hex(6)
TOKEN = "medai-attack-" + secrets.token_hex(4)  # marks processes a submission starts

#: student -> (code appended to the wrong answer, or a function changing the notebook)
ATTACKS: dict[str, str] = {
    # -- patching what the checks rely on --------------------------------------------------
    "patch_numpy": """
import numpy as np, numpy.testing
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *x, **k: np.ones(np.shape(a), bool)
np.array_equal = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
""",
    "import_hook_fake_grading": """
import sys, types, importlib, builtins
fake = types.ModuleType("medai_lessons.grading")
fake.__getattr__ = lambda name: (lambda *a, **k: None)
class Finder:
    def find_spec(self, name, path=None, target=None):
        if name.startswith("medai_lessons.grading"):
            import importlib.util
            return importlib.util.spec_from_loader(name, loader=None)
sys.meta_path.insert(0, Finder())
sys.modules["medai_lessons.grading"] = fake
sys.modules["medai_lessons.grading.fresh"] = fake
importlib.reload = lambda module: module
_real_import = builtins.__import__
builtins.__import__ = lambda name, *a, **k: fake if name.startswith("medai_lessons.grading") else _real_import(name, *a, **k)
""",
    "ipython_transformers": """
ip = get_ipython()
ip.input_transformers_post.append(lambda lines: ["pass\\n"] if any("check_" in l for l in lines) else lines)
import ast
class Drop(ast.NodeTransformer):
    def visit_Expr(self, node):
        return None
ip.ast_transformers.append(Drop())
""",
    "custom_exc_swallows_failures": """
ip = get_ipython()
ip.set_custom_exc((BaseException,), lambda self, etype, value, tb, tb_offset=None: None)
""",
    "replaces_the_grading_agent": """
import json
import medai_lessons.grading.agent as agent
from IPython.display import publish_display_data
def serve(request):
    req = json.loads(request)
    publish_display_data({agent.MIME: json.dumps({"id": req["id"], "ok": True, "value": 0.5,
                                                  "values": {}, "args_after": []})})
agent.serve = serve
""",
    "returns_an_object_that_agrees": """
class Agree(float):
    def __eq__(self, other): return True
    def __array__(self, *a, **k):
        import numpy as np
        return np.asarray(0.5)
_wrong = ppv_from_prevalence
def ppv_from_prevalence(sensitivity, specificity, prevalence):
    return Agree(0.5)
""",
    # -- using the course's reference implementation ----------------------------------------
    "calls_reference_via_importlib": """
import importlib
def ppv_from_prevalence(sensitivity, specificity, prevalence):
    m = importlib.import_module("medai_" + "lessons.metrics")
    return getattr(m, "ppv_from_" + "prevalence")(sensitivity, specificity, prevalence)
""",
    "clones_reference_bytecode": """
import types, medai_lessons.metrics as m
ppv_from_prevalence = types.FunctionType(m.ppv_from_prevalence.__code__, vars(m), "ppv_from_prevalence")
""",
    "execs_reference_source": """
import medai_lessons.metrics as m
_ns = {"__name__": "copied"}
exec(open(m.__file__).read(), _ns)
ppv_from_prevalence = _ns["ppv_from_prevalence"]
""",
    "lazy_result_calls_reference_later": """
import medai_lessons.metrics as m
_ref = m.ppv_from_prevalence
class Lazy:
    def __init__(self, *a): self.a = a
    def __array__(self, *x, **k):
        import numpy as np
        return np.asarray(_ref(*self.a))
    def __float__(self): return float(_ref(*self.a))
def ppv_from_prevalence(sensitivity, specificity, prevalence):
    return Lazy(sensitivity, specificity, prevalence)
""",
    # -- reading what a student must never read --------------------------------------------
    "reads_source_and_gradebook": """
import glob, sqlite3
for pattern in ["{root}/source/*/*.ipynb", "../../../source/*/*.ipynb", "{root}/gradebook.db"]:
    for path in glob.glob(pattern):
        try:
            print(open(path, errors="replace").read()[:200000])
        except Exception as exc:
            print("no", type(exc).__name__)
try:
    con = sqlite3.connect("{root}/gradebook.db")
    print(con.execute("select source from source_cell").fetchall())
except Exception as exc:
    print("no gradebook", type(exc).__name__)
""",
    "reads_classmates_project_and_home": """
import glob, os, pathlib, medai_lessons
for pattern in ["{root}/submitted/*/*/*.ipynb", "{root}/autograded/*/*/*.ipynb"]:
    for path in glob.glob(pattern):
        print(path, open(path).read()[:2000])
checkout = pathlib.Path(medai_lessons.__file__).resolve().parents[1]
for sub in ["course/source", "tests", ".git"]:
    try:
        print(sub, os.listdir(checkout / sub))
    except Exception as exc:
        print("no", sub, type(exc).__name__)
for home in [os.path.expanduser("~"), "/root", "{home}"]:
    try:
        print(home, os.listdir(home))
    except Exception as exc:
        print("no", home, type(exc).__name__)
try:
    print(open("{root}/canary.txt").read())
except Exception as exc:
    print("no canary", type(exc).__name__)
""",
    # -- writing what a student must never write, stopping the grader -----------------------
    "writes_gradebook_and_classmates": """
import glob, os, shutil, sqlite3
try:
    con = sqlite3.connect("{root}/gradebook.db")
    con.execute("update grade set manual_score = 99")
    con.execute("delete from submitted_assignment")
    con.commit()
except Exception as exc:
    print("no gradebook", type(exc).__name__)
for path in glob.glob("{root}/autograded/*") + glob.glob("{root}/submitted/*"):
    shutil.rmtree(path, ignore_errors=True)
for path in ["{root}/gradebook.db", "{root}/source/{ch}/{ch}.ipynb"]:
    try:
        os.remove(path)
    except Exception as exc:
        print("no", type(exc).__name__)
try:
    os.makedirs("{root}/submitted/zz_later/{ch}", exist_ok=True)
    open("{root}/submitted/zz_later/{ch}/{ch}.ipynb", "w").write("{}")
except Exception as exc:
    print("no", type(exc).__name__)
""",
    "patches_package_and_kills_grader": """
import os, signal, pathlib, medai_lessons.grading as g
try:
    pathlib.Path(g.__file__).write_text("check_ppv_from_prevalence = lambda *a, **k: None")
except Exception as exc:
    print("no", type(exc).__name__)
for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except Exception:
            pass
try:
    os.kill(os.getppid(), signal.SIGKILL)
except Exception as exc:
    print("no", type(exc).__name__)
""",
    # -- denial of service and resource abuse -----------------------------------------------
    "detached_processes": """
import subprocess, sys
for _ in range(50):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)  # {token}"],
                     start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
""",
    "memory_and_fork_bomb": """
import os
try:
    hog = bytearray(12 * 1024**3)
except MemoryError:
    print("memory refused")
children = 0
try:
    for _ in range(2000):
        if os.fork() == 0:
            import signal, time
            time.sleep(60)
            os.kill(os.getpid(), signal.SIGKILL)
        children += 1
except OSError as exc:
    print("fork refused after", children, type(exc).__name__)
""",
    "huge_image_and_json_outputs": """
import base64
from IPython.display import display
blob = base64.b64encode(b"x" * 3_000_000).decode()
for _ in range(12):
    display({"image/png": blob, "application/json": {"a": "y" * 3_000_000}}, raw=True)
""",
    "kills_its_own_kernel": """
import os, signal, posix
try:
    posix._exit(3)
except SystemExit:
    print("posix._exit refused")
os.kill(os.getpid(), signal.SIGKILL)
""",
    "swaps_its_sockets": """
import glob, json, os, socket
from ipykernel import get_connection_file
run = os.path.dirname(get_connection_file())
host = socket.socket(socket.AF_UNIX)  # a socket only this kernel has: where the grader would go
host.bind("/tmp/{token}-elsewhere")
host.listen(8)
for path in glob.glob(os.path.join(run, "kernel-*")):
    for act, do in (("renamed", lambda: os.rename(path, path + ".real")),
                    ("linked", lambda: os.symlink("/tmp/{token}-elsewhere", path + ".new"))):
        try:
            do()
            print("SWAPPED", act, path)
        except Exception as exc:
            print("no", act, type(exc).__name__)
for name in ("fill-1", "fill-2"):
    try:
        with open(os.path.join(run, name), "wb") as f:
            f.write(b"x" * 10_000_000)
        print("SWAPPED wrote", name)
    except Exception as exc:
        print("no write", type(exc).__name__)
try:
    os.chmod(run, 0o777)
    print("SWAPPED chmod")
except Exception as exc:
    print("no chmod", type(exc).__name__)
""",
    # -- one kernel against the next (kernels are forked from one preloaded process) ---------
    "zygote_1_plants": """
import ctypes, glob, os, signal, socket, subprocess, sys
planted = []
def plant(folder):
    try:
        path = os.path.join(folder, "{token}-planted")
        with open(path, "w") as f:
            f.write("import numpy as np\\nnp.allclose = lambda *a, **k: True\\n")
        planted.append(path)
    except Exception:
        pass
writable = [line.split()[4] for line in open("/proc/self/mountinfo")
            if "ro" not in line.split()[5].split(",")]
for top in writable:
    if not top.startswith(("/proc", "/sys")):
        for folder, _, _ in os.walk(top):
            plant(folder)
for folder in ["/tmp", "/dev/shm", os.getcwd(), os.path.expanduser("~"), *sys.path]:
    plant(folder)
startup = os.path.expanduser("~/.ipython/profile_default/startup")
try:
    os.makedirs(startup, exist_ok=True)
    with open(startup + "/00-help.py", "w") as f:
        f.write("import numpy as np\\nnp.allclose = lambda *a, **k: True\\n")
    planted.append(startup)
except Exception:
    pass
print("planted", len(planted))
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
key = libc.syscall(248, b"user", b"{token}", b"x", 1, -4)  # add_key to the user keyring
print("key added" if key > 0 else "no key")
me = os.readlink("/proc/self")  # its own number where /proc counts (not necessarily getpid)
for pid in [p for p in os.listdir("/proc") if p.isdigit() and p not in (me, str(os.getpid()))]:
    for what in ("mem", "root/", "fd/", "environ", "cwd/"):
        try:
            if what == "mem":
                open(f"/proc/{pid}/mem", "r+b").close()
            elif what == "environ":
                open(f"/proc/{pid}/environ").read()
            else:
                os.listdir(f"/proc/{pid}/{what}")
            print("REACHED", pid, what)
        except Exception:
            pass
from ipykernel import get_connection_file
run = os.path.dirname(get_connection_file())
for path in glob.glob(os.path.join(run, "..", "..", "*")) + [os.path.join(run, "..", "..", "control.sock")]:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b'{"job_dir": "/tmp", "argv": ["-m", "ipykernel_launcher"], "work": "/tmp", "limits": {}}\\n')
        print("REACHED control", path)
    except Exception:
        pass
top = os.path.realpath(os.path.join(run, "..", ".."))
if libc.umount2(top.encode(), 2) == 0:
    print("REACHED umount")
if libc.unshare(0x10000000 | 0x00020000) == 0 and libc.umount2(top.encode(), 2) == 0:
    print("REACHED umount in a new namespace")
print("left", os.listdir(top))
subprocess.Popen([sys.executable, "-c", "import os, signal, time  # {token}\\n"
                  "end = time.time() + 120\\n"
                  "while time.time() < end:\\n"
                  "    for p in os.listdir('/proc'):\\n"
                  "        if p.isdigit() and int(p) != os.getpid():\\n"
                  "            try: os.kill(int(p), signal.SIGKILL)\\n"
                  "            except Exception: pass\\n"
                  "    time.sleep(0.05)\\n"], start_new_session=True)
""",
    "zygote_2_looks": """
import ctypes, os, sys, numpy as np
found = []
skip = ("/proc", "/sys", "/usr", os.path.realpath(sys.prefix), os.path.realpath(np.__file__ + "/../.."))
for folder, subs, files in os.walk("/"):
    subs[:] = [s for s in subs if not os.path.join(folder, s).startswith(skip)]
    found += [os.path.join(folder, f) for f in files if "{token}" in f]
startup = os.path.expanduser("~/.ipython/profile_default/startup")
if os.path.isdir(startup) and set(os.listdir(startup)) - {"README"}:  # IPython writes README
    found.append(startup)
if np.allclose(0.0, 1.0):
    found.append("np.allclose patched")
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
if libc.syscall(249, b"user", b"{token}", None, 0) > 0:  # request_key
    found.append("key")
print("looked;", "FOUND " + repr(found) if found else "found nothing")
""",
}
#: output floods: what a kernel sends the grader, more and larger than it can hold (the
#: answer cell is the notebook's last, after the grader's connection for the test cells has
#: been made: that connection is not read while an answer cell runs)
#: (most first undo the grading kernel's own cut of its messages: ``nbtools.UNCAP``)
FLOODS: dict[str, str] = {
    # -- more and larger output than the grader can hold ------------------------------------
    "floods_display_far_over_the_limit": UNCAP + """
from IPython.display import display
big = "q" * 120_000_000
for _ in range(4):
    display({"text/plain": big}, raw=True)
kernel = get_ipython().kernel  # past the kernel's own limits: the message made by hand
frames = kernel.session.serialize(kernel.session.msg("display_data", {"data": {"text/plain": big}, "metadata": {}}), ident=b"kernel.display_data")
for _ in range(12):
    kernel.iopub_socket.send_multipart(frames)
""",
    "floods_display_just_under_the_limit": UNCAP + """
from IPython.display import display
chunk = "u" * 24_000_000
for i in range(100):
    display({"text/plain": chunk + str(i)}, raw=True)
""",
    "floods_printed_output": """
import sys
line = "s" * 50_000_000
for _ in range(30):
    sys.stdout.write(line)
    sys.stdout.flush()
print("y" * 20_000_000, "z" * 20_000_000, sep="\\n", file=sys.stderr)
""",
    "floods_input_prompts_in_the_tests": UNCAP + """
def ppv_from_prevalence(sensitivity, specificity, prevalence):
    for size in [24_000_000] * 10 + [40_000_000]:
        try:
            input("p" * size)
        except Exception:
            break
    return 0.5
""",
    # -- keeping the grader waiting past every time limit -----------------------------------
    "floods_from_a_thread_into_the_tests": UNCAP + """
import threading, time
kernel = get_ipython().kernel
def flood():
    blob = {"name": "stdout", "text": "t" * 20_000_000}
    end = time.time() + 600
    while time.time() < end:
        kernel.session.send(kernel.iopub_socket, "stream", blob)
        kernel.session.send(kernel.iopub_socket, "display_data",
                            {"data": {"text/plain": "d"}, "metadata": {}})
        time.sleep(0.1)
threading.Thread(target=flood, daemon=True).start()
""",
    "prints_forever_when_called": """
def ppv_from_prevalence(sensitivity, specificity, prevalence):
    import signal, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        print("still working", flush=True)
        time.sleep(0.05)
""",
    "ignores_interrupts_and_sleeps": """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
time.sleep(3600)
""",
}
#: students whose submission is changed beyond the answer cell
NOTEBOOK_ATTACKS = ("schema_version_99", "invented_grade_cell", "fake_package_folder")
#: the subset graded again while other processes compete for the CPU
UNDER_LOAD = ("patch_numpy", "ipython_transformers", "clones_reference_bytecode",
              "reads_source_and_gradebook", "writes_gradebook_and_classmates",
              "detached_processes", "kills_its_own_kernel", "schema_version_99",
              "infinite_loop_in_answer", "zygote_1_plants", "zygote_2_looks",
              "swaps_its_sockets", "floods_display_far_over_the_limit",
              "floods_from_a_thread_into_the_tests", "ignores_interrupts_and_sleeps")
HONEST = ("honest_a", "honest_b")
#: where the grading process writes its peak resident memory (kB) as it ends
PEAK_FILE = "grader-peak-kib.txt"
PEAK_HOOK = """
import atexit as _atexit
def _record_peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open({path!r}, "w").write(line.split()[1])
_atexit.register(_record_peak)
"""


def _package() -> Path:
    import medai_lessons

    return Path(medai_lessons.__file__).resolve().parent


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def _submission(complete, student: str, root: Path):
    nb = nbformat.reads(nbformat.writes(complete), as_version=4)
    if student in ATTACKS or student in FLOODS:
        code = ATTACKS.get(student) or FLOODS[student]
        for key, value in (("root", root), ("home", Path.home()), ("ch", CH), ("token", TOKEN)):
            code = code.replace("{" + key + "}", str(value))
        cell(nb, TARGET).source = WRONG + code
    elif student == "schema_version_99":
        cell(nb, TARGET).metadata["nbgrader"]["schema_version"] = 99
        cell(nb, TARGET).source = WRONG
    elif student == "invented_grade_cell":
        cell(nb, TARGET).source = WRONG
        bonus = nbformat.v4.new_code_cell("print('bonus')")
        bonus.metadata["nbgrader"] = {"grade": True, "grade_id": "bonus", "points": 50,
                                      "solution": False, "locked": False, "task": False,
                                      "schema_version": 3}
        test = cell(nb, "test_ppv_from_prevalence")
        test.metadata["nbgrader"]["points"] = 200
        test.metadata["nbgrader"]["solution"] = True   # a test turned into an "answer"
        nb.cells.append(bonus)
    elif student == "fake_package_folder":
        cell(nb, TARGET).source = WRONG
    elif student == "infinite_loop_in_answer":
        cell(nb, TARGET).source = WRONG + "\nwhile True:\n    pass\n"
    return nb


def _grade(root: Path, students: list[str], complete, load: bool) -> dict:
    for student in students:
        dest = root / "submitted" / student / CH
        dest.mkdir(parents=True)
        nbformat.write(_submission(complete, student, root), dest / f"{CH}.ipynb")
        if student == "fake_package_folder":
            fake = dest / "medai_lessons" / "grading"
            fake.mkdir(parents=True)
            (dest / "medai_lessons" / "__init__.py").write_text("")
            (fake / "__init__.py").write_text("def __getattr__(name):\n"
                                              "    return lambda *a, **k: None\n")
    hogs = []
    if load:  # two busy processes for the length of the batch (bounded: they end by themselves)
        hogs = [subprocess.Popen([sys.executable, "-c",
                                  "import time\nend = time.time() + 900\n"
                                  "while time.time() < end:\n    pass\n"])
                for _ in range(2)]
    try:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", CH, "--force"],
                              cwd=root, capture_output=True, text=True, timeout=2400)
        seconds = time.monotonic() - start
    finally:
        for hog in hogs:
            hog.kill()
    course = GradingCourse.open(root)
    scores = {}
    for student in students:
        try:
            scores[student] = {k: v["auto_score"] for k, v in course.scores(CH, student).items()
                               if v["kind"] == "autograded"}
        except Exception as exc:  # noqa: BLE001 - a missing record is a result too
            scores[student] = exc
    return {"scores": scores, "log": proc.stdout + proc.stderr, "seconds": seconds,
            "course": course}


def _batch(tmp_path_factory, name: str, students: list[str], load: bool):
    need_sandbox()
    root = tmp_path_factory.mktemp(name)
    course = GradingCourse.create(root, COURSE, [CH])
    config = root / "nbgrader_config.py"
    config.write_text(config.read_text() + "\nc.Execute.timeout = 30\n"
                      "c.ExecuteGradedWork.iopub_timeout = 15\n"
                      + PEAK_HOOK.format(path=str(root / PEAK_FILE)))
    src = root / "source" / CH / f"{CH}.ipynb"
    source_nb = read(src)
    test = cell(source_nb, "test_ppv_from_prevalence")
    test.source = test.source.replace("### END HIDDEN TESTS", f"# {CANARY}\n### END HIDDEN TESTS")
    nbformat.write(source_nb, src)
    (root / "canary.txt").write_text(CANARY)
    release = course.generate(CH)
    complete = answered(read(release / f"{CH}.ipynb"), source_nb)
    before = {"source": _digest(root / "source"), "package": _digest(_package())}
    result = _grade(root, [*HONEST, *students], complete, load)
    result.update(root=root, source=source_nb, before=before, students=students)
    return result


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    students = [*ATTACKS, *FLOODS, *NOTEBOOK_ATTACKS, "infinite_loop_in_answer"]
    return _batch(tmp_path_factory, "attacks-quiet", students, load=False)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return _batch(tmp_path_factory, "attacks-loaded", list(UNDER_LOAD), load=True)


def _expected(batch, student: str) -> dict:
    return expected_scores(batch["source"], set() if student in HONEST else {TARGET})


@pytest.mark.parametrize("student", [*HONEST, *ATTACKS, *FLOODS, *NOTEBOOK_ATTACKS,
                                     "infinite_loop_in_answer"])
def test_each_submission_earns_exactly_what_its_honest_work_deserves(quiet, student):
    got = quiet["scores"][student]
    assert not isinstance(got, Exception), f"{student} not graded: {got}\n{quiet['log'][-3000:]}"
    assert got == _expected(quiet, student), (student, got)


@pytest.mark.parametrize("student", [*HONEST, *UNDER_LOAD])
def test_the_same_on_a_loaded_machine(loaded, student):
    got = loaded["scores"][student]
    assert not isinstance(got, Exception), f"{student} not graded: {got}\n{loaded['log'][-3000:]}"
    assert got == _expected(loaded, student), (student, got)


@pytest.mark.parametrize("batch_name", ["quiet", "loaded"])
def test_nothing_outside_the_sandbox_changed(request, batch_name):
    batch = request.getfixturevalue(batch_name)
    root = batch["root"]
    assert _digest(root / "source") == batch["before"]["source"], "source/ changed"
    assert (root / "gradebook.db").is_file()
    assert not (root / "submitted" / "zz_later").exists()
    for student in [*HONEST, *batch["students"]]:
        assert (root / "submitted" / student / CH / f"{CH}.ipynb").is_file(), student
        assert (root / "autograded" / student / CH / f"{CH}.ipynb").is_file(), student
    assert _digest(_package()) == batch["before"]["package"], "the installed package changed"
    with batch["course"].gradebook() as gb:
        for student in [*HONEST, *batch["students"]]:
            grades = gb.find_submission_notebook(CH, CH, student).grades
            assert all(g.manual_score is None for g in grades), f"{student}: manual scores"


@pytest.mark.parametrize("batch_name", ["quiet", "loaded"])
def test_no_hidden_test_or_secret_reaches_an_autograded_notebook(request, batch_name):
    batch = request.getfixturevalue(batch_name)
    for path in (batch["root"] / "autograded").rglob("*.ipynb"):
        text = path.read_text()
        assert CANARY not in text, f"{path}: a hidden test or the canary leaked"
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, path


def test_feedback_carries_no_hidden_test_and_says_which_case_failed(quiet):
    course = quiet["course"]
    for student in ("reads_source_and_gradebook", "patch_numpy", "honest_a"):
        html = course.generate_feedback(CH, student).read_text()
        assert CANARY not in html and "BEGIN HIDDEN TESTS" not in html
        if student != "honest_a":
            assert "ppv_from_prevalence: failed on case" in html, student


def test_no_process_a_submission_started_outlives_grading(quiet):
    time.sleep(1)
    out = subprocess.run(["ps", "-eo", "uid,args"], capture_output=True, text=True).stdout
    left = [line for line in out.splitlines() if TOKEN in line and "ps -eo" not in line]
    assert not left, left[:5]


@pytest.mark.parametrize("batch_name", ["quiet", "loaded"])
def test_floods_of_output_cannot_fill_the_graders_memory(request, batch_name):
    batch = request.getfixturevalue(batch_name)
    peak_file = batch["root"] / PEAK_FILE
    assert peak_file.is_file(), f"the grading process did not end normally\n{batch['log'][-3000:]}"
    peak = int(peak_file.read_text()) * 1024
    # without the grader's limits each flood would leave 1.4 GB or more unread in it; a right
    # answer's largest message is 3.5 MB, and grading needs about half a gigabyte
    assert peak < 1.5 * 1024**3, f"the grader's memory peaked at {peak / 1024**3:.2f} GiB"
    for student in FLOODS:
        if student in batch["students"]:
            nb = read(batch["root"] / "autograded" / student / CH / f"{CH}.ipynb")
            assert len(json.dumps(nb)) < 2_500_000, student  # what was kept of it is cut
            # each cell ended within its own limits, not by the kernel's wall-clock limit
            assert "wall-clock limit" not in json.dumps(nb), student


def test_a_kernel_that_keeps_the_grader_waiting_is_stopped_within_its_cells_limits(quiet):
    def said(student, grade_id):
        nb = read(quiet["root"] / "autograded" / student / CH / f"{CH}.ipynb")
        return json.dumps(cell(nb, grade_id).outputs)

    # an interrupt it ignores: the cell ends at its time limit, and the kernel, still busy, is
    # stopped before the next cell
    assert "CellTimeoutError" in said("ignores_interrupts_and_sleeps", TARGET)
    assert "did not stop when it was interrupted" in said("ignores_interrupts_and_sleeps",
                                                          "test_ppv_from_prevalence")
    # a message over the limit closes the grader's connection: the kernel is stopped before
    # the next cell, which says why
    assert "the grader's connection to the kernel was closed" in said(
        "floods_display_far_over_the_limit", "test_ppv_from_prevalence")
    # output without end while a check calls it: the check's time limit still holds
    assert "did not finish within the cell's time limit" in said(
        "prints_forever_when_called", "test_ppv_from_prevalence")


def test_huge_outputs_are_cut(quiet):
    path = quiet["root"] / "autograded" / "huge_image_and_json_outputs" / CH / f"{CH}.ipynb"
    assert path.stat().st_size < 2_000_000, path.stat().st_size


def test_invented_grade_cells_earn_nothing_and_change_no_maximum(quiet):
    with quiet["course"].gradebook() as gb:
        sub = gb.find_submission(CH, "invented_grade_cell")
        honest = gb.find_submission(CH, "honest_a")
        assert sub.max_score == honest.max_score
        assert "bonus" not in {g.name for g in sub.notebooks[0].grades}


def test_the_grading_log_names_the_restored_metadata(quiet):
    assert "nbgrader metadata restored from the gradebook" in quiet["log"] or \
        "nbgrader metadata the instructor did not release" in quiet["log"]


def test_reading_attempts_found_nothing(quiet):
    nb = read(quiet["root"] / "autograded" / "reads_classmates_project_and_home" / CH
              / f"{CH}.ipynb")
    printed = "".join(o.get("text", "") for o in cell(nb, TARGET).outputs)
    assert "no canary" in printed and "honest_a" not in printed, printed[:2000]
    assert json.dumps(nbg(cell(nb, TARGET)))  # the cell kept its (restored) metadata


@pytest.mark.parametrize("batch_name", ["quiet", "loaded"])
def test_no_kernel_reaches_the_next_or_the_process_it_was_forked_from(request, batch_name):
    batch = request.getfixturevalue(batch_name)

    def printed(student):
        nb = read(batch["root"] / "autograded" / student / CH / f"{CH}.ipynb")
        return "".join(o.get("text", "") for o in cell(nb, TARGET).outputs)

    plants, looks = printed("zygote_1_plants"), printed("zygote_2_looks")
    assert "planted" in plants and "left" in plants, plants[:2000]
    assert int(plants.split("planted", 1)[1].split()[0]) >= 3, plants[:500]  # it could write
    assert "REACHED" not in plants, plants[:3000]
    assert "looked; found nothing" in looks, looks[:3000]
    log = batch["log"]  # graded in this order, by the same grading process
    assert log.index("zygote_1_plants") < log.index("zygote_2_looks")


@pytest.mark.parametrize("batch_name", ["quiet", "loaded"])
def test_a_kernel_cannot_swap_or_add_to_the_sockets_the_grader_connects_to(request, batch_name):
    batch = request.getfixturevalue(batch_name)
    nb = read(batch["root"] / "autograded" / "swaps_its_sockets" / CH / f"{CH}.ipynb")
    printed = "".join(o.get("text", "") for o in cell(nb, TARGET).outputs)
    assert printed.count("no renamed") >= 3 and "no write" in printed, printed[:2000]
    assert "SWAPPED" not in printed, printed[:2000]
