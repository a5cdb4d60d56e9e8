"""What the sandbox takes and returns: resource limits, run results, and the isolation a machine allows."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """How a run ended. Only ``PASSED`` is a pass; the others say why it is not."""

    PASSED = "passed"
    """Every test passed and every setup step between them ran (with no tests: the program ran to its end)."""
    FAILED = "failed"
    """The program ran; some test or setup step failed, or it did not load (syntax error, missing name, exception)."""
    TIMEOUT = "timeout"
    """The wall-clock deadline or the CPU-time limit was reached."""
    MEMORY = "memory"
    """The program ran out of its address-space limit (``MemoryError``)."""
    CRASHED = "crashed"
    """The program died (a signal, ``os._exit``, ``sys.exit`` during a call) before the tests finished."""
    OUTPUT_LIMIT = "output-limit"
    """The program wrote more than the output limit to stdout/stderr; it was stopped."""


@dataclass(frozen=True)
class Limits:
    """Per-run resource limits, each enforced by the kernel on the program's process tree.

    Attributes:
        timeout: Wall-clock seconds for the whole run (loading the program and every test); the process tree is
            killed at the deadline.
        cpu_seconds: CPU seconds of the program's process (``RLIMIT_CPU``); default: ``ceil(timeout)``.
        memory_bytes: Address space of each process (``RLIMIT_AS``).
        file_size_bytes: Largest file the program may write (``RLIMIT_FSIZE``).
        open_files: Open file descriptors per process (``RLIMIT_NOFILE``).
        processes: Processes and threads the program may run at once, itself included (``RLIMIT_NPROC``).
        output_bytes: stdout and stderr together; beyond it the run stops with ``Status.OUTPUT_LIMIT``.
    """

    timeout: float = 5.0
    cpu_seconds: int | None = None
    memory_bytes: int = 1 << 30
    file_size_bytes: int = 16 << 20
    open_files: int = 256
    processes: int = 16
    output_bytes: int = 256 << 10

    def __post_init__(self) -> None:
        timeout = self.timeout
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 3600:
            raise ValueError(f"timeout must be a number of seconds in (0, 3600], got {timeout!r}")
        # (least, most): the most is what the kernel can still set (beyond it a run would fail to start, which
        # would read as the program's crash) and more than any test of a program needs
        checks = {
            "cpu_seconds": (self.cpu_seconds, 1, 3600),
            "memory_bytes": (self.memory_bytes, 32 << 20, 1 << 40),
            "file_size_bytes": (self.file_size_bytes, 0, 1 << 40),
            "open_files": (self.open_files, 16, 1 << 12),
            "processes": (self.processes, 1, 1 << 12),
            "output_bytes": (self.output_bytes, 0, 1 << 30),
        }
        for name, (value, least, most) in checks.items():
            if value is None and name == "cpu_seconds":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
                raise ValueError(f"{name} must be an int in [{least}, {most}], got {value!r}")

    @property
    def cpu(self) -> int:
        """The CPU-time limit in whole seconds."""
        return self.cpu_seconds if self.cpu_seconds is not None else max(1, math.ceil(self.timeout))

    def rlimits(self) -> dict[str, int]:
        """The limits the program's process applies to itself."""
        return {
            "cpu": self.cpu,
            "memory": self.memory_bytes,
            "file_size": self.file_size_bytes,
            "open_files": self.open_files,
            "processes": self.processes,
        }


@dataclass(frozen=True)
class TestOutcome:
    """The verdict on one test.

    Attributes:
        name: The test as the suite names it (e.g. its source line).
        passed: Whether it ran without an error.
        message: Why it failed: the values compared, the program's exception, or why it did not run.
    """

    __test__ = False  # not a pytest test class

    name: str
    passed: bool
    message: str = ""


@dataclass(frozen=True)
class RunResult:
    """What a run did.

    Attributes:
        status: How it ended (see :class:`Status`).
        tests: One outcome per test of the suite, in order (tests that did not run failed with a message).
        output: The program's stdout and stderr, interleaved as written, up to the output limit (decoded as UTF-8
            with replacement characters).
        output_truncated: Whether more output was written than ``output`` holds.
        wall_time: Seconds from the start of the program's process to the end of the tests.
        cpu_time: CPU seconds the program's process used.
        error: Why the run did not pass, in one line (empty for a pass).
    """

    status: Status
    tests: tuple[TestOutcome, ...] = ()
    output: str = ""
    output_truncated: bool = False
    wall_time: float = 0.0
    cpu_time: float = 0.0
    error: str = ""

    @property
    def passed(self) -> bool:
        """Whether the run passed (every test, with positive evidence from the tester)."""
        return self.status is Status.PASSED

    @property
    def num_tests(self) -> int:
        """How many tests the suite has."""
        return len(self.tests)

    @property
    def num_passed(self) -> int:
        """How many tests passed."""
        return sum(test.passed for test in self.tests)

    @property
    def fraction_passed(self) -> float:
        """Passed tests over all tests (1.0 or 0.0 for a suite with no tests, by the status)."""
        if not self.tests:
            return float(self.passed)
        return self.num_passed / len(self.tests)


@dataclass(frozen=True)
class Isolation:
    """The isolation layers in force, as the sandbox's worker verified them from the inside.

    In every mode that runs at all, no process of a run outlives it (whatever it does to its parent), each run
    starts with no file an earlier run left, and resource limits apply; the layers below say what else holds.
    The table in ``docs/sandbox.md`` lists them per mode.

    Attributes:
        backend: ``"bubblewrap"`` (full isolation) or ``"subprocess"`` (partial isolation, only when asked for:
            namespaces where the kernel grants them, else a uid of its own per worker).
        rlimits: Resource limits (always).
        pid_namespace: Runs cannot see or signal processes outside; all of a run's processes die with it.
        network_namespace: No network interface but a private loopback.
        mount_namespace: Only system directories, read-only, plus a private working directory (a size-limited
            tmpfs, emptied after every run); nothing else of the host's filesystem is visible.
        ipc_namespace: Private System V IPC and POSIX message queues.
        private_user: Runs as an unprivileged user of its own (started as root: a uid no one else uses) or in a
            user namespace, with no capabilities.
        seccomp: A syscall filter refuses sockets, ptrace, keyrings, SysV IPC, namespaces, mounts and other
            kernel interfaces (x86-64 only).
        disk_cap: Everything a run can write lives in one size-limited tmpfs (``disk_bytes``).
        stdlib: The programs can import the whole standard library.
        missing: One line for each layer that is not in force, saying why.
    """

    backend: str
    rlimits: bool = True
    pid_namespace: bool = False
    network_namespace: bool = False
    mount_namespace: bool = False
    ipc_namespace: bool = False
    private_user: bool = False
    seccomp: bool = False
    disk_cap: bool = False
    stdlib: bool = False
    missing: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def full(self) -> bool:
        """Whether every layer is in force."""
        return not self.missing

    @property
    def level(self) -> str:
        """``"full"``, or ``"partial"`` when a layer is missing (see :attr:`missing`)."""
        return "full" if self.full else "partial"
