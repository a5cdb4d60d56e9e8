"""A fraction written without spaces is one number, except where a power binds it first: precedence on a grid.

The expected values are computed here with :class:`fractions.Fraction`, as Python's own precedence reads each
expression (a power binds tighter than a division, whatever the blanks or signs around it).
"""

import itertools
from fractions import Fraction

import pytest

from reason_gym.checkers.arithmetic import evaluate, find_arithmetic_claims, linear_form

POWERS = ["^", " ^ ", "^ ", " ^", "**", " ** ", "** ", " **"]
SIGNS = ["", "-", "+", " -", "- ", " - ", "--", "-+"]


def _sign(sign: str) -> int:
    return -1 if sign.count("-") % 2 else 1


GRID_BEFORE = [
    (f"{base}{power}{sign}{p}/{q}", Fraction(base) ** (_sign(sign) * p) / q)
    for base, power, sign, (p, q) in itertools.product([2, 3], POWERS, SIGNS, [(6, 2), (4, 2), (1, 3)])
]
"""``b ^ e/q`` is ``(b ^ e) / q``: the exponent is the numerator alone."""

GRID_AFTER = [
    (f"{p}/{q}{power}{e}", Fraction(p) / Fraction(q) ** e)
    for power, (p, q), e in itertools.product(POWERS, [(6, 2), (1, 3), (9, 3)], [2, 3])
]
"""``p/q ^ e`` is ``p / (q ^ e)``: the power binds the denominator alone."""


@pytest.mark.parametrize(("expression", "value"), GRID_BEFORE + GRID_AFTER)
def test_a_power_binds_before_a_tight_fraction(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 ^ 6/2", 32),  # the audit's examples
        ("2^6/2", 32),
        ("2**-4/2", Fraction(1, 32)),
        ("2 ** 6/2", 32),
        ("2^(6/2)", 8),  # parenthesised by its writer: the fraction is the exponent
        ("(6/2)^2", 9),
        ("25 / 1/3", 75),  # no power nearby: a tight fraction is still one number (GSM8K)
        ("1/2/3", Fraction(1, 6)),
        ("3 * 1/3", 1),
        ("2 - 1/2", Fraction(3, 2)),
    ],
)
def test_tight_fraction_examples(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("2 ** 6/2 = 8", False),
        ("2 ** 6/2 = 32", True),
        ("2 ^ 6/2 = 8", False),
        ("2^-4/2 = 1/4", False),
        ("6/2 ^ 2 = 9", False),
        ("6/2 ^ 2 = 1.5", True),
    ],
)
def test_claims_follow_the_same_precedence(text, holds):
    [claim] = find_arithmetic_claims(text)
    assert claim.holds is holds


def test_linear_forms_follow_the_same_precedence():
    assert linear_form("x + 2 ^ 6/2") == (1, 32)
    assert linear_form("x + 2^(6/2)") == (1, 8)
