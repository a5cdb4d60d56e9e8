"""The embedded default model: a character-level tokenizer built locally and a small Llama-architecture config.

The checkpoint in ``agents/models/tiny/`` (trained by ``scripts/train_sft.py``) ships inside the package, so
``make_policy("tiny")`` works with no download. Everything here is a standard transformers object: the tokenizer is
a :class:`~transformers.PreTrainedTokenizerFast` and the model a :class:`~transformers.LlamaForCausalLM`, so any
tool that loads Hugging Face checkpoints (transformers, vLLM, TRL) loads this one too.

transformers and tokenizers are imported inside the functions: ``import agents.models`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reason_gym.core import CHARSET

if TYPE_CHECKING:
    from transformers import LlamaConfig, PreTrainedTokenizerFast

TINY_MODEL_DIR = Path(__file__).resolve().parent / "tiny"
"""Where the shipped checkpoint lives (``config.json``, ``model.safetensors`` and the tokenizer files)."""

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
"""Ids 0-3, in this order; the characters follow."""


def build_char_tokenizer(charset: str = CHARSET) -> PreTrainedTokenizerFast:
    """A character-level tokenizer: one token per character of ``charset``, plus the four special tokens.

    Every character of an environment's observations is one token (newline included: it is the step separator,
    so a policy can stop on that single token), and decoding concatenates characters with nothing in between.
    Encoding puts ``<s>`` in front; characters outside ``charset`` become ``<unk>``.

    >>> tokenizer = build_char_tokenizer()
    >>> ids = tokenizer("1 + 2 = 3\\n")["input_ids"]
    >>> len(ids), tokenizer.decode(ids, skip_special_tokens=True)
    (11, '1 + 2 = 3\\n')
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(charset))
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *chars))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    # Split before every character, so that each is its own "word" ([\s\S] also matches the newline).
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()  # decode by concatenation, not by joining with spaces
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, vocab[BOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        padding_side="left",  # generation batches are padded on the left (the training script pads right itself)
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )


def tiny_llama_config(
    vocab_size: int,
    *,
    hidden_size: int = 192,
    num_layers: int = 4,
    num_heads: int = 6,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 1024,
) -> LlamaConfig:
    """A small Llama configuration for the character model (tied embeddings: the vocabulary is tiny anyway).

    Args:
        vocab_size: The tokenizer's vocabulary size.
        hidden_size: Width of the residual stream.
        num_layers: Transformer blocks.
        num_heads: Attention heads (``hidden_size`` must be a multiple).
        intermediate_size: Width of the MLP (default ``8/3 * hidden_size`` rounded up to a multiple of 32, as Llama).
        max_position_embeddings: Longest sequence the model is meant for (RoPE: a soft limit).
    """
    from transformers import LlamaConfig

    if hidden_size % num_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of num_heads ({num_heads})")
    if intermediate_size is None:
        intermediate_size = -(-8 * hidden_size // 3 // 32) * 32
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
