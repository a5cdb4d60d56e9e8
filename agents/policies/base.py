"""The policy protocol: a batch of states in, ``n`` candidate next steps for each out.

A state is an environment observation (the question and the steps so far, see :mod:`reason_gym.core`); a candidate
is one action for ``env.step``: a reasoning step or an ``Answer: ...`` line. Backends (transformers, vLLM, an
OpenAI-compatible server, scripted) differ only in how they produce candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


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
            states: Observation strings.
            n: Candidates per state (duplicates are allowed: planners dedupe).
            temperature: Overrides the policy's sampling temperature; 0 means greedy decoding.
        """
        ...


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
