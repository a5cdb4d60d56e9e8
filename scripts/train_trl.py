"""GRPO with TRL's ``GRPOTrainer`` on any reason_gym environment, rewarded by the environment itself.

    python scripts/train_trl.py                                    # the embedded tiny model, Game24, step by step
    python scripts/train_trl.py --mode rewards --steps 20          # single-turn: whole completions, scored by env.step
    python scripts/train_trl.py --env-id reason_gym/Arithmetic-v0 --env-kwargs reward_weights.step_check=1
    python scripts/train_trl.py --model Qwen/Qwen2.5-0.5B-Instruct --env-id reason_gym/GSM8K-v0 --conversational \\
        --batch-size 16 --group-size 8 --max-completion-length 512     # a GPU and a hub model

Two ways to plug the environment into TRL (see docs/integrations.md):

- ``--mode rollout`` (default): :class:`agents.integrations.trl.EnvRollout` is TRL's ``rollout_func``; it plays
  each episode step by step with the trainer's current weights (one line per step, the env's feedback between steps
  masked out of the loss by ``env_mask``), and TRL's reward is the sum of the step rewards the env gave.
- ``--mode rewards``: TRL generates each completion in one go; :func:`reason_gym.integrations.trl.make_reward_funcs`
  cuts it into steps and an answer and plays them through ``env.step``.

Either way TRL logs ``rewards/total/mean`` (the episode's return, what it trains on) and one ``rewards/<component>``
per weighted reward component (logged only). The dataset is the first ``--limit`` problems of ``--split``
(``reason_gym.integrations.trl.make_dataset``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents.cli import parse, run_script
from reason_gym.integrations.trl import check_env_id, make_dataset, make_env, make_reward_funcs, reward_weights


@dataclass
class TrainTRLConfig:
    """GRPO with TRL's GRPOTrainer on a reason_gym environment (see the module docstring)."""

    env_id: str = "reason_gym/Game24-v0"
    """any registered id"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """for gymnasium.make, as a JSON object or KEY=VALUE pairs"""
    mode: Literal["rollout", "rewards"] = "rollout"
    """rollout: step by step through TRL's rollout_func; rewards: single-turn completions scored by env.step"""
    split: str | None = None
    """the problems' split (None: train where the env has one, else its default)"""
    limit: int | None = 256
    """the first this many problems of the split (None: all; required for procedural tasks)"""
    conversational: bool | None = None
    """chat prompts with the task's system prompt (None: when the tokenizer has a chat template)"""
    model: str = "tiny"
    """tiny (the embedded model), a folder or a hub id"""
    steps: int = 4
    """training steps"""
    group_size: int = 4
    """G: completions per prompt"""
    batch_size: int = 8
    """completions per training step (a multiple of the group size)"""
    max_completion_length: int = 128
    """tokens per completion (rollout: the whole transcript of an episode)"""
    max_step_tokens: int = 64
    """rollout: the longest step"""
    temperature: float = 1.0
    """sampling temperature"""
    learning_rate: float = 1e-5
    """AdamW"""
    beta: float = 0.0
    """KL coefficient (0: no reference model)"""
    loss_type: Literal["grpo", "bnpo", "dr_grpo", "dapo"] = "dapo"
    """TRL's aggregation of token losses"""
    seed: int = 0
    """TRL's seed"""
    output_dir: str = "runs/trl"
    """TRL's output folder (no checkpoints are saved)"""
    num_threads: int | None = None
    """torch CPU threads (None: 1 for a model under 20M parameters, as the project's own policies)"""
    out: str | None = None
    """write the log history and the throughput to this JSON file"""

    def __post_init__(self) -> None:
        check_env_id(self.env_id)  # before any model loads
        if self.group_size < 2 or self.batch_size % self.group_size:
            raise ValueError("--group-size must be >= 2 and divide --batch-size")
        if self.steps < 1 or self.max_completion_length < 1 or self.max_step_tokens < 1:
            raise ValueError("--steps, --max-completion-length and --max-step-tokens must be >= 1")


def default_split(config: TrainTRLConfig) -> str | None:
    """The train split where the env has one (never its test split by default), else the env's own."""
    if config.split is not None:
        return config.split
    base = make_env(config.env_id, **config.env_kwargs).unwrapped
    return "train" if "train" in getattr(base, "available_splits", ()) else getattr(base, "split", None)


def load(config: TrainTRLConfig) -> tuple[Any, Any]:
    import torch

    from agents.policies.hf import SMALL_MODEL_PARAMETERS, configure_threads, load_model_and_tokenizer

    if config.model == "tiny":
        from agents.models import TINY_MODEL_DIR

        name = str(TINY_MODEL_DIR)
    else:
        name = config.model
    cuda = torch.cuda.is_available()
    model, tokenizer = load_model_and_tokenizer(name, dtype=torch.bfloat16 if cuda else torch.float32)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if not cuda:
        small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
        configure_threads(config.num_threads or (1 if small else None))
    return model, tokenizer


def main(argv: Sequence[str] | None = None) -> int:
    config = parse(TrainTRLConfig, argv, "train_trl.py", description=__doc__.split("\n\n")[0])
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    import torch
    from transformers.utils import logging as transformers_logging
    from trl import GRPOConfig, GRPOTrainer

    transformers_logging.disable_progress_bar()
    split = default_split(config)
    model, tokenizer = load(config)
    conversational = config.conversational
    if conversational is None:
        conversational = bool(getattr(tokenizer, "chat_template", None))
    dataset = make_dataset(
        config.env_id, split=split, limit=config.limit, conversational=conversational, **config.env_kwargs
    )
    rollout = None
    if config.mode == "rollout":
        from agents.integrations.trl import EnvRollout

        rollout = EnvRollout(config.env_id, max_step_tokens=config.max_step_tokens, **config.env_kwargs)
        funcs = rollout.reward_funcs()
    else:
        funcs = make_reward_funcs(config.env_id, **config.env_kwargs)
    cuda = torch.cuda.is_available()
    args = GRPOConfig(
        output_dir=config.output_dir,
        use_cpu=not cuda,
        bf16=cuda,  # TRL's default autocasts to bf16 even on CPU
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        seed=config.seed,
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size,
        num_generations=config.group_size,
        max_completion_length=config.max_completion_length,
        temperature=config.temperature,
        beta=config.beta,
        loss_type=config.loss_type,
        learning_rate=config.learning_rate,
        reward_weights=reward_weights(funcs),
        remove_unused_columns=False,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        rollout_func=rollout,
    )
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # TRL's raw dict of every log; the summary below says what matters
    print(
        f"train_trl: {config.env_id} {split or ''} ({len(dataset)} problems), mode {config.mode}, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters on {'cuda' if cuda else 'cpu'}, "
        f"{config.steps} steps of {config.batch_size} completions (G={config.group_size})",
        flush=True,
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    logs = [h for h in trainer.state.log_history if "rewards/total/mean" in h]
    samples = config.steps * config.batch_size
    for log in logs:
        parts = [f"{k.split('/')[1]} {log[k]:+.3f}" for k in log if k.startswith("rewards/") and k.endswith("/mean")]
        length = log.get("completions/mean_length", float("nan"))
        print(f"step {log['step']}: reward {', '.join(parts)}; mean length {length:.1f} tokens", flush=True)
    print(f"{samples} completions in {seconds:.1f} s: {samples / seconds:.1f} samples/s")
    if config.out:
        with open(config.out, "w", encoding="utf-8") as file:
            json.dump(
                {"seconds": seconds, "samples_per_s": samples / seconds, "log_history": trainer.state.log_history},
                file,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, "train_trl.py"))
