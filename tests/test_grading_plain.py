"""The pieces of the sandboxed grader that need no kernel: the plain-data codec, the test
cell's free names and hidden part, the reference stubs of the grading package copy, the seeded
cases' salt, and the sandbox itself (started for real where bubblewrap can run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras  # imported before any test captures output: TensorFlow keeps the streams it finds
import numpy as np
import pandas as pd
import pytest

from conftest import need_sandbox
from medai_lessons.grading import core, plain, remote, sandbox


def roundtrip(value):
    return plain.decode(json.loads(json.dumps(plain.encode(value))))


@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, float("inf"), "text", [1, [2, "x"]], (1, (2.0, None)),
    {"a": 1, 2: [3]}, np.float32(1.5), np.int64(-7), np.bool_(True),
    np.arange(12.0).reshape(3, 4).T, np.array(0.0), np.array(["ab", "c"]),
    np.zeros((0, 3)), np.array([1 + 2j]), np.array(["2024-01-02"], dtype="datetime64[D]"),
])
def test_plain_values_travel_unchanged(value):
    back = roundtrip(value)
    assert type(back) is type(value)
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and back.shape == value.shape
        assert np.array_equal(back, value)
    elif isinstance(value, float) and np.isnan(value):
        assert np.isnan(back)
    else:
        assert back == value


def test_nan_travels():
    assert np.isnan(roundtrip(float("nan")))


def test_tables_travel_with_index_names_gaps_and_text():
    df = pd.DataFrame({"a": [1.0, np.nan, 3.0], "site": ["x", None, "z"], "n": [1, 2, 3]},
                      index=pd.Index([10, 20, 30], name="patient"))
    back = roundtrip(df)
    assert back.equals(df) and back.index.name == "patient"
    series = pd.Series([0.1, 0.2], index=["p", "q"], name="risk")
    back = roundtrip(series)
    assert back.equals(series) and back.name == "risk"


class Liar(float):
    def __eq__(self, other):
        return True


@pytest.mark.parametrize("value", [Liar(1.0), np.array([object()], dtype=object),
                                   type("Lazy", (), {"__array__": lambda s, *a, **k: 1})()])
def test_objects_with_code_of_their_own_are_not_plain(value):
    with pytest.raises(plain.PlainDataError):
        plain.encode(value)
    handle = plain.encode(value, handle=lambda obj: plain.Handle(7, "x.Liar", False))
    assert plain.decode(handle) == plain.Handle(7, "x.Liar", False)


@pytest.mark.parametrize("message", [
    {"__ndarray__": "AAAA", "dtype": "|O", "shape": [1]},              # object dtype
    {"__ndarray__": "AAAAAAAAAAA=", "dtype": "<f8", "shape": [3]},     # bytes and shape differ
    {"__ndarray__": "not base64!", "dtype": "<f8", "shape": [1]},
    {"__float__": "__import__('os')"},
    {"__pickle__": "gASV"},
    {"__dict__": [[{"__ndarray__": "", "dtype": "<f8", "shape": [0]}, 1]]},  # unhashable key
])
def test_malformed_or_foreign_messages_are_refused(message):
    with pytest.raises((plain.PlainDataError, ValueError, TypeError)):
        plain.decode(message)


def test_nesting_has_a_limit():
    deep = []
    for _ in range(plain.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(plain.PlainDataError):
        roundtrip(deep)


def test_keras_models_travel_as_config_and_weights_and_code_layers_are_refused():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="relu")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    back = roundtrip(model)
    assert [w.shape for w in back.get_weights()] == [(3, 2), (2,)]
    assert np.allclose(back.get_weights()[0], model.get_weights()[0])
    assert back.loss == "binary_crossentropy"
    lam = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda x: x * 2)])
    with pytest.raises(Exception, match="(?i)lambda|safe"):
        roundtrip(lam)


def test_a_test_cells_free_names_are_the_learners_names():
    source = ("from medai_lessons.grading import check_sigmoid\ncheck_sigmoid(sigmoid)\n"
              "import importlib, medai_lessons.grading.fresh as _fresh\n"
              "_g = importlib.reload(_fresh).grading()\n_g.check_tanh(tanh, strict=True)\n"
              "print(len([1]))\n")
    assert remote.free_names(source) == ["sigmoid", "tanh"]


def test_hidden_tests_are_replaced_by_one_line():
    source = "check(f)\n### BEGIN HIDDEN TESTS\nsecret(f)\n### END HIDDEN TESTS\nprint('ok')"
    shown = remote.hide_hidden_tests(source)
    assert "secret" not in shown and "check(f)" in shown and "print('ok')" in shown
    assert "hidden tests ran here" in shown


def test_the_grading_copy_stubs_every_reference_and_keeps_the_rest():
    copy = sandbox.grading_copy_of_package()
    refs = sandbox.reference_functions()
    assert sum(map(len, refs.values())) >= 30
    code = f"""
