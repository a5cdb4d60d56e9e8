"""Step data for PRMs (agents.training.prm_data): Monte-Carlo labels against hand-computed values, exact labels
against the rule-based scorers, the budget, resume after a kill, the validation hold-out, bad input, the command."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import gymnasium as gym
import pytest

from agents.bench_run import ResumeWarning
from agents.policies.base import Candidate, ScriptedPolicy
from agents.prm import ArithmeticStepScorer, Game24StepScorer
from agents.simple import RandomPolicy
from agents.training.prm_data import LabelConfig, label_steps, load_step_data, select_problems
from agents.training.prm_records import is_validation
from reason_gym.checkers.game24_solver import is_solvable
from reason_gym.core import scratch_env
from reason_gym.envs.arithmetic import solution_trace

ROOT = Path(__file__).resolve().parents[2]
GAME24, ARITHMETIC = "reason_gym/Game24-v0", "reason_gym/Arithmetic-v0"


def config(folder: Path, **overrides) -> LabelConfig:
    settings = dict(env=GAME24, problems=4, k=2, batch_problems=2, policy="scripted", out=str(folder), progress=False)
    return LabelConfig(**{**settings, **overrides})


class SolvingPolicy:
    """Game24: the first legal step at the root (a random one with ``seed``), solvable or not, then a step that keeps
    the numbers solvable wherever there is one: from a solvable state it always ends correct, from another never."""

    takes_episode_states = True

    def __init__(self, seed: int | None = None) -> None:
        self.legal = RandomPolicy(seed)
        self.random_root = seed is not None
        self.calls = 0

    def _solvable_after(self, state, action: str) -> bool:
        env = scratch_env(state.spec, state.problem)
        env.set_state(state)
        env.step(action)
        return is_solvable(env.get_state().task, state.problem["target"])

    def propose(self, states, n=1, *, temperature=None):
        self.calls += 1
        out = []
        for state in states:
            legal = self.legal.legal_steps(state)
            pick = legal[self.legal.rng.integers(len(legal))] if self.random_root else legal[0]
            if state.steps:
                pick = next((a for a in legal if self._solvable_after(state, a)), legal[0])
            out.append([Candidate(pick, num_tokens=len(pick) + 1)] * n)
        return out


class RoundRobin(ScriptedPolicy):
    """A scripted policy whose j-th copy of a state within one call gets the state's j-th step (cyclically)."""

    def propose(self, states, n=1, *, temperature=None):
        self.calls += 1
        seen: Counter[str] = Counter()
        out = []
        for state in states:
            steps = self._steps(state)
            out.append([Candidate(steps[seen[state] % len(steps)])] * n)
            seen[state] += 1
        return out


def arithmetic_problem(index: int = 0):
    env = gym.make(ARITHMETIC, num_operations=1, kind="linear").unwrapped
    question, _ = env.reset(options={"index": index, "split": "train"})
    return question, env.get_state().problem


def game24_problems(indices):
    env = gym.make(GAME24, split="train").unwrapped
    problems = {}
    for index in indices:
        env.reset(options={"index": index, "split": "train"})
        problems[index] = env.get_state().problem
    return problems


# ---------------------------------------------------------------------- labels


def test_a_solving_policy_gives_mc_labels_equal_to_the_exact_game24_labels(tmp_path):
    meta = label_steps(config(tmp_path, problems=6, batch_problems=3), SolvingPolicy())
    records = load_step_data(tmp_path)
    assert [r["index"] for r in records] == [
        i for i, _ in select_problems(gym.make(GAME24, split="train").unwrapped, "train", "train", 0.1, 6)[0]
    ]
    problems = game24_problems(r["index"] for r in records)
    exact = []
    for record in records:
        scores = Game24StepScorer().score(problems[record["index"]], record["steps"])
        assert record["labels"]["exact"] == [int(s) for s in scores]
        # from a solvable state every completion is right, from an unsolvable one none: soft = hard = exact
        assert record["labels"]["mc_soft"] == [float(s) for s in scores]
        assert record["labels"]["mc_hard"] == record["labels"]["exact"]
        assert record["outcome"] == record["labels"]["exact"][-1] and record["steps"][-1].startswith("Answer:")
        assert record["source"] == "mc" and record["k"] == 2
        exact += record["labels"]["exact"]
    assert 0 in exact and 1 in exact  # the first legal step is sometimes a dead end: both labels occur
    assert meta["counts"]["trajectories"] == 6 and meta["counts"]["correct"] == sum(r["outcome"] for r in records)


