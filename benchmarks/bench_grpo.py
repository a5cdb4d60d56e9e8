"""GRPO training throughput on CPU, three arms on one workload in one run: our trainer, TRL's ``GRPOTrainer`` with our
reward functions, and TRL's ``GRPOTrainer`` with our ``rollout_func``.

Run it from the repository root (``REASON_GYM_DATA_DIR`` names the folder that holds ``game24/24.csv``)::

    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_grpo.py      # 30 steps x 3 seeds per arm
    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_grpo.py --out grpo.json --plot grpo.png
    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_grpo.py --quick   # a few seconds

TRL is an optional benchmark dependency (``pip install trl==1.16.0``, with ``datasets``). Without it the script
says so, benchmarks our trainer alone and exits 0 (the TRL rows and the ratios are then missing).

The arms:

- ``ours``: our :class:`~agents.training.grpo.GRPOTrainer`, episodes played step by step through a vector env
  (``max_turns=--max-turns``, each step generated until a newline or ``--max-new-tokens``), outcome advantages
  (the episode's return, normalised within its group);
- ``trl``: TRL's GRPOTrainer with :func:`reason_gym.integrations.trl.make_reward_funcs` (trained on ``total``, the
  components logged only): the whole episode is ONE completion of up to ``--max-new-tokens x --max-turns``
  tokens, generated until the end-of-sequence token, then cut into steps and an answer and scored through the env;
- ``trl_rollout``: TRL's GRPOTrainer with :class:`agents.integrations.trl.EnvRollout` as ``rollout_func`` (and its
  ``reward_funcs()``): episodes played step by step inside TRL (``max_step_tokens=--max-new-tokens``,
  ``max_turns=--max-turns``, the same total budget), the env's "Rejected: ..." lines masked out of the loss.

The workload, identical for all three: the embedded tiny character-level Llama (``--model``), float32, torch on ONE
thread (``torch.set_num_threads(1)`` before any trainer is built; the output shows the thread count in force);
Game of 24 on the train split (``--env-id``) with ``--env-kwargs``: by default ``step_solvable`` on (weight 1, the
other weights the env's defaults: 1 for a valid step that leaves the puzzle solvable, 0 for a valid one that does
not, -0.1 for an invalid one, plus the outcome of the answer) and ``max_steps=4`` (three steps and the answer; the
env ends the episode there), so an episode's return is the sum of its step rewards in every arm. Prompts are a
puzzle's reset observation and a newline (``make_dataset``: TRL's dataset is every train puzzle; ours draws them
uniformly with replacement). GRPO settings: G = ``--group-size`` completions per prompt, ``--batch-size``
completions (episodes) per training step (TRL: the generation batch), temperature 1 (top-p 1, no top-k),
``--loss-type`` (``dapo``, TRL's default), the same clip range, beta 0, group-normalised advantages (sample std),
one optimisation pass per batch, micro-batches of ``--micro-batch-size`` with gradient accumulation, AdamW at
``--learning-rate`` (constant, no weight decay), gradient clipping at 1, no dynamic sampling, no evaluation, no
checkpoints or logging (TRL: ``save_strategy="no"``, ``logging_strategy="no"``, ``report_to="none"``,
``use_cpu=True``, bf16/fp16 off, gradient checkpointing off).

Measured per training step (one rollout batch and its update): wall time (and this process's CPU time), the
completion tokens (ours: generated tokens; TRL: ``completion_ids``, which for ``trl_rollout`` include the env's
masked lines) and the mean episode return, and the time spent generating (ours: ``policy.propose``; ``trl``:
``_generate_single_turn``; ``trl_rollout``: the whole ``rollout_func``, env steps included). Per seed
(``--seeds`` of them from ``--seed``), ours is interleaved with ``trl`` (a callback at the end of every ``--block``
TRL steps runs as many of ours and restarts TRL's clock), then ``trl_rollout`` runs alone. samples/s = completions
per step / the median step time over every seed's timed steps (the first ``--warmup`` of each seed left out);
tokens/s = the median of each step's tokens / time. The reward curve of an arm is its mean episode return per step,
averaged over seeds; the table gives the first and last quarter (mean over seeds) and the seeds' standard deviation
of the last quarter.

The issue's target: ours >= 2x TRL's samples/s with a reward curve at least as good. Each samples/s ratio comes
with a 95% bootstrap interval (each arm's timed steps resampled, the ratio of medians recomputed): the verdict is
"met" only when the interval's low end reaches the target (and the curve is at least as good), "not met" when its
high end falls short (or the curve is worse), and "not shown" when the target lies inside the interval. On the
shared 2-core machine the interval over 87 steps is about +-5%, and the ratio moved 1.96x-2.10x between runs of the
same code. Read the figures with care:
the ``trl`` arm's completions run to the budget when the model writes no end-of-sequence token (the tiny model
does not), so its tokens per step differ from the others'; tokens/s is the length-robust figure. The arms draw
different prompts, so compare curves over several seeds.
"""

