"""The grading executor on its own: a notebook's outputs do not depend on how the machine's
load cut the kernel's output into messages."""

from __future__ import annotations

import json
import re

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from conftest import need_sandbox
from medai_lessons.grading import plain
from nbtools import UNCAP


def _executor():
    need_sandbox()
    from medai_lessons.grading.execute import ExecuteGradedWork

    return ExecuteGradedWork(timeout=120)


def test_a_cells_output_is_one_output_per_stream_however_it_arrived(tmp_path):
    # the kernel sends each flushed piece as its own message, as a busy machine does
    source = ("import sys, time\n"
              "for i in range(4):\n"
              "    print('line', i, flush=True)\n"
              "    print('warn', i, file=sys.stderr, flush=True)\n"
              "    time.sleep(0.3)\n")
    nb = new_notebook(cells=[new_code_cell(source), new_code_cell("print('a', flush=True)\n"
                                                                  "import time; time.sleep(0.3)\n"
                                                                  "print('b\\rc')")])
    out, _ = _executor().preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    first = out.cells[0].outputs
    assert [(o.output_type, o.name) for o in first] == [("stream", "stdout"),
                                                         ("stream", "stderr")], first
    assert first[0].text == "".join(f"line {i}\n" for i in range(4))
    assert first[1].text == "".join(f"warn {i}\n" for i in range(4))
    second = out.cells[1].outputs
    assert len(second) == 1 and second[0].text == "a\nc\n", second
    nbformat.validate(out)


def test_restoring_the_structure_warns_about_changed_metadata_only(tmp_path, caplog):
    import logging

    from conftest import COURSE
    from medai_lessons.course import GradingCourse
    from medai_lessons.grading.sanitize import RestoreStructure

    ch = "ch01_background"
    course = GradingCourse.create(tmp_path / "c", COURSE, [ch])
    released = nbformat.read(course.generate(ch) / f"{ch}.ipynb", 4)
    resources = {"nbgrader": {"db_url": course.db_url, "notebook": ch, "assignment": ch}}
    step = RestoreStructure()
    step.log = logging.getLogger("restore-test")
    with caplog.at_level(logging.WARNING, logger="restore-test"):
        step.preprocess(nbformat.from_dict(released), resources)
    mine = [r.getMessage() for r in caplog.records if r.name == "restore-test"]
    assert mine == []  # an honest submission: nothing to say
    tampered = nbformat.from_dict(released)
    test_cell = next(c for c in tampered.cells
                     if c.metadata.get("nbgrader", {}).get("points"))
    grade_id, points = test_cell.metadata.nbgrader.grade_id, test_cell.metadata.nbgrader.points
    test_cell.metadata.nbgrader.points = 99
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="restore-test"):
        step.preprocess(tampered, resources)
    assert test_cell.metadata.nbgrader.points == points
    assert [r.getMessage() for r in caplog.records if r.name == "restore-test"] == [
        f"cell {grade_id}: nbgrader metadata restored from the "
        "gradebook (points)"]


def _pub_sub(tmp_path, context, sndhwm=1000):
    import zmq

    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.sndhwm = sndhwm
    address = f"ipc://{tmp_path}/iopub"
    pub.bind(address)
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(address)
    for _ in range(500):  # until the subscription has reached the publisher
        pub.send(b"ping")
        if sub.poll(20):
            break
    else:
        raise AssertionError("no subscription")
    while sub.poll(100):
        sub.recv()
    return pub, sub


def _received(sub, wait_ms=500) -> list[bytes]:
    got = []
    while sub.poll(wait_ms):
        got.append(sub.recv())
    return got


