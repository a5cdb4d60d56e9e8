"""GRPO through the environments: sample groups of episodes step by step, score them, and push the policy towards the
better ones.

    python scripts/train_grpo.py                      # the embedded model on Game24 train, outcome advantages
    reason-gym train grpo --advantage process         # the same, process-supervised (the same flags)
    tensorboard --logdir runs

One training step:

1. **Rollouts** (:mod:`agents.training.rollouts`): ``batch_size / group_size`` problems of the train split, each
   played ``group_size`` times by the current policy through ``reset`` / ``step`` of a vector environment. Every step
   is one generation; its reward and reward components come from the environment (plus a PRM's score per step when
   ``prm`` is set).
2. **Advantages** (:mod:`agents.training.advantages`): outcome (the episode return, normalised within its group) or
   process (the step rewards pooled over the group, normalised, summed from each step to the end of its episode).
   With dynamic sampling, groups whose rewards are all equal are dropped and more are sampled.
3. **Updates** (:mod:`agents.training.policy_loss`): ``passes_per_batch`` passes over the batch in micro-batches of
   ``micro_batch_size`` episodes (an episode's steps scored in one sequence where each extends the last, see
   :mod:`agents.training.batches`), ``gradient_accumulation_steps`` micro-batches per optimizer step; the PPO-clipped
   ratio against the log-probs of the policy that sampled the batch, a k3 KL penalty to the frozen starting model
   when ``beta > 0``, and the chosen loss aggregation. Log-probabilities use the sampling temperature.

Data-parallel: under ``accelerate launch`` or ``torchrun`` (``WORLD_SIZE > 1``) every process samples its own groups
(``batch_size`` is per process), gradients are averaged by DDP, and the aggregation normalisers are summed over
processes, so the update equals one process training on all the groups. See the README for multi-GPU use.

Checkpoints (``run_dir/checkpoint.pt``: model, optimizer, step, every random generator; see
:mod:`agents.training.checkpoints`) let a killed run resume exactly where it stopped; a non-finite loss stops the
run and keeps the last good checkpoint. The configuration and its checks are :mod:`agents.training.grpo_config`.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from agents.cli import parse, run_script
from agents.evaluation import play_greedy
from agents.integrations.ray_rollouts import RayRollouts
from agents.policies import model_path
from agents.policies.hf import HFPolicy, configure_threads, load_model_and_tokenizer
from agents.policies.prompts import encode_prompts
from agents.prm import make_prm, score_steps
from agents.training.advantages import is_informative, outcome_advantages, process_advantages
from agents.training.batches import CompletionLogits, Row, micro_batches, row_logprobs
from agents.training.checkpoints import Checkpoints, log_scalars, open_writer
from agents.training.grpo_config import GRPOConfig
from agents.training.policy_loss import Window, aggregate, clipped_surrogate, k3_kl
from agents.training.rollouts import Episode, collect_groups, make_hf_policy, make_vector_env
from reason_gym.cli import parse_kwargs
from reason_gym.files import write_atomic


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped without touching its last good checkpoint."""


# --------------------------------------------------------------------------------------------- rewards to rows


def with_prm_rewards(groups: list[list[Episode]], prm: Any, weight: float) -> None:
    """Adds ``weight`` times the PRM's score of each accepted reasoning step to its reward (the component ``prm``).

    The same steps and states as an env's own ``prm`` component (:class:`reason_gym.core.ReasoningEnv`): the PRM reads
    the steps the env accepted, and scores each one that is not the final answer. A rejected step changed nothing,
    so it earns no PRM score (a learned PRM never saw one, and would reward text that merely looks like a good step),
    and the answer has the env's outcome.
    """
    for episode in (e for group in groups for e in group):
        final = len(episode.steps) - 1 if episode.terminated else None
        accepted = [i for i, step in enumerate(episode.steps) if not step.components.get("invalid_step") and i != final]
        texts = [episode.steps[i].text for i in accepted]
        scores = score_steps(prm, episode.state or episode.question, texts) if texts else []
        by_step = dict(zip(accepted, scores, strict=True))
        for i, step in enumerate(episode.steps):
            step.components["prm"] = float(by_step.get(i, 0.0))
            step.reward += weight * step.components["prm"]