from __future__ import annotations

import json
import os
import platform
import random
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
    "reason_gym/Game24-v0": {"reward_weights": {"step_solvable": 1.0}, "max_steps": 4},
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


class Recorded:
    """A TRL reward function that also records what the benchmark reports: the mean reward and the completion
    tokens of each call (one call per training step). It keeps the wrapped function's name (``total``)."""

    def __init__(self, function: Callable[..., list[float | None]]) -> None:
        self.function = function
        self.__name__ = function.__name__
        self.mean_rewards: list[float] = []
        self.tokens: list[int] = []

    def __call__(self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any) -> list:
        rewards = self.function(prompts, completions, **columns)
        values = [float(r) for r in rewards if r is not None]
        self.mean_rewards.append(sum(values) / max(1, len(values)))
        self.tokens.append(sum(len(ids) for ids in columns["completion_ids"]))
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

    def __init__(self, config: BenchConfig, run_dir: str, seed: int) -> None:
        from agents.training.grpo import GRPOTrainer

        self.config = config.ours(run_dir, seed)
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


def make_trl(
    args: BenchConfig, arm: str, seed: int, output_dir: str, between_blocks: Callable[[], None]
) -> tuple[Any, Any]:
    """TRL's GRPOTrainer on the workload (``arm``: ``trl`` scores whole completions with our reward functions,
    ``trl_rollout`` plays episodes with our ``rollout_func``), and the callback that times its steps (and runs
    ``between_blocks`` after every ``--block`` of them)."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func's "experimental feature" warning
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig as TRLConfig
    from trl import GRPOTrainer as TRLTrainer

    from agents.integrations.trl import EnvRollout
    from agents.policies.hf import load_model_and_tokenizer
    from reason_gym.integrations.trl import make_dataset, make_reward_funcs, reward_weights

    model, tokenizer = load_model_and_tokenizer(model_path(args.model), dtype=torch.float32)
    dataset = make_dataset(args.env_id, split="train", limit=args.problems, **args.env_kwargs)
    rollout = None
    if arm == "trl_rollout":
        rollout = EnvRollout(
            args.env_id, dataset=dataset, max_step_tokens=args.max_new_tokens, max_turns=args.max_turns,
            **args.env_kwargs,
        )  # fmt: skip
        funcs = rollout.reward_funcs()
    else:  # one completion holds the whole episode: generation stops at the end-of-sequence token or the budget
        funcs = make_reward_funcs(args.env_id, **args.env_kwargs)
    recorded = Recorded(funcs[0])
    funcs = [recorded, *funcs[1:]]
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
        seed=seed,
        max_steps=args.steps,
        per_device_train_batch_size=args.micro_batch_size,
        gradient_accumulation_steps=args.batch_size // args.micro_batch_size,
        num_generations=args.group_size,
        max_completion_length=args.max_new_tokens * args.max_turns,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        beta=0.0,
        num_iterations=1,
        loss_type=args.loss_type,
        epsilon=args.epsilon,
        epsilon_high=args.epsilon_high,
        scale_rewards="group",
        reward_weights=reward_weights(funcs),
        learning_rate=args.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        max_grad_norm=1.0,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )
    trainer = TRLTrainer(
        model=model,
        reward_funcs=funcs,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        **({} if rollout is None else {"rollout_func": rollout}),
    )
    if rollout is None:
        generate = Timed(trainer._generate_single_turn)
        trainer._generate_single_turn = generate
    else:
        generate = Timed(trainer.rollout_func)
        trainer.rollout_func = generate

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
                    "tokens": recorded.tokens[-1],
                    "reward": recorded.mean_rewards[-1],
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


def timed_steps(runs: list[list[dict[str, float]]], warmup: int) -> list[dict[str, float]]:
    """The steps the medians are taken over: every seed's, after its first ``warmup`` (all of them if no more)."""
    return [s for steps in runs for s in (steps[warmup:] or steps)]


