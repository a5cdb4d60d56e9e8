"""A policy backed by a Hugging Face transformers causal LM (CPU or GPU).

Each call turns the states into prompts (:mod:`agents.policies.prompts`), pads the batch on the left (so every row's
last prompt token sits at the same position and generation appends to all rows at once), and samples ``n``
continuations per state (KV cache on) until the step separator, a newline. Every candidate carries its
generated-token count and the sum of its tokens' log-probabilities under the distribution it was sampled from
(temperature and top-p applied; the model's own distribution for greedy decoding).

Sampling runs through ``model.generate``, or, for the Llama models that :func:`agents.policies.fast_decode.supports`
accepts (the embedded tiny model among them), through the hand-written loop of :mod:`agents.policies.fast_decode`:
the same distributions and the same draws from torch's RNG, without ``generate``'s per-token overhead (about twice
as fast for small models).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agents.policies import fast_decode as fast
from agents.policies.base import Candidate
from agents.policies.prompts import PromptFormat, default_prompt
from reason_gym.core import EpisodeState, TaskSpec


def available_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def configure_threads(num_threads: int | None = None) -> int:
    """Sets torch's intra-op threads: ``num_threads``, or at most the cores this process may use.

    torch defaults to the machine's physical cores, which in a container limited to a few of them oversubscribes
    the CPU (every matmul waits on threads that cannot run). Returns the thread count now in force.
    """
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {num_threads}")
        torch.set_num_threads(num_threads)
    elif torch.get_num_threads() > available_cpus():
        torch.set_num_threads(available_cpus())
    return torch.get_num_threads()


SMALL_MODEL_PARAMETERS = 20_000_000
"""Below this size a model runs on one CPU thread by default: each op is too small to split, and with two threads
on a busy machine every op waits for a thread that another process holds (measured on 2 shared cores: the 0.8M
tiny model generates 2-4x faster, and trains 2-4x faster, on one thread)."""


def _looks_like_path(name: str) -> bool:
    """A hub id is ``name`` or ``org/name``; anything else that does not exist is a missing local path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)


