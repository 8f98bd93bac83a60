"""The synthetic ECG generator: determinism, shapes, and the physiology of each rhythm,
measured on the signal itself (rates, RR irregularity, P waves, f waves, PVC width and pause)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from medai_lessons.data import load_dataset
from medai_lessons.data.ecg_synthetic import RHYTHMS, ecg_strip, make_ecg_dataset

FS = 250


def clean(rhythm: str, seed: int, duration: float = 30.0):
    return ecg_strip(rhythm, duration=duration, fs=FS, noise=0.0, baseline_wander=0.0, seed=seed)


def detected_r_peaks(x: np.ndarray) -> np.ndarray:
    peaks, _ = find_peaks(x, height=0.5, distance=int(0.25 * FS))
    return peaks


def test_same_seed_same_strip_other_seed_other_strip():
    for rhythm in RHYTHMS:
        a = ecg_strip(rhythm, seed=11)
        b = ecg_strip(rhythm, seed=11)
        c = ecg_strip(rhythm, seed=12)
        np.testing.assert_array_equal(a.signal, b.signal)
        np.testing.assert_array_equal(a.r_peaks, b.r_peaks)
        assert not np.array_equal(a.signal, c.signal)


def test_strip_shape_units_and_names():
    s = ecg_strip("atrial fibrillation", duration=8, fs=500, seed=0)
    assert s.rhythm == "AF" and s.rhythm_name == "atrial fibrillation"
    assert s.signal.shape == (4000,) and s.signal.dtype == np.float32
    assert s.time[-1] == pytest.approx(7.998)
    assert s.source == "synthetic" and "McSharry" in s.citation
    with pytest.raises(ValueError, match="NSR"):
        ecg_strip("ventricular tachycardia")


@pytest.mark.parametrize(("rhythm", "low", "high"), [("NSR", 60, 100), ("SB", 40, 59),
                                                     ("ST", 101, 151)])
def test_sinus_rates_from_detected_beats(rhythm, low, high):
    for seed in range(4):
        s = clean(rhythm, seed, duration=20)
        peaks = detected_r_peaks(s.signal)
        rate = 60 / np.mean(np.diff(peaks) / FS)
        assert low <= rate <= high, (seed, rate)
        assert abs(len(peaks) - len(s.r_peaks)) <= 1


def test_af_is_irregular_and_sinus_is_regular():
    def rr_cv(rhythm, seed):
        rr = np.diff(detected_r_peaks(clean(rhythm, seed).signal)) / FS
        return rr.std() / rr.mean()

    for seed in range(4):
        assert rr_cv("AF", seed) > 0.15
        for rhythm in ("NSR", "SB", "ST"):
            assert rr_cv(rhythm, seed) < 0.06


def _pre_r_average(rhythm: str, seeds) -> np.ndarray:
    """Average of the 0.24-0.10 s before each normal beat that follows a long RR interval."""
    segments = []
    for seed in seeds:
        s = clean(rhythm, seed, duration=60)
        r = s.r_peaks
        for k in range(1, len(r)):
            long_rr = (r[k] - r[k - 1]) / FS > 0.7  # the previous T wave is over
            if long_rr and s.beat_types[k] == "N" and r[k] >= int(0.24 * FS):
                segments.append(s.signal[r[k] - int(0.24 * FS): r[k] - int(0.10 * FS)])
    assert len(segments) > 30
    return np.mean(segments, axis=0)


def test_p_waves_precede_sinus_beats_but_not_af_beats():
    for rhythm in ("NSR", "SB", "PVC"):
        avg = _pre_r_average(rhythm, range(6))
        assert avg.max() - avg.min() > 0.08, rhythm
    af = _pre_r_average("AF", range(6))
    assert af.max() - af.min() < 0.04  # f waves have no fixed timing: they average out


def test_af_has_a_fibrillatory_baseline():
    """Between T wave and next beat the sinus baseline is flat; in AF it oscillates at 4-9 Hz."""
    def tq_segments(rhythm):
        out = []
        for seed in range(6):
            s = clean(rhythm, seed, duration=60)
            for a, b in zip(s.r_peaks[:-1], s.r_peaks[1:], strict=True):
                lo, hi = a + int(0.5 * FS), b - int(0.25 * FS)
                if hi - lo >= FS // 10:
                    out.append(s.signal[lo:hi] - s.signal[lo:hi].mean())
        return np.concatenate(out)

    af = tq_segments("AF")
    assert af.std() > 0.02
    assert tq_segments("SB").std() < 0.01
    spectrum = np.abs(np.fft.rfft(af[: 4 * FS])) ** 2
    freqs = np.fft.rfftfreq(4 * FS, 1 / FS)
    in_band = spectrum[(freqs >= 3.5) & (freqs <= 10)].sum()
    assert in_band > 0.5 * spectrum[freqs > 0.5].sum()


def _qrs_width(x: np.ndarray, r: int) -> float:
    seg = np.abs(x[max(0, r - int(0.15 * FS)): r + int(0.15 * FS)])
    return float((seg > 0.5 * seg.max()).sum() / FS)


def test_pvcs_are_wide_premature_and_followed_by_a_compensatory_pause():
    n_pvc = 0
    for seed in range(6):
        s = clean("PVC", seed)
        kinds, r = s.beat_types, s.r_peaks
        assert "V" in kinds
        normal_rr = np.median([(r[k] - r[k - 1]) / FS for k in range(1, len(r))
                               if kinds[k] == "N" and kinds[k - 1] == "N"])
        n_width = np.median([_qrs_width(s.signal, r[k]) for k in range(len(r)) if kinds[k] == "N"])
        for k in range(1, len(r) - 1):
            if kinds[k] != "V":
                continue
            n_pvc += 1
            assert kinds[k - 1] == "N" and kinds[k + 1] == "N"
            assert (r[k] - r[k - 1]) / FS < 0.75 * normal_rr  # premature
            assert (r[k + 1] - r[k - 1]) / FS == pytest.approx(2 * normal_rr, rel=0.1)  # pause
            assert _qrs_width(s.signal, r[k]) > 2 * n_width  # wide
    assert n_pvc >= 6


def test_noise_and_baseline_wander_are_parameters():
    quiet = ecg_strip("NSR", noise=0.0, baseline_wander=0.0, seed=3)
    noisy = ecg_strip("NSR", noise=0.1, baseline_wander=0.0, seed=3)
    wandering = ecg_strip("NSR", noise=0.0, baseline_wander=0.5, seed=3)
    # Same seed, same beats: the difference is what the parameter added.
    added_noise = noisy.signal - quiet.signal
    assert added_noise.std() == pytest.approx(0.1, rel=0.1)
    assert abs(np.corrcoef(added_noise[:-1], added_noise[1:])[0, 1]) < 0.1  # white

    drift = wandering.signal - quiet.signal
    assert 0.3 < np.ptp(drift) <= 1.0 + 1e-6  # amplitude 0.5 mV
    spectrum = np.abs(np.fft.rfft(drift)) ** 2
    freqs = np.fft.rfftfreq(drift.size, 1 / quiet.fs)
    assert spectrum[freqs <= 0.6].sum() > 0.95 * spectrum.sum()  # slow


def test_dataset_is_deterministic_balanced_and_unpacks():
    X, y, names = make_ecg_dataset(4, duration=5, fs=100, seed=1)
    X2, y2, _ = make_ecg_dataset(4, duration=5, fs=100, seed=1)
    X3, _, _ = make_ecg_dataset(4, duration=5, fs=100, seed=2)
    assert names == RHYTHMS
    assert X.shape == (20, 500) and X.dtype == np.float32
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [4] * 5
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, X3)


def test_dataset_subset_of_rhythms_and_labels_match_the_strips():
    ds = make_ecg_dataset(3, rhythms=["AF", "sinus bradycardia"], duration=10, fs=FS, seed=0,
                          noise=0.0, baseline_wander=0.0)
    assert ds.class_names == ("AF", "SB")
    for x, label in zip(ds.X, ds.y, strict=True):
        rr = np.diff(detected_r_peaks(x)) / FS
        if ds.class_names[label] == "SB":
            assert 60 / rr.mean() < 60
        else:
            assert rr.std() / rr.mean() > 0.1


def test_load_dataset_prints_that_it_is_synthetic(capsys):
    ds = load_dataset("synthetic_ecg", n_per_class=1, duration=2, seed=0)
    out = capsys.readouterr().out
    assert ds.source == "synthetic"
    assert "SYNTHETIC" in out and "McSharry" in out


def test_patient_beats_resemble_their_own_patient_more_than_others():
    from medai_lessons.data.ecg_synthetic import make_patient_beats

    beats = make_patient_beats(n_patients=6, beats_per_patient=10, seed=3)
    assert beats.X.shape == (60, 187) and beats.X.dtype == np.float32
    assert np.allclose(beats.X.min(axis=1), 0) and np.allclose(beats.X.max(axis=1), 1)
    assert set(beats.y.tolist()) == {0, 1} and np.mean(beats.y) == pytest.approx(0.3)
    assert np.array_equal(np.unique(beats.patient_ids), np.arange(6))
    again = make_patient_beats(n_patients=6, beats_per_patient=10, seed=3)
    assert np.array_equal(beats.X, again.X)
    normal = beats.y == 0
    X, ids = beats.X[normal], beats.patient_ids[normal]
    d = np.linalg.norm(X[:, None] - X[None], axis=-1)
    same = ids[:, None] == ids[None]
    off_diagonal = ~np.eye(len(ids), dtype=bool)
    assert d[same & off_diagonal].mean() < 0.5 * d[~same].mean()
    with pytest.raises(ValueError, match="n_patients >= 2"):
        make_patient_beats(n_patients=1)
