"""Outcome versus process advantages: GRPO from the embedded model, several seeds, the same number of samples;
then every model evaluated the same way. The README's GRPO table and curves come from this script.

    python scripts/compare_grpo.py                         # both advantages x seeds 0 and 1 (about an hour on 2 cores)
    python scripts/compare_grpo.py --seeds 0 --total-steps 5 --eval-limit 10 --out /tmp/quick   # a smoke run

``--task arithmetic`` trains on Arithmetic-v0 instead (its step check, "is the step true", as the step reward).
``--jobs 2`` trains (and evaluates) two runs at a time, one process and one core each. Every GRPO flag of
``scripts/train_grpo.py`` applies to every run (``--learning-rate``, ``--no-dynamic-sampling``, ...), the total steps
defaulting to 40 and torch to one thread per run; ``--help`` lists them all.

Writes to ``--out``: one GRPO run folder per (advantage, seed) (TensorBoard logs, checkpoint, model; a killed
comparison resumes where it stopped), ``evals/`` (one file per evaluated model, reused by later calls),
``results.json`` and ``results.md`` (the table), and ``curves.png`` (training reward and accuracy against samples,
and the held-out greedy accuracy along the run with ``--eval-every``). Evaluation, for the starting model and every
trained one:

- greedy top-1 on the Game24 test split (the 100 ToT puzzles, never trained on) and on the first
  ``--arithmetic-eval-limit`` Arithmetic test problems (held out by the environment's split);
- one planner (``--planner`` at ``--budget`` samples per problem) on the Game24 test split, through the bench.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tyro.conf import OmitArgPrefixes

from agents.bench import BenchConfig, run_bench
from agents.cli import parse, run_script
from agents.evaluation import play_greedy
from agents.policies import model_path
from agents.policies.hf import HFPolicy
from agents.training.grpo import GRPOConfig, GRPOTrainer
from reason_gym.envs.arithmetic import ArithmeticEnv
from reason_gym.envs.game24 import Game24Env

ADVANTAGES = ("outcome", "process")
TASKS = {  # the env trained on, and its step-level reward component
    "game24": ("reason_gym/Game24-v0", "step_solvable"),
    "arithmetic": ("reason_gym/Arithmetic-v0", "step_check"),
}


@dataclass
class CompareConfig:
    """Outcome versus process advantages: GRPO runs from one starting model, evaluated alike (see the module
    docstring). The GRPO settings are every run's, except those set per run: the env (--task, and its reward
    weights from --step-reward, --outcome-step-reward, --invalid-step-reward and --max-steps), the advantage
    (--advantages), the seed (--seeds) and the run's folder (--out)."""

    out: str = "runs/grpo_compare"
    """the comparison's folder"""
    task: Literal["game24", "arithmetic"] = "game24"
    """the task trained on"""
    seeds: tuple[int, ...] = (0, 1)
    """seeds per advantage"""
    advantages: tuple[Literal["outcome", "process"], ...] = ADVANTAGES
    """the advantages compared"""
    step_reward: float = 0.2
    """reward weight of the task's step check (Game24: the step keeps the puzzle solvable; Arithmetic: the step is
    true): process advantages see it step by step, outcome advantages in the return unless --outcome-step-reward
    says otherwise"""
    outcome_step_reward: float | None = None
    """the step check's weight in the outcome runs (0: the answer's reward only); None: --step-reward"""
    invalid_step_reward: float | None = None
    """weight of the invalid_step component (a rejected step); 0 stops a run from learning to avoid penalties
    instead of solving; None: the env's (-0.1)"""
    max_steps: int | None = None
    """the training env's step limit; Game24 at 4 (three steps and the answer) leaves no room for a rejected step,
    as greedy evaluation does; None: the env's"""
    planner: str = "beam"
    """the planner evaluated"""
    budget: int = 16
    """its samples per problem"""
    eval_limit: int = 100
    """test problems per final evaluation"""
    arithmetic_eval_limit: int | None = None
    """Arithmetic test problems in the final greedy evaluation (None: --eval-limit; its standard error at 30% is 4.6
    points for 100, 1.4 for 1,000)"""
    jobs: int = 1
    """runs trained and evaluated at once (one process and one core each)"""
    grpo: OmitArgPrefixes[GRPOConfig] = field(default_factory=lambda: GRPOConfig(total_steps=40, num_threads=1))
    """every run's GRPO settings (--eval-every and --eval-problems: greedy evaluations on the trained task along
    the run, plotted in curves.png; --model: the starting model)"""

    def __post_init__(self) -> None:
        problems = []
        if self.jobs < 1:
            problems.append(f"--jobs must be at least 1, got {self.jobs}")
        if not self.seeds or not self.advantages:
            problems.append("--seeds and --advantages need at least one value each")
        default = GRPOConfig()
        for name, instead in PER_RUN.items():
            if getattr(self.grpo, name) != getattr(default, name):
                problems.append(f"--{name.replace('_', '-')} is set per run here: pass {instead} instead")
        if problems:
            raise ValueError("; ".join(problems))
        if self.arithmetic_eval_limit is None:
            self.arithmetic_eval_limit = self.eval_limit
        if self.jobs > 1:
            self.grpo.progress = False  # bars from several processes would overwrite each other