def test_mc_labels_count_the_completions_that_end_correct(tmp_path):
    question, problem = arithmetic_problem()
    first, *rest = solution_trace(problem)
    assert rest, "a one-step trace leaves nothing to complete"
    wrong = f"Answer: {problem['answer'] + 1}"
    after_first = f"{question}\n{first}"
    script = {question: [first], after_first: [rest[0], wrong]}  # copies of after_first: right, wrong, right, ...
    state = after_first
    for step, following in itertools.pairwise(rest):
        state = f"{state}\n{step}"
        script[state] = [following]
    policy = RoundRobin(script, default=[wrong])
    label_steps(
        config(
            tmp_path, env=ARITHMETIC, env_kwargs={"num_operations": 1, "kind": "linear"}, problems=1, k=4, part="all"
        ),
        policy,
    )
    [record] = load_step_data(tmp_path / "steps.jsonl")
    assert record["index"] == 0 and record["steps"] == [first, *rest] and record["outcome"] == 1
    # after the first step 2 of the 4 completions answer wrongly; after the later steps all 4 follow the trace
    assert record["labels"]["mc_soft"] == [0.5] + [1.0] * len(rest)
    assert record["labels"]["mc_hard"] == [1] * (len(rest) + 1)
    scores = ArithmeticStepScorer().score(problem, record["steps"])
    assert record["labels"]["exact"] == [int(s) for s in scores] == [1] * (len(rest) + 1)


def test_budget_counts_policy_calls_samples_and_tokens(tmp_path):
    question, problem = arithmetic_problem()
    trace = solution_trace(problem)
    script, state = {}, question
    for step in trace:
        script[state] = [step]
        state = f"{state}\n{step}"
    policy = ScriptedPolicy(script)
    k, length = 3, len(trace)
    meta = label_steps(
        config(
            tmp_path, env=ARITHMETIC, env_kwargs={"num_operations": 1, "kind": "linear"}, problems=1, k=k, part="all"
        ),
        policy,
    )
    # the trajectory: one call per step; then k completions of each state before the answer, all in one call per turn
    calls = length + (length - 1)
    samples = length + k * sum(length - t for t in range(1, length))
    assert policy.calls == calls
    compute = meta["compute"]
    assert (compute["policy_calls"], compute["samples"], compute["tokens"]) == (calls, samples, 0)
    assert compute["env_steps"] == samples
    # the Monte-Carlo completions' part of it, apart from the trajectory's (what TD or exact labels need)
    completions = meta["compute_completions"]
    assert (completions["policy_calls"], completions["samples"]) == (length - 1, samples - length)
    assert completions["env_steps"] == samples - length
    [record] = load_step_data(tmp_path)
    assert (record["policy_calls"], record["tokens"]) == (calls, 0)


def test_tokens_are_attributed_to_problems_and_calls_are_shared_by_a_batch(tmp_path):
    meta = label_steps(config(tmp_path, problems=4, batch_problems=4), RandomPolicy(seed=1))
    records = load_step_data(tmp_path)
    assert sum(r["tokens"] for r in records) == meta["compute"]["tokens"] == meta["per_trajectory_totals"]["tokens"]
    assert meta["compute"]["tokens"] > 0
    # one batch: each call serves several problems, so the real calls are at most the problems' calls summed
    assert max(r["policy_calls"] for r in records) == meta["compute"]["policy_calls"]
    assert meta["compute"]["policy_calls"] < sum(r["policy_calls"] for r in records)