def test_a_kernel_that_sends_a_message_over_the_limit_is_disconnected_before_it_is_read(
        tmp_path):
    import zmq
    from zmq.utils.monitor import recv_monitor_message

    from medai_lessons.grading import remote

    context = remote.grader_context()
    pub, sub = _pub_sub(tmp_path, context)
    monitor = sub.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        assert sub.getsockopt(zmq.MAXMSGSIZE) == remote.MAX_MESSAGE_BYTES
        pub.send(b"x" * (remote.MAX_MESSAGE_BYTES + 1))
        pub.send(b"after")
        assert monitor.poll(30_000), "the kernel's connection was not closed"
        assert recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
        assert _received(sub, 200) == []  # neither the oversized message nor what followed
    finally:
        sub.disable_monitor()
        monitor.close(0)
        pub.close(0)
        sub.close(0)
        context.term()


def test_a_socket_the_grader_does_not_read_holds_only_a_few_messages(tmp_path):
    import time

    from medai_lessons.grading import remote

    context = remote.grader_context()
    # the kernel's side keeps at most 50 for this connection here (a kernel keeps 1000)
    pub, sub = _pub_sub(tmp_path, context, sndhwm=50)
    try:
        for i in range(300):  # 300 MB in all, sent while the grader reads nothing
            pub.send(b"%d " % i + b"m" * 1_000_000)
            time.sleep(0.003)
        time.sleep(0.5)
        got = _received(sub)
        # what the grader's side held, what the kernel's side held, what was in between
        assert 0 < len(got) <= remote.RECEIVE_QUEUE + 50 + 5, len(got)
    finally:
        pub.close(0)
        sub.close(0)
        context.term()


def test_output_after_many_test_requests_still_reaches_the_notebook(tmp_path):
    # 300 calls from a test cell: over a thousand messages that the notebook's own connection
    # does not read while the test runs; the next cell's output and status must not be lost
    answer = new_code_cell("def f(x):\n    return x + 1\n")
    test = new_code_cell("for i in range(300):\n    assert f(i) == i + 1\nprint('checked')\n")
    test.metadata["nbgrader"] = {"grade": True, "grade_id": "test_f", "points": 1,
                                 "solution": False, "locked": True, "schema_version": 3}
    after = new_code_cell("print('after the tests')\nf(1)")
    # and the other way round: a thousand messages the test cells' connection does not read
    noisy = new_code_cell("from IPython.display import display\n"
                          "for i in range(1500):\n    display(i)\n")
    again = new_code_cell("assert f(1) == 2\nprint('checked again')\n")
    again.metadata["nbgrader"] = dict(test.metadata["nbgrader"], grade_id="test_f_again")
    nb = new_notebook(cells=[answer, test, after, noisy, again])
    out, _ = _executor().preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    assert [o.get("text") for o in out.cells[4].outputs] == ["checked again\n"], \
        out.cells[4].outputs
    assert [o.get("text") for o in out.cells[1].outputs] == ["checked\n"], out.cells[1].outputs
    outputs = out.cells[2].outputs
    assert [o.output_type for o in outputs] == ["stream", "execute_result"], outputs
    assert outputs[0].text == "after the tests\n" and outputs[1].data["text/plain"] == "2"


GENERATOR = """
import json, keras
from medai_lessons.grading import plain as _plain

def build_generator(latent_dim):
    return keras.Sequential([keras.Input((latent_dim,)), keras.layers.Dense(8),
                             keras.layers.Dense(28 * 28), keras.layers.Reshape((28, 28, 1)),
                             keras.layers.UpSampling2D(2), keras.layers.MaxPooling2D(2),
                             keras.layers.Activation("tanh")])

_real = getattr(_plain._keras_model, "real", _plain._keras_model)

def _forge(model, enc):  # what the kernel sends instead of the model it built
    text = json.dumps(_real(model, enc))
    for old, new in CHANGES:
        text = text.replace(old, new)
    return json.loads(text)

_forge.real = _real
_plain._keras_model = _forge
"""
def _auc_metrics(count: int) -> list:
    """A forgery's change: a compile configuration of ``count`` AUCs of a million thresholds
    (8 MB each, held by no Keras variable)."""
    return [('"compile": null', '"compile": ' + json.dumps(plain.encode({
        "optimizer": "adam", "loss": "mean_squared_error", "loss_weights": None,
        "metrics": [{"module": "keras.metrics", "class_name": "AUC", "registered_name": None,
                     "config": {"num_thresholds": 1_000_000, "multi_label": True,
                                "name": f"auc{i}"}} for i in range(count)],
        "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
        "jit_compile": False})))]


