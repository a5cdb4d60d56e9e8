"""The math checker benchmark: its answer rewrites, and a ``--quick`` run end to end with sane figures."""

from __future__ import annotations

import json

import pytest

from reason_gym.data import find_data_file


@pytest.mark.parametrize(
    ("gold", "decimal"),
    [("\\frac{3}{8}", "0.375"), ("-\\frac{1}{4}", "-0.25"), ("7/20", "0.35"), ("\\frac{1}{3}", None), ("4", None)],
)
def test_exact_decimals_are_exact(gold, decimal, load_benchmark):
    assert load_benchmark("bench_math_checker").exact_decimal(gold) == decimal


@pytest.mark.parametrize(
    ("gold", "rounded"),
    [
        ("\\frac{1}{3}", "0.333333"),
        ("-\\frac{2}{3}", "-0.666667"),
        ("7/6", "1.166667"),
        ("\\frac{3}{8}", None),
        ("4", None),
    ],
)
def test_rounded_decimals_are_approximations(gold, rounded, load_benchmark):
    assert load_benchmark("bench_math_checker").rounded_decimal(gold) == rounded


@pytest.mark.parametrize(
    ("gold", "side"), [("x + y = 3", "3"), ("5x - 7y + 4 = 0", "0"), ("y = 2x + 3", None), ("x = 5", None), ("5", None)]
)
def test_equation_right_sides(gold, side, load_benchmark):
    assert load_benchmark("bench_math_checker").equation_right_side(gold) == side


@pytest.mark.parametrize(
    ("gold", "terms"),
    [
        ("2+\\sqrt{3}", ["2", "\\sqrt{3}"]),
        ("x^8 + x^{7+1} + 1", ["x^8", "x^{7+1}", "1"]),
        ("-1 + \\sqrt{2}", ["-1", "\\sqrt{2}"]),
        ("2 - \\sqrt{3}", None),  # a top-level minus: not a plain sum
        ("(1+2, 3)", None),
        ("5", None),
    ],
)
def test_top_level_terms(gold, terms, load_benchmark):
    assert load_benchmark("bench_math_checker").top_level_terms(gold) == terms


def test_cases_are_labelled_by_construction(load_benchmark):
    bench = load_benchmark("bench_math_checker")
    cases = bench.build_cases([{"answer": "\\frac{1}{2}", "unique_id": "a"}, {"answer": "-12", "unique_id": "b"}])
    by_category = {(case.problem, case.category): (case.answer, case.truth) for case in cases}
    assert by_category[("a", "exact decimal")] == ("\\boxed{0.5}", True)
    assert by_category[("a", "dfrac <-> frac")] == ("\\boxed{\\dfrac{1}{2}}", True)
    assert by_category[("a", "near miss: sign added")] == ("\\boxed{-\\frac{1}{2}}", False)
    assert by_category[("b", "near miss: gold + 1")] == ("\\boxed{-11}", False)
    assert by_category[("b", "near miss: sign dropped")] == ("\\boxed{12}", False)
    assert by_category[("b", "integer.0")] == ("\\boxed{-12.0}", True)
    assert by_category[("b", "markdown bold")] == ("**-12**", True)
    assert by_category[("b", "near miss: hedge, two boxes")] == ("\\boxed{-12} or \\boxed{-11}", False)
    cases = bench.build_cases([{"answer": "\\frac{1}{3}", "unique_id": "c"}])
    assert ("\\boxed{0.333333}", False) in {(case.answer, case.truth) for case in cases}


@pytest.mark.slow
def test_quick_run_end_to_end(tmp_path, run_script):
    if find_data_file("math500/test.jsonl") is None:
        pytest.skip("needs math500/test.jsonl under REASON_GYM_DATA_DIR (see shared/data/README.md)")
    out = tmp_path / "bench.json"
    result = run_script("benchmarks/bench_math_checker.py", "--quick", "--json", str(out), timeout=300)
    assert "SUMMARY" in result.stdout and "checks/s" in result.stdout
    report = json.loads(out.read_text())
    assert report["meta"]["quick"] and report["meta"]["golds"] == 40
    timing = report["timing"]
    assert timing["checks"] > 200 and all(rate > 0 for rate in timing["per_s"].values())
    assert report["comparison"]["ours_worse"] == []
    assert sum(row["cases"] for row in report["comparison"]["categories"].values()) == timing["checks"]
    assert all(row["right"] in ("ours", "math-verify") for row in report["comparison"]["disagreements"])
