"""SFT of the embedded character model on solver traces: agents/training/sft.py (also `reason-gym train sft`).

python scripts/train_sft.py                     # stage 1 of the shipped checkpoint, from scratch: runs/sft_tiny/
python scripts/train_sft.py --help              # every setting
python scripts/train_sft.py --init-model runs/sft_tiny/model --seed 22 --arithmetic-problems 57600 \
    --arithmetic-max-operations 3 --total-steps 2400 --learning-rate 1e-3 --warmup-steps 50 \
    --output-dir runs/sft_stage2/model --run-dir runs/sft_stage2     # stage 2 (docs/training.md has every stage)
"""

import sys

from agents.cli import run_script
from agents.training.sft import main

if __name__ == "__main__":
    sys.exit(run_script(main, "train_sft.py"))
