"""Step data for PRMs (Monte-Carlo, exact and STaR labels): agents/training/prm_data.py.

python scripts/label_steps.py --problems 50 --k 4 --out runs/prm_data/game24        # Game24 train, the tiny model
python scripts/label_steps.py --part val --problems 20 --out runs/prm_data/game24_val  # held-out validation problems
python scripts/label_steps.py --mode star --attempts 8 --out runs/prm_data/game24_star  # STaR: verified solutions
python scripts/label_steps.py --env reason_gym/Arithmetic-v0 --env-kwargs num_operations=2 --out runs/prm_data/arith
python scripts/label_steps.py --help                                                  # every setting
"""

import sys

from agents.cli import run_script
from agents.training.prm_data import main

if __name__ == "__main__":
    sys.exit(run_script(main, "label_steps.py"))
