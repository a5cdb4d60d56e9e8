"""Every planner finds an answer it must find within its budget; MCTS beats greedy on a trap; votes use equivalence."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import reason_gym  # noqa: F401
from agents.budget import Budget
from agents.planners import MCTS, BeamSearch, BestOfN, Greedy, TreeOfThoughts
from agents.planners.base import Search
from agents.planners.best_of_n import vote
from agents.planners.mcts import _Tree
from agents.policies.base import Candidate, ScriptedPolicy
from agents.simple import RandomPolicy
from reason_gym.checkers.game24 import judge_answer, parse_number
from reason_gym.checkers.game24_solver import is_solvable
from reason_gym.core import AnswerOutcome, EpisodeState, ReasoningEnv, StepOutcome
from reason_gym.envs.game24 import Game24Env

# ---------------------------------------------------------------------- a toy task whose optimum needs lookahead

TRAP = {
    (): [("a", math.log(0.75)), ("b", math.log(0.25))],  # the policy prefers "a" ...
    ("a",): [("a1", 0.0)],
    ("a", "a1"): [("Answer: nothing", 0.0)],  # ... but every answer under "a" is wrong
    ("b",): [("b1", math.log(0.7)), ("b2", math.log(0.3))],  # and under "b" the likelier step is a trap too
    ("b", "b1"): [("Answer: nothing", 0.0)],
    ("b", "b2"): [("Answer: treasure", 0.0)],
}


class TrapEnv(ReasoningEnv):
    """A fixed tree of steps (``TRAP``): only the answer after ``b, b2`` is right."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_steps=5, **kwargs)

    def _choose_problem(self, index: int | None, split: str | None) -> Mapping[str, Any]:
        return {"name": "trap"}

    def _validate_problem(self, record: Any) -> Mapping[str, Any]:
        return record

    def _question(self, problem: Mapping[str, Any]) -> str:
        return "Find the treasure."

    def _problem_id(self, problem: Mapping[str, Any]) -> str:
        return "toy/trap"

    def _initial_task_state(self, problem: Mapping[str, Any]) -> tuple[str, ...]:
        return ()

    def _apply_step(self, state: EpisodeState, step: str) -> StepOutcome:
        if step in {text for text, _ in TRAP.get(state.task, [])}:
            return StepOutcome(step, (*state.task, step))
        return StepOutcome("", state.task, "not a move here")

    def _judge_answer(self, state: EpisodeState, answer: str) -> AnswerOutcome:
        return AnswerOutcome(state.task == ("b", "b2") and answer.strip() == "treasure", f"Answer: {answer.strip()}")


class TablePolicy:
    """Samples the steps of ``TRAP`` (keyed by the steps so far) from the softmax of their log-probs."""

    def __init__(self, table: Mapping[tuple[str, ...], list[tuple[str, float]]], seed: int = 0) -> None:
        self.table, self.rng = table, np.random.default_rng(seed)

    def propose(self, states: Sequence[str], n: int = 1, *, temperature: float | None = None) -> list[list[Candidate]]:
        batch = []
        for state in states:
            options = self.table[tuple(state.split("\n")[1:])]
            logprobs = np.array([lp for _, lp in options])
            if temperature == 0:
                picks = [int(np.argmax(logprobs))] * n
            else:
                p = np.exp(logprobs - logprobs.max())
                picks = self.rng.choice(len(options), size=n, p=p / p.sum())
            batch.append([Candidate(options[i][0], len(options[i][0]), options[i][1]) for i in picks])
        return batch


def trap_env() -> TrapEnv:
    env = TrapEnv()
    env.reset(seed=0)
    return env


def treasure_prm(question: str, steps: Sequence[str]) -> list[float]:
    """Scores steps on the way to the treasure 1, others 0.1 (an ideal PRM for the toy)."""
    good = ["b", "b2", "Answer: treasure"]
    return [1.0 if i < len(good) and list(steps[: i + 1]) == good[: i + 1] else 0.1 for i in range(len(steps))]


def test_greedy_falls_into_the_trap():
    result = Greedy().solve(trap_env(), TablePolicy(TRAP), Budget(samples=64))
    assert result.trajectory == ["a", "a1", "Answer: nothing"] and not result.is_correct
    assert result.used["samples"] == 3


