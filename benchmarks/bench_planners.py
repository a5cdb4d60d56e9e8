"""Planner overhead: the time each planner spends outside the policy, per 1,000 search nodes.

Run it from the repository root (``REASON_GYM_DATA_DIR`` names the folder that holds ``game24/24.csv``)::

    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_planners.py --json planners.json
    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_planners.py --quick   # a few seconds

Every planner plays the first ``--problems`` Game-of-24 test puzzles with a budget of ``--budget`` samples, driven
by :class:`agents.simple.RandomPolicy` (random legal steps; its own time is measured and taken out). A node is one
``env.step`` the planner takes: one candidate step turned into a state, which is the unit every planner's work
grows with. For each planner the figures are, per 1,000 nodes:

- ``outside_policy_ms``: everything but ``policy.propose``: the planner's bookkeeping plus the environment;
- ``env_ms``: of which ``env.step`` (the checker), and ``planner_ms``: the rest, the planner's own overhead (tree
  updates, selection, deduplication, budget accounting, result records).

Clock: this process's CPU time (``time.process_time``), so other processes on a shared machine do not inflate it.
Each figure is the median over ``--repeats`` repeats.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym

import reason_gym  # noqa: F401  (registers the environments)
from agents.bench import PLANNERS, make_planner
from agents.budget import Budget
from agents.policies.base import Candidate
from agents.simple import RandomPolicy


class TimedPolicy:
    """Wraps a policy and adds up the CPU time spent inside ``propose``."""

    takes_episode_states = True  # passed on to RandomPolicy, which reads the structured state

    def __init__(self, policy: RandomPolicy) -> None:
        self.policy, self.seconds = policy, 0.0

    def propose(self, states: Sequence[str], n: int = 1, *, temperature: float | None = None) -> list[list[Candidate]]:
        started = time.process_time()
        try:
            return self.policy.propose(states, n, temperature=temperature)
        finally:
            self.seconds += time.process_time() - started


def timed_step(env: Any) -> Callable[[], float]:
    """Wraps ``env.step`` of this env object to add up its CPU time; returns a reader of the total."""
    step, spent = env.step, [0.0]

    def step_and_time(action: str) -> Any:
        started = time.process_time()
        try:
            return step(action)
        finally:
            spent[0] += time.process_time() - started

    env.step = step_and_time  # an instance attribute: only this env object is affected
    return lambda: spent[0]


def measure(planner_name: str, problems: int, budget: int, seed: int) -> dict[str, float]:
    """One repeat: the planner on ``problems`` puzzles; returns its CPU times and node count."""
    env = gym.make("reason_gym/Game24-v0", split="test").unwrapped
    env_seconds = timed_step(env)
    policy = TimedPolicy(RandomPolicy(seed))
    nodes = 0
    started = time.process_time()
    for index in range(problems):
        env.reset(options={"index": index})
        result = make_planner(planner_name, budget).solve(env, policy, Budget(samples=budget))
        nodes += result.used["env_steps"]
    total = time.process_time() - started
    return {"total_s": total, "policy_s": policy.seconds, "env_s": env_seconds(), "nodes": nodes}


def report(planner_name: str, repeats: list[dict[str, float]]) -> dict[str, Any]:
    """Median per-1,000-node figures over the repeats."""

    def per_thousand(seconds: Callable[[dict[str, float]], float]) -> float:
        return round(statistics.median(1e6 * seconds(r) / r["nodes"] for r in repeats), 3)

    return {
        "planner": planner_name,
        "nodes": int(statistics.median(r["nodes"] for r in repeats)),
        "outside_policy_ms": per_thousand(lambda r: r["total_s"] - r["policy_s"]),
        "env_ms": per_thousand(lambda r: r["env_s"]),
        "planner_ms": per_thousand(lambda r: r["total_s"] - r["policy_s"] - r["env_s"]),
        "policy_ms": per_thousand(lambda r: r["policy_s"]),
    }


@dataclass
class PlannerBenchConfig:
    """Planner overhead: the time each planner spends outside the policy, per 1,000 search nodes."""

    planners: tuple[str, ...] = PLANNERS
    """the planners measured (comma- or space-separated)"""
    problems: int = 20
    """Game-of-24 test puzzles per repeat"""
    budget: int = 512
    """samples per problem"""
    repeats: int = 5
    """repeats; figures are medians"""
    seed: int = 0
    """seeds the random policy (plus the repeat's number)"""
    quick: bool = False
    """5 problems, budget 128, 2 repeats"""
    json: str | None = None
    """also write the figures to this file"""

    def __post_init__(self) -> None:
        if self.quick:
            self.problems, self.budget, self.repeats = 5, 128, 2


def main(argv: Sequence[str] | None = None) -> int:
    from agents.cli import parse

    args = parse(PlannerBenchConfig, argv, "bench_planners.py", description=__doc__.split("\n\n")[0])
    rows = []
    for name in args.planners:
        repeats = [measure(name, args.problems, args.budget, args.seed + r) for r in range(args.repeats)]
        rows.append(report(name, repeats))
    header = f"{'planner':<8} {'nodes':>7} {'outside policy':>15} {'env.step':>9} {'planner':>9} {'(policy)':>9}"
    print(f"CPU ms per 1,000 nodes; budget {args.budget} samples, {args.problems} problems, median of {args.repeats}")
    print(header + "\n" + "-" * len(header))
    for row in rows:
        print(
            f"{row['planner']:<8} {row['nodes']:>7} {row['outside_policy_ms']:>15.1f} {row['env_ms']:>9.1f} "
            f"{row['planner_ms']:>9.1f} {row['policy_ms']:>9.1f}"
        )
    if args.json:
        meta = {"python": platform.python_version(), "machine": platform.machine(), **asdict(args)}
        with open(args.json, "w") as file:
            json.dump({"meta": meta, "rows": rows}, file, indent=2)
    return 0


if __name__ == "__main__":
    from agents.cli import run_script

    raise SystemExit(run_script(main, "bench_planners.py"))
