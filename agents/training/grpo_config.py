"""The configuration of a GRPO run (:class:`GRPOConfig`): every field is a command-line flag of
``reason-gym train grpo`` (``group_size`` is ``--group-size``, its docstring the help), and a configuration that
cannot work is refused before anything loads."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Any, Literal

import gymnasium as gym

from agents.training.policy_loss import LOSS_TYPES
from reason_gym.cli import parse_kwargs


@dataclass
class GRPOConfig:
    """GRPO on a reasoning environment (every field is a command-line flag: ``--group-size 8``)."""

    # Task
    env_id: str = "reason_gym/Game24-v0"
    """the environment to train on (any registered id; ``module:id`` imports the module first)"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """keyword arguments for ``gymnasium.make``: one JSON object, ``'{"reward_weights": {"step_solvable": 0.5}}'``,
    or KEY=VALUE pairs, ``max_steps=8 reward_weights.step_solvable=0.5`` (a JSON string works from Python too)"""
    split: str = "train"
    """the split problems are drawn from (uniformly, with replacement)"""
    train_problems: int = 0
    """draw only from the split's first this many problems (0: the whole split); a handful checks that a run can
    learn at all, before a long run on the whole split"""
    eval_split: str = "test"
    """the split of the greedy top-1 evaluations (its first ``eval_problems`` problems)"""
    eval_problems: int = 100
    """problems per evaluation (0: no evaluation)"""
    eval_every: int = 0
    """steps between evaluations; they also run before the first step and after the last (0: only those)"""
    eval_env_kwargs: dict[str, Any] = field(default_factory=dict)
    """keyword arguments that override ``env_kwargs`` for the evaluations (same forms), to train on one kind of
    problem and evaluate on another: ``--env-kwargs num_operations=1 --eval-env-kwargs num_operations=3``"""

    # Model and run
    model: str = "tiny"
    """the starting policy: ``tiny`` (the embedded model), a local folder or a hub id"""
    output_dir: str | None = None
    """where the trained model and tokenizer are saved (``save_pretrained``), with ``training.json`` (default:
    ``run_dir/model``)"""
    run_dir: str = "runs/grpo"
    """TensorBoard logs and the resumable checkpoint"""
    resume: bool = True
    """continue from ``run_dir/checkpoint.pt`` when it exists"""
    seed: int = 0
    """seeds problem choice, sampling and batch order"""
    device: str = "auto"
    """``cpu``, ``cuda``, or ``auto`` (CUDA when available; each data-parallel process takes its LOCAL_RANK's GPU)"""
    num_threads: int | None = None
    """torch CPU threads (default: one for models under 20M parameters, else every core this process may use)"""
    generation_backend: Literal["hf", "vllm"] = "hf"
    """sample rollouts with transformers, or with vLLM (weights copied to it after every step)"""
    vllm_gpu_memory_utilization: float = 0.3
    """with ``generation_backend=vllm`` on a GPU: the share of its memory vLLM may take (the rest is the trainer's)"""
    vectorization: Literal["sync", "async"] = "sync"
    """Gymnasium vector env mode for the rollouts (async: one process per environment copy)"""
    rollout_workers: int = 0
    """play the rollout groups in this many Ray actors (0: in this process, the default). Each loads the model by
    path, gets the new weights after every step and plays whole groups, each seeded on its own (the same groups for
    any worker count, see agents.integrations.ray_rollouts); the update stays here. The cluster: ``RAY_ADDRESS``
    when set, else a local one started for the run. Needs ``pip install 'reason-gym[ray]'``"""
    progress: bool = True
    """show a progress bar"""

    # Sampling
    total_steps: int = 100
    """training steps (one rollout batch and its updates each)"""
    batch_size: int = 64
    """episodes per rollout batch (per process): ``batch_size / group_size`` problems"""
    group_size: int = 8
    """G: episodes per problem"""
    temperature: float = 1.0
    """sampling temperature (log-probabilities are computed at the same temperature)"""
    max_new_tokens: int = 48
    """the longest step, in tokens"""
    max_turns: int = 16
    """the most steps per episode (environments also have their own step limits)"""

    # Rewards and advantages
    advantage: Literal["outcome", "process"] = "outcome"
    """outcome: one advantage per episode; process: one per step, from the pooled step rewards"""
    scale_rewards: bool = True
    """divide by the group's (or pool's) std; False centres only (Dr. GRPO)"""
    prm: str | None = None
    """a process reward model whose step scores are added to the step rewards: ``rule`` or ``hf:PATH``"""
    prm_weight: float = 1.0
    """the weight of the PRM's scores in the step rewards"""
    dynamic_sampling: bool = True
    """drop groups whose rewards are all equal, and sample more (DAPO)"""
    max_sampling_rounds: int = 3
    """with dynamic sampling: the most rollout batches per step to fill it with informative groups"""

    # Loss and optimisation
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"
    """aggregation of token losses (see agents.training.policy_loss); dapo weighs every token of a step the same"""
    epsilon_low: float = 0.2
    """the ratio is clipped below at 1 - epsilon_low"""
    epsilon_high: float = 0.28
    """... and above at 1 + epsilon_high (DAPO's clip-higher; set 0.2 for symmetric PPO clipping)"""
    beta: float = 0.0
    """KL coefficient towards the starting model (k3 estimator); 0 loads no reference model"""
    passes_per_batch: int = 2
    """optimisation passes over each rollout batch (the ratio uses the sampling policy's log-probs throughout)"""
    micro_batch_size: int = 16
    """episodes per forward/backward pass"""
    gradient_accumulation_steps: int = 2
    """micro-batches per optimizer step"""
    learning_rate: float = 1e-4
    """AdamW learning rate (constant)"""
    max_grad_norm: float = 1.0
    """gradient clipping"""

    # Logging and checkpoints
    checkpoint_every: int = 10
    """steps between resumable checkpoints (and always after the last)"""

    def __post_init__(self) -> None:
        """Refuses a configuration that cannot work, before anything is loaded."""
        problems = []
        if self.group_size < 2:
            problems.append(f"group_size must be >= 2 (group-relative advantages need a group), got {self.group_size}")
        elif self.batch_size < self.group_size or self.batch_size % self.group_size:
            problems.append(
                f"batch_size ({self.batch_size}) must be a positive multiple of group_size ({self.group_size}): "
                f"e.g. --batch-size {max(1, self.batch_size // self.group_size) * self.group_size}"
            )
        if self.beta < 0:
            problems.append(f"beta must be >= 0 (0 disables the KL penalty), got {self.beta}")
        if self.loss_type not in LOSS_TYPES:
            problems.append(f"unknown loss_type {self.loss_type!r}; choose from {', '.join(LOSS_TYPES)}")
        if self.advantage not in ("outcome", "process"):
            problems.append(f"advantage must be 'outcome' or 'process', got {self.advantage!r}")
        if not (0 <= self.epsilon_low < 1 and self.epsilon_high >= 0):
            problems.append(
                f"need 0 <= epsilon_low < 1 and epsilon_high >= 0, got {self.epsilon_low}, {self.epsilon_high}"
            )
        if self.temperature <= 0:
            problems.append(f"temperature must be > 0 to sample a group (got {self.temperature})")
        if self.train_problems < 0:
            problems.append(f"train_problems must be >= 0 (0: the whole split), got {self.train_problems}")
        for name in ("total_steps", "passes_per_batch", "micro_batch_size", "gradient_accumulation_steps",
                     "max_new_tokens", "max_turns", "checkpoint_every", "max_sampling_rounds"):  # fmt: skip
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        problems += self._rollout_worker_problems()
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("env_kwargs", "eval_env_kwargs"):
            try:  # a JSON string (the form before these were dictionaries) is read into one
                setattr(self, name, parse_kwargs(getattr(self, name), name))
            except ValueError as error:
                problems.append(str(error))
        if not _is_registered(self.env_id):
            problems.append(f"environment {self.env_id!r} is not registered; `reason-gym list` shows the ids")
        if problems:
            raise ValueError("bad GRPO configuration:\n  " + "\n  ".join(problems))

    def _rollout_worker_problems(self) -> list[str]:
        """What ``rollout_workers`` cannot honour: a negative count, no Ray, vLLM, data-parallel processes."""
        if self.rollout_workers < 0:
            return [f"rollout_workers must be >= 0 (0: rollouts in this process), got {self.rollout_workers}"]
        if self.rollout_workers == 0:
            return []
        problems = []
        if find_spec("ray") is None:
            problems.append(
                f"rollout_workers={self.rollout_workers} needs Ray: pip install 'reason-gym[ray]' "
                "(or --rollout-workers 0 for rollouts in this process)"
            )
        if self.generation_backend != "hf":
            problems.append(
                f"rollout_workers={self.rollout_workers} samples with transformers in the Ray workers: drop "
                f"--generation-backend {self.generation_backend}, or use --rollout-workers 0"
            )
        world = os.environ.get("WORLD_SIZE", "1")
        if world.isdigit() and int(world) > 1:
            problems.append(
                f"rollout_workers={self.rollout_workers} runs with one trainer process, not under accelerate / "
                f"torchrun (WORLD_SIZE={world}): use one or the other"
            )
        return problems


def _is_registered(env_id: str) -> bool:
    import reason_gym  # noqa: F401  (registers the reason_gym/ ids)

    module, _, name = env_id.rpartition(":")
    if module:
        try:
            __import__(module)
        except ImportError:
            return False
    return name in gym.envs.registry
