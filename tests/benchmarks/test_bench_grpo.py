"""The GRPO throughput benchmark: its TRL reward function is ours, and a tiny run of the three arms end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_recorded_reward_is_our_reward_function_and_logs_each_call(load_benchmark) -> None:
    pytest.importorskip("datasets")
    from reason_gym.integrations.trl import TOTAL, make_dataset, make_reward_funcs

    bench = load_benchmark("bench_grpo")
    env_kwargs = bench.DEFAULT_ENV_KWARGS[bench.ENV_ID]
    rows = make_dataset(bench.ENV_ID, split="train", limit=1, **env_kwargs)
    total = make_reward_funcs(bench.ENV_ID, **env_kwargs)[0]
    recorded = bench.Recorded(total)
    assert recorded.__name__ == TOTAL  # TRL names the reward column after it
    completions = ["gibberish", "1 + 1 = 3\nmore"]
    columns = {name: [rows[0][name]] * 2 for name in ("index", "split", "problem", "problem_id")}
    rewards = recorded([rows[0]["prompt"]] * 2, completions, completion_ids=[[5] * 3, [5] * 9], **columns)
    assert rewards == total([rows[0]["prompt"]] * 2, completions, **columns)
    assert recorded.mean_rewards == [pytest.approx(sum(rewards) / 2)] and recorded.tokens == [12]


@pytest.mark.parametrize(
    ("low", "high", "reward_diff", "expected"),
    [
        (2.05, 2.2, 0.1, "met"),
        (2.0, 2.1, 0.0, "met"),  # the interval's low end at the target, the same curve
        (1.95, 2.1, 0.1, "not shown"),  # 2x inside the interval
        (1.8, 1.99, 0.1, "not met"),
        (2.1, 2.3, -0.01, "not met"),  # faster, but a worse curve
        (1.9, 2.1, -0.2, "not met"),
    ],
)
def test_the_verdict_needs_the_whole_interval_at_the_target(load_benchmark, low, high, reward_diff, expected) -> None:
    assert load_benchmark("bench_grpo").verdict(low, high, reward_diff).startswith(expected)


def test_the_ratio_interval_brackets_the_ratio_and_narrows_with_steadier_steps(load_benchmark) -> None:
    bench = load_benchmark("bench_grpo")

    def steps(seconds: list[float]) -> list[list[dict[str, float]]]:
        return [[{"samples": 16, "seconds": t} for t in seconds]]

    steady = bench.ratio_interval(steps([0.5] * 40), steps([1.0] * 40), warmup=0)
    assert steady == pytest.approx((2.0, 2.0))
    noisy_ours = [0.4, 0.5, 0.6, 0.45, 0.55] * 8
    low, high = bench.ratio_interval(steps(noisy_ours), steps([1.0] * 40), warmup=0)
    assert low < 2.0 < high and high - low < 1.0
    assert bench.ratio_interval(steps(noisy_ours), steps([1.0] * 40), warmup=0) == (low, high)  # a fixed seed


@pytest.mark.slow
def test_quick_run_reports_the_three_arms_and_the_ratios(tmp_path: Path, run_script) -> None:
    out, png = tmp_path / "grpo.json", tmp_path / "grpo.png"
    done = run_script("benchmarks/bench_grpo.py", "--quick", "--steps", "2", "--out", str(out), "--plot", str(png))
    report = json.loads(out.read_text())
    assert report["meta"]["torch_threads"] == [1]
    lines = done.stdout.splitlines()
    assert any(line.startswith("ours (GRPOTrainer) ") for line in lines), done.stdout
    ours = report["ours"]
    assert ours["steps"] == 2 and ours["samples_per_s"] > 0 and ours["tokens_per_s"] > 0
    assert len(ours["reward_curve"]) == 2
    if report["meta"]["trl"] is None:
        assert "TRL is not available" in done.stdout
        pytest.skip("TRL is not installed: only our trainer was benchmarked")
    for arm, label in (("trl", "TRL + make_reward_funcs"), ("trl_rollout", "TRL + EnvRollout")):
        assert any(line.startswith(label + " ") for line in lines), done.stdout
        assert any(line.startswith(f"ratio ours/{label}: samples/s ") for line in lines), done.stdout
        row = report[arm]
        assert row["steps"] == 2 and row["samples_per_s"] > 0 and len(row["reward_curve"]) == 2
        ratio = report["ratio"][arm]
        assert ratio["samples_per_s"] == pytest.approx(ours["samples_per_s"] / row["samples_per_s"])
        low, high = ratio["samples_per_s_interval"]
        assert low <= ratio["samples_per_s"] * (1 + 1e-9) and ratio["samples_per_s"] <= high * (1 + 1e-9)
        assert row["tokens_per_step"] <= 4 * 32 * 4 + 4  # 4 completions of <= 128 tokens (+ the env's EOS)
    if "matplotlib is not installed" not in done.stdout:
        assert png.stat().st_size > 0


def test_update_benchmark_checks_every_layout_equals_per_step_and_reports_the_speedups(tmp_path: Path, run_script):
    out = tmp_path / "update.json"
    done = run_script("benchmarks/bench_grpo_update.py", "--episodes", "8", "--repeats", "1", "--json", str(out))
    report = json.loads(out.read_text())
    assert report["episodes"] == 8 and set(report["speedup_over_steps"]) == {"packed", "steps", "auto", "tree"}
    assert report["sequences_tree"] <= report["sequences_packed"] <= report["sequences_per_step"]
    assert "disagree" not in done.stdout and done.stdout.splitlines()[-1].endswith("one sequence per step)")
