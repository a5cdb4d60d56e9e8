"""Exact arithmetic in free text: expressions, numbers, linear forms and the equalities a reasoning step states.

Nothing is evaluated with ``eval``, ``exec`` or sympy: text is normalised, checked against a character whitelist,
parsed with :func:`ast.parse` and walked over a whitelist of node types with exact rational arithmetic
(:class:`fractions.Fraction`, with plain ``int`` whenever a value is whole). ``0.1 + 0.2 = 0.3`` is therefore
true and ``1/3 = 0.33`` false.

What an expression may contain:

- numbers: integers and exact decimals (``2.5``, never floats); comma groups of exactly three digits are
  thousands separators, so ``1,234`` is ``1234``, but ``(28,365)`` stays a pair (a gcd, a point) and ``1,23``
  is not a number. Leading zeros are dropped (``007`` is ``7``). Scientific notation (``1e5``), ``_`` separators,
  hex and non-ASCII digits (``١٣``, ``３``, superscripts) are not numbers;
- ``+ - * /``, unary ``-`` and ``+``, parentheses, and powers ``a^b`` or ``a**b`` (right-associative, as in
  mathematics: ``2^3^2 = 2^9``) with a whole exponent; ``0^0`` and ``0^-1`` are undefined;
- spellings: ``× · ⋅ ∗`` and LaTeX ``\\times \\cdot`` mean ``*``; ``÷`` and ``\\div`` mean ``/``; ``−`` and
  ``–`` mean ``-``; ``\\frac{a}{b}`` (also ``\\dfrac``, ``\\tfrac``, ``\\cfrac``, ``\\frac12``) means
  ``(a)/(b)``; ``{ }`` are parentheses (``2^{10}``); ``$`` signs, ``\\left``, ``\\right``, ``\\boxed`` after
  ``=``, and LaTeX spacing are ignored (``1,\\!000`` and ``1{,}000`` are 1000). In LaTeX (text with a
  backslash command, or between two ``$``) an exponent without braces is one character: ``2^23^2`` is not
  ``2^(23)^2``, so it is not read;
- ``x`` between two numbers (``3 x 4``, ``3x4``, ``24 x (1/3)``) means ``*`` in pure arithmetic, but never next
  to a letter: ``2x`` is algebra (two times x), not a number. ``0x10`` is not read as ``0 * 10``;
- a fraction written without spaces is one number: ``25 / 1/3`` is ``25 / (1/3) = 75`` (GSM8K writes that, and
  Game24 steps read fractions the same way); ``1/2/3`` and ``2^1/2`` keep the usual precedence.

Bounds, so that any input is judged in bounded time and memory: expressions longer than
:data:`MAX_EXPRESSION_CHARS` are rejected unread; every intermediate value must fit in :data:`MAX_VALUE_BITS`
bits (numerator and denominator), checked *before* a power is computed, so ``9^9^9`` is rejected at once; text
scanned for claims is cut to :data:`MAX_TEXT_CHARS` and at most :data:`MAX_CLAIMS` claims are checked.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

from reason_gym.checkers.game24 import Number, apply

MAX_EXPRESSION_CHARS = 256
"""Longer expressions (after normalisation) are not evaluated."""

MAX_VALUE_BITS = 4096
"""No intermediate value may have a numerator or denominator longer than this (about 1,233 digits)."""

MAX_TEXT_CHARS = 100_000
""":func:`find_arithmetic_claims` reads only this many characters of a text."""

MAX_CLAIMS = 1000
""":func:`find_arithmetic_claims` reads at most this many ``=`` signs (so finds at most this many claims)."""

Linear = tuple[Number, Number]
"""A linear form ``(a, b)``, meaning ``a * x + b``, with exact coefficients."""

# ------------------------------------------------------------------ normalisation

_FRAC = re.compile(r"\\[dtc]?frac\s*(?:\{([^{}]*)\}\s*\{([^{}]*)\}|([0-9])\s*([0-9]))")  # also \frac12
_LATEX = re.compile(r"\\(?:(times|cdot|ast|div|left|right)(?![A-Za-z])|[,!;: ()\[\]$])")
_BOXED_RESULT = re.compile(r"(?<==)([ \t]*)\\boxed(?![A-Za-z])")
"""``= \\boxed{75}`` is a result; elsewhere ``\\boxed{n}`` may be a function (MATH defines some), so it stays."""
_LATEX_SPELLINGS = {"times": "*", "cdot": "*", "ast": "*", "div": "/", ",": "", "!": ""}  # 1,\!000 is 1,000
_MATH_MODE = re.compile(r"\$[^$]*\$")
_LATEX_EXPONENT = re.compile(r"\^([0-9])(?=[0-9])")
"""In LaTeX an exponent without braces is one character: ``$2^23^2$`` is 2^2 3^2, not 2^(23)^2."""
_SPELLINGS = str.maketrans(
    {"×": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "−": "-", "–": "-", "{": "(", "}": ")", "$": None}
)
# `x` as a times sign between numbers: spaced, also next to parentheses (`3 x 4`, `24 x (1/3)`), or tight
# between digits (`3x4`) but not after a lone 0 (hex, `0x10`).
_TIMES_X = re.compile(r"(?<=[0-9)])[ \t]+[xX][ \t]+(?=[0-9(])|(?<=[0-9])(?<![^0-9]0)(?<!\A0)[xX](?=[0-9])")
# Comma groups of exactly three digits; not part of a longer run of digits, commas or a decimal.
_THOUSANDS = re.compile(r"(?<![0-9.,])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9]|,[0-9])")
_LEADING_ZEROS = re.compile(r"(?<![0-9.])0+(?=[0-9])")
# A fraction written without spaces is one number, as in GSM8K's '25 / 1/3 = 75' and Game24's steps: it gets
# parentheses unless a '/' or '^' touches it (1/2/3 and 2^1/2 keep the usual precedence).
_TIGHT_FRACTION = re.compile(r"(?<![0-9./^])[0-9]+(?:\.[0-9]+)?/[0-9]+(?:\.[0-9]+)?(?![0-9./^])")


def _frac(match: re.Match[str]) -> str:
    numerator, denominator = (match.group(1), match.group(2)) if match.group(1) is not None else match.group(3, 4)
    return f"(({numerator})/({denominator}))"


def _latex(match: re.Match[str]) -> str:
    command = match.group(1) or match.group()[1]
    return _LATEX_SPELLINGS.get(command, "" if match.group(1) else " ")


def _math_mode(match: re.Match[str]) -> str:
    return _LATEX_EXPONENT.sub(r"^\1 ", match.group())


def _thousands(match: re.Match[str]) -> str:
    text, start, end = match.string, match.start(), match.end()
    if text[start - 1 : start] == "(" and text[end : end + 1] == ")":
        return match.group()  # a pair, gcd(28,365) or a point (18,240), not 28365
    return match.group().replace(",", "")


def normalize(text: str, *, times_x: bool = True) -> str:
    """Rewrites the lenient spellings of arithmetic into the ASCII that the parser reads.

    Args:
        text: Any text.
        times_x: Whether ``x`` between two digits means ``*`` (off where ``x`` is a variable).

    >>> normalize(r"$12 \\times 4 = \\frac{96}{2}$, 3 x 4 = 12 and 1,234 − 034")
    '12 * 4 = ((96)/(2)), 3*4 = 12 and 1234 - 34'
    """
    for _ in range(3):  # nested fractions, innermost first
        text, count = _FRAC.subn(_frac, text)
        if not count:
            break
    if "\\" in text:  # LaTeX: exponents without braces are one character everywhere
        text = _LATEX_EXPONENT.sub(r"^\1 ", _LATEX.sub(_latex, _BOXED_RESULT.sub(r"\1", text)))
    elif "$" in text:  # math mode, or currency: exponents without braces are one character between two $
        text = _MATH_MODE.sub(_math_mode, text)
    text = text.replace("{,}", ",").translate(_SPELLINGS)
    if times_x:
        text = _TIMES_X.sub("*", text)
    text = _THOUSANDS.sub(_thousands, text)
    text = _LEADING_ZEROS.sub("", text)
    return _TIGHT_FRACTION.sub(lambda match: f"({match.group()})", text) if "/" in text else text


# ------------------------------------------------------------------ exact evaluation


class _Rejected(Exception):
    """Not whitelisted arithmetic, or undefined (internal control flow)."""


_EXPRESSION_CHARS = re.compile(r"[0-9.+\-*/^() \t]+")


def _bounded(value: Number) -> Number:
    if type(value) is int:
        if value.bit_length() > MAX_VALUE_BITS:
            raise _Rejected("too large")
        return value
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_VALUE_BITS:
        raise _Rejected("too large")
    return value.numerator if value.denominator == 1 else value


def _power(base: Number, exponent: Number) -> Number:
    """``base ** exponent`` for a whole exponent, refused before computing it if the result would be too large."""
    if type(exponent) is not int:
        raise _Rejected("the exponent is not whole")
    if base == 0:
        if exponent <= 0:
            raise _Rejected("0 to a power <= 0 is undefined")
        return 0
    if base in (1, -1):
        return int(base) ** (exponent % 2)
    bits = base.bit_length() if type(base) is int else max(base.numerator.bit_length(), base.denominator.bit_length())
    if (bits - 1) * abs(exponent) >= MAX_VALUE_BITS:  # |base| >= 2^(bits-1): surely too large, do not compute it
        raise _Rejected("too large")
    return _bounded(base**exponent if exponent >= 0 else Fraction(1) / Fraction(base) ** -exponent)


def _combine(op: type[ast.operator], left: Linear, right: Linear) -> Linear:
    """``left op right`` on linear forms; refuses anything non-linear or undefined."""
    (a, b), (c, d) = left, right
    if op is ast.Add:
        return _bounded(apply(a, "+", c)), _bounded(apply(b, "+", d))
    if op is ast.Sub:
        return _bounded(apply(a, "-", c)), _bounded(apply(b, "-", d))
    if op is ast.Mult:
        if a and c:
            raise _Rejected("not linear")
        return _bounded(apply(a, "*", d) + apply(b, "*", c)), _bounded(apply(b, "*", d))
    if op is ast.Div:
        if c or d == 0:
            raise _Rejected("division by zero" if not c else "not linear")
        return _bounded(apply(a, "/", d)), _bounded(apply(b, "/", d))
    if op is ast.Pow:
        if a or c:
            raise _Rejected("not linear")
        return 0, _power(b, d)
    raise _Rejected(f"'{op.__name__}' is not allowed")


def _walk(node: ast.AST, source: str, variable: str | None) -> Linear:
    """Evaluates a parsed expression exactly, as a linear form in ``variable`` (``(0, value)`` without one)."""
    if isinstance(node, ast.BinOp):
        left = _walk(node.left, source, variable)
        return _combine(type(node.op), left, _walk(node.right, source, variable))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        a, b = _walk(node.operand, source, variable)
        return (-a, -b) if isinstance(node.op, ast.USub) else (a, b)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return 0, _bounded(node.value)
    if isinstance(node, ast.Constant) and type(node.value) is float:  # re-read the digits: floats are not exact
        value = Fraction(source[node.col_offset : node.end_col_offset])
        return 0, (value.numerator if value.denominator == 1 else value)
    if isinstance(node, ast.Name) and node.id == variable:
        return 1, 0
    raise _Rejected(f"'{type(node).__name__}' is not allowed")


@lru_cache(maxsize=1 << 14)
def _parse(expression: str, variable: str | None) -> Linear | None:
    """Parses whitelisted, normalised text; memoised, as rollouts repeat the same expressions."""
    try:
        tree = ast.parse(expression, mode="eval")
        return _walk(tree.body, expression, variable)
    except (_Rejected, SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _evaluate_normalized(expression: str) -> Number | None:
    expression = expression.strip()
    if len(expression) > MAX_EXPRESSION_CHARS or not _EXPRESSION_CHARS.fullmatch(expression):
        return None
    form = _parse(expression.replace("^", "**"), None)
    return None if form is None else form[1]


def evaluate(expression: str) -> Number | None:
    """The exact value of an arithmetic expression, or ``None`` if it is not one (or is undefined).

    >>> evaluate("0.1 + 0.2"), evaluate("8 / (3 - 8 / 3)"), evaluate("$1,234 × 2$"), evaluate("2^10")
    (Fraction(3, 10), 24, 2468, 1024)
    >>> evaluate("2x"), evaluate("1 / 0"), evaluate("9^9^9"), evaluate("__import__('os')")
    (None, None, None, None)
    """
    if not isinstance(expression, str) or len(expression) > 4 * MAX_EXPRESSION_CHARS:
        return None
    return _evaluate_text(expression)


@lru_cache(maxsize=1 << 13)
def _evaluate_text(expression: str) -> Number | None:
    return _evaluate_normalized(normalize(expression))


@lru_cache(maxsize=16)
def _linear_syntax(variable: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The characters a linear expression in ``variable`` may contain, and where a product is implicit."""
    return (
        re.compile(rf"[0-9.+\-*/^() \t{variable}]+"),
        re.compile(rf"(?<=[0-9{variable})])[ \t]*(?=[{variable}(])"),
    )