def test_star_keeps_only_verified_solutions_and_lists_the_unsolved_as_unlabelled(tmp_path):
    meta = label_steps(config(tmp_path, problems=6, mode="star", attempts=2, k=1), SolvingPolicy(seed=0))
    records = load_step_data(tmp_path)
    assert records and all(r["outcome"] == 1 and r["source"] == "star" for r in records)
    # the solving policy completes every verified solution's states correctly: every label is 1
    assert all(
        r["labels"]["mc_soft"] == [1.0] * len(r["steps"]) == [float(x) for x in r["labels"]["exact"]] for r in records
    )
    solved, unsolved = {r["index"] for r in records}, {u["index"] for u in meta["unlabelled"]}
    assert {u["reason"] for u in meta["unlabelled"]} == {"no verified solution"}
    assert not solved & unsolved and len(solved | unsolved) == 6 and unsolved  # random play solves some, not all
    again = SolvingPolicy(seed=0)
    label_steps(config(tmp_path, problems=6, mode="star", attempts=2, k=1), again)
    assert again.calls == 0 and load_step_data(tmp_path) == records  # nothing relabelled, unsolved ones included


class HintedSolver:
    """Arithmetic: with the answer hinted in the question, the problem's solution trace; without, a wrong answer at
    the start, and from any later state of the trace the rest of it (``unaided_finish=False``: a wrong answer)."""

    takes_episode_states = True

    def __init__(self, unaided_finish: bool = True) -> None:
        self.unaided_finish = unaided_finish
        self.hinted_states = 0

    def propose(self, states, n=1, *, temperature=None):
        out = []
        for state in states:
            trace, hinted = solution_trace(state.problem), "(Hint: the answer is" in state.question
            self.hinted_states += hinted
            step = trace[len(state.steps)] if hinted or (state.steps and self.unaided_finish) else "Answer: 1000"
            out.append([Candidate(step, num_tokens=len(step))] * n)
        return out


def test_rationalization_keeps_hinted_steps_only_when_the_policy_then_finishes_unaided(tmp_path):
    settings = dict(env=ARITHMETIC, env_kwargs={"num_operations": 2}, mode="star", attempts=2, k=1, problems=3)
    policy = HintedSolver()
    meta = label_steps(config(tmp_path / "kept", rationalize=True, **settings), policy)
    records = load_step_data(tmp_path / "kept")
    assert [r["source"] for r in records] == ["rationalized"] * 3 and policy.hinted_states > 0
    for record in records:  # the hinted steps, then the policy's own unaided answer, in the unhinted episode
        assert "Hint" not in record["question"] and record["outcome"] == 1
        env = gym.make(ARITHMETIC, num_operations=2).unwrapped
        env.reset(options={"index": record["index"], "split": "train"})
        assert record["steps"] == solution_trace(env.get_state().problem)
    assert meta["counts"]["by_source"] == {"rationalized": 3} and not meta["unlabelled"]

    meta = label_steps(config(tmp_path / "dropped", rationalize=True, **settings), HintedSolver(unaided_finish=False))
    assert load_step_data(tmp_path / "dropped") == []
    assert [u["reason"] for u in meta["unlabelled"]] == ["no verified solution"] * 3

    plain = label_steps(config(tmp_path / "plain", **settings), HintedSolver())  # STaR alone solves none
    assert plain["counts"]["trajectories"] == 0

    game24 = SolvingPolicy()
    with pytest.raises(ValueError, match="game24 problems have no reference answer"):
        label_steps(config(tmp_path / "game24", mode="star", rationalize=True), game24)
    assert game24.calls == 0


