"""The budget: its limits, and exact accounting of tiny scripted planner runs (every count computed by hand)."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import pytest

import reason_gym  # noqa: F401
from agents.budget import COUNTERS, Budget
from agents.planners import MCTS, BeamSearch, BestOfN, Greedy
from agents.planners.base import Search
from agents.policies.base import Candidate, ScriptedPolicy
from reason_gym.core import ReasoningEnv

SOLUTION = ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)"]
ANSWER = "Answer: (13 - 9) * (10 - 4) = 24"


class TenTokenPolicy(ScriptedPolicy):
    """A scripted policy whose every candidate costs 10 tokens."""

    def propose(self, states: Sequence[str], n: int = 1, *, temperature: float | None = None) -> list[list[Candidate]]:
        batch = super().propose(states, n, temperature=temperature)
        return [[Candidate(c.text, num_tokens=10) for c in candidates] for candidates in batch]


def steps_of(observation: str) -> list[str]:
    return observation.split("\n")[2:]  # the Game-of-24 question is two lines


def solution_script(observation: str) -> list[str]:
    done = steps_of(observation)
    return [SOLUTION[len(done)]] if len(done) < 3 else [ANSWER]


def distractor_script(observation: str) -> list[str]:
    """Two candidates per state: a distractor, then the solution's next step."""
    done = steps_of(observation)
    if len(done) == 3:
        return [ANSWER]
    return ["13 + 10 = 23", SOLUTION[0]] if not done else ["4 + 4 = 8", SOLUTION[len(done)]]


def game24(numbers: Sequence[int] = (4, 9, 10, 13)) -> ReasoningEnv:
    env = gym.make("reason_gym/Game24-v0").unwrapped
    env.reset(seed=0, options={"problem": {"numbers": list(numbers)}})
    return env


def constant_prm(question: str, steps: Sequence[str]) -> list[float]:
    return [0.5] * len(steps)


def usage(policy_calls: int, samples: int, tokens: int, prm_calls: int, env_steps: int) -> dict[str, int]:
    return dict(zip(COUNTERS, (policy_calls, samples, tokens, prm_calls, env_steps), strict=True))


# ---------------------------------------------------------------------- the Budget object


def test_limits_exhaustion_and_affordable_samples():
    budget = Budget(samples=5, prm_calls=2)
    assert budget.limits() == {"samples": 5, "prm_calls": 2} and not budget.exhausted
    budget.charge_samples(4, 40)
    assert budget.affordable(3) == 1 and budget.remaining("samples") == 1 and budget.remaining("tokens") is None
    budget.charge_prm(2)
    assert budget.exhausted and budget.affordable(3) == 0  # the PRM limit stops everything
    assert Budget().affordable(10**6) == 10**6 and not Budget().exhausted


@pytest.mark.parametrize("bad", [-1, 2.5, "8"])
def test_limits_must_be_non_negative_ints(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        Budget(samples=bad)


def test_search_serves_only_what_the_budget_affords():
    search = Search(game24(), TenTokenPolicy(solution_script), Budget(samples=5))
    root = search.root
    assert [len(c) for c in search.propose([root, root, root], 2)] == [2, 2]  # 4 of 6 samples fit
    assert [len(c) for c in search.propose([root, root, root], 2)] == [1]  # the last sample
    assert search.propose([root], 1) == []
    assert search.budget.used() == usage(2, 5, 50, 0, 0)


# ---------------------------------------------------------------------- exact accounting of planner runs


def test_greedy_spends_one_sample_and_one_step_per_step():
    result = Greedy().solve(game24(), TenTokenPolicy(solution_script), Budget(samples=100))
    assert result.is_correct and result.used == usage(4, 4, 40, 0, 4)


def test_best_of_n_is_cut_exactly_at_the_sample_limit():
    # three solutions of four steps in lockstep: rounds of 3, 3, 3 samples, then 1 (the limit is 10)
    result = BestOfN(n=3).solve(game24(), TenTokenPolicy(solution_script), Budget(samples=10))
    assert result.used == usage(4, 10, 100, 0, 10)
    assert result.details["n"] == 1 and result.is_correct  # only the rollout served in the last round finished


def test_best_of_n_fills_the_sample_limit_in_waves():
    # first wave: 7 // 10 (the step limit) -> 1 solution, 4 samples; then 3 // 4 -> 1 more, cut after 3 samples
    result = BestOfN().solve(game24(), TenTokenPolicy(solution_script), Budget(samples=7))
    assert result.used == usage(7, 7, 70, 0, 7) and result.details["n"] == 1


def test_beam_search_accounting():
    # round 1: 1 beam x 2 = 2 samples, 2 valid children, 2 PRM calls
    # round 2: 2 beams x 2 = 4 samples; the distractor beam's 2 steps are rejected; 2 valid children, 2 PRM calls
    # round 3: 2 beams x 2 = 4 samples; only "4 * 6 = 24" is valid, 1 PRM call
    # round 4: 1 beam x 2 = 2 samples, the same answer twice: one finished child, 1 PRM call
    beam = BeamSearch(width=2, expansions=2)
    result = beam.solve(game24(), TenTokenPolicy(distractor_script), Budget(), prm=constant_prm)
    assert result.is_correct and result.details["rounds"] == 4
    assert result.used == usage(4, 12, 120, 6, 12)


def test_mcts_accounting():
    # sim 1: expand the root: 4 samples; children 3 3 4, 1 2 7 and 2 3 4 (two texts): 3 PRM calls (the root, with
    #        no steps, is worth 0 without a call)
    # sim 2: expand 3 3 4: 4 samples, new child 3 7: 1 PRM call
    # sim 3: expand 1 2 7: 4 samples, its child 3 7 exists already (a transposition): no PRM call
    # sim 4: expand 2 3 4: 4 samples, new child 4 6: 1 PRM call
    script = {
        "": ["1 + 2 = 3", "3 + 4 = 7", "1 * 2 = 2", "2 / 1 = 2"],
        "1 + 2 = 3 (left: 3 3 4)": ["3 + 4 = 7"],
        "3 + 4 = 7 (left: 1 2 7)": ["1 + 2 = 3"],
        "1 * 2 = 2 (left: 2 3 4)": ["2 * 3 = 6"],
    }
    policy = TenTokenPolicy(lambda obs: script["\n".join(steps_of(obs))])
    mcts = MCTS(expansions=4, value="prm", widening=None, max_simulations=4)
    result = mcts.solve(game24([1, 2, 3, 4]), policy, Budget(), prm=constant_prm)
    assert result.details["simulations"] == 4 and result.details["nodes"] == 6
    assert result.used == usage(4, 16, 160, 5, 16)


def test_mcts_stops_at_a_prm_limit():
    # sim 1: the root's 4 samples give 2 distinct children: 2 PRM calls
    # sim 2: both steps proposed under "13 + 10 = 23" are rejected: a dead end, no call
    # sim 3: the root (2 visits) is due for widening: 4 samples, nothing new (it is saturated now); then
    #        "13 - 9 = 4" is expanded: 4 samples, 2 children, 2 PRM calls: 4 >= 3, so the search stops
    mcts = MCTS(expansions=4, value="prm")
    result = mcts.solve(game24(), TenTokenPolicy(distractor_script), Budget(prm_calls=3), prm=constant_prm)
    assert result.details["simulations"] == 3 and result.used == usage(4, 16, 160, 4, 16)


def test_a_token_limit_is_passed_by_at_most_one_call():
    result = Greedy().solve(game24(), TenTokenPolicy(solution_script), Budget(tokens=25))
    assert result.used == usage(3, 3, 30, 0, 3) and result.answer is None
