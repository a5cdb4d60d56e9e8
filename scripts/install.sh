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
python -m pip install --quiet -e ".[all]" "torch==2.13.0"
# Data only: ships the Tree-of-Thoughts Game-of-24 puzzles. Its metadata pins ancient numpy/sympy/openai, so it is
# never a dependency and is installed without its dependencies.
python -m pip install --quiet --no-deps "tree-of-thoughts-llm==0.1.0"
# The code sandbox isolates untrusted programs with bubblewrap (Debian/Ubuntu package `bubblewrap`).
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "note: bubblewrap (bwrap) is not installed; the code sandbox (HumanEval, MBPP) will refuse to run programs." >&2
    echo "      install it with: sudo apt-get install bubblewrap (or see docs/sandbox.md for partial isolation)" >&2
  fi
fi
