"""What the math environments (GSM8K, MATH) share: finding their data, free-text steps and checked final answers.

Data is looked up, for each split, in order:

1. an explicit ``data_path`` (a JSONL file, or a JSON array, of records in the data set's own format);
2. ``$REASON_GYM_DATA_DIR/<data set>/<split>.jsonl``, a folder laid out like ``shared/data``
   (``gsm8k/train.jsonl``, ``gsm8k/test.jsonl``, ``math/test.jsonl``, ``math500/test.jsonl``);
3. the Hugging Face hub, through the optional ``datasets`` package (``pip install 'reason-gym[datasets]'``), unless
   it is missing or ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` is set.

When none has the split, the constructor raises :class:`~reason_gym.data.DataNotFoundError`, which names the variable
and the layout.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, ClassVar, NamedTuple

from reason_gym.checkers.arithmetic import check_arithmetic_claims
from reason_gym.checkers.math_answer import check_answer, require_math_verify
from reason_gym.core import (
    ANSWER_PREFIX,
    CHARSET,
    PRM,
    AnswerOutcome,
    EpisodeState,
    ReasoningEnv,
    StepOutcome,
)
from reason_gym.data import DATA_DIR_VARIABLE, DataNotFoundError, find_data_file

DATA_SET_CHARACTERS = "’‘“”€£¢¾¼³éèçñ—–А"
"""Every non-ASCII, non-space character in the questions of GSM8K train and test (MATH problems are ASCII); the
Cyrillic ``А`` is a look-alike of ``A`` that one GSM8K train question really contains."""

_SPACES = str.maketrans({"\xa0": " ", "\u2009": " ", "\u202f": " ", "\u2028": "\n", "\u2029": "\n", "\u200b": None})
"""Space characters in the data (no-break, line separator, zero-width), read as the plain space or newline they
stand for instead of being cleaned to ``?``."""

LAYOUT = "gsm8k/train.jsonl, gsm8k/test.jsonl, math/test.jsonl, math500/test.jsonl"


class DataSource(NamedTuple):
    """Where a split can be found.

    Attributes:
        title: The data set's name for messages, e.g. ``"GSM8K"``.
        relative: The file's path inside ``REASON_GYM_DATA_DIR``, e.g. ``"gsm8k/test.jsonl"``.
        hub: ``(repository, configuration or None, split)`` on the Hugging Face hub.
    """

    title: str
    relative: str
    hub: tuple[str, str | None, str]


@lru_cache(maxsize=16)
def load_json_records(path: str) -> tuple[dict[str, Any], ...]:
    """The records of a JSONL file (one object per line), or of a ``.json`` file holding one array of objects."""
    with open(path, encoding="utf-8") as file:
        if path.endswith(".json"):
            records = json.load(file)
            if not isinstance(records, list):
                raise ValueError(f"{path}: a .json data file holds one array of records")
        else:
            records = []
            for number, line in enumerate(file, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as error:
                        raise ValueError(f"{path}, line {number}: not JSON ({error})") from None
    if not all(isinstance(record, dict) for record in records):
        raise ValueError(f"{path}: every record must be a JSON object")
    return tuple(records)


@lru_cache(maxsize=8)
def load_hub_records(repository: str, configuration: str | None, split: str) -> tuple[dict[str, Any], ...]:
    """A split from the Hugging Face hub (imports ``datasets`` here, only when it is needed)."""
    import datasets

    return tuple(dict(row) for row in datasets.load_dataset(repository, configuration, split=split))


def _hub_unavailable() -> str | None:
    """Why the hub cannot be used, or ``None`` if it may be tried."""
    if importlib.util.find_spec("datasets") is None:
        return "the datasets package is not installed: pip install 'reason-gym[datasets]'"
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{variable} is set"
    return None


def load_records(source: DataSource, explicit: str | os.PathLike[str] | None) -> tuple[tuple[Mapping, ...], str]:
    """The raw records of a split and where they came from (a path, or ``hf://<repository>``).

    Raises:
        FileNotFoundError: ``explicit`` was given and does not exist.
        DataNotFoundError: no source has the split.
    """
    path = find_data_file(source.relative, explicit=explicit)
    if path is not None:
        return load_json_records(str(path)), str(path)
    folder = os.environ.get(DATA_DIR_VARIABLE)
    local = f"{DATA_DIR_VARIABLE}={folder} has no {source.relative}" if folder else f"{DATA_DIR_VARIABLE} is not set"
    hub_problem = _hub_unavailable()
    repository, configuration, split = source.hub
    if hub_problem is None:
        try:
            return load_hub_records(repository, configuration, split), f"hf://{repository}"
        except OSError as error:  # offline, not found, HTTP errors: all OSErrors in datasets / huggingface_hub
            hub_problem = f"loading it failed: {type(error).__name__}: {error}"
    raise DataNotFoundError(
        f"{source.title} split {split!r} not found: {local}, and the Hugging Face hub dataset {repository!r} cannot "
        f"be used ({hub_problem}). Set {DATA_DIR_VARIABLE} to a folder laid out like shared/data ({LAYOUT}), pass "
        "data_path= (a .jsonl file of records in the data set's own format), or install datasets and go online."
    )


def normalize_spaces(text: str) -> str:
    """Reads the data sets' unusual space characters as plain spaces and newlines (see ``_SPACES``)."""
    return text.translate(_SPACES)


class MathReasoningEnv(ReasoningEnv):
    """Base of the math environments: a question from a data set, free-text steps, an answer checked for
    mathematical equivalence (:mod:`reason_gym.checkers.math_answer`). Subclasses give the data sources and the
    record format (:meth:`_source`, :meth:`_validate_problem`) and document the rest."""

    splits = ("train", "test")
    charset = CHARSET + DATA_SET_CHARACTERS
    default_reward_weights: ClassVar[Mapping[str, float]] = {**ReasoningEnv.default_reward_weights, "step_check": 0.0}
    max_step_chars = 2048
    name: str = ""
    """The data set's short name, the first part of every problem id (``gsm8k/test/17``)."""
    question_key: ClassVar[str] = "question"
    """The record field that holds the question."""

    def __init__(
        self,
        *,
        split: str,
        data_path: str | os.PathLike[str] | None,
        max_steps: int,
        reward_weights: Mapping[str, float] | None,
        prm: PRM | None,
        render_mode: str | None,
    ) -> None:
        super().__init__(max_steps=max_steps, reward_weights=reward_weights, prm=prm, render_mode=render_mode)
        require_math_verify()  # fail now, not at the first answer that needs it
        if split not in self.available_splits:
            raise ValueError(f"split must be one of {self.available_splits}, got {split!r}")
        self.split = split
        self.data_path = data_path
        self.data_sources: dict[str, str] = {}
        """Where each loaded split came from: a file path or ``hf://<repository>``."""
        self._problems: dict[str, tuple[Mapping[str, Any], ...]] = {}
        self._problems_of(split)  # load now: a missing data set fails here, before the first episode

    @property
    def available_splits(self) -> tuple[str, ...]:
        """The splits this instance can serve (a subset may have fewer than :attr:`splits`)."""
        return self.splits

    # ------------------------------------------------------------------ problems

    def _source(self, split: str) -> DataSource:
        raise NotImplementedError

    def _problems_of(self, split: str) -> tuple[Mapping[str, Any], ...]:
        """The validated problems of a split, loaded on first use (the env's own split at construction)."""
        if split not in self._problems:
            if self.data_path is not None and split != self.split:
                raise ValueError(f"only split {self.split!r} is available: it was given as data_path={self.data_path}")
            explicit = self.data_path if split == self.split else None
            records, where = load_records(self._source(split), explicit)
            problems = []
            for row, record in enumerate(records):
                try:
                    problem = self._validate_problem(record)
                except ValueError as error:
                    raise ValueError(f"{where}, record {row}: {error}") from None
                problems.append({**problem, "problem_id": f"{self.name}/{split}/{row}"})
            if not problems:
                raise ValueError(f"{where} holds no records")
            self._problems[split], self.data_sources[split] = tuple(problems), where
        return self._problems[split]

    def split_indices(self, split: str | None = None) -> Sequence[int]:
        """Row numbers of the problems of a split, in file order."""
        split = split or self.split
        if split not in self.available_splits:
            raise ValueError(f"split must be one of {self.available_splits}, got {split!r}")
        return range(len(self._problems_of(split)))

    def _choose_problem(self, index: int | None, split: str | None) -> Mapping[str, Any]:
        rows = self.split_indices(split)
        if index is None:
            index = int(self.np_random.integers(len(rows)))
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(rows):
            raise ValueError(f"index must be an int in [0, {len(rows)}) for split {split or self.split!r}")
        return self._problems_of(split or self.split)[index]

    def _question(self, problem: Mapping[str, Any]) -> str:
        return normalize_spaces(problem[self.question_key])

    def _problem_id(self, problem: Mapping[str, Any]) -> str:
        """``<name>/<split>/<row>`` for problems of a split (kept when such a problem is injected again), else
        ``<name>/injected/<hash of the question and the reference answer>``."""
        if isinstance(problem.get("problem_id"), str):
            return problem["problem_id"]
        digest = hashlib.sha1(f"{problem[self.question_key]}\0{problem['gold']}".encode()).hexdigest()
        return f"{self.name}/injected/{digest[:12]}"

    @staticmethod
    def _text_field(record: Mapping[str, Any], key: str, usage: str) -> str:
        value = record.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{key!r} must be a non-empty string; {usage}")
        return value

    # ------------------------------------------------------------------ dynamics

    def _initial_task_state(self, problem: Mapping[str, Any]) -> None:
        return None  # the steps are the whole state

    def _apply_step(self, state: EpisodeState, step: str) -> StepOutcome:
        """Accepts any non-empty step; with a non-zero ``step_check`` weight, checks the equalities it states."""
        if not step:
            return StepOutcome("", state.task, "an empty step")
        components = {}
        if self.reward_weights["step_check"]:
            true, checked = check_arithmetic_claims(step)
            if checked:
                components["step_check"] = float(true == checked)
        return StepOutcome(step, state.task, "", components)

    def _judge_answer(self, state: EpisodeState, answer: str) -> AnswerOutcome:
        verdict = check_answer(answer, state.problem["gold"])
        return AnswerOutcome(verdict.correct, f"{ANSWER_PREFIX} {answer.strip()}", verdict.reason)
