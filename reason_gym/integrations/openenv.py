"""Every registered reason_gym env as an OpenEnv environment: what ``reason-gym serve ENV_ID`` runs.

:func:`build_app` wraps the env in OpenEnv's own server (``openenv.core.env_server.HTTPEnvServer`` on a FastAPI
app): OpenEnv's WebSocket route ``/ws`` gives every connection a session with its own env instance, and this module
adds HTTP session routes beside OpenEnv's (``POST /sessions``, ``/sessions/{id}/reset|step|fork``, ``GET
/sessions/{id}/state``, ``DELETE /sessions/{id}``) that use the same session table. Sessions are capped
(``max_sessions``) and the ones idle for ``session_timeout_s`` (default 600 s; OpenEnv's reaper checks every
``max(timeout / 4, 5)`` s) are closed; a later call on a reaped session says so.

The wire format:

- the action (:class:`StepAction`) is ``{"text": STEP}``; ``op`` asks for something else: ``"snapshot"``,
  ``"restore"`` (``text`` is a snapshot token), ``"answer_key"`` (``text`` is the answer) or ``"candidates"``;
- the observation (:class:`TextObservation`) carries the state string (``text``), ``reward`` and ``done``, and in
  ``metadata`` the reward components, ``terminated`` / ``truncated``, ``is_correct`` (at an answer),
  ``problem_id``, ``error`` (a rejected step), ``snapshot`` (the token of the new state) and ``state`` (its steps,
  action count, the task's state as plain JSON; the problem record and question after a reset or restore);
- reset takes ``seed`` and ``options`` as in-process (``{"index": i, "split": s}``, ``{"problem": record}``);
  ``index`` / ``split`` / ``problem`` may also be given at the top level (OpenEnv's generic client sends them so);
- OpenEnv's task interface (``/{name}/splits``, ``/{name}/num_tasks``, ``/{name}/task``, ...) lists the splits
  and problems; ``GET /reason_gym/info`` describes the env for :class:`reason_gym.envs.remote.RemoteEnv`.

Snapshots are server-side: a token is an unguessable id (``secrets.token_urlsafe``) of an immutable
:class:`~reason_gym.core.EpisodeState` in a table, owned by the session that made it (its newest
``max_snapshots``) and dropped with it. A client never sends state to unpickle: restoring takes a token only, and an
unknown or expired token is an error that says so.

Security (:func:`serve`): the server binds to 127.0.0.1 by default; bound to any other address it refuses to start
without a bearer token (``$REASON_GYM_SERVE_TOKEN`` or a token file) and then wants ``Authorization: Bearer TOKEN``
on every request and WebSocket. Request bodies and WebSocket messages are capped (``max_body_bytes``), as are
actions (``max_action_chars``); a bad request gets an error answer and the other sessions go on. Code envs served
this way run programs in their sandbox, as in-process.

This module imports OpenEnv (and FastAPI, uvicorn) at its top: ``import reason_gym`` never loads it.

The pin: the HTTP session routes use private members of OpenEnv's ``HTTPEnvServer`` (:data:`OPENENV_PRIVATE_MEMBERS`;
OpenEnv 0.10 has no public way to open, find, run in or close a session outside its own routes), so the ``serve``
extra pins ``openenv==0.10.0``. ``tests/integrations/test_openenv_private_members.py`` fails, naming the member, if one
of them goes or changes shape: check it first when moving the pin.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import hmac
import ipaddress
import json
import os
import secrets
import socket
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import JSONResponse
from openenv.core.env_server import (
    Action,
    ConcurrencyConfig,
    Environment,
    HTTPEnvServer,
    Observation,
    SessionCapacityError,
    State,
    serialize_observation,
)
from pydantic import Field, ValidationError, create_model

import reason_gym  # noqa: F401  (registers the environments)
from reason_gym.core import EpisodeState, ReasoningEnv
from reason_gym.envs.remote import TOKEN_ENV, encode_value

DEFAULT_PORT = 8000
DEFAULT_MAX_SESSIONS = 64
DEFAULT_SESSION_TIMEOUT_S = 600.0
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_ACTION_CHARS = 65_536
"""Above every task's own ``max_action_chars`` (8192), so actions between the two are judged as in-process."""
DEFAULT_MAX_SNAPSHOTS = 10_000
"""Snapshots kept per session (the oldest are dropped first)."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")
OPENENV_PRIVATE_MEMBERS = (
    "_sessions",
    "_create_session",
    "_destroy_session",
    "_run_in_session_executor",
    "_update_session_activity",
)
"""The private members of OpenEnv 0.10.0's ``HTTPEnvServer`` that the session routes use (see the pin above)."""


