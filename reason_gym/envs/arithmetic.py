"""Multi-step arithmetic and linear equations, generated procedurally, as a reasoning environment.

Problems are small expression trees: ``Compute (3 + 4) * 5 - 6 / 2.`` or ``Solve for x: 3(x + 2) - 4 = 11.``
They come with exact solution traces (:func:`solution_trace`) in the same step language the environment checks,
so a model can be trained on them from scratch and judged step by step.

A problem *record* (what ``reset(options={"problem": record})`` takes and ``get_state().problem`` holds) is
``{"kind": "expression", "expression": "(3 + 4) * 5"}`` or ``{"kind": "linear", "equation": "3x + 4 = 19"}``;
validated records are canonical (the text re-printed from its parse) and carry their exact ``"answer"``.
"""

from __future__ import annotations

import ast
import re
import zlib
from collections.abc import Mapping
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np

from reason_gym.checkers.arithmetic import MAX_EXPRESSION_CHARS, evaluate, linear_form, normalize, parse_number
from reason_gym.checkers.game24 import Number, apply
from reason_gym.checkers.numbers import AST_OPERATORS, one_line
from reason_gym.core import (
    AnswerOutcome,
    EpisodeState,
    ReasoningEnv,
    StepOutcome,
    TaskSpec,
    check_index,
    reject_unknown,
)
from reason_gym.parse import parse_python

KINDS = ("expression", "linear")
MAX_OPERATIONS = 12
TEST_SHARE = 10
"""One problem in ``TEST_SHARE`` (by a CRC-32 of its id) belongs to the ``test`` split, the rest to ``train``."""
_INDEX_SEED = 20_250_301
"""Seeds the fixed sequence that ``{"index": i}`` addresses (with the split and ``i``)."""
_MAX_DRAWS = 1000

TASK = TaskSpec(
    name="arithmetic",
    env_id="reason_gym/Arithmetic-v0",
    description="Compute a multi-step arithmetic expression or solve a linear equation in x, one exact step at a time.",
    system_prompt=(
        "Solve the problem one step per line. Each step is one equation `left = right`: to compute an "
        "expression, do one operation per step, innermost first (`3 + 4 = 7`); to solve for x, undo one "
        "operation around x (`3x = 19 - 4`), then simplify (`3x = 15`). End with one line `Answer: <number>` "
        "(a fraction as `7/2`). Write one step per line and nothing else: no explanations."
    ),
    step_format="One equation `left = right` per line: arithmetic on numbers, or linear in x (`3x = 19 - 4`).",
    answer_format=(
        "`Answer: <number>`: an integer, exact decimal or fraction in lowest terms (`7/2`), optionally `x = 5`."
    ),
    question_lines=1,
    step_checks=("step_check",),
    exact_step_check="step_check",
)
"""What agents know about Arithmetic-v0 (``ArithmeticEnv.task``); the system prompt is the one the instruct-model
benchmarks were run with."""

# ------------------------------------------------------------------ expression trees

Tree = tuple[Any, ...]
"""``("n", value, text)`` a number, ``("x",)`` the unknown, ``("neg", t)`` a negation, ``(op, left, right)``."""

X: Tree = ("x",)
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_IMPLICIT_PRODUCT = re.compile(r"(?<=[0-9x)])[ \t]*(?=[x(])")
_PROBLEM_CHARS = re.compile(r"[0-9.+\-*/() \tx]+")


def number(value: Number) -> Tree:
    """The tree of an exact number: ``-7 / 3`` for ``Fraction(-7, 3)``."""
    if type(value) is Fraction:
        return ("/", number(value.numerator), number(value.denominator))
    return ("neg", ("n", -value, str(-value))) if value < 0 else ("n", value, str(value))


def contains_x(tree: Tree) -> bool:
    """Whether the unknown occurs in a tree."""
    return _count_x(tree) > 0


def _count_x(tree: Tree) -> int:
    if tree == X:
        return 1
    return 0 if tree[0] == "n" else sum(_count_x(child) for child in tree[1:])