#: forged generators: 700 M parameters with no weights sent (2.8 GB to build), no parameters
#: but 70 M numbers per image when the check runs it on 8 noise vectors (2.3 GB), and a
#: compile configuration of metrics that hold gigabytes
FORGERIES = {
    "parameters": [('["units", 8]', '["units", 900000]'),
                   ('{"__tuple__": [null, 8]}', '{"__tuple__": [null, 900000]}'),
                   ('"weights": [{', '"weights": [], "unused": [{')],
    "activations": [('[2, 2]', '[300, 300]')],
    # 150 AUCs of a million thresholds each: 1.2 GB that no Keras variable holds
    "metrics": _auc_metrics(150),
}
PEAK_SCRIPT = """
import sys, nbformat
from medai_lessons.grading.execute import ExecuteGradedWork
nb = nbformat.read(sys.argv[1], as_version=4)
out, _ = ExecuteGradedWork(timeout=120, iopub_timeout=15).preprocess(
    nb, {"metadata": {"path": sys.argv[2]}})
nbformat.write(out, sys.argv[1])
import resource
own = resource.getrusage(resource.RUSAGE_SELF)
print(own.ru_utime + own.ru_stime)
print(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
"""


def _graded_in_a_process_of_its_own(cells, tmp_path) -> tuple[int, list[str]]:
    """(the grading process's peak memory in kB, each cell's output and errors as text)."""
    peak, _, texts = _graded_with_costs(cells, tmp_path)
    return peak, texts


def _graded_with_costs(cells, tmp_path) -> tuple[int, float, list[str]]:
    """(the grading process's peak memory in kB, the CPU seconds it used itself, each cell's
    output and errors as text)."""
    import subprocess
    import sys

    path = tmp_path / "submission.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    run = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path), str(tmp_path)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    out = nbformat.read(path, as_version=4)
    return int(run.stdout.split()[-1]), float(run.stdout.split()[-2]), [
        "".join(o.get("text", "") + o.get("evalue", "") + "".join(o.get("traceback", []))
                for o in c.outputs) for c in out.cells]


def _test_cell(source: str, grade_id: str):
    test = new_code_cell(source)
    test.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "points": 1,
                                 "solution": False, "locked": True, "schema_version": 3}
    return test


def test_forged_models_from_a_kernel_cost_the_grader_neither_memory_nor_the_other_tests(
        tmp_path):
    need_sandbox()
    cells = []
    for name, changes in FORGERIES.items():
        cells.append(new_code_cell(f"CHANGES = {changes!r}\n" + GENERATOR))
        cells.append(_test_cell("from medai_lessons.grading.ch05 import check_build_generator\n"
                                "check_build_generator(build_generator)\n", f"test_{name}"))
    honest = new_code_cell("_plain._keras_model = _real\n")  # the forgery undone: full marks
    cells += [honest, new_code_cell(cells[-1].source, metadata=dict(cells[-1].metadata))]
    peak_kib, texts = _graded_in_a_process_of_its_own(cells, tmp_path)
    assert peak_kib < 1.5 * 1024**2, f"the grader peaked at {peak_kib:,} kB"
    # the model runner rebuilds it first, and meets its memory limit
    assert re.search("rebuilding the model (needed more memory|did not finish)", texts[1]), \
        texts[1][-2000:]
    assert "numbers per sample is too large to run" in texts[3], texts[3][-2000:]
    assert "rebuilding the model" in texts[5], texts[5][-2000:]
    assert "Error" not in texts[7], texts[7][-2000:]  # the forgery undone: graded as usual


