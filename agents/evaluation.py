"""Greedy top-1 evaluation: play each problem step by step, one greedy step per turn, no search.

Every episode runs in its own environment and all running episodes advance together, one batched ``propose`` call
per turn. A greedy policy that proposes a step the environment rejects would propose it again forever, so such an
episode ends there, unsolved (as it would at the step limit, only sooner).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym

from agents.policies.base import Policy, takes_episode_states
from reason_gym.core import ReasoningEnv


def play_greedy(
    policy: Policy, make_env: Callable[[], gym.Env], options: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Plays one greedy episode per reset ``options``; returns each episode's problem, steps and correctness.

    Args:
        policy: Any policy; it is called with ``n=1, temperature=0``, on state snapshots where it takes them (and
            the environment is a :class:`~reason_gym.core.ReasoningEnv`), else on observation strings.
        make_env: Makes a fresh environment (one per episode, so episodes are independent).
        options: ``reset`` options, one per episode, e.g. ``{"index": 3, "split": "test"}``.
    """
    envs = [make_env() for _ in options]
    states = [env.reset(options=dict(option))[0] for env, option in zip(envs, options, strict=True)]
    results: list[dict[str, Any]] = [
        {"problem_id": _problem_id(env), "is_correct": False, "actions": [], "end": "running"} for env in envs
    ]
    running = list(range(len(envs)))
    snapshots = takes_episode_states(policy) and all(isinstance(e.unwrapped, ReasoningEnv) for e in envs)
    while running:
        inputs = [envs[i].unwrapped.get_state() if snapshots else states[i] for i in running]
        proposals = policy.propose(inputs, n=1, temperature=0.0)
        still = []
        for i, candidates in zip(running, proposals, strict=True):
            action = candidates[0].text
            results[i]["actions"].append(action)
            states[i], _, terminated, truncated, info = envs[i].step(action)
            if terminated:
                results[i].update(is_correct=bool(info["is_correct"]), end="answer")
            elif truncated:
                results[i]["end"] = "step limit"
            elif "error" in info:
                results[i]["end"] = f"rejected: {info['error']}"
            else:
                still.append(i)
        running = still
    return results


def _problem_id(env: gym.Env) -> str | None:
    """The problem's id where the environment reports one (a reasoning environment's ``get_state()``)."""
    return env.unwrapped.get_state().problem_id if isinstance(env.unwrapped, ReasoningEnv) else None