class StepAction(Action):
    """One action: the step text (or ``Answer: ...``), or with ``op`` a branching or capability call."""

    text: str = Field(default="", description="the reasoning step or `Answer: ...` line (or the op's argument)")
    op: Literal["step", "snapshot", "restore", "answer_key", "candidates"] = Field(
        default="step", description="step (default), snapshot, restore (text: a token), answer_key, candidates"
    )


class TextObservation(Observation):
    """The state string; reward, done and the metadata listed in the module docstring come with it."""

    text: str = Field(default="", description="the question and the steps so far")


class StaleSnapshot(ValueError):
    """A snapshot token that is unknown, expired, or dropped with its session."""


class SnapshotTable:
    """Immutable episode states by unguessable token, owned by sessions: at most ``per_owner`` each (oldest out),
    dropped with their owner. Thread-safe (sessions step in threads of their own)."""

    def __init__(self, per_owner: int = DEFAULT_MAX_SNAPSHOTS) -> None:
        self.per_owner = per_owner
        self._states: dict[str, EpisodeState] = {}
        self._owned: dict[str, OrderedDict[str, None]] = {}
        self._lock = threading.Lock()

    def put(self, owner: str, state: EpisodeState) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            owned = self._owned.setdefault(owner, OrderedDict())
            owned[token] = None
            self._states[token] = state
            while len(owned) > self.per_owner:
                self._states.pop(owned.popitem(last=False)[0], None)
        return token

    def get(self, token: str) -> EpisodeState:
        with self._lock:
            state = self._states.get(token)
        if state is None:
            raise StaleSnapshot(
                "unknown or expired snapshot token (a token lives as long as its session, among its newest "
                f"{self.per_owner})"
            )
        return state

    def drop(self, owner: str) -> None:
        with self._lock:
            for token in self._owned.pop(owner, ()):
                self._states.pop(token, None)

    def __len__(self) -> int:
        return len(self._states)


@dataclasses.dataclass
class ServeContext:
    """What every session of a served env shares: the env id and kwargs, the snapshot table, the description."""

    env_id: str
    env_kwargs: dict[str, Any]
    snapshots: SnapshotTable
    session_timeout_s: float | None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def make(self) -> ReasoningEnv:
        try:
            env = gym.make(self.env_id, **self.env_kwargs).unwrapped
        except TypeError as error:  # a missing or unknown argument: say which env, not a traceback
            raise ValueError(f"{self.env_id} cannot be built with --env-kwargs {self.env_kwargs}: {error}") from None
        if not isinstance(env, ReasoningEnv):
            raise ValueError(f"{self.env_id} is not a reasoning env (ReasoningEnv): it cannot be served")
        return env


def describe(context: ServeContext, env: ReasoningEnv, max_action_chars: int, max_sessions: int) -> dict[str, Any]:
    """``GET /reason_gym/info``: what a client needs to build the env's spaces and spec."""
    sizes = {}
    for split in env.available_splits:
        try:
            indices = env.split_indices(split)
        except (OSError, ValueError):  # that split's data is not here (MATH with only its test file): not listed
            continue
        if indices is not None:
            sizes[split] = len(indices)
    return {
        "env_id": context.env_id,
        "task": dataclasses.asdict(env.task),
        "splits": list(env.available_splits),
        "split": env.split,
        "split_sizes": sizes,
        "max_candidates": env.max_candidates,
        "max_observation_chars": env.observation_space.max_length,
        "max_action_chars": env.action_space.max_length,
        "charset": env.charset,
        "wire_max_action_chars": max_action_chars,
        "max_sessions": max_sessions,
        "session_timeout_s": context.session_timeout_s,
    }


