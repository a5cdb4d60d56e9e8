"""The math checker's worker processes: math-verify in a persistent subprocess per worker, with deadlines.

A :class:`MathVerifyWorker` is one process running ``_math_verify_worker.py``: JSON lines in, JSON lines out,
read with ``poll`` against a deadline, so that no check waits longer than its budget. A :class:`WorkerPool` keeps
up to ``max_workers`` of them for one process, hands each to one thread at a time, replaces those that die or
are killed, and, after ``fork``, forgets its parent's (the child starts its own). The judging is in
:mod:`reason_gym.checkers.math_answer`.
"""

from __future__ import annotations

import json
import math
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

WORKER_SCRIPT = Path(__file__).with_name("_math_verify_worker.py")


class CheckerUnavailableError(RuntimeError):
    """math-verify is missing, or its worker process cannot start: no answer can be judged."""


class WorkerDied(Exception):
    """The worker's pipe closed: it crashed or was killed."""


class MathVerifyWorker:
    """One math-verify worker process, used by one thread at a time (a :class:`WorkerPool` hands it out)."""

    def __init__(self, memory_limit_mb: int, script: Path = WORKER_SCRIPT) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(memory_limit_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
            start_new_session=True,  # a Ctrl-C meant for the parent does not kill a check half-way
        )
        self._stdin = self.process.stdin.fileno()  # type: ignore[union-attr]
        self._stdout = self.process.stdout.fileno()  # type: ignore[union-attr]
        self._poll = select.poll()  # poll, not select: no FD_SETSIZE limit in processes with many files
        self._poll.register(self._stdout, select.POLLIN)
        self._buffer = b""
        self._next_id = 0
        self.version: str | None = None
        self.clear_first = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def ensure_ready(self, timeout: float) -> None:
        """Waits for the worker's ready line; raises CheckerUnavailableError if it does not come."""
        if self.version is not None:
            return
        try:
            message = self._receive(time.monotonic() + timeout)
        except WorkerDied:
            message = {"fatal": f"the worker exited at start (code {self.process.wait()})"}
        if message is None:
            message = {"fatal": f"the worker did not start within {timeout:g} s"}
        if "fatal" in message:
            self.kill()
            raise CheckerUnavailableError(f"math-verify worker unavailable: {message['fatal']}")
        self.version = message["version"]

    def request(self, payload: dict[str, Any], deadline: float) -> dict[str, Any] | None:
        """Sends a request and returns the reply, or ``None`` if none came by ``deadline``."""
        self._next_id += 1
        if self.clear_first:
            payload = {**payload, "clear_first": True}
            self.clear_first = False
        self._send({**payload, "id": self._next_id})
        while True:
            reply = self._receive(deadline)
            if reply is None or reply.get("id") == self._next_id:
                return reply

    def _send(self, message: dict[str, Any]) -> None:
        data = memoryview(json.dumps(message).encode() + b"\n")
        try:
            while data:
                data = data[os.write(self._stdin, data) :]
        except (BrokenPipeError, OSError) as error:
            raise WorkerDied from error

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not self._poll.poll(math.ceil(remaining * 1000)):
                continue
            chunk = os.read(self._stdout, 1 << 16)
            if not chunk:
                raise WorkerDied
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.abandon()

    def close(self, wait: float = 0.2) -> None:
        """Ends the worker: end of input makes it exit; it is killed if it does not within ``wait`` seconds (it
        holds nothing worth waiting for)."""
        self.abandon()
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            self.kill()

    def abandon(self) -> None:
        """Closes this process's ends of the pipes (and nothing else: after a fork the worker is the parent's)."""
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


class WorkerPool:
    """The worker processes of one checker in this process: up to ``max_workers``, started lazily and reused.

    Thread-safe: :meth:`acquire` waits while all are busy. After ``fork``, :meth:`forget` (or the first use in the
    child) drops the parent's workers without touching them; the child starts its own.

    Args:
        max_workers: The most worker processes at once.
        memory_limit_mb: The address-space limit of each worker.
        startup_timeout: Seconds a new worker may take to import math-verify.
        script: The worker's program.
    """

    def __init__(self, *, max_workers: int, memory_limit_mb: int, startup_timeout: float, script: Path) -> None:
        self.max_workers = max_workers
        self.memory_limit_mb = memory_limit_mb
        self.startup_timeout = startup_timeout
        self.script = script
        self.forget()

    def forget(self) -> None:
        """Forgets the workers and the lock (a forked child must not use its parent's; it starts its own)."""
        for worker in getattr(self, "_workers", ()):
            worker.abandon()
        self._pid = os.getpid()
        self._pool = threading.Condition()
        self._idle: list[MathVerifyWorker] = []
        self._workers: set[MathVerifyWorker] = set()

    def acquire(self) -> MathVerifyWorker:
        """A ready worker for this thread alone, until :meth:`release`.

        Raises:
            CheckerUnavailableError: a new worker could not start.
        """
        if self._pid != os.getpid():  # belt and braces beside the at-fork hook
            self.forget()
        with self._pool:
            while not self._idle and len(self._workers) >= self.max_workers:
                self._pool.wait()
            worker = self._idle.pop() if self._idle else self._start_worker()
            if not worker.alive():  # died while idle (killed from outside): replace it
                self._workers.discard(worker)
                worker.abandon()
                worker = self._start_worker()
        try:
            worker.ensure_ready(self.startup_timeout)
        except CheckerUnavailableError:
            self.release(worker, healthy=False, replace=False)
            raise
        return worker

    def _start_worker(self) -> MathVerifyWorker:
        worker = MathVerifyWorker(self.memory_limit_mb, self.script)
        self._workers.add(worker)
        return worker

    def release(self, worker: MathVerifyWorker, healthy: bool, replace: bool = True) -> None:
        """Returns a worker to the pool; an unhealthy one is killed and (by default) a new one started at once,
        so that its import overlaps with the caller's other work."""
        if not healthy:
            worker.kill()
        with self._pool:
            if healthy:
                self._idle.append(worker)
            else:
                self._workers.discard(worker)
                if replace:
                    self._idle.append(self._start_worker())
            self._pool.notify()

    def clear_caches(self) -> None:
        """Makes each worker empty its parse caches before its next request."""
        with self._pool:
            for worker in self._workers:
                worker.clear_first = True

    def pids(self) -> list[int]:
        """Process ids of this process's running workers."""
        if self._pid != os.getpid():
            return []
        with self._pool:
            return sorted(worker.process.pid for worker in self._workers if worker.alive())

    def close(self) -> None:
        """Stops the workers (new ones start if the pool is used again); in a forked child, forgets the parent's."""
        if self._pid != os.getpid():
            self.forget()
            return
        with self._pool:
            workers, self._workers, self._idle = list(self._workers), set(), []
        for worker in workers:
            worker.close()
