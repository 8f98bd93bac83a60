"""The model runner: a learner's model that the grader rebuilt runs in a process of its own,
with limits, and gives the same outputs as the model itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from medai_lessons import models  # noqa: E402
from medai_lessons.grading import plain, runner  # noqa: E402


def rebuilt(model):
    """``model`` as the grader gets it from a kernel: calls of it go to the runner."""
    return plain.decode(json.loads(json.dumps(plain.encode(model))),
                        keras_guard=runner)


def functional(*layers, shape=(16,)):
    x = inputs = keras.Input(shape)
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def slow_generator(up: int = 50, kernel: int = 40):
    """Small to describe and to rebuild (81 k parameters, 3.9 M numbers per sample), slow to
    run: a 40 x 40 convolution over 1400 x 1400 positions."""
    return functional(keras.layers.Dense(28 * 28), keras.layers.Reshape((28, 28, 1)),
                      keras.layers.UpSampling2D(up), keras.layers.Conv2D(1, kernel, padding="same"),
                      keras.layers.AveragePooling2D(up), keras.layers.Activation("tanh"),
                      shape=(100,))


def long_recurrence(repeat: int):
    """Small to describe and to rebuild (83 k parameters), light to run, slow on any processor:
    a recurrent layer over 784 x ``repeat`` steps, one after the other (about 1 ms of CPU
    each for 8 samples)."""
    return functional(keras.layers.Dense(28 * 28), keras.layers.Reshape((28 * 28, 1)),
                      keras.layers.UpSampling1D(repeat), keras.layers.SimpleRNN(4),
                      keras.layers.Dense(28 * 28), keras.layers.Reshape((28, 28, 1)),
                      keras.layers.Activation("tanh"), shape=(100,))


def attention_generator(features: int = 8):
    """Small outputs (25 k numbers per sample), a large score matrix inside one layer:
    8 samples x 6272 x 6272 floats."""
    x = inputs = keras.Input((100,))
    x = keras.layers.Dense(784 * features)(x)
    x = keras.layers.Reshape((784 * features, 1))(x)
    x = keras.layers.Attention()([x, x])
    return keras.Model(inputs, keras.layers.Reshape((28, 28, features))(x))


def test_chapter_models_give_the_same_outputs_there_within_a_fraction_of_the_cpu_limit():
    rng = np.random.default_rng(0)
    cases = [(models.build_xray_cnn((28, 28, 1), 2), (4, 28, 28, 1)),
             (models.build_generator(100), (8, 100)),
             (models.build_discriminator((64, 64, 1)), (4, 64, 64, 1)),
             (models.build_gru_classifier(180, 1, 2), (4, 180, 1)),
             (models.build_mlp(30), (4, 30))]
    for model, shape in cases:
        x = rng.normal(size=shape).astype("float32")
        there = rebuilt(model)
        assert isinstance(there, keras.Model) and type(there) is not type(model)
        before = runner.runner().cpu_total
        np.testing.assert_allclose(there(x, training=False), model(x, training=False),
                                   rtol=1e-5, atol=1e-6)
        # the runner's CPU is counted for the summary of where grading time went
        assert runner.runner().cpu_total - before == pytest.approx(runner.runner().last_cpu)
        assert runner.runner().last_cpu < runner.CALL_CPU_SECONDS / 4, (model.name,
                                                                         runner.runner().last_cpu)


def test_a_rebuilt_model_inspects_and_serialises_as_the_model_it_was():
    model = models.build_mlp(7)
    there = rebuilt(model)
    assert isinstance(there, keras.Sequential)
    assert type(there).__name__ == type(model).__name__
    assert keras.saving.serialize_keras_object(there)["class_name"] == "Sequential"
    assert [type(layer) for layer in there.layers] == [type(layer) for layer in model.layers]
    assert there.count_params() == model.count_params()
    for method in ("predict", "evaluate", "fit", "train_on_batch"):
        with pytest.raises(runner.ModelRunFailed, match="does not"):
            getattr(there, method)(np.zeros((2, 7), "float32"))


def test_a_model_slow_to_run_stops_at_the_cpu_limit_and_the_next_one_still_runs(monkeypatch):
    monkeypatch.setattr(runner, "CALL_CPU_SECONDS", 2.0)
    slow = rebuilt(slow_generator())
    with pytest.raises(runner.ModelRunFailed, match="more than 2 s of CPU"):
        slow(np.ones((8, 100), "float32"))
    honest = models.build_mlp(5)
    x = np.ones((3, 5), "float32")
    np.testing.assert_allclose(rebuilt(honest)(x), honest(x), rtol=1e-5)  # a new runner


def test_a_model_large_to_run_fails_on_memory_and_the_grader_stays_small():
    import resource

    large = rebuilt(attention_generator())
    before = runner.runner()._process.pid
    with pytest.raises(runner.ModelRunFailed, match="memory"):
        large(np.ones((8, 100), "float32"))
    # whether TensorFlow's allocation failed there or the process was stopped, the next call
    # goes to a new runner (one whose allocation failed then failed honest models)
    assert runner.runner()._process.pid != before
    # the score matrix alone is 1.3 GB; the grader itself never held it
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 1.5 * 1024**2
    honest = models.build_mlp(5)
    x = np.ones((3, 5), "float32")
    np.testing.assert_allclose(rebuilt(honest)(x), honest(x), rtol=1e-5)


def test_a_runner_that_ends_mid_call_fails_that_call_only():
    import os
    import signal
    import threading

    slow = rebuilt(long_recurrence(8))
    runner.runner().run(json.dumps(keras.saving.serialize_keras_object(models.build_mlp(2))),
                        [], np.ones((1, 2), "float32"))  # started and ready
    process = runner.runner()._process
    threading.Timer(1.0, os.killpg, (process.pid, signal.SIGKILL)).start()
    with pytest.raises(runner.ModelRunFailed, match="ended with status"):
        slow(np.ones((8, 100), "float32"))
    honest = models.build_mlp(4)
    np.testing.assert_allclose(rebuilt(honest)(np.ones((2, 4), "float32")),
                               honest(np.ones((2, 4), "float32")), rtol=1e-5)


def test_an_answer_larger_than_a_check_needs_is_not_read(monkeypatch):
    monkeypatch.setattr(runner, "MAX_REPLY_BYTES", 10_000)
    wide = rebuilt(functional(keras.layers.Dense(4000)))
    with pytest.raises(runner.ModelRunFailed, match="larger than a check needs"):
        wide(np.ones((8, 16), "float32"))


def test_an_error_of_the_model_is_the_calls_answer():
    model = rebuilt(functional(keras.layers.Dense(3)))
    with pytest.raises(runner.ModelRunFailed, match="raised"):
        model(np.ones((2, 5), "float32"))  # 5 features where the model takes 16
    with pytest.raises(TypeError, match="inputs only"):
        model(np.ones((2, 16), "float32"), mask=None)


def test_the_runner_is_sandboxed_where_a_sandbox_starts():
    from conftest import need_sandbox

    need_sandbox()
    rebuilt(models.build_mlp(3))(np.ones((1, 3), "float32"))
    box = runner.runner()._box
    assert box is not None
    with open(f"/proc/{runner.runner()._process.pid}/cmdline", "rb") as f:
        assert b"bwrap" in f.read()


def test_without_a_sandbox_the_runner_still_has_its_limits(monkeypatch, tmp_path):
    from medai_lessons.grading import sandbox

    monkeypatch.setattr(sandbox, "availability", lambda: (False, "none in this test"))
    own = runner.ModelRunner()
    try:
        own.start()
        assert own._box is None
        with open(f"/proc/{own._process.pid}/limits") as f:
            limits = f.read()
        line = next(li for li in limits.splitlines() if li.startswith("Max address space"))
        assert str(runner.MEMORY_BYTES) in line, line
        model = models.build_mlp(3)
        out = own.run(json.dumps(keras.saving.serialize_keras_object(model)),
                      model.get_weights(), np.ones((2, 3), "float32"))
        np.testing.assert_allclose(out, model(np.ones((2, 3), "float32")), rtol=1e-5)
    finally:
        own.stop()


def test_a_runner_that_does_not_start_fails_the_call_and_says_so(monkeypatch, caplog):
    own = runner.ModelRunner()
    monkeypatch.setattr(runner, "START_SECONDS", 0.01)  # Keras takes seconds to import
    model = models.build_mlp(3)
    config = json.dumps(keras.saving.serialize_keras_object(model))
    own.start()
    first = own._process
    try:
        with caplog.at_level("ERROR", logger=runner.__name__):
            with pytest.raises(runner.ModelRunFailed, match="did not start"):
                own.run(config, model.get_weights(), np.ones((2, 3), "float32"))
        assert "did not start" in caplog.text
        assert first.poll() is not None  # that runner is gone; a new one is starting
        monkeypatch.setattr(runner, "START_SECONDS", 600.0)
        out = own.run(config, model.get_weights(), np.ones((2, 3), "float32"))
        np.testing.assert_allclose(out, model(np.ones((2, 3), "float32")), rtol=1e-5)
    finally:
        own.stop()


def test_an_answer_that_would_unpack_large_is_not_unpacked():
    # the runner's answers are never compressed: one that is (2 GB of zeros in 2 MB) is refused
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("y0.npy", "w", force_zip64=True) as member:
            chunk = bytes(64 * 1024**2)
            for _ in range(32):
                member.write(chunk)
    assert len(buffer.getvalue()) < 4 * 1024**2
    with pytest.raises(runner.ModelRunFailed, match="larger than a check needs"):
        runner._check_unpacked_size(buffer.getvalue())
    with pytest.raises(runner.ModelRunFailed, match="not readable"):
        runner._check_unpacked_size(b"not a zip")


def test_outputs_must_have_the_shape_the_model_declares():
    # copies along the batch axis keep the declared shape (None, 28, 28, 1): a check that reads
    # the outputs of 8 noise vectors would get 8 x 4096 images
    base = models.build_generator(100)
    x = keras.layers.Concatenate(axis=0)([base.outputs[0]] * 4)
    for _ in range(10):
        x = keras.layers.Concatenate(axis=0)([x, x])
    copied = rebuilt(keras.Model(base.inputs, x))
    with pytest.raises(runner.ModelRunFailed, match=r"an output of shape \(32768, 28, 28, 1\)"):
        copied(np.ones((8, 100), "float32"))


def forged_waiting_config(nodes: int, waiting: int, chain: int) -> dict:
    """A Functional configuration (the older list form of its nodes) that Keras rebuilds in
    quadratic time: ``waiting`` layers wait for a node of 'hub' that never comes, and a chain
    of ``chain`` nodes alternating between two layers makes the rebuild go round again and
    again; each round, each waiting layer's error message lists all ``nodes`` of 'hub'."""
    def layer(name, inbound):
        return {"module": "keras.layers", "class_name": "Activation", "registered_name": None,
                "config": {"name": name, "trainable": True, "dtype": "float32",
                           "activation": "linear"}, "name": name, "inbound_nodes": inbound}

    first = {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
             "config": {"batch_shape": [None, 1], "dtype": "float32", "sparse": False,
                        "name": "in"}, "name": "in", "inbound_nodes": []}
    hub = layer("hub", [[["in", 0, 0, {}]]] * nodes)
    stuck = [layer(f"w{k}", [[["hub", nodes, 0, {}]]]) for k in range(waiting)]
    a, b, previous, counts = [], [], ["in", 0, 0], {"a": 0, "b": 0}
    for j in range(chain):
        name = "b" if j % 2 == 0 else "a"
        (b if name == "b" else a).append([[*previous, {}]])
        previous = [name, counts[name], 0]
        counts[name] += 1
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "registered_name": "Functional",
            "config": {"name": "generator", "trainable": True,
                       "layers": [first, *stuck, layer("a", a), layer("b", b), hub],
                       "input_layers": [["in", 0, 0]], "output_layers": [previous]}}


