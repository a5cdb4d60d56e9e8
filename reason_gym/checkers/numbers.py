"""Exact numbers: their values, the four operations on them, and reading them from text.

Every checker that computes does it here, in exact rational arithmetic on :class:`fractions.Fraction`, with a plain
``int`` whenever a value is whole (ints are ~30x faster): ``8 / (3 - 8 / 3)`` is exactly 24, ``0.1 + 0.2 = 0.3``
is true, ``1/3 = 0.33`` is false and ``23.9999`` is not 24. Nothing is evaluated with ``eval``, ``exec`` or sympy.

Two readings of numbers, for two kinds of text:

- :func:`parse_literal` reads one number *token* as Game of 24 steps write it: an integer, a negative one, an
  exact decimal (``2.5``) or a fraction without spaces (``8/3``), and nothing else (no ``$``, no ``\\frac``, no
  ``8 / 3``, which in a step is a division).
- :func:`parse_number` reads one number in *free text*, in any spelling :func:`normalize` knows (``\\frac{7}{2}``,
  ``$1,200.``, ``\\boxed{3}``), but never an expression (``3 + 4``).

:func:`evaluate` and :func:`linear_form` read whole expressions. Text is normalised, checked against a character
whitelist, parsed with :func:`ast.parse` and walked over a whitelist of node types.

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
  Game24 steps read fractions the same way); ``1/2/3`` keeps the usual precedence, and so does a fraction
  next to a power in any spacing or sign (``2^1/2``, ``2 ** -6/2``, ``6/2 ^ 2``): a power binds first.

Bounds, so that any input is judged in bounded time and memory: expressions longer than
:data:`MAX_EXPRESSION_CHARS` are rejected unread; every intermediate value must fit in :data:`MAX_VALUE_BITS`
bits (numerator and denominator), checked *before* a power is computed, so ``9^9^9`` is rejected at once.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache

from reason_gym.parse import parse_python

Number = int | Fraction
"""An exact number: an ``int`` whenever the value is whole (ints are ~30x faster than Fractions), else a Fraction."""

MAX_EXPRESSION_CHARS = 256
"""Longer expressions (after normalisation) are not evaluated."""

MAX_VALUE_BITS = 4096
"""No intermediate value may have a numerator or denominator longer than this (about 1,233 digits)."""

Linear = tuple[Number, Number]
"""A linear form ``(a, b)``, meaning ``a * x + b``, with exact coefficients."""

# ------------------------------------------------------------------ values and operations


def to_number(value: int | Fraction) -> Number:
    """``value`` as a :data:`Number`: a whole Fraction becomes an ``int``.

    >>> to_number(Fraction(6, 3)), to_number(Fraction(1, 3)), to_number(7)
    (2, Fraction(1, 3), 7)
    """
    return value if type(value) is int else (value.numerator if value.denominator == 1 else value)


_RING_OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


def apply(a: Number, op: str, b: Number) -> Number:
    """``a op b`` exactly, normalised to an ``int`` when whole; the caller rules out division by zero.

    >>> apply(8, "/", 3), apply(8, "/", 2), apply(Fraction(1, 3), "*", 3)
    (Fraction(8, 3), 4, 1)
    """
    if op == "/":
        if type(a) is int and type(b) is int:
            quotient, remainder = divmod(a, b)
            return quotient if remainder == 0 else Fraction(a, b)
        value = Fraction(a) / b
    else:
        value = _RING_OPERATIONS[op](a, b)
        if type(value) is int:
            return value
    return value.numerator if value.denominator == 1 else value


def _operation(symbol: str) -> Callable[[Number, Number], Number]:
    def operation(a: Number, b: Number) -> Number:
        return apply(a, symbol, b)

    operation.__name__ = operation.__qualname__ = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}[symbol]
    return operation


OPERATIONS: dict[str, Callable[[Number, Number], Number]] = {symbol: _operation(symbol) for symbol in "+-*/"}
"""The four operations by symbol, each :func:`apply` (exact; ``"/"`` by zero raises ``ZeroDivisionError``).

