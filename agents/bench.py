"""The benchmark job: planners x budgets x problems, resumable, with a progress bar, a table, files and a plot.

``run_bench`` plays every (planner, budget, problem) episode of a :class:`BenchConfig` and writes, in ``out``:

- ``episodes.jsonl``: one line per episode, appended as each one ends (the chosen answer, its verdict, pass@k, the
  trajectory, the budget spent, planner details, wall time). A rerun with the same ``out`` skips the episodes
  already there, so a killed run resumes where it stopped; a half-written last line is dropped first (with a
  :class:`ResumeWarning`), and any other line that is not an episode record stops the run with its file and line.
- ``run.json``: the settings that make episodes comparable (env, split, policy, PRM, seed, depth hint). A rerun
  with other settings is refused (``overwrite=True`` starts afresh). Planners, budgets and limit may change: the
  run is extended. A corrupt ``run.json`` stops the run with an error naming it; the episodes are kept.

``run.json``, ``summary.json`` and the plot are written atomically (:func:`reason_gym.files.write_atomic`), so a kill
leaves the previous version of each, never an empty or half-written one.
- ``summary.json``: one row per (planner, budget) over the requested problems (see :func:`summarize`).
- ``accuracy_vs_budget.png``: top-1 accuracy against the budget and against the tokens actually generated.

Budgets are limits on generated samples (candidate steps, see :mod:`agents.budget`), the same for every planner. How
each planner spends a budget ``B`` (``L`` is ``depth_hint``, the expected steps of a solution, answer included:
4 for the Game24):

=========  ==========================================================================================
greedy     one temperature-0 trajectory; ignores the rest of the budget
bon        as many sampled solutions as fit in ``B`` (majority vote, or PRM-weighted vote with a PRM)
beam       ``B // L`` samples per round: ``expansions = min(4, B // L)``, ``width = (B // L) // expansions``
mcts       simulations until ``B`` is spent; ``expansions`` 2 below ``B = 32``, else 4
tot        ``proposals`` 2 below ``B = 32``, else 4; ``breadth = max(1, B // (proposals * L))``
=========  ==========================================================================================

Every episode is seeded from (seed, planner, budget, problem index) alone, through the policy's ``seed(int)`` when
it has one and torch's global generator when torch is loaded, so an episode's result does not depend on which ran
before it: a resumed run gives the summary of an uninterrupted one.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from tqdm import tqdm

import reason_gym  # noqa: F401  (registers the environments)
from agents.bench_run import (
    COUNTER_COLUMNS,
    ResumeWarning,
    episode_seed,
    open_run,
)
from agents.budget import Budget
from agents.planners import MCTS, BeamSearch, BestOfN, Greedy, Planner, TreeOfThoughts
from agents.policies import make_policy
from agents.policies.base import Policy, policy_inputs
from reason_gym.core import ProcessRewardModel
from reason_gym.files import write_atomic

PLANNERS = ("greedy", "bon", "beam", "mcts", "tot")
DEFAULT_BUDGETS = (4, 16, 64)
DEFAULT_LIMIT = 10
"""The settings in ``run.json`` (see :meth:`BenchConfig.identity`)."""


@dataclass
class BenchConfig:
    """Planners x budgets x problems, resumable: rerun the same command to finish a killed run.

    Every field is a flag of ``reason-gym bench`` (``--depth-hint 4``); lists take commas or spaces
    (``--budgets 4,16`` or ``--budgets 4 16``).
    """

    env: str = "reason_gym/Game24-v0"
    """a registered environment id"""
    split: str = "test"
    """the split whose first `limit` problems are played"""
    planners: tuple[str, ...] = PLANNERS
    """planners, from greedy, bon, beam, mcts, tot"""
    budgets: tuple[int, ...] = DEFAULT_BUDGETS
    """samples per problem (see agents/budget.py)"""
    limit: int | None = DEFAULT_LIMIT
    """the first N problems of the split (None: all of them)"""
    indices: tuple[int, ...] = ()
    """play these problems of the split (their indices in split order) instead of the first `limit`, e.g. the
    validation problems a step-data folder's meta.json holds out of the train split"""
    policy: str = "tiny"
    """tiny, hf:PATH, vllm:PATH, openai:URL[#MODEL], or random[:LATENCY_S] (random legal Game-of-24 steps, no
    model): a spec of agents.policies.make_policy"""
    prm: str | None = None
    """rule (exact rule-based step scores) or hf:PATH; None: planners use votes, log-probs and rollouts"""
    seed: int = 0
    """seeds every episode (with the planner, budget and problem index)"""
    out: str | Path = "runs/bench"
    """the run's folder"""
    depth_hint: int = 4
    """expected steps of a solution, answer included, for sizing beam and ToT (Game24: 4)"""
    overwrite: bool = False
    """discard the run in `out` and start afresh (else a run there with the same settings is resumed)"""
    progress: bool = True
    """show a progress bar (on stderr)"""
    env_url: str | None = None
    """play `env` as `reason-gym serve` serves it at this address (http://HOST:PORT), through
    reason_gym/Remote-v0; None: in-process"""
    ray: bool = False
    """play the episodes in Ray actors: on the cluster at $RAY_ADDRESS when set, else on a local one (needs
    `pip install -e .[ray]`; see agents/integrations/ray_bench.py)"""
    ray_workers: int | None = None
    """with --ray, the actors, each with its own env and policy (None: one per CPU of the cluster)"""

    def __post_init__(self) -> None:
        self.planners, self.budgets = tuple(self.planners), tuple(self.budgets)
        unknown = [name for name in self.planners if name not in PLANNERS]
        if unknown or not self.planners:
            raise ValueError(f"unknown planner(s) {unknown}; choose from {', '.join(PLANNERS)}")
        if not self.budgets or any(not isinstance(b, int) or b < 1 for b in self.budgets):
            raise ValueError(f"budgets must be positive ints (samples per problem), got {list(self.budgets)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        self.indices = tuple(self.indices)
        if any(not isinstance(i, int) or i < 0 for i in self.indices) or len(set(self.indices)) < len(self.indices):
            raise ValueError(f"indices must be distinct ints >= 0, got {list(self.indices)}")
        if self.depth_hint < 1:
            raise ValueError(f"depth_hint must be >= 1, got {self.depth_hint}")
        if self.ray_workers is not None and self.ray_workers < 1:
            raise ValueError(f"ray_workers must be >= 1, got {self.ray_workers}")
        if self.env not in gym.registry:
            raise ValueError(f"unknown environment {self.env!r}; `reason-gym list` shows them")

    def identity(self) -> dict[str, Any]:
        """The settings an episode's result depends on (besides planner, budget and problem)."""
        return {
            "env": self.env,
            "split": self.split,
            "policy": self.policy,
            "prm": self.prm,
            "seed": self.seed,
            "depth_hint": self.depth_hint,
        }


# ---------------------------------------------------------------------- what runs


def make_planner(name: str, budget: int, depth_hint: int = 4) -> Planner:
    """The planner ``name`` sized for a budget of ``budget`` samples (the table in the module docstring)."""
    per_round = max(1, budget // depth_hint)
    small = budget < 32
    if name == "greedy":
        return Greedy()
    if name == "bon":
        return BestOfN()
    if name == "beam":
        expansions = min(4, per_round)
        return BeamSearch(width=max(1, per_round // expansions), expansions=expansions)
    if name == "mcts":
        return MCTS(expansions=2 if small else 4)
    if name == "tot":
        proposals = 2 if small else 4
        return TreeOfThoughts(breadth=max(1, budget // (proposals * depth_hint)), proposals=proposals)
    raise ValueError(f"unknown planner {name!r}; choose from {', '.join(PLANNERS)}")


def make_bench_prm(spec: str | None) -> ProcessRewardModel | None:
    """The PRM named by ``spec`` (see :func:`agents.prm.make_prm`), or ``None``."""
    if not spec:
        return None
    try:
        from agents.prm import make_prm
    except ImportError as error:
        raise ValueError(f"--prm needs agents.prm, which is not available here ({error})") from None
    return make_prm(spec)


def seed_policy(policy: Policy, seed: int) -> None:
    """Seeds the policy's sampling: its ``seed(int)`` method where it has one, and torch's global generator."""
    seeder = getattr(policy, "seed", None)
    if callable(seeder):
        seeder(seed)
    torch = sys.modules.get("torch")  # only if some backend loaded it: the bench never imports torch itself
    if torch is not None:
        torch.manual_seed(seed)


def problem_indices(env: gym.Env, split: str, limit: int | None, chosen: Sequence[int] = ()) -> list[int]:
    """The indices of the problems to play: ``chosen`` when given (checked against the split's size), else the
    first ``limit`` of the split."""
    indices = env.unwrapped.split_indices(split)  # None: a procedural task (see ReasoningEnv.split_indices)
    if chosen:
        if indices is not None and max(chosen) >= len(indices):
            raise ValueError(f"index {max(chosen)} is past the {len(indices)} problems of split {split!r}")
        return list(chosen)
    if indices is None:
        if limit is None:
            raise ValueError(f"{env.unwrapped.__class__.__name__} has no fixed problem list: pass a limit")
        return list(range(limit))
    count = len(indices)
    return list(range(count if limit is None else min(limit, count)))


# ---------------------------------------------------------------------- the run


def run_bench(config: BenchConfig) -> list[dict[str, Any]]:
    """Plays every missing episode of ``config``, then writes the summary and the plot; returns the summary rows."""
    env = make_bench_env(config)
    try:
        return _run_bench(config, env)
    finally:
        env.close()  # a served env's session ends with the run


def _run_bench(config: BenchConfig, env: gym.Env) -> list[dict[str, Any]]:
    indices = problem_indices(env, config.split, config.limit, config.indices)
    folder = Path(config.out)
    episodes = open_run(
        folder, config, lambda i: env.reset(options={"index": i, "split": config.split})[1]["problem_id"]
    )
    todo = [
        (planner, budget, index)
        for planner in config.planners
        for budget in config.budgets
        for index in indices
        if (planner, budget, index) not in episodes
    ]
    total = len(config.planners) * len(config.budgets) * len(indices)
    with (
        _ray_episodes(config, todo) if config.ray else _local_episodes(env, config, todo) as played,
        (folder / "episodes.jsonl").open("a") as file,
        tqdm(
            total=total, initial=total - len(todo), disable=not config.progress, unit="episode", mininterval=0.5
        ) as bar,
    ):
        for record in played:
            file.write(json.dumps(record) + "\n")
            file.flush()  # a line per episode, whole: a kill loses at most the episodes being played
            episodes[(record["planner"], record["budget"], record["index"])] = record
            bar.set_postfix_str(f"{record['planner']} @ {record['budget']}", refresh=False)
            bar.update()
    rows = summarize(episodes.values(), config.planners, config.budgets, indices)
    write_atomic(folder / "summary.json", json.dumps(rows, indent=2) + "\n")
    plot(rows, folder / "accuracy_vs_budget.png", title=f"{config.env} {config.split}, policy {config.policy}")
    return rows


@contextmanager
def _local_episodes(
    env: gym.Env, config: BenchConfig, todo: Sequence[tuple[str, int, int]]
) -> Iterator[Iterator[dict[str, Any]]]:
    """Loads the policy and PRM (and probes the policy, to fail before any episode); yields the records of
    ``todo``, played one after the other in this process."""
    policy = _make_policy(config.policy)  # after the cheap checks: loading a model takes a while
    prm = make_bench_prm(config.prm)
    if todo:  # fail fast, before the progress bar, if the policy cannot answer (a server that is down)
        probe(env, policy, config.split, todo[0][2])
    yield (play_episode(env, policy, prm, config, *episode) for episode in todo)


def _ray_episodes(config: BenchConfig, todo: Sequence[tuple[str, int, int]]) -> Any:
    """:func:`agents.integrations.ray_bench.ray_episodes`, or a ValueError saying how to install Ray."""
    try:
        import ray  # noqa: F401  (ray_bench imports it where it is used)

        from agents.integrations.ray_bench import ray_episodes
    except ImportError as error:
        raise ValueError(f"--ray needs Ray ({error}); install it with `pip install -e .[ray]`") from None
    return ray_episodes(config, todo)


def make_bench_env(config: BenchConfig) -> gym.Env:
    """``config.env`` in-process, or the served env at ``config.env_url`` (which must serve ``config.env``)."""
    if config.env_url is None:
        return gym.make(config.env, split=config.split)
    env = gym.make("reason_gym/Remote-v0", base_url=config.env_url, split=config.split)
    served = env.unwrapped.env_id
    if served != config.env:
        env.close()
        raise ValueError(f"{config.env_url} serves {served}, not {config.env}: pass --env {served}")
    return env


def _make_policy(spec: str) -> Policy:
    """:func:`agents.policies.make_policy`, with the embedded ``tiny`` model on one torch thread (for a model this
    small a second thread mostly waits on the first; on a busy 2-core machine one thread was 15x faster)."""
    try:
        return make_policy(spec, num_threads=1) if spec == "tiny" else make_policy(spec)
    except ImportError as error:
        raise ValueError(
            f"the LLM policies are not available ({error}); install them with `pip install -e .[llm]`, "
            "or use --policy random"
        ) from None


def probe(env: gym.Env, policy: Policy, split: str, index: int) -> None:
    """One greedy proposal for a problem's question: raises what the policy raises when it cannot answer."""
    env.reset(options={"index": index, "split": split})
    policy.propose(policy_inputs(policy, [env.unwrapped.get_state()]), 1, temperature=0.0)


def play_episode(
    env: gym.Env,
    policy: Policy,
    prm: ProcessRewardModel | None,
    config: BenchConfig,
    planner: str,
    budget: int,
    index: int,
) -> dict[str, Any]:
    """One planner on one problem within one budget; returns the episode's record."""
    seed = episode_seed(config.seed, planner, budget, index)
    _, info = env.reset(seed=seed, options={"index": index, "split": config.split})
    seed_policy(policy, seed)
    started = time.perf_counter()
    result = make_planner(planner, budget, config.depth_hint).solve(env.unwrapped, policy, Budget(samples=budget), prm)
    return {
        "planner": planner,
        "budget": budget,
        "index": index,
        "problem_id": info["problem_id"],
        "seed": seed,
        "answer": result.answer,
        "is_correct": result.is_correct,
        "pass_at_k": result.pass_at_k,
        "k": result.k,
        "used": result.used,
        "trajectory": result.trajectory,
        "details": result.details,
        "wall_s": round(time.perf_counter() - started, 4),
    }


# ---------------------------------------------------------------------- reports


def summarize(
    episodes: Iterable[dict[str, Any]], planners: Sequence[str], budgets: Sequence[int], indices: Sequence[int]
) -> list[dict[str, Any]]:
    """One row per (planner, budget) over the episodes of ``indices``.

    Row fields: ``planner``, ``budget`` (the sample limit), ``n_problems``, ``accuracy`` (top-1: the chosen answer
    is right), ``pass_at_k`` (some finished trajectory of the search is right; a search with none counts as a miss)
    and ``k`` (finished trajectories per problem, mean), the mean per problem of each budget counter
    (``policy_calls``, ``samples``, ``tokens``, ``prm_calls``, ``env_steps``), ``wall_s`` (the episodes' total),
    ``value`` (what scored or selected: majority, prm_vote, logprob, prm, rollout) and ``uses_verifier`` (whether
    that consulted the env's outcome reward, see :mod:`agents.planners.base`).
    """
    wanted = set(indices)
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {(p, b): [] for p in planners for b in budgets}
    for record in episodes:
        key = (record["planner"], record["budget"])
        if key in groups and record["index"] in wanted:
            groups[key].append(record)
    rows = []
    for (planner, budget), records in groups.items():
        n = len(records)
        if not n:
            continue
        value = _value_used(records[0]["details"])
        row: dict[str, Any] = {
            "planner": planner,
            "budget": budget,
            "n_problems": n,
            "accuracy": sum(r["is_correct"] for r in records) / n,
            "pass_at_k": sum(bool(r["pass_at_k"]) for r in records) / n,
            "k": round(sum(r["k"] for r in records) / n, 2),
        }
        for counter in COUNTER_COLUMNS:
            row[counter] = round(sum(r["used"][counter] for r in records) / n, 2)
        row["wall_s"] = round(sum(r["wall_s"] for r in records), 3)
        row["value"] = value
        row["uses_verifier"] = value == "rollout"
        rows.append(row)
    return rows


def _value_used(details: dict[str, Any]) -> str:
    return details.get("value") or details.get("score") or details.get("selection") or "greedy"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of summary rows (counters are means per problem)."""
    header = (
        f"{'planner':<8} {'budget':>6} {'accuracy':>9} {'pass@k':>7} {'samples':>8} {'tokens':>9} {'calls':>7} "
        f"{'prm':>6} {'steps':>7} {'wall s':>8}  value"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['planner']:<8} {row['budget']:>6} {row['accuracy']:>9.1%} {row['pass_at_k']:>7.1%} "
            f"{row['samples']:>8.1f} {row['tokens']:>9.1f} {row['policy_calls']:>7.1f} {row['prm_calls']:>6.1f} "
            f"{row['env_steps']:>7.1f} {row['wall_s']:>8.2f}  {row['value']}" + (" (verifier)" * row["uses_verifier"])
        )
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], path: Path, title: str = "") -> None:
    """Accuracy (solid) and pass@k (dashed) against the sample budget, and accuracy against tokens generated."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    figure, (by_budget, by_tokens) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for number, planner in enumerate(dict.fromkeys(row["planner"] for row in rows)):
        mine = sorted((row for row in rows if row["planner"] == planner), key=lambda row: row["budget"])
        color = f"C{number}"
        budgets = [row["budget"] for row in mine]
        by_budget.plot(budgets, [row["accuracy"] for row in mine], "o-", color=color, label=planner)
        by_budget.plot(budgets, [row["pass_at_k"] for row in mine], "--", color=color, alpha=0.5)
        tokens = [max(row["tokens"], 1.0) for row in mine]  # a log axis has no 0 (scripted policies count none)
        by_tokens.plot(tokens, [row["accuracy"] for row in mine], "o-", color=color, label=planner)
    by_budget.set(xscale="log", xlabel="budget (samples per problem)", ylabel="accuracy (dashed: pass@k)")
    budgets = sorted({row["budget"] for row in rows})
    by_budget.set_xticks(budgets, [str(b) for b in budgets])
    by_budget.minorticks_off()
    by_tokens.set(xscale="log", xlabel="tokens generated per problem (mean)")
    for axes in (by_budget, by_tokens):
        axes.grid(True, which="both", alpha=0.3)
        axes.set_ylim(-0.02, 1.02)
    by_tokens.legend(loc="best")
    figure.suptitle(title)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=110)
    plt.close(figure)
    write_atomic(path, image.getvalue())


__all__ = [
    "DEFAULT_BUDGETS",
    "DEFAULT_LIMIT",
    "PLANNERS",
    "BenchConfig",
    "ResumeWarning",
    "format_table",
    "make_planner",
    "run_bench",
    "summarize",
]