def _is_implicit_product(tree: Tree) -> bool:
    """``3x`` and ``3(x + 1)``: a number times an expression in x is written without ``*``."""
    return tree[0] == "*" and tree[1][0] == "n" and contains_x(tree[2])


def show(tree: Tree) -> str:
    """The canonical text of a tree, with only the parentheses its structure needs.

    >>> show(("-", ("*", ("n", 3, "3"), ("+", X, ("n", 2, "2"))), ("n", 4, "4")))
    '3(x + 2) - 4'
    """
    return _show(tree)[0]


def _show(tree: Tree) -> tuple[str, int]:
    """Text and precedence (1 ``+ -``, 2 ``* /``, 3 negation, 4 atoms)."""
    if tree[0] == "n":
        return tree[2], 4
    if tree == X:
        return "x", 4
    if tree[0] == "neg":
        text, precedence = _show(tree[1])
        return (f"-{text}" if precedence >= 3 else f"-({text})"), 3
    op, left, right = tree
    if _is_implicit_product(tree):
        text = _show(right)[0]
        return (f"{left[2]}x" if right == X else f"{left[2]}({text})"), 2
    precedence = _PRECEDENCE[op]
    left_text, left_precedence = _show(left)
    right_text, right_precedence = _show(right)
    if left_precedence < precedence:
        left_text = f"({left_text})"
    # Faithful to the tree: a right operand of equal precedence keeps its parentheses (a + (b + c)); so do a
    # negation (2 * (-3)) and an implicit product after * or / (2 * (3x), which would reparse as (2 * 3) * x).
    if right_precedence <= precedence or right_precedence == 3 or (_is_implicit_product(right) and precedence == 2):
        right_text = f"({right_text})"
    return f"{left_text} {op} {right_text}", precedence


def value(tree: Tree, x: Number | None = None) -> Number:
    """The exact value of a tree (at ``x`` when it contains the unknown); the caller rules out division by 0."""
    if tree[0] == "n":
        return tree[1]
    if tree == X:
        if x is None:
            raise ValueError("the tree contains x")
        return x
    if tree[0] == "neg":
        return -value(tree[1], x)
    return apply(value(tree[1], x), tree[0], value(tree[2], x))


def _to_tree(node: ast.AST, source: str) -> Tree:
    if isinstance(node, ast.BinOp) and type(node.op) in AST_OPERATORS:
        return (AST_OPERATORS[type(node.op)], _to_tree(node.left, source), _to_tree(node.right, source))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return ("neg", _to_tree(node.operand, source))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
        return _to_tree(node.operand, source)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return ("n", node.value, str(node.value))
    if isinstance(node, ast.Constant) and type(node.value) is float:  # re-read the digits: floats are not exact
        text = source[node.col_offset : node.end_col_offset]
        return ("n", parse_number(text), text)
    if isinstance(node, ast.Name) and node.id == "x":
        return X
    raise ValueError("a problem uses numbers, x, + - * / and parentheses")


def parse_tree(text: str, *, unknown: bool) -> Tree:
    """Parses one side of a problem; ``unknown`` allows ``x`` (and implicit products such as ``3x``).

    Raises:
        ValueError: the text is not arithmetic of that kind.
    """
    source = normalize(text, times_x=not unknown).strip()
    if unknown:
        source = _IMPLICIT_PRODUCT.sub("*", source)
    if not source or len(source) > MAX_EXPRESSION_CHARS or not _PROBLEM_CHARS.fullmatch(source):
        raise ValueError(f"cannot read {text!r}: use numbers, + - * / and parentheses" + (", x" if unknown else ""))
    if not unknown and "x" in source:
        raise ValueError(f"an expression problem has no unknown: {text!r}")
    try:
        return _to_tree(parse_python(source, mode="eval").body, source)
    except (SyntaxError, RecursionError, MemoryError):
        raise ValueError(f"cannot read {text!r} as arithmetic") from None


# ------------------------------------------------------------------ problem records


