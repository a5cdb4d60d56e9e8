"""Greedy decoding: the policy's most likely step at every turn (temperature 0), one trajectory, no search.

The baseline every planner is compared with: it spends one sample per step and never more than the step limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from agents.budget import Budget
from agents.planners.base import PlanResult, Search
from agents.policies.base import Policy
from reason_gym.core import PRM, ReasoningEnv


@dataclass
class Greedy:
    """A temperature-0 rollout from the env's current state."""

    name: ClassVar[str] = "greedy"

    def solve(self, env: ReasoningEnv, policy: Policy, budget: Budget, prm: PRM | None = None) -> PlanResult:
        """Takes the policy's greedy step until an answer, the step limit or the end of the budget.

        Args:
            env: Reset on the problem.
            policy: Asked for one candidate at temperature 0 per step.
            budget: Charged; the rollout stops when it is exhausted (then there is no answer).
            prm: Unused (greedy decoding scores nothing); accepted so every planner is called alike.
        """
        search = Search(env, policy, budget)
        state = search.root
        while not state.done:
            batch = search.propose([state], 1, temperature=0.0)
            if not batch:
                break
            transition = search.step(state, batch[0][0].text)
            if transition.rejected:
                # The observation is unchanged, so greedy decoding would write the same rejected step again until
                # the step limit: stop now instead of spending budget on it.
                break
            state = transition.state
        return search.result(self.name, search.finished.get(state.steps))
