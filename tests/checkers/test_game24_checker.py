"""Verdict tables for Game-of-24 steps and final answers, adversarial cases included."""

from fractions import Fraction

import pytest

from reason_gym.checkers.game24 import (
    MAX_ANSWER_CHARS,
    AnswerVerdict,
    StepVerdict,
    _parse_step,
    check_step,
    judge_answer,
    parse_number,
    parse_step,
    replay_expressions,
)
from reason_gym.checkers.numbers import evaluate
from reason_gym.checkers.numbers import parse_number as number_parse_number

PUZZLE = (4, 9, 10, 13)


@pytest.mark.parametrize(
    ("numbers", "step", "remaining"),
    [
        (PUZZLE, "13 - 9 = 4 (left: 4 4 10)", (4, 4, 10)),
        (PUZZLE, "13-9=4", (4, 4, 10)),  # no spaces, no left list
        (PUZZLE, "  13 -   9 =  4  ( left : 10 4 4 )  ", (4, 4, 10)),  # spacing, left list in any order
        (PUZZLE, "13 - 9 = 4 (left: 4, 4, 10).", (4, 4, 10)),  # commas and a final period
        (PUZZLE, "13 − 9 = 4", (4, 4, 10)),  # unicode minus
        (PUZZLE, "4 × 9 = 36 (left: 10 13 36)", (10, 13, 36)),
        (PUZZLE, "9 ÷ 4 = 9/4 (left: 9/4 10 13)", (Fraction(9, 4), 10, 13)),
        (PUZZLE, "9 / 4 = 2.25", (Fraction(9, 4), 10, 13)),  # an exact decimal result
        (PUZZLE, "4 - 9 = -5 (left: -5 10 13)", (-5, 10, 13)),
        ((Fraction(8, 3), 3, 8), "3 - 8/3 = 1/3 (left: 1/3 8)", (Fraction(1, 3), 8)),
        ((Fraction(1, 3), 8), "8 / 1/3 = 24", (24,)),
        ((-5, 10, 13), "-5 * 10 = -50", (-50, 13)),
        ((4, 4, 10), "4 + 4 = 8 (left: 8 10)", (8, 10)),  # a repeated number used twice when it is there twice
        ((0, 5), "0 / 5 = 0", (0,)),
    ],
)
def test_valid_steps(numbers, step, remaining):
    verdict = check_step(numbers, step)
    assert verdict.valid, verdict.error
    assert verdict.remaining == remaining


@pytest.mark.parametrize(
    ("numbers", "step", "error"),
    [
        (PUZZLE, "13 - 9 = 5", "is wrong"),
        (PUZZLE, "9 / 4 = 2.3", "is wrong"),  # rounding is not exact
        (PUZZLE, "9 / 4 = 2", "is wrong"),
        (PUZZLE, "12 - 9 = 3", "a = 12 is not available"),
        (PUZZLE, "4 + 4 = 8", "b = 4 is not available"),  # a number used twice
        (PUZZLE, "13 - 9 = 4 (left: 4 10)", "left list"),  # a number dropped from the left list
        (PUZZLE, "13 - 9 = 4 (left: 4 4 10 13)", "left list"),
        (PUZZLE, "13 - 9 = 4 (left: 4 4 11)", "left list"),
        (PUZZLE, "13 - 9 = 4 (left: x y z)", "cannot read the left list"),
        ((0, 5), "5 / 0 = 0", "division by zero"),
        (PUZZLE, "4 / 0 = 1", "b = 0 is not available"),
        (PUZZLE, "1/0 + 4 = 4", "zero denominator"),
        (PUZZLE, "13 ** 9 = 4", "not a step"),
        (PUZZLE, "13 - 9", "not a step"),
        (PUZZLE, "13 - 9 - 4 = 0", "not a step"),  # three operands
        (PUZZLE, "", "not a step"),
        (PUZZLE, "Step 1: 13 - 9 = 4", "not a step"),
        (PUZZLE, "__import__('os').system('echo hacked') = 4", "not a step"),
        (PUZZLE, "1" * 10_000 + " + 1 = 2", "longer than"),
        (PUZZLE, "١٣ - 9 = 4", "not a step"),  # non-ASCII digits are not numbers
    ],
)
def test_invalid_steps(numbers, step, error):
    verdict = check_step(numbers, step)
    assert not verdict.valid
    assert error in verdict.error
    assert verdict.remaining == ()


@pytest.mark.parametrize(
    ("answer", "numbers"),
    [
        ("(13 - 9) * (10 - 4)", PUZZLE),
        ("(13-9)*(10-4) = 24", PUZZLE),
        ("(13 − 9) × (10 − 4) = 24.", PUZZLE),
        ("8 / (3 - 8 / 3)", (3, 3, 8, 8)),  # floats make this 23.999999999999996
        ("  ((8 / (3 - (8 / 3))))  ", (3, 3, 8, 8)),
        ("1 * 1 * 4 * 6", (1, 1, 4, 6)),
        ("(5 - 1 / 5) * 5", (1, 5, 5, 5)),
        ("6 / (1 - 3 / 4)", (1, 3, 4, 6)),
        ("24 = 24", (24,)),
        ("(" * 90 + "24" + ")" * 90, (24,)),  # deep but legal nesting
    ],
)
def test_correct_answers(answer, numbers):
    verdict = judge_answer(answer, numbers)
    assert verdict.correct, verdict.error
    assert verdict.value == 24