#: generators within every bound of what the grader rebuilds, that are slow or large to *run*
COSTLY = """
import keras

def build_generator(latent_dim):
    x = inputs = keras.Input((latent_dim,))
    for layer in LAYERS():
        x = layer(x)
    return keras.Model(inputs, x)
"""
SLOW = """
def LAYERS():  # a recurrent layer over 50,176 steps, one after the other: about a minute
    # (a 100 x 100 convolution over 1400 x 1400 positions is slow too, but on some processors
    # TensorFlow then asks for 15 GB and the runner ends before its CPU limit)
    return [keras.layers.Dense(28 * 28), keras.layers.Reshape((28 * 28, 1)),
            keras.layers.UpSampling1D(64), keras.layers.SimpleRNN(4),
            keras.layers.Dense(28 * 28), keras.layers.Reshape((28, 28, 1)),
            keras.layers.Activation("tanh")]
"""
LARGE = """
def LAYERS():  # one attention layer over 6272 steps: 8 x 6272 x 6272 scores
    return [keras.layers.Dense(784 * 8), keras.layers.Reshape((6272, 1)),
            lambda x: keras.layers.Attention()([x, x]), keras.layers.Reshape((28, 28, 8)),
            keras.layers.Dense(1, activation="tanh")]
"""
HONEST = """
def LAYERS():
    return [keras.layers.Dense(7 * 7 * 16), keras.layers.Reshape((7, 7, 16)),
            keras.layers.Conv2DTranspose(8, 3, 2, "same", activation="relu"),
            keras.layers.Conv2DTranspose(1, 3, 2, "same", activation="tanh")]
"""
COPIED = HONEST + """
_honest = LAYERS

def LAYERS():  # the honest images, copied 4096 times along the batch axis
    def copies(x):
        x = keras.layers.Concatenate(axis=0)([x] * 4)
        for _ in range(10):
            x = keras.layers.Concatenate(axis=0)([x, x])
        return x
    return [*_honest(), copies]
"""


def test_models_slow_or_large_to_run_cost_the_grader_neither_cpu_nor_memory(tmp_path):
    # small to describe and to rebuild, so the grader accepts them; the check then runs
    # them, in the model runner: before it, the first took the grader 150 s of CPU (on a
    # convolution of 40 x 40) and the second 3.3 GB
    need_sandbox()
    check = ("from medai_lessons.grading.ch05 import check_build_generator\n"
             "check_build_generator(build_generator)\n")
    cells = []
    for name, layers in (("slow", SLOW), ("large", LARGE), ("copied", COPIED),
                         ("honest", HONEST)):
        cells += [new_code_cell(COSTLY + layers), _test_cell(check, f"test_{name}")]
    peak_kib, cpu, texts = _graded_with_costs(cells, tmp_path)
    assert peak_kib < 1.5 * 1024**2, f"the grader peaked at {peak_kib:,} kB"
    assert cpu < 60, f"the grader used {cpu:.0f} s of CPU itself"
    # refused at the runner's CPU or memory limit, or because TensorFlow ended the runner
    # when an allocation failed (it does on some processors)
    ended = "did not finish within the grader's limits"
    assert re.search(f"running the model used more than 20 s of CPU|{ended}", texts[1]), \
        texts[1][-2000:]
    assert re.search(f"more memory than the grader's limit|{ended}", texts[3]), texts[3][-2000:]
    assert "an output of shape (32768, 28, 28, 1)" in texts[5], texts[5][-2000:]
    assert "Error" not in texts[7], texts[7][-2000:]  # an honest model is run as before


def test_models_cheap_enough_to_rebuild_do_not_pile_up_in_the_grader(tmp_path):
    # each model is within the rebuild limits, but the models of one test are garbage in
    # cycles once it ends: before they were collected after each test, two dozen tests' worth
    # made the grader hold 2 GB
    need_sandbox()
    check = ("from medai_lessons.grading.ch05 import check_build_generator\n"
             "check_build_generator(build_generator)\n")
    cells = [new_code_cell(f"CHANGES = {_auc_metrics(3)!r}\n" + GENERATOR)]
    cells += [_test_cell(check, f"test_{i}") for i in range(24)]
    peak_kib, texts = _graded_in_a_process_of_its_own(cells, tmp_path)
    assert all("Error" not in text for text in texts[1:]), texts
    assert peak_kib < 1.5 * 1024**2, f"the grader peaked at {peak_kib:,} kB"


