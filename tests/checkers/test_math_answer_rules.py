"""The math checker's rules on the form of an answer, one adversarial table per rule: right answers written oddly
and wrong answers that look right. Each row is (reference, answer, verdict)."""

from __future__ import annotations

import time

import pytest

from reason_gym.checkers import math_answer
from reason_gym.checkers.math_answer import MathAnswerChecker
from reason_gym.checkers.math_forms import final_answers, split_unit


@pytest.fixture(scope="module")
def checker():
    with MathAnswerChecker(timeout=2.0) as shared:
        yield shared


def _judged(checker: MathAnswerChecker, gold: str, answer: str, expected: bool) -> None:
    verdict = checker.check(answer, gold)
    assert verdict.correct is expected, f"{answer!r} for the reference {gold!r}: {verdict}"
    assert bool(verdict.reason) is not expected  # a wrong answer always says why


# Numbers are exact: a decimal is the number it writes. It is right for a reference it equals exactly (0.5 for 1/2,
# 157/50 for 3.14), never for one it only approximates (math-verify rounds to 6 places and said yes to these).
DECIMALS = [
    ("\\pi", "3.141593", False),
    ("\\pi", "3.14159265358979", False),
    ("\\pi", "3.14", False),
    ("\\sqrt{2}", "1.414214", False),
    ("\\sqrt{2}", "1.4142135623730951", False),
    ("\\frac{\\pi}{2}", "1.570796", False),
    ("\\frac{1}{3}", "0.333333", False),
    ("\\frac{1}{3}", "0.3333333333", False),
    ("\\frac{2}{3}", "0.666667", False),
    ("\\frac{\\sqrt{2}}{2}", "0.7071067811865476", False),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1.414214}{2}", False),
    ("2\\sqrt{3}", "3.464102", False),
    ("e", "2.718282", False),
    ("\\frac{1}{3}x", "0.333333x", False),
    ("(\\frac{1}{3}, 1)", "(0.333333, 1)", False),
    ("\\{\\frac{1}{3}, 2\\}", "\\{2, 0.333333\\}", False),
    ("\\frac{1}{2}", "0.5", True),
    ("\\frac{3}{8}", "0.375", True),
    ("-\\frac{3}{4}", "-0.75", True),
    ("\\frac{5}{4}", "1.250", True),
    ("\\frac{1}{2}x", "0.5x", True),
    ("\\frac{x}{4}", "0.25x", True),
    ("(\\frac{1}{2}, 1)", "(0.5, 1)", True),
    ("\\frac{1}{4}", "25\\%", True),
    ("\\sqrt{2}", "\\sqrt{2.0}", True),
    ("\\sqrt{2}", "\\sqrt{2.000001}", False),
    ("\\frac{1}{3}", "\\frac{0.5}{1.5}", True),
    ("\\frac{1}{3}", "0.\\overline{3}", True),  # a repeating decimal is exact
    ("\\frac{1}{6}", "0.1\\overline{6}", True),
    ("\\frac{1}{6}", "0.1\\overline{7}", False),
    ("\\frac{1}{3}", "33.33\\%", False),
    ("\\frac{1}{3}", "33\\frac{1}{3}\\%", True),
    # A decimal reference: a decimal or fraction equal to it, nothing it merely rounds to.
    ("3.14", "3.14", True),
    ("3.14", "3.140", True),
    ("3.14", "\\frac{157}{50}", True),
    ("2.5", "\\frac{5}{2}", True),
    ("0.15", "\\frac{3}{20}", True),
    ("3.14", "\\pi", False),
    ("3.14", "3.1416", False),
    ("1.414214", "\\sqrt{2}", False),
    ("0.33", "\\frac{1}{3}", False),
    ("0.333333", "\\frac{1}{3}", False),
]

