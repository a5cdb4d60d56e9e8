"""A sandbox for untrusted Python: a program runs against trusted tests in an isolated process tree.

Model output is untrusted code, so the checker of every code task runs it here and nowhere else (reason_gym never
``exec``s a program in its own process)::

    >>> from reason_gym.sandbox import Sandbox, TestSuite
    >>> tests = TestSuite.from_asserts(["assert add(2, 2) == 4", "assert add(1, 1) == 3"])
    >>> with Sandbox(workers=1) as sandbox:
    ...     result = sandbox.run("def add(a, b):\\n    return a + b\\n", tests)
    >>> result.status.value, result.num_passed, result.tests[1].message
    ('failed', 1, 'assertion failed: got 2, expected 3')

A :class:`Sandbox` keeps warm workers, each a fork server in its own bubblewrap sandbox; a run forks a fresh
process for the program, whose every assertion is checked by a separate tester process (see
:mod:`reason_gym.sandbox.inside` for the protocol and exactly what a pass proves). It is thread-safe, survives
``fork`` (a child starts its own workers) and pickles as its settings (for AsyncVectorEnv's spawn workers).

Isolation, each layer enforced by the kernel, not by Python code in the program's process:

- **Resource limits**: ``setrlimit`` in the program's process before its first line runs (CPU seconds, address
  space, file size, open files, processes), and a wall-clock deadline after which every process of the run is
  killed. Output beyond a limit stops the run.
- **Processes**: each worker is a PID namespace whose init is the fork server; after every run all the run's
  processes (orphans and daemons included) are killed and reaped, so nothing outlives a run, and nothing outside
  the namespace can be seen or signalled. ``--die-with-parent`` ends every sandbox with the host process.
- **Network**: a network namespace with only its own loopback; on x86-64 a seccomp filter also refuses ``socket()``.
- **Files**: a mount namespace with ``/usr`` and the interpreter read-only, a private ``/proc``, a minimal ``/dev``,
  and one writable folder, the working directory: a size-limited tmpfs emptied after every run. Nothing else of
  the host is visible.
- **Privileges**: started as root, each worker runs as users of its own (one for the fork server and the programs,
  one for the tester) with no capabilities; otherwise in a user namespace. Always ``no_new_privs``, and the
  processes are non-dumpable (no ``/proc/<pid>/mem``, ``environ`` or ``fd`` of one another).
- **Syscalls** (x86-64): seccomp refuses ptrace and process_vm_*, keyrings, SysV IPC and message queues (channels
  between runs), new namespaces, mounts, bpf, perf, io_uring, userfaultfd and other kernel interfaces.
- **Environment**: empty; the host's variables never reach a worker.

It fails closed: where a layer is unavailable (no bubblewrap, no user namespaces, not x86-64), ``Sandbox()`` raises
:class:`SandboxError` at construction, saying what is missing and how to get it. Weaker isolation runs only when asked
for (``Sandbox(allow_partial=True)`` or ``REASON_GYM_SANDBOX_ALLOW_PARTIAL=1``): a root keeper then gives each worker
the namespaces the kernel grants, or users of its own; it warns once, and :attr:`Sandbox.isolation` says what is
missing and why. ``docs/sandbox.md`` tabulates what each mode contains.
"""

from reason_gym.sandbox.pool import ALLOW_PARTIAL_ENV, Sandbox, SandboxError, default_sandbox
from reason_gym.sandbox.results import Isolation, Limits, RunResult, Status, TestOutcome
from reason_gym.sandbox.suite import Statement, TestSuite, rewrite_asserts

__all__ = [
    "ALLOW_PARTIAL_ENV",
    "Isolation",
    "Limits",
    "RunResult",
    "Sandbox",
    "SandboxError",
    "Statement",
    "Status",
    "TestOutcome",
    "TestSuite",
    "default_sandbox",
    "rewrite_asserts",
]
