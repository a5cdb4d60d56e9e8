"""``reason_gym/Remote-v0``: a Gymnasium env backed by an env that ``reason-gym serve`` serves (OpenEnv).

``gymnasium.make("reason_gym/Remote-v0", base_url="http://127.0.0.1:8000")`` plays the served env through one
server session: ``reset`` / ``step`` are one round trip each, observations, rewards and ``info`` (the reward
components, ``is_correct``, ``problem_id``, the error of a rejected step) are those of the env in the server, and
reset options work as in-process (``{"index": i, "split": s}``, ``{"problem": record}``, the seed).

Branching for planners goes through the server's snapshot table: every reset, step and restore answers with an
opaque snapshot token (an unguessable id of a server-side copy of the state), so :meth:`RemoteEnv.get_state` costs
no round trip; :meth:`RemoteEnv.set_state` restores a token (one round trip, none when it is the current state);
:meth:`RemoteEnv.clone` opens a new session restored to the current state (a fork). States are
:class:`~reason_gym.core.EpisodeState` s rebuilt from JSON (the task's own state included, through
:func:`decode_value`, which builds plain values only): the client never unpickles anything and never sends pickles.
A token lives as long as the session that made it (and among its newest ``--max-snapshots``); restoring a stale one
is an error that says so.

Transports: ``transport="ws"`` (the default: one WebSocket per session, OpenEnv's ``/ws``) or ``"http"`` (the
session routes ``/sessions/...`` that ``reason-gym serve`` adds beside OpenEnv's). A server bound to a non-loopback
address wants ``token=`` (a bearer token; default: the ``REASON_GYM_SERVE_TOKEN`` environment variable).

Replies are checked before use (types, the declared spaces, finite rewards, boolean flags, a size cap of
``max_reply_bytes``): a malformed reply, a timeout or a broken connection is a :class:`RemoteError` naming what is
wrong (the transport's exception chained), and the env's state is then unchanged.

This module imports no OpenEnv: only ``websockets`` or ``httpx`` (both come with the ``serve`` extra), when used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from fractions import Fraction
from typing import Any, ClassVar

import gymnasium as gym

from reason_gym.core import EpisodeState, TaskSpec
from reason_gym.spaces import TextSpace

TOKEN_ENV = "REASON_GYM_SERVE_TOKEN"
"""The environment variable holding the bearer token of a server bound to a non-loopback address."""
OPS = ("step", "snapshot", "restore", "answer_key", "candidates")
"""What an action asks (its ``op`` field; ``step`` by default): a step, or a branching or capability call."""


# ---------------------------------------------------------------------- plain values over JSON


def encode_value(value: Any) -> Any:
    """A JSON form of a task's state or key: ``None``, bools, numbers, strings, lists, tuples, dicts with string
    keys, ``Fraction`` s and frozensets; anything else becomes ``{"__repr__": repr(value)}`` (shown, not rebuilt)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Fraction):
        return {"__fraction__": [value.numerator, value.denominator]}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_value(v) for v in value]}
    if isinstance(value, frozenset):
        return {"__frozenset__": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: encode_value(v) for k, v in value.items()}}
    return {"__repr__": repr(value)}


MAX_DEPTH = 100
"""The deepest nesting :func:`decode_value` builds (a task's state is a few levels deep)."""