# An equation needs an equivalent equation; only a reference <unknown> = <constant> (x = 5), or
# <function> = <expression>, also takes its right-hand side alone. An equation given for a value is read as its
# sides after a leading unknown, and every side must be right.
EQUATIONS = [
    ("x + y = 3", "3", False),  # math-verify took the right-hand side alone
    ("2x + 3y = 6", "6", False),
    ("x^2 + y^2 = 13", "13", False),
    ("y = 2x + 3", "2x + 3", False),  # the equation of a line is not its right-hand side
    ("y = -2x", "-2x", False),
    ("x + y = 3", "x + y = 4", False),
    ("2x + 3y = 6", "2x + 3y = 7", False),
    ("x + y = 3", "y = 3 - x", True),
    ("2x + 3y = 6", "4x + 6y = 12", True),
    ("y = 2x + 3", "2x - y + 3 = 0", True),
    ("y = 2x + 3", "y = 3 + 2x", True),
    ("y = 2x + 3", "2x + 3 = y", True),
    ("x^2 + y^2 = 13", "x^2 + y^2 - 13 = 0", True),
    ("\\frac{x^2}{16} - \\frac{y^2}{9} = 1", "9x^2 - 16y^2 = 144", True),
    ("x = 5", "5", True),
    ("x = 5", "x=5", True),
    ("x = 5", "2x = 10", True),  # an equivalent equation
    ("x = \\frac{3}{2}", "1.5", True),
    ("x = \\frac{3}{2}", "x = 1.5", True),
    ("k = 15", "15", True),
    ("AB = 10", "10", True),
    ("f(x) = 2x + 3", "2x + 3", True),
    ("x = 5", "6", False),
    ("x = 5", "x = 6", False),
    ("x = 5", "y = 5", False),
    ("x = 5", "x + y = 5", False),
    ("x = 5", "x^2 = 25", False),  # not equivalent: -5 solves it too
    # A value as the reference, an equation as the answer.
    ("5", "x = 5", True),
    ("5", "f(3) = 5", True),
    ("10", "AB = 10", True),
    ("30^\\circ", "m\\angle ABC = 30^\\circ", True),
    ("5", "\\sqrt{25} = 5", True),  # every side is 5
    ("5", "x = 2 + 3 = 5", True),
    ("(1, 2)", "(x, y) = (1, 2)", True),
    ("2x + 3", "f(x) = 2x + 3", True),
    ("5", "x + y = 5", False),
    ("5", "2x = 10", False),
    ("5", "x = 5 = 6", False),
    ("5", "x = 6", False),
    ("0", "x^2 - 4 = 0", False),
]

# Several final values are a hedge, judged wrong, unless they are all the same value or the reference is a list
# and they are that list. Hedging words (maybe, perhaps, possibly, probably) are wrong whatever follows.
HEDGES = [
    ("5", "\\boxed{5} \\boxed{6}", False),
    ("5", "\\boxed{6} then \\boxed{5}", False),  # the last box no longer wins alone
    ("5", "5 or 6", False),
    ("5", "6 or 5", False),
    ("5", "5, or maybe 6", False),
    ("5", "Answer: $5$ or $6$", False),
    ("5", "either 5 or 6", False),
    ("5", "5 \\text{ or } 6", False),
    ("5", "\\boxed{5 \\text{ or } 6}", False),
    ("5", "\\boxed{5}, or maybe \\boxed{6}", False),
    ("5", "5 and 6", False),
    ("5", "5 and/or 6", False),
    ("5", "5; 6", False),
    ("5", "$5$, $6$", False),
    ("5", "maybe 5", False),
    ("5", "probably 5", False),
    ("5", "\\boxed{5} (or possibly \\boxed{5})", False),
    ("x = 5", "x = 5 \\text{ or } x = 6", False),
    ("\\text{north}", "north or south", False),
    ("2, 3", "2, or maybe 3", False),
    ("2, 3", "2 or 4", False),
    ("2, 3", "\\boxed{2} \\boxed{4}", False),
    ("2, 3", "2", False),
    ("5", "\\boxed{5} and again \\boxed{5}", True),  # the same value twice is no hedge
    ("5", "\\boxed{5}, i.e. \\boxed{5.0}", True),
    ("\\frac{1}{2}", "\\boxed{\\frac12}, that is \\boxed{0.5}", True),
    ("10\\sqrt{2}", "\\boxed{10\\sqrt{2}} ... \\boxed{10\\sqrt 2}", True),
    ("2, 3", "2, 3", True),  # a list reference takes the same list, in any form
    ("2, 3", "3, 2", True),
    ("2, 3", "2 or 3", True),
    ("2, 3", "\\boxed{2} and \\boxed{3}", True),
    ("2, 3", "$2$ and $3$", True),
    ("2, 3", "2; 3", True),
    ("\\pm 5", "5 or -5", True),
    ("1 \\pm \\sqrt{2}", "1 + \\sqrt{2} \\text{ or } 1 - \\sqrt{2}", True),
    ("\\pm 5", "5", False),
    ("\\{2, 3\\}", "\\{3, 2\\}", True),
    ("\\{2, 3\\}", "x = 2 \\text{ or } x = 3", True),
    ("10", "The sum of $a$ and $b$ is $10$.", True),  # "and" in the sentence, one final value
]