class ReasonGymEnvironment(Environment):
    """One session's env: an OpenEnv ``Environment`` around a reason_gym env (see the module docstring)."""

    SUPPORTS_CONCURRENT_SESSIONS = True  # every session has its own env instance; shared data is read-only

    def __init__(self, context: ServeContext) -> None:
        super().__init__()
        self._context = context
        self._env: ReasoningEnv | None = None
        self._owner = secrets.token_hex(8)
        self._closed = False
        self._episode_id: str | None = None

    @property
    def env(self) -> ReasoningEnv:
        if self._closed:
            raise RuntimeError(
                "this session is closed (it ended, or was idle for more than "
                f"{self._context.session_timeout_s} s): open a new one"
            )
        if self._env is None:
            self._env = self._context.make()
        return self._env

    # ------------------------------------------------------------------ OpenEnv's Environment

    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> TextObservation:
        unknown = sorted(set(kwargs) - {"index", "split", "problem"})
        if unknown:
            raise ValueError(f"unknown reset argument(s) {unknown}: seed, options, index, split, problem")
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be a JSON object, got {type(options).__name__}")
        options = {**(options or {}), **kwargs}
        self.env.reset(seed=seed, options=options or None)
        self._episode_id = episode_id
        return self._observe(None, {}, full=True)

    def step(self, action: StepAction, timeout_s: float | None = None, **kwargs: Any) -> TextObservation:  # type: ignore[override]
        env = self.env
        if action.op == "step":
            _, reward, terminated, truncated, info = env.step(action.text)
            meta = {"reward_components": info["reward_components"], "terminated": terminated, "truncated": truncated}
            meta.update({key: info[key] for key in ("is_correct", "error") if key in info})
            return self._observe(reward, meta, full=False)
        if action.op == "snapshot":
            return self._observe(None, {}, full=True)
        if action.op == "restore":
            env.set_state(self._context.snapshots.get(action.text))
            return self._observe(None, {}, full=True)
        state = env.get_state()
        value = env.answer_key(action.text) if action.op == "answer_key" else env.candidate_actions()
        return TextObservation(
            text=state.observation,
            done=state.done,
            metadata={"problem_id": state.problem_id, "value": encode_value(value)},
        )

    @property
    def state(self) -> State:
        current = self._env._state if self._env is not None else None
        if current is None:
            return State(episode_id=self._episode_id, step_count=0)
        return State(
            episode_id=self._episode_id,
            step_count=current.num_actions,
            problem_id=current.problem_id,
            observation=current.observation,
            done=current.done,
        )

    def close(self) -> None:
        self._closed = True
        self._context.snapshots.drop(self._owner)

    # ------------------------------------------------------------------ OpenEnv's TaskProvider

    def list_splits(self) -> list[str]:
        return list(self.env.available_splits)

    def num_tasks(self, split: str) -> int:
        indices = self.env.split_indices(self.env._check_split(split))
        if indices is None:
            raise NotImplementedError  # procedural: no fixed list (OpenEnv answers 501)
        return len(indices)

    def get_task(self, split: str, index: int) -> dict[str, Any]:
        if index < 0 or index >= self.num_tasks(split):
            raise IndexError(index)
        self.env.reset(options={"index": index, "split": split})
        state = self.env.get_state()
        return {
            "split": split,
            "index": index,
            "problem_id": state.problem_id,
            "question": state.question,
            "problem": state.problem,
        }

    def list_tasks(self, split: str) -> list[dict[str, Any]]:
        return [self.get_task(split, i) for i in range(self.num_tasks(split))]

    def get_task_range(self, split: str, start: int | None = None, stop: int | None = None) -> list[dict[str, Any]]:
        return [self.get_task(split, i) for i in range(self.num_tasks(split))[start:stop]]

    # ------------------------------------------------------------------ helpers

    def _observe(self, reward: float | None, meta: dict[str, Any], *, full: bool) -> TextObservation:
        env = self.env
        state = env.get_state()
        canonical = None if state.done else env.canonical_state()
        wire: dict[str, Any] = {
            "steps": list(state.steps),
            "num_actions": state.num_actions,
            "done": state.done,
            "task": encode_value(state.task),
            "canonical": encode_value(canonical),
        }
        if full:
            wire.update(problem=state.problem, question=state.question)
        meta.update(problem_id=state.problem_id, snapshot=self._context.snapshots.put(self._owner, state), state=wire)
        return TextObservation(text=state.observation, reward=reward, done=state.done, metadata=meta)