def test_a_model_slow_to_rebuild_is_refused_before_the_grader_rebuilds_it():
    import time

    message = {"__keras_model__": plain.encode(forged_waiting_config(20_000, 50, 100)),
               "weights": [], "compile": None}
    began = time.process_time()
    with pytest.raises(plain.PlainDataError, match="rebuilding the model used more than"):
        plain.decode(json.loads(json.dumps(message)), keras_guard=runner)
    assert time.process_time() - began < runner.REBUILD_CPU_SECONDS  # 40 s in the grader before


def test_a_compile_configuration_large_to_rebuild_is_refused():
    # each AUC keeps a million thresholds outside any Keras variable: 150 of them held 1.2 GB
    message = plain.encode(models.build_mlp(5))
    message["compile"] = plain.encode({
        "optimizer": "adam", "loss": "mean_squared_error", "loss_weights": None,
        "metrics": [{"module": "keras.metrics", "class_name": "AUC", "registered_name": None,
                     "config": {"num_thresholds": 1_000_000, "multi_label": True,
                                "name": f"auc{i}"}} for i in range(150)],
        "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1,
        "jit_compile": False})
    with pytest.raises(plain.PlainDataError, match="rebuilding the model"):
        plain.decode(json.loads(json.dumps(message)), keras_guard=runner)


