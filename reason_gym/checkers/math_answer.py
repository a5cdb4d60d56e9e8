"""Final answers to math problems (GSM8K, MATH), judged for equivalence with the reference in bounded time.

A check runs in five stages (:meth:`MathAnswerChecker.check`):

1. **Extraction** (:mod:`reason_gym.checkers.math_forms`): the text after ``Answer:`` may be raw (``18``,
   ``\\frac{1}{2}``, ``**18**``), in ``$...$`` / ``\\(...\\)`` / ``\\[...\\]``, or in ``\\boxed{}``. Every box
   counts, and values joined by ``or`` / ``and`` / ``;`` (``5 or 6``, ``$5$ or $6$``) are separate final values.
2. **Form rules**, in this process (the rules below): hedges, equations and units
   (:mod:`reason_gym.checkers.math_quantities` reads numbers and units).
3. **Exact fast path**, in this process: an answer identical to the reference (up to runs of spaces) is right;
   when both sides are plain numbers (integers, decimals, ``a/b``, ``\\frac{a}{b}``, mixed numbers, ``½``,
   scientific notation, repeating decimals, GSM8K thousands separators ``1,234``, a currency sign, a unit,
   degrees, a percent sign) they are compared as exact :class:`~fractions.Fraction` values, and so are numbers
   in a base (``52_8``) and lists of numbers with the same brackets (tuples and intervals in order, sets and bare
   lists of solutions in any order; an enumerated set ``\\{0, 1\\}`` is never a tuple or interval ``(0, 1)``).
   A base subscript on an answer to a plain reference is the reference's digits in that base (``2743_{14}`` for
   ``2743``, not ``19_8`` for ``19``); a thousands separator may carry a space command (``11,\\! 111``).
4. **Cache**: verdicts of stage 5 are kept in an LRU cache keyed by ``(reference, extracted answer)``.
5. **math-verify** (sympy underneath) in a persistent worker process with a deadline, with numbers compared
   exactly (decimals read as the fractions they are) and equations equal when one is the other scaled. Model
   text is parsed only there, never with ``eval``/``sympify`` in this process. The worker interrupts itself
   after a soft budget (``timeout`` minus a margin); if it does not answer by ``timeout`` the parent kills it,
   starts a new one and judges the answer wrong. So every check returns in about ``timeout`` seconds, from any
   thread (math-verify's own ``signal.alarm`` timeout only works in a main thread) and in any process, including
   ``AsyncVectorEnv`` workers: a forked child never uses its parent's worker (it starts its own), and workers
   are closed at exit (the processes: :mod:`reason_gym.checkers.math_worker`; fork and exit:
   :mod:`reason_gym.process_local`).

The rules (what a careful grader accepts, and nothing more):

- **Numbers are exact.** A decimal is the number it writes: right for a reference it equals exactly (``0.5``
  for ``\\frac12``, ``0.375`` for ``\\frac38``, ``\\frac{157}{50}`` for a decimal reference ``3.14``), wrong for
  one it only approximates (``0.333333`` for ``\\frac13``, ``1.414214`` for ``\\sqrt2``, ``3.141593`` for
  ``\\pi``; and ``\\pi`` for ``3.14``). math-verify rounds to 6 places and accepted those; on MATH a policy
  would learn to answer in decimals. Nor is there a tolerance between expressions: they are equal when their
  difference simplifies to 0 (``\\pi + 10^{-20}`` and ``31415926535897932 \\times 10^{-16}`` are not ``\\pi``).
- **Equations.** A reference ``<unknown> = <constant>`` (``x = 5``, ``AB = 10``), or ``<function> =
  <expression>`` (``f(x) = 2x + 3``), also takes its right-hand side alone; any other equation (``x + y = 3``,
  ``y = 2x + 3``) needs an equivalent equation (``y = 3 - x``; ``2x - y + 3 = 0``). An equation given for a
  value reference is read as its sides after leading unknowns, and each must be right: ``x = 5``, ``f(3) = 5``
  and ``x = 2 + 3 = 5`` are right for ``5``; ``x + y = 5`` and ``2x = 10`` are not.
- **One final value.** Several different final values are a hedge, judged wrong: two boxes with different values,
  ``5 or 6``, ``5, or maybe 6``, ``$5$ or $6$``. The same value given twice (``\\boxed{5}`` ... ``\\boxed{5.0}``)
  is no hedge, and a list reference (``2, 3``, ``\\{2, 3\\}``, ``\\pm 5``) takes its values one by one (``2 or
  3``, ``x = 2`` or ``x = 3``). Another value beside the final one is a hedge too: after the box (``\\boxed{5} or
  6``, ``\\boxed 5 6``), in a box inside the box, joined to the final span (``$6$ (or $5$)``, ``$6$ then $5$``),
  an unclosed box; and an equation chain is its equations (``x = 6 = 5`` states ``x = 6``). A plain value restated
  beside the final one by ``or``, a comma or brackets is compared with it as several boxes are: the same value is
  no hedge (``\\boxed{\\frac{3}{2}}, or 1.5``, ``\\boxed{\\frac14} (0.25)``, ``$18$ (or $\\frac{36}{2}$)``),
  another value or one not shown equal in time is (and any such value for a list reference, ``\\boxed{2}, 3`` for
  ``2, 3``). Hedging words (``maybe``, ``perhaps``, ``possibly``, ``probably``, ``guess``) make an answer wrong
  (inside and after the boxes, or anywhere in an answer without one).
- **Words and signs that change a value** are no unit: ``5 thousand``, ``5 squared``, ``5 \\text{ at most}``, ``5
  \\text{ (or 6)}``, ``\\neg 5``, ``\\approx 5``, ``~5``, ``more than 5`` are wrong for ``5`` (unless the
  reference has the same words). Count and comparison words after a number name what is counted (GSM8K asks "how
  many more", "how many times", "how many dozens"): ``40 more``, ``5 fewer students``, ``3 \\text{ times}``, ``7
  dozen`` and ``6 more than Tom`` are right for ``40``, ``5``, ``3``, ``7`` and ``6``.
- **Units.** A unit on one side only is dropped (``18 dollars`` for ``18``; ``30`` for ``30^\\circ``). Units on
  both sides must be the same unit, however spelled (``cm^2`` = ``\\text{ cm}^2`` = ``square centimeters``;
  ``\\$`` = ``dollars``; ``°`` = ``degrees``), with no conversion: ``cm^3`` is wrong for ``cm^2``, ``500 cm``
  for ``5 m``, ``m/s`` for ``km/h``, ``cents`` for ``dollars``, radians for degrees; and without its unit
  ``30^\\circ`` is ``30``, not ``\\frac{\\pi}{6}``.
- **Percentages.** Two percentages compare as numbers (``18.0%`` = ``18%``). Against a bare number ``q``,
  ``p%`` is right when ``q`` is its value (``0.18`` for ``18%``), or when ``q`` above 1 is ``p`` with the sign
  left out (GSM8K's references: ``18`` for ``18%``); ``0.5%`` is not ``0.5``.

Verdicts are :class:`AnswerCheck` tuples; ``method`` says which stage decided. Timeouts and resource exhaustion
(hostile input such as ``9^{9^{9}}``) are judged wrong and cached like any verdict, so a policy that repeats a
pathological answer does not pay the deadline again; a timeout is reused only by checks with no more time
than it had (a check with a longer ``timeout`` tries again). Brackets nested deeper than ``MAX_NESTING`` (8)
are judged wrong without parsing (the parser's time doubles with about every two levels). A bug (an exception
math-verify does not handle) is raised, never turned into a wrong answer.

Starting a worker costs about 1 s (importing sympy); it happens on the first check that needs one, and again only
after a kill. It is bounded separately, by ``startup_timeout``.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections import OrderedDict
from typing import NamedTuple

from reason_gym.checkers.math_forms import (
    bracket_kind,
    equation_sides,
    extract_answer,
    final_answers,
    has_connector,
    is_constant,
    is_list,
    names_unknowns,
    nesting_depth,
)
from reason_gym.checkers.math_quantities import (
    base_number,
    exact_number,
    looks_like_base_number,
    number_list,
    split_unit,
    units_agree,
    value_words,
)
from reason_gym.checkers.math_worker import WORKER_SCRIPT, CheckerUnavailableError, WorkerDied, WorkerPool
from reason_gym.process_local import LiveObjects, ProcessDefault

__all__ = [  # WORKER_SCRIPT and CheckerUnavailableError are defined in reason_gym.checkers.math_worker
    "DEFAULT_TIMEOUT",
    "MAX_ANSWER_CHARS",
    "MAX_FINAL_VALUES",
    "MAX_NESTING",
    "WORKER_SCRIPT",
    "AnswerCheck",
    "CheckerBugError",
    "CheckerUnavailableError",
    "MathAnswerChecker",
    "check_answer",
    "default_checker",
    "is_equivalent",
    "require_math_verify",
]

MAX_ANSWER_CHARS = 1000
"""Longer extracted answers (or references) are judged wrong without parsing."""

MAX_FINAL_VALUES = 8
"""An answer giving more final values than this is a hedge, judged without checking each."""

MAX_NESTING = 8
"""Answers with brackets nested deeper than this are judged wrong without parsing. No reference of MATH nests
deeper than 3, and the LaTeX parser's time doubles with about every two levels of ``{`` (``{{{...5}}}``: 0.7 s at
8 levels, 4 s at 12, past the 3 s budget at 15): a right answer that deep would time out anyway."""

DEFAULT_TIMEOUT = 3.0
"""Seconds a check may take in the worker before it is judged wrong."""

_MIN_WORKER_SECONDS = 0.05
"""A check with less of its budget left judges its next value wrong (timeout) instead of asking the worker."""

_SOFT_MARGIN = 0.5
"""The worker's own budget is ``timeout - _SOFT_MARGIN`` (at least half the timeout), leaving the parent time
to receive the reply before its hard deadline."""


class AnswerCheck(NamedTuple):
    """The verdict on one answer.

    Attributes:
        correct: Whether the answer is equivalent to the reference.
        method: Which stage decided: ``"identical"`` (the same text as the reference), ``"exact"`` (the number
            fast path), ``"math-verify"``, ``"hedge"`` (several different final values, or a hedging word),
            ``"form"`` (an equation's form or a unit), ``"empty"``, ``"too-long"`` (too long or too deeply
            nested to parse), ``"timeout"``, ``"limit"`` (the worker ran out of memory or recursion depth) or
            ``"crashed"`` (the worker died; it is restarted).
        reason: Why the answer is wrong (empty when it is right).
    """

    correct: bool
    method: str
    reason: str = ""


class CheckerBugError(RuntimeError):
    """The worker hit an exception that is not a bounded failure (timeout, memory, recursion): a bug to fix."""


def _unreadable(answer: str, gold: str) -> AnswerCheck | None:
    """A wrong verdict for an answer not worth parsing (empty, too long, too deeply nested), else ``None``."""
    if not answer:
        return AnswerCheck(False, "empty", "no answer given")
    if len(answer) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return AnswerCheck(False, "too-long", f"the answer is longer than {MAX_ANSWER_CHARS} characters")
    if nesting_depth(answer) > MAX_NESTING:
        return AnswerCheck(False, "too-long", f"the answer nests brackets deeper than {MAX_NESTING} levels")
    return None


def _exact(equal: bool) -> AnswerCheck:
    return AnswerCheck(True, "exact") if equal else AnswerCheck(False, "exact", "not equal to the reference answer")


def _identical(gold: str, answer: str) -> bool:
    return " ".join(gold.split()) == " ".join(answer.split())


def _base_verdict(gold: str, answer: str) -> AnswerCheck | None:
    if not looks_like_base_number(answer):
        return None
    if gold.strip().isdigit():  # MATH often writes 2743 for "in base 14": the digits, in the base the question asked
        digits = answer.strip().partition("_")[0]
        return _exact(digits == gold.strip() and base_number(answer) is not None)  # 19_8 has no base-8 digit 9
    if "_" not in gold:
        return None
    reference = base_number(gold)
    return None if reference is None else _exact(base_number(answer) == reference)  # bad digits: None, so wrong


def _number_verdict(gold: str, answer: str) -> AnswerCheck | None:
    reference = exact_number(gold)
    given = exact_number(answer) if reference is not None else None
    if reference is not None and given is None and number_list(answer) is not None:
        return _exact(False)  # several numbers for one (math-verify reads 1,\ 234 as the set {1, 234})
    if reference is None or given is None:
        return None
    if "%" in (reference.unit, given.unit) and reference.unit != given.unit:
        # One side p%, the other a bare number q: right when q is its value p/100 (0.18 for 18%), or when q above 1
        # is p with the sign left out (GSM8K writes 18 for 18%). 0.5 is not 0.5%: that is 0.005.
        percent, number = (reference, given) if reference.unit == "%" else (given, reference)
        return _exact(number.value == percent.value / 100 or (abs(number.value) > 1 and number.value == percent.value))
    return _exact(reference.value == given.value)


def _list_verdict(gold: str, answer: str) -> AnswerCheck | None:
    reference = number_list(gold) if "," in gold else None
    given = number_list(answer) if reference is not None else None
    if reference is None or given is None or reference.kind != given.kind:
        return None
    ours, theirs = [v.value for v in reference.values], [v.value for v in given.values]
    return _exact(set(ours) == set(theirs) if reference.kind in ("set", "list") else ours == theirs)


def _exact_verdict(gold: str, answer: str) -> AnswerCheck | None:
    """The verdict of the fast path, or ``None`` when it cannot decide (then math-verify does)."""
    if _identical(gold, answer):
        return AnswerCheck(True, "identical")
    return _base_verdict(gold, answer) or _number_verdict(gold, answer) or _list_verdict(gold, answer)


class _Budget:
    """The seconds one check may spend in math-verify, shared by every value it sends there (several final
    values, the sides of an equation). It starts at the first worker call, so that a check with one call gets all
    of it, as before; later calls get what is left."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline: float | None = None

    def left(self) -> float:
        """The seconds left, without starting the clock."""
        return self.seconds if self.deadline is None else self.deadline - time.monotonic()

    def take(self) -> float:
        """The seconds left, starting the clock at the first call."""
        if self.deadline is None:
            self.deadline = time.monotonic() + self.seconds
            return self.seconds  # exactly: a timeout cached with it is reused by checks with the same budget
        return self.left()