>>> OPERATIONS["/"](1, 3), OPERATIONS["-"](Fraction(1, 2), Fraction(1, 2))
(Fraction(1, 3), 0)
"""

AST_OPERATORS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
"""The symbol of each :mod:`ast` node type of the four operations (the whitelist of expressions over them)."""

LITERAL_PATTERN = r"-?\d+(?:/\d+|\.\d+)?"
"""The regular expression of what :func:`parse_literal` reads (for patterns that contain numbers, such as steps)."""
_LITERAL = re.compile(rf"\s*({LITERAL_PATTERN})\s*", re.ASCII)


def parse_literal(token: str) -> Number | None:
    """Parses one number written as an integer, exact decimal or ``p/q`` fraction; ``None`` if it is not one.

    Surrounding blanks are allowed, nothing else (see :func:`parse_number` for numbers in free text); a token that
    is not a ``str`` is not a number either.

    >>> parse_literal("8/3"), parse_literal("-2.5"), parse_literal("1/0")
    (Fraction(8, 3), Fraction(-5, 2), None)
    >>> parse_literal("4/2"), parse_literal("3.0"), parse_literal("8 / 3"), parse_literal(r"\\frac{8}{3}")
    (2, 3, None, None)
    """
    match = _LITERAL.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        return None
    text = match.group(1)
    if "/" in text:
        numerator, denominator = (int(part) for part in text.split("/"))
        return apply(numerator, "/", denominator) if denominator else None
    if "." in text:
        return to_number(Fraction(text))
    return int(text)


# ------------------------------------------------------------------ normalisation

_FRAC = re.compile(r"\\[dtc]?frac\s*(?:\{([^{}]*)\}\s*\{([^{}]*)\}|([0-9])\s*([0-9]))")  # also \frac12
_LATEX = re.compile(r"\\(?:(times|cdot|ast|div|left|right)(?![A-Za-z])|[,!;: ()\[\]$])")
_BOXED_RESULT = re.compile(r"(?<==)([ \t]*)\\boxed(?![A-Za-z])")
"""``= \\boxed{75}`` is a result; elsewhere ``\\boxed{n}`` may be a function (MATH defines some), so it stays."""
_LATEX_SPELLINGS = {"times": "*", "cdot": "*", "ast": "*", "div": "/", ",": "", "!": ""}  # 1,\!000 is 1,000
_MATH_MODE = re.compile(r"\$[^$]*\$")
_LATEX_EXPONENT = re.compile(r"\^([0-9])(?=[0-9])")
"""In LaTeX an exponent without braces is one character: ``$2^23^2$`` is 2^2 3^2, not 2^(23)^2."""
_OPERATOR_SIGNS = {"×": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "−": "-", "–": "-"}
_OPERATORS = str.maketrans(_OPERATOR_SIGNS)
_SPELLINGS = str.maketrans({**_OPERATOR_SIGNS, "{": "(", "}": ")", "$": None})
# `x` as a times sign between numbers: spaced, also next to parentheses (`3 x 4`, `24 x (1/3)`), or tight
# between digits (`3x4`) but not after a lone 0 (hex, `0x10`).
_TIMES_X = re.compile(r"(?<=[0-9)])[ \t]+[xX][ \t]+(?=[0-9(])|(?<=[0-9])(?<![^0-9]0)(?<!\A0)[xX](?=[0-9])")
# Comma groups of exactly three digits; not part of a longer run of digits, commas or a decimal.
_THOUSANDS = re.compile(r"(?<![0-9.,])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9]|,[0-9])")
_LEADING_ZEROS = re.compile(r"(?<![0-9.])0+(?=[0-9])")
# A fraction written without spaces is one number, as in GSM8K's '25 / 1/3 = 75' and Game24's steps: it gets
# parentheses unless a '/' touches it (1/2/3 keeps the usual precedence) or a power is next to it (see below).
_TIGHT_FRACTION = re.compile(r"(?<![0-9./^])[0-9]+(?:\.[0-9]+)?/[0-9]+(?:\.[0-9]+)?(?![0-9./^])")


def _next_to_power(text: str, start: int, end: int) -> bool:
    """Whether a power operator binds the number at ``text[start:end]`` before a division could: ``2 ^ 6/2``,
    ``2**-4/2`` (the exponent is 6, then -4, whatever the blanks and signs) or ``6/2 ** 2`` (the power is 2^2)."""
    i = start
    while i and text[i - 1] in " \t+-":  # blanks and signs of the exponent: 2 ^ - 4/2 is (2^-4)/2
        i -= 1
    j = end
    while j < len(text) and text[j] in " \t":
        j += 1
    before = text[i - 1 : i] == "^" or text[max(i - 2, 0) : i] == "**"
    return before or text[j : j + 1] == "^" or text.startswith("**", j)


def _tight_fraction(match: re.Match[str]) -> str:
    if _next_to_power(match.string, match.start(), match.end()):
        return match.group()  # the power binds tighter than any division, written tight or not
    return f"({match.group()})"


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


def one_line(text: str) -> str:
    """``text`` with the operator spellings in ASCII (``× · ÷ − –``) and every run of blanks, newlines included,
    one space: the same arithmetic to every reader here, written on one line. Envs store a step or answer in this
    form, so replaying the stored text reproduces the verdict (and a newline cannot fake a line).

    >>> one_line("(13 – 9) ×\\n (10 − 4)  = 24")
    '(13 - 9) * (10 - 4) = 24'
    """
    return " ".join(text.translate(_OPERATORS).split())


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
    return _TIGHT_FRACTION.sub(_tight_fraction, text) if "/" in text else text


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
        return 0, to_number(Fraction(source[node.col_offset : node.end_col_offset]))
    if isinstance(node, ast.Name) and node.id == variable:
        return 1, 0
    raise _Rejected(f"'{type(node).__name__}' is not allowed")


@lru_cache(maxsize=1 << 14)
def _parse(expression: str, variable: str | None) -> Linear | None:
    """Parses whitelisted, normalised text; memoised, as rollouts repeat the same expressions."""
    try:
        tree = parse_python(expression, mode="eval")
        return _walk(tree.body, expression, variable)
    except (_Rejected, SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def evaluate_normalized(expression: str) -> Number | None:
    """The exact value of text :func:`normalize` has already rewritten, or ``None`` (see :func:`evaluate`)."""
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
    return evaluate_normalized(normalize(expression))


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


_BOXED = re.compile(r"\A\s*\\boxed(?![A-Za-z])")
_LATEX_FRACTION_LITERAL = re.compile(
    r"\\[dtc]?frac\s*\{\s*([-+]?[0-9]+)\s*\}\s*\{\s*([0-9]+)\s*\}|\\[dtc]?frac([0-9])([0-9])"
)
"""``\\frac{7}{2}`` and ``\\frac72`` of two integers are the literal ``7/2``; any other ``\\frac`` is an expression."""
# After normalize: one sign at most, then an integer, an exact decimal or a tight fraction of two integers, in any
# number of parentheses (``\boxed{-7/2}`` reads ``(-(7/2))``); the parentheses are counted separately.
_NUMBER_LITERAL = re.compile(r"[(\s]*([-+]?)[(\s]*([0-9]*\.[0-9]+|[0-9]+(?:\.[0-9]+)?|[0-9]+/[0-9]+)[)\s]*")
"""One number as a literal: an integer, an exact decimal (``.5`` too), or a fraction ``p/q``; brackets and one sign
around it."""


def _latex_fraction_literal(match: re.Match[str]) -> str:
    numerator, denominator = match.group(1, 2) if match.group(1) is not None else match.group(3, 4)
    return f"{numerator}/{denominator}"


def parse_number(text: str) -> Number | None:
    """A single number: an integer, exact decimal or fraction in lowest terms, in any spelling above; else ``None``.

    An expression is not a number, so a final answer cannot be the question copied: ``3 + 4``, ``12 / 4``
    (spaced, it is a division), ``(12)/(4)``, ``--3`` and ``6/2`` or ``\\frac{6}{2}`` (a fraction not in lowest
    terms, or over 1, is the division still to do) are refused, as are fractions of decimals (``0.5/0.25``).

    >>> parse_number("-7/2"), parse_number("3.50"), parse_number(r"\\frac{7}{2}"), parse_number("$1,200.")
    (Fraction(-7, 2), Fraction(7, 2), Fraction(7, 2), 1200)
    >>> parse_number("3 + 4"), parse_number("1/2/3"), parse_number("7 apples"), parse_number("12 / 4")
    (None, None, None, None)
    """
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION_CHARS:
        return None
    text = _LATEX_FRACTION_LITERAL.sub(_latex_fraction_literal, _BOXED.sub("", text, count=1))
    text = normalize(text).strip().removesuffix(".").strip()
    match = _NUMBER_LITERAL.fullmatch(text)
    if match is None or text.count("(") != text.count(")"):
        return None
    sign, literal = match.groups()
    if "/" in literal:
        numerator, denominator = (int(part) for part in literal.split("/"))
        if denominator < 2 or math.gcd(numerator, denominator) != 1:
            return None
    value = evaluate_normalized(literal)
    return None if value is None else (-value if sign == "-" else value)
