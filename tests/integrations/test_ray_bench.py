"""``reason-gym bench --ray``: the records of a local run, resumed like one, and an unreachable RAY_ADDRESS named at
once. Each run starts (and stops) its own local Ray cluster, as the command does without RAY_ADDRESS."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from agents.bench import BenchConfig, run_bench
from agents.integrations.ray_bench import check_reachable

SETTINGS: dict[str, Any] = {
    "env": "reason_gym/Game24-v0",
    "policy": "random",
    "seed": 3,
    "limit": 3,
    "budgets": [4, 8],
    "planners": ["greedy", "bon", "beam"],
}
EPISODES = 3 * 2 * 3


@pytest.fixture(autouse=True)
def no_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local cluster, whatever the shell has


def bench(folder: Path, **changes: Any) -> list[dict[str, Any]]:
    return run_bench(BenchConfig(**{**SETTINGS, "progress": False, **changes}, out=folder))


def by_episode(folder: Path) -> dict[tuple[str, int, int], dict[str, Any]]:
    """The records of ``folder``, without their wall time; asserts that none is there twice."""
    lines = (folder / "episodes.jsonl").read_bytes().splitlines()
    records = [{key: value for key, value in json.loads(line).items() if key != "wall_s"} for line in lines]
    keyed = {(r["planner"], r["budget"], r["index"]): r for r in records}
    assert len(keyed) == len(records), "an episode was written twice"
    return keyed


def without_wall_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in row.items() if key != "wall_s"} for row in rows]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """The same grid played in this process, as without --ray."""
    folder = tmp_path_factory.mktemp("local")
    return folder, bench(folder)


@pytest.mark.slow
def test_a_ray_run_gives_the_records_and_summary_of_a_local_run(local, tmp_path, capsys):
    folder, rows = local
    ray_rows = bench(tmp_path / "ray", ray=True, ray_workers=2, progress=True)
    assert by_episode(tmp_path / "ray") == by_episode(folder)  # episode for episode, same seeds, same answers
    assert len(by_episode(folder)) == EPISODES
    assert without_wall_time(ray_rows) == without_wall_time(rows)
    assert without_wall_time(json.loads((tmp_path / "ray" / "summary.json").read_text())) == without_wall_time(rows)
    assert (tmp_path / "ray" / "accuracy_vs_budget.png").stat().st_size > 0
    assert f"{EPISODES}/{EPISODES}" in capsys.readouterr().err  # the progress bar


@pytest.mark.slow
def test_a_killed_ray_run_resumes_with_every_episode_exactly_once(local, tmp_path):
    folder, rows = local
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    lines = (folder / "episodes.jsonl").read_bytes().splitlines(keepends=True)
    (resumed / "run.json").write_bytes((folder / "run.json").read_bytes())
    # What a killed driver leaves: some whole lines (in the order they finished) and the start of the next one.
    partial = lines[5] + lines[0] + lines[11] + lines[2] + lines[7][:40]
    (resumed / "episodes.jsonl").write_bytes(partial)
    with pytest.warns(UserWarning, match="half-written last line"):
        resumed_rows = bench(resumed, ray=True)
    assert by_episode(resumed) == by_episode(folder)  # none lost, none repeated, the same records
    kept = (resumed / "episodes.jsonl").read_bytes()
    assert kept.startswith(lines[5] + lines[0] + lines[11] + lines[2])  # what was there stays, untouched
    assert without_wall_time(resumed_rows) == without_wall_time(rows)
    run_bench(BenchConfig(**SETTINGS, progress=False, out=resumed, ray=True))  # nothing left: plays nothing
    assert (resumed / "episodes.jsonl").read_bytes() == kept


@pytest.mark.slow
def test_a_policy_the_actors_cannot_build_fails_before_any_episode(tmp_path):
    with pytest.raises(ValueError, match="unknown policy spec 'gpt-4'"):
        bench(tmp_path / "bad", policy="gpt-4", ray=True)
    episodes = tmp_path / "bad" / "episodes.jsonl"
    assert not episodes.exists() or not episodes.read_bytes()


def free_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_ray_address_is_named_within_seconds(tmp_path):
    address = f"127.0.0.1:{free_loopback_port()}"
    command = [sys.executable, "-c", "import sys; from reason_gym.cli import main; sys.exit(main(sys.argv[1:]))"]
    flags = ["bench", "--policy", "random", "--limit", "1", "--budgets", "4", "--planners", "greedy", "--ray"]
    started = time.monotonic()
    done = subprocess.run(
        [*command, *flags, "--out", str(tmp_path / "run"), "--no-progress"],
        env={**os.environ, "RAY_ADDRESS": address},
        capture_output=True,
        text=True,
        timeout=60,  # bounds the test if it would hang
    )
    elapsed = time.monotonic() - started
    assert done.returncode != 0
    assert f"RAY_ADDRESS={address!r}" in done.stderr, done.stderr[-2000:]
    assert elapsed < 20, f"took {elapsed:.1f} s"  # Python start-up and imports included; the check itself <= 5 s


@pytest.mark.parametrize("address", ["auto", "local", "ray://auto"])
def test_addresses_left_to_ray_are_not_probed(address):
    check_reachable(address)


@pytest.mark.parametrize("address", ["nonsense", "host:port", "ray://host"])
def test_a_malformed_ray_address_is_named(address):
    with pytest.raises(ConnectionError, match=re.escape(f"RAY_ADDRESS={address!r}")):
        check_reachable(address)


def test_a_silent_address_gives_up_after_the_timeout():
    """A host that drops the connection attempt (no refusal): the wait is the timeout, not Ray's retries."""
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=r"192\.0\.2\.1:6379"):  # TEST-NET-1: routed nowhere
        check_reachable("192.0.2.1:6379", timeout=0.5)
    assert time.monotonic() - started < 3