#: ``build_mlp`` compiled with metrics given by name: a configuration of short strings, but
#: Keras makes an object behind each name when a check (or the first fit) builds them; before
#: the runner built them first, 5000 AUCs took the grader 140 s of CPU and 5.3 GB, full marks
MLP = """
import keras

def build_mlp(n_features):
    model = keras.Sequential([keras.Input((n_features,)),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", **COMPILE)
    return model
"""
NAMED_METRICS = {
    "aucs": {"metrics": ["auc"] * 5000},
    "weighted": {"metrics": ["accuracy"], "weighted_metrics": ["auc", "precision"] * 1500},
    "mixed": {"metrics": ["auc", "recall", "precision", "mse", "accuracy"] * 1000},
    "honest": {"metrics": ["accuracy", "auc"]},
}


def test_metrics_named_by_the_thousand_cost_the_grader_little(tmp_path):
    need_sandbox()
    check = ("from medai_lessons.grading.ch06 import check_build_mlp\n"
             "check_build_mlp(build_mlp)\n")
    cells = []
    for name, compile_args in NAMED_METRICS.items():
        cells += [new_code_cell(f"COMPILE = {compile_args!r}\n" + MLP),
                  _test_cell(check, f"test_{name}")]
    peak_kib, cpu, texts = _graded_with_costs(cells, tmp_path)
    for k in (1, 3, 5):
        assert re.search("rebuilding the model (used more than|took|did not finish)",
                         texts[k]), texts[k][-2000:]
    assert "Error" not in texts[7], texts[7][-2000:]  # two metrics by name, graded as before
    assert cpu < 60, f"the grader used {cpu:.0f} s of CPU itself"
    assert peak_kib < 1.5 * 1024**2, f"the grader peaked at {peak_kib:,} kB"


def _pasted_reference(*names: str) -> str:
    """The course's reference functions as a notebook's own code (the grading kernel's copies
    of the references only raise)."""
    import inspect

    from medai_lessons.nn import gan

    return "\n".join(inspect.getsource(getattr(gan, name)) for name in names)


#: ``train_step`` that updates nothing, with the probe the grader runs in the kernel replaced by
#: one that forges its report (the checker's own judging of forged reports:
#: tests/test_checkers_ch05.py)
STEP = """
import numpy as np
import tensorflow as tf
import medai_lessons.grading.probes as probes

def train_step(generator, discriminator, g_opt, d_opt, real_images, latent_dim):
    return tf.constant(1.0), tf.constant(1.0)

_real_probe = probes.train_step_probe

def _forged(step, spec):
    out = _real_probe(step, spec)
    out["log"] = [["d_opt", [["d", i] for i in range(out["d_count"])]],
                  ["g_opt", [["g", i] for i in range(out["g_count"])]]]
    out["d_after"] = [w + 1e-3 for w in out["d_after"]]
    out["g_after"] = [w + 1e-3 for w in out["g_after"]]
    return out

probes.train_step_probe = _forged
"""

