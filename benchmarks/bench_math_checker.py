"""Math answer checking: plain math-verify against reason_gym's checker, side by side on MATH-500 answers.

Run it from the repository root (``REASON_GYM_DATA_DIR`` names the folder that holds ``math500/test.jsonl``)::

    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_math_checker.py --json bench_math.json
    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_math_checker.py --quick   # about 15 s

Workload: for every MATH-500 reference answer ("gold"), answer texts built so that their truth is known by
construction (right: the gold as ``\\boxed{gold}``, ``$gold$``, in a sentence, raw, and rewritten equivalently:
``\\frac`` -> ``\\dfrac``, an exact decimal for a fraction, ``18.0`` for ``18``, ``**18**``, thousands separators,
the terms of a sum reversed; wrong: gold + 1, the last digit changed, the leading minus sign dropped or a minus
added, a 6-place decimal for a fraction with no exact one (``0.333333`` for ``\\frac{1}{3}``), the right-hand side
of an equation alone (``3`` for ``x + y = 3``), two boxes with the gold and gold + 1).

Both checkers judge the same (gold, answer text) pairs:

- plain math-verify, as its README uses it: ``verify(parse("$" + gold + "$"), parse(answer))`` in this process's
  main thread (its own signal timeouts on);
- ours: ``MathAnswerChecker().check(answer, gold)`` (extraction; exact fast paths for identical text, plain numbers,
  lists of numbers and numbers in a base; a verdict cache; math-verify in a worker process).

Timing: wall clock (ours does its math-verify work in another process), every cache emptied before each repeat
(ours: its verdict cache and the worker's parse caches; math-verify's LRU caches of parsed LaTeX), so every
repeat is cold; the worker is started before timing, as math-verify is imported before timing. The two checkers
alternate within each repeat; figures are medians over ``--repeats``. Besides the whole workload, each of its two
parts is timed alone, with cold caches (not with ``--quick``): the gold as written (which our identical-text path
decides) and the rewrites and near misses (where it cannot). A warm figure (ours, every verdict cached) is
reported beside them. Every verdict is compared with the truth by construction; each disagreement between the two
checkers is listed with who is right.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

from math_verify import parse, verify
from math_verify import parser as math_verify_parser

import reason_gym
from reason_gym.checkers.math_answer import MathAnswerChecker
from reason_gym.data import find_data_file

TARGET_RATIO = 2.0
"""The goal for our checks/s over plain math-verify's (cold caches)."""


class Case(NamedTuple):
    """One answer to judge: its gold, the answer text, the category that built it and the truth."""

    problem: str
    gold: str
    answer: str
    category: str
    truth: bool


# ---------------------------------------------------------------------------------------------- answer rewrites

_FRACTION = re.compile(r"(-?)\s*(?:\\[dt]?frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))")
_INTEGER = re.compile(r"-?\d+")
_NOT_A_PLAIN_SUM = re.compile(r",|=|<|>|\\le|\\ge|\\pm|\\mp|\\text|\\cup|\\cap|\\begin|\\\\|\\infty|%")


def exact_decimal(gold: str) -> str | None:
    """The exact decimal of a fraction ``\\frac{a}{b}`` / ``a/b`` whose denominator has no prime factor but 2
    and 5 (``\\frac{3}{8}`` -> ``0.375``), else ``None``. Independent of the checker's own number reader."""
    match = _FRACTION.fullmatch(gold.strip())
    if match is None:
        return None
    sign, a, b, c, d = match.groups()
    value = Fraction(int(a or c), int(b or d)) if int(b or d) else None
    if value is None or value.denominator == 1:
        return None
    q, twos, fives = value.denominator, 0, 0
    while q % 2 == 0:
        q, twos = q // 2, twos + 1
    while q % 5 == 0:
        q, fives = q // 5, fives + 1
    if q != 1:
        return None
    places = max(twos, fives)
    scaled = value.numerator * 10**places // value.denominator
    whole, fraction = divmod(scaled, 10**places)
    return f"{sign}{whole}.{fraction:0{places}d}"


