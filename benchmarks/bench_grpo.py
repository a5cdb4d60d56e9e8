"""GRPO training throughput on CPU: our trainer and TRL's ``GRPOTrainer`` side by side, in one run.

Run it from the repository root (``REASON_GYM_DATA_DIR`` names the folder that holds ``game24/24.csv``)::

    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_grpo.py                  # 20 steps each
    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_grpo.py --out grpo.json --plot grpo.png
    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_grpo.py --quick          # a few seconds

TRL is an optional benchmark dependency (``pip install trl==1.16.0``, with ``datasets``). Without it the script
says so, benchmarks our trainer alone and exits 0 (the TRL row and the ratios are then missing).

The workload, identical for both trainers:

- the model: the embedded tiny character-level Llama (``--model``), float32, torch on ONE thread
  (``torch.set_num_threads(1)`` before either trainer is built; the output shows the thread count in force);
- the task: single-turn Game of 24 on the train split (``--env-id``). A prompt is a puzzle's reset observation
  formatted as our policy formats it (``RawPrompt``: the state and a newline; the tokenizer adds ``<s>``). A
  completion is one step, generated until the first newline (or ``--max-new-tokens``); its reward is what the env
  with ``--env-kwargs`` gives that one step. For Game24 the default turns ``step_solvable`` on (weight 1, the
  other weights the env's defaults): 1 for a valid step that leaves the puzzle solvable, 0 for a valid step that
  does not, -0.1 for an invalid one (1 for a correct final answer written at once). (Game24 refuses
  ``max_steps < 4``, so "single-turn" is ours ``max_turns=1``, not the env's step limit.) Ours plays the step
  through a vector env; TRL's reward function replays each completion (cut at its first newline) as the one step
  of a ``gymnasium.make`` env reset to the prompt's puzzle (``options={"index": i, "split": "train"}``), so both
  see the same rewards. TRL's dataset is every train puzzle; ours draws them uniformly with replacement;
- GRPO settings: G = ``--group-size`` completions per prompt, ``--batch-size`` completions per training step
  (TRL: the generation batch), temperature 1 (top-p 1, no top-k), ``--loss-type`` for both (``dapo``, TRL's
  default), the same clip range, beta 0 (no reference model), group-normalised advantages (sample std, eps
  1e-4), one optimisation pass per batch (ours ``passes_per_batch=1``, TRL ``num_iterations=1``), micro-batches
  of ``--micro-batch-size`` completions with gradient accumulation over the step, AdamW at ``--learning-rate``
  (constant, no weight decay), gradient clipping at 1, no dynamic sampling, no evaluation, no checkpoints or
  logging (TRL: ``save_strategy="no"``, ``logging_strategy="no"``, ``report_to="none"``, ``use_cpu=True``,
  bf16/fp16 off, gradient checkpointing off, as ours has none).

Measured per training step (one rollout batch and its update): wall time (and this process's CPU time), the
generated completion tokens (stop token included) and the mean reward of its completions, and the time spent in
generation (ours: ``policy.propose``; TRL: ``_generate_single_turn``). The two trainers are interleaved: TRL runs
its ``train()`` loop, and a callback at the end of every ``--block`` TRL steps runs the same number of our steps
and restarts TRL's clock, so machine noise hits both alike. samples/s = completions per step / median step time;
tokens/s = the median of each step's tokens / time. The reward curve of each is the mean reward per step against
completions seen; the table compares its first and last quarter. The first ``--warmup`` steps of each are left
out of the timing medians (one-time costs), never out of the reward curve.

The issue's target: ours >= 2x TRL's samples/s with a reward curve at least as good. Read the figures with care:

- samples/s depends on completion lengths, which drift apart once the two policies do (a high learning rate);
  tokens/s is the length-robust figure, and the ``tok/step`` column shows the drift;
- with 2 prompts per step the reward curves are noisy (per-step means of the shipped tiny model on Game24 range
  from about -0.1 to 0.5), and the two trainers draw different prompts: compare curves over several ``--seed`` s
  and more ``--steps``. ``--env-id reason_gym/Arithmetic-v0`` (its default ``--env-kwargs`` turns ``step_check``
  on) is another task whose curves move;
- on a busy machine wall time runs ahead of CPU time (other processes hold the cores); the ``cpu s`` column
  is this process's CPU time per step.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import torch

import reason_gym  # noqa: F401  (registers the environments)

ENV_ID = "reason_gym/Game24-v0"
DEFAULT_ENV_KWARGS: dict[str, dict[str, Any]] = {
    "reason_gym/Game24-v0": {"reward_weights": {"step_solvable": 1.0}},
    "reason_gym/Arithmetic-v0": {"reward_weights": {"step_check": 1.0}},
}
TARGET_RATIO = 2.0
"""The issue's goal: our samples/s at least this many times TRL's."""


# --------------------------------------------------------------------------------------------- shared workload


def model_path(name: str) -> str:
    if name == "tiny":
        from agents.models import TINY_MODEL_DIR

        return str(TINY_MODEL_DIR)
    return name


def train_prompts(env_id: str, env_kwargs: dict[str, Any], problems: int) -> tuple[list[str], list[int]]:
    """The reset observation of every train-split problem (in file order) and its index; for a procedural task
    (``split_indices`` is None), of its first ``problems`` train problems."""
    env = gym.make(env_id, **env_kwargs)
    rows = env.unwrapped.split_indices("train")  # None: a procedural task
    indices = range(len(rows) if rows is not None else problems)
    return [env.reset(options={"index": i, "split": "train"})[0] for i in indices], list(indices)


class StepReward:
    """TRL's reward function: each completion (cut at its first newline) replayed as one env step of its puzzle.

    Also records what the benchmark reports: the mean reward and the completion tokens of each call (one call per
    training step).
    """

    __name__ = "env_step_reward"  # TRL names reward functions by __name__

    def __init__(self, env_id: str, env_kwargs: dict[str, Any]) -> None:
        self.env = gym.make(env_id, **env_kwargs)
        self.mean_rewards: list[float] = []
        self.tokens: list[int] = []

    def __call__(self, completions: Sequence[str], prompts: Sequence[str] | None = None, **kwargs: Any) -> list[float]:
        rewards = []
        for completion, index in zip(completions, kwargs["index"], strict=True):
            self.env.reset(options={"index": int(index), "split": "train"})
            rewards.append(float(self.env.step(completion.split("\n", 1)[0])[1]))
        self.mean_rewards.append(sum(rewards) / len(rewards))
        self.tokens.append(sum(len(ids) for ids in kwargs["completion_ids"]))
        return rewards


class Timed:
    """Wraps a callable and adds up the wall time spent in it (TRL's generation, which has no hook of its own)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function, self.seconds = function, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


# ------------------------------------------------------------------------------------------------ our trainer


class Ours:
    """Our :class:`~agents.training.grpo.GRPOTrainer`, driven one :meth:`~agents.training.grpo.GRPOTrainer.step` at
    a time (``train()`` without its TensorBoard logging and checkpoints). The step's own timings say how long it
    sampled (``time/rollout_s``), of which in ``policy.propose`` (``time/generate_s``), and updated."""

    def __init__(self, config: BenchConfig, run_dir: str) -> None:
        from agents.training.grpo import GRPOTrainer

        self.config = config.ours(run_dir)
        self.trainer = GRPOTrainer(self.config)
        self.steps: list[dict[str, float]] = []

    def step(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        metrics = self.trainer.step()
        self.steps.append(
            {
                "seconds": time.perf_counter() - wall,
                "cpu_seconds": time.process_time() - cpu,
                "generate_seconds": metrics["time/generate_s"],
                "rollout_seconds": metrics["time/rollout_s"],
                "update_seconds": metrics["time/update_s"],
                "torch_threads": torch.get_num_threads(),
                "samples": metrics["charts/episodes_sampled"],
                "tokens": metrics["charts/tokens_sampled"],
                "reward": metrics["rewards/mean"],
            }
        )


# ---------------------------------------------------------------------------------------------------- TRL's


def import_trl() -> str | None:
    """None when TRL (and ``datasets``) import, else why not."""
    try:
        import datasets  # noqa: F401
        import trl  # noqa: F401
    except ImportError as error:
        return str(error)
    return None


def make_trl(args: BenchConfig, output_dir: str, between_blocks: Callable[[], None]) -> tuple[Any, Any]:
    """TRL's GRPOTrainer on the same workload, and the callback that times its steps (and runs ours between)."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer as TRLTrainer

    from agents.policies.hf import load_model_and_tokenizer, stop_token_ids
    from agents.policies.prompts import RawPrompt

    env_kwargs = args.env_kwargs
    model, tokenizer = load_model_and_tokenizer(model_path(args.model), dtype=torch.float32)
    # TRL stops generation on model.generation_config.eos_token_id (plus the tokenizer's EOS) and masks the
    # completion after the first of them: the newline, as our policy stops.
    model.generation_config.eos_token_id = stop_token_ids(tokenizer, "\n")
    states, indices = train_prompts(args.env_id, env_kwargs, args.problems)
    dataset = Dataset.from_dict({"prompt": [RawPrompt()(s) for s in states], "index": indices})
    reward = StepReward(args.env_id, env_kwargs)
    config = TRLConfig(
        output_dir=output_dir,
        use_cpu=True,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        seed=args.seed,
        max_steps=args.steps,
        per_device_train_batch_size=args.micro_batch_size,
        gradient_accumulation_steps=args.batch_size // args.micro_batch_size,
        num_generations=args.group_size,
        max_completion_length=args.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        beta=0.0,
        num_iterations=1,
        loss_type=args.loss_type,
        epsilon=args.epsilon,
        epsilon_high=args.epsilon_high,
        scale_rewards="group",
        learning_rate=args.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    trainer = TRLTrainer(
        model=model, reward_funcs=reward, args=config, train_dataset=dataset, processing_class=tokenizer
    )
    generate = Timed(trainer._generate_single_turn)
    trainer._generate_single_turn = generate

    class Clock(TrainerCallback):
        """TRL's step times: from the end of the previous step (or our block after it) to the end of this one."""

        def __init__(self) -> None:
            self.started: float | None = None
            self.cpu = 0.0
            self.steps: list[dict[str, float]] = []

        def on_step_begin(self, *_: Any, **__: Any) -> None:
            if self.started is None:  # the first step: its clock starts here
                self.started, self.cpu = time.perf_counter(), time.process_time()

        def on_step_end(self, _args: Any, state: Any, *_: Any, **__: Any) -> None:
            self.steps.append(
                {
                    "seconds": time.perf_counter() - self.started,
                    "cpu_seconds": time.process_time() - self.cpu,
                    "generate_seconds": generate.take(),
                    "torch_threads": torch.get_num_threads(),
                    "samples": args.batch_size,
                    "tokens": reward.tokens[-1],
                    "reward": reward.mean_rewards[-1],
                }
            )
            if state.global_step % args.block == 0 or state.global_step == args.steps:
                between_blocks()
            self.started, self.cpu = time.perf_counter(), time.process_time()

    clock = Clock()
    trainer.add_callback(clock)
    trainer.remove_callback(PrinterCallback)  # its end-of-training dict of TRL's own figures
    return trainer, clock


# ------------------------------------------------------------------------------------------------- reporting


def summarise(steps: list[dict[str, float]], warmup: int) -> dict[str, Any]:
    """Medians over the timed steps (after the warm-up), and the reward curve over all of them."""
    timed = steps[warmup:] or steps
    step_s = statistics.median(s["seconds"] for s in timed)
    curve = [s["reward"] for s in steps]
    quarter = max(1, len(curve) // 4)
    summary = {
        "steps": len(steps),
        "timed_steps": len(timed),
        "median_step_s": step_s,
        "median_cpu_step_s": statistics.median(s["cpu_seconds"] for s in timed),
        "median_generate_s": statistics.median(s["generate_seconds"] for s in timed),
        "samples_per_s": statistics.median(s["samples"] for s in timed) / step_s,
        "tokens_per_s": statistics.median(s["tokens"] / s["seconds"] for s in timed),
        "tokens_per_step": statistics.mean(s["tokens"] for s in steps),
        "reward_first_quarter": statistics.mean(curve[:quarter]),
        "reward_last_quarter": statistics.mean(curve[-quarter:]),
        "reward_mean": statistics.mean(curve),
        "reward_curve": curve,
        "samples_seen": [sum(s["samples"] for s in steps[: i + 1]) for i in range(len(steps))],
    }
    if "update_seconds" in steps[0]:
        summary["median_rollout_s"] = statistics.median(s["rollout_seconds"] for s in timed)
        summary["median_update_s"] = statistics.median(s["update_seconds"] for s in timed)
    return summary


def print_report(results: dict[str, Any], args: BenchConfig) -> None:
    meta = results["meta"]
    threads = "/".join(map(str, meta["torch_threads"]))
    who, interleaved = ("both", f", interleaved in blocks of {args.block}") if "trl" in results else ("ours", "")
    print(
        f"\nGRPO on single-turn {args.env_id} {json.dumps(args.env_kwargs)} (train split), model {args.model!r} "
        f"({meta['parameters']:,} parameters), torch threads {threads} (checked at every step of {who}); "
        f"G={args.group_size}, {args.batch_size} completions/step, micro-batch {args.micro_batch_size}, "
        f"<= {args.max_new_tokens} new tokens, lr {args.learning_rate}, loss {args.loss_type}, {args.steps} steps "
        f"each{interleaved}; medians over steps {args.warmup + 1}-{args.steps}"
    )
    header = (
        f"{'trainer':<8} {'step s':>8} {'cpu s':>7} {'gen s':>7} {'samples/s':>10} {'tokens/s':>9} "
        f"{'tok/step':>9} {'reward 1st q':>12} {'last q':>7}"
    )
    print(header + "\n" + "-" * len(header))
    for name in ("ours", "trl"):
        row = results.get(name)
        if row is None:
            continue
        print(
            f"{name:<8} {row['median_step_s']:>8.3f} {row['median_cpu_step_s']:>7.3f} {row['median_generate_s']:>7.3f} "
            f"{row['samples_per_s']:>10.1f} {row['tokens_per_s']:>9.0f} {row['tokens_per_step']:>9.1f} "
            f"{row['reward_first_quarter']:>12.3f} {row['reward_last_quarter']:>7.3f}"
        )
    ours = results["ours"]
    print(f"ours: rollout {ours['median_rollout_s']:.3f} s (generation {ours['median_generate_s']:.3f} s), update "
          f"{ours['median_update_s']:.3f} s per step (medians)")  # fmt: skip
    if "ratio" in results:
        ratio = results["ratio"]
        met = "met" if ratio["samples_per_s"] >= TARGET_RATIO and ratio["reward_last_quarter_diff"] >= 0 else "not met"
        print(
            f"ratio ours/TRL: samples/s {ratio['samples_per_s']:.2f}x, tokens/s {ratio['tokens_per_s']:.2f}x, "
            f"step time {ratio['step_time']:.2f}x faster (CPU time {ratio['cpu_step_time']:.2f}x), generation "
            f"{ratio['generation']:.2f}x faster; "
            f"last-quarter reward ours - TRL {ratio['reward_last_quarter_diff']:+.3f} "
            f"(target >= {TARGET_RATIO:.0f}x with a reward curve at least as good: {met})"
        )
    for name in ("ours", "trl"):
        if name in results:
            print(f"reward curve {name:<4}: " + " ".join(f"{r:.2f}" for r in results[name]["reward_curve"]))


def plot(results: dict[str, Any], path: str, env_id: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"--plot: matplotlib is not installed, {path} not written")
        return
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, label, color in (("ours", "ours", "tab:blue"), ("trl", "TRL GRPOTrainer", "tab:orange")):
        if name in results:
            seen, curve = results[name]["samples_seen"], results[name]["reward_curve"]
            window = max(1, len(curve) // 10)  # one step's mean is noisy: the trend is the rolling mean
            rolling = [statistics.mean(curve[max(0, i + 1 - window) : i + 1]) for i in range(len(curve))]
            axes.plot(seen, curve, color=color, alpha=0.25, linewidth=0.8)
            axes.plot(seen, rolling, color=color, linewidth=2, label=f"{label} (mean of the last {window} steps)")
    axes.set_xlabel("completions sampled")
    axes.set_ylabel("mean reward per step")
    axes.set_title(f"GRPO on single-turn {env_id}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"wrote {path}")


# ------------------------------------------------------------------------------------------------------- main


@dataclass
class BenchConfig:
    """GRPO training throughput on CPU: our trainer and TRL's GRPOTrainer on the same workload (see the module
    docstring); the settings below are both trainers'."""

    steps: int | None = None
    """training steps of each trainer (None: 20; --quick: 3)"""
    group_size: int | None = None
    """G: completions per prompt (None: 8; --quick: 2)"""
    batch_size: int | None = None
    """completions per training step (None: 16; --quick: 4)"""
    micro_batch_size: int | None = None
    """completions per forward/backward (None: the batch size)"""
    max_new_tokens: int = 32
    """the longest completion"""
    learning_rate: float = 1e-4
    """AdamW, constant"""
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"
    """the aggregation of token losses"""
    epsilon: float = 0.2
    """lower clip"""
    epsilon_high: float = 0.28
    """upper clip"""
    env_id: str = ENV_ID
    """a single-turn task: any registered id"""
    env_kwargs: dict[str, Any] | None = None
    """for gymnasium.make, as a JSON object or KEY=VALUE pairs (None: the step reward on, see above; '{}' for
    others)"""
    problems: int = 2048
    """TRL's dataset size for a procedural task"""
    model: str = "tiny"
    """tiny (the embedded model), a folder or a hub id"""
    block: int = 1
    """steps of one trainer before the other's turn"""
    warmup: int = 1
    """first steps of each left out of the medians"""
    seed: int = 0
    """seeds both trainers"""
    trainers: Literal["both", "ours"] = "both"
    """ours: skip TRL"""
    quick: bool = False
    """a tiny budget: other defaults for steps, group size and batch size"""
    out: str | None = None
    """write every figure and both reward curves to this JSON file"""
    plot: str | None = None
    """write a PNG of the two reward curves (needs matplotlib)"""

    def __post_init__(self) -> None:
        defaults = {"steps": (20, 3), "group_size": (8, 2), "batch_size": (16, 4)}
        for name, (full, quick) in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, quick if self.quick else full)
        self.micro_batch_size = self.micro_batch_size or self.batch_size
        if self.env_kwargs is None:
            self.env_kwargs = DEFAULT_ENV_KWARGS.get(self.env_id, {})
        if self.batch_size % self.group_size or self.batch_size % self.micro_batch_size:
            raise ValueError("--batch-size must be a multiple of --group-size and of --micro-batch-size")
        if self.steps <= self.warmup:
            raise ValueError("--steps must be more than --warmup")

    def ours(self, run_dir: str) -> Any:
        """Our trainer's configuration of this workload (a :class:`agents.training.grpo.GRPOConfig`)."""
        from agents.training.grpo import GRPOConfig

        return GRPOConfig(
            env_id=self.env_id,
            env_kwargs=self.env_kwargs,
            split="train",
            eval_problems=0,
            model=self.model,
            run_dir=run_dir,
            resume=False,
            seed=self.seed,
            device="cpu",
            num_threads=1,
            progress=False,
            total_steps=self.steps,
            batch_size=self.batch_size,
            group_size=self.group_size,
            temperature=1.0,
            max_new_tokens=self.max_new_tokens,
            max_turns=1,
            advantage="outcome",
            scale_rewards=True,
            dynamic_sampling=False,
            loss_type=self.loss_type,
            epsilon_low=self.epsilon,
            epsilon_high=self.epsilon_high,
            beta=0.0,
            passes_per_batch=1,
            micro_batch_size=self.micro_batch_size,  # episodes: one completion each here
            gradient_accumulation_steps=self.batch_size // self.micro_batch_size,
            learning_rate=self.learning_rate,
            max_grad_norm=1.0,
        )


def main(argv: Sequence[str] | None = None) -> int:
    from agents.cli import parse

    args = parse(BenchConfig, argv, "bench_grpo.py", description=__doc__.split("\n\n")[0])
    torch.set_num_threads(1)  # both trainers, every op: set before either is built
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # "Loading weights" bars
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
    trl_missing = import_trl() if args.trainers == "both" else "skipped (--trainers ours)"
    if trl_missing and args.trainers == "both":
        print(f"TRL is not available ({trl_missing}): benchmarking our trainer alone. `pip install trl==1.16.0`")
    with tempfile.TemporaryDirectory(prefix="bench_grpo_") as scratch:
        ours = Ours(args, os.path.join(scratch, "ours"))
        print(f"ours: {args.steps} steps ...", flush=True)
        if trl_missing:
            for _ in range(args.steps):
                ours.step()
        else:

            def our_block() -> None:
                for _ in range(min(args.block, args.steps - len(ours.steps))):
                    ours.step()

            trl_trainer, clock = make_trl(args, os.path.join(scratch, "trl"), our_block)
            # TRL's Trainer may set its own thread count; keep the benchmark's one thread.
            torch.set_num_threads(1)
            trl_trainer.train()
            while len(ours.steps) < args.steps:  # TRL stopped early (it should not): finish ours anyway
                ours.step()
    results: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "torch": torch.__version__,
            "torch_threads": sorted(
                {s["torch_threads"] for s in ours.steps + (clock.steps if not trl_missing else [])}
            ),
            "cpus": os.cpu_count(),
            "parameters": sum(p.numel() for p in ours.trainer.model.parameters()),
            "trl": None if trl_missing else __import__("trl").__version__,
            **{k: v for k, v in asdict(args).items() if k not in ("out", "plot")},
        },
        "ours": summarise(ours.steps, args.warmup),
        "ours_steps": ours.steps,
    }
    if not trl_missing:
        results["trl"] = summarise(clock.steps, args.warmup)
        results["trl_steps"] = clock.steps
        a, b = results["ours"], results["trl"]
        results["ratio"] = {
            "samples_per_s": a["samples_per_s"] / b["samples_per_s"],
            "tokens_per_s": a["tokens_per_s"] / b["tokens_per_s"],
            "step_time": b["median_step_s"] / a["median_step_s"],
            "cpu_step_time": b["median_cpu_step_s"] / a["median_cpu_step_s"],
            "generation": b["median_generate_s"] / a["median_generate_s"],
            "reward_last_quarter_diff": a["reward_last_quarter"] - b["reward_last_quarter"],
        }
    print_report(results, args)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {args.out}")
    if args.plot:
        plot(results, args.plot, args.env_id)
    return 0


if __name__ == "__main__":
    from agents.cli import run_script

    sys.exit(run_script(main, "bench_grpo.py"))
