"""Text spaces whose batches travel through AsyncVectorEnv's shared memory (Gymnasium's default).

:class:`TextSpace` is the observation and action space of every reasoning environment; importing this module
registers its shared-memory functions with Gymnasium's vector utilities.
"""

from __future__ import annotations

import multiprocessing
import operator
from collections.abc import Sequence
from typing import Any, overload

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory


class TextSpace(spaces.Text):
    """``spaces.Text`` whose batches travel through AsyncVectorEnv's shared memory, Gymnasium's default.

    Gymnasium 1.x reads shared memory once, when the vector env is built, and returns that same object at every
    step. For its own ``Text`` space the object is a tuple of strings, so every step returned the construction's
    strings (Gymnasium issue #1164). This space registers its own shared memory: one fixed slot per sub-env that
    holds the observation's length and its code points (``max_length`` of them), read through a
    :class:`SharedTextBatch` whose items decode the slots when they are accessed. ``AsyncVectorEnv(..., copy=True)``
    (the default) deep-copies that batch into a tuple of strings, as ``SyncVectorEnv`` returns; with ``copy=False``
    it returns the live batch, which changes when the envs step.
    """


class SharedTextBatch(Sequence[str]):
    """A live, read-only batch of strings over the shared memory of :class:`TextSpace`.

    Every access decodes the sub-env's slot as it is now. ``copy.copy``, ``copy.deepcopy`` and pickling give a
    plain tuple of strings (a snapshot), so Gymnasium's ``copy=True`` returns what ``SyncVectorEnv`` does. It
    compares equal to a tuple (or another batch) holding the same strings.

    Arguments:
        memory: The ``multiprocessing`` array made by ``create_shared_memory(TextSpace, n)``.
        n: The number of sub-envs.
    """

    __hash__ = None  # type: ignore[assignment]  # its items change, so it must not be a dict key

    def __init__(self, memory: Any, n: int) -> None:
        slots = _text_slots(memory)
        if len(slots) != n:
            raise ValueError(f"the shared memory holds {len(slots)} text slots, not {n}")
        self._memory = memory  # keeps the buffer that the numpy view points into alive
        self._slots = slots

    def __len__(self) -> int:
        return len(self._slots)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(_decode_slot(slot) for slot in self._slots[index])
        return _decode_slot(self._slots[operator.index(index)])

    def snapshot(self) -> tuple[str, ...]:
        """The strings as they are now, as a tuple that later steps do not change."""
        return tuple(_decode_slot(slot) for slot in self._slots)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SharedTextBatch):
            other = other.snapshot()
        return self.snapshot() == other if isinstance(other, tuple) else NotImplemented

    def __copy__(self) -> tuple[str, ...]:
        return self.snapshot()

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[str, ...]:
        return self.snapshot()

    def __reduce__(self) -> tuple[type[tuple], tuple[tuple[str, ...]]]:
        return tuple, (self.snapshot(),)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.snapshot()!r})"


def _text_slots(memory: Any) -> np.ndarray:
    """The ``(n, 1 + capacity)`` int32 view of a text buffer: per sub-env, the length, then the code points.

    The capacity is read from the buffer's first element, not from a space, so a worker whose space differs from
    the one the buffer was made for cannot write across another sub-env's slot.
    """
    flat = np.frombuffer(memory.get_obj(), dtype=np.int32)
    return flat[1:].reshape(-1, int(flat[0]) + 1)


def _decode_slot(slot: np.ndarray) -> str:
    length = min(max(int(slot[0]), 0), len(slot) - 1)  # a slot read mid-write must not index past its end
    return slot[1 : 1 + length].astype("<i4").tobytes().decode("utf-32-le", "surrogatepass")


@create_shared_memory.register(TextSpace)
def _create_text_shared_memory(space: TextSpace, n: int = 1, ctx: Any = multiprocessing) -> Any:
    memory = ctx.Array(np.dtype(np.int32).char, 1 + n * (space.max_length + 1))
    memory[0] = space.max_length
    return memory


@read_from_shared_memory.register(TextSpace)
def _read_text_from_shared_memory(space: TextSpace, shared_memory: Any, n: int = 1) -> SharedTextBatch:
    return SharedTextBatch(shared_memory, n)


@write_to_shared_memory.register(TextSpace)
def _write_text_to_shared_memory(space: TextSpace, index: int, value: str, shared_memory: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"a TextSpace observation is a str, got {type(value).__name__}")
    # UTF-32 is one int32 per character, so a slot of max_length int32 holds any observation inside the space.
    code_points = np.frombuffer(value.encode("utf-32-le", "surrogatepass"), dtype="<i4")
    slot = _text_slots(shared_memory)[index]
    if len(code_points) > len(slot) - 1:
        raise ValueError(
            f"an observation of {len(code_points)} characters does not fit the shared-memory slot of "
            f"{len(slot) - 1} characters (the observation space's max_length)"
        )
    slot[1 : 1 + len(code_points)] = code_points
    slot[0] = len(code_points)
