"""The policy protocol: a batch of states in, ``n`` candidate next steps for each out.

A state is an environment observation (the question and the steps so far, see :mod:`reason_gym.core`); a candidate
is one action for ``env.step``: a reasoning step or an ``Answer: ...`` line. Backends (transformers, vLLM, an
OpenAI-compatible server, scripted) differ only in how they produce candidates.

A policy that sets ``takes_episode_states = True`` is given :class:`~reason_gym.core.EpisodeState` snapshots
instead of strings by the planners (see :func:`policy_inputs`): they carry the task's
:class:`~reason_gym.core.TaskSpec` (for the system prompt and formats) and the structured problem (a scripted
policy reads the puzzle from it), so no policy has to recognise a task from its question text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from reason_gym.core import EpisodeState


@dataclass(frozen=True)
class Candidate:
    """One proposed next step.

    Attributes:
        text: The action, without the trailing step separator.
        num_tokens: Tokens the backend generated for it (0 for scripted policies).
        logprob: The sum of its tokens' log-probabilities under the sampling distribution, where the backend
            reports them; ``None`` otherwise.
        token_ids: The generated token ids (the stop token included), where the backend has them (in-process
            backends do); trainers recompute log-probabilities from them. ``None`` otherwise.
    """

    text: str
    num_tokens: int = 0
    logprob: float | None = None
    token_ids: tuple[int, ...] | None = None


@runtime_checkable
class Policy(Protocol):
    """Proposes next steps for a batch of states."""

    def propose(self, states: Sequence[str], n: int = 1, *, temperature: float | None = None) -> list[list[Candidate]]:
        """Returns ``n`` sampled candidates for each state, in the order of ``states``.

        Args:
            states: Observation strings, or :class:`~reason_gym.core.EpisodeState` snapshots for a policy that
                sets ``takes_episode_states = True``.
            n: Candidates per state (duplicates are allowed: planners dedupe).
            temperature: Overrides the policy's sampling temperature; 0 means greedy decoding.
        """
        ...


def takes_episode_states(policy: Any) -> bool:
    """Whether a policy reads :class:`~reason_gym.core.EpisodeState` snapshots (``takes_episode_states = True``)."""
    return bool(getattr(policy, "takes_episode_states", False))


def policy_inputs(policy: Any, states: Sequence[EpisodeState]) -> list[str] | list[EpisodeState]:
    """What to hand ``policy.propose`` for these states: the snapshots themselves for a policy that takes them, else
    their observation strings."""
    return list(states) if takes_episode_states(policy) else [state.observation for state in states]


class ScriptedPolicy:
    """A policy that answers from a table: for tests and demos.

    ``script`` maps a state to its candidate steps (or a function of the state does); a state not in the table gets
    ``default``. Candidates are returned in order and repeated to fill ``n``.
    """

    def __init__(
        self,
        script: Mapping[str, Sequence[str]] | Callable[[str], Sequence[str]],
        default: Sequence[str] = ("Answer: I don't know",),
    ) -> None:
        self.script = script
        self.default = list(default)
        self.calls = 0

    def _steps(self, state: str) -> list[str]:
        if callable(self.script):
            return list(self.script(state)) or self.default
        return list(self.script.get(state, self.default)) or self.default

    def propose(self, states: Sequence[str], n: int = 1, *, temperature: float | None = None) -> list[list[Candidate]]:
        self.calls += 1
        out = []
        for state in states:
            steps = self._steps(state)
            out.append([Candidate(steps[i % len(steps)]) for i in range(n)])
        return out
