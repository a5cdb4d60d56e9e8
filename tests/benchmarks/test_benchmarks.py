"""The environment benchmark: its independent judge, and a ``--quick`` run end to end with sane figures."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("text", "numbers", "correct", "reason"),
    [
        ("8 / (3 - 8 / 3)", (3, 3, 8, 8), True, "exactly 24"),
        ("(13-9)*(10-4)", (4, 9, 10, 13), True, "exactly 24"),
        ("(9 − (2 + 3)) × 6", (2, 3, 6, 9), True, "exactly 24"),
        ("(" * 400 + "4 * 6 * 1 * 1" + ")" * 400, (1, 1, 4, 6), True, "exactly 24"),
        ("(13-9)*(10-4)", (4, 9, 10, 12), False, "uses 4 9 10 13"),
        ("7 * (4 - (1 / 2))", (1, 2, 4, 7), False, "value 49/2"),
        ("2 ** 3 * 3 * 1", (1, 2, 3, 3), False, "out of place"),
        ("-(1 - 4) * 8 * 1", (1, 1, 4, 8), False, "out of place"),
        ("4 * 6  # 1 2", (1, 2, 4, 6), False, "'#' is not allowed"),
        ("6 * 4 / (1 - 1)", (1, 1, 4, 6), False, "division by zero"),
        ("4 6 1 1", (1, 1, 4, 6), False, "two numbers in a row"),
        ("((4 * 6) * 1 * 1", (1, 1, 4, 6), False, "unbalanced"),
        ("", (1, 1, 4, 6), False, "incomplete"),
    ],
)
def test_reference_judge(load_benchmark, text: str, numbers: tuple[int, ...], correct: bool, reason: str) -> None:
    verdict, why, _ = load_benchmark("bench_game24_env").reference_judge(text, numbers)
    assert verdict is correct
    assert reason in why


def test_reachable_finds_exact_values(load_benchmark) -> None:
    values = load_benchmark("bench_game24_env").reachable([3, 3, 8, 8])
    assert Fraction(24) in values and Fraction(49, 2) not in values


@pytest.mark.slow
def test_quick_run_writes_every_figure(tmp_path: Path, run_script) -> None:
    out = tmp_path / "bench.json"
    run_script("benchmarks/bench_game24_env.py", "--quick", "--json", str(out), timeout=300)
    report = json.loads(out.read_text())
    assert not any(report["meta"]["workload_label_failures"].values())

    for label in ("raw", "make"):
        figures = report["single_env"][label]["workloads"]
        assert {
            "valid steps (cold)",
            "valid steps (warm)",
            "invalid: near miss (cold)",
            "invalid: garbage (warm)",
        } <= set(figures)
        assert {"answer: correct", "answer: wrong"} <= set(figures)
        assert all(figure["per_s"] > 0 for figure in figures.values()), figures
        assert report["single_env"][label]["resets_per_s"] > 0
    assert report["target"]["figure"] > 0 and isinstance(report["target"]["met"], bool)

    rows = report["vector"]["rows"]
    assert {("sync", 2), ("async", 2)} <= {(row["kind"], row["num_envs"]) for row in rows}
    assert all(row["steps_per_s"] > 0 and row.get("policy_ok", True) for row in rows), rows

    answers = report["answers"]
    if "skipped" in answers:
        pytest.skip(answers["skipped"])
    assert answers["ours_per_s"] > 0 and answers["reasoning_gym_per_s"] > 0 and answers["ratio"] > 0
    assert answers["disagreements"], "the adversarial answers should make the two checkers differ"
    assert all(row["right"] == "ours" for row in answers["disagreements"]), answers["disagreements"]
    assert answers["ours_wrong"] == [] and answers["construction_mismatches"] == []
