"""``reason-gym serve`` end to end: a server subprocess on a free loopback port, the env contract through
``reason_gym/Remote-v0`` (WebSocket and HTTP), branching over the wire, OpenEnv's generic client and task interface,
a planner run, and the bad inputs that must get an error answer while the server goes on serving.

Every test leaves no session behind (the server's ``/reason_gym/stats`` is checked at the end) and the server is
stopped by the fixture.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("openenv")
httpx = pytest.importorskip("httpx")
websockets_sync = pytest.importorskip("websockets.sync.client")

import gymnasium as gym  # noqa: E402
from gymnasium.utils.env_checker import check_env  # noqa: E402

import reason_gym  # noqa: E402, F401
from reason_gym.core import EpisodeState  # noqa: E402
from reason_gym.envs.remote import RemoteError  # noqa: E402

GAME24 = "reason_gym/Game24-v0"
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "REASON_GYM_SERVE_TOKEN"}  # a token set here would be required


class Server:
    def __init__(self, *flags: str, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, "-m", "reason_gym.cli", "serve", GAME24, "--port", "0", *flags]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**CLEAN_ENV, **(env or {})}
        )
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("serving "):
            self.stop()
            raise RuntimeError(f"the server did not start: {line!r} {self.process.stderr.read()!r}")  # type: ignore[union-attr]
        self.url = line.split()[-1]
        self.host_port = self.url.removeprefix("http://")

    def stats(self, headers: dict[str, str] | None = None) -> dict[str, int]:
        return httpx.get(f"{self.url}/reason_gym/stats", headers=headers, trust_env=False).json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server("--max-sessions", "4")
    try:
        yield running
        assert running.process.poll() is None, "the server died during the tests"
    finally:
        running.stop()
    assert running.process.returncode is not None


@pytest.fixture(autouse=True)
def no_session_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "server" in request.fixturenames:
        srv: Server = request.getfixturevalue("server")
        deadline = time.monotonic() + 10
        while srv.stats()["sessions"] and time.monotonic() < deadline:  # a closed WebSocket ends its session async
            time.sleep(0.05)
        assert srv.stats() == {"sessions": 0, "snapshots": 0}


def remote(server: Server, transport: str = "ws", **kwargs):
    return gym.make("reason_gym/Remote-v0", base_url=server.url, transport=transport, **kwargs)


# ---------------------------------------------------------------------- the env contract


@pytest.mark.parametrize("transport", ["ws", "http"])
def test_openenv_remote_env_passes_check_env_and_matches_in_process(server: Server, transport: str) -> None:
    env = remote(server, transport)
    local = gym.make(GAME24)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        for options in ({"index": 3, "split": "test"}, {"problem": {"numbers": [1, 2, 3, 4], "target": 24}}):
            obs, info = env.reset(seed=5, options=options)
            local_obs, local_info = local.reset(seed=5, options=options)
            assert (obs, info) == (local_obs, local_info)
            for action in ["garbage", *[a for a in local.unwrapped.candidate_actions() if a][:1], "Answer: 1"]:
                got, want = env.step(action), local.step(action)
                assert got == want
        # the seed draws the same problem as in-process
        assert env.reset(seed=11)[0] == local.reset(seed=11)[0]
        assert env.unwrapped.split_indices("test") == range(len(local.unwrapped.split_indices("test")))
    finally:
        env.close()


def test_openenv_remote_branching_get_set_state_and_clone(server: Server) -> None:
    env = remote(server).unwrapped
    try:
        env.reset(options={"index": 0, "split": "test"})
        root = env.get_state()
        first = next(a for a in env.candidate_actions() if a)
        env.step(first)
        after = env.get_state()
        assert after.steps == (first,) and after.snapshot != root.snapshot
        env.set_state(root)
        assert env.get_state().observation == root.observation and env.steps == []
        twin = env.clone()  # a fork: a second server session in the same state
        try:
            twin.step(first)
            assert twin.get_state().observation == after.observation
            assert env.get_state().observation == root.observation  # the original is untouched
            env.set_state(twin.get_state())  # a token of another session restores here too
            assert env.get_state().observation == after.observation
            assert env.canonical_state() == _at(after).canonical_state()
        finally:
            twin.close()
        with pytest.raises(RemoteError, match="unknown or expired snapshot"):
            env.set_state(twin.get_state())  # its session is gone: its tokens are stale
        with pytest.raises(TypeError, match="snapshot token"):
            env.set_state(EpisodeState(*after))  # a plain state carries no token
    finally:
        env.close()


def _at(state):
    local = gym.make(GAME24).unwrapped
    local.set_state(state)
    return local


def test_openenv_http_fork_route(server: Server) -> None:
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        sid = client.post("/sessions").json()["session_id"]
        client.post(f"/sessions/{sid}/reset", json={"options": {"index": 1, "split": "test"}})
        step = client.post(f"/sessions/{sid}/step", json={"action": {"text": "no"}}).json()
        assert step["metadata"]["error"] and step["reward"] == pytest.approx(-0.1)
        fork = client.post(f"/sessions/{sid}/fork", json={}).json()
        assert fork["observation"]["text"] == step["observation"]["text"]
        assert client.get(f"/sessions/{fork['session_id']}/state").json()["step_count"] == 1
        for session in (sid, fork["session_id"]):
            assert client.delete(f"/sessions/{session}").status_code == 200


# ---------------------------------------------------------------------- OpenEnv's own client and task interface


def test_openenv_generic_client_plays_an_episode(server: Server) -> None:
    from openenv.core.generic_client import GenericEnvClient

    with GenericEnvClient(base_url=server.url).sync() as client:
        result = client.reset(options={"index": 2, "split": "test"})
        assert result.observation["text"].startswith("Game of 24")
        result = client.step({"text": "not a step"})
        assert result.reward == pytest.approx(-0.1) and not result.done
        assert result.metadata["reward_components"]["invalid_step"] == 1.0 and result.metadata["error"]
        result = client.step({"text": "Answer: 1 + 1"})
        assert result.done and result.metadata["is_correct"] is False
        assert client.state()["step_count"] == 2


def test_openenv_task_interface_lists_splits_and_problems(server: Server) -> None:
    local = gym.make(GAME24).unwrapped
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        names = [split["name"] for split in client.get("/Game24-v0/splits").json()]
        assert names == list(local.available_splits)
        count = client.post("/Game24-v0/num_tasks", json={"split": "test"}).json()["num_tasks"]
        assert count == len(local.split_indices("test"))
        task = client.post("/Game24-v0/task", json={"split": "test", "index": 4}).json()["task"]
        local.reset(options={"index": 4, "split": "test"})
        assert task["problem_id"] == local.get_state().problem_id
        assert task["problem"] == json.loads(json.dumps(local.get_state().problem))  # plain JSON
        assert client.post("/Game24-v0/task", json={"split": "test", "index": count}).status_code == 400


# ---------------------------------------------------------------------- a planner through the wire


def test_openenv_bench_runs_planners_against_the_served_env(server: Server, tmp_path: Path) -> None:
    from agents.bench import BenchConfig, run_bench

    config = BenchConfig(
        env=GAME24, env_url=server.url, policy="random", planners=("greedy", "beam", "mcts"), budgets=(4,),
        limit=2, out=tmp_path / "run", progress=False,
    )  # fmt: skip
    rows = run_bench(config)
    local = run_bench(BenchConfig(**{**vars(config), "env_url": None, "out": tmp_path / "local"}))
    assert [(r["planner"], r["accuracy"]) for r in rows] == [(r["planner"], r["accuracy"]) for r in local]
    with pytest.raises(ValueError, match="serves reason_gym/Game24-v0"):
        run_bench(BenchConfig(env="reason_gym/Arithmetic-v0", env_url=server.url, out=tmp_path / "x"))


def test_openenv_grpo_trains_against_the_served_env_as_in_process(server: Server, tmp_path: Path) -> None:
    """One GRPO step with the embedded model through ``Remote-v0`` samples the same episodes and makes the same
    update as in-process, for the same seed."""
    torch = pytest.importorskip("torch")
    from agents.training.grpo import GRPOConfig, GRPOTrainer

    def one_step(env_id: str, env_kwargs: dict[str, str], run: str) -> tuple[dict[str, float], list]:
        config = GRPOConfig(
            env_id=env_id, env_kwargs=env_kwargs, split="train", eval_problems=0, run_dir=str(tmp_path / run),
            resume=False, device="cpu", num_threads=1, progress=False, total_steps=1, batch_size=4, group_size=2,
            max_turns=2, max_new_tokens=16, dynamic_sampling=False, seed=3,
        )  # fmt: skip
        trainer = GRPOTrainer(config)
        try:
            metrics = trainer.step()
        finally:
            trainer.envs.close()  # ends the sessions
        return metrics, [p.detach().clone() for p in trainer.model.parameters()]

    served, served_weights = one_step("reason_gym/Remote-v0", {"base_url": server.url}, "served")
    local, local_weights = one_step(GAME24, {}, "local")
    for key in ("rewards/mean", "rewards/accuracy", "charts/tokens_sampled", "charts/steps_per_episode"):
        assert served[key] == pytest.approx(local[key]), key
    assert all(torch.allclose(a, b) for a, b in zip(served_weights, local_weights, strict=True))


# ---------------------------------------------------------------------- bad inputs


def test_openenv_bad_inputs_get_clear_errors_and_the_server_goes_on(server: Server) -> None:
    env = remote(server).unwrapped
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        try:
            env.reset(options={"index": 0, "split": "test"})
            # an unknown session, malformed JSON, an oversize action, an oversize body, a bad option
            assert client.post("/sessions/nope/step", json={"action": {"text": "x"}}).status_code == 404
            sid = client.post("/sessions").json()["session_id"]
            bad = client.post(
                f"/sessions/{sid}/reset", content=b"{not json", headers={"content-type": "application/json"}
            )
            assert bad.status_code == 422
            client.post(f"/sessions/{sid}/reset", json={})
            big = client.post(f"/sessions/{sid}/step", json={"action": {"text": "x" * 70_000}})
            assert big.status_code == 422 and "65536" in big.text
            huge = client.post(f"/sessions/{sid}/step", json={"action": {"text": "x" * (2 << 20)}})
            assert huge.status_code == 413
            bogus = client.post(f"/sessions/{sid}/reset", json={"options": {"bogus": 1}})
            assert bogus.status_code == 400 and "reset option" in bogus.json()["detail"]
            stale = client.post(f"/sessions/{sid}/step", json={"action": {"op": "restore", "text": "forged"}})
            assert stale.status_code == 400 and "unknown or expired snapshot" in stale.text
            client.delete(f"/sessions/{sid}")
            # over the WebSocket: malformed JSON and an oversize action are answered, and the session goes on
            with websockets_sync.connect(f"ws://{server.host_port}/ws", proxy=None) as ws:
                ws.send("{oops")
                assert json.loads(ws.recv(timeout=10))["data"]["code"] == "INVALID_JSON"
                ws.send(json.dumps({"type": "step", "data": {"text": "x" * 70_000}}))
                assert json.loads(ws.recv(timeout=10))["data"]["code"] == "VALIDATION_ERROR"
                ws.send(json.dumps({"type": "reset", "data": {"options": {"index": 0, "split": "test"}}}))
                assert json.loads(ws.recv(timeout=10))["type"] == "observation"
            with pytest.raises(RemoteError, match="unknown or expired snapshot"):
                env._call("step", {"op": "restore", "text": "x" * 32})
            # a client that disconnects mid-request (half a body), then the others are still served
            with socket.create_connection(tuple(server.host_port.rsplit(":", 1)), timeout=5) as raw:  # type: ignore[arg-type]
                raw.sendall(b'POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"a":')
            assert env.step("Answer: 1")[2] is True
            assert client.get("/health").status_code == 200
        finally:
            env.close()


@pytest.mark.parametrize("message", ["null", "5", "[1, 2]", '"str"', "true", '[{"type": "reset"}]'])
def test_openenv_websocket_message_not_an_object_is_answered_and_the_episode_goes_on(
    server: Server, message: str
) -> None:
    with websockets_sync.connect(f"ws://{server.host_port}/ws", proxy=None) as ws:
        ws.send(json.dumps({"type": "reset", "data": {"options": {"index": 0, "split": "test"}}}))
        started = json.loads(ws.recv(timeout=10))["data"]["observation"]["text"]
        ws.send(message)
        answer = json.loads(ws.recv(timeout=10))
        assert answer["type"] == "error" and answer["data"]["code"] == "VALIDATION_ERROR"
        assert "must be a JSON object" in answer["data"]["message"]
        ws.send(json.dumps({"type": "step", "data": {"text": "Answer: 1"}}))
        stepped = json.loads(ws.recv(timeout=10))["data"]
        assert stepped["done"] is True and stepped["observation"]["text"].startswith(started)


@pytest.mark.parametrize(
    ("path", "body", "status", "detail"),
    [
        ("/step", {"action": {"text": "x"}}, 409, "stateless POST /step plays a fresh env"),
        ("/step", {"action": {"text": 5}}, 422, ""),
        ("/reset", {"options": {"bogus": 1}}, 400, "reset option"),
    ],
)
def test_openenv_stateless_routes_answer_json_errors(
    server: Server, path: str, body: dict, status: int, detail: str
) -> None:
    answer = httpx.post(f"{server.url}{path}", json=body, trust_env=False)
    assert answer.status_code == status and detail in str(answer.json()["detail"])


def test_openenv_serves_a_data_env_with_only_some_splits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """MATH with its test file only (no train): the app builds, and lists the size of the split that loads."""
    from reason_gym.integrations.openenv import build_app

    (tmp_path / "math").mkdir()
    (tmp_path / "math" / "test.jsonl").write_text(json.dumps({"problem": "1 + 1?", "answer": "2"}) + "\n")
    monkeypatch.setenv("REASON_GYM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("REASON_GYM_ALLOW_HUB", raising=False)
    info = build_app("reason_gym/MATH-v0", {"split": "test"}).app.state.reason_gym["context"].info
    assert info["split_sizes"] == {"test": 1} and info["splits"] == ["train", "test"]


def test_openenv_session_cap(server: Server) -> None:
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        sessions = [client.post("/sessions").json()["session_id"] for _ in range(4)]
        try:
            full = client.post("/sessions")
            assert full.status_code == 503 and "4" in full.text
            with pytest.raises(RemoteError, match=r"(?i)capacity|maximum"):
                remote(server).reset()
        finally:
            for sid in sessions:
                client.delete(f"/sessions/{sid}")


# ---------------------------------------------------------------------- security and the idle reaper


def test_openenv_token_and_idle_reaper(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    srv = Server("--token-file", str(token_file), "--session-timeout", "1")
    auth = {"Authorization": "Bearer s3cret-token"}
    try:
        assert "bearer token is required" in srv.process.stdout.readline()  # type: ignore[union-attr]
        assert httpx.get(f"{srv.url}/reason_gym/info", trust_env=False).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(f"{srv.url}/sessions", headers=wrong, trust_env=False).status_code == 401
        with (
            pytest.raises(Exception, match=r"403|1008"),
            websockets_sync.connect(f"ws://{srv.host_port}/ws", proxy=None) as ws,
        ):
            ws.recv(timeout=5)
        env = remote(srv, token="s3cret-token").unwrapped
        env.reset(options={"index": 0, "split": "test"})
        env.close()
        with httpx.Client(base_url=srv.url, headers=auth, trust_env=False) as client:
            sid = client.post("/sessions").json()["session_id"]
            client.post(f"/sessions/{sid}/reset", json={})
            deadline = time.monotonic() + 20
            while client.get("/reason_gym/stats").json()["sessions"] and time.monotonic() < deadline:
                time.sleep(0.5)
            assert client.get("/reason_gym/stats").json() == {"sessions": 0, "snapshots": 0}
            assert client.post(f"/sessions/{sid}/step", json={"action": {"text": "x"}}).status_code == 404
    finally:
        srv.stop()


def test_openenv_serve_refuses_a_public_address_without_a_token() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reason_gym.cli", "serve", GAME24, "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, env=CLEAN_ENV, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "needs a bearer token" in done.stderr


def test_openenv_import_reason_gym_loads_no_openenv_and_the_server_no_torch() -> None:
    code = (
        "import sys, reason_gym, reason_gym.envs.remote; assert 'openenv' not in sys.modules; "
        "import reason_gym.integrations.openenv; assert 'torch' not in sys.modules, 'torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
