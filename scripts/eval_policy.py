"""Greedy top-1 accuracy of a policy: play each problem step by step, one greedy step per turn, no search.

    python scripts/eval_policy.py                                  # the shipped tiny model, Game24 + Arithmetic test
    python scripts/eval_policy.py --policy hf:path/to/model --task game24 --limit 20

The episodes are played by :func:`agents.evaluation.play_greedy`. For Game24 it also says how far the greedy line
stays on a path to 24 (the share of episodes whose first 1, 2, 3 steps leave a solvable position, replayed through
the env's exact ``step_solvable`` check), and ``--by-difficulty`` splits top-1 by ToT row band (rows are ordered by
human solve time, so a band is a difficulty level): where a trained model gains on its training puzzles, the band
next to the test rows says whether the gain is one of difficulty or of having seen the puzzles.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agents.cli import parse, run_script
from agents.evaluation import play_greedy
from agents.policies import Policy, make_policy
from reason_gym.core import ReasoningEnv
from reason_gym.envs.arithmetic import ArithmeticEnv
from reason_gym.envs.game24 import Game24Env

TASKS: dict[str, tuple[Callable[[], ReasoningEnv], str]] = {
    "game24": (lambda: Game24Env(split="test"), "Game24 {split} (ToT rows 900-999 are test)"),
    "arithmetic": (lambda: ArithmeticEnv(split="test"), "Arithmetic-v0 {split} (defaults: mixed, 3 operations)"),
}


# ToT row bands (rows are ordered by human solve time); 900-999 is the test split.
DIFFICULTY_BANDS = ((0, 300), (300, 600), (600, 900), (900, 1000), (1000, 1200), (1200, 1362))


def evaluate(policy: Policy, task: str, limit: int = 100, split: str = "test") -> dict[str, Any]:
    """Greedy top-1 on the first ``limit`` problems of a task's split; returns a summary and the episodes.

    Game24 episodes also get their ToT ``row`` and ``solvable_steps`` (see :func:`solvable_steps`)."""
    make_env, _ = TASKS[task]
    # Game24's test split has 100 puzzles; Arithmetic's index sequences have no end.
    count = min(limit, len(make_env().split_indices(split))) if task == "game24" else limit  # type: ignore[attr-defined]
    started = time.perf_counter()
    episodes = play_greedy(policy, make_env, [{"index": i, "split": split} for i in range(count)])
    if task == "game24":
        replay = solvable_step_checker(split)
        rows = replay.split_indices(split)
        for index, episode in enumerate(episodes):
            episode.update(row=rows[index], solvable_steps=solvable_steps(replay, episode["actions"], index))
    solved = sum(e["is_correct"] for e in episodes)
    return {
        "task": task,
        "split": split,
        "problems": count,
        "solved": solved,
        "accuracy": solved / count,
        "wall_s": round(time.perf_counter() - started, 2),
        "episodes": episodes,
    }


def solvable_step_checker(split: str) -> Game24Env:
    """A Game24 env of ``split`` that computes ``step_solvable``, to replay episodes through."""
    return Game24Env(split=split, reward_weights={"step_solvable": 1.0})


def solvable_steps(env: Game24Env, actions: Sequence[str], index: int) -> int:
    """How many of an episode's first steps were accepted and left a position from which 24 can still be reached,
    replayed in ``env`` (a :func:`solvable_step_checker`) from puzzle ``index`` of its split."""
    env.reset(options={"index": index})
    for depth, action in enumerate(actions):
        _, _, terminated, _, info = env.step(action)
        if terminated or "error" in info or not info["reward_components"]["step_solvable"]:
            return depth
    return len(actions)


def game24_report(summary: dict[str, Any], by_difficulty: bool) -> list[str]:
    """Lines on how far the greedy lines stay solvable and, optionally, top-1 by difficulty band."""
    episodes = summary["episodes"]
    shares = [sum(e["solvable_steps"] >= k for e in episodes) / len(episodes) for k in (1, 2, 3)]
    lines = ["  still solvable after step 1 / 2 / 3: " + " / ".join(f"{share:.0%}" for share in shares)]
    if by_difficulty and not Game24Env().tot_order:
        lines.append("  (no ToT file: puzzles are in solver order, so rows are not difficulty bands)")
    elif by_difficulty:
        for low, high in DIFFICULTY_BANDS:
            band = [e for e in episodes if low <= e["row"] < high]
            if band:
                solved = sum(e["is_correct"] for e in band)
                lines.append(f"  rows {low}-{high - 1}: {solved}/{len(band)} ({solved / len(band):.1%})")
    return lines


@dataclass
class EvalConfig:
    """Greedy top-1 accuracy of a policy on Game24 and Arithmetic test problems."""

    policy: str = "tiny"
    """a make_policy spec: tiny, hf:PATH, vllm:PATH, openai:URL[#MODEL]"""
    task: Literal["game24", "arithmetic", "all"] = "all"
    """the task played (all: both)"""
    split: str = "test"
    """the split whose first problems are played"""
    limit: int = 100
    """problems per task"""
    out: str | None = None
    """write the episodes to this JSON file"""
    by_difficulty: bool = False
    """Game24: top-1 per band of ToT rows"""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(EvalConfig, argv, "eval_policy.py", description=__doc__.split("\n\n")[0])
    policy = make_policy(args.policy)
    summaries = []
    for task in TASKS if args.task == "all" else [args.task]:
        summary = evaluate(policy, task, args.limit, args.split)
        summaries.append(summary)
        name = TASKS[task][1].format(split=args.split)
        print(f"{name}: {summary['solved']}/{summary['problems']} solved greedily ({summary['wall_s']} s)")
        if task == "game24" and summary["problems"]:
            print("\n".join(game24_report(summary, args.by_difficulty)))
    if args.out:
        with open(args.out, "w") as file:
            json.dump(summaries, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, "eval_policy.py"))