#: the course's own sigmoid, with the own-implementation report replaced (a red-team helper,
#: round 7: it passed the hidden test)
COURSE_CODE = """
import medai_lessons.grading.probes as probes
from medai_lessons.metrics import sigmoid_of as sigmoid
probes.own_implementation_report = lambda func: []
"""
#: the loss probe's report forged: the expected value and gradients of the discriminator loss,
#: computed without the learner's function
FORGER = """
def _forged(loss_fn, arrays):
    real, fake = (np.asarray(a, np.float64) for a in arrays)
    value = np.mean(np.logaddexp(0, -real)) + np.mean(np.logaddexp(0, fake))
    grads = [-1 / (1 + np.exp(real)) / len(real), 1 / (1 + np.exp(-fake)) / len(fake)]
    return {"is_tensor": True, "type": "EagerTensor", "repr": "", "value": value,
            "grads": grads}
"""
#: a loss that only raises, with the loss probe replaced by one that computes the expected
#: value and gradients itself (round 7: it passed), reached another way than by its name
FORGED_LOSS_PROBE = """
import sys
import numpy as np

def discriminator_loss(real_logits, fake_logits):
    raise NotImplementedError("not written")
""" + FORGER + """
m = sys.modules["medai_lessons.grading." + "probes"]
m.loss_value_and_gradients = _forged
"""
#: a course function inside an object of the learner's: the kernel's report sees no code to
#: read, the notebook's text does (the course's own sigmoid_of is now a stub while grading)
WRAPPED = """
from medai_lessons.metrics import logits_from_probabilities

class _Sigmoid:
    __call__ = staticmethod(logits_from_probabilities)

sigmoid = _Sigmoid()
"""
HIDDEN = ("import importlib, medai_lessons.grading.fresh as _fresh\n"
          "_g = importlib.reload(_fresh).grading()\n")


def test_probes_replaced_in_the_kernel_earn_nothing(tmp_path):
    # the probes run in the learner's kernel: an answer cell that replaces them, or reaches
    # them at all, gets no probe run; checks of plain data are graded as ever
    need_sandbox()
    cells = [new_code_cell(COURSE_CODE),
             _test_cell(HIDDEN + "_g.check_sigmoid(sigmoid, strict=True)\n", "test_sigmoid"),
             _test_cell(HIDDEN + "_g.assert_own_implementation(sigmoid, 'sigmoid')\n",
                        "test_sigmoid_own"),
             new_code_cell(FORGED_LOSS_PROBE),
             _test_cell(HIDDEN + "_g.check_discriminator_loss(discriminator_loss)\n",
                        "test_discriminator_loss"),
             new_code_cell(STEP),
             _test_cell(HIDDEN + "_g.check_train_step(train_step)\n", "test_train_step"),
             new_code_cell("def tanh(z):\n    e = np.exp(-2 * np.abs(z))\n"
                           "    return np.sign(z) * (1 - e) / (1 + e)\n"),
             _test_cell(HIDDEN + "_g.check_tanh(tanh)\n"
                        "_g.assert_own_implementation(tanh, 'tanh')\n", "test_tanh")]
    peak_kib, cpu, texts = _graded_with_costs(cells, tmp_path)
    # the course's own sigmoid is a stub while grading, and the text says whose it is
    assert "sigmoid_of is not available while grading" in texts[1], texts[1][-2000:]
    assert "sigmoid: failed on case 'own implementation'" in texts[2], texts[2][-2000:]
    assert "makes 'sigmoid' the course's medai_lessons.metrics.sigmoid_of" in texts[2]
    for k, name in ((4, "discriminator_loss"), (6, "train_step")):
        assert f"{name}: not graded" in texts[k], texts[k][-2000:]
        # the lines are named, from all three cells that reach the probes
        for line in ("import medai_lessons.grading.probes as probes", "m = sys.modules"):
            assert line in texts[k], texts[k][-2000:]
    # plain data, graded in the grader, and an own implementation decided on the text: passes
    assert texts[8] == "", texts[8][-2000:]
    assert peak_kib < 1.5 * 1024**2, f"the grader peaked at {peak_kib:,} kB"
    assert cpu < 60, f"the grader used {cpu:.0f} s of CPU itself"


#: a module that forges the loss probe's report, written into the kernel's working folder under
#: an allowed module's name by each of SHADOWS and imported: the reading sees a string and an
#: allowed import (it passed before the grading kernel took its folder off the import path)
SHADOW_MODULE = """
import sys
import numpy as np

print("the shadow module ran")
""" + FORGER + """
sys.modules["medai_lessons.grading.probes"].loss_value_and_gradients = _forged
"""
SHADOWS = {
    # a third-party name that is not installed, written with pathlib
    "not_installed": "from pathlib import Path\nPath('seaborn.py').write_text(SHADOW)\n"
                     "import seaborn\n",
    # an installed package that no kernel has imported yet, with open()
    "installed_package": "with open('wfdb.py', 'w') as f:\n    f.write(SHADOW)\n"
                         "import wfdb\n",
    # a standard module not imported yet, copied in from a temporary file
    "standard_module": "import shutil, tempfile\n"
                       "with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f:"
                       "\n    f.write(SHADOW)\nshutil.copy(f.name, 'statistics.py')\n"
                       "from statistics import mean\n",
}


