"""The environment contract on GSM8K and MATH: data sources, spaces, options, rewards, branching, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import reason_gym  # noqa: F401  (registers the environments)
from reason_gym import data
from reason_gym.data import DataNotFoundError, find_data_file
from reason_gym.envs import math_base
from reason_gym.envs.competition_math import CompetitionMathEnv
from reason_gym.envs.gsm8k import GSM8KEnv
from reason_gym.envs.math_base import normalize_spaces

GSM8K_RECORDS = [
    {
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
        "How many clips did Natalia sell altogether in April and May?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
        "altogether in April and May.\n#### 72",
    },
    {
        "question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
        "How much did she earn?",
        "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = "
        "$<<0.2*50=10>>10.\n#### 10",
    },
    {"question": "A shop sells 1,200 pens a day for 30 days.\u00a0How many pens is that?", "answer": "#### 36,000"},
]
MATH_RECORDS = [
    {
        "problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?",
        "solution": "We have $\\frac{1}{2} + \\frac{1}{4} = \\frac{2}{4} + \\frac{1}{4} = \\boxed{\\frac{3}{4}}$.",
        "level": "Level 1",
        "type": "Prealgebra",
    },
    {
        "problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.",
        "solution": "... so the polar coordinates are $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}.$",
        "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
        "unique_id": "test/precalculus/807.json",
    },
    {"problem": "Find $x$ if $x^2 = 2$ and $x > 0$.", "solution": "$x = \\boxed{\\sqrt{2}}$."},
]


def write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return str(path)


@pytest.fixture
def gsm8k_file(tmp_path):
    return write_jsonl(tmp_path / "gsm8k.jsonl", GSM8K_RECORDS)


@pytest.fixture
def math_file(tmp_path):
    return write_jsonl(tmp_path / "math.jsonl", MATH_RECORDS)


@pytest.fixture(params=["gsm8k", "math"])
def make(request, gsm8k_file, math_file):
    """A factory of either env on the small records above (no data set needed)."""
    if request.param == "gsm8k":
        return lambda **kwargs: GSM8KEnv(data_path=gsm8k_file, **kwargs)
    return lambda **kwargs: CompetitionMathEnv(data_path=math_file, **kwargs)


# (env, index, a right answer, a wrong answer, a true step, a false step)
EPISODES = {
    GSM8KEnv: (0, "Answer: 72", "Answer: 73", "In May she sold 48/2 = 24 clips.", "48 + 24 = 82 clips."),
    CompetitionMathEnv: (0, "Answer: $0.75$", "Answer: \\frac{2}{3}", "$\\frac{2}{4} = 0.5$", "$1 + 1 = 3$"),
}


def started(make, **kwargs):
    env = make(**kwargs)
    env.reset(seed=0, options={"index": 0})
    return env


@pytest.mark.parametrize("render_mode", [None, "ansi"])
def test_check_env_passes(make, render_mode):
    env = make(render_mode=render_mode)
    env_id = "reason_gym/GSM8K-v0" if isinstance(env, GSM8KEnv) else "reason_gym/MATH-v0"
    check_env(gym.make(env_id, data_path=env.data_path, render_mode=render_mode).unwrapped, skip_render_check=False)


def test_a_full_episode(make):
    env = make()
    index, right, _, step, _ = EPISODES[type(env)]
    obs, info = env.reset(options={"index": index})
    assert info == {"problem_id": f"{env.name}/test/{index}"}
    obs, reward, terminated, truncated, info = env.step(step)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["reward_components"] == {"outcome": 0.0, "invalid_step": 0.0}  # step_check is off by default
    obs, reward, terminated, truncated, info = env.step(right)
    assert (reward, terminated, truncated, info["is_correct"]) == (1.0, True, False, True)
    assert obs.endswith(f"\n{step}\n{right}") and env.observation_space.contains(obs)
    with pytest.raises(gym.error.ResetNeeded):
        env.step("more")


def test_a_wrong_answer_terminates_with_no_reward_and_says_why(make):
    env = started(make)
    _, reward, terminated, _, info = env.step(EPISODES[type(env)][2])
    assert terminated and reward == 0.0 and info["is_correct"] is False
    assert info["error"] == "not equal to the reference answer" or "not equivalent" in info["error"]


def test_an_empty_step_is_invalid_and_changes_nothing(make):
    env = started(make)
    before = env.get_state()
    obs, reward, terminated, truncated, info = env.step("   ")
    assert reward == pytest.approx(-0.1) and info["reward_components"]["invalid_step"] == 1.0
    assert info["error"] == "an empty step" and obs == before.observation
    assert (terminated, truncated) == (False, False)


def test_truncated_only_at_the_step_limit_and_terminated_only_at_an_answer(make):
    env = make(max_steps=3)
    env.reset(options={"index": 0})
    assert [env.step("thinking")[2:4] for _ in range(3)] == [(False, False), (False, False), (False, True)]
    env.reset(options={"index": 0})
    env.step("thinking")
    env.step("thinking")
    assert env.step(EPISODES[type(env)][1])[2:4] == (True, False)  # an answer at the limit terminates


ANY_ACTIONS = [
    "",
    "\x00\x01",
    "🙂" * 50,
    "\ud800",
    "Answer:",
    "Answer: 🙂\nmore lines\r\n",
    "answer: 72",
    "ANSWER:" + "9" * 100_000,
    "x" * 1_000_000,
    "Answer: " + "\\frac{" * 2000,
    "Answer: " + "{" * 900,
    "__import__('os').system('echo pwned')",
    "Answer: __import__('os').system('echo pwned')",
    "1e308 * 1e308 = inf",
    "9^9^9 = 1",
    "Answer: $$$$",
    "Answer: \\boxed{",
]


@pytest.mark.parametrize("action", ANY_ACTIONS)
def test_any_action_string_gets_a_float_reward_and_a_valid_observation(make, action):
    env = started(make, reward_weights={"step_check": 0.1})
    start = time.monotonic()
    obs, reward, terminated, _, info = env.step(action)
    assert time.monotonic() - start < 5.0
    assert isinstance(reward, float) and env.observation_space.contains(obs)
    assert terminated == action.lower().startswith("answer:")
    assert not info.get("is_correct", False) or action == "answer: 72"


@pytest.mark.slow
@pytest.mark.parametrize("answer", ["9^{9^{9}}", "(10^{100})!", "\\frac{" * 120 + "1" + "}{2}" * 120])
def test_pathological_answers_are_judged_wrong_in_bounded_time(make, answer):
    env = started(make)
    env.step("Answer: \\boxed{x+1}")  # start the checker's worker outside the timing
    env.reset(options={"index": 0})
    start = time.monotonic()
    _, reward, terminated, _, info = env.step(f"Answer: \\boxed{{{answer}}}")
    assert time.monotonic() - start < 5.0
    assert terminated and reward == 0.0 and not info["is_correct"]


def test_non_string_actions_raise_type_error(make):
    with pytest.raises(TypeError, match="an action is a str"):
        started(make).step(42)


def test_seeding_is_deterministic(make):
    def problems(seed: int) -> list[str]:
        env = make()
        first = env.reset(seed=seed)[1]["problem_id"]
        return [first] + [env.reset()[1]["problem_id"] for _ in range(20)]

    assert problems(3) == problems(3)
    assert problems(3) != problems(4)


def test_step_check_scores_the_arithmetic_a_step_states(make):
    env = started(make, reward_weights={"step_check": 0.5})
    _, _, _, true_step, false_step = EPISODES[type(env)]
    _, reward, _, _, info = env.step(true_step)
    assert info["reward_components"]["step_check"] == 1.0 and reward == 0.5
    _, reward, _, _, info = env.step(false_step)
    assert info["reward_components"]["step_check"] == 0.0 and reward == 0.0
    _, _, _, _, info = env.step("Let us think about the question.")
    assert "step_check" not in info["reward_components"]  # a step that claims nothing


@pytest.mark.parametrize(
    ("step", "component"),
    [
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.", 1.0),  # GSM8K calculator annotations
        ("Natalia sold 48/2 = <<48/2=25>>25 clips in May.", 0.0),
        ("She earned 0.2 x 50 = $10.", 1.0),
        ("$5 \\times 3 = 15$ and $48 \\div 2 = 24$", 1.0),
        ("2 + 2 = 4 and 3 + 3 = 7", 0.0),  # one false claim is enough
        ("1/3 = 0.33", 0.0),  # exact, not rounded
        ("Let x + 2 = 5, so x = 3.", None),  # algebra claims nothing checkable
    ],
)
def test_step_check_table(gsm8k_file, step, component):
    env = GSM8KEnv(data_path=gsm8k_file, reward_weights={"step_check": 1.0})
    env.reset(options={"index": 0})
    assert env.step(step)[4]["reward_components"].get("step_check") == component


def test_a_prm_scores_each_accepted_step(make):
    calls = []

    def toy_prm(question: str, steps: list[str]) -> list[float]:
        calls.append((question, list(steps)))
        return [1.0 if "=" in step else 0.25 for step in steps]

    env = started(make, prm=toy_prm, reward_weights={"prm": 2.0})
    _, reward, _, _, info = env.step("2 + 2 = 4")
    assert info["reward_components"]["prm"] == 1.0 and reward == 2.0
    _, reward, _, _, info = env.step("so the answer follows")
    assert info["reward_components"]["prm"] == 0.25 and reward == 0.5
    env.step("")  # rejected steps are not scored
    assert [steps for _, steps in calls] == [["2 + 2 = 4"], ["2 + 2 = 4", "so the answer follows"]]
    assert calls[0][0] == env.get_state().question


def test_render_ansi_shows_the_state_and_the_reward(make):
    env = started(make, render_mode="ansi")
    env.step("")
    text = env.render()
    assert env.get_state().question in text and "[step 1/20]" in text and "invalid_step=1" in text


def test_injected_gsm8k_problems_use_the_data_set_format(gsm8k_file):
    env = GSM8KEnv(data_path=gsm8k_file)
    record = {"question": "What is 6 times 7?", "answer": "6 * 7 = 42\n#### 42"}
    obs, info = env.reset(options={"problem": record})
    assert obs == "What is 6 times 7?" and info["problem_id"].startswith("gsm8k/injected/")
    assert env.reset(options={"problem": dict(record)})[1] == info  # the id is stable
    assert env.step("Answer: \\boxed{42}")[4]["is_correct"]
    env.reset(options={"index": 2})
    problem = env.get_state().problem
    assert env.reset(options={"problem": problem})[1]["problem_id"] == "gsm8k/test/2"  # re-injected: same id
    assert env.step("Answer: 36000")[4]["is_correct"]


def test_injected_math_problems_use_the_data_set_format(math_file):
    env = CompetitionMathEnv(data_path=math_file)
    env.reset(options={"problem": {"problem": "Simplify $\\sqrt{12}$.", "solution": "$\\boxed{2\\sqrt{3}}$"}})
    assert env.step("Answer: $\\sqrt{4 \\cdot 3}$")[4]["is_correct"]
    # the answer field wins over the solution's box (MATH-500 records have both)
    env.reset(options={"problem": {"problem": "p", "solution": "\\boxed{1}", "answer": "2"}})
    assert env.step("Answer: 2")[4]["is_correct"]


@pytest.mark.parametrize(
    ("claimed", "kept"),
    [
        ("gsm8k/test/0", False),  # another row's id
        ("gsm8k/test/2", True),  # its own row: kept
        ("gsm8k/test/2/x", False),
        ("gsm8k/test/02x", False),
        ("gsm8k/test/99", False),  # no such row
        ("gsm8k/train/2", False),  # a split this env cannot load (data_path is test's)
        ("math/test/2", False),
        ("anything", False),
    ],
)
def test_an_injected_record_cannot_claim_another_problems_id(gsm8k_file, claimed, kept):
    env = GSM8KEnv(data_path=gsm8k_file)
    env.reset(options={"index": 2})
    row = env.get_state().problem
    unrelated = {"question": "q", "answer": "#### 5", "problem_id": claimed}
    injected = env.reset(options={"problem": {k: v for k, v in unrelated.items() if k != "problem_id"}})[1]
    assert env.reset(options={"problem": unrelated})[1] == injected  # never the claimed id
    expected = claimed if kept else env.reset(options={"problem": {**row, "problem_id": "x"}})[1]["problem_id"]
    assert env.reset(options={"problem": {**row, "problem_id": claimed}})[1]["problem_id"] == expected
    assert expected.startswith("gsm8k/injected/") != kept


@pytest.mark.parametrize(
    ("record", "gold"),
    [
        ({"problem": "p", "answer": 5}, "5"),
        ({"problem": "p", "answer": "5", "solution": "\\boxed{6}"}, "5"),
        ({"problem": "p", "answer": None, "solution": "\\boxed{6}"}, "6"),
    ],
)
def test_math_answers_given_as_numbers(math_file, record, gold):
    env = CompetitionMathEnv(data_path=math_file)
    env.reset(options={"problem": record})
    assert env.get_state().problem["gold"] == gold


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"index": 3}, r"index must be an int in \[0, 3\)"),
        ({"split": "train"}, "only split 'test' is available"),
        ({"problem": {"question": "q"}, "index": 0}, "cannot be combined"),
        ({"problem": "What is 2 + 2?"}, "problem is"),
        ({"problem": {}}, "must be a non-empty string"),
    ],
)
def test_bad_reset_options_raise_value_errors_that_say_what_is_accepted(make, options, message):
    with pytest.raises(ValueError, match=message):
        make().reset(options=options)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"question": "q", "answer": "42"}, "no '#### <final answer>'"),
        ({"question": "q", "answer": "#### "}, "no '#### <final answer>'"),
        ({"question": "", "answer": "#### 1"}, "'question' must be a non-empty string"),
        ({"question": "q", "answer": 42}, "'answer' must be a non-empty string"),
    ],
)
def test_bad_gsm8k_records(gsm8k_file, record, message):
    with pytest.raises(ValueError, match=message):
        GSM8KEnv(data_path=gsm8k_file).reset(options={"problem": record})


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"problem": "p", "solution": "no box"}, "no reference answer"),
        ({"problem": "p", "solution": "\\boxed{}"}, "no reference answer"),
        ({"problem": "p"}, "no reference answer"),
        ({"question": "p", "answer": "1"}, "'problem' must be a non-empty string"),
        ({"problem": "p", "answer": 1.5}, "'answer' must be a string"),
        ({"problem": "p", "answer": True}, "'answer' must be a string"),
        ({"problem": "p", "answer": [5]}, "'answer' must be a string"),
    ],
)
def test_bad_math_records(math_file, record, message):
    with pytest.raises(ValueError, match=message):
        CompetitionMathEnv(data_path=math_file).reset(options={"problem": record})


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        ("reason_gym/GSM8K-v0", {"colour": "red"}, r"unknown keyword argument \['colour'\]; accepted: \["),
        ("reason_gym/GSM8K-v0", {"split": "validation"}, r"split must be one of \('train', 'test'\)"),
        ("reason_gym/GSM8K-v0", {"subset": "math500"}, "unknown keyword argument"),
        ("reason_gym/GSM8K-v0", {"max_steps": 0}, "max_steps must be a positive int"),
        ("reason_gym/GSM8K-v0", {"reward_weights": {"speed": 1.0}}, "unknown reward component"),
        ("reason_gym/GSM8K-v0", {"prm": "a model"}, "prm must be a callable"),
        ("reason_gym/GSM8K-v0", {"render_mode": "human"}, "render_mode must be"),
        ("reason_gym/MATH-v0", {"subset": "hard"}, r"subset must be one of \('math', 'math500'\)"),
        ("reason_gym/MATH-v0", {"subset": "math500", "split": "train"}, r"split must be one of \('test',\)"),
        ("reason_gym/MATH-v0", {"level": 5}, "unknown keyword argument"),
    ],
)
def test_bad_constructor_arguments_raise_value_errors(gsm8k_file, env_id, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make(env_id, data_path=gsm8k_file, **kwargs)


def test_bad_data_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        GSM8KEnv(data_path=tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\nnot json\n')
    with pytest.raises(ValueError, match="line 2: not JSON"):
        GSM8KEnv(data_path=bad)
    bad.write_text('{"question": "q", "answer": "no marker"}\n')
    with pytest.raises(ValueError, match="record 0: the answer has no"):
        GSM8KEnv(data_path=bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="holds no records"):
        GSM8KEnv(data_path=empty)
    array = tmp_path / "records.json"
    array.write_text(json.dumps(GSM8K_RECORDS))
    assert len(GSM8KEnv(data_path=array).split_indices()) == 3


# ------------------------------------------------------------------ data sources


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No REASON_GYM_DATA_DIR data and no datasets package."""
    monkeypatch.setenv("REASON_GYM_DATA_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "datasets", None)  # find_spec("datasets") is None, import fails
    data.load_hub_records.cache_clear()


@pytest.mark.parametrize(
    ("cls", "kwargs", "file"),
    [
        (GSM8KEnv, {}, "gsm8k/test.jsonl"),
        (GSM8KEnv, {"split": "train"}, "gsm8k/train.jsonl"),
        (CompetitionMathEnv, {}, "math/test.jsonl"),
        (CompetitionMathEnv, {"subset": "math500"}, "math500/test.jsonl"),
    ],
)
def test_missing_data_is_a_clear_error_at_construction(offline, cls, kwargs, file):
    with pytest.raises(DataNotFoundError) as error:
        cls(**kwargs)
    message = str(error.value)
    assert "REASON_GYM_DATA_DIR" in message and file in message and math_base.LAYOUT in message
    assert "datasets package is not installed" in message and "data_path=" in message


def test_the_data_dir_layout_is_read(monkeypatch, tmp_path):
    (tmp_path / "gsm8k").mkdir()
    write_jsonl(tmp_path / "gsm8k" / "test.jsonl", GSM8K_RECORDS)
    write_jsonl(tmp_path / "gsm8k" / "train.jsonl", GSM8K_RECORDS[:1])
    monkeypatch.setenv("REASON_GYM_DATA_DIR", str(tmp_path))
    env = GSM8KEnv()
    assert env.data_sources == {"test": str(tmp_path / "gsm8k" / "test.jsonl")}
    assert env.reset(options={"split": "train"})[1]["problem_id"] == "gsm8k/train/0"  # loaded on first use
    assert len(env.split_indices("train")) == 1 and len(env.split_indices()) == 3


class FakeDatasets(types.ModuleType):
    """Stands in for the datasets package: records its calls, serves records or raises."""

    def __init__(self, records=None, error=None):
        super().__init__("datasets")
        self.records, self.error, self.calls = records, error, []

    def load_dataset(self, path, name=None, *, split):
        self.calls.append((path, name, split))
        if self.error:
            raise self.error
        return self.records


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("REASON_GYM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("REASON_GYM_ALLOW_HUB", "1")  # the hub is used only where the user allows it
    find_spec = data.importlib.util.find_spec
    monkeypatch.setattr(
        data.importlib.util, "find_spec", lambda name, *a: object() if name == "datasets" else find_spec(name, *a)
    )
    data.load_hub_records.cache_clear()

    def install(**kwargs):
        module = FakeDatasets(**kwargs)
        monkeypatch.setitem(sys.modules, "datasets", module)
        return module

    yield install
    data.load_hub_records.cache_clear()


@pytest.mark.parametrize(
    ("cls", "kwargs", "records", "call"),
    [
        (GSM8KEnv, {"split": "train"}, GSM8K_RECORDS, ("openai/gsm8k", "main", "train")),
        (CompetitionMathEnv, {}, MATH_RECORDS, ("DigitalLearningGmbH/MATH-lighteval", None, "test")),
        (CompetitionMathEnv, {"split": "train"}, MATH_RECORDS, ("DigitalLearningGmbH/MATH-lighteval", None, "train")),
        (CompetitionMathEnv, {"subset": "math500"}, MATH_RECORDS, ("HuggingFaceH4/MATH-500", None, "test")),
    ],
)
def test_the_hub_is_the_last_resort(fake_hub, cls, kwargs, records, call):
    hub = fake_hub(records=records)
    env = cls(**kwargs)
    assert hub.calls == [call]
    assert env.data_sources[env.split] == f"hf://{call[0]}"
    assert len(env.split_indices()) == len(records)


def test_the_hub_is_used_only_where_the_user_allows_it(fake_hub, monkeypatch):
    hub = fake_hub(records=GSM8K_RECORDS)
    monkeypatch.delenv("REASON_GYM_ALLOW_HUB")
    with pytest.raises(DataNotFoundError, match="not allowed: pass allow_hub=True or set REASON_GYM_ALLOW_HUB=1"):
        GSM8KEnv()
    assert hub.calls == []
    assert GSM8KEnv(allow_hub=True).data_sources["test"] == "hf://openai/gsm8k"


def test_hub_failures_and_offline_mode_are_clear_errors(fake_hub, monkeypatch):
    fake_hub(error=ConnectionError("no route to huggingface.co"))
    with pytest.raises(DataNotFoundError, match="loading it failed: ConnectionError: no route"):
        GSM8KEnv()
    hub = fake_hub(records=GSM8K_RECORDS)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match="HF_HUB_OFFLINE is set"):
        GSM8KEnv()
    assert hub.calls == []


# ------------------------------------------------------------------ the real data sets


def _need(relative: str) -> None:
    if find_data_file(relative) is None:
        pytest.skip(f"needs {relative} under REASON_GYM_DATA_DIR (see shared/data/README.md)")


@pytest.mark.parametrize(
    ("env_id", "kwargs", "file", "sizes"),
    [
        ("reason_gym/GSM8K-v0", {}, "gsm8k/test.jsonl", {"test": 1319, "train": 7473}),
        ("reason_gym/MATH-v0", {}, "math/test.jsonl", {"test": 5000}),
        ("reason_gym/MATH-v0", {"subset": "math500"}, "math500/test.jsonl", {"test": 500}),
    ],
)
def test_the_real_data_sets(env_id, kwargs, file, sizes):
    _need(file)
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    for split, size in sizes.items():
        assert len(env.unwrapped.split_indices(split)) == size
    assert env.unwrapped.data_sources["test"].endswith(file)


@pytest.mark.parametrize(("cls", "split", "key"), [(GSM8KEnv, "test", "question"), (GSM8KEnv, "train", "question")])
def test_every_gsm8k_question_is_shown_as_written(cls, split, key):
    _need(f"gsm8k/{split}.jsonl")
    env = cls(split=split)
    for index in env.split_indices():
        obs, _ = env.reset(options={"index": index})
        assert obs == normalize_spaces(env.get_state().problem[key]).replace("\r", "")


def test_every_math_problem_is_shown_as_written():
    _need("math/test.jsonl")
    env = CompetitionMathEnv()
    for index in env.split_indices():
        obs, _ = env.reset(options={"index": index})
        assert obs == env.get_state().problem["problem"].replace("\r", "")


def test_gsm8k_test_gold_answers_win_through_the_env():
    _need("gsm8k/test.jsonl")
    env = GSM8KEnv()
    for index in range(0, 1319, 37):
        env.reset(options={"index": index})
        gold = env.get_state().problem["gold"]
        assert env.step(f"Answer: {gold}")[1] == 1.0


# ------------------------------------------------------------------ registration and vector envs


def test_make_with_the_module_prefix_needs_no_import_and_no_torch():
    _need("gsm8k/test.jsonl")
    code = (
        "import gymnasium as gym, sys\n"
        "env = gym.make('reason_gym:reason_gym/GSM8K-v0')\n"
        "print(env.reset(seed=0)[1]['problem_id'])\n"
        "env.step('Answer: \\\\boxed{x + 1}')\n"  # starts the math-verify worker too
        "assert 'torch' not in sys.modules, 'reason_gym must not import torch'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("gsm8k/test/")


@pytest.mark.parametrize(
    ("mode", "answers", "rewards"),
    [  # answers new to this process (no cached verdicts), judged by math-verify in each sub-env's own worker
        ("sync", ["Answer: \\frac{2}{\\sqrt{2}}", "Answer: \\boxed{\\sqrt{3}}"], [1.0, 0.0]),
        ("async", ["Answer: \\frac{4}{2\\sqrt{2}}", "Answer: \\boxed{2\\sqrt{3}}"], [1.0, 0.0]),
        pytest.param(
            "async", ["Answer: \\sqrt{8}/2", "Answer: \\boxed{8^{8^{8}}}"], [1.0, 0.0], marks=pytest.mark.slow
        ),
    ],
)
def test_vector_envs_check_answers_in_their_workers(math_file, mode, answers, rewards):
    vector_kwargs = {"shared_memory": False} if mode == "async" else {}
    envs = gym.make_vec(
        "reason_gym/MATH-v0", num_envs=2, vectorization_mode=mode, vector_kwargs=vector_kwargs, data_path=math_file
    )
    try:
        envs.reset(seed=[1, 2], options={"index": 2})  # sqrt(2): a symbolic answer, judged by math-verify
        start = time.monotonic()
        _, reward, terminated, _, infos = envs.step(answers)
        assert time.monotonic() - start < 15  # includes starting each worker's math-verify process
        assert terminated.all() and reward.tolist() == rewards and reward.dtype == np.float64
        assert infos["is_correct"].tolist() == [r == 1.0 for r in rewards]
    finally:
        envs.close()