def group_advantages(group: list[Episode], config: GRPOConfig) -> list[list[float]]:
    """Each episode's advantage per step (outcome advantages repeat the episode's one value on every step)."""
    if config.advantage == "outcome":
        values = outcome_advantages([e.reward for e in group], scale=config.scale_rewards)
        return [[float(a)] * len(e.steps) for a, e in zip(values, group, strict=True)]
    per_step = process_advantages([[s.reward for s in e.steps] for e in group], scale=config.scale_rewards)
    return [a.tolist() for a in per_step]


def group_rewards(group: list[Episode], config: GRPOConfig) -> list[float] | list[list[float]]:
    """What the advantages are computed from: returns (outcome) or every step reward (process)."""
    if config.advantage == "outcome":
        return [e.reward for e in group]
    return [[s.reward for s in e.steps] for e in group]


def rows_of(groups: list[list[Episode]], config: GRPOConfig) -> list[list[Row]]:
    """The training rows (one per step) of each episode, carrying the step's advantage."""
    episodes = []
    for group in groups:
        for episode, advantages in zip(group, group_advantages(group, config), strict=True):
            episodes.append(
                [Row(s.prompt_ids, s.completion_ids, a) for s, a in zip(episode.steps, advantages, strict=True)]
            )
    return episodes


# ----------------------------------------------------------------------------------------------- callbacks


class Callback:
    """Hooks into a :class:`GRPOTrainer` (as stable-baselines3's callbacks): subclass and override what you need.

    Each receives the trainer, so it can read ``trainer.global_step``, ``trainer.model``, ``trainer.config``; the
    metrics dictionaries are the ones the trainer logs (a callback may add entries).
    """

    def on_rollout_end(self, trainer: GRPOTrainer, groups: list[list[Episode]], metrics: dict[str, float]) -> None:
        """After a step's groups are sampled (and filtered by dynamic sampling), before the update."""

    def on_step_end(self, trainer: GRPOTrainer, metrics: dict[str, float]) -> None:
        """After a step's update; ``metrics`` holds its rollout, loss and timing figures (``time/*``)."""

    def on_evaluate(self, trainer: GRPOTrainer, metrics: dict[str, float]) -> None:
        """After each greedy evaluation (``eval/accuracy``)."""


# ------------------------------------------------------------------------------------------------- the trainer


