#!/usr/bin/env bash
# Installs reason_gym with every extra (except vLLM) into the active Python environment.
#
# torch goes in first, pinned to the CPU wheel, so that nothing later pulls a multi-GB CUDA build on a CPU machine.
# On a machine without a local CPU wheel, point pip at PyTorch's CPU index:
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/install.sh
# The pin lives here, not in pyproject.toml, so users of the package keep their own torch.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
python -m pip install --quiet -e ".[all]"
# Data only: ships the Tree-of-Thoughts Game-of-24 puzzles. Its metadata pins ancient numpy/sympy/openai, so it is
# never a dependency and is installed without its dependencies.
python -m pip install --quiet --no-deps "tree-of-thoughts-llm==0.1.0"
