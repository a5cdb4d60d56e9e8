"""Game of 24 rules: exact parsing and checking of steps and final answers.

Everything is exact rational arithmetic on :class:`fractions.Fraction`; nothing is evaluated with ``eval`` and no
floating point is involved, so ``8 / (3 - 8 / 3)`` is exactly 24 and ``23.9999`` is not.

A *step* has the Tree-of-Thoughts form ``a op b = c (left: x y z)``: ``a`` and ``b`` are two of the numbers still
available, ``c`` is their exact result and the optional ``left`` list is the multiset that remains afterwards.
Operators may be written ``+ - * /`` or ``× ÷ −``. Numbers may be integers, negative, exact decimals (``2.5``)
or fractions written without spaces (``8/3``); ``8 / 3`` with spaces is a division step.

A *final answer* is an expression over the puzzle's original numbers, each used exactly once, with ``+ - * /`` and
parentheses only (no unary minus, powers, floor division, concatenation or decimals), optionally followed by
``= <target>``.

Untrusted input never raises: a step or an answer that is not a ``str`` (``None``, ``bytes``) is judged invalid with
an error saying so, as :func:`~reason_gym.checkers.numbers.evaluate` returns ``None`` for it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from reason_gym.checkers.numbers import AST_OPERATORS, LITERAL_PATTERN, Number, apply, one_line, parse_literal
from reason_gym.parse import parse_python

__all__ = [  # Number, apply and parse_number (parse_literal) are defined in reason_gym.checkers.numbers
    "MAX_ANSWER_CHARS",
    "MAX_STEP_CHARS",
    "AnswerVerdict",
    "Expression",
    "Number",
    "Step",
    "StepVerdict",
    "apply",
    "check_step",
    "combine_expressions",
    "format_step",
    "judge_answer",
    "number_expression",
    "pair_moves",
    "parse_number",
    "parse_step",
    "replay_expressions",
]

MAX_STEP_CHARS = 256
"""Longer steps are rejected before parsing, so any input is judged in bounded time."""

MAX_ANSWER_CHARS = 256
"""Longer answers are judged wrong before parsing."""

# Lenient spellings of the four operators, mapped to ASCII before parsing.
_OPERATOR_SPELLINGS = str.maketrans({"×": "*", "÷": "/", "−": "-", "–": "-"})

_NUMBER = LITERAL_PATTERN  # an integer, exact decimal or fraction without spaces
_STEP_RE = re.compile(
    rf"\s*({_NUMBER})\s*([-+*/])\s*({_NUMBER})\s*=\s*({_NUMBER})\s*(?:\(\s*left\s*:\s*([^()]*)\))?[\s.]*",
    re.ASCII | re.IGNORECASE,
)
_LEFT_SEPARATORS = re.compile(r"[\s,]+")
# Characters an answer may contain at all; everything else (letters, '_', '.', '**' survives but is rejected by ast).
_ANSWER_CHARS = re.compile(r"[0-9+\-*/()\s]*", re.ASCII)


parse_number = parse_literal
"""One number token of a step (:func:`reason_gym.checkers.numbers.parse_literal`; the name other modules import)."""


@dataclass(frozen=True, slots=True)
class Step:
    """A parsed step ``a op b = result (left: ...)``; ``left`` is ``None`` when the step omits it."""

    a: Number
    op: str
    b: Number
    result: Number
    left: tuple[Number, ...] | None

    def __str__(self) -> str:
        return f"{self.a} {self.op} {self.b} = {self.result}"


class StepVerdict(NamedTuple):
    """The outcome of checking a step against the available numbers.

    Attributes:
        step: The parsed step, or ``None`` if the text is not a step.
        error: Why the step is rejected; empty when it is valid.
        indices: Positions in the available numbers of ``a`` and ``b`` (valid steps only).
        remaining: The sorted multiset left after a valid step (the input numbers when rejected).
    """

    step: Step | None
    error: str
    indices: tuple[int, int] = (-1, -1)
    remaining: tuple[Number, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.error


def parse_step(text: str) -> Step | str:
    """Parses a step; returns the :class:`Step` or a string saying why the text is not a step.

    >>> parse_step("8 / 3 = 8/3"), parse_step(None)
    (Step(a=8, op='/', b=3, result=Fraction(8, 3), left=None), 'a step is a str, got NoneType')
    """
    if not isinstance(text, str):
        return f"a step is a str, got {type(text).__name__}"
    if len(text) > MAX_STEP_CHARS:  # before the cache: junk up to the env's 8192 characters is never a key
        return f"step longer than {MAX_STEP_CHARS} characters"
    return _parse_step(text)


@lru_cache(maxsize=1 << 16)  # keys are at most MAX_STEP_CHARS long: tens of MB at capacity
def _parse_step(text: str) -> Step | str:
    """:func:`parse_step` of text within the length bound; pure, so memoised: rollouts repeat step strings."""
    match = _STEP_RE.fullmatch(text.translate(_OPERATOR_SPELLINGS))
    if match is None:
        return "not a step of the form 'a op b = c (left: ...)'"
    a, op, b, result, left_text = match.groups()
    numbers = [parse_literal(a), parse_literal(b), parse_literal(result)]
    if None in numbers:
        return "a fraction has a zero denominator"
    left = None
    if left_text is not None:
        tokens = [token for token in _LEFT_SEPARATORS.split(left_text) if token]
        parsed = [parse_literal(token) for token in tokens]
        if None in parsed:
            return f"cannot read the left list '{left_text.strip()}'"
        left = tuple(sorted(parsed))  # type: ignore[type-var]
    return Step(numbers[0], op, numbers[1], numbers[2], left)  # type: ignore[arg-type]


def check_step(numbers: Sequence[Number], text: str) -> StepVerdict:
    """Checks a step against the multiset ``numbers`` still available.

    >>> check_step((4, 9, 10, 13), "13 - 9 = 4 (left: 4 4 10)").remaining
    (4, 4, 10)
    >>> check_step((4, 9), "4 + 4 = 8").error
    'b = 4 is not available'
    """
    step = parse_step(text)
    if isinstance(step, str):
        return StepVerdict(None, step)
    try:
        i = numbers.index(step.a)
    except ValueError:
        return StepVerdict(step, f"a = {step.a} is not available")
    try:
        j = numbers.index(step.b)
        if j == i:  # 'a' took this one: 'b' needs another copy of the same number
            j = numbers.index(step.b, i + 1)
    except ValueError:
        return StepVerdict(step, f"b = {step.b} is not available")
    if step.op == "/" and step.b == 0:
        return StepVerdict(step, "division by zero")
    value = apply(step.a, step.op, step.b)
    if value != step.result:
        return StepVerdict(step, f"{step} is wrong: {step.a} {step.op} {step.b} = {value}")
    rest = list(numbers)
    del rest[max(i, j)], rest[min(i, j)]
    rest.append(value)
    rest.sort()
    remaining = tuple(rest)
    if step.left is not None and step.left != remaining:
        listed = " ".join(map(str, step.left))
        return StepVerdict(step, f"left list '{listed}' should be '{' '.join(map(str, remaining))}'")
    return StepVerdict(step, "", (i, j), remaining)


Expression = tuple[str, int]
"""An expression's text and the precedence of its top operator (3 for a bare number)."""

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