class GRPOTrainer:
    """Holds the model, optimizer, environments and generators of one run; :meth:`train` runs it."""

    def __init__(self, config: GRPOConfig, callbacks: Sequence[Callback] = ()) -> None:
        self.config = config
        self.rank, self.world = _init_distributed()
        self.device = _device(config.device)
        self.env_kwargs = dict(config.env_kwargs)
        self.eval_env_kwargs = self.env_kwargs | config.eval_env_kwargs
        self.run_dir = Path(config.run_dir)
        self.checkpoints = Checkpoints(self.run_dir, rank=self.rank, world=self.world)
        self.checkpoint_path = self.checkpoints.path
        self.rng = np.random.default_rng([config.seed, self.rank])  # problems and batch order
        torch.manual_seed(config.seed * 1000 + self.rank)  # sampling
        random.seed(config.seed)

        model, self.tokenizer = load_model_and_tokenizer(model_path(config.model), device=self.device)
        self.model = model.float().train()
        self.reference = None
        if config.beta > 0:
            self.reference = CompletionLogits(copy.deepcopy(self.model).eval().requires_grad_(False))
        self.scorer = CompletionLogits(self.model)
        self.trained = self.scorer  # what the loss runs through: DDP's wrapper when data-parallel
        if self.world > 1:
            self.trained = torch.nn.parallel.DistributedDataParallel(self.scorer)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate, weight_decay=0.0)
        with gym.make(config.env_id, **self.env_kwargs) as probe:  # closed before the rollout envs open (a served
            # env's session counts against the server's cap)
            task = getattr(probe.unwrapped, "task", None)
            problems = split_problems(probe, config.split)
            max_steps = getattr(probe.unwrapped, "max_steps", 10**9)
        # Rollouts hand the policy observation strings: a chat prompt takes its system prompt from the task.
        self.policy = self._make_policy(task)
        self.prm = make_prm(config.prm) if config.prm else None
        self.rollouts: Any = RayRollouts(config) if config.rollout_workers else None
        """the Ray rollout workers (``rollout_workers``; anything with ``collect`` / ``sync`` / ``close``, such as
        :class:`~agents.integrations.ray_rollouts.LocalRollouts`); None: :func:`collect_groups` in this process"""
        self.envs = None if self.rollouts is not None else make_vector_env(config, config.batch_size)
        """the rollout envs of this process (the Ray workers build their own)"""
        self.num_problems = len(problems) if problems is not None else 2**31 - 1  # a procedural task: any index
        if config.train_problems:
            self.num_problems = min(self.num_problems, config.train_problems)
        self.max_tokens = config.max_new_tokens * min(config.max_turns, max_steps)
        self.global_step = 0
        """training steps done (:meth:`step` calls, a resumed run's included)"""
        self.samples_seen = 0
        self.callbacks: list[Callback] = list(callbacks)

    # ------------------------------------------------------------------ setup

    def _make_policy(self, task: Any) -> Any:
        from agents.policies.hf import SMALL_MODEL_PARAMETERS

        if self.config.generation_backend == "vllm":
            from agents.policies.vllm_backend import VLLMPolicy

            # vLLM's engine runs in processes of its own; this one only trains: its threads as the HF path sets them.
            small = self.device == "cpu" and self.model.num_parameters() < SMALL_MODEL_PARAMETERS
            configure_threads(self.config.num_threads or (1 if small else None))
            return VLLMPolicy(
                model_path(self.config.model),
                temperature=self.config.temperature,
                max_new_tokens=self.config.max_new_tokens,
                seed=self.config.seed + self.rank,
                # Sample from the weights being trained, in their dtype (float32): by default vLLM would downcast a
                # float32 checkpoint to bfloat16, and the rollouts would come from another policy than the trained one.
                dtype=str(self.model.dtype).removeprefix("torch."),
                # On CPU, no torch.compile: it adds 1-2 minutes to the engine's start.
                enforce_eager=self.device == "cpu",
                task=task,
                **({} if self.device == "cpu" else {"gpu_memory_utilization": self.config.vllm_gpu_memory_utilization}),
            )
        configure_threads(self.config.num_threads)
        return make_hf_policy(self.config, self.model, self.tokenizer, task)

    def encode(self, states: list[str]) -> list[list[int]]:
        if isinstance(self.policy, HFPolicy):  # it keeps these ids for the propose() call that follows
            return self.policy.encode(states)
        return encode_prompts(self.tokenizer, self.policy.prompt, states)

    # ------------------------------------------------------------------ rollouts

    def sample_batch(self) -> tuple[list[list[Episode]], dict[str, float]]:
        """Rollout groups for one step: informative ones only with dynamic sampling (at most a batch of them)."""
        config = self.config
        wanted = config.batch_size // config.group_size
        kept: list[list[Episode]] = []
        sampled: list[list[Episode]] = []
        started, generated, timings = time.perf_counter(), 0, {"generate_s": 0.0}
        for _ in range(config.max_sampling_rounds if config.dynamic_sampling else 1):
            options = [
                {"index": int(i), "split": config.split} for i in self.rng.integers(self.num_problems, size=wanted)
            ]
            self.model.eval()
            if self.rollouts is not None:  # whole groups played by the Ray workers, each seeded from self.rng
                groups = self.rollouts.collect(self.model, options, self.rng, timings=timings)
            else:
                groups = collect_groups(
                    self.envs,
                    self.policy,
                    self.encode,
                    options,
                    temperature=config.temperature,
                    max_turns=config.max_turns,
                    timings=timings,
                )
            if self.prm is not None:
                with_prm_rewards(groups, self.prm, config.prm_weight)
            sampled += groups
            generated += sum(e.num_tokens for g in groups for e in g)
            kept += [g for g in groups if not config.dynamic_sampling or is_informative(group_rewards(g, config))]
            if len(kept) >= wanted:
                break
        kept = kept[:wanted]
        elapsed = time.perf_counter() - started
        episodes = [e for g in sampled for e in g]
        self.samples_seen += len(episodes)
        stats = {
            "rewards/mean": float(np.mean([e.reward for e in episodes])),
            "rewards/accuracy": float(np.mean([e.is_correct for e in episodes])),
            "rewards/answered": float(np.mean([e.terminated for e in episodes])),
            "charts/steps_per_episode": float(np.mean([len(e.steps) for e in episodes])),
            "charts/tokens_per_episode": generated / len(episodes),
            "charts/groups_kept": len(kept) / max(1, len(sampled)),
            "charts/rollout_tokens_per_second": generated / elapsed,
            "charts/episodes_sampled": len(episodes),  # step() adds their rates over the whole step
            "charts/tokens_sampled": generated,
            "time/generate_s": timings["generate_s"],  # in policy.propose; the rest of the rollout is the envs'
        }
        components = {name for e in episodes for s in e.steps for name in s.components}
        for name in sorted(components):
            stats[f"rewards/{name}"] = float(
                np.mean([sum(s.components.get(name, 0.0) for s in e.steps) for e in episodes])
            )
        return kept, stats

    # ------------------------------------------------------------------ updates

    def update(self, episodes: list[list[Row]]) -> dict[str, float]:
        """``passes_per_batch`` passes of clipped policy-gradient steps over one batch of episodes (rows each)."""
        config = self.config
        order = self.rng.permutation(len(episodes))
        pad_id = self.tokenizer.pad_token_id or 0
        batches = [
            b.to(self.device) for b in micro_batches([episodes[i] for i in order], config.micro_batch_size, pad_id)
        ]
        windows = [
            batches[i : i + config.gradient_accumulation_steps]
            for i in range(0, len(batches), config.gradient_accumulation_steps)
        ]
        # The sampling policy's log-probs: needed once the policy moves within the batch (more than one optimizer
        # step); otherwise the current ones, detached, are the same numbers (ratio exactly 1) and cost nothing.
        needs_old = config.passes_per_batch > 1 or len(windows) > 1
        with torch.no_grad():
            for batch in batches:
                if needs_old:
                    batch.old_logp = row_logprobs(self.scorer, batch, config.temperature)[0]
                if self.reference is not None:
                    batch.ref_logp = row_logprobs(self.reference, batch, config.temperature)[0]
        self.model.train()
        totals: dict[str, list[float]] = {}
        for _ in range(config.passes_per_batch):
            for window in windows:
                for name, value in self._optimizer_step(window).items():
                    totals.setdefault(name, []).append(value)
        return {name: float(np.mean(values)) for name, values in totals.items()}

    def _optimizer_step(self, window: list[Any]) -> dict[str, float]:
        config = self.config
        counts = torch.tensor(
            [sum(b.num_outputs for b in window), sum(b.num_tokens for b in window), len(window)], dtype=torch.float64
        )
        if self.world > 1:
            torch.distributed.all_reduce(counts)  # normalise by the whole data-parallel window
        totals = Window(int(counts[0]), int(counts[1]), int(counts[2]), self.max_tokens)
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = kl_sum = clipped = entropy_sum = tokens = 0.0
        for position, batch in enumerate(window):
            sync = position == len(window) - 1 or self.world == 1
            context = contextlib.nullcontext() if sync else self.trained.no_sync()  # all-reduce once per window
            with context:
                logp, entropy = row_logprobs(self.trained, batch, config.temperature, with_entropy=True)
                old = batch.old_logp if batch.old_logp is not None else logp.detach()
                objective, was_clipped = clipped_surrogate(
                    logp, old, batch.advantages, config.epsilon_low, config.epsilon_high
                )
                kl = k3_kl(logp, batch.ref_logp) if batch.ref_logp is not None else torch.zeros_like(logp)
                token_loss = -(objective - config.beta * kl)
                share = aggregate(token_loss, batch.mask, batch.output_of_row, config.loss_type, totals)
                if not torch.isfinite(share):
                    raise NonFiniteLossError(
                        f"the loss is {share.item()} at step {self.global_step + 1}; the last good checkpoint "
                        f"({self.checkpoint_path}, if any) is kept. Lower --learning-rate or --max-grad-norm and "
                        "run the same command again: it resumes from that checkpoint"
                    )
                (share * self.world).backward()  # DDP averages gradients over processes; the shares are global
            mask = batch.mask.bool()
            loss_sum += share.item()
            kl_sum += float(kl.detach()[mask].sum())
            clipped += float(was_clipped[mask].sum())
            entropy_sum += float(entropy[mask].sum())
            tokens += float(mask.sum())
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.max_grad_norm)
        self.optimizer.step()
        # whatever the optimizer: a fused one moves no version counter, and those are what the decode loop's
        # weight check and the Ray sync's look at
        if isinstance(self.policy, HFPolicy):
            self.policy.weights_changed()
        if self.rollouts is not None:
            self.rollouts.weights_changed()
        return {
            "losses/loss": loss_sum * self.world,
            "losses/kl": kl_sum / max(1, tokens),
            "losses/clip_fraction": clipped / max(1, tokens),
            "losses/entropy": entropy_sum / max(1, tokens),
            "losses/grad_norm": float(grad_norm),
        }

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> dict[str, float]:
        """Greedy top-1 accuracy on the first ``eval_problems`` problems of ``eval_split`` (then ``on_evaluate``)."""
        config = self.config

        def make_env() -> gym.Env:
            return gym.make(config.env_id, **self.eval_env_kwargs).unwrapped

        count = config.eval_problems
        problems = split_problems(make_env(), config.eval_split)
        if problems is not None:  # else a procedural task, no end to its split
            count = min(count, len(problems))
        self.model.eval()
        episodes = play_greedy(self.policy, make_env, [{"index": i, "split": config.eval_split} for i in range(count)])
        metrics = {"eval/accuracy": sum(e["is_correct"] for e in episodes) / max(1, count)}
        for callback in self.callbacks:
            callback.on_evaluate(self, metrics)
        return metrics

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> None:
        self.checkpoints.save(
            self.global_step,
            model=self.model,
            optimizer=self.optimizer,
            config=self.config,
            generators={"rng": self.rng},
            counters={"samples_seen": self.samples_seen},
        )

    def load_checkpoint(self) -> None:
        def upgrade(saved: dict[str, Any]) -> dict[str, Any]:  # env_kwargs was once a JSON string
            return saved | {"env_kwargs": parse_kwargs(saved.get("env_kwargs", {}))}

        same = ("env_id", "env_kwargs", "model", "group_size", "batch_size", "advantage", "seed")
        state = self.checkpoints.read(self.config, same, upgrade=upgrade, map_location=self.device)
        self.global_step, counters = self.checkpoints.restore(
            state, model=self.model, optimizer=self.optimizer, generators={"rng": self.rng}
        )
        self.samples_seen = counters["samples_seen"]
        for group in self.optimizer.param_groups:  # a resumed run may lower the learning rate (after a NaN, say)
            group["lr"] = self.config.learning_rate

    # ------------------------------------------------------------------ the loop

    def step(self) -> dict[str, float]:
        """One training step: sample the groups, compute their advantages, update the policy (``passes_per_batch``
        passes); returns the step's metrics. Callbacks see the groups (``on_rollout_end``) and the metrics
        (``on_step_end``). :meth:`train` adds the evaluations, logging and checkpoints around it."""
        config = self.config
        started = time.perf_counter()
        groups, metrics = self.sample_batch()
        for callback in self.callbacks:
            callback.on_rollout_end(self, groups, metrics)
        sampled = time.perf_counter()
        if groups:
            advantages = [a for g in groups for e in group_advantages(g, config) for a in e]
            metrics |= {"advantages/mean": float(np.mean(advantages)), "advantages/std": float(np.std(advantages))}
            metrics |= self.update(rows_of(groups, config))
        if config.generation_backend == "vllm":
            self.policy.load_weights(self.model.state_dict().items())
        if self.rollouts is not None:
            self.rollouts.sync(self.model)  # the new weights to every rollout worker (one ray.put)
        self.global_step += 1
        elapsed = time.perf_counter() - started
        metrics["time/rollout_s"] = sampled - started
        metrics["time/update_s"] = elapsed - metrics["time/rollout_s"]
        metrics["charts/samples_per_second"] = metrics["charts/episodes_sampled"] / elapsed
        metrics["charts/tokens_per_second"] = metrics["charts/tokens_sampled"] / elapsed
        metrics["charts/samples_seen"] = self.samples_seen  # the x-axis that compares runs fairly
        for callback in self.callbacks:
            callback.on_step_end(self, metrics)
        return metrics

    def train(self) -> dict[str, float]:
        """Runs (or resumes) the configured steps; returns the last step's metrics and the final evaluation."""
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if config.resume and self.checkpoint_path.exists():
            self.load_checkpoint()
            if config.generation_backend == "vllm":
                self.policy.load_weights(self.model.state_dict().items())  # vLLM started from the initial weights
        main = self.rank == 0
        writer = open_writer(self.run_dir, self.global_step, config) if main else None
        evaluations = config.eval_problems > 0 and main
        if evaluations and self.global_step == 0:
            log_scalars(writer, self.evaluate(), self.global_step)
        bar = tqdm(
            total=config.total_steps, initial=self.global_step, disable=not (config.progress and main), desc="grpo"
        )
        metrics: dict[str, float] = {}
        while self.global_step < config.total_steps:
            metrics = self.step()
            for count in ("charts/episodes_sampled", "charts/tokens_sampled"):  # logged as rates
                metrics.pop(count)
            at_eval_step = config.eval_every and self.global_step % config.eval_every == 0
            if evaluations and (at_eval_step or self.global_step == config.total_steps):
                metrics |= self.evaluate()
            log_scalars(writer, metrics, self.global_step)
            bar.update(1)
            bar.set_postfix(reward=f"{metrics['rewards/mean']:.3f}", acc=f"{metrics['rewards/accuracy']:.2f}")
            if self.global_step % config.checkpoint_every == 0 or self.global_step == config.total_steps:
                self.save_checkpoint()
        bar.close()
        if self.rollouts is not None:
            self.rollouts.close()  # the Ray workers, and the local cluster if one was started for them
            self.rollouts = None
        if self.world > 1:
            self._check_replicas()
        if main:
            self._save_model(metrics)
            writer.close()
        return metrics

    def _check_replicas(self) -> None:
        """Data-parallel sanity check: every process must end with the same parameters (DDP keeps them so)."""
        vector = torch.nn.utils.parameters_to_vector(self.model.parameters()).detach().double()
        low, high = vector.clone(), vector.clone()
        torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MIN)
        torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
        if not torch.equal(low, high):
            raise RuntimeError("data-parallel processes ended with different parameters")
        if self.rank == 0:
            print(f"data-parallel: {self.world} processes, parameters identical on every process")

    def _save_model(self, metrics: dict[str, float]) -> None:
        output_dir = Path(self.config.output_dir or self.run_dir / "model")
        self.model.save_pretrained(output_dir)
        self.tokenizer.save_pretrained(output_dir)
        info = {
            "config": asdict(self.config),
            "steps": self.global_step,
            "samples": self.samples_seen,
            "final": metrics,
        }
        write_atomic(output_dir / "training.json", json.dumps(info, indent=1) + "\n")