def _wrong_form(reason: str) -> AnswerCheck:
    return AnswerCheck(False, "form", reason)


def _equation_pairs(gold: str, answer: str) -> list[tuple[str, str]] | AnswerCheck | None:
    """The equation rule: the (reference, answer) pairs that must all be right, a wrong verdict, or ``None`` when
    no equation is involved (or both are equations, or lists: math-verify compares those).

    A reference ``<unknown> = <constant>`` (``x = 5``) or ``<function> = <expression>`` (``f(x) = 2x + 3``)
    accepts its right-hand side alone; any other equation (``y = 2x + 3``, ``x + y = 3``) needs an equation. An
    equation for a value is read as its sides, after leading unknowns (``x = 5``, ``f(2) = 5``,
    ``(x, y) = (1, 2)``, ``x = 2 + 3 = 5``): each must be right, so ``x + y = 5`` is wrong for ``5``.
    """
    gold_sides, answer_sides = equation_sides(gold), equation_sides(answer)
    if len(gold_sides) == 2 and len(answer_sides) > 2:  # a chain is its equations: x = 6 = 5 states x = 6
        return [(gold, f"{answer_sides[0]} = {side}") for side in answer_sides[1:]]
    if len(gold_sides) == len(answer_sides) == 1 or (len(gold_sides) > 1 and len(answer_sides) > 1):
        return None
    if is_list(gold) or is_list(answer):
        return None  # systems and lists of solutions (x = 2, x = 3): math-verify pairs them
    if len(gold_sides) == 1:
        sides = answer_sides[1:] if names_unknowns(answer_sides[0]) else answer_sides
        return [(gold, side) for side in sides]
    if names_unknowns(gold_sides[0]) and (is_constant(gold_sides[-1]) or "(" in gold_sides[0]):
        return [(gold_sides[-1], answer)]  # x = 5 asks for 5; f(x) = 2x + 3 for f's expression (y = 2x + 3 for a line)
    return _wrong_form("the reference answer is an equation; the answer is not")


