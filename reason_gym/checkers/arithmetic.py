"""Exact arithmetic in free text: the equalities a reasoning step states, checked exactly.

A claim is an equality between two pure arithmetic expressions (``5 * 3 = 15``); both sides are evaluated exactly
by :mod:`reason_gym.checkers.numbers` (what an expression may contain is described there), so ``0.1 + 0.2 = 0.3``
is true and ``1/3 = 0.33`` false. The names that module defines for expressions and numbers (:func:`evaluate`,
:func:`linear_form`, :func:`normalize`, :func:`parse_number`, :data:`MAX_EXPRESSION_CHARS`) are importable from
here too.

Bounds, so that any text is judged in bounded time and memory: text scanned for claims is cut to
:data:`MAX_TEXT_CHARS`, at most :data:`MAX_CLAIMS` claims are checked, and each side is bounded as
:mod:`~reason_gym.checkers.numbers` bounds every expression.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from reason_gym.checkers.numbers import (
    MAX_EXPRESSION_CHARS,
    MAX_VALUE_BITS,
    Linear,
    Number,
    evaluate,
    evaluate_normalized,
    linear_form,
    normalize,
    parse_number,
)

__all__ = [
    "MAX_CLAIMS",
    "MAX_EXPRESSION_CHARS",
    "MAX_TEXT_CHARS",
    "MAX_VALUE_BITS",
    "Claim",
    "Linear",
    "Number",
    "check_arithmetic_claims",
    "evaluate",
    "find_arithmetic_claims",
    "linear_form",
    "normalize",
    "parse_number",
]

MAX_TEXT_CHARS = 100_000
""":func:`find_arithmetic_claims` reads only this many characters of a text."""

MAX_CLAIMS = 1000
""":func:`find_arithmetic_claims` reads at most this many ``=`` signs (so finds at most this many claims)."""


# ------------------------------------------------------------------ claims in free text


class Claim(NamedTuple):
    """An equality stated in text, with both sides evaluated exactly.

    Attributes:
        left: The left side, as normalised text.
        right: The right side, as normalised text.
        left_value: The exact value of the left side.
        right_value: The exact value of the right side.
    """

    left: str
    right: str
    left_value: Number
    right_value: Number

    @property
    def holds(self) -> bool:
        """Whether the two sides are exactly equal."""
        return self.left_value == self.right_value


# A run of numbers, operators, parentheses, '=' and blanks; '.' only inside a number, so '= 7.' ends before it.
# Every alternative consumes input and nothing follows the '+', so matching is linear (no backtracking).
_SPAN = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?|[-+*/^()= \t])+")
_EQUALS = re.compile(r"=+")
_CALCULATOR = re.compile(r"<<([^<>\n]*)>>")
_BARE_NUMBER = re.compile(r"[ \t]*[0-9.]+[ \t]*")
_SAFE_BEFORE = "\n\"'“‘["
"""Characters that may touch the start of a claim: ``3:4 = 0.75`` is a ratio, ``f(2) = 4`` a function."""
_SAFE_BEFORE_SIGN = _SAFE_BEFORE + ":;,"
"""Characters after which a claim may start with an operator (``Profit: -5 + 3 = -2``); after ``x - 5 = 2``
the left side is cut off, so it is not checked."""
_SAFE_BEFORE_WORD = _SAFE_BEFORE_SIGN + ".?!"
"""Besides letters (prose: ``She has 5 * 3 = 15``), what may come before a claim; after ``12 % 5 = 2`` or
``2² = 4`` the left side is an operand of a symbol the parser does not read."""
_SAFE_AFTER = "\n.,;:?]\"'”’"
"""Characters that may touch the end of a claim (``= 7.``); ``= 2x``, ``= 5%``, ``= 4!`` are not plain numbers."""


def _left_side(text: str, start: int, segment: str) -> str | None:
    """The first side of a span, or ``None`` when the text around it shows that it is cut off."""
    segment = segment[-MAX_EXPRESSION_CHARS - 1 :]  # a longer side cannot be evaluated: bound the work
    closing = _unmatched(segment, ")", "(")
    if closing:  # a list marker, "2) 3 + 4 = 7": the claim starts after it
        segment = segment[closing[-1] + 1 :]
        if segment[:1] not in (" ", "\t") or segment.lstrip()[:1] in "+-*/^":
            return None  # 'f(x)2 = 4', 'f(x) + 3 = 5'
    else:
        before = text[start - 1] if start else "\n"
        if _continues(text, start, before):
            return None
        if segment[:1] not in (" ", "\t") and before not in _SAFE_BEFORE:
            return None  # touches a word, a symbol or a number: 'x2', '3:4', '\sqrt(2)'
        if not before.isalpha() and before not in _SAFE_BEFORE_WORD:
            return None
        if segment.lstrip()[:1] in "+-*/^" and before not in _SAFE_BEFORE_SIGN:
            return None  # an operator continues an expression that starts before the span: 'x + 2 = 5'
        if before not in _SAFE_BEFORE and _BARE_NUMBER.fullmatch(segment):
            return None  # a label or an operand: 'Week 1 = 20 + 5' is no claim that 1 = 25, nor '7980 : 420 = 19'
        if before.isalpha() and not text[start - 2 : start - 1].isalpha():
            return None  # a one-letter word is more likely a variable or a times sign: '60 minutes x 3/4 = 45'
    while segment.count("(") > segment.count(")") and segment.lstrip().startswith("("):
        segment = segment.lstrip()[1:]  # "(3 + 4 = 7)"
    return segment


def _right_side(text: str, end: int, segment: str) -> str | None:
    """The last side of a span, or ``None`` when the text after it shows that it is cut off."""
    segment = segment[: MAX_EXPRESSION_CHARS + 1]
    opening = _unmatched(segment, "(", ")")
    if opening:  # a parenthetical remark, "= 14 (apples)", ends the claim; "= 2 (x + 1)" is a product
        inside = (segment[opening[0] + 1 :] + text[end : end + 2]).lstrip()
        segment = segment[: opening[0]]
        return segment if segment[-1:] in (" ", "\t") and inside[:2].isalpha() else None
    after, following = text[end : end + 1], text[end + 1 : end + 2]
    if segment[-1:] not in (" ", "\t"):
        if after and after not in _SAFE_AFTER:
            return None
        if after in ".,:" and following and not following.isspace() and following not in "\"'”’)]":
            return None  # '0.333...', '7,5', '3:4'
    elif after.isalpha() and not following.isalpha():
        return None  # a one-letter word is more likely a variable than a unit: '10 = 2 x'
    elif (after == "\\" and following.isalpha()) or text.startswith("remainder", end):
        return None  # '-2 = 3 \cos(phi)', '100 / 12 = 8 remainder 4'
    while segment.count(")") > segment.count("(") and segment.rstrip().endswith(")"):
        segment = segment.rstrip()[:-1]
    return segment


def _continues(text: str, start: int, before: str) -> bool:
    """Whether the span at ``start`` continues an expression before it: after a LaTeX command (``\\ge 27``,
    ``\\dotsm``) or an operator at the end of the line before (``45 /`` then ``8 = 5.625``)."""
    if before.isalpha():
        word = start - 1
        while word > max(start - 32, 0) and text[word - 1].isalpha():
            word -= 1
        return text[word - 1 : word] == "\\"
    return before == "\n" and text[max(start - 64, 0) : start].rstrip()[-1:] in tuple("+-*/^=(")


def _unmatched(segment: str, kind: str, partner: str) -> list[int]:
    """Positions of the ``kind`` parentheses in ``segment`` that have no ``partner``."""
    if kind not in segment:
        return []
    forward = kind == ")"
    order = range(len(segment)) if forward else range(len(segment) - 1, -1, -1)
    depth, unmatched = 0, []
    for i in order:
        if segment[i] == partner:
            depth += 1
        elif segment[i] == kind:
            if depth:
                depth -= 1
            else:
                unmatched.append(i)
    return sorted(unmatched)


def find_arithmetic_claims(text: str) -> list[Claim]:
    """Every equality between two pure arithmetic expressions that ``text`` states, in order.

    A chain ``a = b = c`` states ``a = b`` and ``b = c``. A side that is not pure arithmetic on numbers
    (``x + 2``, ``5%``, ``3 apples``) is not evaluated, so the equalities that touch it are not claims; neither
    are sides the surrounding text cuts off or continues (``x + 2 = 5`` is not a claim that ``+2 = 5``, nor
    ``Week 1 = 20 + 5`` one that ``1 = 25``). Approximations (``≈``) are not equalities. GSM8K's calculator
    annotations (``48/2 = <<48/2=24>>24``) are claims of their own, listed after those of the text around
    them (which then reads ``48/2 = 24``).

    The rules favour precision over recall: on the reference solutions of GSM8K's training set, 41,790 of the
    41,824 claims found hold, and the 34 others are mistakes or sloppy notation in the data.

    Raises:
        TypeError: ``text`` is not a string.

    >>> [(c.left, c.right, c.holds) for c in find_arithmetic_claims("She has 5 * 3 = 15 apples, x + 2 = 5.")]
    [('5 * 3', '15', True)]
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = text[:MAX_TEXT_CHARS]
    if "<<" in text:  # GSM8K calculator annotations: each is a claim of its own, read after the text
        annotations = _CALCULATOR.findall(text)
        text = "\n".join([_CALCULATOR.sub("", text), *annotations])
    text = normalize(text)
    claims: list[Claim] = []
    equals_left = MAX_CLAIMS
    for match in _SPAN.finditer(text):
        if "=" not in match.group():
            continue
        sides: list[str | None] = list(_EQUALS.split(match.group(), maxsplit=equals_left))
        if "=" in sides[-1]:  # type: ignore[operator]
            sides[-1] = None  # past the last '=' to read: the rest of the span is not read
        else:
            sides[-1] = _right_side(text, match.end(), sides[-1])  # type: ignore[arg-type]
        sides[0] = _left_side(text, match.start(), sides[0])  # type: ignore[arg-type]
        left = _value(sides[0])
        for i in range(1, len(sides)):
            right = _value(sides[i])
            if left is not None and right is not None:
                claims.append(Claim(sides[i - 1].strip(), sides[i].strip(), left, right))  # type: ignore[union-attr]
            left = right
        equals_left -= len(sides) - 1
        if equals_left <= 0:
            break
    return claims


def _value(side: str | None) -> Number | None:
    return None if side is None else evaluate_normalized(side)


def check_arithmetic_claims(text: str) -> tuple[int, int]:
    """Checks the arithmetic equalities a reasoning step states: ``(number_true, number_checked)``.

    See :func:`find_arithmetic_claims` for what counts as a claim. Exact: ``1/3 = 0.33`` is false.

    >>> check_arithmetic_claims("48/2 = 24, so 2 + 3 = 5 = 10 / 2 and 1/3 = 0.33")
    (3, 4)
    >>> check_arithmetic_claims("Let x + 2 = 5, so x = 3.")
    (0, 0)
    """
    claims = find_arithmetic_claims(text)
    return sum(claim.holds for claim in claims), len(claims)
