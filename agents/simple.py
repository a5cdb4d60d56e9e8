"""Simple agents and policies that need no model: baselines for the benchmark and for tests.

An agent picks the next action for an environment in its current state, using only the public environment API:
``candidate_actions()`` (the task's legal moves), ``clone()`` and ``step()``. :class:`RandomPolicy` is the same idea
behind the :class:`~agents.policies.base.Policy` protocol, so planners can run without a language model.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from agents.policies.base import Candidate
from reason_gym.core import EpisodeState, ReasoningEnv


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


_GAME24_QUESTION = re.compile(r"Game of 24: [^\n]* reach (-?\d+)\.\nInput: ([\d ]+)")


class RandomPolicy:
    """A :class:`~agents.policies.base.Policy` proposing uniformly random legal Game-of-24 steps.

    The model-free baseline of the planners (``reason-gym bench --policy random``) and the policy of their tests.
    It rebuilds each state from its observation on a scratch env (it reads the puzzle from the question's
    ``Input:`` line and the target from "reach N", then replays the steps, remembering every state it has seen)
    and samples among ``candidate_actions()``. With one number left the only legal action is the answer the steps
    spell out, so every trajectory ends in a well-formed answer.

    Candidates carry costs shaped like a character-level model's: ``num_tokens`` is the step's length plus one
    (its newline) and ``logprob`` the log-probability of a uniform draw, ``-log(number of legal steps)``. At
    temperature 0 every candidate is the first legal step (greedy decoding of a uniform policy breaks ties by
    order).

    Args:
        seed: Seed of the sampling; :meth:`seed` re-seeds.
        latency: Seconds each ``propose`` call sleeps, to rehearse timing and interruptions without a model.
        env_id: The Game-of-24 env to replay states on.
    """

    def __init__(self, seed: int | None = None, latency: float = 0.0, env_id: str = "reason_gym/Game24-v0") -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency}")
        self.rng = np.random.default_rng(seed)
        self.latency = latency
        self.env_id = env_id
        self._envs: dict[int, ReasoningEnv] = {}  # scratch envs by puzzle size (candidate slots depend on it)
        self._states: dict[str, tuple[EpisodeState, list[str]]] = {}

    def seed(self, seed: int) -> None:
        """Restarts the sampling from ``seed``."""
        self.rng = np.random.default_rng(seed)

    def propose(self, states: Sequence[str], n: int = 1, *, temperature: float | None = None) -> list[list[Candidate]]:
        """``n`` random legal steps for each state (the first legal step ``n`` times at temperature 0)."""
        if self.latency:
            time.sleep(self.latency)
        batch = []
        for observation in states:
            legal = self.legal_steps(observation)
            picks = [0] * n if temperature == 0 else self.rng.integers(len(legal), size=n)
            logprob = -math.log(len(legal))
            batch.append([Candidate(legal[i], len(legal[i]) + 1, logprob) for i in picks])
        return batch

    def legal_steps(self, observation: str) -> list[str]:
        """The legal next steps in the state an observation shows."""
        return self._state(observation)[1]

    def _state(self, observation: str) -> tuple[EpisodeState, list[str]]:
        known = self._states.get(observation)
        if known is not None:
            return known
        question = _GAME24_QUESTION.match(observation)
        if question is None:
            raise ValueError("RandomPolicy plays the Game of 24 only: no 'Input:' line in the observation")
        numbers = [int(x) for x in question.group(2).split()]
        env = self._envs.get(len(numbers))
        if env is None:
            env = gym.make(self.env_id, source="procedural", num_numbers=len(numbers)).unwrapped
            self._envs[len(numbers)] = env
        if len(observation) == question.end():
            env.reset(options={"problem": {"numbers": numbers, "target": int(question.group(1))}})
        else:
            parent, step = observation.rsplit("\n", 1)
            env.set_state(self._state(parent)[0])
            _, _, _, _, info = env.step(step)
            if "error" in info:
                raise ValueError(f"RandomPolicy cannot replay the step {step!r}: {info['error']}")
        state = env.get_state()
        legal = legal_actions(env) if not state.done else []
        if len(self._states) >= 200_000:  # a bound on memory in long runs; states are cheap to rebuild
            self._states.clear()
        self._states[observation] = (state, legal)
        return state, legal