PER_RUN = {
    "env_id": "--task",
    "env_kwargs": "--step-reward, --outcome-step-reward, --invalid-step-reward or --max-steps",
    "advantage": "--advantages",
    "seed": "--seeds",
    "run_dir": "--out",
    "output_dir": "--out",
}
"""The GRPO settings the comparison sets for each run, and the flags that say what they are."""


def train(config: CompareConfig, advantage: str, seed: int) -> Path:
    """One GRPO run (resumed if its folder holds a checkpoint); returns the trained model's folder."""
    run_dir = Path(config.out) / f"{advantage}-seed{seed}"
    env_id, step_component = TASKS[config.task]
    step_reward = config.step_reward
    if advantage == "outcome" and config.outcome_step_reward is not None:
        step_reward = config.outcome_step_reward
    reward_weights = {step_component: step_reward}
    if config.invalid_step_reward is not None:
        reward_weights["invalid_step"] = config.invalid_step_reward
    env_kwargs: dict[str, Any] = {"reward_weights": reward_weights}
    if config.max_steps is not None:
        env_kwargs["max_steps"] = config.max_steps
    grpo = config.grpo
    run = replace(
        grpo,
        env_id=env_id,
        env_kwargs=env_kwargs,
        run_dir=str(run_dir),
        advantage=advantage,
        seed=seed,
        # the final evaluation below is the same for every model; these are the curves along the run
        eval_problems=grpo.eval_problems if grpo.eval_every else 0,
    )
    if not (run_dir / "model" / "training.json").exists():
        GRPOTrainer(run).train()
    return run_dir / "model"


def evaluate(args: CompareConfig, model: str | Path, name: str) -> dict[str, Any]:
    """Greedy Game24 and Arithmetic test accuracy, and the planner's Game24 test accuracy (cached in ``evals/``)."""
    settings = {"model": str(model), "weights": _weights_stamp(model_path(str(model)))}
    settings |= {"limits": [args.eval_limit, args.arithmetic_eval_limit]}
    settings |= {"planner": args.planner, "budget": args.budget}
    cache = Path(args.out) / "evals" / f"{name}.json"
    if cache.exists() and json.loads(cache.read_text())["settings"] == settings:
        return json.loads(cache.read_text())["result"]
    policy = HFPolicy.from_pretrained(model_path(str(model)), max_new_tokens=48, num_threads=1)
    game24_problems = [{"index": i} for i in range(min(args.eval_limit, 100))]
    game24 = play_greedy(policy, lambda: Game24Env(split="test"), game24_problems)
    arithmetic_problems = [{"index": i} for i in range(args.arithmetic_eval_limit)]
    arithmetic = play_greedy(policy, lambda: ArithmeticEnv(split="test"), arithmetic_problems)
    rows = run_bench(
        BenchConfig(
            policy=f"hf:{model_path(str(model))}",
            planners=[args.planner],
            budgets=[args.budget],
            limit=min(args.eval_limit, 100),
            out=Path(args.out) / "bench" / name,
            progress=False,
        )
    )
    result = {
        "model": name,
        "game24_greedy": float(np.mean([e["is_correct"] for e in game24])),
        "arithmetic_greedy": float(np.mean([e["is_correct"] for e in arithmetic])),
        f"game24_{args.planner}@{args.budget}": float(rows[0]["accuracy"]),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"settings": settings, "result": result}, indent=1) + "\n")
    return result


