"""Planners: greedy decoding, best-of-N, step-level beam search, MCTS and Tree-of-Thoughts BFS.

Every planner has ``solve(env, policy, budget, prm=None) -> PlanResult``: it plans from the state the env was reset
to, charges every policy call, PRM call and env step to the :class:`~agents.budget.Budget`, and stops at it.
"""

from agents.planners.base import Finished, Planner, PlanResult, Search
from agents.planners.beam import BeamSearch
from agents.planners.best_of_n import BestOfN
from agents.planners.greedy import Greedy
from agents.planners.mcts import MCTS
from agents.planners.tot import TreeOfThoughts

__all__ = [
    "MCTS",
    "BeamSearch",
    "BestOfN",
    "Finished",
    "Greedy",
    "PlanResult",
    "Planner",
    "Search",
    "TreeOfThoughts",
]
