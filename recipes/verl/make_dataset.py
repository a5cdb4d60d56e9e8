"""Writes verl's train and validation parquet files for a reason_gym task: one row per problem.

Each row has what verl's RLHFDataset reads (``prompt`` as chat messages, ``data_source``, ``reward_model``) and what
the reason_gym agent loop reads (``agent_name`` and ``extra_info``: the env id and the reset options ``index`` and
``split``). The agent loop builds its own prompt from the env's reset observation; ``prompt`` is only for verl's
length filter and logging.

    python recipes/verl/make_dataset.py --env-id reason_gym/Game24-v0 --out ~/data/reason_gym_game24
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import pandas as pd

import reason_gym  # noqa: F401  (registers the environments)


def rows(env_id: str, split: str, limit: int | None) -> list[dict]:
    env = gym.make(env_id)
    indices = env.unwrapped.split_indices(split)
    if indices is None and limit is None:
        raise ValueError(f"{env_id} has no fixed list of {split!r} problems: give a limit")
    count = len(indices) if indices is not None else limit
    out = []
    for index in range(count if limit is None else min(count, limit)):
        observation, _ = env.reset(options={"index": index, "split": split})
        out.append(
            {
                "data_source": env_id,
                "prompt": [{"role": "user", "content": observation}],
                "agent_name": "reason_gym_agent",
                "reward_model": {"style": "rule", "ground_truth": ""},
                "extra_info": {"env_id": env_id, "index": index, "split": split},
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env-id", default="reason_gym/Game24-v0")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--val-split", default="test")
    parser.add_argument("--train-limit", type=int, default=None, help="at most this many train problems")
    parser.add_argument("--val-limit", type=int, default=200)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows(args.env_id, args.train_split, args.train_limit)).to_parquet(args.out / "train.parquet")
    pd.DataFrame(rows(args.env_id, args.val_split, args.val_limit)).to_parquet(args.out / "val.parquet")
    print(f"wrote {args.out}/train.parquet and val.parquet")


if __name__ == "__main__":
    main()
