"""MBPP (Austin et al., 2021) as a reasoning environment: write a Python function from a one-line description."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from reason_gym.checkers.program_tests import assemble_program, first_test, mbpp_entry_point, mbpp_tests
from reason_gym.core import TaskSpec, reject_unknown
from reason_gym.data import DATA_DIR_VARIABLE, DataNotFoundError, find_data_file
from reason_gym.envs.coding import ANSWER_FORMAT, FORMAT_HINT, STEP_FORMAT, CodeTaskEnv
from reason_gym.envs.humaneval import HUMANEVAL_FIELDS, validate_humaneval_record
from reason_gym.sandbox import Sandbox

MBPP_FILES = {"full": "mbpp/mbpp.jsonl", "sanitized": "mbpp/sanitized-mbpp.json"}
MBPP_HUB = "google-research-datasets/mbpp"
SPLIT_TASK_IDS: Mapping[str, range] = {"test": range(11, 511), "prompt": range(1, 11), "train": range(511, 975)}
"""MBPP's split by task id (its README): 11-510 test, 1-10 few-shot prompts, 511-974 training. The sanitized set
keeps the same ids, so its splits are the same ranges: 257 test, 7 prompt, 163 train problems (the Hugging Face
copy calls 511-600 "validation" and 601-974 "train"; here both are "train")."""


TASK = TaskSpec(
    name="mbpp",
    env_id="reason_gym/MBPP-v0",
    description="Write a Python function from a one-line description and one example test; hidden tests judge it.",
    step_format=STEP_FORMAT,
    answer_format=ANSWER_FORMAT,
)
"""What agents know about MBPP (``MBPPEnv.task``): the generic system prompt, no step checks."""


@lru_cache(maxsize=4)
def load_mbpp_file(path: str) -> tuple[dict[str, Any], ...]:
    """MBPP records from ``mbpp.jsonl`` (one per line) or ``sanitized-mbpp.json`` (one array), by task id."""
    with open(path, encoding="utf-8") as file:
        records = json.load(file) if path.endswith(".json") else [json.loads(line) for line in file if line.strip()]
    if not isinstance(records, list) or not records or not all("test_list" in r for r in records):
        raise ValueError(f"{path} is not MBPP data (records need test_list)")
    return tuple(sorted(records, key=lambda r: r["task_id"]))


def load_mbpp_hub(source: str) -> tuple[dict[str, Any], ...]:
    """MBPP from the Hugging Face hub (``datasets``, imported only here), every split, by task id."""
    try:
        import datasets
    except ImportError:
        raise DataNotFoundError("hub=True needs the datasets package: pip install 'reason-gym[datasets]'") from None
    data = datasets.load_dataset(MBPP_HUB, source)
    records = [dict(record) for split in data.values() for record in split]
    return tuple(sorted(records, key=lambda r: r["task_id"]))


def validate_mbpp_record(record: Any, prefix: str = "MBPP") -> dict[str, Any]:
    """Checks an MBPP record (``text`` or ``prompt``, ``test_list``, optional ``test_setup_code`` and
    ``test_imports``) or a HumanEval-format one, and adds what the environment needs.

    Raises:
        ValueError: Neither format, or tests that do not parse or call no function.
    """
    if isinstance(record, Mapping) and all(isinstance(record.get(k), str) for k in HUMANEVAL_FIELDS):
        return {**validate_humaneval_record(record), "style": "humaneval"}
    tests_given = isinstance(record, Mapping) and isinstance(record.get("test_list"), list)
    text = (record.get("text") or record.get("prompt")) if tests_given else None
    if not tests_given or not isinstance(text, str) or not record["test_list"]:
        raise ValueError(
            "an MBPP problem is {'text': str, 'test_list': [assert statements], 'test_setup_code': str (optional)} "
            "or HumanEval's {'task_id', 'prompt', 'entry_point', 'test'}"
        )
    test_list = record["test_list"]
    if not all(isinstance(t, str) for t in test_list):
        raise ValueError("test_list must hold assert statements as strings")
    entry_point = mbpp_entry_point(test_list)
    setup, imports = str(record.get("test_setup_code") or ""), list(record.get("test_imports") or [])
    tests = mbpp_tests(test_list, setup, imports, entry_point)
    task_id = record.get("task_id", "injected")
    return {
        **record,
        "task_id": f"{prefix}/{task_id}",
        "text": text,
        "entry_point": entry_point,
        "tests": tests,
        "examples": first_test(tests),
        "visible_test": test_list[0].strip(),
        "style": "mbpp",
    }


class MBPPEnv(CodeTaskEnv):
    """Write a Python function from a one-line description and one example test; hidden tests judge it.

    ## Description
    Mostly Basic Python Problems: 974 crowd-sourced problems (``source="full"``) or the 427 hand-verified ones
    (``source="sanitized"``). The question is the description and the first of the problem's tests; ``Run:``
    steps run a program against that test in the sandbox (its output, traceback and verdict become the next
    observation); the final answer is judged on every test of ``test_list`` (the first included), each reported
    separately. ``challenge_test_list`` is not used (as in MBPP's standard evaluation).

    ## Action Space
    Text: a thought, ``Run:`` followed by a ```` ```python ```` block, or ``Answer:`` followed by a
    ```` ```python ```` block with the whole program (it must define the function the tests call).

    ## Observation Space
    Text: the question, then each accepted step; a run step shows its program, its result, the example's verdict
    and the program's output, cut to ``max_step_chars``.

    ## Rewards
    - ``outcome`` (1.0): 1 when every test passes;
    - ``tests_passed`` (0.0, so off): the fraction of tests passed (partial credit);
    - ``invalid_step`` (-0.1): a ``Run:`` step without a program, or an over-long action;
    - ``prm`` (1.0): a process reward model's score of the step, when ``prm=`` is given.

    ## Episode End
    Terminated at the final answer (``info["is_correct"]``, ``info["tests"]``); truncated after ``max_steps``
    actions. Every step's ``info["status"]`` says what became of it.

    ## Arguments
    - ``split``: ``"test"`` (default; task ids 11-510), ``"prompt"`` (1-10), ``"train"`` (511-974) or ``"all"``;
      the sanitized set keeps the same ranges (257 / 7 / 163 problems).
    - ``source``: ``"full"`` (default) or ``"sanitized"``.
    - ``data_path``: the data file; else ``REASON_GYM_DATA_DIR/mbpp/mbpp.jsonl`` or ``.../sanitized-mbpp.json``.
    - ``hub``: load from the Hugging Face hub (``google-research-datasets/mbpp``, needs ``datasets`` and a
      network) instead of a file.
    - ``timeout`` (5.0): wall-clock seconds of each run, tests included.
    - ``sandbox``: a :class:`~reason_gym.sandbox.Sandbox` (default: the process-wide one).
    - ``max_steps`` (8), ``reward_weights``, ``prm``, ``render_mode``: see :class:`~reason_gym.core.ReasoningEnv`.

    ## Version History
    - v0: initial version.
    """

    splits = ("test", "prompt", "train", "all")
    task = TASK

    def __init__(
        self,
        *,
        split: str = "test",
        source: str = "full",
        data_path: str | Path | None = None,
        hub: bool = False,
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
        if source not in MBPP_FILES:
            raise ValueError(f"source must be 'full' or 'sanitized', got {source!r}")
        if split not in self.splits:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}")
        if hub and data_path is not None:
            raise ValueError("pass either data_path= or hub=True, not both")
        self.split, self.source = split, source
        self._prefix = "MBPP" if source == "full" else "MBPP-sanitized"
        self._records = self._load(source, data_path, hub)
        ids = [record["task_id"] for record in self._records]
        self._split_rows: dict[str, Sequence[int]] = {
            name: [i for i, task_id in enumerate(ids) if task_id in task_ids]
            for name, task_ids in SPLIT_TASK_IDS.items()
        }
        self._split_rows["all"] = range(len(ids))
        self._validated: dict[int, Mapping[str, Any]] = {}

    @staticmethod
    def _load(source: str, data_path: str | Path | None, hub: bool) -> tuple[dict[str, Any], ...]:
        if hub:
            return load_mbpp_hub(source)
        path = find_data_file(MBPP_FILES[source], explicit=data_path)
        if path is None:
            raise DataNotFoundError(
                f"MBPP ({source}) data not found: set {DATA_DIR_VARIABLE} to a folder holding {MBPP_FILES[source]} "
                "(layout: mbpp/mbpp.jsonl, mbpp/sanitized-mbpp.json), pass data_path=, or hub=True (needs the "
                "datasets package and a network)"
            )
        return load_mbpp_file(str(path))

    def split_indices(self, split: str | None = None) -> Sequence[int]:
        """Positions (in task-id order) of the split's problems."""
        split = split or self.split
        if split not in self._split_rows:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}")
        return self._split_rows[split]

    def _choose_problem(self, index: int | None, split: str | None) -> Mapping[str, Any]:
        rows = self.split_indices(split)
        if index is None:
            index = int(self.np_random.integers(len(rows)))
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(rows):
            raise ValueError(f"index must be an int in [0, {len(rows)}) for split {split or self.split!r}")
        row = rows[index]
        if row not in self._validated:  # suites are built once per problem, not at every reset
            self._validated[row] = validate_mbpp_record(self._records[row], self._prefix)
        return self._validated[row]

    def _validate_problem(self, record: Any) -> Mapping[str, Any]:
        """Accepts MBPP's record format or HumanEval's (``task_id``, ``prompt``, ``entry_point``, ``test``)."""
        return validate_mbpp_record(record, self._prefix)

    def _question(self, problem: Mapping[str, Any]) -> str:
        if problem["style"] == "humaneval":
            head = f"{problem['task_id']}: complete the function `{problem['entry_point']}`. {FORMAT_HINT}"
            return f"{head}\n\n{problem['prompt'].strip()}"
        example = problem["visible_test"]
        return (
            f"{problem['task_id']}: {problem['text'].strip()}\n"
            f"Your function `{problem['entry_point']}` must pass tests like this one:\n{example}\n{FORMAT_HINT}"
        )

    def _problem_id(self, problem: Mapping[str, Any]) -> str:
        return str(problem["task_id"])

    def _program(self, problem: Mapping[str, Any], code: str) -> str:
        if problem["style"] == "humaneval":
            return assemble_program(code, problem["prompt"], problem["entry_point"])
        return code