@pytest.mark.parametrize(
    ("answer", "numbers", "error"),
    [
        ("(13 - 9) * (10 - 5)", PUZZLE, "uses 5 9 10 13"),  # a number not in the puzzle
        ("(13 - 9) * 10 - 4 * 4", PUZZLE, "uses"),  # a number reused
        ("13 + 10 + 4 - 3", PUZZLE, "uses"),
        ("(10 - 4) * 4", PUZZLE, "uses"),  # a number left out
        ("13 + 9 + 4 + 10", PUZZLE, "equals 36"),
        ("(13 - 9) * (10 - 4) = 25", PUZZLE, "right-hand side"),
        ("(13 - 9) * (10 - 4) = 24 = 24", PUZZLE, "more than one"),
        ("8 / (3 - 8 / 3.0)", (3, 3, 8, 8), "only digits"),  # decimals are not puzzle numbers
        ("4 ** 2 + 9 - 1", (1, 2, 4, 9), "Pow"),
        ("13 // 9 * 24", PUZZLE, "FloorDiv"),
        ("-4 + 9 + 10 + 13 - 4", PUZZLE, "UnaryOp"),  # unary minus is not one of the four operations
        ("4 / (9 - 9) + 10 + 13", (4, 9, 9, 10, 13), "division by zero"),
        ("1 3 + 11", (1, 3, 11), "not an arithmetic expression"),  # concatenation
        ("2(3 + 9)", (2, 3, 9), "'Call' is not allowed"),  # implicit multiplication
        ("0x18", (24,), "only digits"),
        ("1_3 + 11", (13, 11), "only digits"),
        ("__import__('os').system('rm -rf /')", PUZZLE, "only digits"),
        ("24", PUZZLE, "uses 24"),
        ("", PUZZLE, "not an arithmetic expression"),
        ("(" * 128 + "24" + ")" * 128, (24,), "longer than"),  # nesting is bounded by the length cap
        ("9" * 300, PUZZLE, "longer than"),
        ("1" + "*1" * 200, (1,) * 201, "longer than"),
    ],
)
def test_wrong_answers(answer, numbers, error):
    verdict = judge_answer(answer, numbers)
    assert not verdict.correct
    assert error in verdict.error


def test_a_huge_product_is_judged_exactly_and_quickly():
    answer = "*".join(["99999999"] * 28)
    assert len(answer) <= MAX_ANSWER_CHARS
    verdict = judge_answer(answer, [99999999] * 28)
    assert not verdict.correct
    assert verdict.value == 99999999**28


def test_other_targets():
    assert judge_answer("(1 + 2) * 3", [1, 2, 3], target=9).correct
    assert not judge_answer("(1 + 2) * 3", [1, 2, 3]).correct


@pytest.mark.parametrize(
    ("token", "value"),
    [("7", 7), ("-7", -7), ("8/3", Fraction(8, 3)), ("6/3", 2), ("2.5", Fraction(5, 2)), ("1/0", None), ("x", None)],
)
def test_parse_number(token, value):
    assert parse_number(token) == value


def test_replay_expressions_spells_out_the_answer():
    steps = ["8 / 3 = 8/3", "3 - 8/3 = 1/3", "8 / 1/3 = 24"]
    assert replay_expressions([3, 3, 8, 8], steps) == [("8 / (3 - 8 / 3)", 2)]
    with pytest.raises(ValueError, match="cannot replay"):
        replay_expressions([3, 3, 8, 8], ["8 + 8 = 16", "8 + 3 = 11"])


@pytest.mark.parametrize("value", [None, b"24", 24, 24.0, ["24"], bytearray(b"1 + 1 = 2")])
def test_input_that_is_not_text_is_invalid_and_never_raises(value):
    name = type(value).__name__
    assert judge_answer(value, [24]) == AnswerVerdict(False, None, f"an answer is a str, got {name}")
    assert check_step((1, 1), value) == StepVerdict(None, f"a step is a str, got {name}")
    assert parse_step(value) == f"a step is a str, got {name}"
    assert parse_number(value) is None
    assert number_parse_number(value) is None
    assert evaluate(value) is None


@pytest.mark.parametrize(
    "text",
    ["x" * 257, "1 + 1 = 2" + " " * 8000, "1" * 8192],
)
def test_overlong_steps_are_refused_before_the_cache(text):
    before = _parse_step.cache_info().currsize
    assert parse_step(text) == "step longer than 256 characters"
    assert _parse_step.cache_info().currsize == before
