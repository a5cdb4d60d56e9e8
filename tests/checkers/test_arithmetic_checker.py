"""Verdict tables for exact arithmetic: expressions, numbers, linear forms and claims in free text."""

import time
from fractions import Fraction

import pytest

from reason_gym.checkers.arithmetic import (
    MAX_CLAIMS,
    MAX_EXPRESSION_CHARS,
    check_arithmetic_claims,
    evaluate,
    find_arithmetic_claims,
    linear_form,
    normalize,
    parse_number,
)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("3 + 4 * 5", 23),
        ("(3 + 4) * 5 - 6 / 2", 32),
        ("8 / (3 - 8 / 3)", 24),  # floats make this 23.999999999999996
        ("0.1 + 0.2", Fraction(3, 10)),  # exact decimals: 0.30000000000000004 in floats
        ("7 / 2", Fraction(7, 2)),
        ("6 / 3", 2),  # whole values are ints
        ("2.50 * 2", 5),
        ("-3 - -4", 1),
        ("+5", 5),
        ("2^10", 1024),
        ("2**10", 1024),
        ("2^3^2", 512),  # right-associative, as in mathematics
        ("-2^2", -4),
        ("2^-2", Fraction(1, 4)),
        ("(2/3)^2", Fraction(4, 9)),
        ("4^(1/2) * 0 + 1^100000", None),  # a fractional exponent is not arithmetic here
        ("(-1)^100001", -1),
        ("0^5", 0),
        ("12 × 4", 48),
        ("12 · 4", 48),
        ("12 ÷ 4 − 1", 2),
        ("3 x 4", 12),
        ("3x4", 12),
        ("3 X 4", 12),
        (r"$12 \times 4$", 48),
        (r"\frac{6}{3} + \dfrac{1}{2}", Fraction(5, 2)),
        (r"\frac{\frac{1}{2}}{3}", Fraction(1, 6)),
        (r"2^{10} \cdot 3", 3072),
        (r"\left(1 + 2\right) \div 3", 1),
        ("$1,234 + $1", 1235),
        ("1,234,567.5 * 2", 2469135),
        ("007 + 1", 8),
        ("0.05 * 20", 1),
        ("  ( ( 5 ) )  ", 5),
        ("(" * 90 + "1" + ")" * 90, 1),
    ],
)
def test_evaluate(expression, value):
    assert evaluate(expression) == value
    if value is not None:
        assert type(evaluate(expression)) in (int, Fraction)


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "2x",  # algebra, not a number
        "x",
        "3 x",
        "0x10",  # hex is not 0 * 10
        "1 / 0",
        "1 / (2 - 2)",
        "0^0",
        "0^-1",
        "2^0.5",
        "9^9^9",  # refused before computing
        "2^4097",
        "10^1234",
        "(10^1000)^5",
        "1" * (MAX_EXPRESSION_CHARS + 1),
        "1" + "+1" * MAX_EXPRESSION_CHARS,
        "(" * 128 + "1" + ")" * 128,  # nesting is bounded by the length cap
        "-" * 200 + "1" + "+" * 60,
        "1e3",
        "1_000",
        "1j",
        "10 // 3",
        "10 % 3",
        "2 @ 3",
        "(1, 2)",
        "(1,23)",
        "f(2)",
        "(2)(3)",  # no implicit products in pure arithmetic
        "2 (3)",
        "1 2",
        "1.2.3",
        "3 = 3",
        "3 < 4",
        "__import__('os').system('echo pwned')",
        "().__class__.__bases__[0]",
        "lambda: 1",
        "[1, 2]",
        "'1' + '2'",
        "١٣ + 1",  # Arabic-Indic digits
        "３ + 1",  # full-width digits
        "2² + 1",  # superscripts
        "\x00",
        "1\n+ 2",
        "1/3 ≈ 0.33",
        "50%",
        "√4",
    ],
)
def test_evaluate_refuses(expression):
    assert evaluate(expression) is None