def rounded_decimal(gold: str) -> str | None:
    """A fraction ``\\frac{a}{b}`` / ``a/b`` with no exact decimal, rounded to 6 places (``\\frac{1}{3}`` ->
    ``0.333333``): an approximation, not the number (math-verify compares to 6 places and takes it); else
    ``None``."""
    match = _FRACTION.fullmatch(gold.strip())
    if match is None or exact_decimal(gold) is not None:
        return None
    sign, a, b, c, d = match.groups()
    if not int(b or d):
        return None
    value = Fraction(int(a or c), int(b or d))
    if value.denominator == 1:
        return None
    whole, fraction = divmod(round(value * 10**6), 10**6)
    return f"{sign}{whole}.{fraction:06d}"


def equation_right_side(gold: str) -> str | None:
    """The right-hand side of an equation whose left side is not a single letter (``x + y = 3`` -> ``3``): not
    the equation (math-verify took it as one); else ``None``."""
    sides = gold.split("=")
    if len(sides) != 2 or re.fullmatch(r"\s*[A-Za-z]\s*", sides[0]) or not sides[1].strip():
        return None
    return sides[1].strip()


def top_level_terms(gold: str) -> list[str] | None:
    """The terms of a sum ``a + b + ...`` split at ``+`` outside any braces, or ``None`` if the gold is not a plain
    sum (a top-level minus, relation, list, set operation, matrix, text or percent)."""
    if _NOT_A_PLAIN_SUM.search(gold):
        return None
    depth, start, terms = 0, 0, []
    for i, char in enumerate(gold):
        if char in "{([":
            depth += 1
        elif char in "})]":
            depth -= 1
        elif depth == 0 and i > 0 and char == "-":
            return None
        elif depth == 0 and i > 0 and char == "+":
            terms.append(gold[start:i].strip())
            start = i + 1
    terms.append(gold[start:].strip())
    return terms if len(terms) >= 2 and all(terms) else None


def with_thousands(integer: str) -> str | None:
    """``1234`` -> ``1,234`` (``None`` below 1,000)."""
    sign, digits = ("-", integer[1:]) if integer.startswith("-") else ("", integer)
    return f"{sign}{int(digits):,}" if len(digits) > 3 else None


def change_last_digit(gold: str) -> str | None:
    digits = [i for i, char in enumerate(gold) if char.isdigit()]
    if not digits:
        return None
    i = digits[-1]
    return gold[:i] + str((int(gold[i]) + 1) % 10) + gold[i + 1 :]


def build_cases(records: Sequence[dict[str, Any]]) -> list[Case]:
    """The answer texts for every gold, labelled right or wrong by how they were built."""
    cases: list[Case] = []
    for record in records:
        gold, problem = record["answer"], record["unique_id"]

        def add(category: str, answer: str | None, truth: bool, *, boxed: bool = True) -> None:
            if answer is not None:  # None: the rewrite does not apply to this gold
                text = f"\\boxed{{{answer}}}" if boxed else answer
                cases.append(Case(problem, gold, text, category, truth))  # noqa: B023 (called at once)

        add("boxed", gold, True)
        add("dollars", f"${gold}$", True, boxed=False)
        add("sentence", f"The final answer is $\\boxed{{{gold}}}$.", True, boxed=False)
        add("raw", gold, True, boxed=False)
        if "\\frac" in gold or "\\dfrac" in gold:
            swapped = gold.replace("\\dfrac", "\\FRAC").replace("\\frac", "\\dfrac").replace("\\FRAC", "\\frac")
            add("dfrac <-> frac", swapped, True)
        add("exact decimal", exact_decimal(gold), True)
        add("near miss: 6-place decimal", rounded_decimal(gold), False)
        add("near miss: equation's right side", equation_right_side(gold), False)
        if _INTEGER.fullmatch(gold):
            add("integer.0", f"{gold}.0", True)
            add("markdown bold", f"**{gold}**", True, boxed=False)
            add("near miss: hedge, two boxes", f"\\boxed{{{gold}}} or \\boxed{{{int(gold) + 1}}}", False, boxed=False)
            add("thousands separators", with_thousands(gold), True)
            add("near miss: gold + 1", str(int(gold) + 1), False)
        terms = top_level_terms(gold)
        if terms:
            first, rest = terms[0], terms[:0:-1]
            reordered = " + ".join(rest) + (f" - {first[1:]}" if first.startswith("-") else f" + {first}")
            add("sum reordered", reordered, True)
        add("near miss: digit changed", change_last_digit(gold), False)
        if gold.startswith("-") and gold.strip() not in ("-0", "-0.0"):
            add("near miss: sign dropped", gold[1:], False)
        elif (_INTEGER.fullmatch(gold) or exact_decimal(gold) or _FRACTION.fullmatch(gold)) and gold != "0":
            add("near miss: sign added", f"-{gold}", False)
    return cases


