"""The sandbox's host side: a pool of warm workers, each one fork server in its own sandbox.

:class:`Sandbox` is thread-safe: each :meth:`Sandbox.run` takes an idle worker, hands it one job and gives it back
(or, if the job left anything behind, retires it while a fresh one starts in the background). Workers are started
and reaped by one long-lived thread of the pool: bubblewrap's ``--die-with-parent`` ties a sandbox to the *thread*
that started it, so starting workers from short-lived caller threads would kill them when those threads end.
Workers start when runs need them (up to ``workers``), or all at once with :meth:`Sandbox.start`. One job's
exchange with a worker is in :mod:`reason_gym.sandbox.worker`.
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
import tempfile
import threading
import time
import warnings
import weakref
from dataclasses import replace
from typing import Any

from reason_gym.process_local import LiveObjects, ProcessDefault
from reason_gym.sandbox.inside.files import remove_tree
from reason_gym.sandbox.launch import Launch, bubblewrap_problem, find_bwrap, isolation_of
from reason_gym.sandbox.results import Isolation, Limits, RunResult, Status, TestOutcome
from reason_gym.sandbox.suite import TestSuite
from reason_gym.sandbox.worker import HELLO_TIMEOUT, Worker, WorkerGone, WorkerLost, assemble
from reason_gym.settings import env_flag

_EMPTY_SUITE = TestSuite()
_HANDOVER_TRIES = 3
"""Workers a job is offered to before the run gives up, when each turns out dead before the job starts."""


class SandboxError(RuntimeError):
    """The sandbox itself cannot run (isolation missing, no worker could start); never raised for anything a program
    does."""


ALLOW_PARTIAL_ENV = "REASON_GYM_SANDBOX_ALLOW_PARTIAL"
"""Set to ``1`` to let sandboxes made without ``allow_partial`` run with partial isolation (``docs/sandbox.md``)."""

_HOW_TO_GET_FULL = (
    "Full isolation needs bubblewrap and the right to create namespaces: install it (Debian/Ubuntu: `sudo apt-get "
    "install bubblewrap`, Fedora: `sudo dnf install bubblewrap`) and run as root or with unprivileged user "
    "namespaces (`sysctl kernel.unprivileged_userns_clone=1`; Ubuntu 24.04 lets bwrap have them through its "
    "AppArmor profile; in a container, allow unshare, e.g. docker run --security-opt seccomp=unconfined). "
    f"To run untrusted code with weaker isolation anyway, pass Sandbox(allow_partial=True) or set "
    f"{ALLOW_PARTIAL_ENV}=1 (what each mode contains: docs/sandbox.md)."
)


def _env_allows_partial() -> bool:
    return env_flag(ALLOW_PARTIAL_ENV)


_LIVE: LiveObjects[Sandbox] = LiveObjects(
    forget=lambda sandbox: sandbox._forget(), close=lambda sandbox: sandbox.close()
)
"""Every sandbox: a forked child forgets its parent's workers; at exit each process closes its own (workers stopped,
scratch folders removed: nothing piles up in /tmp)."""
_WARNED: set[tuple[str, ...]] = set()


class Sandbox:
    """Runs untrusted programs against trusted tests, isolated by the OS; see :mod:`reason_gym.sandbox`.

    Args:
        workers: Programs run at once (one warm worker each, started when runs need them, or by :meth:`start`);
            default: the number of CPUs.
        limits: Default :class:`Limits` of a run.
        backend: ``"auto"`` (bubblewrap; with ``allow_partial``, partial isolation where bubblewrap cannot run),
            ``"bubblewrap"`` or ``"subprocess"`` (partial isolation; needs ``allow_partial``).
        python: The interpreter for the programs (default: this one's); they get its standard library only.
        disk_bytes: Size of each worker's writable tmpfs.
        debug: Show the workers' own errors on stderr.
        allow_partial: Run untrusted code even where full isolation is not available, with what the kernel
            allows (see ``docs/sandbox.md``; it warns once). Default: the ``REASON_GYM_SANDBOX_ALLOW_PARTIAL``
            environment variable, else ``False``: the sandbox fails closed.

    Raises:
        ValueError: A bad argument.
        SandboxError: Full isolation is not available here and partial isolation was not allowed (the message
            says what is missing and how to get it), or partial isolation cannot keep its promises either.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        limits: Limits | None = None,
        backend: str = "auto",
        python: str | None = None,
        disk_bytes: int = 64 << 20,
        debug: bool = False,
        allow_partial: bool | None = None,
    ) -> None:
        workers = workers if workers is not None else (os.cpu_count() or 1)
        if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 64:
            raise ValueError(f"workers must be an int from 1 to 64, got {workers!r}")
        if backend not in ("auto", "bubblewrap", "subprocess"):
            raise ValueError(f"backend must be 'auto', 'bubblewrap' or 'subprocess', got {backend!r}")
        if limits is not None and not isinstance(limits, Limits):
            raise ValueError(f"limits must be a Limits, got {type(limits).__name__}")
        if not isinstance(disk_bytes, int) or disk_bytes < (1 << 20):
            raise ValueError(f"disk_bytes must be an int >= 1 MiB, got {disk_bytes!r}")
        self.workers = workers
        self.limits = limits or Limits()
        self.backend = backend
        self.python = os.path.realpath(python or sys.executable)  # a venv's symlink does not exist in the sandbox
        self.disk_bytes = disk_bytes
        self.debug = debug
        self.allow_partial = _env_allows_partial() if allow_partial is None else bool(allow_partial)
        self._namespaces = _KEEPER_NAMESPACES
        self._bubblewrap_problem = self._check_can_run()
        self._reset()
        _LIVE.add(self)

    def _check_can_run(self) -> str | None:
        """Fails closed at construction: why bubblewrap cannot run (``None`` when it can).

        Raises:
            SandboxError: Full isolation is not available and partial isolation is not allowed or not possible.
        """
        problem = None
        if self.backend != "subprocess":
            problem = bubblewrap_problem(find_bwrap(), self.python, self.disk_bytes, os.geteuid())
            if problem is None:
                return None
            if self.backend == "bubblewrap" or not self.allow_partial:
                raise SandboxError(f"reason_gym will not run untrusted code here: {problem}. {_HOW_TO_GET_FULL}")
        elif not self.allow_partial:
            raise SandboxError(
                "backend='subprocess' is partial isolation, which runs only when asked for: pass "
                f"allow_partial=True or set {ALLOW_PARTIAL_ENV}=1 (what it contains: docs/sandbox.md)"
            )
        if os.geteuid() != 0:
            raise SandboxError(
                f"partial isolation without bubblewrap needs root (to give each worker a uid of its own, so that "
                f"nothing a program starts can outlive its run); as uid {os.geteuid()} it cannot keep runs apart"
                + (f" ({problem})" if problem else "")
                + ". Install bubblewrap instead (Debian/Ubuntu: `sudo apt-get install bubblewrap`)."
            )
        return problem

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: queue.SimpleQueue[Worker] = queue.SimpleQueue()
        self._requests: queue.SimpleQueue[tuple[str, Any] | None] = queue.SimpleQueue()
        self._live: set[Worker] = set()
        self._spawner: threading.Thread | None = None
        self._launch: Launch | None = None
        self._isolation: Isolation | None = None
        self._ready = threading.Event()
        self._errors: list[str] = []
        self._closed = False
        self._broken = False
        self._count = 0  # workers running or starting
        self._job_ids = itertools.count(1)
        self._scratch = ""

    # -- public API

    @property
    def isolation(self) -> Isolation:
        """The isolation in force (starts a first worker if none is running yet)."""
        return self._ensure_spawner()

    def start(self) -> Isolation:
        """Starts every worker now and waits until they are ready (they otherwise start when runs need them).

        Raises:
            SandboxError: A worker cannot start here.
        """
        isolation = self._ensure_spawner()
        with self._lock:
            missing = self.workers - self._count
            self._count = self.workers
        for slot in range(missing):
            self._requests.put(("start", self.workers - missing + slot))
        deadline = time.monotonic() + HELLO_TIMEOUT
        while len(self._live) < self.workers:
            if self._broken or time.monotonic() > deadline:
                raise SandboxError("not every sandbox worker started: " + " | ".join(self._errors[-3:]))
            time.sleep(0.01)
        return isolation

    def run(
        self,
        program: str,
        tests: TestSuite | None = None,
        *,
        limits: Limits | None = None,
        main: bool = False,
    ) -> RunResult:
        """Runs ``program`` and then ``tests`` against it, in a fresh process tree; see :mod:`reason_gym.sandbox`.

        Args:
            program: Python source (untrusted).
            tests: The trusted tests; ``None`` just runs the program (its ``PASSED`` then means only that it ran
                to its end, by its own account).
            limits: Overrides the sandbox's default limits for this run.
            main: Run the program as ``__main__`` (its ``if __name__ == "__main__":`` block runs).

        Raises:
            TypeError: ``program`` is not a str, ``tests`` not a TestSuite or ``limits`` not a Limits.
            SandboxError: No worker can start on this machine.
        """
        if not isinstance(program, str):
            raise TypeError(f"program must be a str, got {type(program).__name__}")
        if tests is not None and not isinstance(tests, TestSuite):
            raise TypeError(f"tests must be a TestSuite, got {type(tests).__name__}")
        if limits is not None and not isinstance(limits, Limits):
            raise TypeError(f"limits must be a Limits, got {type(limits).__name__}")
        limits = limits or self.limits
        suite = tests or _EMPTY_SUITE
        job = {"op": "run", "id": next(self._job_ids), "timeout": limits.timeout, "limits": limits.rlimits()}
        job.update(main=bool(main), names=list(suite.program_names))
        payload = program.encode("utf-8", errors="surrogatepass")
        for attempt in range(_HANDOVER_TRIES):
            worker = self._acquire()
            try:
                if not worker.ready:
                    raise WorkerGone("the worker died while idle")
                raw = worker.run(job, payload, suite.wire, limits)
                break
            except WorkerGone:  # died while idle (killed from outside, the machine's OOM killer): the job never ran
                self._retire(worker)
                if attempt == _HANDOVER_TRIES - 1:
                    raise SandboxError(f"{_HANDOVER_TRIES} workers in a row were dead when given the job") from None
            except WorkerLost as lost:
                self._retire(worker)
                status = Status.TIMEOUT if "deadline" in str(lost) else Status.CRASHED
                names = suite.test_names
                return RunResult(status, tuple(TestOutcome(n, False, "not run") for n in names), error=str(lost))
            except BaseException:
                self._retire(worker)
                raise
        if raw.report.get("clean") and worker.alive:
            self._idle.put(worker)
        else:
            self._retire(worker)
        return assemble(raw, suite, limits)

    def close(self) -> None:
        """Stops every worker. The sandbox cannot be used afterwards."""
        with self._lock:
            self._closed = True
            workers, self._live = list(self._live), set()
            self._requests.put(None)
        for worker in workers:
            worker.close()
        if self._scratch:  # whatever the runs left there, however deep (the workers are gone)
            remove_tree(self._scratch)

    def __enter__(self) -> Sandbox:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (e.g. for AsyncVectorEnv's spawn workers) as its settings: the other process gets its own pool."""
        settings = {"limits": self.limits, "backend": self.backend, "python": self.python}
        settings.update(disk_bytes=self.disk_bytes, debug=self.debug, allow_partial=self.allow_partial)
        return (_rebuild, (self.workers, settings))

    def __deepcopy__(self, memo: dict[int, Any]) -> Sandbox:
        return self  # a shared service, like a thread pool: copies of an environment share it

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workers

    def _ensure_spawner(self) -> Isolation:
        """Starts the spawner thread and a first worker (others start on demand); the isolation in force."""
        with self._lock:
            if self._closed:
                raise SandboxError("this Sandbox is closed")
            if self._spawner is None:
                self._spawner = threading.Thread(target=self._spawn_loop, name="reason-gym-sandbox", daemon=True)
                self._spawner.start()
                self._count = 1
                self._requests.put(("start", 0))
        if not self._ready.wait(HELLO_TIMEOUT + 5):
            raise SandboxError("no sandbox worker started within a minute")
        if self._isolation is None:
            raise SandboxError("no sandbox worker can start here: " + " | ".join(self._errors[-3:]))
        if not self._isolation.full and not self.allow_partial:
            self.close()
            raise SandboxError(
                "reason_gym will not run untrusted code with partial isolation ("
                + "; ".join(self._isolation.missing)
                + f"). {_HOW_TO_GET_FULL}"
            )
        _warn_once(self._isolation)  # in the caller's thread: a warnings filter set to "error" raises there
        return self._isolation

    def _acquire(self) -> Worker:
        self._ensure_spawner()
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:  # every worker is busy: start another, up to `workers`
            grow = self._count < self.workers
            self._count += grow
        if grow:
            self._requests.put(("start", self._count - 1))
        while True:
            try:
                return self._idle.get(timeout=0.5)
            except queue.Empty:
                if self._broken or self._closed:
                    raise SandboxError("no sandbox worker can run: " + " | ".join(self._errors[-3:])) from None

    def _retire(self, worker: Worker) -> None:
        """Stops a worker that is gone or unclean and starts a replacement (in the spawner thread)."""
        with self._lock:
            self._live.discard(worker)
            if not self._closed:
                self._requests.put(("retire", worker))
                self._requests.put(("start", worker.slot))

    def _spawn_loop(self) -> None:
        failures = 0
        while (request := self._requests.get()) is not None:
            kind, value = request
            if kind == "retire":
                value.close()
                continue
            worker = self._start_worker(value)
            if worker is None:
                failures += 1
                if failures >= 3 and not self._live:
                    self._broken = True
                    self._ready.set()  # give up: callers get a SandboxError with the reasons
                    return
                time.sleep(min(1.0, 0.05 * 2**failures))
                self._requests.put(("start", value))
                continue
            failures = 0
            with self._lock:
                if self._closed:
                    worker.close()
                    continue
                self._live.add(worker)
            self._idle.put(worker)
            self._ready.set()

    def _start_worker(self, slot: int) -> Worker | None:
        if self._launch is None:
            try:
                self._launch = self._choose_launch()
            except SandboxError as error:
                self._errors.append(str(error))
                return None
        try:
            worker = Worker(self._launch, slot)
        except OSError as error:
            self._errors.append(f"{self._launch.backend}: {error}")
            return None
        if self._isolation is None:
            self._isolation = isolation_of(self._launch, worker.facts)
            if self._bubblewrap_problem:
                self._isolation = _with_reason(self._isolation, self._bubblewrap_problem)
        return worker

    def _choose_launch(self) -> Launch:
        bwrap = find_bwrap()
        if self.backend == "subprocess" or self._bubblewrap_problem or bwrap is None:
            return self._subprocess_launch()  # allowed, or the constructor would have refused
        return Launch("bubblewrap", self.python, self.disk_bytes, bwrap=bwrap, debug=self.debug)

    def _subprocess_launch(self) -> Launch:
        """Partial isolation: a keeper per worker; runs work in a private tmpfs where the kernel grants a mount
        namespace, else in folders under a scratch folder of this sandbox (removed by close)."""
        if not self._scratch:
            self._scratch = tempfile.mkdtemp(prefix="reason-gym-sandbox-")
            os.chmod(self._scratch, 0o1777)  # workers started as root switch to users of their own
            weakref.finalize(self, _remove_scratch, self._scratch, os.getpid())  # a sandbox dropped unclosed
        launch = Launch("subprocess", self.python, self.disk_bytes, debug=self.debug, scratch=self._scratch)
        return launch if self._namespaces else replace(launch, namespaces=False)

    @property
    def scratch(self) -> str:
        """The host folder of the runs' working directories (subprocess backend), or ``""``."""
        return self._scratch

    def _forget(self) -> None:
        """After fork, in the child: the workers are the parent's; start afresh on first use."""
        for worker in list(self._live):
            worker.forget()
        self._reset()


def _rebuild(workers: int, settings: dict[str, Any]) -> Sandbox:
    return Sandbox(workers, **settings)


def _with_reason(isolation: Isolation, reason: str) -> Isolation:
    return replace(isolation, missing=(*isolation.missing, f"no bubblewrap: {reason[:300]}"))


def _warn_once(isolation: Isolation) -> None:
    if isolation.full or isolation.missing in _WARNED:
        return
    _WARNED.add(isolation.missing)
    warnings.warn(
        "reason_gym sandbox: partial isolation, as asked for (" + "; ".join(isolation.missing) + "). Every layer "
        "needs Linux x86-64 with bubblewrap (apt-get install bubblewrap) and either root or unprivileged user "
        "namespaces; Sandbox().isolation says what is in force, docs/sandbox.md what each mode contains.",
        RuntimeWarning,
        stacklevel=4,
    )


_KEEPER_NAMESPACES = True
"""Whether partial isolation asks the kernel for namespaces (the tests turn it off to check the uid layer alone,
as in a container that refuses ``unshare``)."""


def _remove_scratch(path: str, owner: int) -> None:
    if os.getpid() == owner:  # never a forked child's copy of the parent's folder
        remove_tree(path)


_DEFAULT: ProcessDefault[Sandbox] = ProcessDefault(Sandbox)


def default_sandbox() -> Sandbox:
    """The process-wide sandbox environments use unless given one (started on first use)."""
    return _DEFAULT.get()