def validate_problem(record: Any) -> dict[str, Any]:
    """Checks a problem record and returns it canonical, with its exact ``"answer"``.

    >>> validate_problem({"kind": "linear", "equation": "3*x+4 = 19"})
    {'kind': 'linear', 'equation': '3x + 4 = 19', 'answer': 5}

    Raises:
        ValueError: the record is not one of the two formats, or its problem is not well posed.
    """
    formats = '{"kind": "expression", "expression": "(3 + 4) * 5"} or {"kind": "linear", "equation": "3x + 4 = 19"}'
    if not isinstance(record, Mapping) or record.get("kind") not in KINDS:
        raise ValueError(f"an Arithmetic problem is {formats}")
    kind = record["kind"]
    text_key = "expression" if kind == "expression" else "equation"
    reject_unknown("problem key", record, ("kind", text_key, "answer"))
    text = record.get(text_key)
    if not isinstance(text, str):
        raise ValueError(f"an Arithmetic problem is {formats}")
    if kind == "expression":
        canonical = show(parse_tree(text, unknown=False))
        answer = evaluate(canonical)
        if answer is None:
            raise ValueError(f"{text!r} has no value (a division by zero, or a value too large)")
    else:
        sides = text.split("=")
        if len(sides) != 2:
            raise ValueError(f"an equation has exactly one '=', got {text!r}")
        canonical = " = ".join(show(parse_tree(side, unknown=True)) for side in sides)
        answer = _solve(*canonical.split(" = "))
    given = record.get("answer", answer)
    if given != answer and parse_number(str(given)) != answer:
        raise ValueError(f"the record's answer {given!r} is wrong: the answer is {answer}")
    return {"kind": kind, text_key: canonical, "answer": answer}


def _solve(left: str, right: str) -> Number:
    forms = linear_form(left), linear_form(right)
    if None in forms:
        raise ValueError(f"'{left} = {right}' is not a linear equation in x (or divides by zero)")
    (a, b), (c, d) = forms  # type: ignore[misc]
    if a == c:
        raise ValueError(f"'{left} = {right}' does not determine x")
    return apply(d - b, "/", a - c)


def problem_id(problem: Mapping[str, Any]) -> str:
    """A stable id: the kind and the canonical text without spaces, e.g. ``arithmetic/linear/3x+4=19``."""
    text = problem["expression"] if problem["kind"] == "expression" else problem["equation"]
    return f"arithmetic/{problem['kind']}/{text.replace(' ', '')}"


def split_of(problem: Mapping[str, Any]) -> str:
    """``"test"`` for one problem in :data:`TEST_SHARE`, chosen by a hash of its id, else ``"train"``."""
    return "test" if zlib.crc32(problem_id(problem).encode()) % TEST_SHARE == 0 else "train"


# ------------------------------------------------------------------ the generator


def generate_problem(
    rng: np.random.Generator, *, kind: str, num_operations: int, max_number: int, fractions: bool
) -> dict[str, Any]:
    """Draws a canonical problem record with ``num_operations`` operations on numbers from 1 to ``max_number``.

    Without ``fractions`` every intermediate value (and the solution of an equation) is an integer.
    """
    if kind == "expression":
        tree = _random_expression(rng, num_operations, max_number, fractions)
        return validate_problem({"kind": "expression", "expression": show(tree)})
    solution = int(rng.integers(-max_number, max_number + 1))
    tree, result = X, solution
    for _ in range(num_operations):
        tree, result = _wrap(rng, tree, result, max_number, fractions)
    equation = f"{show(tree)} = {show(number(result))}"
    return validate_problem({"kind": "linear", "equation": equation})


