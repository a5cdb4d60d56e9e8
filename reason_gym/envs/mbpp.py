"""MBPP (Austin et al., 2021) as a reasoning environment: write a Python function from a one-line description."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from reason_gym.checkers.program_tests import assemble_program, first_test, mbpp_entry_point, mbpp_tests
from reason_gym.core import TaskSpec
from reason_gym.data import DataSource, Records, cached_file_loader, read_json_records
from reason_gym.envs.coding import ANSWER_FORMAT, FORMAT_HINT, STEP_FORMAT, CodeTaskEnv
from reason_gym.envs.humaneval import HUMANEVAL_FIELDS, check_unique_ids, validate_humaneval_record
from reason_gym.parse import parse_python

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


@cached_file_loader(maxsize=4)
def load_mbpp_file(path: str) -> tuple[dict[str, Any], ...]:
    """MBPP records from ``mbpp.jsonl`` (one per line) or ``sanitized-mbpp.json`` (one array), by task id.

    In a data file every record needs a ``task_id`` (the splits are ranges of MBPP's int ids): an int or a
    non-empty string, unique in the file. Records are ordered by task id: ints by value, then strings.

    Raises:
        ValueError: The file is not UTF-8 JSON(L), a record is not an object, lacks ``test_list`` or a valid
            ``task_id``, or two records share a task id; the message names the path and the record or line.
    """
    records = read_json_records(path)
    if not records:
        raise ValueError(f"{path} holds no MBPP records")
    for number, record in enumerate(records, 1):
        if "test_list" not in record:
            raise ValueError(f"{path}, record {number}: not MBPP data (records need test_list)")
        _check_file_task_id(record, path, number)
    check_unique_ids(path, (_bare_id(record["task_id"]) for record in records))
    return tuple(sorted(records, key=task_id_order))


def _bare_id(task_id: int | str) -> str:
    """A task id without the problem-id prefix (1, "1" and "MBPP/1" are the same problem)."""
    return str(task_id).removeprefix("MBPP/").removeprefix("MBPP-sanitized/")


def task_id_order(record: Mapping[str, Any]) -> tuple[bool, Any]:
    """The sort key of a record by task id: int ids by value, then string ids (so mixed ids still sort)."""
    task_id = record["task_id"]
    return isinstance(task_id, str), task_id


def _check_file_task_id(record: Mapping[str, Any], path: str, number: int) -> None:
    task_id = record.get("task_id")
    if isinstance(task_id, bool) or not isinstance(task_id, (int, str)) or task_id == "":
        got = "none" if "task_id" not in record else repr(task_id)
        raise ValueError(
            f"{path}, record {number}: a record in a data file needs a task_id, an int or a non-empty string; got {got}"
        )


MBPP_FORMAT = (
    "an MBPP problem is {'text': str, 'test_list': [assert statements], 'test_setup_code': str (optional), "
    "'test_imports': [import statements] (optional), 'task_id': int or str (required in a data file, optional in "
    "a problem given to reset)} or HumanEval's {'task_id', 'prompt', 'entry_point', 'test'}"
)


def validate_mbpp_record(record: Any, prefix: str = "MBPP") -> dict[str, Any]:
    """Checks an MBPP record (``text`` or ``prompt``, ``test_list``, optional ``test_setup_code``,
    ``test_imports`` and ``task_id``) or a HumanEval-format one, and adds what the environment needs.

    Raises:
        ValueError: Neither format, a field of the wrong type (the message names it and the type expected), or
            code that does not parse, or tests that call no function.
    """
    if isinstance(record, Mapping) and all(isinstance(record.get(k), str) for k in HUMANEVAL_FIELDS):
        return {**validate_humaneval_record(record), "style": "humaneval"}
    if not isinstance(record, Mapping) or "test_list" not in record:
        raise ValueError(MBPP_FORMAT)
    text = _description(record)
    test_list = _code_list(record, "test_list", "assert statements", required=True)
    imports = _code_list(record, "test_imports", "import statements")
    setup = record.get("test_setup_code") or ""
    if not isinstance(setup, str):
        raise ValueError(f"'test_setup_code' must be a string of code, got {type(setup).__name__}; {MBPP_FORMAT}")
    _check_parses("test_setup_code", setup)
    entry_point = mbpp_entry_point(test_list)
    tests = mbpp_tests(test_list, setup, imports, entry_point)
    return {
        **record,
        "task_id": _task_id(record, prefix),
        "text": text,
        "entry_point": entry_point,
        "tests": tests,
        "examples": first_test(tests),
        "visible_test": test_list[0].strip(),
        "style": "mbpp",
    }


def _description(record: Mapping[str, Any]) -> str:
    text = record.get("text") or record.get("prompt")
    if not isinstance(text, str):
        raise ValueError(f"'text' (or 'prompt') must be a string, the problem's description; {MBPP_FORMAT}")
    return text


def _code_list(record: Mapping[str, Any], name: str, what: str, *, required: bool = False) -> list[str]:
    """The field ``name``: a list of strings, each parsing as Python (absent or None: empty, unless required)."""
    value = record.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, (list, tuple)) or (required and not value):
        kind = "a non-empty list" if required else "a list"
        raise ValueError(f"{name!r} must be {kind} of {what} (strings), got {value!r}")
    for number, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"{name!r} must be a list of {what} (strings); item {number} is {type(item).__name__}")
        _check_parses(f"{name}[{number}]", item)
    return list(value)


def _check_parses(name: str, code: str) -> None:
    try:
        parse_python(code)
    except (SyntaxError, ValueError) as error:
        raise ValueError(f"{name} is not valid Python: {error}") from None


def _task_id(record: Mapping[str, Any], prefix: str) -> str:
    task_id = record.get("task_id", "injected")
    if isinstance(task_id, bool) or not isinstance(task_id, (int, str)) or task_id == "":
        raise ValueError(f"'task_id' must be an int or a non-empty string, got {task_id!r}")
    task_id = str(task_id)
    if not task_id.startswith(f"{prefix}/"):  # a record this function returned already carries the prefix
        task_id = f"{prefix}/{task_id}"
    return task_id


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
    - ``allow_hub`` (False): with no local file, load from the Hugging Face hub (``google-research-datasets/mbpp``,
      every split; needs ``datasets`` and a network), as every data-backed env does (see :mod:`reason_gym.tasks`).
      ``hub=True`` is its old, deprecated spelling.
    - ``timeout`` (5.0): wall-clock seconds of each run, tests included.
    - ``sandbox``: a :class:`~reason_gym.sandbox.Sandbox` (default: the process-wide one).
    - ``max_steps`` (8), ``reward_weights``, ``prm``, ``render_mode``: see :class:`~reason_gym.core.ReasoningEnv`.

    ## Version History
    - v0: initial version.
    """

    splits = ("test", "prompt", "train", "all")
    task = TASK

    def __init__(self, *, source: str = "full", hub: bool = False, **kwargs: Any) -> None:
        if source not in MBPP_FILES:
            raise ValueError(f"source must be 'full' or 'sanitized', got {source!r}")
        if hub and kwargs.get("data_path") is not None:
            raise ValueError("pass either data_path= or hub=True, not both")
        if hub:
            warnings.warn("MBPPEnv(hub=True) is allow_hub=True now", DeprecationWarning, stacklevel=2)
        self.source = source
        self._prefix = "MBPP" if source == "full" else "MBPP-sanitized"
        super().__init__(**{**kwargs, "allow_hub": hub or kwargs.get("allow_hub", False)})

    def data_source(self, split: str) -> DataSource:
        layout = "mbpp/mbpp.jsonl, mbpp/sanitized-mbpp.json"
        return DataSource(f"MBPP ({self.source})", MBPP_FILES[self.source], layout, hub=(MBPP_HUB, self.source, None))

    def read_data(self, path: str) -> tuple[dict[str, Any], ...]:
        return load_mbpp_file(path)

    def _arrange(self, records: Records) -> Records:
        """By task id (the hub's copy comes split by split)."""
        return tuple(sorted(records, key=task_id_order))

    def _split_rows(self, split: str, records: Records) -> Sequence[int]:
        """Positions (in task-id order) of the split's problems."""
        if split == "all":
            return range(len(records))
        return [i for i, record in enumerate(records) if record["task_id"] in SPLIT_TASK_IDS[split]]

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