# --------------------------------------------------------------------------------------------------- helpers


def _init_distributed() -> tuple[int, int]:
    """(rank, world size): one process, or the data-parallel group ``accelerate launch`` / ``torchrun`` set up."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def split_problems(env: gym.Env, split: str) -> Sequence[int] | None:
    """The problems of a split of ``env``'s task; None for a procedural task (no ``split_indices``, or it says None)."""
    split_indices = getattr(env.unwrapped, "split_indices", None)
    return split_indices(split) if split_indices is not None else None


def _device(name: str) -> str:
    if name != "auto":
        return name
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Parses the flags (``--help`` lists them) and trains.

    Raises:
        ValueError: A bad flag or configuration (one line: see :func:`agents.cli.parse`).
    """
    config = parse(GRPOConfig, argv, "reason-gym train grpo", description=__doc__.split("\n\n")[0])
    metrics = GRPOTrainer(config).train()
    if int(os.environ.get("RANK", "0")) == 0:
        shown = {k: round(v, 4) for k, v in metrics.items() if k.startswith(("rewards/", "eval/"))}
        print(f"saved {config.output_dir or Path(config.run_dir) / 'model'}: {json.dumps(shown)}")
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return metrics


if __name__ == "__main__":
    raise SystemExit(run_script(main, "grpo"))
