"""What the math environments (GSM8K, MATH) share: their data files, free-text steps and checked final answers.

Each split is a file of its own (``gsm8k/train.jsonl``, ``gsm8k/test.jsonl``, ``math/test.jsonl``,
``math500/test.jsonl``: JSONL, or a JSON array, of records in the data set's own format), found like every task's
data (:mod:`reason_gym.tasks`): ``data_path=`` (for the env's split), ``$REASON_GYM_DATA_DIR``, then the Hugging Face
hub through the optional ``datasets`` package (``pip install 'reason-gym[datasets]'``) where ``allow_hub=True`` or
``REASON_GYM_ALLOW_HUB=1``. When none has the split, the constructor raises
:class:`~reason_gym.data.DataNotFoundError`, which lists the sources tried, the variable and the layout.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, ClassVar

from reason_gym.checkers.arithmetic import check_arithmetic_claims
from reason_gym.checkers.math_answer import check_answer, require_math_verify
from reason_gym.core import ANSWER_PREFIX, CHARSET, AnswerOutcome, EpisodeState, ReasoningEnv, StepOutcome
from reason_gym.data import DataSource as DataSource
from reason_gym.data import cached_file_loader, read_json_records
from reason_gym.tasks import DatasetEnv

DATA_SET_CHARACTERS = "’‘“”€£¢¾¼³éèçñ—–А"
"""Every non-ASCII, non-space character in the questions of GSM8K train and test (MATH problems are ASCII); the
Cyrillic ``А`` is a look-alike of ``A`` that one GSM8K train question really contains."""

_SPACES = str.maketrans({"\xa0": " ", "\u2009": " ", "\u202f": " ", "\u2028": "\n", "\u2029": "\n", "\u200b": None})
"""Space characters in the data (no-break, line separator, zero-width), read as the plain space or newline they
stand for instead of being cleaned to ``?``."""

LAYOUT = "gsm8k/train.jsonl, gsm8k/test.jsonl, math/test.jsonl, math500/test.jsonl"


@cached_file_loader(maxsize=16)
def load_json_records(path: str) -> tuple[dict[str, Any], ...]:
    """The records of a JSONL file (one object per line), or of a ``.json`` file holding one array of objects
    (:func:`reason_gym.data.read_json_records`)."""
    return tuple(read_json_records(path))


def normalize_spaces(text: str) -> str:
    """Reads the data sets' unusual space characters as plain spaces and newlines (see ``_SPACES``)."""
    return text.translate(_SPACES)


class MathReasoningEnv(DatasetEnv):
    """Base of the math environments: a question from a data set, free-text steps, an answer checked for
    mathematical equivalence (:mod:`reason_gym.checkers.math_answer`). Subclasses give the data sources and the
    record format (:meth:`data_source`, :meth:`_validate_problem`) and document the rest."""

    splits = ("train", "test")
    split_files = True
    validate_on_load = True
    charset = CHARSET + DATA_SET_CHARACTERS
    default_reward_weights: ClassVar[Mapping[str, float]] = {**ReasoningEnv.default_reward_weights, "step_check": 0.0}
    max_step_chars = 2048
    name: str = ""
    """The data set's short name, the first part of every problem id (``gsm8k/test/17``)."""
    question_key: ClassVar[str] = "question"
    """The record field that holds the question."""

    def __init__(self, *, max_steps: int = 20, **kwargs: Any) -> None:
        require_math_verify()  # fail now, not at the first answer that needs it
        super().__init__(max_steps=max_steps, **kwargs)

    def read_data(self, path: str) -> tuple[dict[str, Any], ...]:
        return load_json_records(path)

    def _row_problem(self, split: str, row: int, record: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**self._validate_problem(record), "problem_id": f"{self.name}/{split}/{row}"}

    def _question(self, problem: Mapping[str, Any]) -> str:
        return normalize_spaces(problem[self.question_key])

    def reference_answer(self, problem: Mapping[str, Any]) -> str:
        return problem["gold"]

    def _problem_id(self, problem: Mapping[str, Any]) -> str:
        """``<name>/<split>/<row>`` for problems of a split (kept when such a problem is injected again: the id is
        kept only where that row of the data set has the same question and reference answer), else
        ``<name>/injected/<hash of the question and the reference answer>``: an injected record cannot claim the
        id of another problem."""
        claimed = problem.get("problem_id")
        if isinstance(claimed, str) and self._is_row(claimed, problem):
            return claimed
        digest = hashlib.sha1(f"{problem[self.question_key]}\0{problem['gold']}".encode()).hexdigest()
        return f"{self.name}/injected/{digest[:12]}"

    def _is_row(self, problem_id: str, problem: Mapping[str, Any]) -> bool:
        """Whether ``problem_id`` is ``<name>/<split>/<row>`` of a row of the data that holds this very problem."""
        parts = problem_id.split("/")
        if len(parts) != 3 or parts[0] != self.name or parts[1] not in self.available_splits:
            return False
        split, row = parts[1], parts[2]
        if not (row.isascii() and row.isdigit()):
            return False
        try:
            stored = self._problem(split, int(row))
        except (ValueError, OSError, IndexError):  # no such row, or that split's data cannot be loaded here
            return False
        return stored is problem or all(stored[key] == problem[key] for key in (self.question_key, "gold"))

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
