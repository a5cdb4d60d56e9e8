"""Step-level beam search: keep the ``width`` best partial solutions, extend each by sampled next steps, repeat.

Each round samples ``expansions`` candidate steps for every live beam (one batched ``propose``), takes them in the
env, drops the steps it rejects, merges children that reach the same state (the task's canonical state where it has
one), scores the children and keeps the ``width`` best of the children and the solutions finished so far. Finished
solutions hold their place without being extended; the search ends when the kept set holds no live beam, or the
budget runs out. The answer is the best-scored finished solution.

Scores: ``prm``, the PRM's score of the partial solution (by default its newest step's, i.e. the PRM as a value
function, as in Snell et al., 2024); or ``logprob``, the sum of the policy's log-probabilities of the steps (the
classic beam search of sequence models; it needs a policy that reports log-probs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from agents.budget import Budget
from agents.planners.base import Finished, PlanResult, Search, resolve_value
from agents.policies.base import Candidate, Policy
from reason_gym.core import PRM, EpisodeState, ReasoningEnv


@dataclass
class Beam:
    """A partial (or, with ``finished``, complete) solution in the beam."""

    state: EpisodeState
    logprob: float
    score: float = 0.0
    finished: Finished | None = None


@dataclass
class BeamSearch:
    """Step-level beam search scored by a PRM or by cumulative log-probability."""

    width: int = 4
    """Beams kept after each round."""
    expansions: int = 4
    """Candidate steps sampled per live beam and round."""
    score: str = "auto"
    """``prm``, ``logprob``, or ``auto``: ``prm`` with a PRM, else ``logprob``."""
    temperature: float | None = None
    """Sampling temperature of expansions (``None``: the policy's own)."""
    prm_aggregate: str = "last"
    """How PRM step scores make a beam's score (see :data:`agents.planners.base.PRM_AGGREGATES`)."""

    name: ClassVar[str] = "beam"

    def __post_init__(self) -> None:
        if self.width < 1 or self.expansions < 1:
            raise ValueError(f"width and expansions must be >= 1, got {self.width} and {self.expansions}")

    def solve(self, env: ReasoningEnv, policy: Policy, budget: Budget, prm: PRM | None = None) -> PlanResult:
        """Runs the beam search from the env's current state; returns the best finished solution."""
        score = resolve_value(self.score, prm, ("prm", "logprob"))
        search = Search(env, policy, budget, prm, self.prm_aggregate)
        kept = [Beam(search.root, 0.0)]
        rounds = 0
        while any(beam.finished is None for beam in kept) and not budget.exhausted:
            live = [beam for beam in kept if beam.finished is None]
            children = self._expand(search, live, need_logprobs=score == "logprob")
            for child in children:
                child.score = search.prm_score(child.state.steps) if score == "prm" else child.logprob
            done = [beam for beam in kept if beam.finished is not None]
            kept = sorted(done + children, key=lambda beam: beam.score, reverse=True)[: self.width]
            rounds += 1
        finished = [beam for beam in kept if beam.finished is not None]
        best = max(finished, key=lambda beam: beam.score, default=None)
        return search.result(self.name, best.finished if best else None, score=score, rounds=rounds)

    def _expand(self, search: Search, live: list[Beam], need_logprobs: bool) -> list[Beam]:
        """The distinct valid children of the live beams (one ``propose`` call for all of them)."""
        children: dict[object, Beam] = {}
        batch = search.propose([beam.state for beam in live], self.expansions, self.temperature)
        for beam, candidates in zip(live, batch, strict=False):  # the budget may serve fewer
            for candidate in candidates:
                transition = search.step(beam.state, candidate.text)
                if transition.rejected or (transition.state.done and transition.finished is None):
                    continue  # a rejected step changes nothing; a truncated beam can never finish
                logprob = beam.logprob + _logprob(candidate, need_logprobs)
                child = Beam(transition.state, logprob, finished=transition.finished)
                same = children.get(transition.key)
                if same is None or child.logprob > same.logprob:  # merged states keep their likeliest path
                    children[transition.key] = child
        return list(children.values())


def _logprob(candidate: Candidate, needed: bool) -> float:
    """The candidate's log-probability; 0.0 where the policy has none and the score does not need it."""
    if candidate.logprob is None:
        if needed:
            raise ValueError("beam search scored by log-probs needs a policy that reports them: pass a prm instead")
        return 0.0
    return candidate.logprob
