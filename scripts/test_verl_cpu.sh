#!/usr/bin/env bash
# Tests the verl adapters (agents/integrations/verl.py) for real on CPU, in a virtual environment of their own.
#
# verl 0.9.1 pins transformers >=5.5.3,<5.11, so it cannot share the main environment (transformers 5.23). Its
# agent loop (verl.experimental.agent_loop) also imports cachetools, uvicorn and fastapi, which verl does not declare. torch is
# installed first as the CPU wheel and pinned on every later pip line, so that pip never swaps in a CUDA build.
#
#   scripts/test_verl_cpu.sh                        # builds .venv-verl if it is not there, then the verl tests
#   VERL_VENV=/somewhere/else scripts/test_verl_cpu.sh
#   REBUILD_VENV=1 scripts/test_verl_cpu.sh         # rebuild the venv from scratch
#   scripts/test_verl_cpu.sh -k advantage           # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VERL_VENV:-.venv-verl}"
export REASON_GYM_DATA_DIR="${REASON_GYM_DATA_DIR:-$(cd .. && pwd)/shared/data}"
TORCH="torch==2.13.0"

started=$SECONDS
if [[ -n "${REBUILD_VENV:-}" || ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import verl.experimental.agent_loop, agents" 2>/dev/null
then
    python3 -m venv --clear "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "$TORCH"
    "$VENV/bin/python" -m pip install --quiet "$TORCH" "verl==0.9.1" "transformers>=5.5.3,<5.11" cachetools uvicorn fastapi
    # The repo without its extras (transformers comes from verl's pin), then its light dependencies and pytest.
    "$VENV/bin/python" -m pip install --quiet --no-deps -e .
    "$VENV/bin/python" -m pip install --quiet "$TORCH" "transformers>=5.5.3,<5.11" "gymnasium>=1.0,<2" "numpy>=1.24" \
        "tqdm>=4.60" "math-verify>=0.9,<1" "tyro>=0.9" "safetensors>=0.4" "tokenizers>=0.21" "pytest>=8"
fi
echo "install: $((SECONDS - started)) s"

# (the check above rebuilt the venv if verl did not import, so the tests run rather than skip)
tested=$SECONDS
"$VENV/bin/python" -m pytest -p no:cacheprovider -ra tests/integrations/verl_venv "$@"
echo "tests: $((SECONDS - tested)) s; total: $((SECONDS - started)) s"
