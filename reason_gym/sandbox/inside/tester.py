"""The tester process: trusted test code, with the program only behind proxies; the verdict goes to the host."""

from __future__ import annotations

import ast
import builtins
import collections
import importlib
import json
import math
import os
import random
import resource
import socket
import sys
import time
import types
import typing

from .kernel import EXIT_CODE, redirect
from .wire import (
    MAX_MESSAGE,
    Channel,
    Decoder,
    Encoder,
    Gone,
    Malformed,
    RemoteObject,
    read_to_eof,
    short,
    write_all,
)

# ---------------------------------------------------------------------------------------------------- tester side

_TRUSTED_EXCEPTIONS = {
    name: value
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, Exception) and name not in ("StopIteration", "StopAsyncIteration")
}
"""Built-in exceptions the program raises are raised as themselves in the tests (``except ValueError`` works), except
the ones that steer iteration: a ``StopIteration`` from a program would silently end a ``map()`` in a test."""


class ProgramError(Exception):
    """An exception the program raised that is not a built-in type (its name and message, as text)."""


class Remote:
    """The tester's end of the channel to the program."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.proxies: dict[int, RemoteObject] = {}
        self.encoder = Encoder(None)
        self.decoder = Decoder(self._proxy)
        self.memory_error = False

    def _proxy(self, handle: int, text: str, truth: bool) -> RemoteObject:
        if handle not in self.proxies:
            self.proxies[handle] = RemoteObject(self, handle, text, truth)
        return self.proxies[handle]

    def encode(self, value: object) -> object:
        """An argument for the program (plain data or one of its handles)."""
        return self.encoder.encode(value)

    def request(self, message: list[object]) -> object:
        """Sends a request and returns the decoded value, or raises the program's exception."""
        self.channel.send(message)
        reply = self.channel.recv()
        if not isinstance(reply, list) or not reply or reply[0] not in ("ok", "raise"):
            raise Malformed("malformed reply")
        if reply[0] == "ok" and len(reply) == 2:
            return self.decoder.decode(reply[1])
        if len(reply) != 4 or not all(isinstance(x, str) for x in reply[1:]):
            raise Malformed("malformed exception")
        raise self._exception(*reply[1:])  # type: ignore[misc]

    def _exception(self, name: str, message: str, text: str) -> Exception:
        self.memory_error |= name == "MemoryError"
        kind = _TRUSTED_EXCEPTIONS.get(name, ProgramError)
        try:
            error = kind(message) if kind is not ProgramError else ProgramError(f"{name}: {message}")
        except Exception:  # a built-in exception type whose constructor wants other arguments
            error = ProgramError(f"{name}: {message}")
        error.program_traceback = text[-MAX_MESSAGE:]  # type: ignore[attr-defined]
        return error


def _assert_failed(left: object, op: str, right: object, message: object = None) -> typing.NoReturn:
    """Raised by rewritten ``assert left op right``: says what was got and what was expected."""
    if op == "==":
        text = f"got {short(left)}, expected {short(right)}"
    else:
        text = f"{short(left)} {op} {short(right)} is false"
    raise AssertionError(text + (f" ({message})" if message is not None else ""))


def _assert_true_failed(value: object, message: object = None) -> typing.NoReturn:
    raise AssertionError(f"got {short(value)}" + (f" ({message})" if message is not None else ""))


def _expect_output(value: object, want: str) -> None:
    """A doctest example: the repr of the value must read as ``want`` (or equal its literal); plain data only."""
    if isinstance(value, RemoteObject):
        raise AssertionError(f"got a program object {short(value)}, expected {want}")
    if repr(value) == want:
        return
    try:
        expected = ast.literal_eval(want)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        expected = _NOTHING
    if expected is not _NOTHING and type(value) is type(expected) and value == expected:
        return
    raise AssertionError(f"got {short(value)}, expected {want}")


_NOTHING = object()


