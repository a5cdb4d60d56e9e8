"""The reason-gym CLI in subprocesses (the bench end to end, killed and resumed), and the model-free baselines."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import reason_gym  # noqa: F401
from agents.bench import BenchConfig, ResumeWarning, run_bench
from agents.cli import parse
from reason_gym.cli import main


def reason_gym_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reason_gym.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_list_names_every_environment_with_a_description():
    result = reason_gym_cli("list")
    assert result.returncode == 0
    assert re.search(r"^reason_gym/Game24-v0 +Combine numbers", result.stdout, re.M)


def test_play_a_game_from_standard_input():
    moves = "13 - 9 = 4\n4 * 5 = 20\n10 - 4 = 6 (left: 4 6)\n4 * 6 = 24\nAnswer: (13 - 9) * (10 - 4)\n"
    result = reason_gym_cli("play", "reason_gym/Game24-v0", "--split", "test", "--index", "99", stdin=moves)
    assert result.returncode == 0, result.stderr
    assert "Input: 4 9 10 13" in result.stdout
    assert "rejected: b = 5 is not available" in result.stdout
    assert "13 - 9 = 4 (left: 4 4 10)" in result.stdout
    assert result.stdout.rstrip().endswith("-- episode over: correct")


def test_play_quits_on_end_of_input_and_rejects_unknown_envs():
    assert reason_gym_cli("play", "reason_gym/Game24-v0", "--seed", "1").stdout.rstrip().endswith("bye")
    result = reason_gym_cli("play", "reason_gym/Chess-v0")
    assert result.returncode == 2 and "reason-gym list" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("play", "reason_gym/Game24-v0", "--seed", "-1"), "--seed: must be an integer >= 0"),
        (("serve", "reason_gym/Game24-v0", "--port", "-1"), "--port: must be an integer in [0, 65535]"),
        (("serve", "reason_gym/Game24-v0", "--port", "70000"), "--port: must be an integer in [0, 65535]"),
        (("play", "reason_gym/Remote-v0"), "cannot be played from the command line"),
        (("serve", "reason_gym/Remote-v0", "--port", "0"), "cannot be built with --env-kwargs"),
    ],
)
def test_bad_command_lines_are_one_error_line_not_a_traceback(arguments, message):
    result = reason_gym_cli(*arguments)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


ROOT = Path(__file__).resolve().parents[2]
BENCH_FLAGS = ("--limit", "2", "--budgets", "4,16", "--no-progress")


def episode_lines(folder: Path) -> list[str]:
    return (folder / "episodes.jsonl").read_text().splitlines()


def without_wall_time(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "wall_s"} for row in rows]


def test_the_command_line_defaults_are_the_bench_defaults():
    args = parse(BenchConfig, [], "reason-gym bench")  # one declaration: the flags are the dataclass's fields
    defaults = BenchConfig(policy="random")
    assert list(args.planners) == list(defaults.planners)
    assert list(args.budgets) == list(defaults.budgets)
    assert (args.limit, args.policy, args.out, args.split) == (defaults.limit, "tiny", defaults.out, defaults.split)
    assert BenchConfig.policy == "tiny"
    spelled = parse(BenchConfig, ["--budgets", "4,16", "--planners", "greedy", "beam,mcts", "--no-progress"], "b")
    assert (spelled.budgets, spelled.planners, spelled.progress) == ((4, 16), ("greedy", "beam", "mcts"), False)


def test_list_and_play_import_no_agents_module_and_plugin_commands_answer_help():
    probe = (
        "import sys, io, contextlib, reason_gym, reason_gym.cli as cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['list'])\n"
        "    sys.stdin = io.StringIO('')\n"
        "    cli.main(['play', 'reason_gym/Game24-v0', '--index', '0'])\n"
        "print(sorted(m for m in sys.modules if m == 'agents' or m.startswith('agents.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", (done.stdout, done.stderr)
    listed = reason_gym_cli("--help")
    assert listed.returncode == 0 and all(name in listed.stdout for name in ("list", "play", "bench", "train"))
    bench_help = reason_gym_cli("bench", "--help")
    assert bench_help.returncode == 0 and "--budgets" in bench_help.stdout and "--no-progress" in bench_help.stdout
    train_help = reason_gym_cli("train", "grpo", "--help")
    assert train_help.returncode == 0 and "--group-size" in train_help.stdout and "--env-kwargs" in train_help.stdout


def test_bench_writes_episodes_a_summary_and_a_plot(tmp_path):
    result = reason_gym_cli("bench", "--policy", "random", "--out", str(tmp_path), *BENCH_FLAGS)
    assert result.returncode == 0, result.stderr
    episodes = [json.loads(line) for line in episode_lines(tmp_path)]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(episodes) == 5 * 2 * 2  # planners x budgets x problems
    assert [(row["planner"], row["budget"]) for row in summary] == [
        (planner, budget) for planner in ("greedy", "bon", "beam", "mcts", "tot") for budget in (4, 16)
    ]
    for row in summary:
        mine = [e for e in episodes if (e["planner"], e["budget"]) == (row["planner"], row["budget"])]
        assert row["n_problems"] == 2 and row["accuracy"] == sum(e["is_correct"] for e in mine) / 2
        assert row["samples"] == sum(e["used"]["samples"] for e in mine) / 2 <= row["budget"]
        assert {"pass_at_k", "policy_calls", "tokens", "prm_calls", "env_steps", "wall_s"} <= set(row)
    assert (tmp_path / "accuracy_vs_budget.png").read_bytes().startswith(b"\x89PNG")
    assert result.stdout.splitlines()[0].split()[:4] == ["planner", "budget", "accuracy", "pass@k"]


def test_bench_plays_the_chosen_problems_of_a_split(tmp_path):
    flags = ["--policy", "random", "--planners", "greedy", "--budgets", "4", "--split", "train", "--no-progress"]
    result = reason_gym_cli("bench", "--out", str(tmp_path / "some"), "--indices", "1,7,3", *flags)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(line)["index"] for line in episode_lines(tmp_path / "some")) == [1, 3, 7]
    assert json.loads((tmp_path / "some" / "summary.json").read_text())[0]["n_problems"] == 3
    for indices, message in (("5,5", "distinct ints"), ("1262", "index 1262 is past the 1262 problems")):
        refused = reason_gym_cli("bench", "--out", str(tmp_path / "bad"), "--indices", indices, *flags)
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr[-500:]


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "agents" / "models" / "tiny" / "config.json").exists(), reason="no tiny checkpoint")
def test_bench_runs_the_embedded_model(tmp_path):
    result = reason_gym_cli("bench", "--out", str(tmp_path), "--limit", "1", "--budgets", "4", "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["planner"] for row in summary] == ["greedy", "bon", "beam", "mcts", "tot"]
    assert all(row["tokens"] > 0 and row["samples"] <= 4 for row in summary)


@pytest.mark.slow
def test_a_killed_bench_resumes_to_the_summary_of_an_uninterrupted_run(tmp_path):
    flags = ("--policy", "random:0.01", "--seed", "7", *BENCH_FLAGS)
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert reason_gym_cli("bench", "--out", str(whole), *flags).returncode == 0
    command = [sys.executable, "-m", "reason_gym.cli", "bench", "--out", str(resumed), *flags]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if (resumed / "episodes.jsonl").exists() and len(episode_lines(resumed)) >= 3:
            break
        time.sleep(0.01)
    process.kill()  # SIGKILL: no cleanup, as in a crash
    process.wait()
    done_before = len(episode_lines(resumed))
    assert 3 <= done_before < 20, "the run should have been killed mid-way"
    again = reason_gym_cli("bench", "--out", str(resumed), *flags)
    assert again.returncode == 0, again.stderr
    lines = episode_lines(resumed)
    keys = [(e["planner"], e["budget"], e["index"]) for e in map(json.loads, lines)]
    assert len(keys) == len(set(keys)) == 20  # every episode once: none lost, none repeated
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (whole, resumed)]
    assert without_wall_time(summaries[0]) == without_wall_time(summaries[1])


def test_a_half_written_episode_line_is_dropped_and_replayed(tmp_path):
    config = BenchConfig(
        policy="random", limit=1, budgets=[4], planners=["greedy", "bon"], out=tmp_path, progress=False
    )
    first = run_bench(config)
    lines = episode_lines(tmp_path)
    (tmp_path / "episodes.jsonl").write_text(lines[0] + "\n" + lines[1][:15])  # killed while writing line 2
    with pytest.warns(ResumeWarning, match="dropped a half-written last line"):
        again = run_bench(config)
    replayed = [json.loads(line) for line in episode_lines(tmp_path)]
    assert without_wall_time(replayed) == without_wall_time([json.loads(line) for line in lines])
    assert without_wall_time(first) == without_wall_time(again)


def test_a_prm_scores_the_search(tmp_path):
    config = BenchConfig(policy="random", prm="rule", limit=2, budgets=[16], planners=["bon", "mcts"], out=tmp_path)
    config.progress = False
    rows = run_bench(config)
    assert [row["value"] for row in rows] == ["prm_vote", "prm"]
    assert all(row["prm_calls"] > 0 and not row["uses_verifier"] for row in rows)


def test_a_run_folder_refuses_other_settings(tmp_path):
    run_bench(BenchConfig(policy="random", limit=1, budgets=[4], planners=["greedy"], out=tmp_path, progress=False))
    other = BenchConfig(policy="random", limit=1, budgets=[4], planners=["greedy"], out=tmp_path, seed=1)
    with pytest.raises(ValueError, match="seed 0 there, 1 now"):
        run_bench(other)
    other.overwrite, other.progress = True, False
    assert run_bench(other)[0]["n_problems"] == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--planners", "greedy,oracle"), "unknown planner(s) ['oracle']"),
        (("--budgets", "8,lots"), "--budgets: expected comma-separated ints, got 'lots'"),
        (("--budgets", "0"), "budgets must be positive ints"),
        (("--limit", "0"), "limit must be >= 1"),
        (("--limit", "two"), "--limit: invalid value 'two'"),
        (("--bogus",), "Unrecognized options: --bogus"),
        (("--env", "reason_gym/Chess-v0"), "unknown environment"),
        (("--policy", "gpt-4"), "unknown policy spec 'gpt-4'"),
        (("--policy", "random:fast"), "optional latency in seconds"),
        (("--policy", "random", "--prm", "oracle"), "unknown PRM spec 'oracle'"),
        (("--policy", "openai:http://127.0.0.1:9/v1#m"), "no answer from http://127.0.0.1:9/v1/completions"),
    ],
)
def test_bench_reports_a_bad_command_line_in_one_line(flags, message, tmp_path, capsys):
    try:
        status = main(["bench", "--out", str(tmp_path / "run"), "--limit", "1", *flags])
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert len(captured.err.splitlines()) == 1 and message in captured.err, captured.err


@pytest.mark.slow
def test_a_missing_model_is_one_error_line_from_the_command(tmp_path):
    result = reason_gym_cli("bench", "--out", str(tmp_path), "--policy", "hf:/nonexistent/model", "--limit", "1")
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()] and "no model at '/nonexistent/model'" in result.stderr


def test_run_bench_is_reproducible_under_a_seed(tmp_path):
    def run(folder: str) -> list[dict]:
        config = BenchConfig(policy="random", limit=3, budgets=[8], seed=3, out=tmp_path / folder, progress=False)
        return without_wall_time(run_bench(config))

    assert run("one") == run("two")
    with pytest.raises(ValueError, match="limit must be >= 1"):
        BenchConfig(policy="random", limit=0)