# ---------------------------------------------------------------------- the app


class Guard:
    """ASGI middleware: the bearer token (when one is set) on every request and WebSocket, and the body cap."""

    def __init__(self, app: Any, token: str | None, max_body_bytes: int) -> None:
        self.app, self.token, self.max_body_bytes = app, token, max_body_bytes

    def _authorized(self, scope: Mapping[str, Any]) -> bool:
        if self.token is None:
            return True
        given = dict(scope.get("headers") or ()).get(b"authorization", b"")
        return hmac.compare_digest(given, f"Bearer {self.token}".encode())

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            if not self._authorized(scope):
                await send({"type": "websocket.close", "code": 1008, "reason": "a bearer token is required"})
                return
            await self.app(scope, _objects_only(receive, send), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._authorized(scope):
            await _send_json(send, 401, {"detail": "a bearer token is required (Authorization: Bearer TOKEN)"})
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _send_json(send, 413, {"detail": f"the request body is over {self.max_body_bytes} bytes"})
            return
        chunks, size = [], 0
        while True:  # read the whole (capped) body first, so an oversize chunked body is refused too
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away mid-request: nothing to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _send_json(send, 413, {"detail": f"the request body is over {self.max_body_bytes} bytes"})
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _objects_only(receive: Any, send: Any) -> Any:
    """A WebSocket ``receive`` that answers a message which is JSON but not an object (``null``, ``5``, ``[1]``)
    with an error message, as OpenEnv answers malformed JSON, and waits for the next: OpenEnv's handler would
    fail on it and close the connection, losing the session's episode."""

    async def receive_object() -> Any:
        while True:
            message = await receive()
            if message.get("type") != "websocket.receive" or _is_object_or_not_json(message.get("text")):
                return message
            error = {"message": NOT_AN_OBJECT, "code": "VALIDATION_ERROR"}
            await send({"type": "websocket.send", "text": json.dumps({"type": "error", "data": error})})

    return receive_object


NOT_AN_OBJECT = 'a WebSocket message must be a JSON object: {"type": ..., "data": {...}}'


def _is_object_or_not_json(text: str | None) -> bool:
    """Whether OpenEnv's handler can take ``text`` (a JSON object, or not JSON at all: it answers that itself)."""
    if text is None:
        return True
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return True


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def build_app(
    env_id: str,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    max_sessions: int = DEFAULT_MAX_SESSIONS,
    session_timeout_s: float | None = DEFAULT_SESSION_TIMEOUT_S,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_action_chars: int = DEFAULT_MAX_ACTION_CHARS,
    max_snapshots: int = DEFAULT_MAX_SNAPSHOTS,
    token: str | None = None,
) -> Any:
    """The ASGI app serving ``env_id`` (OpenEnv's routes, the session routes, the guard); see the module docstring.

    Raises:
        ValueError: An unknown env id, bad kwargs (the env is built once here to check them), or bad limits.
    """
    if env_id not in gym.registry:
        raise ValueError(f"unknown environment {env_id!r}; `reason-gym list` shows them")
    if max_sessions < 1 or max_body_bytes < 1024 or max_action_chars < 1 or max_snapshots < 1:
        raise ValueError("max_sessions, max_action_chars and max_snapshots must be >= 1 and max_body_bytes >= 1024")
    if session_timeout_s is not None and session_timeout_s <= 0:
        raise ValueError(f"session_timeout_s must be > 0 (or None: never), got {session_timeout_s}")
    context = ServeContext(env_id, dict(env_kwargs or {}), SnapshotTable(max_snapshots), session_timeout_s)
    context.info = describe(context, context.make(), max_action_chars, max_sessions)
    action_cls = create_model(
        "StepAction", __base__=StepAction, text=(str, Field(default="", max_length=max_action_chars))
    )
    name = env_id.split("/")[-1]
    app = FastAPI(title=f"reason_gym {env_id} (OpenEnv)", docs_url=None, redoc_url=None)
    server = HTTPEnvServer(
        functools.partial(ReasonGymEnvironment, context),
        action_cls,
        TextObservation,
        concurrency_config=ConcurrencyConfig(max_concurrent_envs=max_sessions, session_timeout=session_timeout_s),
        env_name=name,
    )
    server.register_routes(app, mode="simulation")
    _add_session_routes(app, server, context, action_cls)
    app.state.reason_gym = {"server": server, "context": context}
    return Guard(app, token, max_body_bytes)


def _add_session_routes(app: FastAPI, server: HTTPEnvServer, context: ServeContext, action_cls: type) -> None:
    """The HTTP session routes, on OpenEnv's session table (so the cap and the idle reaper cover them)."""

    @app.exception_handler(ValueError)
    async def _bad_value(request: Any, error: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(gym.error.Error)
    async def _bad_call(request: Any, error: gym.error.Error) -> JSONResponse:
        """A gymnasium error outside a session: OpenEnv's stateless ``POST /step`` steps a fresh env (409)."""
        if isinstance(error, gym.error.ResetNeeded):
            detail = (
                f"{error}: the stateless POST /step plays a fresh env per request, which has no episode; play "
                "episodes in a session (the WebSocket /ws, or POST /sessions then /sessions/{id}/reset and /step)"
            )
            return JSONResponse({"detail": detail}, status_code=409)
        return JSONResponse({"detail": str(error) or type(error).__name__}, status_code=400)

    @app.get("/reason_gym/info", tags=["reason_gym"])
    async def info() -> dict[str, Any]:
        return context.info

    @app.get("/reason_gym/stats", tags=["reason_gym"])
    async def stats() -> dict[str, Any]:
        return {"sessions": server.active_sessions, "snapshots": len(context.snapshots)}

    def session_env(session_id: str) -> ReasonGymEnvironment:
        env = server._sessions.get(session_id)
        if env is None:
            raise HTTPException(404, f"unknown session {session_id!r} (closed, reaped when idle, or never opened)")
        return env  # type: ignore[return-value]

    async def run(session_id: str, func: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            observation = await server._run_in_session_executor(session_id, func, *args, **kwargs)
        except (ValueError, TypeError, RuntimeError, gym.error.Error) as error:
            raise HTTPException(400, " ".join(str(error).split()) or type(error).__name__) from None
        server._update_session_activity(session_id, increment_step=True)
        return serialize_observation(observation)  # OpenEnv's wire format, as /ws answers

    async def open_session() -> tuple[str, ReasonGymEnvironment]:
        try:
            session_id, env = await server._create_session()
        except SessionCapacityError as error:
            raise HTTPException(503, str(error)) from None
        return session_id, env  # type: ignore[return-value]

    @app.post("/sessions", tags=["reason_gym sessions"])
    async def create() -> dict[str, Any]:
        session_id, _ = await open_session()
        return {"session_id": session_id}

    @app.post("/sessions/{session_id}/reset", tags=["reason_gym sessions"])
    async def reset(session_id: str, body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:  # noqa: B008
        env = session_env(session_id)
        return await run(session_id, env.reset, **body)

    @app.post("/sessions/{session_id}/step", tags=["reason_gym sessions"])
    async def step(session_id: str, body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        env = session_env(session_id)
        try:
            action = action_cls.model_validate(body.get("action"))
        except ValidationError as error:
            raise HTTPException(422, json.loads(error.json(include_url=False, include_input=False))) from None
        return await run(session_id, env.step, action)

    @app.get("/sessions/{session_id}/state", tags=["reason_gym sessions"])
    async def state(session_id: str) -> dict[str, Any]:
        return session_env(session_id).state.model_dump()

    @app.post("/sessions/{session_id}/fork", tags=["reason_gym sessions"])
    async def fork(session_id: str, body: dict[str, Any] = Body(default_factory=dict)) -> dict[str, Any]:  # noqa: B008
        """A new session restored to ``body["token"]`` (default: the source session's state now)."""
        source = session_env(session_id)
        token = body.get("token")
        if token is None:
            token = (await run(session_id, source.step, action_cls(op="snapshot")))["metadata"]["snapshot"]
        new_id, new_env = await open_session()
        try:
            observation = await run(new_id, new_env.step, action_cls(op="restore", text=str(token)))
        except HTTPException:
            await server._destroy_session(new_id)
            raise
        return {"session_id": new_id, **observation}  # noqa: RUF100

    @app.delete("/sessions/{session_id}", tags=["reason_gym sessions"])
    async def close(session_id: str) -> dict[str, Any]:
        session_env(session_id)
        await server._destroy_session(session_id)
        return {"closed": session_id}


# ---------------------------------------------------------------------- the command


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(token_file: str | None) -> tuple[str | None, str]:
    """The bearer token and where it came from: the file when given, else ``$REASON_GYM_SERVE_TOKEN``."""
    if token_file:
        token = Path(token_file).read_text().strip()
        if not token:
            raise ValueError(f"the token file {token_file} is empty")
        return token, f"the file {token_file}"
    token = os.environ.get(TOKEN_ENV, "").strip()
    return (token, f"${TOKEN_ENV}") if token else (None, "")


def serve(
    env_id: str,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    token_file: str | None = None,
    out: Any = None,
    **limits: Any,
) -> None:
    """Serves ``env_id`` until interrupted (SIGINT / SIGTERM). Port 0 picks a free one; the first line printed is
    ``serving ENV_ID at http://HOST:PORT``.

    Raises:
        ValueError: A non-loopback ``host`` without a token, or what :func:`build_app` raises.
    """
    import uvicorn

    out = out or sys.stdout
    token, source = read_token(token_file)
    if not is_loopback(host) and token is None:
        raise ValueError(
            f"serving on {host} (not loopback) needs a bearer token: set ${TOKEN_ENV} or pass --token-file"
        )
    app = build_app(env_id, env_kwargs, token=token, **limits)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: without it, a socket handed to uvicorn answers each HTTP request ~40 ms late
    # (Nagle's algorithm against the client's delayed ACK); uvicorn sets it only on sockets it opens itself
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)  # uvicorn's backlog: a client that connects once the line below is out waits, is not refused
    bound = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    print(f"serving {env_id} at http://{url_host}:{bound}", file=out, flush=True)
    if token is not None:
        print(f"a bearer token is required (Authorization: Bearer ...), read from {source}", file=out, flush=True)
    # Everything built so far (FastAPI, OpenEnv, the env and its data) lives as long as the server: moved out of the
    # collector's reach, it is not rescanned by every full collection, which under 64 busy sessions took up to
    # 230 ms each and set the p99 step latency (benchmarks/bench_serve.py: p99 166-191 ms without, 56-74 ms with).
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws_max_size=app.max_body_bytes,
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=[sock])