def ratio_interval(
    ours: list[list[dict[str, float]]], theirs: list[list[dict[str, float]]], warmup: int, draws: int = 2000
) -> tuple[float, float]:
    """A 95% bootstrap interval of ours / theirs samples/s: each arm's :func:`timed_steps` resampled with
    replacement, the ratio of the medians recomputed ``draws`` times (a fixed seed: the same figures for the same
    steps)."""
    rng = random.Random(0)
    a = [(s["samples"], s["seconds"]) for s in timed_steps(ours, warmup)]
    b = [(s["samples"], s["seconds"]) for s in timed_steps(theirs, warmup)]

    def rate(steps: list[tuple[float, float]]) -> float:
        return statistics.median(n for n, _ in steps) / statistics.median(t for _, t in steps)

    ratios = sorted(rate(rng.choices(a, k=len(a))) / rate(rng.choices(b, k=len(b))) for _ in range(draws))
    return ratios[int(0.025 * draws)], ratios[int(0.975 * draws) - 1]


def verdict(low: float, high: float, reward_diff: float) -> str:
    """The target's verdict from the ratio's interval and ours' last-quarter reward minus theirs."""
    if reward_diff < 0 or high < TARGET_RATIO:
        return "not met"
    return "met" if low >= TARGET_RATIO else f"not shown: {TARGET_RATIO:.0f}x is inside the 95% interval"


ARMS = ("ours", "trl", "trl_rollout")
LABELS = {
    "ours": "ours (GRPOTrainer)",
    "trl": "TRL + make_reward_funcs",
    "trl_rollout": "TRL + EnvRollout",
}


