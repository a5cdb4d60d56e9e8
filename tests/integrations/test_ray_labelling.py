"""Step labelling on Ray actors (``label_steps --ray-workers N``): the records equal those labelled in this
process (each batch seeds its policy from itself alone), and an actor SIGKILLed mid-batch costs only that batch,
labelled again by another actor, every problem written once."""

from __future__ import annotations

import os
import signal
import threading
import warnings
from pathlib import Path

import pytest

pytest.importorskip("ray")

from test_ray_bench_faults import descendants, no_ray_processes_left

from agents.integrations.ray_bench import WorkerLostWarning
from agents.training.prm_data import LabelConfig, label_steps, load_step_data

SETTINGS = dict(problems=6, k=2, batch_problems=1, policy="random:0.02", progress=False)


@pytest.fixture(autouse=True)
def no_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def by_index(folder: Path) -> dict[int, dict]:
    records = load_step_data(folder)
    keyed = {r["index"]: r for r in records}
    assert len(keyed) == len(records), "a problem was written twice"
    return keyed


def kill_one_label_worker(stop: threading.Event, killed: list[int]) -> None:
    while not stop.wait(0.01):
        for pid, title in descendants().items():
            if title.startswith("ray::LabelWorker.play"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return


def test_labelling_on_ray_actors_equals_labelling_here_even_when_an_actor_dies(tmp_path):
    local = label_steps(LabelConfig(**SETTINGS, out=str(tmp_path / "local")))
    assert local["counts"]["trajectories"] > 0
    on_ray = label_steps(LabelConfig(**SETTINGS, ray_workers=2, out=str(tmp_path / "ray")))
    assert by_index(tmp_path / "ray") == by_index(tmp_path / "local")
    assert on_ray["compute"] | {"wall_s": 0} == local["compute"] | {"wall_s": 0}

    stop, killed = threading.Event(), []
    thread = threading.Thread(target=kill_one_label_worker, args=(stop, killed), daemon=True)
    thread.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            label_steps(LabelConfig(**SETTINGS, ray_workers=2, out=str(tmp_path / "killed")))
    finally:
        stop.set()
        thread.join(timeout=10)
    assert killed and any(issubclass(w.category, WorkerLostWarning) for w in caught)
    assert by_index(tmp_path / "killed") == by_index(tmp_path / "local")
    assert no_ray_processes_left() == {}


def test_ray_workers_need_a_policy_spec_and_a_count(tmp_path):
    from agents.simple import RandomPolicy

    with pytest.raises(ValueError, match="ray_workers must be an int >= 0"):
        LabelConfig(ray_workers=-1)
    with pytest.raises(ValueError, match="pass no policy object"):
        label_steps(LabelConfig(**SETTINGS, ray_workers=2, out=str(tmp_path / "x")), RandomPolicy())
