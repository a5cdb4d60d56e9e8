"""Defects found by an audit of the math checker, one table per class: each row is (reference, answer, verdict),
and every verdict is a verdict (no exception escapes into an environment's step)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from reason_gym.checkers import math_answer
from reason_gym.checkers.math_answer import MathAnswerChecker, check_answer


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


def test_a_timeout_is_not_reused_by_a_check_with_more_time(monkeypatch, tmp_path):
    slow = tmp_path / "slow_worker.py"  # says "right" to everything, after 0.6 s
    slow.write_text(
        "import json, sys, time\n"
        "print(json.dumps({'ready': True, 'version': 'slow'}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    time.sleep(0.6)\n"
        "    print(json.dumps({'id': json.loads(line)['id'], 'correct': True}), flush=True)\n"
    )
    monkeypatch.setattr(math_answer, "WORKER_SCRIPT", slow)
    with MathAnswerChecker(timeout=2.0) as slow_checker:
        assert slow_checker.check("\\boxed{a}", "q").correct  # starts the worker
        assert slow_checker.check("\\boxed{b}", "q", timeout=0.3).method == "timeout"
        start = time.monotonic()
        assert slow_checker.check("\\boxed{b}", "q", timeout=0.2).method == "timeout"  # no more time: cached
        assert time.monotonic() - start < 0.1
        assert slow_checker.check("\\boxed{b}", "q").correct  # the whole budget: asked again


# Brackets nested past what the LaTeX parser handles fast are garbage, judged at once (15 levels of { timed out).
DEEP_NESTING = [
    ("5", "{" * 9 + "5" + "}" * 9),
    ("5", "(" * 9 + "5" + ")" * 9),
    ("5", "[" * 9 + "5" + "]" * 9),
    ("5", "{" * 15 + "5" + "}" * 15),
    ("5", "(" * 25 + "5" + ")" * 25),
]


@pytest.mark.parametrize(("gold", "answer"), DEEP_NESTING)
def test_deep_nesting_is_judged_wrong_at_once(checker, gold, answer):
    start = time.monotonic()
    assert checker.check(answer, gold).method == "too-long"
    assert time.monotonic() - start < 0.1


def test_real_nesting_is_parsed():
    assert check_answer("\\left( \\frac{\\sqrt{2}}{2}, \\frac{1}{2} \\right)", "(\\frac{1}{\\sqrt{2}}, 0.5)").correct
    assert check_answer("{{{{5}}}}", "5").correct


# A thousands separator with a space command and a space after it is one number, not a list compared as a set.
THOUSANDS = [
    ("11,\\! 111,\\! 111,\\! 100", "11, 100, 111", False),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100", True),
    ("11,\\! 111,\\! 111,\\! 100", "11,111,111,100", True),
    ("1,\\ 234", "234, 1", False),
    ("1,\\ 234", "1234", True),
    ("1,\\!234", "234, 1", False),
    ("1234", "1, 234", False),
    ("1, 234", "234, 1", True),  # a plain space: a list
    ("1,000", "1000", True),
]

# An enumerated set is neither a tuple nor an interval.
SETS_AND_TUPLES = [
    ("(0,1)", "\\{0, 1\\}", False),
    ("\\{0,1\\}", "(0,1)", False),
    ("(1,2,3)", "\\{1,2,3\\}", False),
    ("[0, 1]", "\\left\\{0, 1\\right\\}", False),
    ("\\{0, 1\\}", "\\{1, 0\\}", True),
    ("\\{0, 1\\}", "0, 1", True),
    ("(0, 1)", "\\left(0, 1\\right)", True),
]

# A number in a base for a plain reference: MATH often writes the digits alone (2743 for "in base 14"), so the
# digits must be the reference's and exist in the base; math-verify dropped the base and took 19_8 for 19.
BASES = [
    ("19", "19_8", False),
    ("42", "43_8", False),
    ("42", "42_8", True),
    ("2743", "2743_{14}", True),
    ("52_8", "52_9", False),
]


@pytest.mark.parametrize(("gold", "answer", "expected"), THOUSANDS)
def test_spaced_thousands_separators_make_one_number(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


@pytest.mark.parametrize(("gold", "answer", "expected"), SETS_AND_TUPLES)
def test_a_set_is_not_a_tuple(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


@pytest.mark.parametrize(("gold", "answer", "expected"), BASES)
def test_a_base_subscript_needs_digits_of_the_base(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


# An answer that states or hedges with another value is wrong, wherever the other value is: after the box, in a
# box inside the box, in a span joined by "or" / "then", in a \text group math-verify throws away, or as a sign.
HEDGES = [
    ("5", "\\boxed{5}, 5, 6", False),  # a list after the box
    ("5", "\\boxed{5} \\text{(or 6)}", False),
    ("5", "\\boxed{5} (5 or 6)", False),
    ("5", "\\boxed{5}, 5", True),  # the same value again
    ("5", "there are $\\boxed{5}$ divisors of 196.", True),  # prose after the box
    ("5", "\\boxed{5} or 6", False),
    ("5", "$\\boxed{5}$ or $6$", False),
    ("5", "\\boxed{5}, 6", False),
    ("5", "\\boxed{6 \\boxed{5}}", False),
    ("5", "\\boxed{\\boxed{6}\\boxed{5}}", False),
    ("5", "$6$ (or $5$)", False),
    ("5", "$6$ \\text{or} $5$", False),
    ("5", "6 or $5$", False),
    ("5", "$6$ then $5$", False),
    ("5", "$5$ or 6", False),
    ("5", "5 \\text{ (or 6)}", False),
    ("5", "5\\text{, not 6}", False),
    ("5", "5 \\text{ is not the answer}", False),
    ("5", "\\neg 5", False),
    ("5", "~5", False),
    ("5", "\\approx 5", False),
    ("5", "\\boxed{5} (I guess)", False),
    ("x = 5", "x = 6 = 5", False),
    ("5", "\\boxed{5", False),
    ("5", "\\boxed 5 6", False),
    ("5", "\\framebox{6}\\boxed{5}", False),
    ("5", "\\boxed{\\boxed{5}}", True),
    ("5", "$\\boxed{5}$ apples.", True),
    ("5", "there are $\\boxed{5}$ divisors of 196.", True),
    ("5", "The sum of $2$ and $3$ is $5$.", True),
    ("5\\text{ cm}^2", "\\boxed{5} \\text{ cm}^2", True),
    ("x = 5", "x = 2 + 3 = 5", True),
]

# Words after a number that change or qualify it are not a unit to drop.
VALUE_WORDS = [
    ("5", "5 thousand", False),
    ("5", "5 million", False),
    ("5", "5 squared", False),
    ("5", "5 cubed", False),
    ("5", "5 factorial", False),
    ("5", "5 halves", False),
    ("5", "5 \\text{ thousand}", False),
    ("5", "5 \\text{ approximately}", False),
    ("5", "5 \\text{ at most}", False),
    ("5", "5 \\text{ negative}", False),
    ("5", "5 \\text{ below zero}", False),
    ("5", "more than 5", False),
    ("5", "no more than 5", False),
    ("5", "5 more than 3", False),
    ("2", "2 times 5", False),
    ("5", "5 or more", False),
    ("5 \\text{ apples}", "5 \\text{ thousand apples}", False),
    ("5", "5 apples", True),
    ("5\\text{ cm}^2", "5 cm squared", True),
    ("6.02 \\times 10^{23}", "6.02 \\times 10^{23}", True),
]


@pytest.mark.parametrize(("gold", "answer", "expected"), HEDGES)
def test_another_value_beside_the_answer_is_a_hedge(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


@pytest.mark.parametrize(("gold", "answer", "expected"), VALUE_WORDS)
def test_words_that_change_a_value_are_no_unit(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


# Regression (c1d9311 accepted these): count and comparison words after a number were read as words that change
# the value. GSM8K asks "how many more / how much more" (58 questions), "how many times" (8), "how many dozens" (4):
# the word names what is counted, so it is the answer's unit. Rows are (answer, reference, verdict).
COUNT_WORDS = [
    ("40 more", "40", True),
    ("3 more", "3", True),
    ("\\$40 more", "40", True),
    ("40 more dollars", "40", True),
    ("40 dollars more", "40", True),
    ("\\boxed{40 \\text{ more}}", "40", True),
    ("\\boxed{\\$40 \\text{ more}}", "40", True),
    ("5 fewer", "5", True),
    ("5 fewer students", "5", True),
    ("\\boxed{5 \\text{ fewer}}", "5", True),
    ("3 less", "3", True),
    ("6 more than Tom", "6", True),
    ("7 dozen", "7", True),
    ("7 dozens", "7", True),
    ("7 dozen eggs", "7", True),
    ("\\boxed{7 \\text{ dozen}}", "7", True),
    ("3 \\text{ times}", "3", True),
    ("\\boxed{3 \\text{ times}}", "3", True),
    ("40 more", "39", False),  # still the number it writes
    ("7 dozen", "84", False),
    ("5 thousand", "5", False),  # words that change or qualify the value stay no unit
    ("5 million", "5", False),
    ("5 hundred", "5", False),
    ("5 squared", "5", False),
    ("5 cubed", "5", False),
    ("5 factorial", "5", False),
    ("5 halves", "5", False),
    ("5 \\text{ approximately}", "5", False),
    ("5 \\text{ at most}", "5", False),
    ("5 \\text{ negative}", "5", False),
    ("5 \\text{ below zero}", "5", False),
    ("5 \\text{ (or 6)}", "5", False),
    ("5\\text{, not 6}", "5", False),
    ("x \\approx 5", "5", False),
    ("\\neg 5", "5", False),
    ("~5", "5", False),
    ("more than 5", "5", False),
    ("2 times 5", "2", False),
]

# Regression (c1d9311 accepted these): the same value restated beside the boxed one was called a hedge. The value
# beside it is compared with the reference as several boxes are: the same value is no hedge, another value (or one
# not read as one plain value) is. Rows are (answer, reference, verdict).
RESTATED_VALUES = [
    ("\\boxed{\\frac{3}{2}}, or 1.5", "\\frac{3}{2}", True),
    ("\\boxed{\\frac{1}{2}} (or 0.5)", "\\frac{1}{2}", True),
    ("\\boxed{\\frac{1}{4}} (0.25)", "\\frac{1}{4}", True),
    ("\\boxed{2} or 2.0", "2", True),
    ("\\boxed{18}, or \\$18", "18", True),
    ("\\boxed{50\\%}, or 0.5", "50\\%", True),
    ("$18$ (or $\\frac{36}{2}$)", "18", True),
    ("$\\boxed{x+1}$ or $1+x$", "x+1", True),  # equal by math-verify
    ("\\boxed{5} \\text{ or } 5.0", "5", True),
    ("\\boxed{5} or 6", "5", False),
    ("$\\boxed{5}$ or $6$", "5", False),
    ("\\boxed{5}, 6", "5", False),
    ("\\boxed 5 6", "5", False),
    ("$6$ (or $5$)", "5", False),
    ("6 or $5$", "5", False),
    ("$6$ then $5$", "5", False),
    ("\\boxed{6 \\boxed{5}}", "5", False),
    ("\\boxed{5} (or 6 if rounding up)", "5", False),
    ("\\boxed{5} (or 5 if rounding down)", "5", False),  # a condition, not the value restated
    ("\\boxed{5} (or about 5)", "5", False),
    ("\\boxed{5}, not 5", "5", False),
    ("\\boxed{5} or -5", "5", False),
    ("\\boxed{5} or 5 thousand", "5", False),
    ("\\boxed{\\frac13} (or 0.333)", "\\frac13", False),  # not equal: a decimal is exact
    ("\\boxed{2} or 3", "2, 3", False),  # a value beside the box is no list
    ("\\boxed{2}, 3", "2, 3", False),
]


@pytest.mark.parametrize(("answer", "gold", "expected"), COUNT_WORDS)
def test_count_words_after_a_number_are_its_unit(checker, answer, gold, expected):
    _judged(checker, gold, answer, expected)


@pytest.mark.parametrize(("answer", "gold", "expected"), RESTATED_VALUES)
def test_the_same_value_restated_beside_the_box_is_no_hedge(checker, answer, gold, expected):
    _judged(checker, gold, answer, expected)