def summarise(runs: list[list[dict[str, float]]], warmup: int) -> dict[str, Any]:
    """One arm over its seeds (``runs``: each seed's steps): medians over the timed steps of every seed (after
    each seed's warm-up), the reward curve per step as the mean over seeds, and each seed's quarters."""
    timed = timed_steps(runs, warmup)
    every = [s for steps in runs for s in steps]
    step_s = statistics.median(s["seconds"] for s in timed)
    length = min(len(steps) for steps in runs)
    curve = [statistics.mean(steps[i]["reward"] for steps in runs) for i in range(length)]
    quarter = max(1, length // 4)
    last = [statistics.mean(s["reward"] for s in steps[length - quarter : length]) for steps in runs]
    first = [statistics.mean(s["reward"] for s in steps[:quarter]) for steps in runs]
    summary = {
        "seeds": len(runs),
        "steps": length,
        "timed_steps": len(timed),
        "median_step_s": step_s,
        "median_cpu_step_s": statistics.median(s["cpu_seconds"] for s in timed),
        "median_generate_s": statistics.median(s["generate_seconds"] for s in timed),
        "samples_per_s": statistics.median(s["samples"] for s in timed) / step_s,
        "tokens_per_s": statistics.median(s["tokens"] / s["seconds"] for s in timed),
        "tokens_per_step": statistics.mean(s["tokens"] for s in every),
        "reward_first_quarter": statistics.mean(first),
        "reward_last_quarter": statistics.mean(last),
        "reward_last_quarter_per_seed": last,
        "reward_last_quarter_std": statistics.stdev(last) if len(last) > 1 else 0.0,
        "reward_mean": statistics.mean(curve),
        "reward_curve": curve,
        "reward_curves": [[s["reward"] for s in steps] for steps in runs],
        "samples_seen": [sum(s["samples"] for s in runs[0][: i + 1]) for i in range(length)],
    }
    if "update_seconds" in every[0]:
        summary["median_rollout_s"] = statistics.median(s["rollout_seconds"] for s in timed)
        summary["median_update_s"] = statistics.median(s["update_seconds"] for s in timed)
    return summary


def print_report(results: dict[str, Any], args: BenchConfig) -> None:
    meta = results["meta"]
    threads = "/".join(map(str, meta["torch_threads"]))
    print(
        f"\nGRPO on {args.env_id} {json.dumps(args.env_kwargs)} (train split), episodes of <= {args.max_turns} "
        f"steps of <= {args.max_new_tokens} tokens, model {args.model!r} ({meta['parameters']:,} parameters), "
        f"torch threads {threads} (checked at every step); G={args.group_size}, {args.batch_size} "
        f"completions/step, micro-batch {args.micro_batch_size}, lr {args.learning_rate}, loss {args.loss_type}, "
        f"{args.steps} steps x seeds {meta['seeds']} per arm (ours interleaved with TRL + make_reward_funcs in "
        f"blocks of {args.block}); medians over steps {args.warmup + 1}-{args.steps} of every seed"
    )
    header = (
        f"{'arm':<24} {'step s':>8} {'cpu s':>7} {'gen s':>7} {'samples/s':>10} {'tokens/s':>9} "
        f"{'tok/step':>9} {'reward 1st q':>12} {'last q':>7} {'(sd)':>6}"
    )
    print(header + "\n" + "-" * len(header))
    for name in ARMS:
        row = results.get(name)
        if row is None:
            continue
        print(
            f"{LABELS[name]:<24} {row['median_step_s']:>8.3f} {row['median_cpu_step_s']:>7.3f} "
            f"{row['median_generate_s']:>7.3f} {row['samples_per_s']:>10.1f} {row['tokens_per_s']:>9.0f} "
            f"{row['tokens_per_step']:>9.1f} {row['reward_first_quarter']:>12.3f} {row['reward_last_quarter']:>7.3f} "
            f"{row['reward_last_quarter_std']:>6.3f}"
        )
    ours = results["ours"]
    print(f"ours: rollout {ours['median_rollout_s']:.3f} s (generation {ours['median_generate_s']:.3f} s), update "
          f"{ours['median_update_s']:.3f} s per step (medians)")  # fmt: skip
    for name, ratio in results.get("ratio", {}).items():
        low, high = ratio["samples_per_s_interval"]
        met = verdict(low, high, ratio["reward_last_quarter_diff"])
        print(
            f"ratio ours/{LABELS[name]}: samples/s {ratio['samples_per_s']:.2f}x (95% interval {low:.2f}x-"
            f"{high:.2f}x), tokens/s {ratio['tokens_per_s']:.2f}x, step time {ratio['step_time']:.2f}x faster "
            f"(CPU time {ratio['cpu_step_time']:.2f}x); last-quarter reward ours - it "
            f"{ratio['reward_last_quarter_diff']:+.3f} (target >= {TARGET_RATIO:.0f}x with a reward curve at least as "
            f"good: {met})"
        )
    for name in ARMS:
        if name in results:
            print(f"reward curve {name:<11}: " + " ".join(f"{r:.2f}" for r in results[name]["reward_curve"]))


def plot(results: dict[str, Any], path: str, env_id: str, max_turns: int) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"--plot: matplotlib is not installed, {path} not written")
        return
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, color in zip(ARMS, ("tab:blue", "tab:orange", "tab:green"), strict=True):
        if name not in results:
            continue
        row = results[name]
        seen, curve = row["samples_seen"], row["reward_curve"]
        window = max(1, len(curve) // 10)  # one step's mean is noisy: the trend is the rolling mean
        rolling = [statistics.mean(curve[max(0, i + 1 - window) : i + 1]) for i in range(len(curve))]
        axes.plot(seen, curve, color=color, alpha=0.25, linewidth=0.8)
        label = f"{LABELS[name]}, {row['samples_per_s']:.1f} samples/s"
        axes.plot(seen, rolling, color=color, linewidth=2, label=label)
    seeds = results["meta"]["seeds"]
    axes.set_xlabel("completions sampled")
    axes.set_ylabel(f"mean reward per step (mean of {len(seeds)} seeds)")
    window = max(1, len(results["ours"]["reward_curve"]) // 10)
    episodes = f"episodes of <= {max_turns} steps" if max_turns > 1 else "single-step episodes"
    axes.set_title(f"GRPO on {env_id}, {episodes}\nbold: rolling mean of {window} steps; thin: per step", fontsize=10)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"wrote {path}")


# ------------------------------------------------------------------------------------------------------- main


@dataclass
class BenchConfig:
    """GRPO training throughput on CPU: our trainer, TRL's GRPOTrainer with our reward functions and TRL's with our
    rollout_func, on the same workload (see the module docstring); the settings below are every arm's."""

    steps: int | None = None
    """training steps of each arm and seed (None: 30; --quick: 3)"""
    seeds: int | None = None
    """how many seeds (--seed, --seed + 1, ...) each arm runs (None: 3; --quick: 1)"""
    group_size: int | None = None
    """G: completions per prompt (None: 8; --quick: 2)"""
    batch_size: int | None = None
    """completions (episodes) per training step (None: 16; --quick: 4)"""
    micro_batch_size: int | None = None
    """completions per forward/backward (None: the batch size)"""
    max_new_tokens: int = 32
    """the longest step, in tokens (TRL's completion budget: this times --max-turns)"""
    max_turns: int = 4
    """the most steps of an episode (ours: max_turns; EnvRollout: max_turns)"""
    learning_rate: float = 1e-4
    """AdamW, constant"""
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"
    """the aggregation of token losses"""
    epsilon: float = 0.2
    """lower clip"""
    epsilon_high: float = 0.28
    """upper clip"""
    env_id: str = ENV_ID
    """any registered id"""
    env_kwargs: dict[str, Any] | None = None
    """for gymnasium.make, as a JSON object or KEY=VALUE pairs (None: the step reward on and a 4-step limit, see
    above; '{}' for others)"""
    problems: int | None = None
    """TRL's dataset: the first this many train problems (None: all; a procedural task needs a number)"""
    model: str = "tiny"
    """tiny (the embedded model), a folder or a hub id"""
    block: int = 1
    """steps of ours after each block of TRL + make_reward_funcs steps"""
    warmup: int = 1
    """first steps of each arm and seed left out of the medians"""
    seed: int = 0
    """the first seed of every arm"""
    trainers: Literal["all", "ours"] = "all"
    """ours: skip both TRL arms"""
    quick: bool = False
    """a tiny budget: other defaults for steps, seeds, group size and batch size"""
    out: str | None = None
    """write every figure and the reward curves to this JSON file"""
    plot: str | None = None
    """write a PNG of the three reward curves (needs matplotlib)"""

    def __post_init__(self) -> None:
        defaults = {"steps": (30, 3), "seeds": (3, 1), "group_size": (8, 2), "batch_size": (16, 4)}
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
        if self.seeds < 1 or self.max_turns < 1:
            raise ValueError("--seeds and --max-turns must be >= 1")

    def ours(self, run_dir: str, seed: int) -> Any:
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
            seed=seed,
            device="cpu",
            num_threads=1,
            progress=False,
            total_steps=self.steps,
            batch_size=self.batch_size,
            group_size=self.group_size,
            temperature=1.0,
            max_new_tokens=self.max_new_tokens,
            max_turns=self.max_turns,
            advantage="outcome",
            scale_rewards=True,
            dynamic_sampling=False,
            loss_type=self.loss_type,
            epsilon_low=self.epsilon,
            epsilon_high=self.epsilon_high,
            beta=0.0,
            passes_per_batch=1,
            micro_batch_size=self.micro_batch_size,
            gradient_accumulation_steps=self.batch_size // self.micro_batch_size,
            learning_rate=self.learning_rate,
            max_grad_norm=1.0,
        )


