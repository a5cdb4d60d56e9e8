"""A policy that needs no model: random legal steps, the baseline of the benchmark and the policy of tests.

:class:`RandomPolicy` picks among a task's legal moves (``candidate_actions()``, part of the public environment
API) behind the :class:`~agents.policies.base.Policy` protocol, so planners can run without a language model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.policies.base import Candidate
from reason_gym.core import EpisodeState, ReasoningEnv, scratch_env, task_env_class


def legal_actions(env: ReasoningEnv) -> list[str]:
    """The task's legal next actions (its ``candidate_actions()`` without the empty slots)."""
    candidates = env.candidate_actions()
    if candidates is None:
        raise ValueError(f"{type(env).__name__} lists no candidate_actions(): RandomPolicy needs a task that does")
    return [action for action in candidates if action is not None]


class RandomPolicy:
    """A :class:`~agents.policies.base.Policy` proposing uniformly random legal steps of a task that lists them.

    The model-free baseline of the planners (``reason-gym bench --policy random``) and the policy of their tests.
    It takes state snapshots (``takes_episode_states``; planners hand it :class:`~reason_gym.core.EpisodeState`s),
    sets a scratch env of the state's task to each state (built from the state's
    :class:`~reason_gym.core.TaskSpec`, see :func:`~reason_gym.core.scratch_env`) and samples among its
    ``candidate_actions()``; it never reads the question text. In Game24, with one number left the only
    legal action is the answer the steps spell out, so every trajectory ends in a well-formed answer.

    Candidates carry costs shaped like a character-level model's: ``num_tokens`` is the step's length plus one
    (its newline) and ``logprob`` the log-probability of a uniform draw, ``-log(number of legal steps)``. At
    temperature 0 every candidate is the first legal step (greedy decoding of a uniform policy breaks ties by
    order).

    Args:
        seed: Seed of the sampling; :meth:`seed` re-seeds.
        latency: Seconds each ``propose`` call sleeps, to rehearse timing and interruptions without a model.
    """

    takes_episode_states = True

    def __init__(self, seed: int | None = None, latency: float = 0.0) -> None:
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency}")
        self.rng = np.random.default_rng(seed)
        self.latency = latency
        self._envs: dict[tuple[Any, ...], ReasoningEnv] = {}  # scratch envs by task and shape of problem
        self._legal: dict[tuple[str, str], list[str]] = {}

    def seed(self, seed: int) -> None:
        """Restarts the sampling from ``seed``."""
        self.rng = np.random.default_rng(seed)

    def propose(
        self, states: Sequence[EpisodeState], n: int = 1, *, temperature: float | None = None
    ) -> list[list[Candidate]]:
        """``n`` random legal steps for each state (the first legal step ``n`` times at temperature 0)."""
        if self.latency:
            time.sleep(self.latency)
        batch = []
        for state in states:
            legal = self.legal_steps(state)
            if not legal:
                raise ValueError(f"RandomPolicy has no legal step in this state (done={state.done})")
            picks = [0] * n if temperature == 0 else self.rng.integers(len(legal), size=n)
            logprob = -math.log(len(legal))
            batch.append([Candidate(legal[i], len(legal[i]) + 1, logprob) for i in picks])
        return batch

    def legal_steps(self, state: EpisodeState) -> list[str]:
        """The legal next steps in a state (none once it is done).

        Raises:
            ValueError: ``state`` is an observation string rather than a snapshot, or its task declares no spec.
        """
        if not isinstance(state, EpisodeState):
            raise ValueError(
                "RandomPolicy reads the structured state: give it EpisodeStates (planners do, see "
                "agents.policies.base.policy_inputs), not observation strings"
            )
        if state.spec is None:
            raise ValueError("RandomPolicy needs a state that carries its task's spec (get_state() of a reasoning env)")
        key = (state.problem_id, state.observation)
        legal = self._legal.get(key)
        if legal is None:
            legal = [] if state.done else legal_actions(self._env(state))
            if len(self._legal) >= 200_000:  # a bound on memory in long runs; legal steps are cheap to recompute
                self._legal.clear()
            self._legal[key] = legal
        return legal

    def _env(self, state: EpisodeState) -> ReasoningEnv:
        """A scratch env of the state's task, set to the state."""
        spec = state.spec
        kwargs = task_env_class(spec).scratch_kwargs(state.problem)  # type: ignore[arg-type]
        key = (spec, *sorted(kwargs.items()))
        env = self._envs.get(key)
        if env is None:
            env = self._envs[key] = scratch_env(spec, state.problem)  # type: ignore[arg-type]
        env.set_state(state)
        return env
