"""The benchmark job: agents against the problems of a split, with a progress bar, a table and files.

For now the agents are the model-free baselines of :mod:`agents.simple`; LLM policies and planners plug in here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
from tqdm import tqdm

import reason_gym  # noqa: F401  (registers the environments)
from agents.simple import Agent, RandomAgent, RolloutAgent, run_episode

AGENTS = {
    "random": lambda seed: RandomAgent(seed),
    "rollout": lambda seed: RolloutAgent(rollouts=32, seed=seed),
}


def make_agent(name: str, seed: int) -> Agent:
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; choose from {sorted(AGENTS)}")
    return AGENTS[name](seed)


def run_bench(
    env_id: str = "reason_gym/Game24-v0",
    split: str = "test",
    agents: Sequence[str] = ("random", "rollout"),
    limit: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Runs every agent on the first ``limit`` problems of ``split``; returns one summary row per agent.

    With ``out``, writes ``episodes.jsonl`` (one line per episode) and ``summary.json`` there.
    """
    agents_made = [make_agent(name, seed) for name in agents]  # fail on a bad name before any work
    env = gym.make(env_id, split=split)
    count = len(env.unwrapped.split_indices(split))
    count = count if limit is None else min(limit, count)
    if count < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    folder = Path(out) if out is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "episodes.jsonl").write_text("")
    rows = []
    for agent in agents_made:
        env.reset(seed=seed)
        started = time.perf_counter()
        episodes = []
        for index in tqdm(range(count), desc=agent.name, disable=not progress, leave=False):
            episode = run_episode(env, agent, {"index": index, "split": split})
            episodes.append(episode)
            if folder is not None:
                with (folder / "episodes.jsonl").open("a") as file:
                    file.write(json.dumps(episode) + "\n")
        correct = sum(e["is_correct"] for e in episodes)
        rows.append(
            {
                "agent": agent.name,
                "env": env_id,
                "split": split,
                "n_problems": count,
                "solved": correct,
                "accuracy": correct / count,
                "mean_reward": sum(e["reward"] for e in episodes) / count,
                "env_steps": sum(len(e["actions"]) for e in episodes) + getattr(agent, "env_steps", 0),
                "wall_s": round(time.perf_counter() - started, 3),
            }
        )
    if folder is not None:
        (folder / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of summary rows."""
    header = f"{'agent':<10} {'solved':>10} {'accuracy':>9} {'mean reward':>12} {'env steps':>10} {'wall s':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        solved = f"{row['solved']}/{row['n_problems']}"
        lines.append(
            f"{row['agent']:<10} {solved:>10} {row['accuracy']:>9.1%} {row['mean_reward']:>12.3f} "
            f"{row['env_steps']:>10} {row['wall_s']:>8.2f}"
        )
    return "\n".join(lines)
