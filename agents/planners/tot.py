"""Tree-of-Thoughts breadth-first search (Yao et al., 2023), as set up for Game24.

Depth by depth: the policy proposes ``proposals`` next steps for each of the kept states (one batched ``propose``),
the env takes them, rejected steps are dropped and proposals that reach the same state are merged (the task's
canonical state where it has one: ToT's Game-of-24 proposals are deduplicated the same way), a value function scores
every new state, and the ``breadth`` best (ToT's ``b``, 5 in the paper) are kept for the next depth. Final answers
are set aside with their values. The search ends when no state is left to extend or the budget runs out; the answer
is the best-valued final answer.

The value function (ToT prompts the LLM for "sure / likely / impossible"; here the policy is not assumed to judge):
``prm``, the PRM's score of the state's steps; or ``rollout``, the mean ``outcome`` reward of ``value_samples``
policy rollouts from the state (the env's checker as a verifier, see :mod:`agents.planners.base`), all of a
depth's rollouts side by side (one batched ``propose`` per step). With rollout values, outcomes are exact, so the
search stops after a depth where a final answer was right, and returns the best finished trajectory it saw,
rollouts included.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import ClassVar

from agents.budget import Budget
from agents.planners.base import Finished, PlanResult, Search, Transition, resolve_value
from agents.policies.base import Policy
from reason_gym.core import PRM, EpisodeState, ReasoningEnv


@dataclass
class TreeOfThoughts:
    """Breadth-first search keeping the ``breadth`` best states per depth, by a value function."""

    breadth: int = 5
    """States kept per depth (ToT's ``b``)."""
    proposals: int = 4
    """Candidate steps proposed per kept state."""
    value: str = "auto"
    """``prm``, ``rollout``, or ``auto``: ``prm`` with a PRM, else ``rollout``."""
    value_samples: int = 1
    """Rollouts per valued state, with ``value="rollout"`` (ToT samples its value prompt 3 times)."""
    temperature: float | None = None
    """Sampling temperature of proposals and rollouts (``None``: the policy's own)."""
    prm_aggregate: str = "last"
    """How PRM step scores make a value (see :data:`agents.planners.base.PRM_AGGREGATES`)."""

    name: ClassVar[str] = "tot"

    def __post_init__(self) -> None:
        if self.breadth < 1 or self.proposals < 1 or self.value_samples < 1:
            raise ValueError("breadth, proposals and value_samples must be >= 1")

    def solve(self, env: ReasoningEnv, policy: Policy, budget: Budget, prm: PRM | None = None) -> PlanResult:
        """Runs the breadth-first search from the env's current state; returns the best-valued final answer."""
        value = resolve_value(self.value, prm, ("prm", "rollout"))
        search = Search(env, policy, budget, prm, self.prm_aggregate)
        frontier = [search.root]
        answers: list[tuple[float, Finished]] = []
        depth = 0
        while frontier and not budget.exhausted and not (value == "rollout" and search.solved):
            children = self._propose(search, frontier)
            valued: list[tuple[float, EpisodeState]] = []
            for transition, worth in zip(children, self._values(search, children, value), strict=True):
                if worth is None:
                    continue  # the budget ran out before its value was known
                if transition.finished is not None:
                    answers.append((worth, transition.finished))
                else:
                    valued.append((worth, transition.state))
            valued.sort(key=lambda pair: pair[0], reverse=True)  # stable: ties keep proposal order
            frontier = [state for _, state in valued[: self.breadth]]
            depth += 1
        if value == "rollout":  # outcomes are exact: the best finished trajectory, rollouts included
            chosen = search.best_by_outcome()
        else:
            chosen = max(answers, key=lambda pair: pair[0], default=(0.0, None))[1]
        return search.result(self.name, chosen, value=value, depth=depth)

    def _propose(self, search: Search, frontier: list[EpisodeState]) -> list[Transition]:
        """The distinct valid children of the frontier (one ``propose`` call for all of it)."""
        children: dict[Hashable, Transition] = {}
        batch = search.propose(frontier, self.proposals, self.temperature)
        for state, candidates in zip(frontier, batch, strict=False):  # the budget may serve fewer
            for candidate in candidates:
                transition = search.step(state, candidate.text)
                if transition.rejected or (transition.state.done and transition.finished is None):
                    continue  # rejected: nothing changed; truncated: no answer can follow
                children.setdefault(transition.key, transition)
        return list(children.values())

    def _values(self, search: Search, children: list[Transition], value: str) -> list[float | None]:
        """The value of each new state (``None``: the budget ran out before it was known).

        With rollouts, all the children's rollouts run side by side: one batched ``propose`` per step.
        """
        if value == "prm":
            return [search.prm_score(child.state.steps) for child in children]
        open_states = [child.state for child in children if child.finished is None]
        outcomes = iter(search.rollouts([s for s in open_states for _ in range(self.value_samples)], self.temperature))
        values: list[float | None] = []
        for child in children:
            if child.finished is not None:
                values.append(child.finished.outcome)  # a final answer's value is its outcome
                continue
            known = [v for v in (next(outcomes) for _ in range(self.value_samples)) if v is not None]
            values.append(sum(known) / len(known) if known else None)
        return values
