"""The private members of OpenEnv's ``HTTPEnvServer`` that ``reason-gym serve``'s HTTP session routes use
(``OPENENV_PRIVATE_MEMBERS``; OpenEnv 0.10 has no public way to do the same, hence the ``openenv==0.10.0`` pin):
still there, with the shape used, and doing what the routes rely on. A failure names the members: read it before
moving the pin."""

from __future__ import annotations

import asyncio
import importlib.metadata
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("openenv")

from reason_gym.integrations import openenv as serving

GAME24 = "reason_gym/Game24-v0"
METHODS: dict[str, tuple[bool, list[str]]] = {  # name: (a coroutine function, its leading parameters)
    "_create_session": (True, []),
    "_destroy_session": (True, ["session_id"]),
    "_run_in_session_executor": (True, ["session_id", "func"]),
    "_update_session_activity": (False, ["session_id", "increment_step"]),
}
"""How ``reason_gym/integrations/openenv.py`` calls them (``_sessions``, the session table, is read with ``.get``)."""


def http_env_server() -> Any:
    return serving.build_app(GAME24, max_sessions=2).app.state.reason_gym["server"]


def shape_problems(server: Any) -> list[str]:
    """What is missing or changed, member by member, against the use in ``reason_gym/integrations/openenv.py``."""
    problems = []
    if not hasattr(server, "_sessions"):
        problems.append("_sessions: missing")
    elif not callable(getattr(server._sessions, "get", None)):
        problems.append(f"_sessions: a {type(server._sessions).__name__}, not a mapping with .get")
    for name, (is_async, parameters) in METHODS.items():
        member = getattr(server, name, None)
        if member is None:
            problems.append(f"{name}: missing")
            continue
        if inspect.iscoroutinefunction(member) != is_async:
            problems.append(f"{name}: {'no longer' if is_async else 'now'} a coroutine function")
        found = list(inspect.signature(member).parameters)
        if found[: len(parameters)] != parameters:
            problems.append(f"{name}: parameters {found}, the routes pass {parameters}")
    return problems


def test_the_list_names_every_private_member_the_module_uses() -> None:
    source = Path(serving.__file__).read_text()
    assert set(re.findall(r"\bserver\.(_\w+)", source)) == set(serving.OPENENV_PRIVATE_MEMBERS)
    assert {"_sessions", *METHODS} == set(serving.OPENENV_PRIVATE_MEMBERS)  # every one is checked below


def test_openenv_http_env_server_still_has_the_private_members_the_session_routes_use() -> None:
    problems = shape_problems(http_env_server())
    assert not problems, (
        f"OpenEnv {importlib.metadata.version('openenv')}'s HTTPEnvServer changed private members that "
        f"reason_gym/integrations/openenv.py's session routes use (written for openenv==0.10.0): {'; '.join(problems)}"
    )


def test_the_private_members_open_run_count_and_close_a_session() -> None:
    server = http_env_server()

    async def lifecycle() -> None:
        session_id, env = await server._create_session()
        assert server._sessions.get(session_id) is env and server.active_sessions == 1
        observation = await server._run_in_session_executor(
            session_id, env.reset, options={"index": 0, "split": "test"}
        )
        assert observation.text.startswith("Game of 24")
        server._update_session_activity(session_id, increment_step=True)
        assert server.get_session_info(session_id).step_count == 1
        await server._destroy_session(session_id)
        assert server._sessions.get(session_id) is None and server.active_sessions == 0

    asyncio.run(lifecycle())
