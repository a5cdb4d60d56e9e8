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

This module imports no OpenEnv: only ``websockets`` or ``httpx`` (both come with the ``serve`` extra), when used.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Hashable, Mapping, Sequence
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


def decode_value(value: Any) -> Any:
    """The value :func:`encode_value` encoded (plain types only: nothing is imported, called or unpickled)."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "__fraction__":
            return Fraction(int(inner[0]), int(inner[1]))
        if tag == "__tuple__":
            return tuple(decode_value(v) for v in inner)
        if tag == "__frozenset__":
            return frozenset(decode_value(v) for v in inner)
        if tag == "__dict__":
            return {k: decode_value(v) for k, v in inner.items()}
        if tag == "__repr__":
            return ("__repr__", str(inner))
    return {k: decode_value(v) for k, v in value.items()}


class RemoteEpisodeState(EpisodeState):
    """An :class:`~reason_gym.core.EpisodeState` of a served env, which also carries its ``snapshot`` token (and
    the task's ``canonical`` key) as attributes: :meth:`RemoteEnv.set_state` restores the token."""

    snapshot: str | None = None
    canonical: Hashable | None = None


class RemoteError(RuntimeError):
    """The server answered an error (a stale snapshot, an unknown session, a bad option, an oversize action)."""


# ---------------------------------------------------------------------- transports


class _WSSession:
    """One OpenEnv WebSocket session (``/ws``): one env instance on the server for the life of the connection."""

    def __init__(self, base_url: str, token: str | None, timeout: float) -> None:
        from websockets.sync.client import connect

        url = "ws" + base_url[len("http") :] if base_url.startswith("http") else base_url
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._ws = connect(
            url.rstrip("/") + "/ws", additional_headers=headers, open_timeout=timeout, max_size=None, proxy=None,
            legacy=True,  # a connection held across calls, not a `with` block
        )  # fmt: skip
        self._timeout = timeout

    def call(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed

        try:
            self._ws.send(json.dumps({"type": kind, "data": data}))
            reply = json.loads(self._ws.recv(timeout=self._timeout))
        except ConnectionClosed as closed:  # the server said why before closing (a full server) or it went away
            try:
                reply = json.loads(self._ws.recv(timeout=1))
            except (ConnectionClosed, TimeoutError, ValueError):
                raise RemoteError(f"the server closed the session ({closed})") from None
        if reply.get("type") == "error":
            raise RemoteError(str(reply["data"].get("message", reply["data"])))
        return reply["data"]

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the server may have gone: closing is best effort
            self._ws.send(json.dumps({"type": "close"}))
        self._ws.close()


class _HTTPSession:
    """One session over the ``/sessions`` routes: each call is an HTTP request (keep-alive)."""

    def __init__(self, base_url: str, token: str | None, timeout: float) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, trust_env=False)
        self.session_id = self._post("/sessions", {})["session_id"]

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(path, json=body)
        if response.status_code != 200:
            detail = response.json().get("detail", response.text) if response.content else response.reason_phrase
            raise RemoteError(f"{response.status_code}: {detail}")
        return response.json()

    def call(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        body = data if kind == "reset" else {"action": data}
        return self._post(f"/sessions/{self.session_id}/{kind}", body)

    def close(self) -> None:
        try:
            self._client.delete(f"/sessions/{self.session_id}")
        finally:
            self._client.close()


# ---------------------------------------------------------------------- the env


class RemoteEnv(gym.Env[str, str]):
    """A served reasoning env as a Gymnasium env (see the module docstring).

    Args:
        base_url: The server's address, ``http://HOST:PORT``.
        transport: ``"ws"`` (default) or ``"http"``.
        token: The bearer token (default: ``$REASON_GYM_SERVE_TOKEN``); needed when the server is bound to a
            non-loopback address.
        split: The split reset draws from when its options name none (default: the served env's).
        timeout: Seconds to wait for each answer.
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
        render_mode: str | None = None,
        _info: Mapping[str, Any] | None = None,
    ) -> None:
        if transport not in ("ws", "http"):
            raise ValueError(f"transport must be 'ws' or 'http', got {transport!r}")
        self.base_url, self.transport, self.timeout = base_url.rstrip("/"), transport, timeout
        self._token = token if token is not None else os.environ.get(TOKEN_ENV) or None
        self.render_mode = render_mode
        self.info = dict(_info) if _info is not None else self._fetch_info()
        self.env_id: str = self.info["env_id"]
        self.task = TaskSpec(**{**self.info["task"], "step_checks": tuple(self.info["task"]["step_checks"])})
        self.splits = tuple(self.info["splits"])
        self.split = split if split is not None else self.info["split"]
        self.max_candidates: int | None = self.info["max_candidates"]
        self.observation_space = TextSpace(
            max_length=self.info["max_observation_chars"], min_length=0, charset=self.info["charset"]
        )
        self.action_space = TextSpace(
            max_length=self.info["max_action_chars"], min_length=0, charset=self.info["charset"]
        )
        self._session = (
            _WSSession(self.base_url, self._token, timeout)
            if transport == "ws"
            else _HTTPSession(self.base_url, self._token, timeout)
        )
        self._problems: dict[str, tuple[Mapping[str, Any], str]] = {}  # problem_id -> (record, question)
        self._state: RemoteEpisodeState | None = None
        self._closed = False

    def _fetch_info(self) -> dict[str, Any]:
        import httpx

        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        response = httpx.get(f"{self.base_url}/reason_gym/info", headers=headers, timeout=self.timeout, trust_env=False)
        if response.status_code != 200:
            raise RemoteError(f"{self.base_url}/reason_gym/info answered {response.status_code}: {response.text}")
        return response.json()

    # ------------------------------------------------------------------ the Gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        if self.split is not None and not {"problem", "split"} & options.keys() and self.split in self.splits:
            options["split"] = self.split
        data = self._call("reset", {"seed": seed, "options": options})
        return data["observation"]["text"], {"problem_id": self._state.problem_id}  # type: ignore[union-attr]

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        data = self._call("step", {"text": action})
        meta = data["metadata"]
        info: dict[str, Any] = {"problem_id": meta["problem_id"], "reward_components": meta["reward_components"]}
        for key in ("is_correct", "error"):
            if key in meta:
                info[key] = meta[key]
        return data["observation"]["text"], float(data["reward"] or 0.0), meta["terminated"], meta["truncated"], info

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
            render_mode=self.render_mode, _info=self.info,
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
        return _hashable(decode_value(self._call("step", {"op": "answer_key", "text": answer})["metadata"]["value"]))

    def candidate_actions(self) -> list[str | None] | None:
        return self._call("step", {"op": "candidates"})["metadata"]["value"]

    @property
    def steps(self) -> list[str]:
        return list(self.get_state().steps)

    # ------------------------------------------------------------------ the wire

    def _call(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        if self._closed:
            raise RemoteError("the remote env is closed")
        reply = self._session.call(kind, data)
        meta = reply.get("metadata") or {}
        if "state" in meta:
            self._state = self._rebuild(meta)
        return reply

    def _rebuild(self, meta: Mapping[str, Any]) -> RemoteEpisodeState:
        wire = meta["state"]
        problem_id = meta["problem_id"]
        if "problem" in wire:
            self._problems[problem_id] = (wire["problem"], wire["question"])
            if len(self._problems) > 10_000:  # bounded; the current problem is re-sent on every reset and restore
                self._problems.pop(next(iter(self._problems)))
        problem, question = self._problems[problem_id]
        steps = tuple(wire["steps"])
        observation = "\n".join((question, *steps))
        state = RemoteEpisodeState(
            problem, problem_id, question, steps, observation, wire["num_actions"], wire["done"],
            decode_value(wire["task"]), self.task,
        )  # fmt: skip
        state.snapshot = meta.get("snapshot")
        state.canonical = _hashable(decode_value(wire.get("canonical")))
        return state


def _hashable(value: Any) -> Any:
    """Lists and dicts from JSON made hashable (tuples), so keys compare and hash as the task's own do."""
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value
