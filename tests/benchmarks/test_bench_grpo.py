"""The GRPO throughput benchmark: TRL's reward function gives the env's reward, and a tiny run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_trl_reward_is_the_env_reward_of_one_step(load_benchmark) -> None:
    bench = load_benchmark("bench_grpo")
    env_kwargs = bench.DEFAULT_ENV_KWARGS[bench.ENV_ID]  # a dictionary (it was a JSON string)
    states, indices = bench.train_prompts(bench.ENV_ID, env_kwargs, problems=0)
    assert len(states) == len(indices) > 100 and states[0].startswith("Game of 24:")
    env = bench.gym.make(bench.ENV_ID, **env_kwargs).unwrapped
    env.reset(options={"index": 0, "split": "train"})
    solving = None
    for step in [s for s in env.candidate_actions() if s]:
        env.reset(options={"index": 0, "split": "train"})
        if env.step(step)[1] == 1.0:  # valid, and the numbers left still reach 24
            solving = step
            break
    assert solving is not None

    reward = bench.StepReward(bench.ENV_ID, env_kwargs)
    completions = [solving + "\n", solving + "\nmore text after the step", "1 + 1 = 3\n", "gibberish"]
    rewards = reward(
        completions, prompts=[states[0] + "\n"] * 4, index=[0] * 4, completion_ids=[[5] * 7, [5] * 9, [5], [5] * 3]
    )
    assert rewards == [1.0, 1.0, -0.1, -0.1]  # the text up to the first newline is the one step
    assert reward.mean_rewards == [pytest.approx(0.45)] and reward.tokens == [20]


@pytest.mark.slow
def test_quick_run_reports_both_trainers_and_the_ratio(tmp_path: Path, run_script) -> None:
    out = tmp_path / "grpo.json"
    done = run_script("benchmarks/bench_grpo.py", "--quick", "--steps", "2", "--out", str(out))
    report = json.loads(out.read_text())
    assert report["meta"]["torch_threads"] == [1]
    lines = done.stdout.splitlines()
    assert any(line.startswith("ours ") for line in lines), done.stdout
    ours = report["ours"]
    assert ours["steps"] == 2 and ours["samples_per_s"] > 0 and ours["tokens_per_s"] > 0
    assert len(ours["reward_curve"]) == 2 and all(-1 <= r <= 1 for r in ours["reward_curve"])
    if report["meta"]["trl"] is None:
        assert "TRL is not available" in done.stdout
        pytest.skip("TRL is not installed: only our trainer was benchmarked")
    assert any(line.startswith("trl ") for line in lines), done.stdout
    assert any(line.startswith("ratio ours/TRL: samples/s ") for line in lines), done.stdout
    trl = report["trl"]
    assert trl["steps"] == 2 and trl["samples_per_s"] > 0 and len(trl["reward_curve"]) == 2
    assert report["ratio"]["samples_per_s"] == pytest.approx(ours["samples_per_s"] / trl["samples_per_s"])
    assert trl["tokens_per_step"] <= 4 * 32 and ours["tokens_per_step"] <= 4 * 32  # stopped within the limit


def test_update_benchmark_checks_packed_equals_per_step_and_reports_the_speedup(tmp_path: Path, run_script) -> None:
    out = tmp_path / "update.json"
    done = run_script("benchmarks/bench_grpo_update.py", "--episodes", "8", "--repeats", "1", "--json", str(out))
    report = json.loads(out.read_text())
    assert report["episodes"] == 8 and report["speedup"] > 0
    assert report["sequences_packed"] <= report["sequences_per_step"]
    assert "packed and per-step scoring disagree" not in done.stdout and done.stdout.splitlines()[-1].endswith("x")