def _random_expression(rng: np.random.Generator, operations: int, max_number: int, fractions: bool) -> Tree:
    """A random tree with ``operations`` operators; division only where it is defined (and exact if required)."""
    if operations == 0:
        leaf = int(rng.integers(1, max_number + 1))
        return ("n", leaf, str(leaf))
    in_left = int(rng.integers(operations))
    left = _random_expression(rng, in_left, max_number, fractions)
    right = _random_expression(rng, operations - 1 - in_left, max_number, fractions)
    op = "+-*/"[int(rng.integers(4))]
    if op == "/":
        left_value, right_value = value(left), value(right)
        if right[0] == "n" and not fractions and left_value != 0 and left_value % right_value != 0:
            divisors = [d for d in range(1, max_number + 1) if left_value % d == 0]
            leaf = divisors[int(rng.integers(len(divisors)))]
            right = ("n", leaf, str(leaf))
        elif right_value == 0 or (not fractions and left_value % right_value != 0):
            op = "+-*"[int(rng.integers(3))]
    return (op, left, right)


def _wrap(
    rng: np.random.Generator, tree: Tree, result: Number, max_number: int, fractions: bool
) -> tuple[Tree, Number]:
    """Applies one random invertible operation to the side of an equation that holds ``tree = result``."""
    while True:
        op = ("+", "-", "r-", "*", "/")[int(rng.integers(5))]
        k = int(rng.integers(2 if op in "*/" else 1, max_number + 1))
        if op == "/" and not fractions:
            divisors = [d for d in range(2, max_number + 1) if result % d == 0]
            if not divisors:
                continue
            k = divisors[int(rng.integers(len(divisors)))]
        constant = ("n", k, str(k))
        if op == "r-":
            return ("-", constant, tree), k - result
        if op == "*":
            return ("*", constant, tree), k * result
        return (op, tree, constant), apply(result, op, k)


# ------------------------------------------------------------------ solution traces


def operand(x: Number) -> str:
    """A number as an operand in a step: negative numbers and fractions in parentheses, ``(-3)``, ``(7/2)``."""
    return str(x) if type(x) is int and x >= 0 else f"({x})"


def solution_trace(problem: Mapping[str, Any]) -> list[str]:
    """The steps that solve a problem, then the final answer line; every step is true and canonical.

    >>> solution_trace({"kind": "expression", "expression": "(3 + 4) * 5 - 6 / 2"})
    ['3 + 4 = 7', '7 * 5 = 35', '6 / 2 = 3', '35 - 3 = 32', 'Answer: 32']
    >>> solution_trace({"kind": "linear", "equation": "3x + 4 = 19"})
    ['3x = 19 - 4', '3x = 15', 'x = 15 / 3', 'x = 5', 'Answer: 5']
    """
    problem = validate_problem(problem)
    steps: list[str] = []
    if problem["kind"] == "expression":
        _compute(parse_tree(problem["expression"], unknown=False), steps)
    else:
        left, right = (parse_tree(side, unknown=True) for side in problem["equation"].split(" = "))
        _isolate(left, right, problem["answer"], steps)
    return [*steps, f"Answer: {problem['answer']}"]


def _compute(tree: Tree, steps: list[str]) -> Number:
    """Evaluates a tree innermost first, left to right, writing one step per operation."""
    if tree[0] == "n":
        return tree[1]
    if tree[0] == "neg":
        return -_compute(tree[1], steps)
    left, right = _compute(tree[1], steps), _compute(tree[2], steps)
    result = apply(left, tree[0], right)
    steps.append(f"{operand(left)} {tree[0]} {operand(right)} = {result}")
    return result


def _isolate(left: Tree, right: Tree, solution: Number, steps: list[str]) -> None:
    """Undoes the operations around x one at a time: ``E + k = c`` becomes ``E = c - k``, then ``E = <value>``."""
    if contains_x(right) and not contains_x(left):
        left, right = right, left
    if contains_x(right) or _count_x(left) != 1:
        _collect(left, right, solution, steps)
        return
    side, c = left, value(right)
    while side != X:
        if side[0] == "neg":
            side, move, c = side[1], f"-{operand(c)}", -c
        else:
            op, a, b = side
            x_left = contains_x(a)
            k = value(b if x_left else a)
            side = a if x_left else b
            if op == "-" and not x_left:  # k - E = c
                move, c = f"{operand(k)} - {operand(c)}", k - c
            else:
                inverse = {"+": "-", "-": "+", "*": "/", "/": "*"}[op]
                move, c = f"{operand(c)} {inverse} {operand(k)}", apply(c, inverse, k)
        steps += [f"{show(side)} = {move}", f"{show(side)} = {c}"]