def _unit_pair(gold: str, answer: str) -> tuple[str, str] | AnswerCheck:
    """The unit rule: a wrong verdict when both sides have units and they differ (no conversion: ``5 m`` is wrong
    for ``500 cm``, ``cm^2`` for ``cm^3``), else the texts math-verify compares, without their units (a unit on
    one side only is dropped; a percent sign is kept, math-verify reads it)."""
    gold_bare, gold_unit = split_unit(gold)
    answer_bare, answer_unit = split_unit(answer)
    if gold_unit and answer_unit and not units_agree(gold_unit, answer_unit):
        return _wrong_form(f"the unit differs from the reference's ({answer_unit} for {gold_unit})")
    return (gold if gold_unit == "%" else gold_bare), (answer if answer_unit == "%" else answer_bare)


# ------------------------------------------------------------------------------------------------------ checker

_CHECKERS: LiveObjects[MathAnswerChecker] = LiveObjects(
    forget=lambda checker: checker._reset_after_fork(), close=lambda checker: checker.close()
)
"""Every checker: a forked child forgets its parent's workers; at exit each process closes its own."""


class MathAnswerChecker:
    """Judges final answers against reference answers (see the module docstring for the stages).

    Thread-safe; usable in any process. Workers start lazily, up to ``max_workers`` at once (one per thread
    that is checking at the same time), and are reused for every check.

    Args:
        timeout: Seconds a check may take in math-verify before it is judged wrong (the worker is restarted if
            it does not stop by then).
        max_workers: The most worker processes at once; more concurrent checks wait for a free one.
        cache_size: Verdicts kept in the LRU cache (0 disables it).
        startup_timeout: Seconds a new worker may take to import math-verify before
            :class:`CheckerUnavailableError` is raised.
        memory_limit_mb: The address-space limit of each worker.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_workers: int = 2,
        cache_size: int = 65536,
        startup_timeout: float = 60.0,
        memory_limit_mb: int = 2048,
    ) -> None:
        if not timeout > 0 or not startup_timeout > 0:
            raise ValueError(f"timeout and startup_timeout must be positive, got {timeout!r}, {startup_timeout!r}")
        if not (isinstance(max_workers, int) and max_workers >= 1):
            raise ValueError(f"max_workers must be an int >= 1, got {max_workers!r}")
        if not (isinstance(cache_size, int) and cache_size >= 0):
            raise ValueError(f"cache_size must be an int >= 0, got {cache_size!r}")
        self.timeout = float(timeout)
        self.max_workers = max_workers
        self.cache_size = cache_size
        self.startup_timeout = float(startup_timeout)
        self.memory_limit_mb = int(memory_limit_mb)
        self.backend_version: str | None = None
        """math-verify's version, known once a worker has started."""
        self._cache: OrderedDict[tuple[str, str], tuple[AnswerCheck, float]] = OrderedDict()  # with the seconds tried
        self._cache_lock = threading.Lock()
        self._workers = WorkerPool(
            max_workers=max_workers,
            memory_limit_mb=self.memory_limit_mb,
            startup_timeout=self.startup_timeout,
            script=WORKER_SCRIPT,  # read now: tests swap in other workers
        )
        _CHECKERS.add(self)

    # ---------------------------------------------------------------- public API

    def check(self, answer: str, gold: str, *, timeout: float | None = None) -> AnswerCheck:
        """Judges ``answer`` (the text after ``Answer:``, in any accepted form) against the reference ``gold``.

        Args:
            answer: The model's answer text.
            gold: The reference answer (e.g. GSM8K's text after ``####`` or the last ``\\boxed{}`` of a MATH
                solution; a boxed or ``$``-wrapped reference is unwrapped the same way).
            timeout: Overrides the checker's ``timeout`` for this check.

        Raises:
            TypeError: ``answer`` or ``gold`` is not a str.
            CheckerUnavailableError: a worker is needed and cannot start (math-verify missing).
            CheckerBugError: math-verify raised an exception it should have handled.
        """
        if not isinstance(answer, str) or not isinstance(gold, str):
            raise TypeError(f"answer and gold are str, got {type(answer).__name__} and {type(gold).__name__}")
        reference, budget = extract_answer(gold), _Budget(self.timeout if timeout is None else float(timeout))
        if has_connector(reference):  # the reference itself says "or": no alternatives to tell apart
            return self._judge(reference, extract_answer(answer), budget)
        final = final_answers(answer)
        if final.hedged:
            return AnswerCheck(False, "hedge", "the answer hedges (maybe, I guess; another value beside its own)")
        values = final.values + tuple(value for value in final.restated if value not in final.values)
        if len(values) > len(final.values) and is_list(reference):  # \boxed{2}, 3 is no list 2, 3
            return AnswerCheck(False, "hedge", f"the answer states another value beside its own: {values}")
        if len(values) == 1:
            return self._judge(reference, values[0], budget)
        # A value restated beside the final one (\boxed{\frac32}, or 1.5) is one more final value: right when it
        # is right too (the same value), a hedge when it is not, or cannot be shown equal within the budget.
        return self._judge_several(reference, values, budget)

    def is_equivalent(self, answer: str, gold: str) -> bool:
        """Whether ``answer`` is judged equivalent to ``gold`` (see :meth:`check`)."""
        return self.check(answer, gold).correct

    def clear_cache(self) -> None:
        """Forgets cached verdicts, and makes each worker empty its parse caches before its next check."""
        with self._cache_lock:
            self._cache.clear()
        self._workers.clear_caches()

    def worker_pids(self) -> list[int]:
        """Process ids of this process's running workers (for monitoring; empty before the first worker check)."""
        return self._workers.pids()

    def close(self) -> None:
        """Stops the workers (new ones start if the checker is used again). Called for every checker at exit."""
        self._workers.close()

    def __enter__(self) -> MathAnswerChecker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- judging

    def _judge_several(self, reference: str, values: tuple[str, ...], budget: _Budget) -> AnswerCheck:
        """Several final values: right when the reference is a list and they are that list (``2 or 3`` for
        ``2, 3``), or when every one is right (the same value written twice); otherwise a hedge."""
        hedge = AnswerCheck(False, "hedge", f"the answer gives {len(values)} different final values: {values}")
        if len(values) > MAX_FINAL_VALUES:
            return hedge
        if is_list(reference):
            return self._judge(reference, ", ".join(values), budget)
        verdict = hedge
        for value in values:
            verdict = self._judge(reference, value, budget)
            if not verdict.correct:
                return hedge._replace(reason=f"{hedge.reason}; {value!r} is wrong")
        return verdict

    def _judge(self, gold: str, answer: str, budget: _Budget) -> AnswerCheck:
        """One answer value against the reference: the form rules (equations, units), the fast paths, then the
        cache and math-verify."""
        verdict = _unreadable(answer, gold)
        if verdict is not None:
            return verdict
        if _identical(gold, answer):
            return AnswerCheck(True, "identical")
        qualifiers = value_words(answer) ^ value_words(gold)
        if qualifiers:  # dropped as units or by math-verify, they made 5 thousand, 5 \text{ at most}, \neg 5 right
            return _wrong_form(f"words that change the value differ from the reference's: {sorted(qualifiers)}")
        if {bracket_kind(gold), bracket_kind(answer)} == {"set", "tuple"}:
            return _wrong_form("a set is not a tuple or an interval (nor one of them a set)")
        pairs = _equation_pairs(gold, answer)
        if pairs is not None:
            return pairs if isinstance(pairs, AnswerCheck) else self._judge_all(pairs, budget)
        bare = _unit_pair(gold, answer)
        if isinstance(bare, AnswerCheck):
            return bare
        verdict = _exact_verdict(gold, answer) or _exact_verdict(*bare)
        return verdict if verdict is not None else self._verified(*bare, budget)

    def _judge_all(self, pairs: list[tuple[str, str]], budget: _Budget) -> AnswerCheck:
        verdict = AnswerCheck(False, "empty", "no answer given")
        for gold, answer in pairs:
            verdict = self._judge(gold, answer, budget)
            if not verdict.correct:
                break
        return verdict

    def _verified(self, gold: str, answer: str, budget: _Budget) -> AnswerCheck:
        """math-verify's verdict, from the cache or the worker (within what is left of the check's budget)."""
        key = (gold, answer)
        verdict = self._cached(key, budget.left())
        if verdict is not None:
            return verdict
        seconds = budget.take()
        if seconds < _MIN_WORKER_SECONDS:
            return AnswerCheck(False, "timeout", "no time left: the check's other values used its time budget")
        verdict = self._verify(gold, answer, seconds)
        self._remember(key, verdict, seconds)
        return verdict

    # ---------------------------------------------------------------- cache

    def _cached(self, key: tuple[str, str], seconds: float) -> AnswerCheck | None:
        """The cached verdict, but not a timeout within less time than ``seconds`` (more time may decide it)."""
        with self._cache_lock:
            verdict, tried = self._cache.get(key, (None, 0.0))
            if verdict is None or (verdict.method == "timeout" and tried < seconds):
                return None
            self._cache.move_to_end(key)
            return verdict

    def _remember(self, key: tuple[str, str], verdict: AnswerCheck, seconds: float) -> None:
        if not self.cache_size:
            return
        with self._cache_lock:
            self._cache[key] = (verdict, seconds)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    # ---------------------------------------------------------------- workers

    def _reset_after_fork(self) -> None:
        """Forgets the workers and locks (a forked child must not use its parent's; it starts its own)."""
        self._cache_lock = threading.Lock()
        self._workers.forget()

    def _verify(self, gold: str, answer: str, timeout: float) -> AnswerCheck:
        budget = max(timeout - _SOFT_MARGIN, timeout / 2)
        # A worker that dies on a request is retried once on a fresh worker: it may have been killed from outside
        # while idle, before the kill was visible to ``alive()``. Dying twice means the answer itself kills it.
        for _attempt in range(2):
            worker = self._workers.acquire()
            self.backend_version = worker.version
            healthy = False
            try:
                reply = worker.request({"gold": gold, "answer": answer, "budget": budget}, time.monotonic() + timeout)
                healthy = reply is not None
                break
            except WorkerDied:
                continue
            finally:
                self._workers.release(worker, healthy)
        else:
            return AnswerCheck(False, "crashed", "the math-verify worker died on this answer twice (it was restarted)")
        if reply is None:
            return AnswerCheck(False, "timeout", f"no verdict within {timeout:g} s (the worker was restarted)")
        if "bug" in reply:
            raise CheckerBugError(f"math-verify failed on gold={gold!r}, answer={answer!r}:\n{reply['bug']}")
        if "error" in reply:
            if reply["error"] == "timeout":
                return AnswerCheck(False, "timeout", f"math-verify took longer than {budget:g} s")
            return AnswerCheck(False, "limit", f"math-verify exhausted a resource ({reply['error']})")
        if reply["correct"]:
            return AnswerCheck(True, "math-verify")
        return AnswerCheck(False, "math-verify", "not equivalent to the reference answer")


