"""Step data for process reward models, from the environments: Monte-Carlo labels, exact labels and STaR.

For each problem of a split, the policy plays a trajectory in the env (``reset(options={"index": i, "split": s})``,
then one sampled step per ``env.step``), and every step of it is labelled three ways:

- **Monte-Carlo** (Math-Shepherd): ``k`` completions, rollouts to the end with the same policy, from the state
  after the step (``get_state`` / ``set_state``). ``mc_soft`` is the share of them the env judges correct,
  ``mc_hard`` whether any is. The final answer line has no future: it is labelled by the trajectory's outcome (as is
  a step after which the step limit ended the episode: 0). Only the ``k`` fresh completions count, not the
  trajectory's own continuation.
- **Exact**, where the task declares an exact step check (``TaskSpec.exact_step_check``: Game24 ``step_solvable``,
  Arithmetic ``step_check``): the task's rule-based scorer (:meth:`agents.prm.EnvStepScorer.for_task`) replays the
  steps; ``null`` for other tasks. Use them to evaluate learned PRMs, and to train only as a labelled upper bound.
- With ``mode="star"`` (STaR, §4.1 of the o1 tutorial) ``attempts`` solutions are sampled per problem and the first
  one the env verifies (``info["is_correct"]``) is kept and labelled.

A problem whose trajectory has no step to label (star mode: no verified solution; or every action was rejected until
the step limit) gets no record: it is listed in ``meta.json`` under ``unlabelled``, with the reason and its cost, and
counts as done when a run resumes.

With ``rationalize`` (star mode), a problem none of the attempts solves gets STaR's rationalization: solutions
sampled with the reference answer hinted in the question (the env's reset option ``hint=True``, on tasks whose env
has a :meth:`~reason_gym.core.ReasoningEnv.reference_answer`), whose steps are kept only if the policy, from them in
the unhinted episode, reaches a verified answer (``source: "rationalized"``).

**Validation problems** are held out of the split by a fixed rule on the problem's id, not its position:
:data:`VAL_RULE`. ``part="train"`` (the default) labels the other problems, ``part="val"`` the held-out ones (for
choosing PRMs and models without the test split); ``meta.json`` records the rule and the held-out indices.

**Compute** is counted with the planners' :class:`~agents.budget.Budget`: ``meta.json``'s ``compute`` has the real
``propose`` calls (batched across the problems of a batch), samples, tokens and env steps, and
``compute_completions`` the part of it spent on the Monte-Carlo completions (the rest made the trajectories: what
a PRM that uses no Monte-Carlo label, value iteration or exact labels, needs of this data); a record's
``policy_calls`` and ``tokens`` are its problem's share: the calls its states took part in (what labelling that
problem alone, its own states batched together, would cost) and the tokens of its samples, attempts included.

**Batched and resumable**: the trajectories (and then all completions) of ``batch_problems`` problems share each
``propose`` call; the batch's records are appended to ``steps.jsonl`` when it is done. A rerun with the same ``out``
skips the problems already there (a torn last line is dropped with a warning), so a killed run loses at most one
batch; ``problems`` may grow between runs. Settings that change the labels may not (``--overwrite`` starts afresh).
Each batch seeds the policy from ``seed`` and its first problem, so results do not depend on what ran before.

The format of the folder and its reader, :func:`load_step_data`, are in :mod:`agents.training.prm_records`.

    python scripts/label_steps.py --problems 50 --k 4 --out runs/prm_data/game24
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
from tqdm import tqdm

import reason_gym  # noqa: F401  (registers the environments)
from agents.bench import _make_policy, seed_policy
from agents.budget import Budget
from agents.cli import parse, run_script
from agents.policies.base import Candidate, Policy, policy_inputs
from agents.prm import EnvStepScorer
from agents.provenance import code_commit
from agents.training.prm_records import (
    META_FILE,
    STEPS_FILE,
    VAL_RULE,
    is_validation,
    load_step_data,
    read_meta,
    read_records,
    select_problems,
)
from reason_gym.core import EpisodeState, ReasoningEnv
from reason_gym.files import write_atomic

__all__ = ["VAL_RULE", "LabelConfig", "is_validation", "label_steps", "load_step_data", "main", "select_problems"]

MODES = ("mc", "star")
PARTS = ("train", "val", "all")
FORMAT = "reason_gym/prm-steps/v1"
_RUN_ONLY = ("problems", "batch_problems", "ray_workers", "out", "overwrite", "progress")
"""Settings a resumed run may change (the others change the labels: see :meth:`LabelConfig.identity`)."""


@dataclass
class LabelConfig:
    """Step labels for PRMs from policy trajectories in an environment (rerun the same command to resume)."""

    env: str = "reason_gym/Game24-v0"
    """a registered environment id"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """the environment's keyword arguments (JSON or KEY=VALUE pairs), e.g. num_operations=2"""
    split: str = "train"
    """the split whose problems are labelled"""
    part: str = "train"
    """train: the split's problems not held out for validation; val: the held-out ones; all: both"""
    val_fraction: float = 0.1
    """the share of problems held out for validation (see VAL_RULE in agents/training/prm_records.py)"""
    problems: int = 50
    """how many problems to label: the first N of the part, in split order"""
    mode: str = "mc"
    """mc: one trajectory per problem, kept whatever its outcome; star: keep the first of `attempts` solutions
    the env verifies"""
    attempts: int = 4
    """star mode: solutions sampled per problem"""
    rationalize: bool = False
    """star mode: for a problem none of the attempts solves, sample `attempts` more with the reference answer
    hinted in the question (the env's reset option hint=True), and keep a hinted solution's steps only if the policy,
    from those steps in the unhinted episode, reaches a verified answer in one of `attempts` tries (STaR's
    rationalization); needs a task with reference answers (Arithmetic, GSM8K, MATH; not the Game of 24)"""
    k: int = 4
    """completions (rollouts to the end with the policy) from the state after each step"""
    policy: str = "tiny"
    """tiny, hf:PATH, vllm:PATH, openai:URL[#MODEL] or random: a spec of agents.policies.make_policy"""
    temperature: float = 1.0
    """sampling temperature of trajectories and completions"""
    batch_problems: int = 8
    """problems labelled together: their trajectories and completions share propose calls"""
    ray_workers: int = 0
    """label the batches on this many Ray actors (RAY_ADDRESS, else a local cluster), each with its own env and
    policy built from --policy; 0: in this process. The records are the same either way"""
    seed: int = 0
    """seeds each batch (with its first problem's index)"""
    out: str = "runs/prm_data"
    """the output folder: meta.json and steps.jsonl"""
    overwrite: bool = False
    """discard the step data in `out` and start afresh (else it is resumed)"""
    progress: bool = True
    """show a progress bar (on stderr)"""

    def __post_init__(self) -> None:
        if self.env not in gym.registry:
            raise ValueError(f"unknown environment {self.env!r}; `reason-gym list` shows them")
        if "split" in self.env_kwargs:
            raise ValueError("pass the split with --split, not in --env-kwargs")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.part not in PARTS:
            raise ValueError(f"part must be one of {', '.join(PARTS)}, got {self.part!r}")
        if not 0.0 <= self.val_fraction < 1.0 or (self.part == "val" and self.val_fraction == 0.0):
            raise ValueError(f"val_fraction must be in [0, 1) (and > 0 for --part val), got {self.val_fraction}")
        for name in ("k", "problems", "attempts", "batch_problems"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if type(self.ray_workers) is not int or self.ray_workers < 0:
            raise ValueError(f"ray_workers must be an int >= 0, got {self.ray_workers!r}")
        if self.rationalize and self.mode != "star":
            raise ValueError("--rationalize is a STaR option: pass --mode star with it")

    def identity(self) -> dict[str, Any]:
        """The settings the labels depend on: a resumed run must have the same."""
        return {name: value for name, value in asdict(self).items() if name not in _RUN_ONLY}


@dataclass
class Played:
    """One rollout: the states after each accepted step, and the env's verdict."""

    path: list[EpisodeState]
    correct: bool


class Labeller:
    """Plays and labels batches of problems with one policy in one env, charging ``budget`` (the real calls) and
    ``costs[index]`` (each problem's share)."""

    def __init__(self, env: ReasoningEnv, policy: Policy, config: LabelConfig) -> None:
        self.env, self.policy, self.config = env, policy, config
        self.budget = Budget()
        self.completions_used: dict[str, int] = {}
        """the part of ``budget`` the last :meth:`label` spent on Monte-Carlo completions (``Budget.used()``)"""
        self.costs: dict[int, Budget] = {}
        spec = env.task
        self.scorer = EnvStepScorer.for_task(spec) if spec.exact_step_check and spec.env_id else None

    def propose(self, states: Sequence[EpisodeState], owners: Sequence[int]) -> list[Candidate]:
        """One sampled step for each state, in one ``propose`` call."""
        proposals = self.policy.propose(policy_inputs(self.policy, states), 1, temperature=self.config.temperature)
        if len(proposals) != len(states) or any(not candidates for candidates in proposals):
            raise ValueError(f"{type(self.policy).__name__} did not return a candidate for every state")
        chosen = [candidates[0] for candidates in proposals]
        self.budget.charge_samples(len(chosen), sum(c.num_tokens for c in chosen))
        shares: dict[int, list[int]] = {}
        for owner, candidate in zip(owners, chosen, strict=True):
            shares.setdefault(owner, []).append(candidate.num_tokens)
        for owner, tokens in shares.items():
            self.costs[owner].charge_samples(len(tokens), sum(tokens))
        return chosen

    def play(self, starts: Sequence[EpisodeState], owners: Sequence[int]) -> list[Played]:
        """Rolls every start out to the end of its episode, all running ones advancing in one call per turn."""
        current = list(starts)
        played = [Played([], False) for _ in starts]
        running = [i for i, state in enumerate(starts) if not state.done]
        while running:
            candidates = self.propose([current[i] for i in running], [owners[i] for i in running])
            still_running = []
            for i, candidate in zip(running, candidates, strict=True):
                self.env.set_state(current[i])
                _, _, terminated, truncated, info = self.env.step(candidate.text)
                self.budget.charge_env_steps()
                state = self.env.get_state()
                if len(state.steps) > len(current[i].steps):  # accepted (a rejected step changes nothing)
                    played[i].path.append(state)
                current[i] = state
                if terminated:
                    played[i].correct = bool(info.get("is_correct", False))
                elif not truncated:
                    still_running.append(i)
            running = still_running
        return played

    def label(self, problems: Sequence[tuple[int, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The records of a batch of problems, and the problems left without one (``unlabelled``)."""
        config, roots = self.config, []
        for index, problem_id in problems:
            _, info = self.env.reset(options={"index": index, "split": config.split})
            if info["problem_id"] != problem_id:
                raise ValueError(f"problem {index} of {config.split} is {info['problem_id']}, not {problem_id}")
            roots.append(self.env.get_state())
            self.costs[index] = Budget()
        attempts = config.attempts if config.mode == "star" else 1
        tries = self.play(
            [root for root in roots for _ in range(attempts)], [i for i, _ in problems for _ in range(attempts)]
        )
        kept: list[tuple[int, Played]] = []  # (position in problems, trajectory)
        unlabelled = []
        chosen = [
            mine[0] if config.mode == "mc" else next((t for t in mine if t.correct), None)
            for mine in (tries[p * attempts : (p + 1) * attempts] for p in range(len(problems)))
        ]
        unsolved = [p for p, keep in enumerate(chosen) if keep is None]
        rationalized = self.rationalize(problems, roots, unsolved) if config.rationalize and unsolved else {}
        for p, (index, problem_id) in enumerate(problems):
            keep = chosen[p] or rationalized.get(p)
            if keep is not None and keep.path:
                kept.append((p, keep))
            else:
                reason = "no verified solution" if keep is None else "no accepted step"
                unlabelled.append(
                    {"index": index, "problem_id": problem_id, "reason": reason, **_cost(self.costs[index])}
                )

        # k completions from every state after a step that is not the end of its episode, all in one set of calls
        jobs = [
            (row, t) for row, (_, trajectory) in enumerate(kept) for t, s in enumerate(trajectory.path) if not s.done
        ]
        before = self.budget.used()
        completions = self.play(
            [kept[row][1].path[t] for row, t in jobs for _ in range(config.k)],
            [problems[kept[row][0]][0] for row, _ in jobs for _ in range(config.k)],
        )
        self.completions_used = {name: used - before[name] for name, used in self.budget.used().items()}
        wins = {
            job: sum(c.correct for c in completions[j * config.k : (j + 1) * config.k]) for j, job in enumerate(jobs)
        }

        records = []
        for row, (p, trajectory) in enumerate(kept):
            index, problem_id = problems[p]
            counts = [wins.get((row, t), config.k * trajectory.correct) for t in range(len(trajectory.path))]
            final = trajectory.path[-1]
            exact = None if self.scorer is None else [int(s) for s in self.scorer.score_state(final)]
            records.append(
                {
                    "env_id": config.env,
                    "split": config.split,
                    "index": index,
                    "problem_id": problem_id,
                    "question": roots[p].observation,
                    "steps": list(final.steps),
                    "outcome": int(trajectory.correct),
                    "labels": {
                        "mc_soft": [c / config.k for c in counts],
                        "mc_hard": [int(c > 0) for c in counts],
                        "exact": exact,
                    },
                    "k": config.k,
                    **_cost(self.costs[index]),
                    "source": "rationalized" if p in rationalized else config.mode,
                }
            )
        return records, unlabelled

    def rationalize(
        self, problems: Sequence[tuple[int, str]], roots: Sequence[EpisodeState], unsolved: Sequence[int]
    ) -> dict[int, Played]:
        """STaR's rationalization for the ``unsolved`` problems (positions in ``problems``): ``attempts`` hinted
        solutions each; a verified one's steps (its answer line left out) are replayed in the unhinted episode, and
        kept, with the policy's own ending, if one of ``attempts`` unhinted completions from there is verified."""
        config, attempts = self.config, self.config.attempts
        hinted = []
        for p in unsolved:
            self.env.reset(options={"index": problems[p][0], "split": config.split, "hint": True})
            hinted.append(self.env.get_state())
        owners = [problems[p][0] for p in unsolved for _ in range(attempts)]
        tries = self.play([state for state in hinted for _ in range(attempts)], owners)
        rationales: dict[int, list[EpisodeState]] = {}  # unhinted states after each hinted step
        for u, p in enumerate(unsolved):
            solved = next((t for t in tries[u * attempts : (u + 1) * attempts] if t.correct), None)
            if solved is not None and (path := self.replay(roots[p], solved.path[-1].steps[:-1])) is not None:
                rationales[p] = path
        if not rationales:
            return {}
        starts = [(path[-1] if path else roots[p]) for p, path in rationales.items()]
        ends = self.play(
            [start for start in starts for _ in range(attempts)],
            [problems[p][0] for p in rationales for _ in range(attempts)],
        )
        kept = {}
        for r, (p, path) in enumerate(rationales.items()):
            ending = next((e for e in ends[r * attempts : (r + 1) * attempts] if e.correct), None)
            if ending is not None:
                kept[p] = Played([*path, *ending.path], True)
        return kept

    def replay(self, root: EpisodeState, steps: Sequence[str]) -> list[EpisodeState] | None:
        """The states after each of ``steps`` played from ``root``, or None if the env rejects one or the episode
        ends before the last."""
        self.env.set_state(root)
        path = []
        for step in steps:
            if self.env.get_state().done:
                return None
            self.env.step(step)
            self.budget.charge_env_steps()
            state = self.env.get_state()
            if len(state.steps) == len(root.steps) + len(path):  # rejected: nothing changed
                return None
            path.append(state)
        return path


Labelled = tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, int]]]
"""A batch's records, its problems left unlabelled, and the compute it took (``Budget.used()``): ``total`` and the
part of it spent on ``completions``."""


def label_batch(labeller: Labeller, batch: Sequence[tuple[int, str]]) -> Labelled:
    """Labels one batch, the policy seeded from the batch alone (so where and after what it runs changes nothing)."""
    config = labeller.config
    seed_policy(labeller.policy, zlib.crc32(f"{config.seed}/{config.mode}/{batch[0][0]}".encode()))
    labeller.budget = Budget()
    records, unlabelled = labeller.label(batch)
    return records, unlabelled, {"total": labeller.budget.used(), "completions": labeller.completions_used}


class LabelWorker:
    """A Ray actor: its own env and policy, built from the run's settings; labels one batch per call."""

    def __init__(self, config: LabelConfig) -> None:

        env = gym.make(config.env, split=config.split, **config.env_kwargs).unwrapped
        self.labeller = Labeller(env, _make_policy(config.policy), config)  # type: ignore[arg-type]

    def play(self, batch: tuple[tuple[int, str], ...]) -> Labelled:
        return label_batch(self.labeller, batch)


@contextmanager
def labelled_batches(
    config: LabelConfig, env: ReasoningEnv, policy: Policy | None, batches: Sequence[tuple[tuple[int, str], ...]]
) -> Iterator[Iterator[Labelled]]:
    """The labelled batches, in this process in order, or on ``config.ray_workers`` Ray actors as they finish (an
    actor that dies costs only its batch, labelled again by another: see
    :class:`~agents.integrations.ray_bench.RetryingPool`)."""
    if not batches:
        yield iter(())
    elif not config.ray_workers:
        labeller = Labeller(env, policy if policy is not None else _make_policy(config.policy), config)
        yield (label_batch(labeller, batch) for batch in batches)
    else:
        import ray

        from agents.integrations.ray_bench import CPUS_PER_WORKER, RetryingPool, ray_cluster

        with ray_cluster():
            actor_class = ray.remote(num_cpus=CPUS_PER_WORKER)(LabelWorker)
            pool = RetryingPool(lambda: actor_class.remote(config), noun="batch")
            try:
                for _ in range(min(config.ray_workers, len(batches))):
                    pool.start()
                yield pool.play(batches)
            finally:
                pool.kill()


def _cost(budget: Budget) -> dict[str, int]:
    used = budget.used()
    return {"policy_calls": used["policy_calls"], "tokens": used["tokens"]}


def label_steps(config: LabelConfig, policy: Policy | None = None) -> dict[str, Any]:
    """Labels every problem of ``config`` not yet in ``config.out``; returns the ``meta.json`` written.

    Args:
        config: What to label and where.
        policy: The policy to use (default: the one ``config.policy`` names, loaded only if there is work).

    Raises:
        ValueError: ``out`` holds step data of other settings, or a corrupt ``meta.json`` or record (the message
            names the file, and the line); a split with too few problems.
    """
    started = time.perf_counter()
    folder = Path(config.out)
    folder.mkdir(parents=True, exist_ok=True)
    steps_path, meta_path = folder / STEPS_FILE, folder / META_FILE
    if config.overwrite:
        steps_path.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)
    meta: dict[str, Any] = {}
    if meta_path.exists():
        meta = read_meta(meta_path)
        changed = {k: (meta["config"].get(k), v) for k, v in config.identity().items() if meta["config"].get(k) != v}
        if changed:
            what = ", ".join(f"{k} {old!r} there, {new!r} now" for k, (old, new) in changed.items())
            raise ValueError(f"{folder} holds step data of other settings ({what}): pass another --out, or --overwrite")
    elif steps_path.exists() and steps_path.stat().st_size:
        raise ValueError(f"{steps_path} has no {META_FILE} beside it: its settings are unknown; pass --overwrite")
    records = read_records(steps_path, truncate=True)

    env: ReasoningEnv = gym.make(config.env, split=config.split, **config.env_kwargs).unwrapped  # type: ignore[assignment]
    problems, held_out = select_problems(env, config.split, config.part, config.val_fraction, config.problems)
    if config.rationalize and problems:  # a task without reference answers says so now, before any work
        env.reset(options={"index": problems[0][0], "split": config.split, "hint": True})
    ids = dict(problems)
    for record in records:
        if record["index"] in ids and record["problem_id"] != ids[record["index"]]:
            raise ValueError(
                f"{steps_path}: problem {record['index']} is {ids[record['index']]} here, not "
                f"{record['problem_id']}: the data is of another task setting; pass --overwrite"
            )
    unlabelled: list[dict[str, Any]] = list(meta.get("unlabelled", []))
    done = {r["index"] for r in records} | {u["index"] for u in unlabelled}
    todo = [problem for problem in problems if problem[0] not in done]
    previous = meta.get("compute", {})
    # a folder labelled before completions were counted apart cannot be split: it gets no compute_completions
    previous_completions = meta.get("compute_completions", None if previous.get("samples") else {})
    meta = {
        "format": FORMAT,
        "config": asdict(config),
        "env_id": config.env,
        "split": config.split,
        "commit": code_commit(),
        "validation": {"rule": VAL_RULE, "val_fraction": config.val_fraction, "held_out_indices": held_out},
        "unlabelled": unlabelled,
    }
    if config.ray_workers and policy is not None:
        raise ValueError("--ray-workers builds the policy in each worker from --policy: pass no policy object")
    batches = [tuple(todo[i : i + config.batch_problems]) for i in range(0, len(todo), config.batch_problems)]
    used: dict[str, dict[str, int]] = {"total": {}, "completions": {}}

    def save() -> None:
        compute = {name: previous.get(name, 0) + used["total"].get(name, 0) for name in Budget().used()}
        compute["wall_s"] = round(previous.get("wall_s", 0.0) + time.perf_counter() - started, 3)
        meta["compute"] = compute
        if previous_completions is not None:
            meta["compute_completions"] = {
                name: previous_completions.get(name, 0) + used["completions"].get(name, 0) for name in Budget().used()
            }
        meta["per_trajectory_totals"] = {
            name: sum(r[name] for r in records) + sum(u[name] for u in unlabelled)
            for name in ("policy_calls", "tokens")
        }
        meta["counts"] = {
            "trajectories": len(records),
            "correct": sum(r["outcome"] for r in records),
            "steps": sum(len(r["steps"]) for r in records),
            "unlabelled": len(unlabelled),
            "by_source": {s: sum(r["source"] == s for r in records) for s in sorted({r["source"] for r in records})},
        }
        write_atomic(meta_path, json.dumps(meta, indent=1) + "\n")

    save()
    with (
        steps_path.open("a") as file,
        labelled_batches(config, env, policy, batches) as results,
        tqdm(
            total=len(problems), initial=len(problems) - len(todo), disable=not config.progress, unit="problem"
        ) as bar,
    ):
        for new, failed, cost in results:  # in the order batches finish (any order on Ray workers)
            file.write("".join(json.dumps(record) + "\n" for record in new))
            file.flush()  # whole lines per batch: a kill loses at most the batches being labelled
            records += new
            unlabelled += failed
            for part, counters in cost.items():
                for name, value in counters.items():
                    used[part][name] = used[part].get(name, 0) + value
            save()
            bar.update(len(new) + len(failed))
    return meta


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parses the flags (``--help`` lists them), labels, and prints what was done."""
    config = parse(LabelConfig, argv, "label_steps.py", description=__doc__.split("\n\n")[0])
    meta = label_steps(config)
    counts, compute = meta["counts"], meta["compute"]
    print(
        f"{counts['trajectories']} trajectories ({counts['correct']} correct, {counts['steps']} steps, "
        f"{counts['unlabelled']} problems unlabelled) in {config.out}/{STEPS_FILE}; compute: "
        f"{compute['policy_calls']} policy calls, {compute['samples']} samples, {compute['tokens']} tokens, "
        f"{compute['wall_s']} s"
        + (
            f" ({completions['samples']} samples and {completions['tokens']} tokens of it in Monte-Carlo completions)"
            if (completions := meta.get("compute_completions"))
            else ""
        )
    )
    return meta


if __name__ == "__main__":
    raise SystemExit(run_script(main, "label_steps.py"))