def test_the_models_of_one_test_cell_share_one_cpu_budget(monkeypatch):
    monkeypatch.setattr(runner, "CELL_CPU_SECONDS", 2.0)
    slow = rebuilt(slow_generator())
    mlp = models.build_mlp(3)
    honest = rebuilt(mlp)
    x = np.ones((2, 3), "float32")
    runner.runner().new_cell()
    try:
        with pytest.raises(runner.ModelRunFailed, match="more than 2 s of CPU"):
            slow(np.ones((8, 100), "float32"))
        with pytest.raises(runner.ModelRunFailed, match="used up"):
            honest(x)  # nothing left in this cell
        runner.runner().new_cell()
        np.testing.assert_allclose(honest(x), mlp(x), rtol=1e-5)  # a new cell: runs again
    finally:
        runner.runner()._cell_left = None


def test_the_kernel_stops_a_runner_whose_watchdog_cannot_run():
    # the watchdog is a Python thread; an operation that held the interpreter would keep it
    # from running, so each request also sets the process's CPU limit, which the kernel keeps
    import signal
    import subprocess
    import sys

    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); import runner; "
            "runner._cpu_limit(time.process_time() + 1)\nwhile True: pass")
    run = subprocess.run([sys.executable, "-c", code, str(Path(runner.__file__).parent)],
                         timeout=120)
    assert run.returncode == -signal.SIGXCPU
    assert runner._exit_status(run.returncode, None) == runner.CPU_EXIT