def test_a_trajectory_without_an_accepted_step_is_listed_not_written(tmp_path):
    policy = ScriptedPolicy({}, default=["not a step"])  # every action rejected until the step limit (10)
    meta = label_steps(config(tmp_path, problems=2), policy)
    assert load_step_data(tmp_path) == [] and policy.calls == 10
    assert [(u["reason"], u["policy_calls"]) for u in meta["unlabelled"]] == [("no accepted step", 10)] * 2
    label_steps(config(tmp_path, problems=2), policy)
    assert policy.calls == 10  # done: not played again


# ---------------------------------------------------------------------- resume


class Killed(Exception):
    """Stands for SIGKILL: raised by the policy where a test stops a run."""


class DyingPolicy(RandomPolicy):
    def __init__(self, calls_left: int) -> None:
        super().__init__()
        self.calls_left = calls_left

    def propose(self, states, n=1, *, temperature=None):
        self.calls_left -= 1
        if self.calls_left < 0:
            raise Killed
        return super().propose(states, n, temperature=temperature)


def test_a_killed_run_resumes_each_trajectory_once_and_equal_to_an_uninterrupted_run(tmp_path):
    label_steps(config(tmp_path / "whole", problems=6), RandomPolicy())
    with pytest.raises(Killed):
        label_steps(config(tmp_path / "killed", problems=6), DyingPolicy(calls_left=12))
    partial = load_step_data(tmp_path / "killed")
    assert 0 < len(partial) < 6
    label_steps(config(tmp_path / "killed", problems=6), RandomPolicy())
    whole, resumed = load_step_data(tmp_path / "whole"), load_step_data(tmp_path / "killed")
    assert [r["index"] for r in resumed] == [r["index"] for r in whole]  # each once, in order
    assert resumed == whole  # each batch is seeded on its own
    # the compute grows over the resumed run, the completions' part with it (the killed batch's work is lost)
    meta, whole_meta = (json.loads((tmp_path / name / "meta.json").read_text()) for name in ("killed", "whole"))
    for part in ("compute", "compute_completions"):
        assert meta[part]["samples"] >= whole_meta[part]["samples"] > 0


def test_data_labelled_before_completions_were_counted_apart_gets_no_split(tmp_path):
    label_steps(config(tmp_path, problems=2, batch_problems=1), RandomPolicy())
    meta_path = tmp_path / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["compute_completions"]  # as an older labeller wrote it
    meta_path.write_text(json.dumps(meta))
    meta = label_steps(config(tmp_path, problems=3, batch_problems=1), RandomPolicy())
    assert "compute_completions" not in meta  # this run's part alone would pass for the whole folder's


def test_a_torn_last_line_is_dropped_and_its_trajectory_labelled_again(tmp_path):
    label_steps(config(tmp_path, problems=5), RandomPolicy())
    path = tmp_path / "steps.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed mid-write
    with pytest.warns(ResumeWarning, match="half-written"):
        assert len(load_step_data(tmp_path)) == 4  # the reader skips it and leaves the file alone
    assert not path.read_bytes().endswith(b"\n")
    with pytest.warns(ResumeWarning, match="labelled again"):
        label_steps(config(tmp_path, problems=5), RandomPolicy())
    indices = [r["index"] for r in load_step_data(tmp_path)]
    assert len(indices) == 5 == len(set(indices))


# ---------------------------------------------------------------------- validation hold-out