def load_model_and_tokenizer(name_or_path: str | Path, *, device: str = "cpu", dtype: Any = None) -> tuple[Any, Any]:
    """Loads a causal LM and its tokenizer from a local folder or the Hugging Face hub (or its cache).

    Raises:
        FileNotFoundError: ``name_or_path`` is a path (absolute, relative, or with more than one ``/``) that does
            not exist.
        ValueError: the folder or hub id holds no loadable model; the message says why in one line.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = str(name_or_path)
    path = Path(name).expanduser()
    if not path.exists() and _looks_like_path(name):
        raise FileNotFoundError(f"no model at {name!r}: give a folder with config.json, or a hub id like 'org/name'")
    source = str(path) if path.exists() else name
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        # use_kernels=False: transformers >= 5.25 swaps in Hugging Face hub kernels by default; the plain torch modules
        # are what the fast decode loop reimplements and the GRPO trainer scores with (and hub kernels need network).
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype if dtype is not None else "auto", use_kernels=False
        )
    except (OSError, ValueError, KeyError) as error:  # missing files, no network, unknown architecture
        reason = str(error).strip().split("\n")[0]
        raise ValueError(f"cannot load a causal LM from {name!r}: {reason}") from None
    return model.to(device).eval(), tokenizer


def stop_token_ids(tokenizer: Any, stop: str) -> list[int]:
    """Ids of every token whose text contains ``stop`` (a single character), plus the EOS token.

    Generation can then stop on token ids alone: a newline may hide inside tokens like ``".\\n"`` or ``"\\n\\n"``
    of a BPE vocabulary, and each of those ends a step as well. For the character tokenizer this is just ``\\n``.
    """
    if len(stop) != 1:
        raise ValueError(f"stop must be a single character, got {stop!r}")
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    ids = [i for i, text in enumerate(texts) if stop in text]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    if not ids:
        raise ValueError(f"no token of this tokenizer contains the stop {stop!r}")
    return ids


class HFPolicy:
    """Samples next steps from a transformers causal LM.

    Args:
        model: A ``*ForCausalLM`` model (in eval mode on its device).
        tokenizer: Its tokenizer.
        temperature: Default sampling temperature; 0 means greedy decoding.
        top_p: Nucleus sampling: sample from the smallest set of tokens whose probability reaches ``top_p``.
        max_new_tokens: The longest step, in tokens; a step cut there has no trailing separator.
        stop: The step separator (one character); generation of a candidate ends at the first token containing it.
        prompt: How a state becomes input text (default: :func:`~agents.policies.prompts.default_prompt`).
        task: The task of the observation strings it is given, for the default chat prompt's system prompt (state
            snapshots carry their own task).
        max_batch_sequences: At most this many sequences (states times ``n``) are generated at once.
        num_threads: torch CPU threads, set process-wide (default: one for a model under
            :data:`SMALL_MODEL_PARAMETERS`, else the cores this process may use; see :func:`configure_threads`).
        fast_decode: Sample with :mod:`agents.policies.fast_decode` when it supports the model (checked at every
            call); False always uses ``model.generate``.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        stop: str = "\n",
        prompt: PromptFormat | None = None,
        task: TaskSpec | None = None,
        max_batch_sequences: int = 64,
        num_threads: int | None = None,
        fast_decode: bool = True,
    ) -> None:
        if temperature < 0 or not 0 < top_p <= 1 or max_new_tokens < 1 or max_batch_sequences < 1:
            raise ValueError(
                "need temperature >= 0, 0 < top_p <= 1, max_new_tokens >= 1 and max_batch_sequences >= 1; got "
                f"{temperature}, {top_p}, {max_new_tokens}, {max_batch_sequences}"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.stop = stop
        self.prompt = prompt if prompt is not None else default_prompt(tokenizer, task)
        self.max_batch_sequences = max_batch_sequences
        self.fast_decode = fast_decode
        self._decoder: fast.LlamaDecoder | None = None  # built at the first fast call, for self.model
        self._encoded: dict[str, list[int]] = {}  # the last encode()'s prompts and their ids
        self.stop_ids = stop_token_ids(tokenizer, stop)
        self.pad_id = next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)
        if model.device.type == "cpu":
            if num_threads is None and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS:
                num_threads = 1
            configure_threads(num_threads)

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | Path, *, device: str = "cpu", dtype: Any = None, **kwargs: Any
    ) -> HFPolicy:
        """Loads a model from a local folder or the hub; ``kwargs`` go to :class:`HFPolicy`."""
        model, tokenizer = load_model_and_tokenizer(name_or_path, device=device, dtype=dtype)
        return cls(model, tokenizer, **kwargs)

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
        prompts = self.encode(states)
        # Longest prompts first, in chunks of at most max_batch_sequences sequences: rows of similar length share a
        # batch, so left padding wastes little compute.
        order = sorted(range(len(states)), key=lambda i: -len(prompts[i]))
        per_chunk = max(1, self.max_batch_sequences // n)
        out: list[list[Candidate]] = [[] for _ in states]
        for start in range(0, len(order), per_chunk):
            chunk = order[start : start + per_chunk]
            candidates = self._generate([prompts[i] for i in chunk], n, temperature)
            for row, i in enumerate(chunk):
                out[i] = candidates[row * n : (row + 1) * n]
        return out

    def encode(self, states: Sequence[str | EpisodeState]) -> list[list[int]]:
        """The token ids of each state's prompt, as :meth:`propose` conditions on them.

        The last call's are kept: a caller that encodes the states it then proposes for (a trainer storing each
        step's prompt ids) tokenizes them once. A prompt repeated in one call (a group's copies of a question) is
        tokenized once too."""
        texts = [self.prompt(state) for state in states]
        missing = [text for text in dict.fromkeys(texts) if text not in self._encoded]
        if missing:
            ids = self.tokenizer(missing, add_special_tokens=self.prompt.add_special_tokens)["input_ids"]
            self._encoded |= dict(zip(missing, ids, strict=True))
        self._encoded = {text: self._encoded[text] for text in texts}  # only this call's, for the next
        return [list(self._encoded[text]) for text in texts]

    def weights_changed(self) -> None:
        """Says that the model's weights were changed in place. The fast decode loop notices most updates itself
        (an optimizer step, ``load_state_dict`` and ``p.mul_()`` bump the parameters' version counters, which it
        checks), but not those that leave the counters as they were: torch's fused AdamW on CPU and writes through
        ``p.data``. After such an update, call this before the next :meth:`propose`, or it samples from the old
        weights."""
        if self._decoder is not None:
            self._decoder.invalidate()

    def uses_fast_decode(self) -> bool:
        """Whether the next call samples through :mod:`agents.policies.fast_decode` (else ``model.generate``)."""
        return self.fast_decode and fast.supports(self.model)

    @torch.inference_mode()
    def _generate(self, prompts: list[list[int]], n: int, temperature: float) -> list[Candidate]:
        """``n`` candidates for each prompt, prompt-major (the ``n`` of prompt 0 first)."""
        greedy = temperature == 0
        if greedy and n > 1:  # greedy decoding has one outcome: decode once, repeat it
            once = self._generate(prompts, 1, 0.0)
            return [candidate for candidate in once for _ in range(n)]
        if self.uses_fast_decode():
            if self._decoder is None or self._decoder.model is not self.model:
                self._decoder = fast.LlamaDecoder(self.model)
            # (B * n, T) ids and their log-probs; the decoder rebuilds its fused weights if the model changed.
            new, logprobs = fast.sample(
                self._decoder,
                prompts,
                n,
                temperature=temperature,
                top_p=self.top_p,
                max_new_tokens=self.max_new_tokens,
                stop_ids=self.stop_ids,
                pad_id=self.pad_id,
            )
        else:
            new, logprobs = self._hf_generate(prompts, n, temperature)
        return self._candidates(new, logprobs)

    def _hf_generate(self, prompts: list[list[int]], n: int, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples with ``model.generate``: the generated ids (B * n, T), pad after a row stops, and each one's
        log-probability under the distribution it was drawn from (B * n, T)."""
        from transformers import GenerationConfig

        greedy = temperature == 0
        device = self.model.device
        width = max(len(ids) for ids in prompts)
        # Left padding: (B, width) ids with pad tokens in front, and a mask that hides them. The model derives
        # position ids from the mask, so a padded row computes what it would alone.
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention_mask[row, width - len(ids) :] = 1
        # Every sampling field is set: generate() fills the unset ones from the model's generation_config, which
        # for instruct models often carries its own top_k, temperature or repetition penalty.
        config = GenerationConfig(
            do_sample=not greedy,
            temperature=None if greedy else temperature,
            top_p=None if greedy else self.top_p,
            top_k=None if greedy else 0,
            min_p=None,
            typical_p=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            num_beams=1,
            num_return_sequences=n,
            max_new_tokens=self.max_new_tokens,
            eos_token_id=self.stop_ids,
            pad_token_id=self.pad_id,
            output_scores=True,
            return_dict_in_generate=True,
        )
        output = self.model.generate(
            input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), generation_config=config
        )
        new = output.sequences[:, width:]  # (B * n, T): generated ids, pad after a row stops
        # scores: T tensors (B * n, V), the logits after temperature and top-p (raw logits when greedy), so their
        # log-softmax is the log-probability under the distribution each token was drawn from.
        logprobs = torch.stack(
            [
                step.float().log_softmax(-1).gather(1, new[:, t : t + 1]).squeeze(1)
                for t, step in enumerate(output.scores)
            ],
            dim=1,
        )  # (B * n, T)
        return new, logprobs

    def _candidates(self, new: torch.Tensor, logprobs: torch.Tensor) -> list[Candidate]:
        """One candidate per row of the generated ids ``new`` (R, T) and their log-probs ``logprobs`` (R, T)."""
        # A row's tokens run up to and including its first stop token (or to the end when it never stopped).
        is_stop = torch.isin(new, torch.tensor(self.stop_ids, device=new.device))  # (R, T)
        first_stop = torch.where(is_stop.any(1), is_stop.int().argmax(1) + 1, new.shape[1])  # (R,)
        candidates = []
        for row in range(new.shape[0]):
            count = int(first_stop[row])
            text = self.tokenizer.decode(new[row, :count], skip_special_tokens=True)
            text = text.split(self.stop, 1)[0]
            token_ids = tuple(new[row, :count].tolist())
            candidates.append(Candidate(text, count, float(logprobs[row, :count].sum()), token_ids))
        return candidates
