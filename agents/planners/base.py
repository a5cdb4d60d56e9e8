"""What every planner shares: the search context that charges the budget, finished trajectories, the result record.

Planners act on an environment only through its public contract (``reset`` happens before them; they use ``step``,
``get_state`` / ``set_state`` and the optional hooks below), and on a policy only through ``propose``. They never
read a task's private code, and they never look at ``info["is_correct"]`` to choose: the verdict of the chosen
trajectory is reported, and the verdicts of all finished trajectories give ``pass@k``. The one exception is
explicit: ``value="rollout"`` values states by the environment's ``outcome`` reward at the end of policy rollouts,
i.e. it uses the task's checker as a verifier. That is fair where checking needs no hidden answer (Game24:
does the expression use the numbers and equal 24?) and an oracle elsewhere (GSM8K's gold number); results say which
value was used.

Capabilities of every :class:`~reason_gym.core.ReasoningEnv`, called directly (their defaults say "nothing to
share", so a task that does not override them still works):

- ``env.canonical_state() -> Hashable | None``: equal for states with the same future (Game24: the sorted
  numbers left and the target). Search merges such states (transpositions); ``None`` means no merging, and states
  are then told apart by their observation.
- ``env.answer_key(answer: str) -> Hashable | None``: what a final answer claims (its exact value, a normalised
  expression), equal for equivalent answers; majority votes group by it (see :mod:`agents.planners.best_of_n`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from agents.budget import Budget
from agents.policies.base import Candidate, Policy, policy_inputs
from reason_gym.core import ANSWER_PREFIX, PRM, EpisodeState, ReasoningEnv, prm_scores

PRM_AGGREGATES = ("last", "min", "prod")
"""How a PRM's per-step scores become one score of a prefix: the newest step's (the PRM as a value function, as in
most step-level search), the weakest step's, or their product."""


@dataclass(frozen=True)
class Finished:
    """A complete trajectory: a sequence of accepted steps ended by a final answer.

    Attributes:
        steps: The steps as the env recorded them, the last one the ``Answer: ...`` line.
        is_correct: The env's verdict at termination (reported, never used to choose).
        outcome: The env's ``outcome`` reward component at termination (used only by ``value="rollout"``).
    """

    steps: tuple[str, ...]
    is_correct: bool
    outcome: float

    @property
    def answer(self) -> str:
        """The final answer, without the ``Answer:`` prefix."""
        return self.steps[-1].strip()[len(ANSWER_PREFIX) :].strip()


@dataclass
class PlanResult:
    """What a planner returns for one problem.

    Attributes:
        planner: The planner's name.
        answer: The chosen final answer (without ``Answer:``), or ``None`` when the budget ran out first.
        is_correct: The env's verdict on the chosen trajectory (``False`` without an answer).
        trajectory: The chosen trajectory's steps, ending with the answer line.
        pass_at_k: 1.0 if any of the ``k`` finished trajectories the search produced is correct, else 0.0; ``None``
            when it produced none. For best-of-N it is pass@N; for search planners it separates "never found a
            right answer" from "found one and chose another".
        k: How many distinct finished trajectories the search produced.
        used: The budget spent, by counter (see :mod:`agents.budget`).
        details: Planner-specific facts (selection rule results, tree sizes, ...), JSON-serialisable.
    """

    planner: str
    answer: str | None
    is_correct: bool
    trajectory: list[str]
    pass_at_k: float | None
    k: int
    used: dict[str, int]
    details: dict[str, Any] = field(default_factory=dict)


class Transition(NamedTuple):
    """One ``env.step`` taken by the search.

    Attributes:
        state: The state after the step.
        key: Equal for states the search may merge (see :meth:`Search.state_key`).
        terminated: The step was a final answer.
        rejected: The env rejected the step (state unchanged but for the step count).
        finished: The finished trajectory when ``terminated``, else ``None``.
    """

    state: EpisodeState
    key: Hashable
    terminated: bool
    rejected: bool
    finished: Finished | None