def test_evaluate_is_exact_on_huge_values_and_bounded():
    assert evaluate("2^4095 - 2^4094") == 2**4094
    assert evaluate("2^4096") is None
    assert evaluate("99999999^28") == 99999999**28
    started = time.process_time()  # CPU time: a shared, loaded machine does not make this fail
    for text in ("9^9^9^9", "(2^4096)^4096", "2^(2^(2^(2^2)))", "1" * 250 + "^" + "9" * 5):
        assert evaluate(text) is None
    assert time.process_time() - started < 0.5  # computing any of them would take hours


def test_evaluate_refuses_non_strings():
    assert evaluate(42) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("-4", -4),
        ("− 4", -4),
        ("7/2", Fraction(7, 2)),
        ("-7/2", Fraction(-7, 2)),
        ("3.5", Fraction(7, 2)),
        ("3.50", Fraction(7, 2)),
        (".5", Fraction(1, 2)),  # no leading zero
        ("-.25", Fraction(-1, 4)),
        ("(.75)", Fraction(3, 4)),
        (".", None),
        ("5.", 5),  # a sentence's full stop
        ("4.0", 4),
        (r"\frac{7}{2}", Fraction(7, 2)),
        (r"-\frac{7}{2}", Fraction(-7, 2)),
        (r"\boxed{12}", 12),
        ("$1,200.", 1200),
        ("(5)", 5),
        ("3 + 4", None),  # an expression, not a number
        ("2 * 3", None),
        ("1/2/3", None),
        ("1 - 2", None),
        ("7 apples", None),
        ("x = 5", None),
        ("five", None),
        ("1/0", None),
        ("", None),
        ("9" * 300, None),
        # a number literal only: a division, spaced or parenthesised, is an expression (the question copied back)
        ("12 / 4", None),
        ("(12)/(4)", None),
        ("(12) / 4", None),
        ("0.5/0.25", None),
        ("--3", None),
        ("-+3", None),
        ("- -3", None),
        ("6/2", None),  # not in lowest terms: the division is still to do
        ("7/1", None),
        ("0/3", None),
        (r"\frac{12}{4}", None),
        (r"\frac{1+2}{3}", None),
        (r"\frac72", Fraction(7, 2)),
        (r"\boxed{-7/2}", Fraction(-7, 2)),
        ("(-7/2)", Fraction(-7, 2)),
        ("-(7/2)", Fraction(-7, 2)),
        ("-(7)/2", None),
        ("+3", 3),
        ("((3))", 3),
        ("(3", None),
        ("3)", None),
        (")3(", None),
        ("(3)(4)", None),
        ("3 x 4", None),
        ("2^3", None),
        ("1e5", None),
        (None, None),
        (7, None),
        (b"7", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    ("expression", "form"),
    [
        ("x", (1, 0)),
        ("3x + 4", (3, 4)),
        ("3 x + 4", (3, 4)),
        ("3*x + 4", (3, 4)),
        ("2(x + 1) - x", (1, 2)),
        ("(x + 3) / 2", (Fraction(1, 2), Fraction(3, 2))),
        ("x / 3 + x / 6", (Fraction(1, 2), 0)),
        ("20 - 3x", (-3, 20)),
        ("-x", (-1, 0)),
        ("(x)(2)", (2, 0)),
        ("x * 2^3", (8, 0)),
        ("1.5x", (Fraction(3, 2), 0)),
        ("12", (0, 12)),
        ("3 × x − 1", (3, -1)),
        ("x * x", None),
        ("x^2", None),
        ("2^x", None),
        ("1 / x", None),
        ("x / (x - x)", None),
        ("x / 0", None),
        ("y + 1", None),
        ("xy", None),
        ("x2", None),
        ("3x = 4", None),
        ("", None),
    ],
)
def test_linear_form(expression, form):
    assert linear_form(expression) == form


def test_linear_form_in_another_variable():
    assert linear_form("2(y - 1)", "y") == (2, -2)
    assert linear_form("x + y", "y") is None
    with pytest.raises(ValueError, match="one ASCII letter"):
        linear_form("x", "xy")


