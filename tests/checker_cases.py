"""The tests every chapter's checkers get, built from the chapter's own tables of answers.

A chapter's test file lists realistic wrong answers (checker, answer, the case it must fail on,
a fragment of the message: a regular expression) and right answers written another way
(checker, answer), then takes its tests from here:

    test_checker_rejects_realistic_mistake = rejects_mistakes(WRONG_VERSIONS)
    test_every_exercise_has_three_wrong_versions = has_wrong_versions(CHAPTER, WRONG_VERSIONS)
    test_checker_accepts_correct_variant = accepts_variants(CORRECT_VARIANTS)
    test_builder_hints_point_at_the_idea = hints_without_layer_code(BUILDER_MISTAKES)

pytest collects them under those names, each case in visible and in strict mode.
"""

from __future__ import annotations

import re

import pytest

from nbtools import failure_pattern

STRICT = pytest.mark.parametrize("strict", [False, True], ids=["visible", "strict"])


def exercise_of(checker) -> str:
    """``check_sigmoid`` -> ``sigmoid``."""
    return checker.__name__.removeprefix("check_")


def rejects_mistakes(wrong_versions):
    """Each wrong answer fails on its case, with a first line that names the exercise and the
    case, a message matching its fragment, and a hint (or the exception it raised)."""

    @STRICT
    @pytest.mark.parametrize(("checker", "wrong", "case", "fragment"), wrong_versions,
                             ids=[w.__name__ for _, w, _, _ in wrong_versions])
    def test(checker, wrong, case, fragment, strict):
        with pytest.raises(AssertionError, match=failure_pattern(exercise_of(checker), case)) \
                as info:
            checker(wrong, strict=strict)
        message = str(info.value)
        assert re.search(fragment, message), message
        # a hint that says something besides the size of the difference
        assert re.search(r"hint: (?!\(largest difference)\S", message) \
            or "raised" in message.splitlines()[0], message

    return test


def has_wrong_versions(exercises, wrong_versions, at_least: int = 3):
    """Every exercise of the chapter has at least ``at_least`` realistic wrong versions."""

    def test():
        counts = dict.fromkeys(exercises, 0)
        for checker, *_ in wrong_versions:
            counts[exercise_of(checker)] += 1
        assert set(counts) == set(exercises), f"wrong versions of unknown exercises: {counts}"
        assert all(n >= at_least for n in counts.values()), counts

    return test


def accepts_variants(variants):
    """Right answers written another way pass, visible and strict."""

    @STRICT
    @pytest.mark.parametrize(("checker", "variant"), variants,
                             ids=[v.__name__ for _, v in variants])
    def test(checker, variant, strict):
        assert checker(variant, strict=strict) is None

    return test


#: a layer's or a model's code, which the hint of a model builder's checker must not spell out
#: (issue 22): it names the property that is wrong and points at the idea instead
LAYER_CODE = re.compile(
    r"keras\.(?:layers\.|Sequential\(|Input\()"
    r"|\b(?:Dense|Conv2D|Conv2DTranspose|MaxPooling2D|Flatten|Reshape|GRU|LSTM|Dropout)\("
    r"|\b(?:activation|padding|strides|units|filters|kernel_size|return_sequences)=")


def hints_without_layer_code(wrong_versions):
    """A wrong model builder fails with hints that contain no layer code (``Dense(1, ...)``,
    ``activation='tanh'``, ``keras.Input(shape=...)``); ``wrong_versions`` are (checker, wrong
    answer, ...) rows."""
    rows = [(checker, wrong) for checker, wrong, *_ in wrong_versions]

    @STRICT
    @pytest.mark.parametrize(("checker", "wrong"), rows,
                             ids=[getattr(w, "__name__", str(i)) for i, (_, w) in enumerate(rows)])
    def test(checker, wrong, strict):
        with pytest.raises(AssertionError) as info:
            checker(wrong, strict=strict)
        hints = [line for line in str(info.value).splitlines()
                 if line.lstrip().startswith("hint:")]
        for hint in hints:
            assert not LAYER_CODE.search(hint), hint

    return test