def number_expression(value: Number) -> Expression:
    return (str(value), 3)


def combine_expressions(left: Expression, op: str, right: Expression) -> Expression:
    """The expression ``left op right``, with only the parentheses that precedence needs.

    >>> combine_expressions(("3", 3), "-", combine_expressions(("8", 3), "/", ("3", 3)))
    ('3 - 8 / 3', 1)
    >>> combine_expressions(("8", 3), "/", ("3 - 8 / 3", 1))
    ('8 / (3 - 8 / 3)', 2)
    """
    precedence = _PRECEDENCE[op]
    left_text = left[0] if left[1] >= precedence else f"({left[0]})"
    # The right operand of - and / also needs parentheses at equal precedence: a - (b - c) != a - b - c.
    keep = right[1] > precedence or (right[1] == precedence and op in "+*")
    right_text = right[0] if keep else f"({right[0]})"
    return (f"{left_text} {op} {right_text}", precedence)


def replay_expressions(numbers: Sequence[Number], steps: Sequence[str]) -> list[Expression]:
    """Replays steps from ``numbers`` and returns the expression behind each number left (sorted by value).

    With one number left this is the final answer the steps spell out.

    >>> replay_expressions([4, 9, 10, 13], ["13 - 9 = 4", "10 - 4 = 6", "4 * 6 = 24"])
    [('(13 - 9) * (10 - 4)', 2)]

    Raises:
        ValueError: a step is not valid where it is replayed.
    """
    pairs = sorted((x, number_expression(x)) for x in numbers)
    for step in steps:
        verdict = check_step([x for x, _ in pairs], step)
        if not verdict.valid:
            raise ValueError(f"cannot replay {step!r}: {verdict.error}")
        i, j = verdict.indices
        op = verdict.step.op  # type: ignore[union-attr]
        combined = (apply(pairs[i][0], op, pairs[j][0]), combine_expressions(pairs[i][1], op, pairs[j][1]))
        pairs = sorted([pair for k, pair in enumerate(pairs) if k not in (i, j)] + [combined], key=lambda p: p[0])
    return [expression for _, expression in pairs]


