"""Fixtures shared by the tests: a tiny randomly initialised character model (built, never downloaded), the
benchmark scripts as modules, and the project's scripts run as a user runs them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="session", autouse=True)
def sb3_log_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """stable-baselines3 makes an empty ``SB3-<date>`` folder in the system temp dir on every ``learn()`` unless
    ``SB3_LOGDIR`` names one: point it (and the scripts' subprocesses, which inherit it) into pytest's temp dir."""
    os.environ.setdefault("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3")))


@pytest.fixture(scope="session")
def char_tokenizer() -> Any:
    pytest.importorskip("transformers")
    from agents.models import build_char_tokenizer

    return build_char_tokenizer()


@pytest.fixture(scope="session")
def random_model(char_tokenizer: Any) -> Any:
    """A 2-layer Llama with hidden size 32 (30k parameters), random but fixed weights.

    A larger initialisation spread than Llama's default makes its greedy continuations longer than one character
    (with the default, the newline wins at once and every step is empty).
    """
    import torch
    from transformers import LlamaForCausalLM

    from agents.models import tiny_llama_config

    config = tiny_llama_config(len(char_tokenizer), hidden_size=32, num_layers=2, num_heads=2)
    config.initializer_range = 0.3
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def run_script() -> Callable[..., subprocess.CompletedProcess]:
    """Runs ``python <path> <args>`` (a path from the project root) in a subprocess from the root, with this
    environment (REASON_GYM_DATA_DIR passes through) and the project importable; fails the test with the tail of
    its output unless it exits 0 (``check=False``: the caller looks at the exit code itself)."""

    def run(path: str, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        done = subprocess.run(
            [sys.executable, str(ROOT / path), *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": python_path},
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
        )
        if check:
            assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        return done

    return run


def import_file(path: Path) -> ModuleType:
    """Imports a Python file from a folder of scripts (not a package) so a test can call its functions."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses (with postponed annotations) look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """Imports ``benchmarks/<name>.py``."""
    return lambda name: import_file(ROOT / "benchmarks" / f"{name}.py")


@pytest.fixture(scope="session")
def eval_policy_script() -> ModuleType:
    """``scripts/eval_policy.py``, imported once."""
    return import_file(ROOT / "scripts" / "eval_policy.py")