@pytest.mark.parametrize("value", ["rollout", "prm"])
@pytest.mark.parametrize("seed", range(5))
def test_mcts_looks_ahead_past_the_trap_within_budget(value, seed):
    budget = Budget(samples=64)
    mcts = MCTS(expansions=2, value=value)
    result = mcts.solve(trap_env(), TablePolicy(TRAP, seed), budget, prm=treasure_prm if value == "prm" else None)
    assert result.is_correct and result.trajectory == ["b", "b2", "Answer: treasure"]
    assert result.details["simulations"] > 1 and result.used["samples"] <= 64


def test_mcts_without_widening_or_budget_stops_when_the_tree_is_used_up():
    result = MCTS(expansions=2, widening=None, value="prm").solve(
        trap_env(), TablePolicy(TRAP), Budget(), prm=treasure_prm
    )
    assert result.details["simulations"] < 200  # stopped by max_idle, not by a budget it does not have


# ---------------------------------------------------------------------- Game of 24


def game24(numbers: Sequence[int]) -> ReasoningEnv:
    env = gym.make("reason_gym/Game24-v0").unwrapped
    env.reset(seed=0, options={"problem": {"numbers": list(numbers)}})
    return env


def solvable_prm(question: str, steps: Sequence[str]) -> list[float]:
    """A Game-of-24 PRM from the exact solver: 1 for a step after which 24 is still reachable, or a right answer."""
    puzzle = [int(x) for x in question.split("Input:")[1].split()]
    scores = []
    for step in steps:
        if step.startswith("Answer:"):
            scores.append(float(judge_answer(step.removeprefix("Answer:"), puzzle).correct))
        else:
            left = [parse_number(x) for x in step.split("(left:")[1].rstrip(")").split()]
            scores.append(float(is_solvable(left)))
    return scores


SOLUTION = ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)"]


def script_with_distractors(observation: str) -> list[str]:
    """The solution's next step for 4 9 10 13, after a distractor; the answer the steps spell out at the end."""
    done = observation.split("\n")[2:]
    if len(done) == len(SOLUTION):
        return ["Answer: (13 - 9) * (10 - 4) = 24"]
    return ["13 + 10 = 23", SOLUTION[len(done)]] if not done else ["4 + 4 = 8", SOLUTION[len(done)]]


def test_greedy_follows_a_scripted_solution():
    policy = ScriptedPolicy(lambda obs: script_with_distractors(obs)[-1:])
    result = Greedy().solve(game24([4, 9, 10, 13]), policy, Budget(samples=8))
    assert result.is_correct and result.answer == "(13 - 9) * (10 - 4) = 24"
    assert result.trajectory == [*SOLUTION, "Answer: (13 - 9) * (10 - 4) = 24"]


def test_greedy_without_budget_left_gives_no_answer():
    policy = ScriptedPolicy(lambda obs: script_with_distractors(obs)[-1:])
    result = Greedy().solve(game24([4, 9, 10, 13]), policy, Budget(samples=3))
    assert result.answer is None and not result.is_correct and result.trajectory == []
    assert result.pass_at_k is None and result.k == 0


@pytest.mark.parametrize("planner", [BeamSearch(width=2, expansions=2), TreeOfThoughts(breadth=2, proposals=2)])
def test_scored_planners_keep_the_step_the_prm_likes(planner):
    policy = ScriptedPolicy(script_with_distractors)  # both candidates of every state, in order
    result = planner.solve(game24([4, 9, 10, 13]), policy, Budget(samples=32), prm=solvable_prm)
    assert result.is_correct and result.trajectory[:3] == SOLUTION


