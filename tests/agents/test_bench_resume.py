"""A killed or damaged bench run resumes or says which file is wrong: atomic metadata writes, corrupt run.json and
summary.json, torn and corrupt episode lines, episodes without run.json, and SIGKILLs of the real command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.bench import BenchConfig, ResumeWarning, run_bench
from reason_gym.cli import main
from reason_gym.files import write_atomic

SETTINGS: dict[str, Any] = {"policy": "random", "limit": 1, "budgets": [4], "planners": ["greedy", "bon"]}
FLAGS = ("--policy", "random", "--limit", "1", "--budgets", "4", "--planners", "greedy,bon", "--no-progress")


def bench(folder: Path, **changes: Any) -> list[dict[str, Any]]:
    return run_bench(BenchConfig(**{**SETTINGS, **changes}, out=folder, progress=False))


def records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "episodes.jsonl").read_bytes().splitlines()]


def without_wall_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in row.items() if key != "wall_s"} for row in rows]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of two episodes (greedy and best-of-n on one problem)."""
    folder = tmp_path_factory.mktemp("played")
    bench(folder)
    return folder


@pytest.fixture
def run(played: Path, tmp_path: Path) -> Path:
    """A copy of the finished run, to damage."""
    folder = tmp_path / "run"
    shutil.copytree(played, folder)
    return folder


# ------------------------------------------------------------------ the atomic write


def test_write_atomic_replaces_the_file_with_text_or_bytes_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "run.json"
    write_atomic(path, "first é\n")
    write_atomic(path, b"\x00second")
    assert path.read_bytes() == b"\x00second" and [p.name for p in tmp_path.iterdir()] == ["run.json"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not mkstemp's 0o600


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(failing, tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    path.write_text("old")

    def fail(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(path, "new" * 1000)
    monkeypatch.undo()
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_write_atomic_into_a_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "run.json", "{}")


@pytest.mark.parametrize("name", ["run.json", "summary.json", "accuracy_vs_budget.png"])
def test_a_run_stopped_while_writing_a_metadata_file_keeps_the_old_one_and_resumes(name, run, monkeypatch):
    before = snapshot(run)
    replace = os.replace

    def stop_at(source: Any, target: Any) -> None:
        if Path(target).name == name:
            raise KeyboardInterrupt  # what Ctrl-C (or a kill, which leaves no cleanup at all) does here
        replace(source, target)

    monkeypatch.setattr(os, "replace", stop_at)
    with pytest.raises(KeyboardInterrupt):
        bench(run)
    monkeypatch.undo()
    assert snapshot(run) == before  # no empty file, no temporary left behind
    assert without_wall_time(bench(run)) == without_wall_time(json.loads(before["summary.json"]))


# ------------------------------------------------------------------ corrupt run.json and summary.json

MISSING = "is missing the settings ['split', 'policy', 'prm', 'seed', 'depth_hint']"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),  # a kill between truncating and writing (before writes were atomic)
        (b" \n", "is empty"),
        (b'{"env": "reason_gym/Game24-v0", "sp', "is not valid JSON"),  # a truncated write
        (b"\x00" * 64, "is not valid JSON"),  # a power cut: the size was written, the data not
        (b"\xff\xfe\xfa", "is not valid JSON"),
        (b"[" * 100_000, "is not valid JSON"),  # deep enough to exceed the recursion limit
        (b"[]", "is not a JSON object but a JSON list"),
        (b"null", "is not a JSON object but a JSON NoneType"),
        (b'"run"', "is not a JSON object but a JSON str"),
        (b'{"env": "reason_gym/Game24-v0"}', MISSING),
    ],
    ids=["empty", "blank", "truncated", "zeros", "binary", "deep", "list", "null", "string", "missing-keys"],
)
def test_a_corrupt_run_json_names_the_file_keeps_the_episodes_and_the_named_way_out_resumes(content, problem, run):
    settings = run / "run.json"
    good = settings.read_bytes()
    settings.write_bytes(content)
    before = snapshot(run)
    with pytest.raises(ValueError) as error:
        bench(run)
    message = str(error.value)
    assert message.startswith(f"{settings} {problem}")
    assert f"the 2 episodes in {run / 'episodes.jsonl'} are kept" in message
    assert f"delete {settings} and rerun" in message and "--overwrite" in message and "another --out" in message
    assert snapshot(run) == before  # nothing rewritten, nothing thrown away
    settings.unlink()  # the way out the message names
    with pytest.warns(ResumeWarning, match="run.json is missing: resuming the 2 episodes"):
        rows = bench(run)
    assert rows == json.loads(before["summary.json"])  # the same records: no episode played again
    assert (run / "episodes.jsonl").read_bytes() == before["episodes.jsonl"] and settings.read_bytes() == good


