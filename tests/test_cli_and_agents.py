"""The reason-gym CLI in subprocesses, and the model-free baseline agents."""

import json
import os
import re
import subprocess
import sys

import gymnasium as gym
import pytest

import reason_gym  # noqa: F401
from agents.bench import run_bench
from agents.simple import RandomAgent, RolloutAgent, run_episode


def reason_gym_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reason_gym.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_list_names_every_environment_with_a_description():
    result = reason_gym_cli("list")
    assert result.returncode == 0
    assert re.search(r"^reason_gym/Game24-v0 +Combine numbers", result.stdout, re.M)


def test_play_a_game_from_standard_input():
    moves = "13 - 9 = 4\n4 * 5 = 20\n10 - 4 = 6 (left: 4 6)\n4 * 6 = 24\nAnswer: (13 - 9) * (10 - 4)\n"
    result = reason_gym_cli("play", "reason_gym/Game24-v0", "--split", "test", "--index", "99", stdin=moves)
    assert result.returncode == 0, result.stderr
    assert "Input: 4 9 10 13" in result.stdout
    assert "rejected: b = 5 is not available" in result.stdout
    assert "13 - 9 = 4 (left: 4 4 10)" in result.stdout
    assert result.stdout.rstrip().endswith("-- episode over: correct")


def test_play_quits_on_end_of_input_and_rejects_unknown_envs():
    assert reason_gym_cli("play", "reason_gym/Game24-v0", "--seed", "1").stdout.rstrip().endswith("bye")
    result = reason_gym_cli("play", "reason_gym/Chess-v0")
    assert result.returncode == 2 and "reason-gym list" in result.stderr


def test_bench_writes_episodes_and_a_summary(tmp_path):
    result = reason_gym_cli("bench", "--limit", "3", "--out", str(tmp_path), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "random" in result.stdout and "rollout" in result.stdout
    episodes = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(episodes) == 6 and {row["agent"] for row in summary} == {"random", "rollout"}
    for row in summary:
        solved = sum(e["is_correct"] for e in episodes if e["agent"] == row["agent"])
        assert row["solved"] == solved and row["n_problems"] == 3 and row["accuracy"] == solved / 3


def test_bench_rejects_an_unknown_agent():
    result = reason_gym_cli("bench", "--agents", "random,oracle", "--limit", "1")
    assert result.returncode == 2 and "unknown agent 'oracle'" in result.stderr


def test_the_random_agent_only_plays_legal_moves():
    env = gym.make("reason_gym/Game24-v0")
    agent = RandomAgent(seed=0)
    for index in range(20):
        episode = run_episode(env, agent, {"index": index})
        assert len(episode["actions"]) == 4  # three legal steps, then the answer the steps spell out
        assert episode["actions"][-1].startswith("Answer:")


def test_rollouts_find_a_solution_that_random_play_rarely_finds():
    env = gym.make("reason_gym/Game24-v0")
    problem = {"problem": {"numbers": [1, 1, 4, 6]}}  # one of very few orders of play reaches 24
    assert run_episode(env, RolloutAgent(rollouts=200, seed=0), problem)["is_correct"]
    random_wins = sum(run_episode(env, RandomAgent(seed=s), problem)["is_correct"] for s in range(50))
    assert random_wins < 25


def test_run_bench_is_reproducible_under_a_seed():
    first = run_bench(limit=5, seed=3, progress=False)
    again = run_bench(limit=5, seed=3, progress=False)
    assert [row["solved"] for row in first] == [row["solved"] for row in again]
    with pytest.raises(ValueError, match="limit must be >= 1"):
        run_bench(limit=0, progress=False)
