"""The step-data format for PRMs (``steps.jsonl`` + ``meta.json``): checking records, reading them, resuming a file.

A step-data folder (written by :mod:`agents.training.prm_data`) holds:

- ``steps.jsonl``: one JSON object per trajectory, appended as each batch of problems is labelled::

    {"env_id": str, "split": str, "index": int, "problem_id": str, "question": str, "steps": [str, ...],
     "outcome": 0|1, "labels": {"mc_soft": [float per step], "mc_hard": [0|1 per step],
     "exact": [0|1 per step] or null}, "k": int, "policy_calls": int, "tokens": int,
     "source": "mc"|"star"|"rationalized"}

  ``question`` is the env's observation at reset; ``steps`` the accepted steps as the env recorded them, the final
  answer line (when there is one) last. ``exact`` is null for tasks without an exact step check.
- ``meta.json``: the settings, the validation rule and the held-out problems, counts, compute totals, the commit.

:func:`load_step_data` reads the records of a folder (or of a ``steps.jsonl``) and checks every one; a record that
breaks the format is a :class:`ValueError` naming the file and line. :func:`is_validation` is the rule that holds
validation problems out of a split (:data:`VAL_RULE`), :func:`select_problems` the problems of a part of a split.
"""

from __future__ import annotations

import json
import math
import warnings
import zlib
from pathlib import Path
from typing import Any

from agents.bench_run import ResumeWarning
from reason_gym.core import ReasoningEnv

STEPS_FILE = "steps.jsonl"
META_FILE = "meta.json"
SOURCES = ("mc", "star", "rationalized")
"""Where a trajectory came from: a policy sample labelled by Monte-Carlo rollouts (``mc``), a policy solution the
env verified (``star``), or steps generated with the answer as a hint and kept because the policy reaches the
answer from them unaided (``rationalized``)."""

VAL_RULE = "held out iff zlib.crc32(problem_id.encode('utf-8')) / 2**32 < val_fraction"
"""The validation rule: by the problem's id, so it does not depend on order, and copies of a problem (procedural
tasks may repeat one) fall on the same side."""

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "env_id": str,
    "split": str,
    "index": int,
    "problem_id": str,
    "question": str,
    "steps": list,
    "outcome": int,
    "labels": dict,
    "k": int,
    "policy_calls": int,
    "tokens": int,
    "source": str,
}


