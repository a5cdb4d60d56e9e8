"""The serve benchmark: its workload and ratio arithmetic, its sessions-left-open probe against a held session, and a
``--quick`` run end to end with the anchor (OpenEnv's echo env) side by side (keys, no errors, no session left;
not timings)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("openenv")


def test_workload_has_exactly_the_steps_asked_in_episodes_of_four(load_benchmark) -> None:
    bench = load_benchmark("bench_serve")
    runs = list(bench.episodes(10, seed=3))
    assert [len(actions) for _, actions in runs] == [4, 4, 2]
    assert [kwargs["options"]["index"] for kwargs, _ in runs] == [3, 4, 5]
    assert runs[0][1][1:] == ["not a step", "1 + 1 = 3", "Answer: 1 + 1"] and runs[0][1][0] == bench.MOVES[3]


def test_overhead_ratio_and_target(load_benchmark) -> None:
    bench = load_benchmark("bench_serve")
    ours = {"overhead_p50_ms": 0.9, "overhead_mean_ms": 1.2}
    within = bench.ratios({"ours": ours, "anchor": {"overhead_p50_ms": 0.5, "overhead_mean_ms": 0.6}})
    assert within == {
        "overhead_ratio_p50": pytest.approx(1.8),
        "overhead_ratio_mean": pytest.approx(2.0),
        "target_ratio": 2.0,
        "target_met": True,
    }
    over = bench.ratios({"ours": ours, "anchor": {"overhead_p50_ms": 0.5, "overhead_mean_ms": 0.5}})
    assert over["overhead_ratio_mean"] == pytest.approx(2.4) and over["target_met"] is False


@pytest.mark.slow
def test_sessions_left_open_probe_sees_a_held_session(load_benchmark) -> None:
    from openenv.core.generic_client import GenericEnvClient

    bench = load_benchmark("bench_serve")
    env = {k: v for k, v in os.environ.items() if k != "REASON_GYM_SERVE_TOKEN"}
    command = [sys.executable, "-m", "reason_gym.cli", "serve", bench.ENV_ID, "--port", "0", "--max-sessions", "3"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = server.stdout.readline().split()[-1]  # type: ignore[union-attr]
        host, port = url.removeprefix("http://").split(":")
        # no wait: once `reason-gym serve` has printed its line, its socket listens (a connection waits, not refused)
        socket.create_connection((host, int(port)), timeout=10).close()

        async def probe() -> tuple[int, int]:
            async with GenericEnvClient(base_url=url) as held:
                await held.state()
                while_held = await bench.sessions_left_open(url, 3, wait_s=0)
            return while_held, await bench.sessions_left_open(url, 3)

        assert asyncio.run(probe()) == (1, 0)
    finally:
        bench.stop(server)


@pytest.mark.slow
def test_quick_run_measures_ours_and_the_anchor_side_by_side(tmp_path: Path, run_script) -> None:
    out = tmp_path / "serve.json"
    run_script("benchmarks/bench_serve.py", "--quick", "--out", str(out), timeout=300)
    report = json.loads(out.read_text())
    assert {"in_process", "websocket", "http"} <= set(report)  # the Remote-v0 rows, as before
    assert report["concurrent"]["errors"] == [] and report["concurrent"]["sessions_left_open"] == 0

    anchor = report["anchor"]
    one = anchor["one_client"]
    for name in ("ours", "anchor"):
        assert {"in_process", "served", "overhead_p50_ms", "overhead_mean_ms"} <= set(one[name])
        assert one[name]["served"]["steps"] == one[name]["in_process"]["steps"] == 200
    assert {"overhead_ratio_p50", "overhead_ratio_mean", "target_ratio"} <= set(one)
    assert isinstance(one["target_met"], bool)

    for name in ("ours", "anchor"):
        run = anchor["concurrent"][name]
        assert run["errors"] == 0, run["first_errors"]
        assert run["steps"] == run["sessions"] * run["steps_per_session"] == 4 * 100
        assert run["sessions_left_open"] == 0
    assert anchor["concurrent"]["ours"]["stats_after"] == {"sessions": 0, "snapshots": 0}