# ------------------------------------------------------------------------------------------------------ checkers


def plain_math_verify(gold: str, answer: str) -> bool:
    return bool(verify(parse(f"${gold}$"), parse(answer)))


def clear_math_verify_caches() -> None:
    for name in ("parse_latex_cached", "parse_expr_cached"):
        getattr(getattr(math_verify_parser, name, None), "cache_clear", lambda: None)()


GOLD_AS_WRITTEN = ("boxed", "dollars", "sentence", "raw")
"""Categories whose answer is the gold itself (wrapped): our identical-text path decides them."""


def run_all(check: Callable[[Case], bool], cases: Sequence[Case]) -> tuple[float, list[bool]]:
    """Wall-clock seconds to judge every case, and the verdicts."""
    start = time.perf_counter()
    verdicts = [check(case) for case in cases]
    return time.perf_counter() - start, verdicts


def measure(cases: Sequence[Case], checker: MathAnswerChecker, repeats: int) -> dict[str, Any]:
    """checks/s of both checkers (cold caches, alternating order) and ours warm, medians over repeats, and the
    verdicts of the last repeat."""
    checks: dict[str, Callable[[Case], bool]] = {
        "math_verify": lambda case: plain_math_verify(case.gold, case.answer),
        "ours": lambda case: checker.check(case.answer, case.gold).correct,
    }
    seconds: dict[str, list[float]] = {"math_verify": [], "ours": [], "ours_warm": []}
    verdicts: dict[str, list[bool]] = {}
    for repeat in range(repeats):
        for name in ("math_verify", "ours") if repeat % 2 == 0 else ("ours", "math_verify"):
            if name == "math_verify":
                clear_math_verify_caches()
            else:
                checker.clear_cache()
            elapsed, verdicts[name] = run_all(checks[name], cases)
            seconds[name].append(elapsed)
            if name == "ours":
                seconds["ours_warm"].append(run_all(checks["ours"], cases)[0])  # at once: all verdicts cached
    rates = {name: [len(cases) / s for s in values] for name, values in seconds.items()}
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "checks": len(cases),
        "per_s": medians,
        "per_s_repeats": {name: [round(r, 1) for r in values] for name, values in rates.items()},
        "ratio": medians["ours"] / medians["math_verify"],
        "ratio_warm": medians["ours_warm"] / medians["math_verify"],
        "verdicts": verdicts,
    }


def measure_groups(cases: Sequence[Case], checker: MathAnswerChecker, repeats: int) -> dict[str, Any]:
    """The same measurement on each part of the workload alone (each with cold caches): the gold as written,
    which our identical-text path decides, and the rewrites and near misses, where it cannot."""
    parts = {
        "gold as written (boxed, $, sentence, raw)": [c for c in cases if c.category in GOLD_AS_WRITTEN],
        "rewrites and near misses": [c for c in cases if c.category not in GOLD_AS_WRITTEN],
    }
    groups = {}
    for name, part in parts.items():
        figures = measure(part, checker, repeats)
        groups[name] = {key: figures[key] for key in ("checks", "per_s", "per_s_repeats", "ratio")}
        print(f"  {name}: {figures['ratio']:.1f}x", flush=True)
    return groups