def record_problem(record: Any) -> str:
    """What is wrong with a step-data record, or ``""`` when it follows the format (see the module docstring)."""
    if not isinstance(record, dict):
        return f"not a JSON object but {type(record).__name__}"
    missing = [name for name in _FIELDS if name not in record]
    if missing:
        return f"missing the fields {missing}"
    for name, kind in _FIELDS.items():
        value = record[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"{name} is {value!r}, not of type {getattr(kind, '__name__', kind)}"
    if record["source"] not in SOURCES:
        return f"source is {record['source']!r}, not one of {SOURCES}"
    if record["outcome"] not in (0, 1):
        return f"outcome is {record['outcome']!r}, not 0 or 1"
    if min(record["index"], record["k"], record["policy_calls"], record["tokens"]) < 0:
        return "index, k, policy_calls and tokens must be >= 0"
    steps = record["steps"]
    if not all(isinstance(step, str) for step in steps):
        return "steps must be strings"
    labels = record["labels"]
    if set(labels) != {"mc_soft", "mc_hard", "exact"}:
        return f"labels has the keys {sorted(labels)}, not ['exact', 'mc_hard', 'mc_soft']"
    for name in ("mc_soft", "mc_hard", "exact"):
        values = labels[name]
        if values is None and name == "exact":
            continue
        if not isinstance(values, list) or len(values) != len(steps):
            return f"labels.{name} must be a list of one label per step ({len(steps)})"
        if name == "mc_soft":
            ok = all(_is_number(v) and 0.0 <= v <= 1.0 for v in values)
        else:
            ok = all(type(v) is int and v in (0, 1) for v in values)
        if not ok:
            return f"labels.{name} must hold {'numbers in [0, 1]' if name == 'mc_soft' else '0s and 1s'}: {values}"
    return ""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def load_step_data(path: str | Path) -> list[dict[str, Any]]:
    """The trajectories of a step-data folder (or its ``steps.jsonl``), in file order, each checked.

    A last line without its newline (a labelling run killed mid-write) is skipped with a :class:`ResumeWarning`;
    the file is not changed. Blank lines are skipped.

    Raises:
        FileNotFoundError: No ``steps.jsonl`` there.
        ValueError: A line is not a record of the format; the message names the file, the line and what is wrong.
    """
    path = Path(path)
    if path.is_dir():
        path = path / STEPS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no step data at {path}: label some with scripts/label_steps.py")
    return read_records(path, truncate=False)


def read_records(path: Path, *, truncate: bool) -> list[dict[str, Any]]:
    """The records of a ``steps.jsonl``; a torn last line is skipped with a :class:`ResumeWarning` and, with
    ``truncate``, cut off the file (so a resumed run appends on a line of its own).

    Raises:
        ValueError: A complete line is not a record (names the file and line).
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        what = "dropped" if truncate else "skipped"
        warnings.warn(
            f"{path}: {what} a half-written last line ({len(data) - end} bytes, a killed run)"
            + ("; its problem is labelled again" if truncate else ""),
            ResumeWarning,
            stacklevel=3,
        )
        if truncate:
            with path.open("r+b") as file:
                file.truncate(end)
    records = []
    for number, line in enumerate(data[:end].split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"{path}:{number} is not valid JSON ({error})") from None
        problem = record_problem(record)
        if problem:
            raise ValueError(f"{path}:{number} is not a step-data record: {problem}")
        records.append(record)
    return records


def read_meta(path: Path) -> dict[str, Any]:
    """A folder's ``meta.json``.

    Raises:
        ValueError: It is not a JSON object with a ``config``; the message names the file and the way out.
    """
    try:
        meta = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as error:
        meta, reason = None, f"not valid JSON ({error})"
    else:
        reason = "" if isinstance(meta, dict) and isinstance(meta.get("config"), dict) else "not a meta.json"
    if reason:
        raise ValueError(
            f"{path} is {reason}: the settings of this step data are unknown (steps.jsonl is kept); pass "
            "--overwrite to start afresh or another --out"
        )
    return meta  # type: ignore[return-value]


def is_validation(problem_id: str, val_fraction: float) -> bool:
    """Whether a problem is held out for validation (:data:`VAL_RULE`).

    >>> is_validation("game24/1-1-4-6", 0.0), is_validation("game24/1-1-4-6", 0.999)
    (False, True)
    """
    return zlib.crc32(problem_id.encode("utf-8")) / 2**32 < val_fraction


def select_problems(
    env: ReasoningEnv, split: str, part: str, val_fraction: float, count: int
) -> tuple[list[tuple[int, str]], list[int]]:
    """The first ``count`` problems of a part of a split, as ``(index, problem_id)``, and the held-out indices.

    The held-out indices cover the whole split where it is a fixed list, else the indices looked at.

    Raises:
        ValueError: The split has fewer problems of that part than asked for (or none in the first 100000).
    """
    indices = env.split_indices(split)
    size = len(indices) if indices is not None else None
    chosen: list[tuple[int, str]] = []
    held_out: list[int] = []
    index = 0
    while (size is None and len(chosen) < count) or (size is not None and index < size):
        if size is None and index >= 100_000:
            raise ValueError(f"found only {len(chosen)} {part} problems in the first 100000 of {split}")
        _, info = env.reset(options={"index": index, "split": split})
        held = is_validation(info["problem_id"], val_fraction)
        if held:
            held_out.append(index)
        if len(chosen) < count and (part == "all" or (part == "val") == held):
            chosen.append((index, info["problem_id"]))
        index += 1
    if len(chosen) < count:
        raise ValueError(f"the {split} split has {len(chosen)} {part} problems, fewer than --problems {count}")
    return chosen, held_out