import importlib, inspect, sys
sys.path.insert(0, {str(copy.parent)!r})
failures = []
for module, names in {refs!r}.items():
    m = importlib.import_module(module)
    assert m.__file__.startswith({str(copy)!r}), m.__file__
    for name in names:
        f = getattr(m, name)
        required = [p for p in inspect.signature(f).parameters.values()
                    if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
        try:
            f(*[None] * len(required))
        except NotImplementedError as exc:
            assert "not available while grading" in str(exc)
        else:
            failures.append(name)
print("ok" if not failures else failures)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert out.stdout.strip().endswith("ok"), out.stdout[-2000:] + out.stderr[-2000:]


def test_seeded_cases_change_with_the_salt_and_only_then(monkeypatch):
    monkeypatch.setattr(core, "CASE_SALT", None)
    monkeypatch.delenv("MEDAI_CASE_SALT", raising=False)
    plain_draw = core.case_rng(5).normal(size=3)
    assert np.array_equal(plain_draw, np.random.default_rng(5).normal(size=3))
    monkeypatch.setattr(core, "CASE_SALT", 123)
    salted = core.case_rng(5).normal(size=3)
    assert not np.array_equal(salted, plain_draw)
    assert np.array_equal(salted, core.case_rng(5).normal(size=3))


def test_the_sandbox_hides_files_network_and_keeps_its_limits(tmp_path):
    need_sandbox()
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    box = sandbox.Sandbox(tmp_path / "box", sandbox.SandboxPolicy(memory_bytes=2 * 1024**3))
    code = f"""
import os, resource, socket
print("uid", os.getuid())
for path in [{str(secret)!r}, {str(sandbox._package_dir().parent / "course")!r}, "/root"]:
    try:
        print(path, sorted(os.listdir(path)) if os.path.isdir(path) else open(path).read())
    except OSError as exc:
        print(path, "refused", type(exc).__name__)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    print("network yes")
except OSError:
    print("network no")
try:
    bytearray(3 * 1024**3)
    print("memory yes")
except MemoryError:
    print("memory no")
print("nproc", resource.getrlimit(resource.RLIMIT_NPROC)[0])
"""
    out = subprocess.run(box.command([sys.executable, "-c", code]), capture_output=True,
                         text=True, timeout=120)
    text = out.stdout
    assert "SECRET" not in text and "refused" in text, text + out.stderr
    assert "network no" in text and "memory no" in text, text
    if os.geteuid() == 0:
        assert "uid 0" not in text and "nproc 256" in text, text


def test_without_a_sandbox_the_grader_refuses_and_says_how_to_go_on(tmp_path, monkeypatch):
    from conftest import COURSE
    from medai_lessons import instructor
    from medai_lessons.course import CourseError, GradingCourse

    monkeypatch.setattr(sandbox, "availability", lambda: (False, "bubblewrap is not installed"))
    course = GradingCourse.create(tmp_path, COURSE, ["ch01_background"])
    course.submit("ch01_background", "alice",
                  COURSE / "source" / "ch01_background" / "ch01_background.ipynb")
    with pytest.raises(CourseError, match="bubblewrap is not installed.*--unsandboxed"):
        instructor.autograde(GradingCourse.open(tmp_path), log=lambda *a, **k: None)
    unsandboxed = GradingCourse.open(tmp_path, sandbox=False)
    assert unsandboxed.config().ExecuteGradedWork.sandbox is False
    assert GradingCourse.open(tmp_path).config().ExecuteGradedWork.get("sandbox", True)


def test_all_of_a_sandboxs_processes_share_one_memory_limit(tmp_path):
    ok, why = sandbox.availability()
    if not ok or os.geteuid() != 0:
        pytest.skip(why or "control groups are made only by a grader running as root")
    box = sandbox.Sandbox(tmp_path / "box", sandbox.SandboxPolicy(total_memory_bytes=1024**3),
                          strip_package=False)
    if not box.cgroup_files():
        pytest.skip("no writable control-group file system here")
    code = """
import os, time
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        x = bytearray(400 * 1024**2)
        for j in range(0, len(x), 4096):
            x[j] = 1
        time.sleep(2)
        os.kill(os.getpid(), 9)
    kids.append(pid)
print([os.waitpid(k, 0)[1] for k in kids])
"""
    out = subprocess.run(box.command([sys.executable, "-c", code]), capture_output=True,
                         text=True, timeout=120)
    statuses = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(statuses) == 4, out.stdout + out.stderr
    memory = next(g for g in box.cgroups if "memory" in g or g.count("/") == 4)
    files = {p.name: p.read_text() for p in Path(memory).iterdir()
             if p.name in ("memory.failcnt", "memory.max_usage_in_bytes", "memory.events")}
    box.remove_cgroups()
    assert not any(os.path.exists(g) for g in box.cgroups)
    if "memory.failcnt" in files:  # version 1: the limit was hit, and held
        assert int(files["memory.failcnt"]) > 0, files
        assert int(files["memory.max_usage_in_bytes"]) <= 1024**3 + 64 * 1024**2, files
    else:  # version 2
        assert "oom_kill 0" not in files["memory.events"], files


def test_control_groups_a_killed_grader_left_behind_are_removed_and_busy_ones_kept():
    import secrets
    import time

    if os.geteuid() != 0:
        pytest.skip("control groups are made only by a grader running as root")
    top = Path("/sys/fs/cgroup")
    parent = top / "pids" if (top / "pids" / "cgroup.procs").is_file() else top
    if not os.access(parent, os.W_OK) or not (parent / "cgroup.procs").is_file():
        pytest.skip("no writable control-group file system here")
    # a group of the test's own holds the groups it sweeps: the machine's are not touched
    base = parent / f"medai-sweep-test-{secrets.token_hex(4)}"
    empty, busy = base / "medai-grading-1", base / "medai-grading-2"
    for group in (base, empty, busy):
        group.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (busy / "cgroup.procs").write_text(str(sleeper.pid))
        assert sandbox.sweep_stale_cgroups(older_than=3600, top=base) == 0  # too new: kept
        assert empty.is_dir()
        time.sleep(0.1)
        assert sandbox.sweep_stale_cgroups(older_than=0, top=base) == 1
        assert not empty.exists(), "an empty group was left"
        assert busy.is_dir(), "a group that holds a process was removed"
    finally:
        sleeper.kill()
        sleeper.wait()
        for group in (empty, busy, base):
            for _ in range(50):  # the killed process may take a moment to leave its group
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


def test_a_forged_table_too_wide_is_refused_before_any_column_is_built(monkeypatch):
    built = []
    real = pd.Series
    monkeypatch.setattr(pd, "Series", lambda *a, **k: built.append(1) or real(*a, **k))
    forged = {"__dataframe__": [[0, []]] * (plain.MAX_COLUMNS + 1),
              "index": {"values": [], "name": None}}
    with pytest.raises(plain.PlainDataError, match="too wide"):
        plain.decode(forged)
    assert len(built) <= 1, f"{len(built)} columns built first"  # the index, at most


# --- Keras models forged to make the grader allocate or compute what their message did not carry

def _forged(model, **changes) -> dict:
    """``model``'s message with text replacements in its JSON (``old=new`` pairs, as JSON text),
    the way a kernel can send any configuration it likes."""
    text = json.dumps(plain.encode(model))
    for old, new in changes.values():
        assert old in text, old
        text = text.replace(old, new)
    return json.loads(text)


def _no_weights(message: dict) -> dict:
    return {**message, "weights": []}


@pytest.mark.parametrize("case", ["wide_dense_no_weights", "wide_dense_small_weights",
                                  "embedding_table", "compiled_no_weights"])
def test_a_model_whose_configuration_makes_more_parameters_than_sent_is_refused_unbuilt(case):
    # each would make the grader allocate gigabytes from a message of a few kilobytes
    small = keras.Sequential([keras.Input((7,)), keras.layers.Dense(5)])
    if case == "wide_dense_no_weights":  # 25000 x 25000 weights: 2.5 GB
        message = _no_weights(_forged(small, width=('[null, 7]', '[null, 25000]'),
                                      units=('["units", 5]', '["units", 25000]')))
    elif case == "wide_dense_small_weights":  # the small model's weights sent with a big config
        message = _forged(small, units=('["units", 5]', '["units", 25000]'),
                          width=('[null, 7]', '[null, 25000]'))
    elif case == "embedding_table":  # 900,000 x 64 table from a two-number input
        emb = keras.Sequential([keras.Input((2,)), keras.layers.Embedding(10, 8)])
        message = _forged(emb, rows=('["input_dim", 10]', '["input_dim", 900000]'),
                          cols=('["output_dim", 8]', '["output_dim", 64]'))
    else:  # compiled: Adam's slots would double what building allocates
        small.compile(optimizer="adam", loss="mse")
        message = _no_weights(_forged(small, width=('[null, 7]', '[null, 12000]'),
                                      units=('["units", 5]', '["units", 12000]')))
    with pytest.raises(plain.PlainDataError, match="more parameters than the weights sent"):
        plain.decode(message)
    # the budget ends with the message: an honest model afterwards is rebuilt as before
    assert [w.shape for w in roundtrip(small).get_weights()] == [(7, 5), (5,)]


@pytest.mark.parametrize("size", ["upsampling", "repeat"])
def test_a_model_without_parameters_whose_layers_output_too_much_is_refused(size):
    # no weights at all, but running it on 8 samples would need gigabytes in the grader
    if size == "upsampling":
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.UpSampling2D(2),
                                  keras.layers.MaxPooling2D(2)])
        message = _forged(model, up=('["size", {"__tuple__": [2, 2]}]',
                                     '["size", {"__tuple__": [300, 300]}]'),
                          down=('["pool_size", {"__tuple__": [2, 2]}]',
                                '["pool_size", {"__tuple__": [300, 300]}]'))
    else:
        model = keras.Sequential([keras.Input((30,)), keras.layers.RepeatVector(3),
                                  keras.layers.GlobalAveragePooling1D()])
        message = _forged(model, n=('["n", 3]', '["n", 900000]'))
    assert plain.decode(json.loads(json.dumps(plain.encode(model)))).count_params() == 0
    with pytest.raises(plain.PlainDataError, match="numbers per sample is too large"):
        plain.decode(message)