@pytest.mark.parametrize(
    ("planner", "numbers", "samples", "prm", "top1"),
    [
        # about 1 random solution in 36 is right: it is among the samples, but the vote goes to the value random
        # play claims most often (answers are grouped by Game24Env.answer_key, their exact value)
        (BestOfN(), [1, 1, 4, 6], 1024, None, False),
        (BestOfN(selection="prm_best"), [1, 1, 4, 6], 512, solvable_prm, True),
        (BeamSearch(width=4, expansions=16), [4, 9, 10, 13], 256, solvable_prm, True),  # random play never solves it
        (MCTS(expansions=8), [1, 1, 4, 6], 512, None, True),
        (MCTS(expansions=8, value="prm"), [4, 9, 10, 13], 256, solvable_prm, True),
        (TreeOfThoughts(breadth=8, proposals=16, value_samples=2), [1, 1, 4, 6], 1024, None, True),
        (TreeOfThoughts(breadth=4, proposals=24, value="prm"), [4, 9, 10, 13], 256, solvable_prm, True),
    ],
    ids=["bon-majority", "bon-prm", "beam-prm", "mcts-rollout", "mcts-prm", "tot-rollout", "tot-prm"],
)
def test_planners_solve_a_puzzle_with_random_legal_steps(planner, numbers, samples, prm, top1):
    for seed in range(3):
        result = planner.solve(game24(numbers), RandomPolicy(seed), Budget(samples=samples), prm=prm)
        assert result.pass_at_k == 1.0, (seed, result)
        if top1:
            assert result.is_correct, (seed, result)
        assert result.used["samples"] <= samples
        assert (result.used["prm_calls"] > 0) == (prm is not None)


def test_mcts_merges_siblings_and_transpositions():
    # 1 2 3 4: "1 + 2 = 3" then "3 + 4 = 7", or "3 + 4 = 7" then "1 + 2 = 3", both reach 3 7; "1 * 2" and "2 / 1"
    # both reach 2 3 4, so they are one edge.
    script = {
        "": ["1 + 2 = 3", "3 + 4 = 7", "1 * 2 = 2", "2 / 1 = 2"],
        "1 + 2 = 3 (left: 3 3 4)": ["3 + 4 = 7"],
        "3 + 4 = 7 (left: 1 2 7)": ["1 + 2 = 3"],
        "1 * 2 = 2 (left: 2 3 4)": ["2 * 3 = 6"],
    }
    policy = ScriptedPolicy(lambda obs: script.get("\n".join(obs.split("\n")[2:]), ["Answer: 1"]))
    mcts = MCTS(expansions=4, value="prm", widening=None)
    search = Search(game24([1, 2, 3, 4]), policy, Budget(), prm=lambda question, steps: [0.5] * len(steps))
    tree = _Tree(mcts, search, "prm")
    for _ in range(4):  # expand the root, then each of its three children
        tree.simulate()
    edges = {edge.step: edge for edge in tree.root.edges}
    assert list(edges) == ["1 + 2 = 3", "3 + 4 = 7", "1 * 2 = 2"]
    assert set(edges["1 * 2 = 2"].texts) == {"1 * 2 = 2", "2 / 1 = 2"}
    assert [edge.prior for edge in edges.values()] == [1 / 3] * 3  # uniform over distinct siblings (no log-probs)
    (via_3,) = edges["1 + 2 = 3"].child.edges
    (via_7,) = edges["3 + 4 = 7"].child.edges
    assert via_3.child is via_7.child and via_3.child.state.task == (3, 7)
    # root, 3 3 4, 1 2 7, 2 3 4, 3 7 (one node for two paths), 4 6
    assert len(tree.nodes) == 6 and tree.root.visits == 4 and via_3.child.visits == 0


def test_state_keys_use_the_canonical_state_where_the_task_has_one():
    env = game24([1, 2, 3, 4])
    search = Search(env, ScriptedPolicy({}), Budget())
    one = search.step(search.step(search.root, "1 + 2 = 3").state, "3 + 4 = 7").key
    two = search.step(search.step(search.root, "3 + 4 = 7").state, "1 + 2 = 3").key
    assert one == two and search.budget.used()["env_steps"] == 4
    toy = trap_env()
    toy_search = Search(toy, ScriptedPolicy({}), Budget())
    assert toy_search.step(toy_search.root, "a").key == ("observation", "Find the treasure.\na")


# ---------------------------------------------------------------------- votes


class VoteEnv(TrapEnv):
    """Answers only; 42 is right, however it is written. ``answer_key`` reads the number."""

    def _judge_answer(self, state: EpisodeState, answer: str) -> AnswerOutcome:
        return AnswerOutcome(_number(answer) == 42, f"Answer: {answer.strip()}")

    def answer_key(self, answer: str) -> float | None:
        return _number(answer)


