"""Chinese terms in figures: drawn with a font that has the glyphs, or left out, never boxes."""

from __future__ import annotations

import warnings

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from medai_lessons import plotting  # noqa: E402


def _draw(text: str) -> list[str]:
    fig, ax = plt.subplots()
    ax.set_title(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    plt.close(fig)
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_a_chinese_label_is_drawn_with_a_font_that_has_it(monkeypatch):
    name = plotting.cjk_font()
    if name is None:
        pytest.skip("no font with Chinese glyphs on this machine (Debian: fonts-noto-cjk)")
    monkeypatch.setitem(plt.rcParams, "font.family", ["sans-serif"])
    assert _draw("卷积神经网络"), "the default font alone should miss the glyphs"
    assert plotting.use_cjk_font() == name
    assert plt.rcParams["font.family"] == ["sans-serif", name]  # behind the default font
    assert _draw("convolution (卷积神经网络)") == []
    assert plotting.term("convolution", "卷积") == "convolution (卷积)"


def test_without_such_a_font_the_label_keeps_only_english(monkeypatch):
    monkeypatch.setattr(plotting, "cjk_font", lambda: None)
    assert plotting.use_cjk_font() is None
    assert plotting.term("convolution", "卷积") == "convolution"
    assert _draw(plotting.term("convolution", "卷积")) == []
