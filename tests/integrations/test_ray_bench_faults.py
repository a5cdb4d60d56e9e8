"""``reason-gym bench --ray`` when Ray actors die mid-run: the episode a dead actor held is played again by another
actor in the same run, so the run finishes with every episode exactly once and the records of a local run; actors
that keep dying stop the run with a clear error, keeping what was played; a node lost mid-run costs only the
episodes its actors held. The actors' processes are really killed (SIGKILL), found among this test process's
descendants (the local cluster each run starts is a child of it); the node is removed from a two-node cluster of
Ray's test utilities on this machine."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from agents.bench import BenchConfig, run_bench
from agents.integrations import ray_bench
from agents.integrations.ray_bench import WorkerLostWarning, WorkersLostError

SETTINGS: dict[str, Any] = {
    "env": "reason_gym/Game24-v0",
    "seed": 3,
    "limit": 3,
    "budgets": [4, 8],
    "planners": ["greedy", "bon", "beam"],
    "progress": False,
}
EPISODES = 3 * 2 * 3
SLOW_POLICY = "random:0.05"  # 50 ms a policy call: episodes of 0.2 s or more, long enough to be killed mid-way


@pytest.fixture(autouse=True)
def no_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a local cluster, whatever the shell has


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int, int], dict[str, Any]]:
    """The records of the same grid played in this process, as without --ray (the policy's sleep changes none)."""
    folder = tmp_path_factory.mktemp("local")
    run_bench(BenchConfig(**SETTINGS, policy="random", out=folder))
    return records(folder)


def records(folder: Path) -> dict[tuple[str, int, int], dict[str, Any]]:
    """The records of ``folder`` without their wall time; asserts that each line is whole and none is there twice."""
    data = (folder / "episodes.jsonl").read_bytes()
    assert not data or data.endswith(b"\n"), "a torn last line"
    lines = [json.loads(line) for line in data.splitlines()]
    keyed = {(r["planner"], r["budget"], r["index"]): {k: v for k, v in r.items() if k != "wall_s"} for r in lines}
    assert len(keyed) == len(lines), "an episode was written twice"
    return keyed


def descendants() -> dict[int, str]:
    """The processes under this one (the Ray cluster a run starts is), by pid: their command line or title."""
    parents: dict[int, list[int]] = {}
    titles: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            titles[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended meanwhile
            continue
        parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, stack = {}, [os.getpid()]
    while stack:
        for child in parents.get(stack.pop(), []):
            found[child] = titles[child].strip()
            stack.append(child)
    return found


class Killer(threading.Thread):
    """SIGKILLs the process of an actor busy with ``method`` (title ``ray::EpisodeWorker.play``) once ``folder``'s
    episodes file has ``after`` lines (0: at once): once, or every actor process it sees until stopped
    (``every=True``)."""

    def __init__(self, folder: Path, after: int, every: bool = False, method: str = "play") -> None:
        super().__init__(daemon=True)
        self.path, self.after, self.every, self.method = folder / "episodes.jsonl", after, every, method
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.01):
            if self.after and (not self.path.exists() or self.path.read_bytes().count(b"\n") < self.after):
                continue
            for pid, title in descendants().items():
                if title.startswith("ray::EpisodeWorker") and (self.every or title.endswith("." + self.method)):
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
                    if not self.every:
                        return


@pytest.fixture
def killer() -> Iterator[list[Killer]]:
    started: list[Killer] = []
    yield started
    for thread in started:
        thread.stop.set()
        thread.join(timeout=10)


def no_ray_processes_left(timeout: float = 10.0) -> dict[int, str]:
    """The Ray processes still under this one after ``timeout`` seconds (the cluster's shutdown takes a moment)."""
    deadline = time.monotonic() + timeout
    while (left := {pid: t for pid, t in descendants().items() if "ray" in t}) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.slow
def test_a_killed_actor_costs_only_its_episode(local, tmp_path, killer):
    folder = tmp_path / "ray"
    killer.append(Killer(folder, after=3))
    killer[0].start()
    started = time.monotonic()
    with pytest.warns(WorkerLostWarning, match=r"its episode \('\w+', \d+, \d+\) is played again"):
        run_bench(BenchConfig(**SETTINGS, policy=SLOW_POLICY, out=folder, ray=True, ray_workers=2))
    elapsed = time.monotonic() - started
    assert len(killer[0].killed) == 1, "the run ended before an actor could be killed mid-episode"
    assert records(folder) == local  # every episode exactly once, each the local run's record
    assert len(local) == EPISODES
    assert json.loads((folder / "summary.json").read_text())  # the run finished: summary written
    assert not no_ray_processes_left()
    assert elapsed < 120, f"took {elapsed:.1f} s"  # 9-22 s here (2 shared cores); no waiting on a timeout


@pytest.mark.slow
def test_actors_that_keep_dying_stop_the_run_with_what_was_played_kept(local, tmp_path, killer, monkeypatch):
    monkeypatch.setattr(ray_bench, "REPLACEMENTS_PER_WORKER", 1)
    folder = tmp_path / "ray"
    killer.append(Killer(folder, after=1, every=True))  # every actor, once the first episode is written
    killer[0].start()
    with (
        pytest.warns(WorkerLostWarning, match="started a replacement"),
        pytest.raises(WorkersLostError, match=r"every Ray actor died \(2 deaths, 1 replacements.*rerun the command"),
    ):
        run_bench(BenchConfig(**SETTINGS, policy=SLOW_POLICY, out=folder, ray=True, ray_workers=1))
    killer[0].stop.set()
    played = records(folder)
    assert 1 <= len(played) < EPISODES
    assert played == {key: local[key] for key in played}  # what was written is whole and right
    assert not no_ray_processes_left()
    # A rerun (no more killing) resumes the rest: every episode once, the local run's records.
    run_bench(BenchConfig(**SETTINGS, policy=SLOW_POLICY, out=folder, ray=True, ray_workers=2))
    assert records(folder) == local


@pytest.mark.slow
def test_a_lost_node_costs_only_the_episodes_its_actors_held(local, tmp_path):
    """Two nodes of one CPU each (Ray's own multi-node test cluster, on this machine); the second is removed (its
    raylet and actors killed) once 3 episodes are written."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        node = cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address)  # connected: the run uses this cluster and leaves it up
        folder = tmp_path / "ray"

        def remove_node() -> None:
            path, deadline = folder / "episodes.jsonl", time.monotonic() + 60
            while (not path.exists() or path.read_bytes().count(b"\n") < 3) and time.monotonic() < deadline:
                time.sleep(0.01)
            cluster.remove_node(node)

        remover = threading.Thread(target=remove_node, daemon=True)
        remover.start()
        with pytest.warns(WorkerLostWarning, match="is played again"):
            run_bench(BenchConfig(**SETTINGS, policy=SLOW_POLICY, out=folder, ray=True, ray_workers=4))
        remover.join(timeout=10)
        assert len(ray.nodes()) == 2 and sum(n["Alive"] for n in ray.nodes()) == 1  # the node was lost mid-run
        assert records(folder) == local
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert not no_ray_processes_left()


@pytest.mark.slow
def test_an_actor_that_dies_while_probing_the_policy_stops_the_run_before_any_episode(tmp_path, killer):
    folder = tmp_path / "ray"
    killer.append(Killer(folder, after=0, method="probe"))
    killer[0].start()
    with pytest.raises(WorkersLostError, match="the Ray actor that probes the policy died before any episode"):
        run_bench(BenchConfig(**SETTINGS, policy="random:0.5", out=folder, ray=True, ray_workers=2))
    assert len(killer[0].killed) == 1
    episodes = folder / "episodes.jsonl"
    assert not episodes.exists() or not episodes.read_bytes()
    assert not no_ray_processes_left()