class Search:
    """The context of one planner run: the env, the policy, the PRM and the budget they are charged to.

    Every policy call, PRM call and env step of every planner goes through here, so the budget counts them the
    same way for all. Every finished trajectory reached (including in rollouts) is remembered in :attr:`finished`.

    Args:
        env: The environment, already ``reset`` on the problem; the search starts from its current state and moves
            it around with ``set_state``.
        policy: Proposes next steps.
        budget: Charged for everything; planners stop when it is exhausted.
        prm: A process reward model, or ``None``: a :class:`~reason_gym.core.StatePRM` is given the state (the
            task's spec, the problem record and the steps), a plain ``prm(question, steps)`` the question text.
        prm_aggregate: How PRM step scores become one score (see :data:`PRM_AGGREGATES`).
    """

    def __init__(
        self,
        env: ReasoningEnv,
        policy: Policy,
        budget: Budget,
        prm: PRM | None = None,
        prm_aggregate: str = "last",
    ) -> None:
        if prm_aggregate not in PRM_AGGREGATES:
            raise ValueError(f"prm_aggregate must be one of {PRM_AGGREGATES}, got {prm_aggregate!r}")
        self.env = env
        self.policy = policy
        self.budget = budget
        self.prm = prm
        self.prm_aggregate = prm_aggregate
        self.root = env.get_state()
        self.finished: dict[tuple[str, ...], Finished] = {}
        self.solved = False
        """Whether a finished trajectory has outcome 1: planners that value by outcome can find nothing better."""

    # ------------------------------------------------------------------ the policy

    def propose(
        self, states: Sequence[EpisodeState], n: int, temperature: float | None = None
    ) -> list[list[Candidate]]:
        """``n`` candidates for each state, for as many leading states as the budget affords.

        Returns one list per state served, in order: fewer lists than states when the budget runs short (the last
        one may then hold fewer than ``n``), and none when it is exhausted.
        """
        affordable = self.budget.affordable(len(states) * n)
        if affordable <= 0 or not states:
            return []
        served = states[: max(1, affordable // n)]
        per_state = min(n, affordable)
        batch = self.policy.propose(policy_inputs(self.policy, served), per_state, temperature=temperature)
        if len(batch) != len(served) or any(len(candidates) != per_state for candidates in batch):
            raise ValueError(f"the policy returned {[len(c) for c in batch]} candidates for {len(served)}x{per_state}")
        self.budget.charge_samples(len(served) * per_state, sum(c.num_tokens for cs in batch for c in cs))
        return batch

    # ------------------------------------------------------------------ the environment

    def step(self, state: EpisodeState, action: str) -> Transition:
        """Takes ``action`` in ``state`` (charged as one env step) and reports the new state."""
        self.env.set_state(state)
        _, _, terminated, _, info = self.env.step(action)
        self.budget.charge_env_steps()
        new = self.env.get_state()
        finished = None
        if terminated:
            outcome = float(info["reward_components"].get("outcome", 0.0))
            finished = Finished(new.steps, bool(info.get("is_correct", False)), outcome)
            self.finished.setdefault(new.steps, finished)
            self.solved = self.solved or outcome >= 1.0
        rejected = not terminated and "error" in info
        return Transition(new, self._key_here(), terminated, rejected, finished)

    def state_key(self, state: EpisodeState) -> Hashable:
        """A key equal for states the search treats as one: the task's canonical state where it defines one (and
        the episode goes on), else the observation (the question and steps: identical text, identical state)."""
        self.env.set_state(state)
        return self._key_here()

    def _key_here(self) -> Hashable:
        """:meth:`state_key` of the env's current state."""
        state = self.env.get_state()
        if not state.done:
            canonical = self.env.canonical_state()
            if canonical is not None:
                return ("canonical", canonical)
        return ("observation", state.observation)

    def rollouts(self, states: Sequence[EpisodeState], temperature: float | None = None) -> list[float | None]:
        """Plays the policy from each state to the end, side by side (one batched ``propose`` per step for all the
        unfinished ones); returns the env's ``outcome`` reward at each end.

        A truncated episode is worth 0.0; ``None`` marks a rollout the budget could not finish.
        """
        values: list[float | None] = [None] * len(states)
        running = [(i, state) for i, state in enumerate(states) if not state.done]
        for i, state in enumerate(states):
            if state.done:
                values[i] = 0.0
        while running:
            batch = self.propose([state for _, state in running], 1, temperature)
            following = []
            for (i, state), candidates in zip(running, batch, strict=False):  # unserved rollouts stay None
                transition = self.step(state, candidates[0].text)
                if transition.finished is not None:
                    values[i] = transition.finished.outcome
                elif transition.state.done:
                    values[i] = 0.0  # truncated
                else:
                    following.append((i, transition.state))
            running = following if batch else []
        return values

    def best_by_outcome(self) -> Finished | None:
        """The finished trajectory with the best outcome (the first reached among equals), for planners that value
        by outcome (``value="rollout"``), whose every finished trajectory's outcome is known exactly."""
        return max(self.finished.values(), key=lambda f: f.outcome, default=None)

    # ------------------------------------------------------------------ the PRM

    def prm_score(self, steps: Sequence[str]) -> float:
        """The PRM's score of a solution prefix of the root's problem (one PRM call), aggregated by
        ``prm_aggregate``. The PRM is given the root state with these steps (see :func:`reason_gym.core.prm_scores`).
        """
        if self.prm is None:
            raise ValueError("this planner is set to score with a PRM, but none was given (pass prm=...)")
        if not steps:
            return 0.0  # nothing to score; only the root has no steps
        scores = prm_scores(self.prm, self.root._replace(steps=tuple(steps)))
        self.budget.charge_prm()
        if self.prm_aggregate == "last":
            return scores[-1]
        return min(scores) if self.prm_aggregate == "min" else math.prod(scores)

    # ------------------------------------------------------------------ the result

    def result(self, planner: str, chosen: Finished | None, **details: Any) -> PlanResult:
        """The result record for ``chosen`` (``None``: no answer), with ``pass@k`` over every finished trajectory."""
        finished = list(self.finished.values())
        return PlanResult(
            planner=planner,
            answer=chosen.answer if chosen else None,
            is_correct=chosen.is_correct if chosen else False,
            trajectory=list(chosen.steps) if chosen else [],
            pass_at_k=float(any(f.is_correct for f in finished)) if finished else None,
            k=len(finished),
            used=self.budget.used(),
            details=details,
        )


def resolve_value(value: str, prm: PRM | None, allowed: Sequence[str]) -> str:
    """Resolves a planner's ``value`` setting: ``"auto"`` means ``"prm"`` when a PRM is given, else ``allowed[-1]``.

    Raises:
        ValueError: For an unknown setting, or ``"prm"`` without a PRM.
    """
    if value == "auto":
        return "prm" if prm is not None else allowed[-1]
    if value not in allowed:
        raise ValueError(f"value must be 'auto' or one of {tuple(allowed)}, got {value!r}")
    if value == "prm" and prm is None:
        raise ValueError("value='prm' needs a process reward model: pass prm=..., or choose another value")
    return value


class Planner(Protocol):
    """Anything that solves the problem an env was reset on, within a budget."""

    name: str

    def solve(self, env: ReasoningEnv, policy: Policy, budget: Budget, prm: PRM | None = None) -> PlanResult:
        """Plans from the env's current state; returns the chosen answer and what was spent."""
        ...
