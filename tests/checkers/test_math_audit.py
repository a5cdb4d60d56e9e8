"""Defects found by an audit of the math checker, one table per class: each row is (reference, answer, verdict),
and every verdict is a verdict (no exception escapes into an environment's step)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reason_gym.checkers.math_answer import MathAnswerChecker


@pytest.fixture(scope="module")
def checker():
    with MathAnswerChecker(timeout=3.0) as shared:
        yield shared


def _judged(checker: MathAnswerChecker, gold: str, answer: str, expected: bool) -> None:
    verdict = checker.check(answer, gold)
    assert verdict.correct is expected, f"{answer!r} for the reference {gold!r}: {verdict}"
    assert bool(verdict.reason) is not expected  # a wrong answer always says why


# An equation, a list or a set on one side and another type on the other: the worker compared equations by
# reading .lhs of whatever the other side was, and raised CheckerBugError into env.step.
MIXED_TYPES = [
    ("5", "x = 5, 6", False),
    ("5", "x = \\pm 5", False),
    ("2, 3", "x=2", False),
    ("(0, 2)", "x \\in (0, 1)", False),
    ("5", "(x = 6)", False),
    ("5", "[x = 6]", False),
    ("x = 5", "5, 6", False),
    ("x = 5", "\\pm 5", False),
    ("x = 5", "x = 5 = 6", False),
    ("y = 2x + 3", "y = 2x + 3 = 5", False),
    ("5", "x = 1, 2", False),
    ("x = 5", "2x = 10", True),  # the scaled-equation rule still holds
]

# Numbers are exact in symbolic comparisons too: math-verify's numeric check (1e-15, absolute) took a different
# exact value for the reference when they agreed to 15 digits.
NEAR_VALUES = [
    ("\\pi", "31415926535897932 \\times 10^{-16}", False),
    ("\\pi", "\\frac{31415926535897932}{10^{16}}", False),
    ("\\ln 2", "6931471805599453 \\times 10^{-16}", False),
    ("\\pi", "\\pi + 10^{-20}", False),
    ("\\sqrt{2}", "\\sqrt{2} + 10^{-17}", False),
    ("\\sqrt{2}", "\\sqrt{2+10^{-17}}", False),
    ("\\sqrt{2}", "\\sqrt{2+10^{-200}}", False),  # beyond any fixed precision
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),  # equal values are still proved equal
    ("1+\\sqrt{2}", "\\sqrt{3+2\\sqrt{2}}", True),
    ("\\frac{1+\\sqrt5}{4}", "\\cos\\frac{\\pi}{5}", True),
    ("\\ln 2", "\\ln 6 - \\ln 3", True),
]


@pytest.mark.parametrize(("gold", "answer", "expected"), MIXED_TYPES)
def test_mixed_types_are_judged_not_raised(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


@pytest.mark.parametrize(("gold", "answer", "expected"), NEAR_VALUES)
def test_symbolic_values_are_compared_exactly(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


_ADVERSARIAL_FORMS = ["x = 1, 2", "x = \\pm 5", "(x = 6)", "[x = 6]", "5, 6", "\\pm 5", "x = 5 = 6"]
_ADVERSARIAL_FORMS += ["y = 2x + 3 = 5", "x \\in (0, 1)", "\\{1, 2\\}", "(1, 2]", "x > 3", "f(x) = x^2"]


def _math500_golds(count: int) -> list[str]:
    path = Path(os.environ.get("REASON_GYM_DATA_DIR", "/work/shared/data")) / "math500" / "test.jsonl"
    if not path.is_file():
        pytest.skip(f"no MATH-500 data at {path}")
    with path.open() as lines:
        return [json.loads(line)["answer"] for line, _ in zip(lines, range(count), strict=False)]


def test_no_answer_form_raises_against_real_references(checker):
    """Every type of answer against every type of reference gives a verdict (MATH-500's first 100 references)."""
    for gold in _math500_golds(100):
        for answer in _ADVERSARIAL_FORMS:
            assert isinstance(checker.check(answer, gold).correct, bool)