def _collect(left: Tree, right: Tree, solution: Number, steps: list[str]) -> None:
    """For x on both sides or several times: ``a x = b``, then ``x = b / a``, then the value."""
    (a, b), (c, d) = linear_form(show(left)), linear_form(show(right))  # type: ignore[misc]
    coefficient, constant = a - c, d - b
    if coefficient != 1:
        term = "-x" if coefficient == -1 else f"{operand(coefficient)}x"
        steps += [f"{term} = {constant}", f"x = {operand(constant)} / {operand(coefficient)}"]
    steps.append(f"x = {solution}")


# ------------------------------------------------------------------ the environment


class ArithmeticEnv(ReasoningEnv):
    """Compute multi-step arithmetic or solve a linear equation, one exactly checked step at a time.

    ## Description
    Seeded procedural problems for models small enough to learn from scratch: expressions over integers, or
    rationals with ``fractions=True`` (``Compute (3 + 4) * 5 - 6 / 2.``), and linear equations in x
    (``Solve for x: 3(x + 2) - 4 = 11.``), with exact rational arithmetic throughout. :func:`solution_trace`
    gives a correct solution of every problem in the step language below (training data);
    :func:`generate_problem` is the generator.

    ## Action Space
    Text. A step is one line, an equation ``left = right`` with exactly one ``=``:

    - expressions: both sides are arithmetic on numbers, e.g. ``3 + 4 = 7`` then ``7 * 5 = 35``. Operands that
      are negative or fractions are best parenthesised, ``(7/2) * 4 = 14``; ``× ÷ −`` are read as ``* / -``;
    - equations: both sides are linear in x, with implicit products allowed (``3x``, ``2(x + 1)``), e.g.
      ``3x = 19 - 4``, ``3x = 15``, ``x = 15 / 3``, ``x = 5``; steps without x (``19 - 4 = 15``) are fine too.

    The final answer is ``Answer: <number>``: an integer, exact decimal or fraction in lowest terms written as one
    literal (``-4``, ``3.5``, ``7/2``, ``\\frac{7}{2}``), optionally ``x = 5``. An expression is not an answer:
    ``Answer: 3 + 4``, ``Answer: 12 / 4``, ``Answer: (12)/(4)``, ``Answer: --3`` and ``Answer: 12/4`` (not in
    lowest terms: the division is still to do) are wrong, so the question copied back never scores.

    ## Observation Space
    Text: the question, then each accepted step as read: operators in ASCII (``3 · 4`` is stored as ``3 * 4``)
    and blanks collapsed, so replaying ``get_state().steps`` gives the same verdicts; answers likewise, on one
    line. E.g.::

        Solve for x: 3x + 4 = 19.
        3x = 19 - 4
        3x = 15

    ## Rewards
    Components (``info["reward_components"]``) and default weights:

    - ``outcome`` (1.0): 1 for a correct final answer (compared exactly: ``3.5`` is ``7/2``, ``0.33`` is not
      ``1/3``);
    - ``invalid_step`` (-0.1): 1 when a step is rejected: not one line with one ``=``, or a side that is not
      arithmetic of the problem's kind (a variable in an expression problem, ``x^2``, ``1/x``, a division by
      zero). The state is unchanged;
    - ``step_check`` (0.0, so reported but off): 1 when an accepted step is true, 0 when it is false. A step
      is true when it holds at the problem's solution: for a step without x, exact arithmetic truth; for a step
      with x, that it is equivalent to the problem: its only solution is the problem's. A step that holds for
      every x (``x = x``, ``2x = x + x``, ``0x = 0``) or for none is false.
      False steps are *accepted*, not rejected, so errors carry forward as in real reasoning, and the
      component is an exact process label for every step (also in ``env.step_checks``). It is off by default
      because a positive weight pays for padding a solution with true but useless steps (``1 + 1 = 2``);
    - ``prm`` (1.0): a process reward model's score of the step, when ``prm=`` is given.

    ## Episode End
    Terminated at a final answer (``info["is_correct"]`` says whether it is right); truncated after
    ``max_steps`` actions. The answer is judged against the problem, whatever the steps before it.

    ## Arguments
    - ``kind``: ``"expression"``, ``"linear"`` or ``"mixed"`` (default; each problem picks one at random).
    - ``num_operations`` (3): operations per problem, 1 to 12: operators in an expression, operations wrapped
      around x in an equation (its trace has two steps per operation).
    - ``max_number`` (10): numbers in problems are 1 to ``max_number`` (at least 2); solutions of equations
      are -``max_number`` to ``max_number``.
    - ``fractions`` (False): allow divisions with fractional results; without it every intermediate value is
      an integer.
    - ``split``: ``"train"`` (default) or ``"test"``: one problem in ten, chosen by a hash of its id, is held out
      for ``test``, and each split draws only its own problems, so training never sees a test problem. Reset
      options ``{"split": s}`` draw from a split, ``{"index": i}`` (with an optional split) address a fixed
      sequence of problems for evaluation: the same for every seed (it depends only on the arguments above).
    - ``max_steps`` (default ``2 * num_operations + 4``): at least the longest solution trace plus the answer.
    - ``reward_weights``, ``prm``, ``render_mode``: see :class:`~reason_gym.core.ReasoningEnv`.

    ## Version History
    - v0: initial version.
    """

    splits = ("train", "test")
    default_reward_weights: ClassVar[Mapping[str, float]] = {**ReasoningEnv.default_reward_weights, "step_check": 0.0}
    max_question_chars = 512
    task = TASK

    def __init__(
        self,
        *,
        kind: str = "mixed",
        num_operations: int = 3,
        max_number: int = 10,
        fractions: bool = False,
        split: str = "train",
        max_steps: int | None = None,
        reward_weights: Mapping[str, float] | None = None,
        prm: Any = None,
        render_mode: str | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown("keyword argument", unknown, self.accepted_kwargs())
        if kind not in (*KINDS, "mixed"):
            raise ValueError(f"kind must be 'expression', 'linear' or 'mixed', got {kind!r}")
        if type(num_operations) is not int or not 1 <= num_operations <= MAX_OPERATIONS:
            raise ValueError(f"num_operations must be an int from 1 to {MAX_OPERATIONS}, got {num_operations!r}")
        if type(max_number) is not int or not 2 <= max_number <= 10**6:
            raise ValueError(f"max_number must be an int from 2 to 1000000, got {max_number!r}")
        if type(fractions) is not bool:
            raise ValueError(f"fractions must be True or False, got {fractions!r}")
        if split not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}")
        longest = num_operations + 1 if kind == "expression" else 2 * num_operations + 1
        if max_steps is None:
            max_steps = 2 * num_operations + 4
        elif isinstance(max_steps, int) and 1 <= max_steps < longest:
            raise ValueError(f"max_steps must be at least {longest} to allow a full solution and its answer")
        super().__init__(max_steps=max_steps, reward_weights=reward_weights, prm=prm, render_mode=render_mode)
        self.kind, self.num_operations, self.max_number = kind, num_operations, max_number
        self.fractions, self.split = fractions, split

    # ------------------------------------------------------------------ problems

    def problem_at(self, index: int, split: str | None = None) -> dict[str, Any]:
        """The ``index``-th problem of a split's fixed sequence (a problem may repeat in a small setting)."""
        split = self._check_split(split)
        rng = np.random.default_rng((_INDEX_SEED, self.splits.index(split), check_index(index, None, split)))
        return self._draw(rng, split)

    def _choose_problem(self, index: int | None, split: str | None) -> Mapping[str, Any]:
        if index is not None:
            return self.problem_at(index, split)
        return self._draw(self.np_random, self._check_split(split))

    def _draw(self, rng: np.random.Generator, split: str) -> dict[str, Any]:
        for _ in range(_MAX_DRAWS):  # rejection sampling: about 1 draw in 10 for test, 10 in 9 for train
            kind = self.kind if self.kind != "mixed" else KINDS[int(rng.integers(2))]
            problem = generate_problem(
                rng, kind=kind, num_operations=self.num_operations, max_number=self.max_number, fractions=self.fractions
            )
            if split_of(problem) == split:
                return problem
        raise ValueError(f"no {split} problem in {_MAX_DRAWS} draws: these settings have too few distinct problems")

    def _validate_problem(self, record: Any) -> Mapping[str, Any]:
        return validate_problem(record)

    def _question(self, problem: Mapping[str, Any]) -> str:
        if problem["kind"] == "expression":
            return f"Compute {problem['expression']}."
        return f"Solve for x: {problem['equation']}."

    def _problem_id(self, problem: Mapping[str, Any]) -> str:
        return problem_id(problem)

    def reference_answer(self, problem: Mapping[str, Any]) -> str:
        return str(problem["answer"])  # an int or a Fraction: 7, -7/2

    # ------------------------------------------------------------------ dynamics

    def _initial_task_state(self, problem: Mapping[str, Any]) -> tuple[bool, ...]:
        return ()  # the task state is the truth of each accepted step: exact process labels

    def _apply_step(self, state: EpisodeState, step: str) -> StepOutcome:
        if "\n" in step:
            return StepOutcome("", state.task, "a step is one line: 'left = right'")
        step = one_line(step)  # stored as read (3 · 4 = 12 as 3 * 4 = 12): replaying it gives the same verdict
        if len(step) > self.max_step_chars:
            return StepOutcome("", state.task, f"a step is at most {self.max_step_chars} characters")
        sides = step.split("=")
        if len(sides) != 2:
            return StepOutcome("", state.task, "a step is one equation 'left = right', with exactly one '='")
        linear = state.problem["kind"] == "linear"
        forms = [linear_form(side) if linear else _constant(evaluate(side)) for side in sides]
        for side, form in zip(sides, forms, strict=True):
            if form is None:
                what = "linear in x" if linear else "arithmetic on numbers"
                return StepOutcome("", state.task, f"'{side.strip()[:40]}' is not {what} (or divides by zero)")
        true = _step_is_true(forms, linear and "x" in step, state.problem["answer"])  # type: ignore[arg-type]
        return StepOutcome(step, (*state.task, true), "", {"step_check": float(true)})

    def _judge_answer(self, state: EpisodeState, answer: str) -> AnswerOutcome:
        answer = one_line(answer)  # stored as read: replaying the line gives the same verdict
        line = f"Answer: {answer}"
        given = parse_number(re.sub(r"^x\s*=", "", answer))
        if given is None:
            error = "the answer is not one number (a fraction in lowest terms): write e.g. 'Answer: 7/2'"
            return AnswerOutcome(False, line, error)
        correct = given == state.problem["answer"]
        return AnswerOutcome(correct, line, "" if correct else "wrong answer")

    def _rejected_components(self) -> dict[str, float]:
        return {"step_check": 0.0}  # reported on every step, weighted or not

    # ------------------------------------------------------------------ helpers for agents

    @property
    def step_checks(self) -> tuple[bool, ...]:
        """Whether each accepted step so far is true (see ``step_check`` under Rewards)."""
        return self._require_state().task


def _step_is_true(forms: list[tuple[Number, Number]], mentions_x: bool, solution: Number) -> bool:
    """Whether a step ``a x + b = c x + d`` is true: without x, exact arithmetic truth; with x, equivalence to the
    problem, i.e. the same solution set ``{solution}``. An identity (``x = x``, ``2x = x + x``, ``0x = 0``) holds
    for every x and a contradiction for none, so neither is equivalent to a problem with one solution."""
    (a, b), (c, d) = forms
    if not mentions_x:
        return b == d
    return a != c and apply(d - b, "/", a - c) == solution


def _constant(number: Number | None) -> tuple[Number, Number] | None:
    return None if number is None else (0, number)
