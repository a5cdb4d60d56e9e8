"""The folder of a benchmark run: its settings (``run.json``) and its episodes (``episodes.jsonl``), resumable.

A rerun with the same settings skips the episodes already played; a run killed at any moment resumes (a torn last
line is dropped with a warning); a corrupt ``run.json`` or episode line stops the run with an error that names the
file and the way out, and never throws away the episodes already played. Metadata is written atomically.
"""

from __future__ import annotations

import json
import warnings
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reason_gym.files import write_atomic

if TYPE_CHECKING:
    from agents.bench import BenchConfig

COUNTER_COLUMNS = ("policy_calls", "samples", "tokens", "prm_calls", "env_steps")
IDENTITY_KEYS = ("env", "split", "policy", "prm", "seed", "depth_hint")


def episode_seed(seed: int, planner: str, budget: int, index: int) -> int:
    """A seed that depends on the episode alone (stable across processes, unlike ``hash``)."""
    return zlib.crc32(f"{seed}/{planner}/{budget}/{index}".encode())


class ResumeWarning(UserWarning):
    """A resumed run dropped or assumed something (a torn episode line, a missing ``run.json``)."""


EPISODE_FIELDS = ("planner", "budget", "index", "is_correct", "pass_at_k", "k", "used", "wall_s", "details")
"""The fields of an episode record that resuming and :func:`summarize` rely on."""


def open_run(
    folder: Path, config: BenchConfig, problem_id: Callable[[int], str] | None = None
) -> dict[tuple[str, int, int], dict[str, Any]]:
    """Prepares ``folder`` for the run; returns the episodes already there, by (planner, budget, index).

    ``run.json`` is written atomically, so a killed run leaves the old file or the new one. Episodes found without
    a ``run.json`` (deleted by hand) are resumed only if they match what can be checked (see
    :func:`adopt_episodes`), with a :class:`ResumeWarning`.

    Args:
        folder: The run's folder (made if missing).
        config: The run's settings.
        problem_id: The ``problem_id`` of a problem index in this env and split, to check adopted episodes.

    Raises:
        ValueError: ``folder`` holds a run with other settings (and ``config.overwrite`` is false), a corrupt
            ``run.json`` or a corrupt episode line; the message names the file and what to do.
    """
    folder.mkdir(parents=True, exist_ok=True)
    settings, path = folder / "run.json", folder / "episodes.jsonl"
    identity = config.identity()
    if config.overwrite:
        path.unlink(missing_ok=True)
    elif settings.exists():
        check_settings(settings, path, identity)
    episodes = read_episodes(path)  # before run.json is written: a corrupt line must leave the folder as it was
    if not config.overwrite and not settings.exists():
        adopt_episodes(path, episodes, config, problem_id)
    write_atomic(settings, json.dumps(identity, indent=2) + "\n")
    return episodes


def check_settings(settings: Path, episodes: Path, identity: dict[str, Any]) -> None:
    """Refuses to extend a run whose ``run.json`` is corrupt or records other settings than ``identity``.

    Raises:
        ValueError: Naming the file, and saying how to go on without losing the episodes where that is possible.
    """
    text = settings.read_bytes()
    previous, problem = _parse_settings(text)
    if problem:
        kept = f"the {_count_lines(episodes)} episodes in {episodes} are kept" if episodes.exists() else "no episodes"
        raise ValueError(
            f"{settings} is {problem}, so this run's settings are unknown ({kept}): if they were played with the "
            f"settings passed now, delete {settings} and rerun to resume them; else pass --overwrite (discards "
            "them) or another --out"
        )
    changed = {key: (previous[key], value) for key, value in identity.items() if previous[key] != value}
    if changed:
        what = ", ".join(f"{key} {old!r} there, {new!r} now" for key, (old, new) in changed.items())
        raise ValueError(
            f"{settings.parent} holds a run with other settings ({what}): pass another --out, or --overwrite"
        )


def _parse_settings(text: bytes) -> tuple[dict[str, Any], str]:
    """The settings in a ``run.json``'s bytes and ``""``, or ``{}`` and what is wrong with them."""
    try:
        previous = json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return {}, "empty" if not text.strip() else f"not valid JSON ({error})"
    if not isinstance(previous, dict):
        return {}, f"not a JSON object but a JSON {type(previous).__name__}"
    missing = [key for key in IDENTITY_KEYS if key not in previous]
    return (previous, "") if not missing else ({}, f"missing the settings {missing}")


