"""Simple agents that need no model: baselines for the benchmark and for tests.

An agent picks the next action for an environment in its current state, using only the public environment API:
``candidate_actions()`` (the task's legal moves), ``clone()`` and ``step()``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from reason_gym.core import ReasoningEnv


class Agent(Protocol):
    """Anything with ``act(env) -> action``; ``env`` is the unwrapped environment, mid-episode."""

    name: str

    def act(self, env: ReasoningEnv) -> str: ...


def legal_actions(env: ReasoningEnv) -> list[str]:
    """The task's legal next actions (its ``candidate_actions()`` without the empty slots)."""
    candidates = getattr(env, "candidate_actions", None)
    if candidates is None:
        raise ValueError(f"{type(env).__name__} has no candidate_actions(): simple agents need a task that lists moves")
    return [action for action in candidates() if action is not None]


class RandomAgent:
    """Picks uniformly among the legal actions."""

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, env: ReasoningEnv) -> str:
        actions = legal_actions(env)
        return actions[int(self.rng.integers(len(actions)))]


class RolloutAgent:
    """Monte-Carlo lookahead: plays ``rollouts`` random continuations on clones and follows the first that wins.

    It uses nothing but the environment's own reward (a verifier), so it measures what search with a perfect
    outcome checker buys over acting at random. Falls back to a random action when no rollout wins.
    """

    name = "rollout"

    def __init__(self, rollouts: int = 8, seed: int | None = None) -> None:
        if rollouts < 1:
            raise ValueError(f"rollouts must be >= 1, got {rollouts}")
        self.rollouts = rollouts
        self.random = RandomAgent(seed)
        self.env_steps = 0

    def act(self, env: ReasoningEnv) -> str:
        for _ in range(self.rollouts):
            twin = env.clone()
            first = action = self.random.act(twin)
            while True:
                _, _, terminated, truncated, info = twin.step(action)
                self.env_steps += 1
                if terminated and info["is_correct"]:
                    return first
                if terminated or truncated:
                    break
                action = self.random.act(twin)
        return self.random.act(env)


def run_episode(env: Any, agent: Agent, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Plays one episode; returns its problem, actions, total reward and whether it ended correct."""
    _, info = env.reset(options=options)
    actions: list[str] = []
    total = 0.0
    while True:
        action = agent.act(env.unwrapped)
        actions.append(action)
        _, reward, terminated, truncated, step_info = env.step(action)
        total += reward
        if terminated or truncated:
            return {
                "problem_id": info["problem_id"],
                "agent": agent.name,
                "is_correct": bool(step_info.get("is_correct", False)),
                "reward": total,
                "actions": actions,
            }