def decode_value(value: Any, _depth: int = 0) -> Any:
    """The value :func:`encode_value` encoded (plain types only: nothing is imported, called or unpickled).

    Raises:
        ValueError: A malformed tag (a ``__fraction__`` that is not two ints with a non-zero denominator, a
            ``__frozenset__`` of unhashable items, ...) or nesting deeper than :data:`MAX_DEPTH`.
    """
    if _depth > MAX_DEPTH:
        raise ValueError(f"a value nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list):
        return [decode_value(v, _depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)) in _TAGS:
        ((tag, inner),) = value.items()
        return _TAGS[tag](inner, _depth + 1)
    return {k: decode_value(v, _depth + 1) for k, v in value.items()}


def _fraction(inner: Any, depth: int) -> Fraction:
    if not (isinstance(inner, list) and len(inner) == 2 and all(_is_int(v) for v in inner) and inner[1] != 0):
        raise ValueError(
            f"__fraction__ must be [numerator, denominator], ints, the denominator not 0; got {_show(inner)}"
        )
    return Fraction(inner[0], inner[1])


def _items(tag: str, inner: Any, depth: int) -> list[Any]:
    if not isinstance(inner, list):
        raise ValueError(f"{tag} must hold a list, got {_show(inner)}")
    return [decode_value(v, depth) for v in inner]


def _frozenset(inner: Any, depth: int) -> frozenset[Any]:
    try:
        return frozenset(_items("__frozenset__", inner, depth))
    except TypeError as error:
        raise ValueError(f"__frozenset__ holds an unhashable item ({error}): {_show(inner)}") from None


def _mapping(inner: Any, depth: int) -> dict[str, Any]:
    if not isinstance(inner, dict):
        raise ValueError(f"__dict__ must hold a JSON object, got {_show(inner)}")
    return {k: decode_value(v, depth) for k, v in inner.items()}


def _shown(inner: Any, depth: int) -> tuple[str, str]:
    if not isinstance(inner, str):
        raise ValueError(f"__repr__ must hold a string, got {_show(inner)}")
    return ("__repr__", inner)


_TAGS = {
    "__fraction__": _fraction,
    "__tuple__": lambda inner, depth: tuple(_items("__tuple__", inner, depth)),
    "__frozenset__": _frozenset,
    "__dict__": _mapping,
    "__repr__": _shown,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    """A short ``repr`` of a value from the wire, for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class RemoteEpisodeState(EpisodeState):
    """An :class:`~reason_gym.core.EpisodeState` of a served env, which also carries its ``snapshot`` token (and
    the task's ``canonical`` key) as attributes: :meth:`RemoteEnv.set_state` restores the token."""

    snapshot: str | None = None
    canonical: Hashable | None = None


class RemoteError(RuntimeError):
    """The server answered an error (a stale snapshot, an unknown session, a bad option, an oversize action), or a
    reply that is malformed, too large or late, or the connection failed (then its exception is the ``__cause__``)."""


# ---------------------------------------------------------------------- checking replies


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "str?": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "count": (lambda v: _is_int(v) and v >= 0, "an int >= 0"),
    "count?": (lambda v: v is None or (_is_int(v) and v >= 0), "an int >= 0 or null"),
    "number": (_finite, "a finite number"),
    "number?": (lambda v: v is None or _finite(v), "a finite number or null"),
    "object": (lambda v: isinstance(v, dict), "a JSON object"),
    "strs": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
    "counts": (lambda v: isinstance(v, dict) and all(_is_int(x) and x >= 0 for x in v.values()), "{str: int >= 0}"),
    "scores": (lambda v: isinstance(v, dict) and all(_finite(x) for x in v.values()), "{str: finite number}"),
}
"""What a field of a reply may hold: a test and its description for the error message."""


def _field(mapping: Mapping[str, Any], key: str, kind: str, where: str) -> Any:
    """``mapping[key]``, or a :class:`RemoteError` naming the field (in ``where``) and what it must hold."""
    if key not in mapping:
        raise RemoteError(f"{where} has no {key!r}")
    test, what = _KINDS[kind]
    if not test(mapping[key]):
        raise RemoteError(f"{where}: {key!r} must be {what}, got {_show(mapping[key])}")
    return mapping[key]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_object(text: str | bytes, where: str) -> dict[str, Any]:
    """``text`` parsed as one JSON object (no NaN or Infinity), or a :class:`RemoteError` saying what it is."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RemoteError(f"{where} is not JSON ({type(error).__name__}: {str(error)[:200]})") from error
    if not isinstance(value, dict):
        raise RemoteError(f"{where} is not a JSON object: got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------- transports


class _WSSession:
    """One OpenEnv WebSocket session (``/ws``): one env instance on the server for the life of the connection."""

    def __init__(self, base_url: str, token: str | None, timeout: float, max_reply_bytes: int) -> None:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect

        url = "ws" + base_url[len("http") :] if base_url.startswith("http") else base_url
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            self._ws = connect(
                url.rstrip("/") + "/ws", additional_headers=headers, open_timeout=timeout, max_size=max_reply_bytes,
                proxy=None, legacy=True,  # a connection held across calls, not a `with` block
            )  # fmt: skip
        except (OSError, WebSocketException) as error:  # TimeoutError is an OSError
            raise RemoteError(f"cannot open a WebSocket to {url}/ws: {type(error).__name__}: {error}") from error
        self._timeout, self._max_reply_bytes = timeout, max_reply_bytes

    def call(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        try:
            self._ws.send(json.dumps({"type": kind, "data": data}))
            text = self._ws.recv(timeout=self._timeout)
        except TimeoutError as error:
            raise RemoteError(f"no answer to {kind} within timeout={self._timeout} s") from error
        except ConnectionClosed as closed:  # the server said why before closing (a full server) or it went away
            text = self._last_words(closed)
        except (OSError, WebSocketException) as error:
            raise RemoteError(f"the WebSocket failed during {kind}: {type(error).__name__}: {error}") from error
        return _ws_data(_json_object(text, f"the answer to {kind}"))

    def _last_words(self, closed: Exception) -> str | bytes:
        """A message the server sent before closing, or a :class:`RemoteError` saying why it closed."""
        from websockets.exceptions import ConnectionClosed

        sent = getattr(closed, "sent", None)
        if sent is not None and sent.code == 1009:  # this client closed it: the message was over max_size
            raise RemoteError(f"a reply was larger than max_reply_bytes={self._max_reply_bytes}") from closed
        try:
            return self._ws.recv(timeout=1)
        except (ConnectionClosed, TimeoutError):
            raise RemoteError(f"the server closed the session ({closed})") from closed

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the server may have gone: closing is best effort
            self._ws.send(json.dumps({"type": "close"}))
        self._ws.close()


def _ws_data(message: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of an OpenEnv WebSocket message, or a :class:`RemoteError` with the server's error message."""
    data = message.get("data")
    if message.get("type") == "error":
        text = data.get("message", data) if isinstance(data, dict) else data
        raise RemoteError(str(text)[:2000] if text else "the server answered an error without a message")
    if not isinstance(data, dict):
        raise RemoteError(f"the message's 'data' must be a JSON object, got {_show(data)}")
    return data


def _http_call(client: Any, method: str, url: str, max_reply_bytes: int, **kwargs: Any) -> dict[str, Any]:
    """One HTTP request's JSON object answer (read up to ``max_reply_bytes``), or a :class:`RemoteError`."""
    import httpx

    try:
        with client.stream(method, url, **kwargs) as response:
            content = _read_capped(response, max_reply_bytes)
    except httpx.TimeoutException as error:
        raise RemoteError(f"no answer from {method} {url} within timeout={client.timeout.read} s") from error
    except httpx.HTTPError as error:  # connection refused or reset, a body cut short, a protocol error
        raise RemoteError(f"{method} {url} failed: {type(error).__name__}: {error}") from error
    if response.status_code != 200:
        raise RemoteError(f"{method} {url} answered {response.status_code}: {_detail(content, response)}")
    return _json_object(content, f"the answer of {method} {url}")


def _read_capped(response: Any, max_reply_bytes: int) -> bytes:
    too_big = f"the answer is larger than max_reply_bytes={max_reply_bytes}"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_reply_bytes:
        raise RemoteError(f"{too_big} (Content-Length: {declared})")
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_reply_bytes:
            raise RemoteError(too_big)
        chunks.append(chunk)
    return b"".join(chunks)


def _detail(content: bytes, response: Any) -> str:
    """What an error answer says: its JSON ``detail``, else its text (cut short), else the reason phrase."""
    with contextlib.suppress(ValueError, RecursionError):
        body = json.loads(content)
        if isinstance(body, dict) and "detail" in body:
            return str(body["detail"])[:2000]
    return content.decode("utf-8", "replace")[:2000] or response.reason_phrase


class _HTTPSession:
    """One session over the ``/sessions`` routes: each call is an HTTP request (keep-alive)."""

    def __init__(self, base_url: str, token: str | None, timeout: float, max_reply_bytes: int) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, trust_env=False)
        self._max_reply_bytes = max_reply_bytes
        try:
            self.session_id = _field(self._post("/sessions", {}), "session_id", "str", "the answer of POST /sessions")
        except RemoteError:
            self._client.close()
            raise

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return _http_call(self._client, "POST", path, self._max_reply_bytes, json=body)

    def call(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        body = data if kind == "reset" else {"action": data}
        return self._post(f"/sessions/{self.session_id}/{kind}", body)

    def close(self) -> None:
        import httpx

        try:
            with contextlib.suppress(httpx.HTTPError):  # the server may have gone: closing is best effort
                self._client.delete(f"/sessions/{self.session_id}")
        finally:
            self._client.close()


# ---------------------------------------------------------------------- the env


_INFO_FIELDS = {
    "env_id": "str", "task": "object", "splits": "strs", "split": "str?", "split_sizes": "counts",
    "max_candidates": "count?", "max_observation_chars": "count", "max_action_chars": "count", "charset": "str",
}  # fmt: skip
"""The fields of ``GET /reason_gym/info`` that the client reads, and what each must hold (see ``_KINDS``)."""
DEFAULT_MAX_REPLY_BYTES = 32 << 20
"""The default cap on the size of one reply (32 MiB): an observation of a served env, even at its longest, and the
state that comes with it are far smaller; a larger reply is refused before it is parsed."""


@dataclasses.dataclass(frozen=True)
class _Reply:
    """A checked reply: the observation's text, the reward, the metadata and the state it carries (if any)."""

    text: str
    reward: float | None
    meta: Mapping[str, Any]
    state: RemoteEpisodeState | None = None
    problem: tuple[Mapping[str, Any], str] | None = None  # a problem record and question sent with the state


class RemoteEnv(gym.Env[str, str]):
    """A served reasoning env as a Gymnasium env (see the module docstring).

    Every reply is checked before it is used: a reply that is not a JSON object of the wire format, an observation
    outside :attr:`observation_space`, a reward that is not a finite number, flags that are not booleans, a state
    that does not decode, a reply over ``max_reply_bytes``, a timeout or a broken connection is a
    :class:`RemoteError` (the message names the field; the transport's error is its ``__cause__``), and the env's
    state is then what it was before the call.

    Args:
        base_url: The server's address, ``http://HOST:PORT``.
        transport: ``"ws"`` (default) or ``"http"``.
        token: The bearer token (default: ``$REASON_GYM_SERVE_TOKEN``); needed when the server is bound to a
            non-loopback address.
        split: The split reset draws from when its options name none (default: the served env's).
        timeout: Seconds to wait for each answer.
        max_reply_bytes: The largest reply accepted, in bytes (default :data:`DEFAULT_MAX_REPLY_BYTES`, 32 MiB).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(
        self,
        base_url: str,
        *,
        transport: str = "ws",
        token: str | None = None,
        split: str | None = None,
        timeout: float = 60.0,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        render_mode: str | None = None,
        _info: Mapping[str, Any] | None = None,
    ) -> None:
        if transport not in ("ws", "http"):
            raise ValueError(f"transport must be 'ws' or 'http', got {transport!r}")
        if not _is_int(max_reply_bytes) or max_reply_bytes < 1:
            raise ValueError(f"max_reply_bytes must be an int >= 1, got {max_reply_bytes!r}")
        self.base_url, self.transport, self.timeout = base_url.rstrip("/"), transport, timeout
        self.max_reply_bytes = max_reply_bytes
        self._token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.render_mode = render_mode
        self.info = dict(_info) if _info is not None else self._fetch_info()
        self._apply_info(self.info)
        self.split = split if split is not None else self.info["split"]
        session = _WSSession if transport == "ws" else _HTTPSession
        self._session = session(self.base_url, self._token, timeout, max_reply_bytes)
        self._problems: dict[str, tuple[Mapping[str, Any], str]] = {}  # problem_id -> (record, question)
        self._state: RemoteEpisodeState | None = None
        self._closed = False

    def _fetch_info(self) -> dict[str, Any]:
        import httpx

        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        with httpx.Client(headers=headers, timeout=self.timeout, trust_env=False) as client:
            return _http_call(client, "GET", f"{self.base_url}/reason_gym/info", self.max_reply_bytes)

    def _apply_info(self, info: Mapping[str, Any]) -> None:
        """The env's id, task, splits and spaces from ``/reason_gym/info``, each field checked."""
        where = f"{self.base_url}/reason_gym/info"
        for key, kind in _INFO_FIELDS.items():
            _field(info, key, kind, where)
        try:
            self.task = TaskSpec(**{**info["task"], "step_checks": tuple(info["task"].get("step_checks", ()))})
        except (TypeError, ValueError) as error:
            raise RemoteError(f"{where}: 'task' is not a task spec ({error})") from None
        self.env_id: str = info["env_id"]
        self.splits = tuple(info["splits"])
        self.max_candidates: int | None = info["max_candidates"]
        charset = info["charset"]
        self.observation_space = TextSpace(max_length=info["max_observation_chars"], min_length=0, charset=charset)
        self.action_space = TextSpace(max_length=info["max_action_chars"], min_length=0, charset=charset)

    # ------------------------------------------------------------------ the Gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        if self.split is not None and not {"problem", "split"} & options.keys() and self.split in self.splits:
            options["split"] = self.split
        reply = self._call("reset", {"seed": seed, "options": options})
        return reply.text, {"problem_id": self._state.problem_id}  # type: ignore[union-attr]

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        reply = self._call("step", {"text": action})
        meta = reply.meta
        info: dict[str, Any] = {"problem_id": meta["problem_id"], "reward_components": meta["reward_components"]}
        for key in ("is_correct", "error"):
            if key in meta:
                info[key] = meta[key]
        return reply.text, float(reply.reward or 0.0), meta["terminated"], meta["truncated"], info

    def render(self) -> str | None:
        return None if self.render_mode != "ansi" or self._state is None else self._state.observation + "\n"

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._session.close()

    # ------------------------------------------------------------------ branching, for planners

    def get_state(self) -> RemoteEpisodeState:
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before using the environment")
        return self._state

    def set_state(self, state: EpisodeState) -> None:
        token = getattr(state, "snapshot", None)
        if token is None:
            raise TypeError("set_state takes a state from get_state() of a remote env (it carries a snapshot token)")
        if self._state is not None and self._state.snapshot == token:
            return
        self._call("step", {"op": "restore", "text": token})

    def clone(self) -> RemoteEnv:
        """A new server session in the same state (a fork), with its own copy of the random generator."""
        twin = RemoteEnv(
            self.base_url, transport=self.transport, token=self._token, split=self.split, timeout=self.timeout,
            max_reply_bytes=self.max_reply_bytes, render_mode=self.render_mode, _info=self.info,
        )  # fmt: skip
        twin._np_random = None if self._np_random is None else __import__("copy").deepcopy(self._np_random)
        twin._problems = dict(self._problems)
        if self._state is not None:
            twin.set_state(self._state)
        return twin

    # ------------------------------------------------------------------ capabilities

    @property
    def available_splits(self) -> tuple[str, ...]:
        return self.splits

    def split_indices(self, split: str | None = None) -> Sequence[int] | None:
        count = self.info["split_sizes"].get(split if split is not None else self.split)
        if count is None and (split or self.split) not in self.splits and self.splits:
            raise ValueError(f"split must be one of {self.splits}, got {split!r}")
        return None if count is None else range(count)

    def canonical_state(self) -> Hashable | None:
        return self.get_state().canonical if self._state is not None and not self._state.done else None

    def answer_key(self, answer: str) -> Hashable | None:
        value = self._call("step", {"op": "answer_key", "text": answer}).meta["value"]
        return _decoded(value, "the answer key", hashable=True)

    def candidate_actions(self) -> list[str | None] | None:
        value = self._call("step", {"op": "candidates"}).meta["value"]
        if value is not None and not (isinstance(value, list) and all(v is None or isinstance(v, str) for v in value)):
            raise RemoteError(f"the candidates must be a list of strings and nulls (or null), got {_show(value)}")
        return value

    @property
    def steps(self) -> list[str]:
        return list(self.get_state().steps)

    # ------------------------------------------------------------------ the wire

    def _call(self, kind: str, data: dict[str, Any]) -> _Reply:
        """One round trip; the reply is checked whole before the env's state changes."""
        if self._closed:
            raise RemoteError("the remote env is closed")
        op = data.get("op", "step") if kind == "step" else "reset"
        reply = self._check(op, self._session.call(kind, data))
        if reply.problem is not None:
            self._problems[reply.meta["problem_id"]] = reply.problem
            if len(self._problems) > 10_000:  # bounded; the current problem is re-sent on every reset and restore
                self._problems.pop(next(iter(self._problems)))
        if reply.state is not None:
            self._state = reply.state
        return reply

    def _check(self, op: str, data: Mapping[str, Any]) -> _Reply:
        """The reply to ``op`` checked against the wire format and the spaces (a :class:`RemoteError` if not)."""
        where = f"the reply to {op}"
        text = _field(_field(data, "observation", "object", where), "text", "str", f"{where}: observation")
        if not self.observation_space.contains(text):
            raise RemoteError(f"{where}: the observation is not in the observation space ({_outside(text, self)})")
        reward = _field(data, "reward", "number", where) if op == "step" else None
        meta = _field(data, "metadata", "object", where)
        _field(meta, "problem_id", "str", f"{where}: metadata")
        if op in ("answer_key", "candidates"):
            if "value" not in meta:
                raise RemoteError(f"{where}: metadata has no 'value'")
            return _Reply(text, reward, meta)
        if op == "step":
            for key, kind in (("terminated", "bool"), ("truncated", "bool"), ("reward_components", "scores")):
                _field(meta, key, kind, f"{where}: metadata")
            _check_optional(meta, (("is_correct", "bool"), ("error", "str")), f"{where}: metadata")
        state, problem = self._rebuild(meta, f"{where}: metadata")
        return _Reply(text, None if reward is None else float(reward), meta, state, problem)

    def _rebuild(self, meta: Mapping[str, Any], where: str) -> tuple[RemoteEpisodeState, tuple[Any, str] | None]:
        """The state a reply carries (and the problem sent with it, if any), changing nothing."""
        wire = _field(meta, "state", "object", where)
        snapshot = _field(meta, "snapshot", "str", where)
        where += ": state"
        steps = tuple(_field(wire, "steps", "strs", where))
        num_actions, done = _field(wire, "num_actions", "count", where), _field(wire, "done", "bool", where)
        problem_id = meta["problem_id"]
        sent = None
        if "problem" in wire:
            sent = (_field(wire, "problem", "object", where), _field(wire, "question", "str", where))
        elif problem_id not in self._problems:
            raise RemoteError(f"{where}: problem {problem_id!r} comes without its record, and no earlier reply sent it")
        problem, question = sent or self._problems[problem_id]
        state = RemoteEpisodeState(
            problem, problem_id, question, steps, "\n".join((question, *steps)), num_actions, done,
            _decoded(wire.get("task"), f"{where}: task"), self.task,
        )  # fmt: skip
        state.snapshot = snapshot
        state.canonical = _decoded(wire.get("canonical"), f"{where}: canonical", hashable=True)
        return state, sent


def _check_optional(meta: Mapping[str, Any], fields: Sequence[tuple[str, str]], where: str) -> None:
    for key, kind in fields:
        if key in meta:
            _field(meta, key, kind, where)


def _outside(text: str, env: RemoteEnv) -> str:
    """Why ``text`` is not in the env's observation space: its length, or a character outside the charset."""
    if len(text) > env.observation_space.max_length:
        return f"{len(text)} characters, over max_observation_chars={env.observation_space.max_length}"
    allowed = set(env.info["charset"])
    bad = next((c for c in text if c not in allowed), None)
    return "not a string of its charset" if bad is None else f"the character {bad!r} is not in the charset"


def _decoded(value: Any, where: str, *, hashable: bool = False) -> Any:
    """:func:`decode_value` of a field, made hashable if asked, or a :class:`RemoteError` naming the field."""
    try:
        decoded = decode_value(value)
        if hashable:
            decoded = _hashable(decoded)
            hash(decoded)
    except (ValueError, TypeError) as error:
        raise RemoteError(f"{where} does not decode: {error}") from None
    return decoded


def _hashable(value: Any) -> Any:
    """Lists and dicts from JSON made hashable (tuples), so keys compare and hash as the task's own do."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value
