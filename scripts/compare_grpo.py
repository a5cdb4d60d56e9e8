"""Outcome versus process advantages: GRPO from the embedded model, several seeds, the same number of samples;
then every model evaluated the same way. The README's GRPO table and curves come from this script.

    python scripts/compare_grpo.py                         # both advantages x seeds 0 and 1 (about an hour on 2 cores)
    python scripts/compare_grpo.py --seeds 0 --total-steps 5 --eval-limit 10 --out /tmp/quick   # a smoke run

``--task arithmetic`` trains on Arithmetic-v0 instead (its step check, "is the step true", as the step reward).

Writes to ``--out``: one GRPO run folder per (advantage, seed) (TensorBoard logs, checkpoint, model; a killed
comparison resumes where it stopped), ``results.json`` and ``results.md`` (the table), and ``curves.png`` (training
reward and accuracy against samples). Evaluation, for the starting model and every trained one:

- greedy top-1 on the Game24 test split (the 100 ToT puzzles, never trained on) and on the first Arithmetic test
  problems (held out by the environment's split);
- one planner (``--planner`` at ``--budget`` samples per problem) on the Game24 test split, through the bench.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from agents.bench import BenchConfig, run_bench
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/grpo_compare", help="the comparison's folder (%(default)s)")
    parser.add_argument("--model", default="tiny", help="the starting model (%(default)s)")
    parser.add_argument("--task", choices=TASKS, default="game24", help="the task trained on (%(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds per advantage (%(default)s)")
    parser.add_argument("--advantages", nargs="+", choices=ADVANTAGES, default=list(ADVANTAGES))
    parser.add_argument("--total-steps", type=int, default=40, help="GRPO steps per run (%(default)s)")
    parser.add_argument("--batch-size", type=int, default=64, help="episodes per step (%(default)s)")
    parser.add_argument("--group-size", type=int, default=8, help="G (%(default)s)")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="(%(default)s)")
    parser.add_argument(
        "--step-reward", type=float, default=0.2, help="reward weight of the task's step check (Game24: the step "
        "keeps the puzzle solvable; Arithmetic: the step is true), in both modes: outcome advantages see it in the "
        "return, process advantages step by step (%(default)s)",
    )  # fmt: skip
    parser.add_argument("--planner", default="beam", help="the planner evaluated (%(default)s)")
    parser.add_argument("--budget", type=int, default=16, help="its samples per problem (%(default)s)")
    parser.add_argument("--eval-limit", type=int, default=100, help="test problems per evaluation (%(default)s)")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def train(args: argparse.Namespace, advantage: str, seed: int) -> Path:
    """One GRPO run (resumed if its folder holds a checkpoint); returns the trained model's folder."""
    run_dir = Path(args.out) / f"{advantage}-seed{seed}"
    env_id, step_component = TASKS[args.task]
    config = GRPOConfig(
        env_id=env_id,
        env_kwargs=json.dumps({"reward_weights": {step_component: args.step_reward}}),
        model=args.model,
        run_dir=str(run_dir),
        advantage=advantage,  # type: ignore[arg-type]
        seed=seed,
        total_steps=args.total_steps,
        batch_size=args.batch_size,
        group_size=args.group_size,
        learning_rate=args.learning_rate,
        eval_problems=0,  # evaluated below, the same way for every model
        progress=not args.no_progress,
    )
    if not (run_dir / "model" / "training.json").exists():
        GRPOTrainer(config).train()
    return run_dir / "model"


def evaluate(args: argparse.Namespace, model: str | Path, name: str) -> dict[str, Any]:
    """Greedy Game24 and Arithmetic test accuracy, and the planner's Game24 test accuracy."""
    policy = HFPolicy.from_pretrained(model_path(str(model)), max_new_tokens=48, num_threads=1)
    limit = args.eval_limit
    game24 = play_greedy(policy, lambda: Game24Env(split="test"), [{"index": i} for i in range(min(limit, 100))])
    arithmetic = play_greedy(policy, lambda: ArithmeticEnv(split="test"), [{"index": i} for i in range(limit)])
    rows = run_bench(
        BenchConfig(
            policy=f"hf:{model_path(str(model))}",
            planners=[args.planner],
            budgets=[args.budget],
            limit=min(limit, 100),
            out=Path(args.out) / "bench" / name,
            progress=False,
        )
    )
    return {
        "model": name,
        "game24_greedy": float(np.mean([e["is_correct"] for e in game24])),
        "arithmetic_greedy": float(np.mean([e["is_correct"] for e in arithmetic])),
        f"game24_{args.planner}@{args.budget}": float(rows[0]["accuracy"]),
    }


def training_curves(run_dir: Path) -> dict[str, list[float]]:
    """Samples seen, mean reward and accuracy per step, from a run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    values = {tag: [e.value for e in events.Scalars(tag)] for tag in ("charts/samples_seen", "rewards/mean")}
    values["accuracy"] = [e.value for e in events.Scalars("rewards/accuracy")]
    return {"samples": values["charts/samples_seen"], "reward": values["rewards/mean"], "accuracy": values["accuracy"]}


def plot(curves: dict[str, dict[int, dict[str, list[float]]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = {"outcome": "tab:blue", "process": "tab:orange"}
    for advantage, runs in curves.items():
        for seed, curve in runs.items():
            for axis, key in zip(axes, ("reward", "accuracy"), strict=True):
                label = f"{advantage} (seed {seed})"
                axis.plot(
                    curve["samples"],
                    _smooth(curve[key]),
                    color=colours[advantage],
                    alpha=0.5 + 0.5 * (seed == 0),
                    label=label,
                )
    for axis, name in zip(axes, ("mean episode reward (train batches)", "solved (train batches)"), strict=True):
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
        cells = [f"{v:.0%}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models = {f"{a}-seed{s}": train(args, a, s) for a in args.advantages for s in args.seeds}
    results = [evaluate(args, args.model, "start")]
    results += [evaluate(args, path, name) for name, path in models.items()]
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(markdown_table(results))
    curves = {a: {s: training_curves(out / f"{a}-seed{s}") for s in args.seeds} for a in args.advantages}
    plot(curves, out / "curves.png", TASKS[args.task][0])
    print(markdown_table(results))
    print(f"wrote {out / 'results.md'} and {out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