def adopt_episodes(
    path: Path,
    episodes: dict[tuple[str, int, int], dict[str, Any]],
    config: BenchConfig,
    problem_id: Callable[[int], str] | None,
) -> None:
    """Accepts episodes found without a ``run.json`` if each was seeded from ``config.seed`` and played on the
    problem of its index, with a :class:`ResumeWarning` (the policy, PRM and depth hint cannot be checked).

    Raises:
        ValueError: Some episode was played with another seed or on another problem (another env or split).
    """
    if not episodes:
        return
    foreign = [key for key, record in episodes.items() if record.get("seed") != episode_seed(config.seed, *key)]
    if problem_id is not None and not foreign:
        ids = _problem_ids({key[2] for key in episodes}, problem_id)
        foreign = [key for key, record in episodes.items() if record.get("problem_id") != ids[key[2]]]
    if foreign:
        raise ValueError(
            f"{path} has no run.json beside it and {len(foreign)} of its {len(episodes)} episodes were not played "
            f"with these settings (e.g. {foreign[0]}: another --seed, --env or --split): pass the run's own flags, "
            "another --out, or --overwrite (discards them)"
        )
    warnings.warn(
        f"{path.parent / 'run.json'} is missing: resuming the {len(episodes)} episodes in {path}, whose seeds and "
        "problems match; the policy, PRM and depth hint they were played with are assumed to be those passed now",
        ResumeWarning,
        stacklevel=2,
    )


def _problem_ids(indices: Iterable[int], problem_id: Callable[[int], str]) -> dict[int, str | None]:
    ids: dict[int, str | None] = {}
    for index in indices:
        try:
            ids[index] = problem_id(index)
        except ValueError:  # an index this split does not have: the episode is not from a run of these settings
            ids[index] = None
    return ids


def read_episodes(path: Path) -> dict[tuple[str, int, int], dict[str, Any]]:
    """The episode records of ``path``, by (planner, budget, index); the first of duplicates wins.

    A last line without its newline is what a kill mid-write leaves: it is cut off the file (so the next record
    starts on a line of its own) with a :class:`ResumeWarning`, and its episode is played again. Blank lines are
    skipped.

    Raises:
        ValueError: A complete line is not an episode record; the message names the file and line.
    """
    if not path.exists():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        warnings.warn(
            f"{path}: dropped a half-written last line ({len(data) - end} bytes, a killed run); its episode is "
            "played again",
            ResumeWarning,
            stacklevel=2,
        )
        with path.open("r+b") as file:
            file.truncate(end)
    episodes: dict[tuple[str, int, int], dict[str, Any]] = {}
    for number, line in enumerate(data[:end].split(b"\n")[:-1], 1):
        if line.strip():
            record = _episode_record(line, f"{path}:{number}")
            episodes.setdefault((record["planner"], record["budget"], record["index"]), record)
    return episodes


def _episode_record(line: bytes, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        record = None
    if not _is_episode_record(record):
        raise ValueError(
            f"{where} is not an episode record: delete that line to resume the others (its episode is played "
            "again), or pass --overwrite (discards them all) or another --out"
        )
    return record


def _is_episode_record(record: Any) -> bool:
    """Whether ``record`` has what resuming and :func:`summarize` read, with the types they need."""
    if not (isinstance(record, dict) and all(field in record for field in EPISODE_FIELDS)):
        return False
    used = record["used"]
    numbers = [record["is_correct"], record["k"], record["wall_s"]]  # pass_at_k may be null: no finished search
    if isinstance(used, dict):
        numbers += [used.get(counter) for counter in COUNTER_COLUMNS]
    return (
        isinstance(record["planner"], str)
        and type(record["budget"]) is int
        and type(record["index"]) is int
        and isinstance(used, dict)
        and isinstance(record["details"], dict)
        and all(isinstance(number, int | float) for number in numbers)  # bools are ints
    )


def _count_lines(path: Path) -> int:
    with path.open("rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