def test_the_validation_hold_out_is_deterministic_disjoint_and_recorded(tmp_path):
    game24 = gym.make(GAME24, split="train").unwrapped
    size = len(game24.split_indices("train"))
    train, held = select_problems(game24, "train", "train", 0.1, 20)
    val, held_again = select_problems(gym.make(GAME24, split="train").unwrapped, "train", "val", 0.1, 20)
    assert held == held_again and 0.05 * size < len(held) < 0.15 * size
    assert {i for i, _ in val} <= set(held) and not {i for i, _ in train} & set(held)
    assert all(is_validation(pid, 0.1) for _, pid in val) and not any(is_validation(pid, 0.1) for _, pid in train)
    everything, _ = select_problems(game24, "train", "all", 0.1, size)
    assert [i for i, _ in everything] == list(range(size))
    # a procedural task: held out by the problem's id, so a repeated problem never falls on both sides
    arithmetic = gym.make(ARITHMETIC, num_operations=1).unwrapped
    train, _ = select_problems(arithmetic, "train", "train", 0.2, 60)
    val, _ = select_problems(arithmetic, "train", "val", 0.2, 15)
    assert not {pid for _, pid in train} & {pid for _, pid in val}
    meta = label_steps(config(tmp_path, problems=2, part="val"), RandomPolicy())
    assert meta["validation"]["held_out_indices"] == held and "crc32" in meta["validation"]["rule"]
    assert {r["index"] for r in load_step_data(tmp_path)} <= set(held)


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"env": "reason_gym/Nope-v0"}, "unknown environment 'reason_gym/Nope-v0'"),
        ({"k": 0}, "k must be an int >= 1"),
        ({"problems": 0}, "problems must be an int >= 1"),
        ({"mode": "rl"}, "mode must be one of mc, star"),
        ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\)"),
        ({"part": "val", "val_fraction": 0.0}, "and > 0 for --part val"),
        ({"env_kwargs": {"split": "test"}}, "pass the split with --split"),
        ({"rationalize": True}, "pass --mode star"),
    ],
)
def test_bad_settings_are_refused(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        config(tmp_path, **overrides)


def test_corrupt_files_and_other_settings_get_errors_naming_them(tmp_path):
    label_steps(config(tmp_path, problems=2), RandomPolicy())
    path = tmp_path / "steps.jsonl"
    good = path.read_text().splitlines()
    record = json.loads(good[1])
    record["labels"]["mc_hard"] = [2] * len(record["steps"])
    path.write_text(good[0] + "\n" + json.dumps(record) + "\n")
    with pytest.raises(ValueError, match=r"steps\.jsonl:2 is not a step-data record: labels\.mc_hard"):
        load_step_data(tmp_path)
    with pytest.raises(ValueError, match=r"steps\.jsonl:2"):
        label_steps(config(tmp_path, problems=3), RandomPolicy())
    path.write_text(good[0] + "\n{not json\n")
    with pytest.raises(ValueError, match=r"steps\.jsonl:2 is not valid JSON"):
        load_step_data(path)
    path.write_text("\n".join(good) + "\n")
    with pytest.raises(ValueError, match=r"other settings.*k 2 there, 3 now"):
        label_steps(config(tmp_path, problems=2, k=3), RandomPolicy())
    (tmp_path / "meta.json").write_text("{")
    with pytest.raises(ValueError, match=r"meta\.json is not valid JSON.*--overwrite"):
        label_steps(config(tmp_path, problems=2), RandomPolicy())
    label_steps(config(tmp_path, problems=2, overwrite=True), RandomPolicy())
    assert len(load_step_data(tmp_path)) == 2
    with pytest.raises(FileNotFoundError, match="no step data"):
        load_step_data(tmp_path / "nothing")


# ---------------------------------------------------------------------- the command


def test_the_command_labels_with_the_embedded_model(tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "run"
    command = [sys.executable, str(ROOT / "scripts/label_steps.py"), "--problems", "2", "--k", "1", "--out", str(out)]
    done = subprocess.run([*command, "--no-progress"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "trajectories" in done.stdout and "policy calls" in done.stdout
    records = load_step_data(out)
    meta = json.loads((out / "meta.json").read_text())
    assert len(records) + len(meta["unlabelled"]) == 2 and records
    assert all(r["tokens"] > 0 and r["source"] == "mc" and r["k"] == 1 for r in records)
    assert meta["config"]["policy"] == "tiny" and meta["compute"]["tokens"] == sum(r["tokens"] for r in records)
    bad = subprocess.run([*command[:2], "--k", "0"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "k must be an int >= 1" in bad.stderr