def test_a_model_of_too_many_layers_is_refused_before_it_is_rebuilt(monkeypatch):
    # rebuilding takes time per layer (quadratic for a long Sequential): refused unbuilt
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    message = plain.encode(model)
    layers = message["__keras_model__"]["__dict__"][2][1]["__dict__"]
    entry = next(e for e in layers if e[0] == "layers")
    dense = entry[1][1]
    entry[1] = entry[1][:1] + [json.loads(json.dumps(dense).replace('"dense"', f'"d{i}"'))
                               for i in range(plain.MAX_KERAS_OBJECTS)]
    built = []
    monkeypatch.setattr(keras.saving, "deserialize_keras_object",
                        lambda *a, **k: built.append(1))
    with pytest.raises(plain.PlainDataError, match="too large to rebuild"):
        plain.decode(json.loads(json.dumps(message)))
    assert built == []


def test_the_chapters_models_are_within_every_limit_with_room_to_spare():
    # the largest cases the checks build: the limits must never refuse an honest answer
    from medai_lessons import models

    for model in (models.build_xray_cnn((28, 28, 1), 2), models.build_generator(128),
                  models.build_discriminator((64, 64, 3)),
                  models.build_gru_classifier(180, 1, 2), models.build_mlp(30)):
        model.compile(optimizer="adam", loss="mse")
        back = roundtrip(model)
        assert back.count_params() == model.count_params()
        assert back.optimizer.__class__.__name__ == "Adam"
        assert plain._activations_per_sample(back) * 4 < plain.MAX_ACTIVATIONS, model.name
        config = plain.decode(plain.encode(model)["__keras_model__"])
        objects, largest = plain._survey_keras_config([config, model.get_compile_config()])
        assert objects * 4 < plain.MAX_KERAS_OBJECTS, model.name
        assert largest * 4 < plain.MAX_CONFIG_NUMBER, model.name