# Units: a unit on one side only is dropped; units on both sides must be the same unit, spelled any way, and
# nothing is converted (5 m is wrong for 500 cm: the answer is in the reference's unit or in none).
UNITS = [
    ("5\\text{ cm}^2", "5\\text{ cm}^3", False),
    ("5\\text{ cm}^2", "5 \\text{ cm}", False),
    ("5\\text{ cm}^3", "5 cm", False),
    ("5\\sqrt{2}\\text{ cm}^2", "5\\sqrt{2}\\text{ cm}^3", False),
    ("864 \\mbox{ inches}^2", "864 \\text{ in}^3", False),
    ("5 \\text{ m}", "5 \\text{ cm}", False),
    ("5 \\text{ m}", "500 \\text{ cm}", False),
    ("5 \\text{ km/h}", "5 \\text{ m/s}", False),
    ("60 \\text{ miles per hour}", "60 km/h", False),
    ("30^\\circ", "30 \\text{ radians}", False),
    ("30^\\circ", "\\frac{\\pi}{6}", False),
    ("\\frac{\\pi}{6}", "30^\\circ", False),
    ("5 \\text{ dollars}", "5 \\text{ cents}", False),
    ("5 dollars", "5 cents", False),
    ("\\$5", "5¢", False),
    ("\\$18.90", "€18.90", False),
    ("5 apples", "5 pears", False),
    ("5.4 \\text{ cents}", "\\$5.4", False),
    ("5\\text{ cm}^2", "5 cm^2", True),
    ("5\\text{ cm}^2", "5 \\text{ cm}^{2}", True),
    ("5\\text{ cm}^2", "5 square centimeters", True),
    ("5\\text{ cm}^2", "5 cm²", True),
    ("5\\text{ cm}^2", "5 sq cm", True),
    ("864 \\mbox{ inches}^2", "864 \\text{ in}^2", True),
    ("5\\text{ cm}^2", "5", True),
    ("5\\sqrt{2}\\text{ cm}", "5\\sqrt{2}", True),
    ("18", "18 dollars", True),
    ("18", "18 dollars per hour", True),
    ("\\$18.90", "18.90 dollars", True),
    ("\\$18.90", "\\$18.9", True),
    ("30^\\circ", "30 degrees", True),
    ("30^\\circ", "30°", True),
    ("30^\\circ", "30", True),
    ("\\frac{270}7\\text{ degrees}", "\\frac{270}{7}^\\circ", True),
    ("60 \\text{ miles per hour}", "60 mph", True),
    ("5 \\text{ km/h}", "5 km per hour", True),
    ("5.4 \\text{ cents}", "5.4¢", True),
    ("12 \\text{ ft}", "12 feet", True),
    ("5 \\text{ hours}", "5 hr", True),
    ("5 \\text{ hours}", "300 \\text{ minutes}", False),
    ("5 \\text{ units}^2", "5 \\text{ square units}", True),
    ("4 \\text{ ways}", "4 \\text{ different ways}", True),  # not a unit: words that add to the reference's
    ("20^\\circ C", "20 degrees Celsius", True),
    ("20^\\circ C", "20°", True),  # the scale left out
    ("20^\\circ C", "20°F", False),
]

