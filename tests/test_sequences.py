"""Chapter 4's sequence helpers (medai_lessons.sequences) and its plots (plotting_seq)."""

from __future__ import annotations

import keras
import matplotlib
import numpy as np
import pytest

from medai_lessons import models, plotting_seq, sequences
from medai_lessons.data.ecg_synthetic import ecg_strip
from medai_lessons.nn.rnn import gru_forward

matplotlib.use("Agg")


def test_rhythm_dataset_has_the_counts_asked_for_in_that_class_order():
    ds = sequences.rhythm_dataset({"AF": 3, "NSR": 5}, seed=1, duration=2.0)
    assert ds.class_names == ("AF", "NSR")
    assert np.bincount(ds.y).tolist() == [3, 5]
    assert ds.X.shape == (8, 500)
    again = sequences.rhythm_dataset({"AF": 3, "NSR": 5}, seed=1, duration=2.0)
    np.testing.assert_array_equal(ds.X, again.X)
    with pytest.raises(ValueError, match="unknown rhythm"):
        sequences.rhythm_dataset({"VT": 2})


def test_ecg_to_sequence_resamples_standardises_and_frames():
    strip = ecg_strip("NSR", duration=10.0, fs=250.0, seed=0)
    X = sequences.ecg_to_sequence(np.stack([strip.signal, 3 * strip.signal]), 250.0,
                                  target_fs=50, frame=10)
    assert X.shape == (2, 50, 10) and X.dtype == np.float32
    flat = X.reshape(2, -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(flat.std(axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(X[0], X[1], atol=1e-4)  # the amplitude is removed
    assert sequences.ecg_to_sequence(strip.signal, 250.0, frame=7).shape == (1, 71, 7)


def test_balanced_class_weights_make_every_class_weigh_the_same():
    y = np.array([0] * 6 + [1] * 3 + [3])
    w = sequences.balanced_class_weights(y, 4)
    # class 2 is absent: three classes share the 10 examples' weight
    assert w == pytest.approx({0: 10 / 18, 1: 10 / 9, 2: 0.0, 3: 10 / 3})
    totals = [w[c] * np.sum(y == c) for c in (0, 1, 3)]
    np.testing.assert_allclose(totals, totals[0])
    assert sum(w[c] * np.sum(y == c) for c in range(4)) == pytest.approx(len(y))


@pytest.mark.parametrize("y", [[0, 0, 1, 2, 2, 2], [0, 0, 0, 2], [1, 1, 1, 1, 2]])
def test_balanced_class_weights_are_scikit_learns_rule(y):
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    expected = compute_class_weight("balanced", classes=present, y=np.asarray(y))
    w = sequences.balanced_class_weights(y, 3)
    assert [w[int(c)] for c in present] == pytest.approx(expected.tolist())
    assert all(w[c] == 0.0 for c in range(3) if c not in present)


def test_multiclass_report_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    r = sequences.multiclass_report(y_true, y_pred, ("a", "b", "c", "d"))
    assert r["recall"] == pytest.approx({"a": 2 / 3, "b": 1.0, "c": 0.0, "d": 0.0})
    assert r["precision"] == pytest.approx({"a": 2 / 3, "b": 2 / 3, "c": 0.0, "d": 0.0})
    f1 = [2 / 3, 0.8, 0.0]  # class "d" has no case and is not averaged
    assert r["macro_f1"] == pytest.approx(np.mean(f1))
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["confusion"].tolist() == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    text = sequences.format_multiclass_report(r, "toy")
    assert "macro-F1 0.489" in text and "c 0.00 (n=1)" in text and "d " not in text


@pytest.mark.parametrize(("call", "message"), [
    (lambda: sequences.balanced_class_weights([0, 1, 2, 3], 2), r"holds class 2, but there are 2"),
    (lambda: sequences.balanced_class_weights([0, -1], 2), r"holds class -1"),
    (lambda: sequences.multiclass_report([0, 1], np.array([[0.9, 0.1], [0.2, 0.8]]), "ab"),
     r"y_pred has shape \(2, 2\), one column per class: .*argmax\(axis=1\)"),
    (lambda: sequences.multiclass_report([0, 1], [0.2, 0.9], "ab"), r"not probabilities"),
    (lambda: sequences.multiclass_report([0, 1, 1], [0, 1], "ab"), r"3 labels but y_pred has 2"),
])
def test_class_labels_that_are_not_class_indices_say_what_to_pass(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_training_and_evaluation_on_an_easy_problem():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=120)
    X = (rng.normal(size=(120, 6, 2)) + 2.0 * (2 * y - 1)[:, None, None]).astype("float32")
    split = {"train": (X[:80], y[:80]), "val": (X[80:100], y[80:100]),
             "test": (X[100:], y[100:])}
    keras.utils.set_random_seed(0)
    result = sequences.fit_and_evaluate(models.build_gru_classifier(6, 2, 2), split, ("a", "b"),
                                        name="toy", epochs=8, lr=0.01, verbose=False,
                                        progress=False)
    assert result["report"]["accuracy"] == 1.0
    assert result["epochs"] <= 8 and result["seconds"] > 0
    assert set(result["history"]) >= {"loss", "val_loss"}


def test_predict_classes_in_batches_equals_one_call():
    model = models.build_cnn1d_classifier(8, 1, 3)
    X = np.random.default_rng(1).normal(size=(7, 8, 1)).astype("float32")
    expected = np.asarray(model(X)).argmax(axis=1)
    np.testing.assert_array_equal(sequences.predict_classes(model, X, batch_size=3), expected)
    with pytest.raises(ValueError, match="nothing to predict: x holds no rows"):
        sequences.predict_classes(model, X[:0])


def test_gradient_profile_finds_a_model_that_only_reads_the_last_step():
    inputs = keras.Input(shape=(5, 2))
    last = keras.layers.Lambda(lambda x: x[:, -1, :])(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(last))
    X = np.random.default_rng(2).normal(size=(4, 5, 2))
    profile = sequences.input_gradient_profile(model, X, np.array([0, 1, 2, 0]))
    np.testing.assert_allclose(profile, [0, 0, 0, 0, 1], atol=1e-7)


def test_recurrent_readout_reproduces_the_model_and_its_gru():
    keras.utils.set_random_seed(3)
    model = models.build_gru_classifier(7, 2, 3)
    X = np.random.default_rng(3).normal(size=(2, 7, 2)).astype("float32")
    H, P = sequences.recurrent_readout(model, X, gru_forward)
    assert H.shape == (2, 7, 64) and P.shape == (2, 7, 3)
    np.testing.assert_allclose(P[:, -1], np.asarray(model(X)), atol=1e-5)
    states = keras.layers.GRU(64, return_sequences=True)
    states.build((None, None, 2))
    states.set_weights(model.layers[0].get_weights())
    np.testing.assert_allclose(H, np.asarray(states(X)), atol=1e-5)


def _stage(folder, record="100"):
    folder.mkdir(parents=True, exist_ok=True)
    for ext in ("hea", "dat", "atr"):
        (folder / f"{record}.{ext}").write_text("")
    return folder


def test_find_mitdb_prefers_the_cache_then_a_staged_shared_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDAI_DATA_DIR", str(tmp_path / "cache"))
    start = tmp_path / "course" / "source" / "ch04_rnn"
    start.mkdir(parents=True)
    outside = sequences.find_mitdb(start)  # a machine may stage one above tmp_path
    assert outside is None or not outside.is_relative_to(tmp_path)
    staged = _stage(tmp_path / "shared" / "data" / "mitdb")
    assert sequences.find_mitdb(start) == staged
    cached = _stage(tmp_path / "cache" / "mitdb", record="101")
    assert sequences.find_mitdb(start) == cached
    # a cache with other records only does not hide the staged record asked for
    assert sequences.find_mitdb(start, record="100") == staged
    _stage(cached, record="100")
    assert sequences.find_mitdb(start, record="100") == cached
    elsewhere = sequences.find_mitdb(start, record="999")
    assert elsewhere is None or not elsewhere.is_relative_to(tmp_path)


def test_synthetic_beats_are_normal_and_ventricular_windows():
    X, y, names = sequences.synthetic_beats(n_strips=6, seed=0)
    assert X.shape[1] == 187 and len(X) == len(y) > 50
    assert set(np.unique(y)) == {names.index("N"), names.index("V")}
    assert 0.02 < np.mean(y == names.index("V")) < 0.3
    assert X.min() >= 0.0 and X.max() <= 1.0


# --- plots -------------------------------------------------------------------------------------


def test_plots_draw_the_panels_they_promise():
    strips = [ecg_strip(c, duration=4.0, seed=0) for c in ("NSR", "PVC")]
    assert len(plotting_seq.plot_ecg_strips(strips, seconds=3).axes) == 2
    X, y, names = sequences.synthetic_beats(n_strips=2, seed=1)
    assert len(plotting_seq.plot_beats(X, y, names, fs=125, pre=62).axes) == 2  # N and V only
    fig = plotting_seq.plot_confusion_matrices({"a": np.eye(3, dtype=int),
                                                "b": np.ones((3, 3), int)}, "xyz", suptitle="t")
    assert len(fig.axes) == 2 and fig._suptitle.get_text() == "t"
    H = np.tanh(np.random.default_rng(0).normal(size=(10, 30)))
    P = np.full((10, 3), 1 / 3)
    fig = plotting_seq.plot_hidden_states(np.zeros(500), 250, H, 0.2, P, "abc", units=8)
    heat = fig.axes[1].collections[0].get_array()
    assert heat.size == 8 * 10  # the 8 most active units over 10 steps
    matplotlib.pyplot.close("all")
