"""``RemoteEnv`` against malformed servers: every bad reply is a ``RemoteError`` naming what is wrong, and the env's
state is unchanged. A tiny fake server on loopback (HTTP and WebSocket) answers what each table row says."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
ws_server = pytest.importorskip("websockets.sync.server")

from reason_gym.envs.remote import RemoteEnv, RemoteError, decode_value  # noqa: E402

CHARSET = "".join(map(chr, range(32, 127))) + "\n"
INFO = {
    "env_id": "reason_gym/Fake-v0",
    "task": {"name": "fake", "env_id": None, "description": "A fake task.", "step_checks": ["x"]},
    "splits": ["test"], "split": "test", "split_sizes": {"test": 3}, "max_candidates": 4,
    "max_observation_chars": 200, "max_action_chars": 100, "charset": CHARSET, "wire_max_action_chars": 100,
}  # fmt: skip
Q = "Question: add 1 and 2."
WIRE = {"steps": [], "num_actions": 0, "done": False, "task": {"__tuple__": [1, 2]}, "canonical": None}
RESET = {
    "observation": {"text": Q}, "reward": None, "done": False,
    "metadata": {"problem_id": "p/1", "snapshot": "t0", "state": {**WIRE, "problem": {"n": 1}, "question": Q}},
}  # fmt: skip
STEP_META = {
    "problem_id": "p/1", "snapshot": "t1", "reward_components": {"outcome": 0.5}, "terminated": False,
    "truncated": False, "state": {**WIRE, "steps": ["1 + 2 = 3"], "num_actions": 1},
}  # fmt: skip
STEP = {"observation": {"text": Q + "\n1 + 2 = 3"}, "reward": 0.5, "done": False, "metadata": STEP_META}
PLAN: dict[str, Any] = {}
"""What the fake server answers: kind -> a JSON-able reply, raw bytes, ("status", code, bytes), "slow" or "cut"."""


def body(reply: Any) -> bytes:
    return reply if isinstance(reply, bytes) else json.dumps(reply).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, reply: Any) -> None:
        status = 200
        if reply == "slow":
            time.sleep(1.5)
            reply = STEP
        if reply == "cut":  # a body cut short: the server closes mid-body
            self.wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"obs')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if isinstance(reply, tuple):
            _, status, reply = reply
        content = body(reply)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def do_GET(self) -> None:
        self.answer(PLAN.get("info", INFO))

    def do_DELETE(self) -> None:
        self.answer({})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        kind = self.path.rsplit("/", 1)[-1]
        self.answer({"session_id": "s"} if kind == "sessions" else PLAN.get(kind, RESET if kind == "reset" else STEP))


def ws_handler(ws: Any) -> None:
    for message in ws:
        kind = json.loads(message)["type"]
        if kind == "close":
            return
        reply = PLAN.get(kind, RESET if kind == "reset" else STEP)
        if reply == "slow":
            time.sleep(1.5)
            reply = STEP
        if isinstance(reply, tuple):  # a raw WebSocket message
            ws.send(reply[2])
        else:
            ws.send(b'{"type": "observation", "data": ' + body(reply) + b"}")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    ws = ws_server.serve(ws_handler, "127.0.0.1", 0, max_size=None)
    for server in (http, ws):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"http": f"http://127.0.0.1:{http.server_address[1]}", "ws": f"http://127.0.0.1:{ws.socket.getsockname()[1]}"}
    http.shutdown()
    ws.shutdown()


@pytest.fixture(autouse=True)
def plan() -> Iterator[None]:
    PLAN.clear()
    yield
    PLAN.clear()


def connect(servers: dict[str, str], transport: str, **kwargs: Any) -> RemoteEnv:
    return RemoteEnv(servers[transport], transport=transport, _info=INFO, **kwargs)


def meta(**changes: Any) -> dict[str, Any]:
    return {**STEP, "metadata": {**STEP_META, **changes}}


def state(**changes: Any) -> dict[str, Any]:
    return meta(state={**STEP_META["state"], **changes})


DEEP = b'{"observation": {"text": "x"}, "reward": 0, "metadata": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"

# (name, the step reply, the error's pattern)
BAD_STEPS = [
    ("not JSON", b"garbage{", r"is not JSON"),
    ("a list", b"[1, 2]", r"not a JSON object|'data' must be a JSON object"),
    ("deep nesting", DEEP, r"is not JSON \(RecursionError"),
    ("no observation", {"reward": 0.5, "metadata": STEP_META}, r"has no 'observation'"),
    ("observation text an int", {**STEP, "observation": {"text": 5}}, r"'text' must be a string, got 5"),
    ("observation outside the charset", {**STEP, "observation": {"text": "\x00\u2603"}}, r"character '\\x00'"),
    ("observation too long", {**STEP, "observation": {"text": "a" * 201}}, r"201 characters, over max_observ"),
    ("reward NaN", b'{"observation": {"text": "x"}, "reward": NaN}', r"NaN is not a JSON number"),
    ("reward Infinity", b'{"observation": {"text": "x"}, "reward": Infinity}', r"Infinity is not a JSON number"),
    ("reward huge", b'{"observation": {"text": "x"}, "reward": 1e999}', r"'reward' must be a finite number"),
    ("reward a string", {**STEP, "reward": "1.5"}, r"'reward' must be a finite number, got '1.5'"),
    ("reward a bool", {**STEP, "reward": True}, r"'reward' must be a finite number, got True"),
    ("reward missing", {k: v for k, v in STEP.items() if k != "reward"}, r"has no 'reward'"),
    ("terminated a string", meta(terminated="yes"), r"'terminated' must be true or false, got 'yes'"),
    ("truncated a string", meta(truncated="no"), r"'truncated' must be true or false, got 'no'"),
    ("terminated missing", {**STEP, "metadata": {k: v for k, v in STEP_META.items() if k != "terminated"}}, "no 'ter"),
    ("components a string", meta(reward_components="oops"), r"'reward_components' must be \{str: finite number\}"),
    ("components not numbers", meta(reward_components={"a": "1"}), r"'reward_components' must be"),
    ("is_correct a string", meta(is_correct="yes"), r"'is_correct' must be true or false"),
    ("error an int", meta(error=5), r"'error' must be a string"),
    ("problem_id an int", meta(problem_id=5), r"'problem_id' must be a string"),
    ("snapshot missing", {**STEP, "metadata": {k: v for k, v in STEP_META.items() if k != "snapshot"}}, "no 'snap"),
    ("unseen problem_id", meta(problem_id="other"), r"problem 'other' comes without its record"),
    ("num_actions a string", state(num_actions="many"), r"'num_actions' must be an int >= 0, got 'many'"),
    ("num_actions negative", state(num_actions=-1), r"'num_actions' must be an int >= 0"),
    ("done a number", state(done=1), r"'done' must be true or false"),
    ("steps not a list", state(steps=5), r"'steps' must be a list of strings"),
    ("steps of ints", state(steps=[1, 2]), r"'steps' must be a list of strings"),
    ("fraction over 0", state(task={"__fraction__": [1, 0]}), r"task does not decode: __fraction__ must be"),
    ("fraction of strings", state(task={"__fraction__": "ab"}), r"__fraction__ must be"),
    ("frozenset of lists", state(task={"__frozenset__": [[1]]}), r"__frozenset__ holds an unhashable item"),
    ("dict tag not a dict", state(task={"__dict__": 5}), r"__dict__ must hold a JSON object"),
    ("tuple tag not a list", state(task={"__tuple__": 5}), r"__tuple__ must hold a list"),
    ("repr tag not a string", state(task={"__repr__": [1]}), r"__repr__ must hold a string"),
    ("canonical unhashable", state(canonical={"__frozenset__": [{"__dict__": {}}]}), r"canonical does not decode"),
    ("state not an object", meta(state=[1]), r"'state' must be a JSON object"),
]


@pytest.mark.parametrize("transport", ["ws", "http"])
@pytest.mark.parametrize(("case", "reply", "error"), BAD_STEPS, ids=[c[0] for c in BAD_STEPS])
def test_a_malformed_step_reply_is_a_remote_error_and_the_state_stays(
    servers: dict[str, str], transport: str, case: str, reply: Any, error: str
) -> None:
    env = connect(servers, transport)
    try:
        env.reset()
        before = env.get_state()
        PLAN["step"] = reply
        with pytest.raises(RemoteError, match=error):
            env.step("1 + 2 = 3")
        assert env.get_state() is before
        PLAN.clear()
        assert env.step("1 + 2 = 3") == (Q + "\n1 + 2 = 3", 0.5, False, False, {
            "problem_id": "p/1", "reward_components": {"outcome": 0.5}})  # fmt: skip
    finally:
        env.close()


# (transport, name, what the server answers, the error's pattern, the type of the error's cause or None)
BAD_TRANSPORT = [
    ("ws", "error without data", ("raw", 0, b'{"type": "error"}'), r"an error without a message", None),
    ("ws", "error with string data", ("raw", 0, b'{"type": "error", "data": "boom"}'), r"^boom$", None),
    ("ws", "error with a message", ("raw", 0, b'{"type": "error", "data": {"message": "no"}}'), r"^no$", None),
    ("ws", "data a string", ("raw", 0, b'{"type": "observation", "data": "x"}'), r"'data' must be a JSON obj", None),
    ("ws", "slow", "slow", r"no answer to step within timeout=0.5 s", TimeoutError),
    ("http", "slow", "slow", r"no answer from POST .* within timeout=0.5 s", httpx.ReadTimeout),
    ("http", "cut mid-body", "cut", r"POST .* failed: RemoteProtocolError", httpx.RemoteProtocolError),
    ("http", "500 page", ("status", 500, b"Internal Server Error"), r"answered 500: Internal Server Error$", None),
    ("http", "500 list", ("status", 500, b"[1]"), r"answered 500: \[1\]$", None),
    ("http", "400 detail", ("status", 400, b'{"detail": "bad option"}'), r"answered 400: bad option$", None),
]


@pytest.mark.parametrize(
    ("transport", "case", "reply", "error", "cause"), BAD_TRANSPORT, ids=[f"{c[0]}-{c[1]}" for c in BAD_TRANSPORT]
)
def test_transport_errors_are_remote_errors_with_the_cause(
    servers: dict[str, str], transport: str, case: str, reply: Any, error: str, cause: type | None
) -> None:
    env = connect(servers, transport, timeout=0.5)
    try:
        env.reset()
        PLAN["step"] = reply
        with pytest.raises(RemoteError, match=error) as raised:
            env.step("x")
        assert cause is None or isinstance(raised.value.__cause__, cause)
    finally:
        env.close()


@pytest.mark.parametrize("transport", ["ws", "http"])
@pytest.mark.parametrize(("size", "error"), [(50_000, "max_reply_bytes=4096"), (3_000, None)])
def test_replies_over_max_reply_bytes_are_refused(
    servers: dict[str, str], transport: str, size: int, error: str | None
) -> None:
    env = connect(servers, transport, max_reply_bytes=4096)
    try:
        PLAN["reset"] = {**RESET, "metadata": {**RESET["metadata"], "padding": "a" * size}}
        if error is None:
            assert env.reset()[0] == Q
        else:
            with pytest.raises(RemoteError, match=error):
                env.reset()
    finally:
        env.close()


@pytest.mark.parametrize("value", [0, -1, 1.5, "9", True])
def test_max_reply_bytes_must_be_a_positive_int(servers: dict[str, str], value: Any) -> None:
    with pytest.raises(ValueError, match="max_reply_bytes must be an int >= 1"):
        connect(servers, "http", max_reply_bytes=value)


# (name, the /reason_gym/info answer, the error's pattern)
BAD_INFO = [
    ("not JSON", b"<html>", r"is not JSON"),
    ("a list", b"[]", r"not a JSON object: got list"),
    ("no env_id", {k: v for k, v in INFO.items() if k != "env_id"}, r"reason_gym/info has no 'env_id'"),
    ("an extra task field", {**INFO, "task": {**INFO["task"], "evil": 1}}, r"'task' is not a task spec.*evil"),
    ("task question_lines 0", {**INFO, "task": {**INFO["task"], "question_lines": 0}}, r"'task' is not a task spec"),
    ("max_observation_chars a string", {**INFO, "max_observation_chars": "9"}, r"'max_observation_chars' must be an"),
    ("max_observation_chars negative", {**INFO, "max_observation_chars": -5}, r"'max_observation_chars' must be an"),
    ("charset an int", {**INFO, "charset": 5}, r"'charset' must be a string"),
    ("splits a string", {**INFO, "splits": "test"}, r"'splits' must be a list of strings"),
    ("split sizes negative", {**INFO, "split_sizes": {"test": -1}}, r"'split_sizes' must be"),
    ("500 with a list", ("status", 500, b"[1]"), r"answered 500: \[1\]"),
]


@pytest.mark.parametrize(("case", "reply", "error"), BAD_INFO, ids=[c[0] for c in BAD_INFO])
def test_a_malformed_info_is_a_remote_error(servers: dict[str, str], case: str, reply: Any, error: str) -> None:
    PLAN["info"] = reply
    with pytest.raises(RemoteError, match=error):
        RemoteEnv(servers["http"], transport="http", timeout=2)


def test_a_good_info_builds_the_spaces(servers: dict[str, str]) -> None:
    env = RemoteEnv(servers["http"], transport="http", timeout=2)
    try:
        assert env.observation_space.max_length == 200 and env.task.step_checks == ("x",)
        assert env.reset()[0] == Q and env.get_state().task == (1, 2)
    finally:
        env.close()


def test_the_capability_replies_are_checked(servers: dict[str, str]) -> None:
    env = connect(servers, "ws")
    try:
        env.reset()
        for value, error in [([1], "candidates must be a list of strings"), ({"__fraction__": [1, 0]}, "decode")]:
            PLAN["step"] = {**STEP, "metadata": {"problem_id": "p/1", "value": value}}
            with pytest.raises(RemoteError, match=error):
                env.candidate_actions() if value == [1] else env.answer_key("x")
        PLAN["step"] = {**STEP, "metadata": {"problem_id": "p/1", "value": ["a", None]}}
        assert env.candidate_actions() == ["a", None]
    finally:
        env.close()


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ({"__fraction__": [1, 3]}, __import__("fractions").Fraction(1, 3)),
        ({"__tuple__": [1, {"__frozenset__": [2]}]}, (1, frozenset({2}))),
        ({"__dict__": {"a": [1]}}, {"a": [1]}),
        ({"__repr__": "x"}, ("__repr__", "x")),
        ({"plain": 1}, {"plain": 1}),
    ],
)
def test_decode_value_builds_plain_values(wire: Any, value: Any) -> None:
    assert decode_value(wire) == value


def test_decode_value_refuses_deep_nesting() -> None:
    deep: Any = 1
    for _ in range(150):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper than 100"):
        decode_value(deep)


@pytest.mark.parametrize(("transport", "info"), [("ws", INFO), ("http", INFO), ("http", None)])
def test_no_server_is_a_remote_error_with_the_cause(transport: str, info: Any) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RemoteError, match=r"ConnectError|ConnectionRefused|cannot open") as raised:
        RemoteEnv(f"http://127.0.0.1:{port}", transport=transport, timeout=2, _info=info)
    assert isinstance(raised.value.__cause__, (OSError, httpx.ConnectError))