# GSM8K-style plain numbers in the forms a careful grader reads: markdown emphasis, percentages, Unicode and
# mixed fractions, scientific notation; and near misses in the same forms.
PLAIN_NUMBER_FORMS = [
    ("18", "**18**", True),
    ("18", "The answer is **18**.", True),
    ("18", "*18*", True),
    ("18", "**$18**", True),
    ("18", "**Answer:** 18", True),
    ("18%", "18.0%", True),
    ("18%", "18\\%", True),
    ("18", "18.0%", True),  # GSM8K leaves the percent sign out of its references
    ("18", "18%", True),
    ("18%", "18", True),
    ("0.18", "18%", True),
    ("18%", "0.18", True),
    ("\\frac{1}{2}", "½", True),
    ("0.75", "¾", True),
    ("3.5", "3½", True),
    ("\\frac{7}{2}", "3 ½", True),
    ("-3.5", "-3½", True),
    ("3\\frac{1}{2}", "3½", True),
    ("7/2", "3 1/2", True),
    ("602000000000000000000000", "6.02 \\times 10^{23}", True),
    ("6.02 \\times 10^{23}", "6.02e23", True),
    ("6.02 \\times 10^{23}", "6.02 × 10^23", True),
    ("6.02 \\times 10^{23}", "6.02E+23", True),
    ("1200", "1.2 \\cdot 10^3", True),
    ("0.000001", "1 \\times 10^{-6}", True),
    ("602000000000000000000000", "6.02×10²³", True),
    ("0.00001", "1×10⁻⁵", True),
    ("18", "**19**", False),
    ("18", "*-18*", False),
    ("18%", "18.5%", False),
    ("18", "1.8%", False),
    ("18", "0.18", False),
    ("0.5", "0.5%", False),  # 0.5% is 0.005
    ("\\frac{1}{2}", "⅓", False),
    ("3.5", "2½", False),
    ("3.5", "3¼", False),
    ("6.02 \\times 10^{23}", "6.02 \\times 10^{22}", False),
    ("6.02 \\times 10^{23}", "6.2e23", False),
    ("602000000000000000000000", "6.02e22", False),
    ("18", "18e1", False),
]