def methods_of(cases: Sequence[Case], checker: MathAnswerChecker) -> Counter[str]:
    """Which stage decided each of our verdicts (after a cache clear, so none comes from the cache)."""
    checker.clear_cache()
    return Counter(checker.check(c.answer, c.gold).method for c in cases)


# ------------------------------------------------------------------------------------------------------ report


def compare(cases: Sequence[Case], verdicts: dict[str, list[bool]], checker: MathAnswerChecker) -> dict[str, Any]:
    """Accuracy per category against the truth, and every disagreement with who is right."""
    categories: dict[str, dict[str, int]] = {}
    disagreements, ours_worse, both_wrong = [], [], []
    for case, mv, ours in zip(cases, verdicts["math_verify"], verdicts["ours"], strict=True):
        row = categories.setdefault(case.category, {"cases": 0, "math_verify_right": 0, "ours_right": 0})
        row["cases"] += 1
        row["math_verify_right"] += mv == case.truth
        row["ours_right"] += ours == case.truth
        entry = {
            "problem": case.problem,
            "gold": case.gold,
            "answer": case.answer,
            "category": case.category,
            "truth": case.truth,
            "math_verify": mv,
            "ours": ours,
        }
        if mv != ours:
            check = checker.check(case.answer, case.gold)
            entry["right"] = "ours" if ours == case.truth else "math-verify"
            entry["note"] = f"ours: {check.method}"
            disagreements.append(entry)
            if ours != case.truth:
                ours_worse.append(entry)
        elif ours != case.truth:
            both_wrong.append(entry)
    return {
        "categories": categories,
        "disagreements": disagreements,
        "ours_worse": ours_worse,
        "both_wrong": both_wrong,
    }


_COLUMNS = (("math_verify", 11), ("ours", 5))


def _short(text: str, width: int) -> str:
    text = repr(text)
    return text if len(text) <= width else text[: width - 3] + "..."


def print_report(report: dict[str, Any]) -> None:
    timing, comparison = report["timing"], report["comparison"]
    print(f"\n{'category':<28} {'cases':>6} {'math-verify right':>18} {'ours right':>11}")
    for name, row in comparison["categories"].items():
        print(f"  {name:<26} {row['cases']:>6} {row['math_verify_right']:>18} {row['ours_right']:>11}")
    print(f"\ndisagreements ({len(comparison['disagreements'])}); who is right is decided by construction:")
    print(f"  {'problem':<36} {'category':<25} {'answer':<40} {'math-verify':<11} {'ours':<5} right  note")
    for row in comparison["disagreements"]:
        verdicts = " ".join(f"{'right' if row[key] else 'wrong':<{width}}" for key, width in _COLUMNS)
        print(f"  {row['problem']:<36} {row['category']:<25} {_short(row['answer'], 40):<40} {verdicts} ", end="")
        print(f"{row['right']:<6} {row['note']}")
    for name, rows in (("BOTH CHECKERS WRONG", comparison["both_wrong"]), ("OURS WORSE", comparison["ours_worse"])):
        if rows:
            print(f"\n{name} on {len(rows)} answers (truth by construction; check the construction too):")
            for row in rows:
                print(f"  {row['problem']} {row['category']}: gold={row['gold']!r} answer={row['answer']!r}")
    print("\n" + "=" * 100)
    per_s, spread = timing["per_s"], timing["per_s_repeats"]
    print(f"SUMMARY: {timing['checks']} checks per repeat, {report['meta']['repeats']} repeats, medians, wall clock")
    print("=" * 100)
    for label, key in (("plain math-verify (cold caches)", "math_verify"), ("ours (cold caches)", "ours"),
                       ("ours (warm: verdicts cached)", "ours_warm")):  # fmt: skip
        print(f"  {label:<34}{per_s[key]:>10,.1f} checks/s   repeats {spread[key]}")
    title = "checks/s, cold caches, each part alone"
    print(f"\n  {title:<44} {'checks':>6} {'math-verify':>12} {'ours':>10} {'ratio':>7}")
    for group, row in [("all answers", timing), *report["groups"].items()]:
        rates = row["per_s"]
        print(
            f"  {group:<44} {row['checks']:>6} {rates['math_verify']:>12,.1f} {rates['ours']:>10,.1f} "
            f"{row['ratio']:>6.1f}x"
        )
    worse = len(comparison["ours_worse"])
    met = timing["ratio"] >= TARGET_RATIO and not worse
    print(
        f"  ratio ours / math-verify: {timing['ratio']:.1f}x cold, {timing['ratio_warm']:.0f}x warm "
        f"(target >= {TARGET_RATIO:.0f}x with no verdict worse: {'MET' if met else 'NOT MET'})"
    )
    stages = ", ".join(f"{name} {count}" for name, count in report["methods"].most_common())
    print(f"  our deciding stage per check: {stages}")
    right = sum(row["right"] == "ours" for row in comparison["disagreements"])
    print(
        f"  verdicts differing: {len(comparison['disagreements'])} (ours right on {right}); "
        f"ours worse: {worse}; both wrong: {len(comparison['both_wrong'])}"
    )


