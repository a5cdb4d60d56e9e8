"""One worker of the sandbox, from the host: starting it, one job's exchange, and reading the result.

Per job the host creates four pipes and passes their far ends to the worker over its control socket: the program
(read by the program process only), its output (written by the program), the tests (read by the tester only) and
the verdict (written by the tester only). The worker's fork server itself never sees any of their contents. The
result is assembled from the fork server's report (exit statuses, deadline, abort), the output and the tester's
verdict lines.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import selectors
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from reason_gym.sandbox.launch import Launch
from reason_gym.sandbox.results import Limits, RunResult, Status, TestOutcome
from reason_gym.sandbox.suite import TestSuite

HELLO_TIMEOUT = 60.0
_MAX_VERDICT_BYTES = 8 << 20


class WorkerLost(Exception):
    """The worker died or stopped answering during a job."""


class WorkerGone(WorkerLost):
    """The worker was already dead when a job was handed to it: the job never started (another worker can run it)."""


@dataclass
class RawRun:
    """What came back from a job: the fork server's report, the output (capped) and the verdict lines."""

    report: dict[str, Any]
    output: bytearray = field(default_factory=bytearray)
    output_total: int = 0
    verdict: bytearray = field(default_factory=bytearray)


def _nonblocking(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


class Worker:
    """One fork server in its sandbox, and the host's end of its control socket."""

    def __init__(self, launch: Launch, slot: int) -> None:
        self.slot = slot
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = parent
        try:
            self.process = subprocess.Popen(
                launch.command(launch.config(child.fileno())),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=None if launch.debug else subprocess.PIPE,
                pass_fds=(child.fileno(),),
                env=launch.env,
                cwd=launch.cwd,
                start_new_session=True,
            )
        except OSError:
            parent.close()
            raise
        finally:
            child.close()
        self.facts = self._hello()["facts"]
        if self.process.stderr is not None:
            self.process.stderr.close()  # the worker has pointed its stderr at /dev/null

    def _hello(self) -> dict[str, Any]:
        data = self.sock.recv(1 << 16) if _readable(self.sock, HELLO_TIMEOUT) else b""
        if data:
            return json.loads(data)
        self.sock.close()
        try:
            self.process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        stderr = ""
        if self.process.stderr is not None:  # why it failed, e.g. "bwrap: No permissions to create new namespace"
            stderr = self.process.stderr.read().decode(errors="replace").strip()[-2000:]
            self.process.stderr.close()
        raise OSError(f"the worker did not start (exit status {self.process.returncode}): {stderr}")

    @property
    def alive(self) -> bool:
        """Whether the worker's process is still running."""
        return self.process.poll() is None

    @property
    def ready(self) -> bool:
        """Whether an idle worker can take a job: running, and nothing to read on its control socket (an idle
        worker sends nothing; a readable socket means its fork server hung up, i.e. died, or misbehaved)."""
        if not self.alive:
            return False
        readable, _, _ = select.select([self.sock], [], [], 0)
        return not readable

    def close(self) -> None:
        """Tells the worker to stop, closes the control socket and makes sure the process is gone and reaped (a
        worker that sees the socket close without "close" takes its host for dead: see the keeper)."""
        with contextlib.suppress(OSError):
            self.sock.send(b'{"op": "close"}')
        self.sock.close()
        try:
            self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.process.terminate()  # a keeper (partial isolation) then kills everything of its worker
            try:
                self.process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()

    def forget(self) -> None:
        """In a forked child: drop our copy of the socket; the worker belongs to the parent."""
        self.sock.close()

    # -- one job

    def run(self, job: dict[str, Any], program: bytes, tests: bytes, limits: Limits) -> RawRun:
        """Hands the worker one job and collects the report, the output and the verdict.

        Raises:
            WorkerLost: The worker died, or missed the deadline by far (the pool then replaces it).
        """
        prog_r, prog_w = os.pipe()
        out_r, out_w = os.pipe()
        tests_r, tests_w = os.pipe()
        verdict_r, verdict_w = os.pipe()
        ours = {prog_w, out_r, tests_w, verdict_r}  # closed exactly once: fd numbers are reused by other threads
        try:
            try:
                socket.send_fds(self.sock, [json.dumps(job).encode()], [prog_r, out_w, tests_r, verdict_w])
            except OSError as error:
                raise WorkerGone(f"the worker is gone ({error})") from None
            finally:
                for fd in (prog_r, out_w, tests_r, verdict_w):
                    os.close(fd)
            for fd in ours:
                _nonblocking(fd)
            deadline = time.monotonic() + limits.timeout + max(2.0, limits.timeout)
            raw = self._exchange(job, {prog_w: program, tests_w: tests}, out_r, verdict_r, limits, deadline, ours)
            if raw.report.get("started") is False:  # the worker refused the job before running anything
                raise WorkerGone(str(raw.report.get("error", "the worker cannot run jobs")))
            return raw
        finally:
            for fd in ours:
                os.close(fd)

    def _exchange(
        self,
        job: dict[str, Any],
        outgoing: dict[int, bytes],
        out_r: int,
        verdict_r: int,
        limits: Limits,
        deadline: float,
        ours: set[int],
    ) -> RawRun:
        raw = RawRun(report={})
        selector = selectors.DefaultSelector()
        pending = {fd: memoryview(data) for fd, data in outgoing.items()}
        for fd in pending:
            selector.register(fd, selectors.EVENT_WRITE)
        for fd in (out_r, verdict_r, self.sock.fileno()):
            selector.register(fd, selectors.EVENT_READ)
        open_reads, aborted = {out_r, verdict_r}, False
        try:
            while open_reads or not raw.report:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise WorkerLost("the worker missed its deadline")
                for key, _ in selector.select(timeout):
                    fd = key.fd
                    if fd in pending:
                        self._write_some(fd, pending, selector, ours)
                    elif fd == self.sock.fileno():
                        raw.report = self._report(job)
                        selector.unregister(fd)
                    else:
                        data = _read_some(fd)
                        if data is None:
                            continue
                        if not data:
                            open_reads.discard(fd)
                            selector.unregister(fd)
                        elif fd == verdict_r:
                            if len(raw.verdict) < _MAX_VERDICT_BYTES:
                                raw.verdict += data
                        else:
                            aborted |= self._take_output(raw, data, limits, job, aborted)
        finally:
            selector.close()
        return raw

    def _write_some(
        self, fd: int, pending: dict[int, memoryview], selector: selectors.BaseSelector, ours: set[int]
    ) -> None:
        try:
            pending[fd] = pending[fd][os.write(fd, pending[fd]) :]
        except BlockingIOError:
            return
        except BrokenPipeError:  # the reader is gone (the program died early): nothing more to send
            pending[fd] = memoryview(b"")
        if not pending[fd]:  # all written: close now, the reader reads to the end of the stream
            selector.unregister(fd)
            os.close(fd)
            ours.discard(fd)
            del pending[fd]

    def _take_output(self, raw: RawRun, data: bytes, limits: Limits, job: dict[str, Any], aborted: bool) -> bool:
        raw.output_total += len(data)
        room = limits.output_bytes - len(raw.output)
        if room > 0:
            raw.output += data[:room]
        if raw.output_total > limits.output_bytes and not aborted and not raw.report:  # a finished job: no abort
            with contextlib.suppress(OSError):  # a worker that is gone is noticed by the exchange loop
                self.sock.send(json.dumps({"op": "abort", "id": job["id"], "reason": "output-limit"}).encode())
            return True
        return False

    def _report(self, job: dict[str, Any]) -> dict[str, Any]:
        try:
            data = self.sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            raise WorkerLost("the worker died")
        report = json.loads(data)
        if report.get("id") != job["id"]:
            raise WorkerLost(f"the worker answered job {report.get('id')} for job {job['id']}")
        return report


def _readable(sock: socket.socket, timeout: float) -> bool:
    """Whether ``sock`` becomes readable within ``timeout`` seconds."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def _read_some(fd: int) -> bytes | None:
    """Up to 64 KiB; ``b""`` at the end of the stream, ``None`` when nothing is there yet."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return None


# ------------------------------------------------------------------------------------------------ results


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _parse_verdict(data: bytes, suite: TestSuite) -> tuple[list[TestOutcome], dict[str, Any] | None, list[str]]:
    names = suite.test_names
    outcomes: list[TestOutcome | None] = [None] * len(names)
    done: dict[str, Any] | None = None
    setup_errors: list[str] = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        number = record.get("test")
        if isinstance(number, int) and 0 <= number < len(names):
            outcomes[number] = TestOutcome(names[number], bool(record.get("passed")), str(record.get("message", "")))
        elif "setup_error" in record:
            setup_errors.append(str(record["setup_error"]))
        elif record.get("done"):
            done = record
    filled = [o or TestOutcome(names[i], False, "not run") for i, o in enumerate(outcomes)]
    return filled, done, setup_errors


def assemble(raw: RawRun, suite: TestSuite, limits: Limits) -> RunResult:
    """The result of a job from the worker's report, the output and the tester's verdict lines."""
    tests, done, setup_errors = _parse_verdict(bytes(raw.verdict), suite)
    report = raw.report
    program = report.get("program") or {}
    over = raw.output_total > limits.output_bytes  # also when the job ended before an abort could stop it
    status, error = _status(report, program, tests, done, setup_errors, limits, over)
    if status in (Status.TIMEOUT, Status.OUTPUT_LIMIT):  # the tester saw the program vanish; say why
        why = "timed out" if status is Status.TIMEOUT else "stopped: output limit"
        tests = [t if t.passed else TestOutcome(t.name, False, f"not finished ({why})") for t in tests]
    return RunResult(
        status=status,
        tests=tuple(tests),
        output=bytes(raw.output).decode("utf-8", errors="replace"),
        output_truncated=raw.output_total > len(raw.output),
        wall_time=float(report.get("wall", 0.0)),
        cpu_time=float(program.get("cpu", 0.0)),
        error=error,
    )


def _status(
    report: dict[str, Any],
    program: dict[str, Any],
    tests: list[TestOutcome],
    done: dict[str, Any] | None,
    setup_errors: list[str],
    limits: Limits,
    output_over: bool,
) -> tuple[Status, str]:
    if report.get("aborted") == "output-limit" or output_over:
        return Status.OUTPUT_LIMIT, f"the program wrote more than {limits.output_bytes} bytes of output"
    loaded = done is not None and done.get("program") == "ok"
    # A setup step that raised fails the run even when every test passed (or there were none): the steps between
    # tests may hold checks too (``result = candidate(2, 2)``, a helper's asserts), so an error there is no pass.
    setup_error = (done or {}).get("error") or (f"test setup failed: {setup_errors[0]}" if setup_errors else "")
    if loaded and all(test.passed for test in tests):
        return (Status.FAILED, str(setup_error)) if setup_error else (Status.PASSED, "")
    signal_number = program.get("signal")
    if report.get("timeout"):
        return Status.TIMEOUT, f"timed out after {limits.timeout:g} s"
    if signal_number == signal.SIGXCPU or (signal_number == signal.SIGKILL and program.get("cpu", 0) >= limits.cpu):
        return Status.TIMEOUT, f"the CPU-time limit ({limits.cpu} s) was exceeded"
    if done is not None and done.get("memory"):
        return Status.MEMORY, f"out of memory (limit {limits.memory_bytes >> 20} MiB)"
    if done is None:
        return Status.CRASHED, "the tester did not finish (it was killed)"
    if done.get("program") == "load_error":
        return Status.FAILED, f"the program did not load: {done.get('error', '')}"
    if done.get("program") in ("exited", "malformed"):
        if signal_number is not None:
            return Status.CRASHED, f"the program was killed by {_signal_name(signal_number)}"
        code = program.get("exit")
        return Status.CRASHED, f"the program exited (status {code}) before the tests finished"
    failed = sum(not test.passed for test in tests)
    return Status.FAILED, f"{failed} of {len(tests)} tests failed" if failed else str(setup_error)