def test_a_compiled_model_whose_metric_would_allocate_too_much_is_refused():
    small = keras.Sequential([keras.Input((7,)), keras.layers.Dense(1, activation="sigmoid")])
    small.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(num_thresholds=200, name="auc")])
    assert roundtrip(small).get_compile_config()["metrics"]
    # a constructor that allocates before any shape is known: AUC lists its thresholds
    message = _forged(small, t=('["num_thresholds", 200]', '["num_thresholds", 500000000]'))
    with pytest.raises(plain.PlainDataError, match="configured with the number 500,000,000"):
        plain.decode(message)
    # within the number limit, its state still counts against the parameters sent
    message = _forged(small, t=('["num_thresholds", 200]', '["num_thresholds", 1000000]'))
    with pytest.raises(plain.PlainDataError, match="more parameters than the weights sent"):
        plain.decode(message)


def test_a_large_random_seed_is_not_mistaken_for_a_size():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.2, seed=20261207),
                              keras.layers.Dense(2, kernel_initializer=keras.initializers
                                                 .GlorotUniform(seed=2**31 - 1))])
    assert roundtrip(model).layers[0].seed == 20261207


def test_a_compiled_model_not_yet_built_still_travels():
    # the check then says what is missing (an input), instead of a failure to decode
    model = keras.Sequential([keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    back = roundtrip(model)
    assert not back.built and back.get_compile_config()["loss"] == "mse"


HOLD = """
import sys, time
from medai_lessons.grading import sandbox
print(sandbox.held_temp_dir(sys.argv[1]), flush=True)
time.sleep(120)
"""


def test_grading_folders_a_killed_grader_left_behind_are_removed_and_held_ones_kept(tmp_path):
    import time

    def holder(prefix):
        env = {**os.environ, "TMPDIR": str(tmp_path)}
        process = subprocess.Popen([sys.executable, "-c", HOLD, prefix], env=env,
                                   stdout=subprocess.PIPE, text=True)
        return process, Path(process.stdout.readline().strip())

    killed, killed_dir = holder("medai-job-")
    alive, alive_dir = holder("medai-grading-package-")
    try:
        (killed_dir / "submission.ipynb").write_text("{}")
        killed.kill()
        killed.wait()
        old, new, other = (tmp_path / "medai-runner-old", tmp_path / "medai-zygote-new",
                           tmp_path / "someone-elses")
        for folder in (old, new, other):
            folder.mkdir()
        os.utime(old, (time.time() - 2 * 86_400,) * 2)
        os.utime(other, (time.time() - 2 * 86_400,) * 2)
        assert sandbox.sweep_abandoned_temp_dirs(tmp_path) == 2
        assert not killed_dir.exists(), "a folder whose grader was killed was left"
        assert not old.exists(), "an old folder without a holder was left"
        assert alive_dir.is_dir(), "a folder a running grader holds was removed"
        assert new.is_dir() and other.is_dir()
    finally:
        alive.kill()
        alive.wait()
    assert sandbox.sweep_abandoned_temp_dirs(tmp_path) == 1  # its holder is gone now
    assert not alive_dir.exists()