# (text, number_true, number_checked): what a reasoning step states, and what the checker makes of it.
CLAIMS = [
    ("48/2 = 24", 1, 1),
    ("She has 5 * 3 = 15 apples", 1, 1),
    (r"So $12 \times 4 = 48$.", 1, 1),
    ("2 + 3 = 5 = 10 / 2", 2, 2),  # a chain states each adjacent equality
    (r"\frac{6}{3} = 2", 1, 1),
    ("0.1 + 0.2 = 0.3", 1, 1),  # exactly true with exact decimals
    ("1/3 = 0.33", 0, 1),  # looks right, is not
    ("1/3 = 0.333...", 0, 0),  # a repeating decimal is not a finite one: not checked
    ("1/3 ≈ 0.33", 0, 0),  # an approximation is not an equality
    ("8 / (3 - 8 / 3) = 24", 1, 1),
    ("2^10 = 1024", 1, 1),
    ("2^10 = 1000", 0, 1),
    ("2^{10} = 1024", 1, 1),
    ("9^9^9 = 1", 0, 0),  # too large to check: not counted
    ("3 + 4 == 7", 1, 1),
    ("7 = 3 + 4.", 1, 1),
    ("3 + 4 = 8", 0, 1),
    ("3 + 4 = 7, 7 * 2 = 14", 2, 2),
    ("3+4=7\n8+1=10", 1, 2),
    ("1 = 1 = 2", 1, 2),
    ("Step 1: 3 + 4 = 7", 1, 1),
    ("1. 3 + 4 = 7", 1, 1),
    ("2) 3 + 4 = 7", 1, 1),
    ("(3 + 4 = 7)", 1, 1),
    ("[3+4=7]", 1, 1),
    ("3 + 4 = 7 (apples)", 1, 1),
    ("Profit: -5 + 3 = -2", 1, 1),
    ("(2 + 3) * (4 + 5) = 45", 1, 1),
    ("Total: $5 + $3 = $8.", 1, 1),
    ("1,000 + 2,000 = 3,000", 1, 1),  # thousands separators
    ("3 x 4 = 12", 1, 1),
    ("3x4=12", 1, 1),
    ("3 − 1 = 2 and 6 ÷ 3 = 2", 2, 2),
    ("3.5 + 1.5 = 5.0", 1, 1),
    ("15 = 3 * 5", 1, 1),
    ("Week 1 = 20 + 5 = 25", 1, 1),  # 'Week 1' is a label, not a claim that 1 = 25
    ("a = 3 + 4 = 7", 1, 1),
    # GSM8K: calculator annotations are claims of their own; fractions without spaces are numbers.
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.", 2, 2),
    ("He has <<5*3=15>>15 apples", 1, 1),
    ("48/2 = <<48/2=24>>25 clips", 1, 2),  # the text's result is wrong, the annotation right
    ("He pays 25 / 1/3 = 75 dollars", 1, 1),  # 25 / (1/3)
    ("Each gets 24 x (1/3) = 8", 1, 1),
    ("60 minutes x 3/4 = 45", 0, 0),  # 'minutes x' is not a number times
    ("1/2/3 = 1/6", 1, 1),  # usual precedence where fractions touch
    # MATH: LaTeX.
    (r"the area is $\frac 12 \cdot 6 \cdot 6 = \boxed{18}$ square units", 1, 1),
    (r"$\dfrac{3}{4} \times 80 = 60$", 1, 1),
    (r"$10^5 = 100{,}000$ and $2^{10} = 1,\!024$", 2, 2),
    (r"$2^23^2 = 36$", 0, 0),  # in LaTeX 2^23^2 is 2^2 3^2: not read
    (r"$\gcd(28,365)=1$", 0, 0),
    ("(28,365)=1", 0, 0),  # a pair, not 28365
    (r"so $\boxed{11}=2$ divisors", 0, 0),  # a function the problem defines
    (r"$t \ge27 \cdot5=135$", 0, 0),  # continues a LaTeX relation
    (r"$\frac23 \dotsm \frac{21}{22}=\frac{2}{22}$", 0, 0),
    (r"$-2 = 3 \cos \phi$", 0, 0),
    ("So 45 /\n8 = 5.625", 0, 0),  # continues the line before
    ("100 / 12 = 8 remainder 4", 0, 0),
    # Not pure arithmetic on numbers, or cut off by the text around it: not checked.
    ("x + 2 = 5", 0, 0),
    ("2x = 10", 0, 0),
    ("10 = 2x", 0, 0),
    ("10 = 2 x", 0, 0),
    ("10 = 2(x + 1)", 0, 0),
    ("3x + 4 = 19 - 3", 0, 0),
    ("f(2) = 4", 0, 0),
    ("f(x) + 3 = 5", 0, 0),
    (r"\sqrt{4} = 2", 0, 0),
    ("ratio 3:4 = 0.75", 0, 0),
    ("25% = $5", 0, 0),
    ("12 % 5 = 2", 0, 0),
    ("5! = 120", 0, 0),
    ("24 = 4!", 0, 0),
    ("2² = 4", 0, 0),
    ("4 = 2²", 0, 0),
    ("3 km * 2 = 6 km", 0, 0),
    ("is -5 + 3 = -2", 0, 0),  # 'is - 5' might be a subtraction from something before: not checked
    ("3 + 4 = 7,5", 0, 0),  # a decimal comma is not read
    ("1,5 + 1 = 2,5", 0, 0),
    ("0x10 = 16", 0, 0),
    ("10 // 3 = 3", 0, 0),
    ("1e3 = 1000", 0, 0),
    ("٣ + 4 = 7", 0, 0),
    ("３ + 4 = 7", 0, 0),
    ("3 + 4 =", 0, 0),
    ("= 7", 0, 0),
    ("0^0 = 1", 0, 0),
    ("1/0 = 1/0", 0, 0),
    ("__import__('os').system('ls') = 0", 0, 0),
    ("", 0, 0),
    ("No numbers here = none", 0, 0),
]