# --------------------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run: the first 40 golds, 2 repeats, no separate parts"
    )
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 5; quick 2)")
    parser.add_argument("--limit", type=int, help="use only the first N MATH-500 problems (default all; quick 40)")
    parser.add_argument("--json", metavar="PATH", help="write every figure and disagreement to this JSON file")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    limit = args.limit or (40 if args.quick else None)
    if repeats < 1 or (limit is not None and limit < 1):
        parser.error("--repeats and --limit must be positive")
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    logging.disable(logging.WARNING)  # math-verify logs every parse failure

    path = find_data_file("math500/test.jsonl")
    if path is None:
        print("MATH-500 not found: set REASON_GYM_DATA_DIR to a folder with math500/test.jsonl", file=sys.stderr)
        return 2
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()][:limit]
    cases = build_cases(records)
    checker = MathAnswerChecker()
    checker.check(r"\boxed{x + 1}", "1 + x")  # start the worker outside the timing
    print(
        f"reason_gym {reason_gym.__version__}, math-verify {checker.backend_version}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    right = sum(case.truth for case in cases)
    wrong = len(cases) - right
    print(f"{len(records)} MATH-500 golds -> {len(cases)} answers ({right} right, {wrong} wrong by construction)")
    print(f"timing {repeats} repeats of both checkers ...", flush=True)
    timing = measure(cases, checker, repeats)
    print(f"  all answers: {timing['ratio']:.1f}x", flush=True)
    groups = {} if args.quick else measure_groups(cases, checker, repeats)
    report = {
        "meta": {
            "quick": args.quick,
            "repeats": repeats,
            "golds": len(records),
            "python": platform.python_version(),
            "math_verify": checker.backend_version,
            "reason_gym": reason_gym.__version__,
            "cpus": os.cpu_count(),
            "load_average_end": os.getloadavg()[0],
        },
        "timing": {k: v for k, v in timing.items() if k != "verdicts"},
        "groups": groups,
        "comparison": compare(cases, timing["verdicts"], checker),
        "methods": methods_of(cases, checker),
    }
    report["target_met"] = report["timing"]["ratio"] >= TARGET_RATIO and not report["comparison"]["ours_worse"]
    print_report(report)
    checker.close()
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)
        print(f"\nwrote {args.json}")
    return 1 if report["comparison"]["ours_worse"] else 0


if __name__ == "__main__":
    sys.exit(main())
