"""The math-verify worker process of :mod:`reason_gym.checkers.math_answer` (the checker runs this file as a script).

Why a separate process: math-verify parses answers with sympy's LaTeX parser, which can take unbounded time and
memory on hostile input (``9^{9^{9}}``, thousands of nested ``\\frac{``), and its own timeout uses ``signal.alarm``,
which only works in a main thread. This worker runs everything in its own main thread, so it can interrupt itself
with a timer signal (a soft budget per check), and the parent kills it when even that fails (the hard deadline).
Model text is only ever parsed here, never in the parent.

Protocol: one JSON object per line on stdin and stdout.

- Startup: the worker writes ``{"ready": true, "version": "<math-verify version>"}``, or ``{"fatal": "<why>"}``
  and exits (math-verify not installed).
- ``{"id": n, "gold": "...", "answer": "...", "budget": seconds}`` ->
  ``{"id": n, "correct": bool}`` (math-verify's verdict, with numbers compared exactly: decimals are read as the
  fractions they are; and equations that are the same equation scaled are equal), or
  ``{"id": n, "error": "timeout" | "MemoryError" | "RecursionError"}`` for the bounded failures, or
  ``{"id": n, "bug": "<traceback>"}`` for anything else (the parent raises it).
  With ``"clear_first": true`` the parse caches (ours and math-verify's) are emptied first (for benchmarks).

The worker exits at end of input, i.e. when its parent closes the pipe or dies.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable
from functools import lru_cache
from typing import Any

PARSE_CACHE_SIZE = 4096

EXACT_PRECISION = 50
"""Digits of math-verify's numeric comparison, which here only screens out unequal values before the symbolic
proof (:func:`proved_numeric_eq`)."""

_DECIMAL = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+|\d*)\.(\d+)(?![\d.])")


def exact_decimals(text: str) -> str:
    """``text`` with every decimal written as the fraction it is exactly (``0.25`` -> ``\\frac{25}{100}``), so that
    math-verify compares it exactly: it would round both sides to 6 places, taking ``0.333333`` for ``1/3``.

    >>> exact_decimals("x^0.5 + 1,234.5 - .25")
    'x^{\\\\frac{5}{10}} + \\\\frac{12345}{10} - \\\\frac{25}{100}'
    """

    def fraction(match: re.Match[str]) -> str:
        whole, decimals = match[1].replace(",", ""), match[2]
        exact = f"\\frac{{{int(whole + decimals)}}}{{1{'0' * len(decimals)}}}"
        return f"{{{exact}}}" if text[match.start() - 1 : match.start()] in ("^", "_") else exact

    return _DECIMAL.sub(fraction, text)


def proportional_equations(gold: Any, answer: Any) -> bool:
    """Whether two parsed equations are the same equation scaled (``2x = 10`` for ``x = 5``, ``2x - y + 3 = 0``
    for ``y = 2x + 3``): their ``lhs - rhs`` differ by a non-zero constant factor. math-verify compares equations
    by ``lhs - rhs`` and by solving, which misses scalings in one unknown."""
    from sympy import Equality, Expr, simplify

    if not (isinstance(gold, Equality) and isinstance(answer, Equality)):
        return False  # any other pair of types (a value, a set, a tuple of equations): not two equations
    if not all(isinstance(side, Expr) for side in (gold.lhs, gold.rhs, answer.lhs, answer.rhs)):
        return False  # x \in [a, b] parses as an Equality too, between a symbol and a set
    ours, theirs = gold.lhs - gold.rhs, answer.lhs - answer.rhs
    if not ours.free_symbols or theirs == 0:
        return False
    try:
        ratio = simplify(ours / theirs)
    except (MemoryError, RecursionError):
        raise
    except Exception:  # as in math-verify's own comparisons, an expression sympy cannot handle is not equal
        return False
    return bool(ratio.is_number and ratio.is_finite and ratio.is_zero is False)


def proved_numeric_eq(numeric_eq: Callable[..., bool], symbolic_eq: Callable[..., bool]) -> Callable[..., bool]:
    """math-verify's numeric comparison of two expressions, made exact: where it would accept two expressions
    whose difference evaluates to 0 within its precision, the difference must also simplify to 0. Its tolerance
    (an absolute 1e-15) took ``31415926535897932 \\times 10^{-16}`` or ``\\pi + 10^{-20}`` for ``\\pi``, and no
    precision is enough: ``\\sqrt{2 + 10^{-200}}`` differs from ``\\sqrt{2}`` beyond 50 digits. Comparisons with
    a plain number (atomic: compared exactly, decimals being fractions here) and between matrices (element by
    element, through this function again) are left as they are."""
    from math_verify.grader import is_atomic_or_pct_atomic
    from sympy import MatrixBase, Number
    from sympy.matrices.expressions import MatrixExpr

    def exact(a: Any, b: Any, float_rounding: int, numeric_precision: int) -> bool:
        if not numeric_eq(a, b, float_rounding, EXACT_PRECISION):
            return False
        if any(is_atomic_or_pct_atomic(side, Number) or isinstance(side, MatrixBase | MatrixExpr) for side in (a, b)):
            return True
        return symbolic_eq(a, b)

    return exact


class OutOfTime(BaseException):
    """Raised by the budget timer. A BaseException, so math-verify's ``except Exception`` handlers let it through."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise OutOfTime