@pytest.mark.parametrize("shadow", sorted(SHADOWS))
def test_a_module_the_notebook_writes_is_never_imported(tmp_path, shadow):
    need_sandbox()
    import base64

    # the module's text travels encoded, as a student's would: the reading sees a string only
    encoded = base64.b64encode(SHADOW_MODULE.encode()).decode()
    cells = [new_code_cell("def discriminator_loss(real_logits, fake_logits):\n"
                           "    raise NotImplementedError('not written')\n"),
             new_code_cell(f"import base64\nSHADOW = base64.b64decode('{encoded}').decode()\n"
                           + SHADOWS[shadow]),
             _test_cell(HIDDEN + "_g.check_discriminator_loss(discriminator_loss)\n",
                        "test_discriminator_loss")]
    _, _, texts = _graded_with_costs(cells, tmp_path)
    assert "the shadow module ran" not in "".join(texts), texts[1][-2000:]
    assert "not graded" not in texts[2], "the reading saw it: the test proves nothing"
    assert "NotImplementedError: not written" in texts[2], texts[2][-2000:]


def test_an_exercise_wrapping_the_courses_code_fails_and_probes_still_run(tmp_path):
    # a notebook that reaches no probe: the wrapped course function fails the hidden test on
    # the notebook's text, and a right loss passes through the probe as before
    need_sandbox()
    cells = [new_code_cell(WRAPPED),
             _test_cell(HIDDEN + "_g.assert_own_implementation(sigmoid, 'sigmoid')\n",
                        "test_sigmoid"),
             new_code_cell("import tensorflow as tf\n"
                           + _pasted_reference("discriminator_loss")),
             _test_cell(HIDDEN + "_g.check_discriminator_loss(discriminator_loss)\n",
                        "test_discriminator_loss")]
    _, texts = _graded_in_a_process_of_its_own(cells, tmp_path)
    assert "sigmoid: failed on case 'own implementation'" in texts[1], texts[1][-2000:]
    assert "(through sigmoid -> _Sigmoid -> logits_from_probabilities)" in texts[1], \
        texts[1][-2000:]
    assert texts[3] == "", texts[3][-2000:]


#: the kernel's own cut undone (``nbtools.UNCAP``), and one message of many parts made by hand
BY_HAND = UNCAP + """
kernel = get_ipython().kernel
big = b"m" * 30_000_000  # each part under the grader's limit of 33 MB per part

def frames(msg_type, content, ident):
    msg = kernel.session.msg(msg_type, content, parent=kernel.get_parent())
    return kernel.session.serialize(msg, ident=ident) + [big] * 40  # 1.2 GB in one message
"""
#: one message of many parts each under the per-part limit, sent from the kernel
MULTIPART = {
    # to the notebook's own connection, while an answer cell runs
    "iopub_in_an_answer_cell": BY_HAND + """
kernel.iopub_socket.send_multipart(frames("stream", {"name": "stdout", "text": "x"},
                                          b"stream.stdout"))
import time; time.sleep(5)
""",
    # to the test cells' connection, from a thread, while a test calls the learner's function
    "iopub_from_a_thread_in_a_test": BY_HAND + """
import threading, time
def flood():
    time.sleep(2)
    kernel.iopub_socket.send_multipart(frames("stream", {"name": "stdout", "text": "x"},
                                              b"stream.stdout"))
threading.Thread(target=flood, daemon=True).start()
def f(x):
    time.sleep(0.2)
    return x + 1
""",
    # to the grader's input connection, addressed as the kernel's input requests are
    "stdin_to_the_graders_identity": BY_HAND + """
ident = kernel._parent_ident["shell"]
for _ in range(2):
    kernel.stdin_socket.send_multipart(frames("input_request", {"prompt": "", "password": False},
                                              ident if isinstance(ident, list) else [ident]))
import time; time.sleep(5)
""",
}