def test_the_command_reports_a_corrupt_run_json_in_one_line(run, capsys):
    (run / "run.json").write_bytes(b"")
    assert main(["bench", "--out", str(run), *FLAGS]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith(f"reason-gym: {run / 'run.json'} is empty")


def test_run_json_with_other_settings_is_still_refused_as_before(run):
    with pytest.raises(ValueError, match=r"holds a run with other settings \(policy 'random' there, 'random:0' now"):
        bench(run, policy="random:0")


@pytest.mark.parametrize(
    "content", [b"", b"[{", b"\x00" * 16, b"{}", b"not json"], ids=["empty", "torn", "zeros", "object", "text"]
)
def test_a_corrupt_summary_is_written_anew_by_the_resume(content, run):
    before = snapshot(run)
    (run / "summary.json").write_bytes(content)
    assert bench(run) == json.loads(before["summary.json"])
    assert snapshot(run) == before


# ------------------------------------------------------------------ torn and corrupt episode lines


def torn(lines: list[bytes]) -> dict[str, bytes]:
    first, second = lines
    return {
        "one-byte": first + b"\n" + second[:1],
        "mid-line": first + b"\n" + second[:15],
        "no-closing-brace": first + b"\n" + second[:-1],
        "no-newline": first + b"\n" + second,  # whole, but its newline never written: played again all the same
        "zeros": first + b"\n" + b"\x00" * 40,
        "only-line-torn": first[: len(first) // 2],
    }


@pytest.mark.parametrize("case", list(torn([b"x", b"y"])))
def test_a_torn_last_episode_line_is_dropped_with_a_warning_and_replayed(case, run):
    before = snapshot(run)
    content = torn(before["episodes.jsonl"].splitlines())[case]
    (run / "episodes.jsonl").write_bytes(content)
    with pytest.warns(ResumeWarning, match=r"episodes.jsonl: dropped a half-written last line \(\d+ bytes"):
        rows = bench(run)
    replayed = (run / "episodes.jsonl").read_bytes()
    assert replayed.endswith(b"\n") and replayed.startswith(content[: content.rfind(b"\n") + 1])
    expected = [json.loads(line) for line in before["episodes.jsonl"].splitlines()]
    assert without_wall_time(records(run)) == without_wall_time(expected)  # each episode once, as first played
    assert without_wall_time(rows) == without_wall_time(json.loads(before["summary.json"]))


def corrupt_lines(line: bytes) -> dict[str, bytes]:
    record = json.loads(line)
    return {
        "text": b"garbage",
        "zeros": b"\x00" * 40,
        "binary": b"\xff\xfe\x00{",
        "list": b"[]",
        "deep": b"[" * 100_000,
        "missing-keys": b'{"planner": "greedy", "budget": 4, "index": 0}',
        "budget-as-text": json.dumps({**record, "budget": "4"}).encode(),
        "no-counter": json.dumps({**record, "used": {"samples": 1}}).encode(),
        "details-not-object": json.dumps({**record, "details": "x"}).encode(),
    }


@pytest.mark.parametrize("case", list(corrupt_lines(b"{}")))
@pytest.mark.parametrize("position", ["middle", "last"])
def test_a_corrupt_complete_episode_line_names_the_file_and_line_and_changes_nothing(case, position, run):
    first, second = (run / "episodes.jsonl").read_bytes().splitlines()
    bad = corrupt_lines(second)[case]
    lines = [first, bad, second] if position == "middle" else [first, second, bad]
    (run / "episodes.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    before = snapshot(run)
    number = 2 if position == "middle" else 3
    with pytest.raises(ValueError, match=rf"episodes.jsonl:{number} is not an episode record: delete that line"):
        bench(run)
    assert snapshot(run) == before


def test_blank_lines_are_skipped(run):
    before = snapshot(run)
    first, second = before["episodes.jsonl"].splitlines()
    (run / "episodes.jsonl").write_bytes(first + b"\n\n  \n" + second + b"\n")
    assert bench(run) == json.loads(before["summary.json"])


def test_a_record_whose_pass_at_k_is_null_is_an_episode(run):
    """A search that finished no trajectory records ``pass_at_k: null`` (MCTS at a small budget does)."""
    first, second = (run / "episodes.jsonl").read_bytes().splitlines()
    record = {**json.loads(second), "pass_at_k": None, "answer": None}
    (run / "episodes.jsonl").write_bytes(first + b"\n" + json.dumps(record).encode() + b"\n")
    assert bench(run)[1]["pass_at_k"] == 0.0


# ------------------------------------------------------------------ episodes without run.json


def test_episodes_without_run_json_resume_when_their_seeds_and_problems_match(run):
    before = snapshot(run)
    (run / "run.json").unlink()
    with pytest.warns(ResumeWarning, match="policy, PRM and depth hint .* are assumed"):
        assert bench(run) == json.loads(before["summary.json"])
    assert snapshot(run) == before


@pytest.mark.parametrize("changes", [{"seed": 1}, {"split": "train"}], ids=["seed", "split"])
def test_episodes_without_run_json_from_other_settings_are_refused(changes, run):
    (run / "run.json").unlink()
    before = snapshot(run)
    with pytest.raises(ValueError, match=r"episodes.jsonl has no run.json beside it and 2 of its 2 episodes"):
        bench(run, **changes)
    assert snapshot(run) == before  # no run.json written for settings the episodes were not played with


def test_overwrite_still_discards_the_episodes(run):
    (run / "run.json").write_bytes(b"")
    bench(run, overwrite=True, planners=["greedy"])
    assert [record["planner"] for record in records(run)] == ["greedy"]


# ------------------------------------------------------------------ the real command, killed again and again


def start_bench(folder: Path, *flags: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "reason_gym.cli", "bench", "--out", str(folder), *flags]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def assert_resumable(folder: Path) -> None:
    """What a kill may leave: a whole run.json or none, whole episode lines and at most a torn last one."""
    if (folder / "run.json").exists():
        assert json.loads((folder / "run.json").read_text())["seed"] == 7
    if (folder / "episodes.jsonl").exists():
        data = (folder / "episodes.jsonl").read_bytes()
        for line in data[: data.rfind(b"\n") + 1].splitlines():
            json.loads(line)


def whole_lines(folder: Path) -> int:
    path = folder / "episodes.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_a_bench_killed_again_and_again_resumes_to_the_summary_of_an_uninterrupted_run(tmp_path):
    settings = {"policy": "random:0.05", "seed": 7, "limit": 3, "budgets": [4, 16]}
    flags = ("--policy", "random:0.05", "--seed", "7", "--limit", "3", "--budgets", "4,16", "--no-progress")
    whole = run_bench(BenchConfig(**settings, out=tmp_path / "whole", progress=False))
    folder = tmp_path / "killed"
    rng = np.random.default_rng(0)
    for delay in [*rng.uniform(0.3, 2.5, size=4), None]:  # random moments (start-up too), then surely mid-way
        process = start_bench(folder, *flags)
        played_before = whole_lines(folder)
        deadline = time.monotonic() + (60 if delay is None else delay)
        while process.poll() is None and time.monotonic() < deadline:
            if delay is None and whole_lines(folder) >= played_before + 3:
                break
            time.sleep(0.005)
        process.kill()  # SIGKILL: no cleanup, as in a crash
        _, stderr = process.communicate()
        assert process.returncode in (0, -9), stderr.decode()[-2000:]
        assert_resumable(folder)
    assert 3 <= whole_lines(folder) < 30, "the last round should have been killed mid-way"
    final = start_bench(folder, *flags)
    _, stderr = final.communicate(timeout=300)
    assert final.returncode == 0, stderr.decode()[-2000:]
    keys = [(r["planner"], r["budget"], r["index"]) for r in records(folder)]
    assert len(keys) == len(set(keys)) == 30  # every episode once: none lost, none repeated
    assert without_wall_time(json.loads((folder / "summary.json").read_text())) == without_wall_time(whole)