def _missing(name: str) -> typing.Callable[..., typing.NoReturn]:
    """Stands for a name the tests call but the program does not define."""

    def missing(*args: object, **kwargs: object) -> typing.NoReturn:
        raise NameError(f"the program does not define {name!r}")

    return missing


def _describe(error: BaseException) -> str:
    if isinstance(error, ProgramError):
        text = f"the program raised {error}"
    elif hasattr(error, "program_traceback"):
        text = f"the program raised {type(error).__name__}: {error}"
    elif isinstance(error, AssertionError):
        text = f"assertion failed: {error}" if str(error) else "assertion failed"
    else:
        text = f"{type(error).__name__}: {error}"
    return text[:MAX_MESSAGE]


_CODE_CACHE: collections.OrderedDict[tuple[str, str], types.CodeType] = collections.OrderedDict()


def _compiled(source: str, filename: str) -> types.CodeType:
    """Compiled test code, cached: the tester lives across jobs and the same problems come back (e.g. RL)."""
    key = (source, filename)
    code = _CODE_CACHE.get(key)
    if code is None:
        code = _CODE_CACHE[key] = compile(source, filename, "exec")
        if len(_CODE_CACHE) > 4096:
            _CODE_CACHE.popitem(last=False)
    else:
        _CODE_CACHE.move_to_end(key)
    return code