class VoteEnvWithoutKey(VoteEnv):
    def answer_key(self, answer: str) -> None:
        return None  # keys nothing, as if the hook were absent: votes fall back to the env's verdict


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


ANSWERS = ["Answer: 41", "Answer: 42", "Answer: 41", "Answer: 42.0", "Answer:  4.2e1"]


def cycling_policy() -> ScriptedPolicy:
    answers = itertools.cycle(ANSWERS)
    return ScriptedPolicy(lambda obs: [next(answers)])


@pytest.mark.parametrize(("env_class", "grouping"), [(VoteEnv, "answer_key"), (VoteEnvWithoutKey, "verdict")])
def test_majority_vote_groups_equivalent_answers_not_strings(env_class, grouping):
    env = env_class()
    env.reset()
    result = BestOfN(n=5).solve(env, cycling_policy(), Budget())
    # "41" is the most frequent string, but three answers say 42
    assert result.answer == "42" and result.is_correct
    assert result.details["grouping"] == grouping and result.details["groups"] == 2
    assert result.pass_at_k == 1.0 and result.details["n"] == 5


class Game24WithAnswerKey(Game24Env):
    """Game24Env with the ``answer_key`` proposed for it: the exact value of an expression over the puzzle's
    numbers (every right answer is keyed 24), ``None`` for anything else."""

    def answer_key(self, answer: str) -> object:
        state = self.get_state()
        verdict = judge_answer(answer, state.problem["numbers"], state.problem["target"])
        return verdict.value if verdict.correct or verdict.error.startswith("equals ") else None


def test_game24_votes_group_answers_by_value():
    answers = itertools.cycle(
        [
            "Answer: 4 * 10 - 13 - 9 = 24",  # 18, twice, in two spellings
            "Answer: (13 - 9) * (10 - 4) = 24",  # 24, three times, in three spellings
            "Answer: 10 * 4 - (9 + 13)",
            "Answer: (10 - 4) * (13 - 9)",
            "Answer: 24",  # not over the puzzle's numbers: keyed by the verdict
            "Answer: (13-9)*(10-4)",
        ]
    )
    env = Game24WithAnswerKey()
    env.reset(options={"problem": {"numbers": [4, 9, 10, 13]}})
    result = BestOfN(n=6).solve(env, ScriptedPolicy(lambda obs: [next(answers)]), Budget())
    assert result.is_correct and result.details["grouping"] == "answer_key" and result.details["groups"] == 3


def test_prm_selections():
    def likes_41(question, steps):
        return [0.9 if "41" in steps[-1] else 0.2]

    env = VoteEnv()
    env.reset()
    result = BestOfN(n=5, selection="prm_best").solve(env, cycling_policy(), Budget(), prm=likes_41)
    assert result.answer == "41" and not result.is_correct and result.pass_at_k == 1.0
    assert result.details["correct_by"] == {"majority": True, "prm_vote": False, "prm_best": False}
    assert result.used["prm_calls"] == 5


def test_vote_ties_go_to_the_group_seen_first():
    assert vote(["x", "y"], [1.0, 1.0]) == 0
    assert vote(["x", "y", "y"], [0.5, 0.3, 0.3]) == 1


def test_bad_settings_say_how_to_fix_them():
    with pytest.raises(ValueError, match="needs a process reward model"):
        BeamSearch(score="prm").solve(trap_env(), TablePolicy(TRAP), Budget())
    with pytest.raises(ValueError, match="log-probs"):
        BeamSearch().solve(game24([1, 2, 3, 4]), ScriptedPolicy({}), Budget(samples=8))
    with pytest.raises(ValueError, match="samples limit"):
        BestOfN().solve(trap_env(), TablePolicy(TRAP), Budget())
    with pytest.raises(ValueError, match="selection"):
        BestOfN(selection="best")


def test_the_overhead_benchmark_runs(tmp_path, load_benchmark):
    module = load_benchmark("bench_planners")
    out = tmp_path / "planners.json"
    assert module.main(["--problems", "1", "--budget", "16", "--repeats", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [row["planner"] for row in rows] == ["greedy", "bon", "beam", "mcts", "tot"]
    assert all(row["nodes"] > 0 and row["outside_policy_ms"] > 0 for row in rows)