@pytest.mark.parametrize("attack", MULTIPART)
def test_one_message_of_many_parts_costs_the_grader_nothing(attack, tmp_path):
    # ZeroMQ bounds each part and the number of messages held, not the parts of one message:
    # the grader never connects to the kernel itself, and the relay between them passes on
    # only small messages, with a memory limit of its own
    need_sandbox()
    cells = [new_code_cell("def f(x):\n    return x + 1\n"), new_code_cell(MULTIPART[attack]),
             _test_cell("import time\nend = time.time() + 10\nwhile time.time() < end:\n"
                        "    assert f(1) == 2\n", "test_f"),
             new_code_cell("print('after')")]
    peak_kib, texts = _graded_in_a_process_of_its_own(cells, tmp_path)
    assert peak_kib < 1.5 * 1024**2, f"the grader peaked at {peak_kib:,} kB"
    # the kernel is stopped, and the notebook says why
    assert "connection to the kernel was closed" in texts[3], texts


#: small messages of many JSON values: each value becomes a Python object in the grader
AMPLIFIED = {
    # one message of 8 M empty dicts in its metadata (32 MB): more values than the relay passes
    "metadata_of_millions_of_dicts": UNCAP + """
from IPython.display import publish_display_data
publish_display_data({"text/plain": "x"}, metadata={"m": [{}] * 8_000_000})
""",
    # within the relay's limit, through the kernel's own cut: many JSON outputs of 0.9 M values
    # which the cell's output limit must count by their size
    "many_json_outputs_within_the_limits": """
from IPython.display import display
for _ in range(12):
    display({"application/json": {"v": [[]] * 450_000}}, raw=True)
""",
}


@pytest.mark.parametrize("attack", AMPLIFIED)
def test_messages_of_many_json_values_cost_the_grader_little(attack, tmp_path):
    need_sandbox()
    cells = [new_code_cell("def f(x):\n    return x + 1\n"), new_code_cell(AMPLIFIED[attack]),
             _test_cell("assert f(1) == 2\n", "test_f"), new_code_cell("print('after')")]
    peak_kib, texts = _graded_in_a_process_of_its_own(cells, tmp_path)
    assert peak_kib < 1.5 * 1024**2, f"the grader peaked at {peak_kib:,} kB"
    if attack == "metadata_of_millions_of_dicts":
        assert "connection to the kernel was closed" in texts[3], texts
        assert "JSON values" in texts[3], texts
    else:  # kept only up to the cell's output limit; the rest of the notebook is graded
        assert "further output of this cell dropped" in texts[1], texts[1][-500:]
        assert texts[3] == "after\n", texts


def test_a_cells_streams_are_joined_by_the_grader_not_by_nbclient():
    # nbclient's joining handles a carriage return in time quadratic in a line's length (a
    # red-team helper's one-line print of two million characters held the grader most of an
    # hour): the grader joins them itself, the same way (tests/test_grading_limits.py)
    need_sandbox()
    from medai_lessons.grading.execute import ExecuteGradedWork

    assert ExecuteGradedWork().coalesce_streams is False
    cell = new_code_cell("import sys\nprint('a' * 300_000, end='')\nsys.stdout.flush()\n"
                         "print('\\rb', end='')\nsys.stderr.write('e\\n')\nprint('\\nc')")
    nb = new_notebook(cells=[cell])
    out, _ = ExecuteGradedWork(timeout=120).preprocess(nb, {"metadata": {"path": "."}})
    streams = [(o.name, o.text) for o in out.cells[0].outputs if o.output_type == "stream"]
    assert streams == [("stdout", "b\nc\n"), ("stderr", "e\n")]