@pytest.mark.parametrize(("text", "true", "checked"), CLAIMS)
def test_claims(text, true, checked):
    assert check_arithmetic_claims(text) == (true, checked)


def test_claims_carry_both_sides_and_values():
    [claim] = find_arithmetic_claims("So 7 / 2 = 3.5 cups.")
    assert (claim.left, claim.right, claim.left_value, claim.holds) == ("7 / 2", "3.5", Fraction(7, 2), True)


def test_claims_refuse_non_strings():
    with pytest.raises(TypeError, match="text must be a str"):
        check_arithmetic_claims(None)  # type: ignore[arg-type]


def test_at_most_max_claims_are_read():
    assert check_arithmetic_claims("1 + 0 = 1, " * (MAX_CLAIMS + 5)) == (MAX_CLAIMS, MAX_CLAIMS)


ADVERSARIAL = {
    "open parentheses": "(" * 100_000,
    "one side of parentheses": "(" * 50_000 + "=" + ")" * 49_999,
    "equals signs": "1=" * 50_000,
    "one long sum": "1+" * 50_000 + "=1",
    "distinct claims": ", ".join(f"{i} * {i + 7} + {i}/3 = {i * (i + 7)}" for i in range(10_000)),
    "digits": "9" * 100_000 + " = 9",
    "thousands": "1" + ",000" * 25_000 + " = 1",
    "open fractions": "\\frac{" * 16_000,
    "towers": "9^9^9^9 = 1, " * 7_000,
    "big powers": "(2^4000)*(2^4000)*(2^4000) = 3, " * 3_000,
    "times signs": "3 x " * 25_000,
    "dots": "1." * 50_000 + "=1",
    "blanks": "1" + " " * 100_000 + "= 1",
    "nesting": ("(" * 99 + "1" + ")" * 99 + " = 1, ") * 500,
    "unicode": "١٣ × ³ ÷ − ≈ " * 10_000,
    "injection": "__import__('os').system('rm -rf /') = 0; " * 2_500,
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_adversarial_text_is_checked_quickly_and_never_raises(name):
    text = ADVERSARIAL[name][:100_000]
    started = time.process_time()
    true, checked = check_arithmetic_claims(text)
    assert time.process_time() - started < 2.0  # well above the ~0.1 s it takes, far below a blow-up
    assert 0 <= true <= checked <= MAX_CLAIMS


def test_longer_text_is_cut():
    assert check_arithmetic_claims("x" * 200_000 + " 1 + 1 = 2") == (0, 0)


def test_normalize_example():
    assert normalize(r"$\frac{1}{2} \cdot 4$ and 3 x 4") == "((1)/(2)) * 4 and 3*4"
    assert normalize("3 x 4", times_x=False) == "3 x 4"