def linear_form(expression: str, variable: str = "x") -> Linear | None:
    """``(a, b)`` such that the expression equals ``a * variable + b``, or ``None`` if it is not linear.

    Products may be implicit next to the variable or a parenthesis (``3x``, ``2(x + 1)``, ``(x)(2)``); the
    variable is never a times sign here. ``variable`` is one ASCII letter.

    >>> linear_form("3x + 4"), linear_form("(x + 3) / 2 - x"), linear_form("x * x"), linear_form("2(y - 1)", "y")
    ((3, 4), (Fraction(-1, 2), Fraction(3, 2)), None, (2, -2))
    """
    if not (isinstance(variable, str) and len(variable) == 1 and variable.isascii() and variable.isalpha()):
        raise ValueError(f"variable must be one ASCII letter, got {variable!r}")
    if not isinstance(expression, str) or len(expression) > 4 * MAX_EXPRESSION_CHARS:
        return None
    return _linear_text(expression, variable)


@lru_cache(maxsize=1 << 13)
def _linear_text(expression: str, variable: str) -> Linear | None:
    text = normalize(expression, times_x=variable not in "xX").strip()
    allowed, implicit_product = _linear_syntax(variable)
    if len(text) > MAX_EXPRESSION_CHARS or not allowed.fullmatch(text):
        return None
    return _parse(implicit_product.sub("*", text).replace("^", "**"), variable)


_NUMBER_CHARS = re.compile(r"[-+0-9.()/ \t]+")
_BINARY_SIGN = re.compile(r"[0-9.)][ \t]*[-+]")
_BOXED = re.compile(r"\A\s*\\boxed(?![A-Za-z])")


def parse_number(text: str) -> Number | None:
    """A single number: an integer, exact decimal or fraction, in any spelling above; else ``None``.

    An expression is not a number: ``3 + 4`` is refused, so a final answer cannot be the question copied.

    >>> parse_number("-7/2"), parse_number("3.50"), parse_number(r"\\frac{7}{2}"), parse_number("$1,200.")
    (Fraction(-7, 2), Fraction(7, 2), Fraction(7, 2), 1200)
    >>> parse_number("3 + 4"), parse_number("1/2/3"), parse_number("7 apples")
    (None, None, None)
    """
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION_CHARS:
        return None
    text = normalize(_BOXED.sub("", text, count=1)).strip().removesuffix(".").strip()
    if not _NUMBER_CHARS.fullmatch(text) or _BINARY_SIGN.search(text) or text.count("/") > 1:
        return None
    return _evaluate_normalized(text)


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
    return None if side is None else _evaluate_normalized(side)


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
