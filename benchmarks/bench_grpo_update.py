"""The cost of a GRPO update in each batch layout: an episode's steps packed into one sequence, one sequence per
step, and an episode as one tree.

    python benchmarks/bench_grpo_update.py                                   # Arithmetic, 64 episodes
    python benchmarks/bench_grpo_update.py --env-id reason_gym/Game24-v0 --repeats 7 --json update.json

One rollout batch of the embedded model (``--episodes`` episodes in groups of 8, temperature 1, train split), then
the log-probabilities and gradients of every generated token, computed four ways in alternation (``--repeats``
times each; medians reported): packed (:func:`agents.training.batches.pack_steps`), one sequence per step, one tree
per episode (:func:`agents.training.batches.tree_of`: rejected steps as branches under a 4D attention mask), and the
trainer's choice per micro-batch (``auto``: whichever of the three runs the fewest token positions). Every layout
must give the per-step loss and gradients; the script checks it before timing.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import reason_gym  # noqa: F401  (registers the environments)
from agents.cli import parse, run_script
from agents.models import TINY_MODEL_DIR
from agents.policies.hf import HFPolicy, load_model_and_tokenizer
from agents.policies.prompts import encode_prompts
from agents.training.advantages import outcome_advantages
from agents.training.batches import CompletionLogits, Row, micro_batches, pack_steps, row_logprobs, tree_of
from agents.training.rollouts import collect_groups

GROUP_SIZE = 8


def sample_episodes(
    env_id: str, episodes: int, seed: int, env_kwargs: dict[str, Any] | None = None
) -> tuple[Any, list[list[Row]]]:
    """The model, and one batch of its episodes as training rows (outcome advantages)."""
    torch.manual_seed(seed)
    model, tokenizer = load_model_and_tokenizer(TINY_MODEL_DIR, device="cpu")
    policy = HFPolicy(model, tokenizer, temperature=1.0, max_batch_sequences=episodes, num_threads=1)
    envs = gym.make_vec(env_id, num_envs=episodes, vectorization_mode="sync", **(env_kwargs or {}))
    indices = np.random.default_rng(seed).integers(1000, size=episodes // GROUP_SIZE)
    groups = collect_groups(
        envs,
        policy,
        lambda states: encode_prompts(tokenizer, policy.prompt, states),
        [{"index": int(i), "split": "train"} for i in indices],
        temperature=1.0,
        max_turns=16,
    )
    rows = []
    for group in groups:
        for episode, advantage in zip(group, outcome_advantages([e.reward for e in group]), strict=True):
            rows.append([Row(s.prompt_ids, s.completion_ids, float(advantage)) for s in episode.steps])
    return model.float().train(), rows


def loss_and_gradients(model: Any, rows: list[list[Row]], micro_batch_size: int, layout: str) -> tuple[float, Any]:
    """The policy-gradient loss summed over every generated token, and its gradient, one micro-batch at a time."""
    model.zero_grad(set_to_none=True)
    scorer, total = CompletionLogits(model), 0.0
    for batch in micro_batches(rows, micro_batch_size, layout=layout):
        logp, _ = row_logprobs(scorer, batch, temperature=1.0)
        loss = -(logp * batch.advantages * batch.mask).sum()
        loss.backward()
        total += loss.item()
    return total, torch.nn.utils.parameters_to_vector([p.grad for p in model.parameters()])


@dataclass
class UpdateBenchConfig:
    """The cost of a GRPO update in each batch layout (packed, one sequence per step, auto, tree)."""

    env_id: str = "reason_gym/Arithmetic-v0"
    """the task the episodes are sampled on"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """the env's keyword arguments (JSON or KEY=VALUE pairs), e.g. max_steps=4 (bench_grpo.py's Game24 workload)"""
    episodes: int = 64
    """episodes in the batch: a multiple of 8 (the group size)"""
    micro_batch_size: int = 32
    """episodes per forward/backward pass"""
    repeats: int = 5
    """timings of each way; medians are reported"""
    seed: int = 0
    """seeds the problems and the sampling"""
    json: str | None = None
    """write the results here"""

    def __post_init__(self) -> None:
        if self.episodes < GROUP_SIZE or self.episodes % GROUP_SIZE:
            raise ValueError(f"--episodes must be a positive multiple of {GROUP_SIZE}, got {self.episodes}")


def main(argv: list[str] | None = None) -> int:
    args = parse(UpdateBenchConfig, argv, "bench_grpo_update.py", description=__doc__.split("\n\n")[0])
    torch.set_num_threads(1)
    model, rows = sample_episodes(args.env_id, args.episodes, args.seed, args.env_kwargs)
    steps = sum(len(episode) for episode in rows)
    plain_loss, plain_grad = loss_and_gradients(model, rows, args.micro_batch_size, "steps")
    ways = ("packed", "steps", "auto", "tree")  # auto: the trainer's default, the cheapest of the other three
    for layout in ways:
        loss, grad = loss_and_gradients(model, rows, args.micro_batch_size, layout)
        if abs(loss - plain_loss) > 1e-3 * max(1.0, abs(plain_loss)) or not torch.allclose(
            grad, plain_grad, rtol=1e-4, atol=1e-4
        ):
            print(f"{layout} and per-step scoring disagree: loss {loss} against {plain_loss}")
            return 1
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeats):  # alternated, so machine noise hits every way alike
        for layout in ways:
            started = time.perf_counter()
            loss_and_gradients(model, rows, args.micro_batch_size, layout)
            seconds[layout].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    results = {
        "env_id": args.env_id,
        "episodes": len(rows),
        "steps_per_episode": round(steps / len(rows), 2),
        "sequences_packed": sum(len(pack_steps(episode)) for episode in rows),
        "sequences_tree": sum(len(tree_of(pack_steps(episode))) for episode in rows),
        "sequences_per_step": steps,
        "median_s": {name: round(value, 3) for name, value in medians.items()},
        "speedup_over_steps": {name: round(medians["steps"] / value, 2) for name, value in medians.items()},
    }
    print(
        f"{args.env_id}: {len(rows)} episodes, {results['steps_per_episode']} steps each; "
        f"{results['sequences_packed']} packed sequences, {results['sequences_tree']} trees, against {steps}"
    )
    print(
        f"loss and gradients (median of {args.repeats}): "
        + ", ".join(f"{name} {medians[name]:.3f} s ({results['speedup_over_steps'][name]}x)" for name in ways)
        + " (speed-up over one sequence per step)"
    )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, "bench_grpo_update.py"))
