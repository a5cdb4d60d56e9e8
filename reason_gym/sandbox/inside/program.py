"""The program process: the job's limits, then the submitted program, then the tester's calls."""

from __future__ import annotations

import builtins
import contextlib
import linecache
import os
import random
import signal
import sys
import traceback

from .kernel import apply_limits, redirect
from .wire import MAX_MESSAGE, Channel, Decoder, Encoder, Gone, Malformed, read_to_eof

PROGRAM_FILE = "program.py"

# ---------------------------------------------------------------------------------------------------- program side


_PROGRAM_SOURCE = [""]


def _format_exception(error: BaseException) -> str:
    """The traceback of the program's exception, without the harness's own frames."""
    source = _PROGRAM_SOURCE[0]
    linecache.cache[PROGRAM_FILE] = (len(source), None, source.splitlines(True), PROGRAM_FILE)
    ours = os.path.dirname(__file__)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if os.path.dirname(f.filename) != ours]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
    lines += traceback.format_exception_only(type(error), error)
    text = "".join(lines)
    return text if len(text) <= MAX_MESSAGE else "...\n" + text[-MAX_MESSAGE:]


def exception_reply(error: BaseException) -> list[object]:
    """The program's exception as a reply: its type's name, its message and its traceback."""
    try:
        message = str(error)[:MAX_MESSAGE]
    except Exception:
        message = ""
    return ["raise", type(error).__name__, message, _format_exception(error)]


def program_main(job: dict, prog_fd: int, out_fd: int, req_fd: int, resp_fd: int) -> None:
    """The program process: limits, then the submitted program, then calls from the tester until it hangs up."""
    apply_limits(job["limits"])
    os.chdir(job["workdir"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    redirect(devnull, out_fd, out_fd)
    os.close(devnull)
    os.close(out_fd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    random.seed(0)  # reproducible runs (the random module reseeds itself from the OS in every forked child)
    # stdout and stderr are line-buffered (set up by the fork server): output reaches the host even if killed.
    source = read_to_eof(prog_fd).decode("utf-8", errors="surrogatepass")
    os.close(prog_fd)
    channel = Channel(req_fd, resp_fd)
    namespace = {"__name__": "__main__" if job["main"] else "__program__", "__builtins__": builtins}
    _PROGRAM_SOURCE[0] = source
    try:
        exec(compile(source, PROGRAM_FILE, "exec"), namespace)
    except BaseException as error:
        reply = exception_reply(error)
        print(reply[3], file=sys.stderr, end="")
        flush()
        channel.send(["load_error", *reply[1:]])
        os._exit(0)
    flush()
    handles: dict[int, object] = {}
    encoder = Encoder(handles)
    try:  # the names the tests take from the program come with the news that it loaded (one round trip less)
        names = answer(["names", job["names"]], namespace, handles, encoder, None)  # type: ignore[arg-type]
    except BaseException as error:
        channel.send(["load_error", *exception_reply(error)[1:]])
        os._exit(0)
    channel.send(["loaded", names])
    _serve(channel, namespace, handles, encoder)


def flush() -> None:
    """Flushes stdout and stderr, so that output reaches the host before a reply does."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # the program may have closed or replaced them
            stream.flush()


def _serve(channel: Channel, namespace: dict[str, object], handles: dict[int, object], encoder: Encoder) -> None:
    decoder = Decoder(lambda handle, text, truth: handles[handle])
    while True:
        try:
            request = channel.recv()
        except (Gone, Malformed):
            flush()
            os._exit(0)
        try:
            reply = ["ok", answer(request, namespace, handles, encoder, decoder)]
        except BaseException as error:
            reply = exception_reply(error)
        flush()
        try:
            channel.send(reply)
        except (TypeError, ValueError) as error:  # e.g. an int too large for JSON
            channel.send(exception_reply(error))
        except Gone:
            os._exit(0)


def answer(request: object, namespace: dict, handles: dict, encoder: Encoder, decoder: Decoder) -> object:
    """Carries out one request of the tester; returns the encoded value (exceptions are the caller's)."""
    op = request[0]  # type: ignore[index]
    if op == "names":
        found = [name for name in request[1] if isinstance(name, str) and name in namespace]  # type: ignore[index]
        return ["D", [[name, encoder.encode(namespace[name])] for name in found]]
    if op == "call":
        function, args, kwargs = handles[request[1]], decoder.decode(request[2]), request[3]  # type: ignore[index]
        return encoder.encode(function(*args, **{k: decoder.decode(v) for k, v in kwargs}))  # type: ignore[operator]
    if op == "getattr":
        return encoder.encode(getattr(handles[request[1]], request[2]))  # type: ignore[index]
    if op == "setattr":
        setattr(handles[request[1]], request[2], decoder.decode(request[3]))  # type: ignore[index]
        return None
    raise ValueError(f"unknown request {op!r}")