class Verdict:
    """JSON lines to the host: one per test, then a last one (``done``).

    Lines are sent in batches (every quarter of a second, and at the end): one wake-up of the host per run instead
    of one per test. The tester always gets to the end (after a timeout the fork server kills the program, and the
    tester then reports the tests left as not finished), so nothing is lost by waiting.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[str] = []
        self.size = 0
        self.sent = time.monotonic()

    def write(self, record: dict[str, object]) -> None:
        """Queues one line; sends the batch at ``done``, past 64 KiB or a quarter of a second after the last."""
        line = json.dumps(record) + "\n"
        self.lines.append(line)
        self.size += len(line)
        if record.get("done") or self.size > 1 << 16 or time.monotonic() - self.sent > 0.25:
            write_all(self.fd, "".join(self.lines).encode())
            self.lines, self.size, self.sent = [], 0, time.monotonic()


def tester_loop(control_fd: int, debug: bool) -> None:
    """The tester process: one per worker, forked from the clean fork server before any job.

    It runs the trusted test code of each job it is handed (the program only behind proxies) and writes the
    verdict to the host. It lives across jobs (a fork per run less); program processes are never forked from
    it, so nothing of its memory (earlier jobs' tests included) is ever inherited by a program.
    """
    control = socket.socket(fileno=control_fd)
    if not debug:
        devnull = os.open(os.devnull, os.O_RDWR)
        redirect(devnull, devnull, devnull)
        os.close(devnull)
    sys.set_int_max_str_digits(100_000)  # bounds the work of reading a huge int from the program
    while True:
        try:
            data, fds, _flags, _address = socket.recv_fds(control, 1 << 16, 4)
        except OSError:
            os._exit(0)
        if not data or len(fds) != 4:
            os._exit(0)
        job = json.loads(data)
        _limit_tester(job["limits"])
        try:
            _test_one(*fds)
        except BaseException:
            os._exit(EXIT_CODE)
        for fd in fds:
            os.close(fd)
        control.send(b"done")


def _limit_tester(limits: dict[str, int]) -> None:
    """This job's CPU time on top of what the tester has used so far, and the memory limit."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    resource.setrlimit(resource.RLIMIT_CPU, (used + int(limits["cpu"]) + 1, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_AS, (int(limits["memory"]), resource.RLIM_INFINITY))


def _test_one(tests_fd: int, verdict_fd: int, req_fd: int, resp_fd: int) -> None:
    random.seed(0)  # tests that draw random inputs see the same ones in every run
    spec = json.loads(read_to_eof(tests_fd))
    verdict = Verdict(verdict_fd)
    remote = Remote(Channel(resp_fd, req_fd))
    tests = [i for i, statement in enumerate(spec["statements"]) if statement["test"]]
    outcome = _run_tests(spec, remote, verdict, tests)
    outcome["memory"] = remote.memory_error or outcome.get("memory", False)
    verdict.write({"done": True, **outcome})


def _run_tests(spec: dict, remote: Remote, verdict: Verdict, tests: list[int]) -> dict[str, object]:
    def fail_rest(start: int, message: str) -> None:
        for number in range(start, len(tests)):
            verdict.write({"test": number, "passed": False, "message": message})

    try:
        first = remote.channel.recv()
    except Gone:
        fail_rest(0, "not run: the program exited before the tests could start")
        return {"program": "exited"}
    except Malformed as error:
        fail_rest(0, f"not run: {error}")
        return {"program": "malformed"}
    if not (isinstance(first, list) and len(first) == 2 and first[0] == "loaded"):
        ok = isinstance(first, list) and len(first) == 4 and first[0] == "load_error"
        name, message = (first[1], first[2]) if ok else ("?", "")
        fail_rest(0, f"not run: the program did not load: {name}: {message}"[:MAX_MESSAGE])
        return {"program": "load_error", "error": f"{name}: {message}"[:MAX_MESSAGE], "memory": name == "MemoryError"}
    namespace: dict[str, object] = {
        "__name__": "__tests__",
        "__builtins__": builtins,
        "_rg_assert_failed": _assert_failed,
        "_rg_assert_true_failed": _assert_true_failed,
        "_rg_expect_output": _expect_output,
    }
    try:
        names = remote.decoder.decode(first[1])
        if not isinstance(names, dict):
            raise Malformed("malformed names")
        # Only what was asked for: a program must not slip in a name of the tests' own (their helpers, builtins).
        names = {name: value for name, value in names.items() if name in spec["names"]}
        namespace.update(names)  # the setup may use the program's names too (MBPP builds trees of its Node)
        for module in spec.get("modules", ()):  # the tests' own standard-library modules, never the program's
            if module in sys.stdlib_module_names:
                namespace[module] = importlib.import_module(module)
        for part, code in enumerate(spec["setup"]):
            exec(_compiled(code, f"<test setup {part}>"), namespace)
        for alias, target in spec["bindings"].items():  # after the setup: the program's entry point replaces
            found = names[target] if target in names else _missing(target)  # the stub a HumanEval prompt defines
            namespace[alias] = namespace[target] = found
    except (Gone, Malformed) as error:
        fail_rest(0, "not run: the program exited" if isinstance(error, Gone) else f"not run: {error}")
        return {"program": "exited" if isinstance(error, Gone) else "malformed"}
    except Exception as error:
        fail_rest(0, f"not run: the test setup failed: {_describe(error)}")
        return {"program": "ok", "error": f"test setup failed: {_describe(error)}"}
    return _run_statements(spec, namespace, verdict, tests, fail_rest)


def _run_statements(
    spec: dict,
    namespace: dict[str, object],
    verdict: Verdict,
    tests: list[int],
    fail_rest: typing.Callable[[int, str], None],
) -> dict[str, object]:
    number = 0
    for index, statement in enumerate(spec["statements"]):
        passed, message = True, ""
        try:
            exec(_compiled(statement["code"], f"<test {index}>"), namespace)
        except Gone:
            fail_rest(number, "the program exited during the test")
            return {"program": "exited"}
        except Malformed as error:
            fail_rest(number, f"the program sent {error}")
            return {"program": "malformed"}
        except Exception as error:
            passed, message = False, _describe(error)
        if statement["test"]:
            verdict.write({"test": number, "passed": passed, "message": message})
            number += 1
        elif not passed:
            verdict.write({"setup_error": message})
    return {"program": "ok"}