def _weights_stamp(model: str | Path) -> list[list[Any]]:
    """Size and modification time of a local model's files, so a cached evaluation of replaced weights is not reused
    (empty for a hub id)."""
    folder = Path(model)
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]


def train_and_evaluate(args: CompareConfig, advantage: str, seed: int) -> dict[str, Any]:
    name = f"{advantage}-seed{seed}"
    return evaluate(args, train(args, advantage, seed), name)


def training_curves(run_dir: Path) -> dict[str, list[float]]:
    """Samples seen, mean reward and accuracy per step, and the held-out evaluations, from TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    samples = {e.step: e.value for e in events.Scalars("charts/samples_seen")}
    evals = events.Scalars("eval/accuracy") if "eval/accuracy" in events.Tags()["scalars"] else []
    return {
        "samples": list(samples.values()),
        "reward": [e.value for e in events.Scalars("rewards/mean")],
        "accuracy": [e.value for e in events.Scalars("rewards/accuracy")],
        # evaluations are logged at step 0 (before training) too: no samples seen yet
        "eval_samples": [samples.get(e.step, 0.0) for e in evals],
        "eval_accuracy": [e.value for e in evals],
    }


def plot(curves: dict[str, dict[int, dict[str, list[float]]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("reward", "mean episode reward (train batches)", True), ("accuracy", "solved (train batches)", True)]
    if any(curve["eval_accuracy"] for runs in curves.values() for curve in runs.values()):
        panels.append(("eval_accuracy", "greedy top-1 (held-out test problems)", False))
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4))
    colours = {"outcome": "tab:blue", "process": "tab:orange"}
    for advantage, runs in curves.items():
        for index, (seed, curve) in enumerate(runs.items()):
            for axis, (key, _, smooth) in zip(axes, panels, strict=True):
                x = curve["eval_samples"] if key == "eval_accuracy" else curve["samples"]
                axis.plot(
                    x,
                    _smooth(curve[key]) if smooth else curve[key],
                    color=colours[advantage],
                    alpha=1.0 / (1 + 0.5 * index),
                    marker=None if smooth else "o",
                    label=f"{advantage} (seed {seed})",
                )
    for axis, (_, name, _) in zip(axes, panels, strict=True):
        axis.set_xlabel("episodes sampled")
        axis.set_title(name)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"GRPO on {title} (train split): outcome vs process advantages")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def _smooth(values: list[float], window: int = 5) -> list[float]:
    """A trailing moving average (the batches are small, so single steps are noisy)."""
    return [float(np.mean(values[max(0, i - window + 1) : i + 1])) for i in range(len(values))]


def markdown_table(results: list[dict[str, Any]]) -> str:
    columns = list(results[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in results:
        cells = [f"{v:.1%}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse(CompareConfig, argv, "compare_grpo.py", description=__doc__.split("\n\n")[0])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [(a, s) for a in args.advantages for s in args.seeds]
    if args.jobs == 1:
        results = [evaluate(args, args.grpo.model, "start")] + [train_and_evaluate(args, a, s) for a, s in runs]
    else:
        # spawn: each run starts a fresh interpreter with its own torch threads, not a fork of this one's
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(train_and_evaluate, args, a, s) for a, s in runs]
            futures.insert(0, pool.submit(evaluate, args, args.grpo.model, "start"))
            results = [f.result() for f in futures]
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(markdown_table(results))
    curves = {a: {s: training_curves(out / f"{a}-seed{s}") for s in args.seeds} for a in args.advantages}
    plot(curves, out / "curves.png", TASKS[args.task][0])
    print(markdown_table(results))
    print(f"wrote {out / 'results.md'} and {out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, "compare_grpo.py"))