def _limit_memory(megabytes: int) -> None:
    """Caps the address space, so a huge power fails fast with MemoryError instead of swapping the machine."""
    try:
        import resource
    except ImportError:  # not POSIX: the parent's deadline still bounds the time
        return
    limit = megabytes * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _answer(request: dict[str, Any], judge: Callable[[str, str], bool]) -> dict[str, Any]:
    """The reply to one request: the verdict, or the bounded failure, or the traceback of a bug."""
    reply: dict[str, Any] = {"id": request["id"]}
    try:
        signal.setitimer(signal.ITIMER_REAL, max(float(request["budget"]), 0.01))
        try:
            reply["correct"] = judge(request["gold"], request["answer"])
        finally:  # inside the outer try: a signal that lands here still becomes a timeout, not a crash
            signal.setitimer(signal.ITIMER_REAL, 0)
    except OutOfTime:
        reply = {"id": request["id"], "error": "timeout"}
    except (MemoryError, RecursionError) as error:  # hostile input exhausted a resource: a bounded failure
        reply["error"] = type(error).__name__
    except Exception:  # a bug in math-verify or here: reported to the parent, which raises it
        reply["bug"] = traceback.format_exc(limit=20)
    return reply


def main() -> int:
    # Run as a script, Python puts this file's folder first on sys.path; drop it before importing math-verify so
    # that nothing in the package folder can shadow a module it imports.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    # The protocol owns the real stdout; anything else that prints (sympy warnings, C code) goes to stderr.
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)

    def send(message: dict[str, Any]) -> None:
        protocol.write(json.dumps(message).encode() + b"\n")

    try:
        from importlib.metadata import version

        from math_verify import grader, parse, verify
        from math_verify import parser as math_verify_parser
    except ImportError as error:
        send({"fatal": f"cannot import math_verify ({error}); install it with pip install 'math-verify>=0.9'"})
        return 1
    grader.sympy_numeric_eq = proved_numeric_eq(grader.sympy_numeric_eq, grader.sympy_symbolic_eq)
    logging.disable(logging.WARNING)  # math-verify logs every parse failure; the verdict says enough
    signal.signal(signal.SIGALRM, _on_alarm)
    _limit_memory(int(sys.argv[1]) if len(sys.argv) > 1 else 2048)

    @lru_cache(maxsize=PARSE_CACHE_SIZE)
    def parsed(text: str) -> list[Any]:
        # Timeouts off: they would use signal.alarm, the same timer as our budget. The budget bounds them all.
        return parse("\\boxed{" + text + "}", parsing_timeout=None)  # type: ignore[arg-type]

    def judge(gold: str, answer: str) -> bool:
        # Exact numbers: decimals become fractions, so 0.333333 is not 1/3 nor 1.414214 the square root of 2.
        ours, theirs = parsed(exact_decimals(gold)), parsed(exact_decimals(answer))
        if verify(ours, theirs, numeric_precision=EXACT_PRECISION, timeout_seconds=None):
            return True
        return bool(ours and theirs and proportional_equations(ours[0], theirs[0]))

    # The first parse, symbolic comparison and tuple cost 0.1-0.3 s each (lazy imports): pay them before "ready".
    for gold, answer in (("1", "1"), ("1", "x + 1"), ("(1, \\sqrt{2})", "(1, \\sqrt{3})"), ("x = 1", "2x = 2")):
        judge(gold, answer)
    send({"ready": True, "version": version("math-verify")})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if request.get("clear_first"):
            parsed.cache_clear()
            for name in ("parse_latex_cached", "parse_expr_cached"):  # math-verify's own LRU caches
                getattr(getattr(math_verify_parser, name, None), "cache_clear", lambda: None)()
        send(_answer(request, judge))
    return 0


if __name__ == "__main__":
    sys.exit(main())