def main(argv: Sequence[str] | None = None) -> int:
    from agents.cli import parse

    args = parse(BenchConfig, argv, "bench_grpo.py", description=__doc__.split("\n\n")[0])
    torch.set_num_threads(1)  # every arm, every op: set before any is built
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # "Loading weights" bars
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
    trl_missing = import_trl() if args.trainers == "all" else "skipped (--trainers ours)"
    if trl_missing and args.trainers == "all":
        print(f"TRL is not available ({trl_missing}): benchmarking our trainer alone. `pip install trl==1.16.0`")
    runs: dict[str, list[list[dict[str, float]]]] = {name: [] for name in ARMS}
    parameters = 0
    for seed in range(args.seed, args.seed + args.seeds):
        with tempfile.TemporaryDirectory(prefix="bench_grpo_") as scratch:
            ours = Ours(args, os.path.join(scratch, "ours"), seed)
            parameters = sum(p.numel() for p in ours.trainer.model.parameters())
            print(f"seed {seed}: ours {args.steps} steps ...", flush=True)
            if trl_missing:
                for _ in range(args.steps):
                    ours.step()
            else:

                def our_block(ours: Ours = ours) -> None:
                    for _ in range(min(args.block, args.steps - len(ours.steps))):
                        ours.step()

                for arm in ("trl", "trl_rollout"):
                    print(f"seed {seed}: {LABELS[arm]} {args.steps} steps ...", flush=True)
                    between = our_block if arm == "trl" else (lambda: None)
                    trainer, clock = make_trl(args, arm, seed, os.path.join(scratch, arm), between)
                    torch.set_num_threads(1)  # TRL's Trainer may set its own thread count
                    trainer.train()
                    runs[arm].append(clock.steps)
                    del trainer
                while len(ours.steps) < args.steps:  # TRL stopped early (it should not): finish ours anyway
                    ours.step()
            runs["ours"].append(ours.steps)
    arms = [name for name in ARMS if runs[name]]
    results: dict[str, Any] = {
        "meta": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "torch": torch.__version__,
            "torch_threads": sorted({s["torch_threads"] for name in arms for r in runs[name] for s in r}),
            "cpus": os.cpu_count(),
            "parameters": parameters,
            "trl": None if trl_missing else __import__("trl").__version__,
            **{k: v for k, v in asdict(args).items() if k not in ("out", "plot", "seeds")},
            "seeds": list(range(args.seed, args.seed + args.seeds)),
        },
        **{name: summarise(runs[name], args.warmup) for name in arms},
        "steps": {name: runs[name] for name in arms},
    }
    if not trl_missing:
        a = results["ours"]
        results["ratio"] = {
            name: {
                "samples_per_s": a["samples_per_s"] / b["samples_per_s"],
                "samples_per_s_interval": ratio_interval(runs["ours"], runs[name], args.warmup),
                "tokens_per_s": a["tokens_per_s"] / b["tokens_per_s"],
                "step_time": b["median_step_s"] / a["median_step_s"],
                "cpu_step_time": b["median_cpu_step_s"] / a["median_cpu_step_s"],
                "reward_last_quarter_diff": a["reward_last_quarter"] - b["reward_last_quarter"],
            }
            for name, b in ((n, results[n]) for n in ("trl", "trl_rollout"))
        }
    print_report(results, args)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
        print(f"wrote {args.out}")
    if args.plot:
        plot(results, args.plot, args.env_id, args.max_turns)
    return 0


if __name__ == "__main__":
    from agents.cli import run_script

    sys.exit(run_script(main, "bench_grpo.py"))
