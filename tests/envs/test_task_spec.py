"""Task knowledge travels as data: every env declares a TaskSpec, it reaches policies, prompts, planners and PRMs
through the state, and nothing in ``agents/`` recognises a task by the wording of its questions."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import reason_gym  # noqa: F401  (registers the environments)
from agents.budget import Budget
from agents.planners import BeamSearch, Greedy
from agents.planners.base import Search
from agents.policies.base import Candidate, ScriptedPolicy, policy_inputs
from agents.policies.prompts import ChatPrompt
from agents.prm import RuleBasedPRM, make_prm, score_steps
from agents.simple import RandomPolicy
from reason_gym.core import EpisodeState, TaskSpec, prm_scores
from reason_gym.envs import TASK_IDS
from reason_gym.envs.arithmetic import ArithmeticEnv
from reason_gym.envs.game24 import Game24Env
from reason_gym.sandbox import SandboxError

# Every task; reason_gym/Remote-v0 is a client of a served task (it needs base_url=), checked against a server in
# tests/integrations/test_openenv_serve.py.
ENV_IDS = list(TASK_IDS)
ROOT = Path(__file__).resolve().parents[2]


class ChatTokenizer:
    """Just enough of a tokenizer for ChatPrompt: a chat template that writes ``<role>content</role>`` lines."""

    chat_template = "tags"

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool, add_generation_prompt: bool) -> str:
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>\n" for m in messages) + "<assistant>"


class RecordingPRM:
    """A PRM that reads the structured state and remembers every state it was given."""

    def __init__(self) -> None:
        self.states: list[EpisodeState] = []

    def score_state(self, state: EpisodeState) -> list[float]:
        self.states.append(state)
        return [0.5] * len(state.steps)


class RecordingPolicy:
    """Takes state snapshots, remembers them, answers at once."""

    takes_episode_states = True

    def __init__(self) -> None:
        self.states: list[Any] = []

    def propose(self, states: Sequence[Any], n: int = 1, *, temperature: float | None = None) -> list[list[Candidate]]:
        self.states += states
        return [[Candidate("Answer: 0")] * n for _ in states]


def make_env(env_id: str, **kwargs: Any) -> Any:
    try:
        return gym.make(env_id, **kwargs).unwrapped
    except SandboxError as error:  # code envs on a machine that cannot isolate programs
        pytest.skip(f"{env_id}: {error}")


def accepted_step(env: Any) -> str:
    """A step the env accepts in its current state."""
    legal = [a for a in getattr(env, "candidate_actions", lambda: [])() or [] if a is not None]
    return legal[0] if legal else "1 + 1 = 2"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_env_declares_a_complete_task_spec_that_reaches_planners_prompts_and_prms(env_id: str) -> None:
    env = make_env(env_id)
    spec = env.task
    assert isinstance(spec, TaskSpec) and spec is type(env).task and spec.env_id == env_id
    for field in ("name", "description", "system_prompt", "step_format", "answer_format"):
        assert isinstance(getattr(spec, field), str) and getattr(spec, field).strip(), field
    assert set(spec.step_checks) <= set(env.reward_weights)
    assert spec.exact_step_check is None or spec.exact_step_check in spec.step_checks
    hash(spec)  # frozen: a dict key (PRMs cache scorers by it)

    env.reset(seed=0)
    root = env.get_state()
    assert root.spec is spec and env.clone().get_state().spec is spec

    # planners hand the snapshot to policies that take them, and the root state (with steps) to PRMs
    policy, prm = RecordingPolicy(), RecordingPRM()
    search = Search(env, policy, Budget(samples=4), prm=prm)
    search.propose([root], 1)
    assert policy.states == [root]
    search.prm_score(["a step"])
    assert prm.states[-1].spec is spec and prm.states[-1].problem is root.problem
    assert prm.states[-1].steps == ("a step",)
    assert policy_inputs(ScriptedPolicy({}), [root]) == [root.observation]

    # the env's own prm= gets the state with the new step
    env = make_env(env_id, prm=prm)
    env.reset(seed=0)
    _, _, _, _, info = env.step(accepted_step(env))
    assert "error" not in info and info["reward_components"]["prm"] == 0.5
    assert prm.states[-1].spec is spec and prm.states[-1] == env.get_state()

    # the chat prompt takes the task's system prompt from the state
    assert ChatPrompt(ChatTokenizer())(env.get_state()).startswith(f"<system>{spec.system_prompt}</system>\n")

    # the rule PRM: the task's exact scorer where it declares one, else the claims scorer; one score per step
    assert len(RuleBasedPRM().score_state(env.get_state())) == len(env.get_state().steps)


def test_plain_question_steps_prms_still_plug_in_through_the_adapter() -> None:
    seen = []

    def plain(question: str, steps: Sequence[str]) -> list[float]:
        seen.append((question, tuple(steps)))
        return [0.25] * len(steps)

    env = Game24Env(split="train", prm=plain)
    question, _ = env.reset(options={"problem": {"numbers": [4, 9, 10, 13]}})
    _, _, _, _, info = env.step("13 - 9 = 4")
    assert info["reward_components"]["prm"] == 0.25 and seen == [(question, ("13 - 9 = 4 (left: 4 4 10)",))]
    assert prm_scores(plain, env.get_state()) == [0.25]
    assert score_steps(plain, question, ["x", "y"]) == [0.25, 0.25]
    with pytest.raises(ValueError, match="structured state"):
        score_steps(make_prm("rule"), question, ["x"])


def reworded_game24(self: Game24Env, problem: Any) -> str:
    return f"Make {problem['target']} from {', '.join(map(str, problem['numbers']))}, each number once."


def reworded_arithmetic(self: ArithmeticEnv, problem: Any) -> str:
    text = problem.get("expression") or problem["equation"]
    return f"[{problem['kind']}] {text} -- what is the answer?"


def test_rewording_the_question_templates_breaks_no_prm_prompt_or_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)", "Answer: (13-9)*(10-4)"]
    game24 = Game24Env(split="train", reward_weights={"step_solvable": 1.0})
    game24.reset(options={"problem": {"numbers": [4, 9, 10, 13]}})
    arithmetic = ArithmeticEnv()
    arithmetic.reset(options={"problem": {"kind": "linear", "equation": "3x + 4 = 19"}})
    before = {
        "game24": RuleBasedPRM().score_state(game24.get_state()._replace(steps=tuple(steps))),
        "arithmetic": RuleBasedPRM().score_state(arithmetic.get_state()._replace(steps=("3x = 15", "x = 4"))),
    }
    assert before == {"game24": [1.0, 1.0, 1.0, 1.0], "arithmetic": [1.0, 0.0]}

    monkeypatch.setattr(Game24Env, "_question", reworded_game24)
    monkeypatch.setattr(ArithmeticEnv, "_question", reworded_arithmetic)
    prm = make_prm("rule")
    game24 = Game24Env(split="train", prm=prm)
    question, _ = game24.reset(options={"problem": {"numbers": [4, 9, 10, 13]}})
    assert question.startswith("Make 24 from 4, 9, 10, 13")
    rewards = [game24.step(step)[4]["reward_components"].get("prm") for step in steps[:3]]
    assert rewards == [1.0, 1.0, 1.0]
    assert prm.score_state(game24.get_state()._replace(steps=tuple(steps))) == before["game24"]
    arithmetic = ArithmeticEnv(prm=prm)
    question, _ = arithmetic.reset(options={"problem": {"kind": "linear", "equation": "3x + 4 = 19"}})
    assert question.startswith("[linear] 3x + 4 = 19")
    assert prm.score_state(arithmetic.get_state()._replace(steps=("3x = 15", "x = 4"))) == before["arithmetic"]

    # the chat prompt still picks each task's system prompt, and splits the question from the steps exactly
    text = ChatPrompt(ChatTokenizer())(game24.get_state())
    assert text.startswith(f"<system>{Game24Env.task.system_prompt}</system>\n<user>{question_of(game24)}</user>")
    assert text.endswith("<assistant>" + "".join(f"{s}\n" for s in steps[:3]))
    assert ChatPrompt(ChatTokenizer())(arithmetic.get_state()).startswith(f"<system>{ArithmeticEnv.task.system_prompt}")

    # the random policy reads the puzzle from the state, so planners still solve reworded puzzles
    game24 = Game24Env(split="train")
    game24.reset(options={"problem": {"numbers": [4, 9, 10, 13]}})
    result = BeamSearch(width=4, expansions=16).solve(game24, RandomPolicy(0), Budget(samples=256), prm=prm)
    assert result.is_correct and result.trajectory[-1].startswith("Answer:")
    game24.reset(options={"problem": {"numbers": [4, 9, 10, 13]}})
    assert Greedy().solve(game24, RandomPolicy(0), Budget(samples=8)).k == 1


def question_of(env: Any) -> str:
    return env.get_state().question


# ------------------------------------------------------------------ no task wording in agents/ code

TASK_WORDING = re.compile(r"Game of 24|Compute |Solve for x|question\[:|prefixes")


def code_without_prose(source: str) -> str:
    """The source with comments and docstrings blanked out (the code and its other strings remain)."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.add((value.lineno, value.col_offset))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            docstrings.add((node.value.lineno, node.value.col_offset))  # attribute docstrings
    lines = source.splitlines(keepends=True)
    blank = [list(line) for line in lines]
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT or (token.type == tokenize.STRING and token.start in docstrings):
            (row, col), (end_row, end_col) = token.start, token.end
            for r in range(row, end_row + 1):
                start = col if r == row else 0
                stop = end_col if r == end_row else len(blank[r - 1])
                for c in range(start, stop):
                    if blank[r - 1][c] != "\n":
                        blank[r - 1][c] = " "
    return "".join("".join(line) for line in blank)


def test_code_without_prose_keeps_code_and_strings() -> None:
    source = 'def f():\n    """Game of 24 docs."""\n    # Compute things\n    return "Solve for x" + q[:3]\n'
    assert TASK_WORDING.findall(code_without_prose(source)) == ["Solve for x"]


def test_no_task_wording_is_matched_in_agents_code() -> None:
    found = []
    for path in sorted((ROOT / "agents").rglob("*.py")):
        code = code_without_prose(path.read_text())
        found += [
            f"{path.relative_to(ROOT)}:{code[: m.start()].count(chr(10)) + 1}: {m.group()}"
            for m in TASK_WORDING.finditer(code)
        ]
    assert not found, (
        "agents/ code recognises tasks by their wording; read the state's TaskSpec instead:\n" + "\n".join(found)
    )
