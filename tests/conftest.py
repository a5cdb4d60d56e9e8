"""Fixtures shared by the tests: a tiny randomly initialised character model (built, never downloaded), and the
benchmark scripts as modules."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


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


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """Imports ``benchmarks/<name>.py`` (a folder of scripts, not a package) so a test can call its functions."""

    def load(name: str) -> ModuleType:
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load
