"""Objects that own worker processes, made safe across ``fork`` and closed at exit.

A checker that keeps warm worker processes (the math checker's math-verify workers, the sandbox's pool) must
follow three rules, which this module implements once:

- **A forked child never uses its parent's workers.** The pipes and locks it inherited belong to the parent (a lock
  may even be held by a thread that does not exist in the child). Right after ``fork``, in the child, every live
  object is told to *forget* its workers, and starts its own on first use.
- **Workers end with the process that started them.** At exit, every live object is closed, but only in the
  process that owns it: a forked child that exits must not close the workers of its parent.
- **One process-wide default, created on first use,** behind a lock that a forked child replaces.

Usage (the kind of object decides what forgetting and closing mean)::

    _LIVE = LiveObjects(forget=lambda pool: pool._forget(), close=lambda pool: pool.close())
    _DEFAULT = ProcessDefault(Pool)

    class Pool:
        def __init__(self):
            ...
            _LIVE.add(self)

    def default_pool() -> Pool:
        return _DEFAULT.get()

Objects are held weakly: one dropped without being closed is collected as usual.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class LiveObjects(Generic[T]):
    """The live objects of one kind, each owned by the process that added it (or that forked from its owner).

    After ``fork``, in the child, ``forget`` is called on every object (it then belongs to the child); at exit,
    ``close`` is called on every object this process owns. Hooks run in the order objects were added.

    Args:
        forget: Drops an object's workers without touching them (they are the parent's); called in a forked child.
        close: Stops an object's workers; called at exit.
    """

    def __init__(self, *, forget: Callable[[T], None], close: Callable[[T], None]) -> None:
        self._forget = forget
        self._close = close
        self._owners: weakref.WeakKeyDictionary[T, int] = weakref.WeakKeyDictionary()
        """Each live object and the pid of the process that owns it."""
        _at_fork_and_exit(self)

    def add(self, obj: T) -> None:
        """Registers ``obj``, owned by this process."""
        self._owners[obj] = os.getpid()

    def owned(self) -> list[T]:
        """The live objects this process owns."""
        pid = os.getpid()
        return [obj for obj, owner in list(self._owners.items()) if owner == pid]

    def __len__(self) -> int:
        return len(self._owners)

    def after_fork_in_child(self) -> None:
        """Every object forgets its workers and belongs to this (child) process."""
        pid = os.getpid()
        for obj in list(self._owners):
            self._forget(obj)
            self._owners[obj] = pid

    def close_owned(self) -> None:
        """Closes every object this process owns (objects inherited from a parent that did not fork are left)."""
        for obj in self.owned():
            self._close(obj)


class ProcessDefault(Generic[T]):
    """A process-wide object, created by ``factory`` on first :meth:`get`; a forked child gets a new lock (the
    object itself is inherited: if it owns workers, register it with a :class:`LiveObjects` too).

    >>> default = ProcessDefault(list)
    >>> default.get() is default.get()
    True
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()
        _at_fork_and_exit(self)

    def get(self) -> T:
        """The object, created now if it does not exist yet (once, whatever the threads)."""
        with self._lock:
            if self._value is None:
                self._value = self._factory()
            return self._value

    def after_fork_in_child(self) -> None:
        """Replaces the lock, which a thread of the parent may have held at the fork."""
        self._lock = threading.Lock()


def _at_fork_and_exit(target: LiveObjects[T] | ProcessDefault[T]) -> None:
    """Registers ``target``'s hooks, holding it weakly (a registry made in a test goes away with the test)."""
    method = weakref.WeakMethod(target.after_fork_in_child)

    def after_fork_in_child() -> None:
        bound = method()
        if bound is not None:
            bound()

    os.register_at_fork(after_in_child=after_fork_in_child)
    if isinstance(target, LiveObjects):
        close = weakref.WeakMethod(target.close_owned)

        def close_owned() -> None:
            bound = close()
            if bound is not None:
                bound()

        atexit.register(close_owned)
