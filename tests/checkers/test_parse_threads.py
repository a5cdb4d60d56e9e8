"""Checkers parse model output with ``ast``, and ``reason-gym serve`` runs them in threads: every parse goes through
:func:`reason_gym.parse.parse_python`, which serialises ``ast.parse`` (CPython < 3.11.8 fails concurrent parses
with ``SystemError: AST constructor recursion depth mismatch``, gh-106905)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from reason_gym.checkers.game24 import judge_answer
from reason_gym.parse import parse_python

PACKAGE = Path(__file__).resolve().parents[2] / "reason_gym"
ANSWERS = [
    "(10 - 4) * (5 - 1)",
    "((((4 + 5) + 6) + 10) - 1)",
    "4 * (5 + (6 - (10 / (1 + 1))))",
    "(" * 60 + "4" + ")" * 60 + " * 6",
    "4 +* 5",
    "24",
]


def test_no_module_calls_ast_parse_directly():
    direct = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "parse.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bast\.parse\(", line.split("#")[0])
    ]
    assert direct == []


def test_verdicts_in_many_threads_equal_the_verdicts_in_one():
    alone = [judge_answer(answer, [4, 5, 6, 10]) for answer in ANSWERS]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda i: judge_answer(ANSWERS[i % len(ANSWERS)], [4, 5, 6, 10]), range(2000)))
    assert together == [alone[i % len(ANSWERS)] for i in range(2000)]
    assert type(parse_python("1 + 2", mode="eval").body).__name__ == "BinOp"
