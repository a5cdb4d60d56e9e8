"""Greedy top-1 accuracy of a policy: play each problem step by step, one greedy step per turn, no search.

    python scripts/eval_policy.py                                  # the shipped tiny model, Game24 + Arithmetic test
    python scripts/eval_policy.py --policy hf:path/to/model --task game24 --limit 20

The episodes are played by :func:`agents.evaluation.play_greedy`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from agents.evaluation import play_greedy
from agents.policies import Policy, make_policy
from reason_gym.core import ReasoningEnv
from reason_gym.envs.arithmetic import ArithmeticEnv
from reason_gym.envs.game24 import Game24Env

TASKS: dict[str, tuple[Callable[[], ReasoningEnv], str]] = {
    "game24": (lambda: Game24Env(split="test"), "Game24 {split} (ToT rows 900-999 are test)"),
    "arithmetic": (lambda: ArithmeticEnv(split="test"), "Arithmetic-v0 {split} (defaults: mixed, 3 operations)"),
}


def evaluate(policy: Policy, task: str, limit: int = 100, split: str = "test") -> dict[str, Any]:
    """Greedy top-1 on the first ``limit`` problems of a task's split; returns a summary and the episodes."""
    make_env, _ = TASKS[task]
    # Game24's test split has 100 puzzles; Arithmetic's index sequences have no end.
    count = min(limit, len(make_env().split_indices(split))) if task == "game24" else limit  # type: ignore[attr-defined]
    started = time.perf_counter()
    episodes = play_greedy(policy, make_env, [{"index": i, "split": split} for i in range(count)])
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="tiny", help="a make_policy spec: tiny, hf:PATH, vllm:PATH, openai:URL")
    parser.add_argument("--task", choices=[*TASKS, "all"], default="all")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=100, help="problems per task")
    parser.add_argument("--out", help="write the episodes to this JSON file")
    args = parser.parse_args(argv)
    policy = make_policy(args.policy)
    summaries = []
    for task in TASKS if args.task == "all" else [args.task]:
        summary = evaluate(policy, task, args.limit, args.split)
        summaries.append(summary)
        name = TASKS[task][1].format(split=args.split)
        print(f"{name}: {summary['solved']}/{summary['problems']} solved greedily ({summary['wall_s']} s)")
    if args.out:
        with open(args.out, "w") as file:
            json.dump(summaries, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
