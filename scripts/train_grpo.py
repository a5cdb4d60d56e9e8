"""GRPO on a reasoning environment, from the embedded model by default (see agents/training/grpo.py).

python scripts/train_grpo.py                                   # Game24 train split, outcome advantages
python scripts/train_grpo.py --advantage process --env-kwargs '{"reward_weights": {"step_solvable": 0.5}}'
python scripts/train_grpo.py --env-kwargs max_steps=8 reward_weights.step_solvable=0.5   # KEY=VALUE pairs
python scripts/train_grpo.py --help                            # every setting
accelerate launch --multi_gpu --num_processes 2 scripts/train_grpo.py   # data-parallel (see the README)
"""

import sys

from agents.cli import run_script
from agents.training.grpo import main

if __name__ == "__main__":
    sys.exit(run_script(main, "train_grpo.py"))
