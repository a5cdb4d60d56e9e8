"""reason_gym.integrations.trl: datasets and reward functions for TRL, scored exactly as env.step scores."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import gymnasium as gym
import pytest

import reason_gym  # noqa: F401  (registers the environments)
from reason_gym.envs import TASK_IDS
from reason_gym.integrations.trl import (
    PROBLEM_COLUMNS,
    TOTAL,
    make_dataset,
    make_reward_funcs,
    problem_json,
    process_reward_funcs,
    reward_weights,
    split_completion,
)

ENV_IDS = list(TASK_IDS)
ROWS = 2
GARBAGE = "\x00\ud800 ☃ ### {{ )) Answer"  # not a final answer: "Answer" is not at the start of the line


def right_answer(env_id: str, problem: dict[str, Any]) -> str:
    """A correct final answer for a problem record (from make_dataset's JSON)."""
    if env_id == "reason_gym/Game24-v0":
        from reason_gym.checkers.game24_solver import solve

        return solve(problem["numbers"])[-1]
    if env_id == "reason_gym/Arithmetic-v0":
        return f"Answer: {problem['answer']}"
    if env_id in ("reason_gym/GSM8K-v0", "reason_gym/MATH-v0"):
        return f"Answer: {problem['gold']}"
    code = problem["prompt"] + problem["canonical_solution"] if env_id.endswith("HumanEval-v0") else problem["code"]
    return f"Answer:\n```python\n{code}\n```"


def completion_table(env_id: str, problem: dict[str, Any], max_steps: int) -> list[tuple[str, Any, list[str]]]:
    """(name, completion, the actions env.step receives) for every kind of completion."""
    right = right_answer(env_id, problem)
    steps = ["2 * 3 = 6", "Let me think."]
    if env_id.endswith(("HumanEval-v0", "MBPP-v0")):
        run = "Run:\n```python\nprint(1 + 1)\n```"
        wrong = "Answer:\n```python\ndef f():\n    return 0\n```"
        return [
            ("right", right, [right]),
            ("wrong", wrong, [wrong]),
            ("garbage", GARBAGE, [GARBAGE]),
            ("empty", "", [""]),
            ("not text", None, [""]),
            ("steps then answer", f"{steps[1]}\n{run}\n{right}\nDone.", [steps[1], run, right]),
            ("too many steps", "\n".join(["hmm"] * (max_steps + 2) + [right]), ["hmm"] * (max_steps + 2) + [right]),
            ("chat", [{"role": "assistant", "content": right}], [right]),
        ]
    return [
        ("right", right, [right]),
        ("right, newline", right + "\n", [right]),
        ("wrong", "Answer: 123457", ["Answer: 123457"]),
        ("garbage", GARBAGE, [GARBAGE]),
        ("empty", "", [""]),
        ("not text", None, [""]),
        ("blank line", "\n\nAnswer: 1", ["", "", "Answer: 1"]),
        ("steps then answer", "\n".join([*steps, right]), [*steps, right]),
        ("answer then more", f"{right}\nmore text\nAnswer: 0", [right]),
        ("too many steps", "\n".join([steps[0]] * (max_steps + 2) + [right]), [steps[0]] * (max_steps + 2) + [right]),
        ("chat", [{"role": "assistant", "content": "\n".join([*steps, right])}], [*steps, right]),
        ("chat parts", [{"role": "assistant", "content": [{"type": "text", "text": right}]}], [right]),
    ]


def env_return(env: gym.Env, row: dict[str, Any], actions: list[str]) -> tuple[float, bool]:
    """What env.step gives, summed, for these actions on the row's problem (until the episode ends)."""
    options = {"index": row["index"]} if row["split"] is None else {"index": row["index"], "split": row["split"]}
    env.reset(options=options)
    total, correct = 0.0, False
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        total += reward
        correct = bool(info.get("is_correct", False))
        if terminated or truncated:
            break
    return total, correct


@pytest.fixture(scope="module")
def datasets_module() -> Any:
    return pytest.importorskip("datasets")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rewards_equal_env_step_returns(env_id: str, datasets_module: Any) -> None:
    dataset = make_dataset(env_id, limit=ROWS)
    assert dataset.column_names == ["prompt", *PROBLEM_COLUMNS]
    assert len(dataset) == ROWS
    funcs = make_reward_funcs(env_id)
    assert [f.__name__ for f in funcs] == [TOTAL, "outcome", "invalid_step"]
    assert reward_weights(funcs) == [1.0, 0.0, 0.0]
    env = gym.make(env_id)
    checked = 0
    for row in dataset:
        problem = json.loads(row["problem"])
        table = completion_table(env_id, problem, env.unwrapped.max_steps)
        completions = [completion for _, completion, _ in table]
        columns = {name: [row[name]] * len(table) for name in PROBLEM_COLUMNS}
        outputs = [f(prompts=[row["prompt"]] * len(table), completions=completions, **columns) for f in funcs]
        for k, (name, completion, actions) in enumerate(table):
            if isinstance(completion, str):
                assert split_completion(completion) == actions, name
            expected, correct = env_return(env, row, actions)
            assert outputs[0][k] == expected, (name, completion)
            assert math.isclose(sum(out[k] for out in outputs[1:]), expected, abs_tol=1e-9), name
            assert outputs[1][k] == float(correct), name  # the outcome component
            if name == "right":
                assert correct, f"{env_id}: the right answer {completion!r} was judged wrong"
            checked += 1
    assert checked == ROWS * len(table)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_dataset_rows_are_the_envs_problems_in_order(env_id: str, datasets_module: Any) -> None:
    dataset = make_dataset(env_id, limit=3, conversational=True)
    env = gym.make(env_id)
    base = env.unwrapped
    for i, row in enumerate(dataset):
        observation, info = env.reset(options={"index": i})
        assert row["index"] == i and row["split"] == base.split
        assert row["problem_id"] == info["problem_id"]
        assert row["prompt"] == [
            {"role": "system", "content": base.task.system_prompt},
            {"role": "user", "content": observation},
        ]
    plain = make_dataset(env_id, limit=1)
    assert plain[0]["prompt"] == env.reset(options={"index": 0})[0] + "\n"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_problem_column_rebuilds_the_problem(env_id: str, datasets_module: Any) -> None:
    row = make_dataset(env_id, limit=1)[0]
    env = gym.make(env_id)
    by_index = env.reset(options={"index": 0})[0]
    observation, info = env.reset(options={"problem": json.loads(row["problem"])})
    assert (observation, info["problem_id"]) == (by_index, row["problem_id"])
    total = make_reward_funcs(env_id)[0]
    completions = ["Answer: 3", "", "1 + 1 = 2\nAnswer: 2"]
    by_problem = total([], completions, problem=[row["problem"]] * 3, problem_id=[row["problem_id"]] * 3)
    assert by_problem == total([], completions, index=[0] * 3, split=[row["split"]] * 3)


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("start", [{"options": {"index": 1}}, {"seed": 7}], ids=["index", "seed"])
@pytest.mark.parametrize("form", ["record", "json"])
def test_every_env_accepts_back_the_problem_it_exposes(env_id: str, start: dict[str, Any], form: str) -> None:
    """``reset(options={"problem": get_state().problem})`` (or make_dataset's JSON of it) is the same episode."""
    env = gym.make(env_id)
    observation, info = env.reset(**start)
    problem = env.unwrapped.get_state().problem
    record = json.loads(problem_json(problem)) if form == "json" else problem
    again, again_info = env.reset(options={"problem": record})
    assert (again, again_info["problem_id"]) == (observation, info["problem_id"])
    twice = env.reset(options={"problem": env.unwrapped.get_state().problem})  # and again: validation is idempotent
    assert (twice[0], twice[1]["problem_id"]) == (observation, info["problem_id"])


def test_procedural_tasks_number_rows_by_seed(datasets_module: Any) -> None:
    dataset = make_dataset("reason_gym/Game24-v0", limit=3, source="procedural")
    env = gym.make("reason_gym/Game24-v0", source="procedural")
    assert dataset["index"] == [None] * 3
    assert dataset["problem_id"] == [env.reset(seed=i)[1]["problem_id"] for i in range(3)]
    total = make_reward_funcs("reason_gym/Game24-v0", source="procedural")[0]
    right = [json.loads(p) for p in dataset["problem"]]
    from reason_gym.checkers.game24_solver import solve

    assert total([], [solve(p["numbers"])[-1] for p in right], **{c: dataset[c] for c in PROBLEM_COLUMNS}) == [1.0] * 3
    with pytest.raises(ValueError, match="limit"):
        make_dataset("reason_gym/Game24-v0", source="procedural")


def test_bad_input_errors(datasets_module: Any) -> None:
    total = make_reward_funcs("reason_gym/Arithmetic-v0")[0]
    with pytest.raises(ValueError, match=r"lacks the problem columns \['problem', 'problem_id', 'index', 'split'\]"):
        total(["q"], ["Answer: 1"], answer=["1"])
    with pytest.raises(ValueError, match="names problem 'elsewhere'"):
        total(["q"], ["Answer: 1"], index=[0], split=["train"], problem_id=["elsewhere"])
    for make in (make_reward_funcs, make_dataset):
        with pytest.raises(ValueError, match="'reason_gym/Nope-v0' is not registered"):
            make("reason_gym/Nope-v0")
    with pytest.raises(ValueError, match="limit"):
        make_dataset("reason_gym/Arithmetic-v0", limit=-1)
    # Whatever the model writes, the reward functions score it: odd objects are one empty (garbage) step.
    odd = [None, 3, b"Answer: 1", [{"role": "assistant", "content": None}], [], [{"content": "Answer: 1"}], "\ud800"]
    rewards = total([], odd, index=[0] * len(odd), split=["train"] * len(odd))
    assert rewards[:5] == [total([], [""], index=[0], split=["train"])[0]] * 5
    assert all(isinstance(r, float) for r in rewards)


def test_process_reward_funcs_sum_the_steps() -> None:
    total, outcome, invalid = process_reward_funcs(["outcome", "invalid_step"])
    steps = [[{"invalid_step": -0.1, "outcome": 0.0}, {"outcome": 1.0}], []]
    assert total([], ["", ""], step_rewards=[[-0.1, 1.0], []]) == [0.9, 0.0]
    assert outcome([], ["", ""], step_components=steps) == [1.0, 0.0]
    assert invalid([], ["", ""], step_components=steps) == [-0.1, 0.0]
    with pytest.raises(ValueError, match="step_rewards"):
        total([], [""], index=[0])


def test_no_torch_or_trl_at_import() -> None:
    code = (
        "import sys, reason_gym.integrations.trl as t\n"
        "f = t.make_reward_funcs('reason_gym/Arithmetic-v0')\n"
        "f[0]([], ['Answer: 1'], index=[0], split=['train'])\n"
        "bad = sorted(m for m in ('torch', 'trl', 'transformers', 'datasets') if m in sys.modules)\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.parametrize(
    ("text", "actions"),
    [
        ("", [""]),
        ("\n", [""]),
        ("a\nb\n", ["a", "b"]),
        ("a\n\nb", ["a", "", "b"]),
        ("  answer: 5\nrest", ["  answer: 5"]),
        ("Answer: ```python\nx = 1\n```\nrest", ["Answer: ```python\nx = 1\n```"]),
        ("Answer:\n```python\nx = 1", ["Answer:\n```python\nx = 1"]),  # an unclosed block runs to the end
        ("```python\nAnswer: 1\n```\nAnswer: 2", ["```python\nAnswer: 1\n```", "Answer: 2"]),  # not inside a block
        ("Run:\n```\nprint(1)\n```\nthen\nAnswer: 2", ["Run:\n```\nprint(1)\n```", "then", "Answer: 2"]),
    ],
)
def test_split_completion(text: str, actions: list[str]) -> None:
    assert split_completion(text) == actions


# ---------------------------------------------------------------------- bad input (the audit's table)

GAME24, ARITHMETIC, GSM8K = "reason_gym/Game24-v0", "reason_gym/Arithmetic-v0", "reason_gym/GSM8K-v0"


@pytest.mark.parametrize(
    ("env_id", "kwargs", "error"),
    [
        (ARITHMETIC, {"split": "nope", "limit": 2}, r"split must be one of \('train', 'test'\), got 'nope'"),
        (GAME24, {"source": "procedural", "split": "test", "limit": 2}, "takes no index or split.*split='test'"),
        (GAME24, {"split": "nope"}, "split must be one of"),
    ],
)
def test_make_dataset_refuses_a_split_it_cannot_honour(
    env_id: str, kwargs: dict[str, Any], error: str, datasets_module: Any
) -> None:
    with pytest.raises(ValueError, match=error):
        make_dataset(env_id, **kwargs)


@pytest.mark.parametrize(
    ("columns", "error"),
    [
        ({"index": [0.7]}, "'index' column must hold ints.*0.7.*make_dataset"),
        ({"index": [True]}, "'index' column must hold ints.*True"),
        ({"index": ["abc"]}, "'index' column must hold ints.*'abc'"),
        ({"index": [1.0]}, "'index' column must hold ints"),
        ({"index": [0], "split": [5]}, "'split' column must hold strings"),
        ({"index": [0], "problem_id": [5]}, "'problem_id' column must hold strings"),
        ({"problem": ["What is 2 + 2?"]}, "'problem' column must hold the task's problem record as a JSON object"),
        ({"problem": ["[1, 2, 3, 4]"]}, "'problem' column must hold .* JSON object"),
        ({"problem": [5]}, "'problem' column must hold .* JSON object"),
        ({"index": 0}, "column 'index' must be a list with one value per completion.*got int"),
        ({"problem": "{}"}, "column 'problem' must be a list .*got str"),
    ],
)
def test_bad_row_values_get_an_error_naming_the_column(columns: dict[str, Any], error: str) -> None:
    total = make_reward_funcs(GAME24)[0]
    with pytest.raises(ValueError, match=error):
        total([], ["Answer: 1"], **columns)


def test_rows_that_name_a_problem_are_played(datasets_module: Any) -> None:
    """The right values still play the right problem (numpy ints too)."""
    import numpy as np

    total = make_reward_funcs(GAME24)[0]
    dataset = make_dataset(GAME24, limit=2)
    right = right_answer(GAME24, json.loads(dataset["problem"][1]))
    assert total([], [right], index=[np.int64(1)], problem_id=[dataset["problem_id"][1]]) == [1.0]
    assert total([], [right], problem=[dataset["problem"][1]]) == [1.0]
    assert total([], [right], problem=[json.loads(dataset["problem"][1])]) == [1.0]


@pytest.mark.parametrize(
    ("env_id", "first", "then", "expected"),
    [
        # the problem_id check runs on every call, cached or not
        (GAME24, ([""], {"index": [0]}), (["Answer: 1"], {"index": [0], "problem_id": ["wrong"]}), "names problem"),
        (GAME24, (["Answer: 1"], {"index": [0]}), (["Answer: 1"], {"index": [0], "problem_id": ["wrong"]}), "names"),
        # a completion that is not text is one empty action; the text "\x00not text" is another action
        (GSM8K, ([None], {"index": [0]}), (["\x00not text"], {"index": [0]}), "fresh"),
        (GSM8K, (["\x00not text"], {"index": [0]}), ([None], {"index": [0]}), "fresh"),
        (GAME24, (["Answer: 1"], {"index": [0]}), (["Answer: 1"], {"index": [0], "split": ["train"]}), "fresh"),
    ],
)
def test_the_score_cache_never_changes_a_verdict(
    env_id: str, first: tuple[list[Any], dict[str, Any]], then: tuple[list[Any], dict[str, Any]], expected: str
) -> None:
    """``then`` scores (or fails) after ``first`` exactly as on a fresh scorer."""
    warm = make_reward_funcs(env_id)[0]
    warm([], first[0], **first[1])
    if expected != "fresh":
        for f in (make_reward_funcs(env_id)[0], warm):
            with pytest.raises(ValueError, match=expected):
                f([], then[0], **then[1])
        return
    assert warm([], then[0], **then[1]) == make_reward_funcs(env_id)[0]([], then[0], **then[1])