@pytest.mark.parametrize(("gold", "answer", "expected"), DECIMALS)
def test_decimals_must_equal_an_exact_reference_exactly(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


@pytest.mark.parametrize(("gold", "answer", "expected"), EQUATIONS)
def test_an_equation_needs_an_equivalent_equation(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


@pytest.mark.parametrize(("gold", "answer", "expected"), HEDGES)
def test_several_final_values_are_a_hedge(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


@pytest.mark.parametrize(("gold", "answer", "expected"), UNITS)
def test_units_must_agree_when_both_sides_have_one(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


@pytest.mark.parametrize(("gold", "answer", "expected"), PLAIN_NUMBER_FORMS)
def test_plain_number_forms(checker, gold, answer, expected):
    _judged(checker, gold, answer, expected)


def test_form_verdicts_say_which_rule_decided(checker):
    assert checker.check("\\boxed{5} \\boxed{6}", "5").method == "hedge"
    assert checker.check("probably 5", "5").method == "hedge"
    assert checker.check("3", "x + y = 3").method == "form"
    assert checker.check("5 \\text{ cm}^3", "5 \\text{ cm}^2").method == "form"
    assert "cm^3 for cm^2" in checker.check("5 \\text{ cm}^3", "5 \\text{ cm}^2").reason


def test_plain_number_forms_never_reach_the_worker():
    with MathAnswerChecker() as fresh:
        pairs = [("**18**", "18"), ("18.0%", "18%"), ("3½", "3.5"), ("6.02e23", "6.02 \\times 10^{23}")]
        pairs += [("0.333333", "\\frac{1}{3}"), ("5 \\text{ cm}^3", "5 \\text{ cm}^2"), ("5 or 6", "5")]
        verdicts = [fresh.check(answer, gold) for answer, gold in pairs]
        assert [v.correct for v in verdicts] == [True, True, True, True, False, False, False]
        assert fresh.worker_pids() == []


@pytest.mark.parametrize(
    ("text", "values", "hedged", "restated"),
    [
        ("\\boxed{5} \\boxed{6}", ("5", "6"), False, ()),
        ("\\boxed{5} and \\boxed{ 5 }", ("5",), False, ()),
        ("$x = 2$ or $x = 3$.", ("x = 2", "x = 3"), False, ()),
        ("The value of $x$ is $5$.", ("5",), False, ()),
        ("2, or perhaps 3", ("2", "3"), True, ()),
        ("\\{1, 2\\}", ("\\{1, 2\\}",), False, ()),
        ("\\text{Monday and Tuesday}", ("\\text{Monday and Tuesday}",), False, ()),  # inside text: one value
        ("", ("",), False, ()),
        ("\\boxed{\\frac{3}{2}}, or 1.5", ("\\frac{3}{2}",), False, ("1.5",)),  # the checker compares them
        ("\\boxed{\\frac{1}{4}} (0.25)", ("\\frac{1}{4}",), False, ("0.25",)),
        ("$\\boxed{5}$ or $6$", ("5",), False, ("6",)),
        ("$18$ (or $\\frac{36}{2}$)", ("\\frac{36}{2}",), False, ("18",)),
        ("6 or $5$", ("5",), False, ("6",)),
        ("$6$ then $5$", ("5",), True, ()),  # not "or": another value
        ("\\boxed{5} (or 6 if rounding up)", ("5",), True, ()),  # not one plain value
    ],
)
def test_final_answers(text, values, hedged, restated):
    assert final_answers(text) == (values, hedged, restated)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5 \\text{ cm}^2", ("5", "cm^2")),
        ("5 cm²", ("5", "cm^2")),
        ("5 square centimeters", ("5", "cm^2")),
        ("\\$5", ("5", "dollar")),
        ("5 km per hour", ("5", "km/h")),
        ("60 mph", ("60", "mi/h")),
        ("45^{\\circ}", ("45", "degree")),
        ("18.0%", ("18.0", "%")),
        ("5cm", ("5", "cm")),
        ("5 m", ("5 m", "")),  # one letter in math mode: a variable
        ("2 ab", ("2 ab", "")),
        ("2x abc", ("2x abc", "")),  # a word after a letter: a product
        ("\\text{(C)}", ("\\text{(C)}", "")),  # nothing but text: an answer, not a unit
        ("2 \\pi", ("2 \\pi", "")),
    ],
)
def test_split_unit(text, expected):
    assert split_unit(text) == expected


def test_the_values_of_one_answer_share_one_time_budget(monkeypatch, tmp_path):
    slow = tmp_path / "slow_worker.py"  # says "right" to everything, after 0.6 s
    slow.write_text(
        "import json, sys, time\n"
        "print(json.dumps({'ready': True, 'version': 'slow'}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    time.sleep(0.6)\n"
        "    print(json.dumps({'id': json.loads(line)['id'], 'correct': True}), flush=True)\n"
    )
    monkeypatch.setattr(math_answer, "WORKER_SCRIPT", slow)
    with MathAnswerChecker(timeout=1.0) as slow_checker:
        assert slow_checker.check("\\boxed{a}", "q").correct  # starts the worker
        start = time.monotonic()
        verdict = slow_checker.check("\\boxed{b} \\boxed{c} \\boxed{d}", "q")  # three worker calls of 0.6 s
        assert time.monotonic() - start < 1.5
        assert verdict.method == "hedge" and not verdict.correct  # the second ran out of the check's 1 s
        assert slow_checker.check("\\boxed{c}", "q").correct  # that timeout was not cached
