"""``reason-gym serve`` on loopback: in-process vs served (WebSocket and HTTP), then many concurrent sessions.

Starts ``reason-gym serve reason_gym/Game24-v0 --port 0`` as a subprocess on 127.0.0.1 and measures:

1. one client, ``--steps`` steps each: in-process ``env.step``, ``reason_gym/Remote-v0`` over the WebSocket and
   over HTTP: steps/s and p50 / p99 step latency;
2. ``--sessions`` concurrent WebSocket sessions (one thread each) x ``--steps-per-session`` steps: total
   steps/s, p99 step latency, the server's resident memory before and after, and the sessions left open once the
   clients have closed (must be 0).

Episodes of 4 steps (a legal step, two rejected steps, a wrong answer), a reset (not timed) between them.
Prints one JSON object (and writes it to ``--out``). Usage::

    python benchmarks/bench_serve.py                       # 64 sessions x 1,000 steps
    python benchmarks/bench_serve.py --sessions 8 --steps-per-session 200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import httpx
import numpy as np

import reason_gym  # noqa: F401

ENV_ID = "reason_gym/Game24-v0"


def first_moves() -> list[str]:
    """A legal first step of each of the first 100 test problems (from an in-process env)."""
    env = gym.make(ENV_ID).unwrapped
    moves = []
    for index in range(100):
        env.reset(options={"index": index, "split": "test"})
        moves.append(next(a for a in env.candidate_actions() if a))
    return moves


MOVES = first_moves()


def play(env: gym.Env, steps: int, seed: int = 0) -> list[float]:
    """``steps`` steps in episodes of 4 (a legal step, two rejected ones, a wrong answer), resets between them
    (not timed); returns each step's latency in seconds."""
    latencies: list[float] = []
    index = seed % 100
    while len(latencies) < steps:
        env.reset(seed=seed, options={"index": index, "split": "test"})
        for action in (MOVES[index], "not a step", "1 + 1 = 3", "Answer: 1 + 1"):
            started = time.perf_counter()
            env.step(action)
            latencies.append(time.perf_counter() - started)
        index = (index + 1) % 100
    return latencies[:steps]


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    ms = np.array(latencies) * 1000
    return {
        "steps": len(latencies),
        "steps_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps of the one-client runs")
    parser.add_argument("--sessions", type=int, default=64)
    parser.add_argument("--steps-per-session", type=int, default=1000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "reason_gym.cli", "serve", ENV_ID, "--port", "0"]
    command += ["--max-sessions", str(max(args.sessions, 4))]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().split()[-1]  # type: ignore[union-attr]
        results: dict[str, Any] = {"env": ENV_ID, "cpus": __import__("os").cpu_count()}
        for name, make in (
            ("in_process", lambda: gym.make(ENV_ID)),
            ("websocket", lambda: gym.make("reason_gym/Remote-v0", base_url=url, transport="ws")),
            ("http", lambda: gym.make("reason_gym/Remote-v0", base_url=url, transport="http")),
        ):
            env = make()
            play(env, 50)  # warm up
            started = time.perf_counter()
            latencies = play(env, args.steps)
            results[name] = summary(latencies, time.perf_counter() - started)
            env.close()
        time.sleep(0.5)
        results["server_rss_mib_before"] = rss_mib(server.pid)
        envs = [gym.make("reason_gym/Remote-v0", base_url=url) for _ in range(args.sessions)]
        per_thread: list[list[float]] = [[] for _ in envs]
        errors: list[BaseException] = []

        def worker(i: int) -> None:
            try:
                per_thread[i] = play(envs[i], args.steps_per_session, seed=i)
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(envs))]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=1800)
        wall = time.perf_counter() - started
        results["server_rss_mib_during"] = rss_mib(server.pid)
        for env in envs:
            env.close()
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/reason_gym/stats", trust_env=False).json()["sessions"] and time.monotonic() < deadline:
            time.sleep(0.1)
        stats = httpx.get(f"{url}/reason_gym/stats", trust_env=False).json()
        concurrent = summary([x for xs in per_thread for x in xs], wall)
        results["concurrent"] = {
            "sessions": args.sessions,
            "steps_per_session": args.steps_per_session,
            **concurrent,
            "errors": [repr(e) for e in errors[:5]],
            "sessions_left_open": stats["sessions"],
            "snapshots_left": stats["snapshots"],
        }
        results["server_rss_mib_after"] = rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
