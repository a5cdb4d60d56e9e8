"""Best-of-N: sample N full solutions independently, then pick one by majority vote or by a PRM.

Solutions are sampled in lockstep (one batched ``propose`` per step across all unfinished solutions). With ``n``
unset, the planner keeps sampling waves of solutions until the budget's ``samples`` limit is used up: the first
wave assumes the longest solutions (the step limit), later waves use the mean length seen so far, and solutions
the budget cannot finish are dropped.

Selection rules:

- ``majority``: the answer most solutions agree on. Answers are grouped by *equivalence*, never by exact text:
  with the env's ``answer_key(answer)`` (equal keys: equivalent answers); answers it returns ``None`` for (every
  answer, in a task that does not override it) by the env's verdict, which is an equivalence too (every correct
  answer is equivalent to the gold one, hence to each other) but only for correct answers: wrong answers then group only
  with identical text, which can favour the correct group when wrong answers agree in substance but not in
  writing. Tasks should define ``answer_key``; the result's ``details["grouping"]`` says which was used. Ties go to
  the group reached first.
- ``prm_vote``: as majority, each vote weighted by the PRM's score of its solution (Uesato et al., 2022).
- ``prm_best``: the single solution the PRM scores highest.

The result reports top-1 correctness of the selected answer and, separately, pass@N (any sampled solution right).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from agents.budget import Budget
from agents.planners.base import Finished, PlanResult, Search
from agents.policies.base import Policy
from reason_gym.core import PRM, EpisodeState, ReasoningEnv

SELECTIONS = ("majority", "prm_vote", "prm_best")


@dataclass
class BestOfN:
    """N independent samples, one answer chosen among them."""

    n: int | None = None
    """Solutions to sample; ``None``: as many as the budget's ``samples`` limit allows."""
    selection: str = "auto"
    """``majority``, ``prm_vote``, ``prm_best``, or ``auto``: ``prm_vote`` with a PRM, else ``majority``."""
    temperature: float | None = None
    """Sampling temperature (``None``: the policy's own)."""
    prm_aggregate: str = "last"
    """How PRM step scores make a solution's score (see :data:`agents.planners.base.PRM_AGGREGATES`)."""

    name: ClassVar[str] = "bon"

    def __post_init__(self) -> None:
        if self.n is not None and (not isinstance(self.n, int) or self.n < 1):
            raise ValueError(f"n must be a positive int or None, got {self.n!r}")
        if self.selection not in ("auto", *SELECTIONS):
            raise ValueError(f"selection must be 'auto' or one of {SELECTIONS}, got {self.selection!r}")

    def solve(self, env: ReasoningEnv, policy: Policy, budget: Budget, prm: PRM | None = None) -> PlanResult:
        """Samples the solutions, selects one, reports it with pass@N."""
        selection = self.selection if self.selection != "auto" else ("prm_vote" if prm is not None else "majority")
        if selection != "majority" and prm is None:
            raise ValueError(f"selection={selection!r} needs a process reward model: pass prm=... or use 'majority'")
        if self.n is None and budget.samples is None:
            raise ValueError("BestOfN(n=None) samples until the budget's samples limit: set one, or set n")
        search = Search(env, policy, budget, prm, self.prm_aggregate)
        solutions = self._sample(search)
        if not solutions:
            return search.result(self.name, None, n=0, selection=selection)
        keys, grouping = answer_keys(search, solutions)
        picks = {"majority": vote(keys, [1.0] * len(solutions))}
        if prm is not None and selection != "majority":
            scores = [search.prm_score(s.steps) for s in solutions]
            picks["prm_vote"] = vote(keys, scores)
            picks["prm_best"] = max(range(len(scores)), key=lambda i: (scores[i], -i))
        chosen = solutions[picks[selection]]
        return search.result(
            self.name,
            chosen,
            n=len(solutions),
            selection=selection,
            grouping=grouping,
            groups=len(set(keys)),
            correct_by={rule: solutions[i].is_correct for rule, i in picks.items()},
        )

    def _sample(self, search: Search) -> list[Finished]:
        """Every finished solution, in the order sampled (repeats kept: each is a vote)."""
        solutions: list[Finished] = []
        started = 0
        steps_per_solution = float(search.env.max_steps - search.root.num_actions)  # the worst case, at first
        while not search.budget.exhausted and (self.n is None or started < self.n):
            if self.n is not None:
                wave = self.n - started
            else:
                wave = max(1, int(search.budget.remaining("samples") // steps_per_solution))
            before = search.budget.used()["samples"]
            finished = self._rollouts(search, wave)
            solutions += finished
            started += wave
            if finished:
                steps_per_solution = max(1.0, (search.budget.used()["samples"] - before) / wave)
        return solutions

    def _rollouts(self, search: Search, count: int) -> list[Finished]:
        """``count`` solutions sampled side by side, one batched ``propose`` per step."""
        states: Sequence[EpisodeState] = [search.root] * count
        finished: list[Finished] = []
        while states:
            batch = search.propose(states, 1, self.temperature)
            following = []
            for state, candidates in zip(states, batch, strict=False):  # states not served are dropped
                transition = search.step(state, candidates[0].text)
                if transition.finished is not None:
                    finished.append(transition.finished)
                elif not transition.state.done:
                    following.append(transition.state)
            states = following if batch else []
        return finished


def answer_keys(search: Search, solutions: Sequence[Finished]) -> tuple[list[Hashable], str]:
    """The equivalence key of each solution's answer, and which grouping made them (``answer_key`` or ``verdict``).

    An answer the env's ``answer_key`` cannot key (``None``; every answer where the task does not override it) is
    keyed by the env's verdict: all correct answers together, each wrong one with the answers of identical text.
    """
    search.env.set_state(search.root)  # answer_key reads the problem from the env's state
    keys = [search.env.answer_key(solution.answer) for solution in solutions]
    grouping = "answer_key" if any(key is not None for key in keys) else "verdict"
    return [_key_or_verdict(key, solution) for key, solution in zip(keys, solutions, strict=True)], grouping


def _key_or_verdict(key: Hashable | None, solution: Finished) -> Hashable:
    if key is not None:
        return ("key", key)
    return ("correct",) if solution.is_correct else ("text", " ".join(solution.answer.split()))


def vote(keys: Sequence[Hashable], weights: Sequence[float]) -> int:
    """The index of the chosen solution: the best-weighted member of the group with the largest total weight.

    Ties between groups go to the group that appeared first; within a group, to the first of its best members.

    >>> vote(["a", "b", "b", "c"], [1, 1, 1, 1])
    1
    >>> vote(["a", "b", "b", "c"], [0.9, 0.2, 0.3, 0.1])
    0
    """
    totals: dict[Hashable, float] = {}  # insertion order: the order groups appeared in
    best: dict[Hashable, int] = {}
    for index, (key, weight) in enumerate(zip(keys, weights, strict=True)):
        totals[key] = totals.get(key, 0.0) + weight
        if key not in best or weight > weights[best[key]]:
            best[key] = index
    winner = max(totals, key=totals.__getitem__)  # max() keeps the first of equal totals
    return best[winner]
