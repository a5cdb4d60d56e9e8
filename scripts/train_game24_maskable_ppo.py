"""Train sb3-contrib MaskablePPO on the Game of 24 and compare it with random valid moves on the test split.

The text env ``reason_gym/Game24-v0`` is wrapped with :class:`~reason_gym.wrappers.DiscreteActions`: an action is
one of 36 candidate moves (an operation on a pair of number slots), impossible moves are masked, and the
observation is :class:`~reason_gym.wrappers.Game24NumbersEncoder`'s features of the numbers left and of each
move's result. An episode is always four actions: three steps, then the answer they spell out (outcome reward 1
if it makes 24). Training also rewards each step that leaves a solvable position (the env's ``step_solvable``
component, weight ``--step-solvable``, 1.0 by default; the exact solver decides): in our runs it roughly doubled
test accuracy over the outcome reward alone. Evaluation counts outcomes only.

The policy trains on the train split (1,262 puzzles) and is evaluated, deterministically and with masks, on every
test puzzle (the 100 that Tree of Thoughts uses, the hardest by human solve time); the baseline picks uniformly
among the valid moves on the same puzzles, averaged over a few seeds.

Usage::

    python scripts/train_game24_maskable_ppo.py --timesteps 200000 --out results.json

Needs the ``rl`` extra (torch, stable-baselines3, sb3-contrib).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.env_util import make_vec_env

import reason_gym  # noqa: F401  (registers the environments)
from reason_gym.wrappers import DiscreteActions, Game24NumbersEncoder

HYPERPARAMETERS: dict[str, Any] = {
    "learning_rate": 1e-3,
    "n_steps": 256,  # per env and rollout; an episode is 4 steps, so a rollout of 8 envs holds 512 episodes
    "batch_size": 256,
    "n_epochs": 4,
    "gamma": 1.0,  # a fixed 4-step horizon: nothing to discount
    "gae_lambda": 0.95,
    "ent_coef": 0.01,
    "policy_kwargs": {"net_arch": [128, 128]},
}

Chooser = Callable[[np.ndarray, np.ndarray], int]
"""``choose(observation, mask) -> action``."""


def make_env(split: str, step_solvable: float = 0.0) -> DiscreteActions:
    """A Game24 env on ``split`` with masked discrete actions and number features."""
    weights = {"step_solvable": step_solvable} if step_solvable else None
    env = gym.make("reason_gym/Game24-v0", split=split, reward_weights=weights)
    return DiscreteActions(env, Game24NumbersEncoder())


def solves(env: DiscreteActions, index: int, choose: Chooser) -> bool:
    """Whether ``choose`` solves test puzzle ``index``."""
    obs, _ = env.reset(options={"index": index, "split": "test"})
    while True:
        obs, _, terminated, truncated, info = env.step(choose(obs, env.action_masks()))
        if terminated or truncated:
            return bool(info.get("is_correct", False))


def random_valid(seed: int) -> Chooser:
    """Uniformly random valid moves."""
    rng = np.random.default_rng(seed)
    return lambda obs, mask: int(rng.choice(np.flatnonzero(mask)))


def evaluate(model: MaskablePPO, random_seeds: Sequence[int]) -> dict[str, dict[str, Any]]:
    """Solved counts on every test puzzle: the deterministic policy, and random valid moves for each seed."""
    env = make_env("test")
    puzzles = range(len(env.unwrapped.split_indices("test")))

    def trained(obs: np.ndarray, mask: np.ndarray) -> int:
        return int(model.predict(obs, deterministic=True, action_masks=mask)[0])

    solved = sum(solves(env, i, trained) for i in puzzles)
    random_solved = [sum(solves(env, i, random_valid(seed)) for i in puzzles) for seed in random_seeds]
    mean_random = float(np.mean(random_solved))
    return {
        "maskable_ppo": {"solved": solved, "total": len(puzzles), "accuracy": solved / len(puzzles)},
        "random_valid": {
            "solved": mean_random,
            "total": len(puzzles),
            "accuracy": mean_random / len(puzzles),
            "solved_per_seed": random_solved,
        },
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train MaskablePPO on the Game of 24; compare with random moves.")
    parser.add_argument("--timesteps", type=int, default=200_000, help="environment steps of training")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training run")
    parser.add_argument("--n-envs", type=int, default=8, help="envs stepped together (in one process)")
    parser.add_argument("--step-solvable", type=float, default=1.0, help="weight of the step_solvable reward (0: off)")
    parser.add_argument("--random-seeds", type=int, default=5, help="seeds the random baseline is averaged over")
    parser.add_argument("--device", default="cpu", help="torch device (a small MLP is fastest on cpu)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for a small MLP)")
    parser.add_argument("--out", help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    if min(args.timesteps, args.n_envs, args.random_seeds, args.threads) < 1:
        parser.error("--timesteps, --n-envs, --random-seeds and --threads must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    hyperparameters = dict(HYPERPARAMETERS)
    # A rollout is at least n_steps * n_envs steps: keep it within a small budget (e.g. a smoke test).
    hyperparameters["n_steps"] = min(hyperparameters["n_steps"], max(8, args.timesteps // args.n_envs))
    hyperparameters["batch_size"] = min(hyperparameters["batch_size"], hyperparameters["n_steps"] * args.n_envs)
    env_kwargs = {"split": "train", "step_solvable": args.step_solvable}
    vec_env = make_vec_env(make_env, n_envs=args.n_envs, seed=args.seed, env_kwargs=env_kwargs)
    model = MaskablePPO("MlpPolicy", vec_env, seed=args.seed, device=args.device, **hyperparameters)
    start = time.perf_counter()
    model.learn(total_timesteps=args.timesteps)
    train_seconds = time.perf_counter() - start
    results = evaluate(model, random_seeds=range(args.random_seeds))

    total = results["maskable_ppo"]["total"]
    print(f"trained for {args.timesteps} steps in {train_seconds:.0f} s; evaluated on the {total} test puzzles")
    print(f"{'policy':<14} {'solved':>8} {'accuracy':>9}")
    for name, row in results.items():
        print(f"{name:<14} {row['solved']:>5g}/{total:<3} {row['accuracy']:>8.1%}")
    report = {
        "config": {**vars(args), "hyperparameters": hyperparameters},
        "train_seconds": train_seconds,
        "results": results,
    }
    if args.out:
        with open(args.out, "w") as file:
            json.dump(report, file, indent=2)
    return report


if __name__ == "__main__":
    main()