def pair_moves(x: Number, y: Number) -> tuple[tuple[Number, str, Number], ...]:
    """The six ways to combine ``x <= y``, in a fixed order: ``x+y, x*y, y-x, y/x, x-y, x/y``.

    Moves that keep positive numbers positive come first. Division by zero is the caller's to skip.
    """
    return ((x, "+", y), (x, "*", y), (y, "-", x), (y, "/", x), (x, "-", y), (x, "/", y))


def format_step(a: Number, op: str, b: Number, result: Number, remaining: Sequence[Number]) -> str:
    """The canonical text of a step, as the environment writes it into observations."""
    return f"{a} {op} {b} = {result} (left: {' '.join(map(str, remaining))})"


@dataclass(frozen=True, slots=True)
class AnswerVerdict:
    """The outcome of judging a final answer.

    Attributes:
        correct: The expression uses exactly the puzzle's numbers and equals the target.
        value: The exact value of the expression, when it could be evaluated.
        error: Why the answer is wrong; empty when it is correct.
    """

    correct: bool
    value: Number | None
    error: str


class _Rejected(Exception):
    """An answer that is not a whitelisted expression (internal control flow)."""


def _evaluate(node: ast.AST, used: list[int]) -> Number:
    """Evaluates a whitelisted expression tree exactly, collecting the integer literals it uses."""
    if isinstance(node, ast.BinOp):
        if type(node.op) not in AST_OPERATORS:
            raise _Rejected(f"'{type(node.op).__name__}' is not allowed: use numbers, + - * / and parentheses")
        left = _evaluate(node.left, used)
        right = _evaluate(node.right, used)
        if isinstance(node.op, ast.Div) and right == 0:
            raise _Rejected("division by zero")
        return apply(left, AST_OPERATORS[type(node.op)], right)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return node.value
    raise _Rejected(f"'{type(node).__name__}' is not allowed: use numbers, + - * / and parentheses")


def judge_answer(text: str, numbers: Sequence[int], target: int = 24) -> AnswerVerdict:
    """Judges a final answer expression against the puzzle ``numbers`` and ``target``.

    >>> judge_answer("8 / (3 - 8 / 3) = 24", [3, 3, 8, 8]).correct
    True
    >>> judge_answer("(13 - 9) * (10 - 4)", [4, 9, 10, 12]).error
    'uses 4 9 10 13, the puzzle is 4 9 10 12'
    """
    if not isinstance(text, str):
        return AnswerVerdict(False, None, f"an answer is a str, got {type(text).__name__}")
    text = one_line(text).rstrip(". ")  # blanks are blanks: a newline inside the expression is a space
    if len(text) > MAX_ANSWER_CHARS:
        return AnswerVerdict(False, None, f"answer longer than {MAX_ANSWER_CHARS} characters")
    expression, *rest = text.split("=")
    if len(rest) > 1:
        return AnswerVerdict(False, None, "more than one '='")
    if rest and parse_literal(rest[0]) != target:
        return AnswerVerdict(False, None, f"the right-hand side '{rest[0].strip()}' is not {target}")
    if not _ANSWER_CHARS.fullmatch(expression):
        return AnswerVerdict(False, None, "only digits, + - * / and parentheses are allowed")
    try:
        tree = parse_python(expression.strip(), mode="eval")
        used: list[int] = []
        value = _evaluate(tree.body, used)
    except _Rejected as rejected:
        return AnswerVerdict(False, None, str(rejected))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return AnswerVerdict(False, None, "not an arithmetic expression")
    if sorted(used) != sorted(numbers):
        puzzle = " ".join(map(str, sorted(numbers)))
        return AnswerVerdict(False, value, f"uses {' '.join(map(str, sorted(used)))}, the puzzle is {puzzle}")
    if value != target:
        return AnswerVerdict(False, value, f"equals {value}, not {target}")
    return AnswerVerdict(True, value, "")