def test_time_a_test_waits_on_the_runner_is_not_taken_from_its_kernel_calls():
    # a runner that must start again (the submission before ended it) takes seconds that
    # the learner's kernel calls of that test cell keep
    import time

    from medai_lessons.grading.remote import RemoteKernel

    kernel = object.__new__(RemoteKernel)
    kernel.deadline = time.monotonic() + 600
    own = runner.runner()
    own.new_cell()
    start = time.monotonic()
    before = kernel._remaining()
    rebuilt(models.build_mlp(3))(np.ones((1, 3), "float32"))
    after = kernel._remaining()
    spent = time.monotonic() - start
    assert own.waited > 0
    # the kernel calls lose the time spent outside the runner, never the time waited on it
    # (bracketed by the clock, so it holds however busy the machine is)
    assert after >= before - (spent - own.waited) - 1e-6, (before, after, spent, own.waited)
    own.waited = 100.0
    assert kernel._remaining() > 100
    own._cell_left = None


def test_rebuilding_the_same_model_again_still_shows_its_memory():
    # the runner reused the memory the last rebuild had freed, so the same model (500 AUCs
    # named in its compile configuration) measured 86, 45, 0 and 0 MB in turn; freed memory
    # now goes back to the system before each measure
    model = models.build_mlp(30)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["auc"] * 500)
    config = json.dumps(keras.saving.serialize_keras_object(model))
    compiled = json.dumps(model.get_compile_config())
    grown = [runner.runner().rebuild(config, compiled, model.get_weights())[1]
             for _ in range(4)]
    assert grown[0] > 32 * 1024**2, grown
    assert min(grown) > grown[0] / 3, grown