# --------------------------------------------------------------------------------------- process-wide default

_DEFAULT: ProcessDefault[MathAnswerChecker] = ProcessDefault(MathAnswerChecker)


def default_checker() -> MathAnswerChecker:
    """The process-wide checker the environments use (created on first use; its workers start lazily)."""
    return _DEFAULT.get()


def check_answer(answer: str, gold: str) -> AnswerCheck:
    """Judges ``answer`` against ``gold`` with :func:`default_checker` (see :meth:`MathAnswerChecker.check`)."""
    return default_checker().check(answer, gold)


def is_equivalent(answer: str, gold: str) -> bool:
    """Whether ``answer`` is equivalent to ``gold``, by :func:`default_checker`.

    >>> is_equivalent("Answer: $1,234", "1234"), is_equivalent(r"\\boxed{\\dfrac{1}{2}}", "0.5")
    (True, True)
    >>> is_equivalent("18.0", "18"), is_equivalent("-18", "18")
    (True, False)
    """
    return default_checker().check(answer, gold).correct


def require_math_verify() -> None:
    """Raises :class:`CheckerUnavailableError` now if math-verify is not installed (environments call this in
    their constructor, so a missing dependency fails before the first episode, not at the first answer)."""
    if importlib.util.find_spec("math_verify") is None:
        raise CheckerUnavailableError("math answers need math-verify: pip install 'math-verify>=0.9'")
