"""Training rows, micro-batches, and the log-probabilities of generated tokens under a model.

A row is one generated step: the prompt the policy saw and the tokens it generated, with the advantage every one
of those tokens gets. A multi-step episode is several rows (one per step); the loss aggregation needs to know which
rows form one episode (``output_of_row``).

Layout of a micro-batch, so that the model's output head runs on the generated tokens only: prompts are padded on
the left and completions on the right, so every completion starts at the same column ``P`` (the longest prompt)::

    input_ids   <pad> <pad> p p p | c c c <pad>
                <pad> p p p p p p | c c c c
                                  ^ column P

Position ids count real tokens only, so a padded row computes what it would alone. Only the logits that predict
columns ``P`` on are computed (:class:`CompletionLogits`), and rows that share a prompt run it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch


class Row(NamedTuple):
    """One generated step and its advantage."""

    prompt_ids: list[int]
    completion_ids: list[int]
    advantage: float


@dataclass
class MicroBatch:
    """Rows of whole episodes, padded (see the module docstring); shapes ``R`` rows, ``C`` completion columns."""

    input_ids: torch.Tensor  # (R, P + C)
    attention_mask: torch.Tensor  # (R, P + C)
    position_ids: torch.Tensor  # (R, P + C)
    completion_ids: torch.Tensor  # (R, C) the generated tokens, padded
    mask: torch.Tensor  # (R, C) 1 on generated tokens
    advantages: torch.Tensor  # (R,) one per row (every token of a step shares it)
    output_of_row: torch.Tensor  # (R,) the episode (0..O-1 within this micro-batch) each row belongs to
    num_outputs: int
    old_logp: torch.Tensor | None = None  # (R, C) under the policy that sampled the batch, when it has moved since
    ref_logp: torch.Tensor | None = None  # (R, C) under the reference policy, when beta > 0

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum())

    def to(self, device: str | torch.device) -> MicroBatch:
        """This micro-batch with its tensors on ``device``."""
        moved = {
            name: value.to(device) if isinstance(value, torch.Tensor) else value for name, value in vars(self).items()
        }
        return MicroBatch(**moved)


def make_micro_batch(episodes: Sequence[Sequence[Row]], pad_id: int = 0) -> MicroBatch:
    """Pads the rows of ``episodes`` into one micro-batch."""
    rows = [row for episode in episodes for row in episode]
    if not rows or any(not row.completion_ids or not row.prompt_ids for row in rows):
        raise ValueError("a micro-batch needs rows, each with a non-empty prompt and completion")
    prompt_width = max(len(r.prompt_ids) for r in rows)
    completion_width = max(len(r.completion_ids) for r in rows)
    width = prompt_width + completion_width
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        start, end = prompt_width - len(row.prompt_ids), prompt_width + len(row.completion_ids)
        input_ids[i, start:end] = torch.tensor([*row.prompt_ids, *row.completion_ids])
        attention_mask[i, start:end] = 1
    output_of_row = torch.tensor([e for e, episode in enumerate(episodes) for _ in episode], dtype=torch.long)
    return MicroBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=(attention_mask.cumsum(1) - 1).clamp(min=0),
        completion_ids=input_ids[:, prompt_width:],
        mask=attention_mask[:, prompt_width:],
        advantages=torch.tensor([r.advantage for r in rows], dtype=torch.float32),
        output_of_row=output_of_row,
        num_outputs=len(episodes),
    )


def micro_batches(episodes: Sequence[Sequence[Row]], size: int, pad_id: int = 0) -> list[MicroBatch]:
    """Consecutive micro-batches of ``size`` episodes (the last may be smaller)."""
    return [make_micro_batch(episodes[i : i + size], pad_id) for i in range(0, len(episodes), size)]


class CompletionLogits(torch.nn.Module):
    """A causal LM reduced to what GRPO needs: the logits that predict each generated token of a micro-batch.

    Rows with the same prompt (a group's G episodes start from one question) run that prompt once: the distinct
    prompts go through the model with a KV cache, the cache is copied to the rows that share each prompt, and only
    the completion columns run per row. The numbers (and gradients) are those of one forward pass per row; the cost
    of a group's prompt is paid once instead of G times.

    A module (not a function) so that ``DistributedDataParallel`` can wrap it: its two model calls are then one
    forward, as DDP requires.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor, columns: int):
        """``(R, columns, V)`` logits; column j predicts the completion token at ``input_ids[:, P + j]``."""
        width = input_ids.shape[1] - columns  # P: prompts end here (left-padded), completions start
        prompts = torch.cat([input_ids[:, :width], attention_mask[:, :width]], dim=1)
        unique, inverse = torch.unique(prompts, dim=0, return_inverse=True)
        if len(unique) == len(input_ids):  # nothing shared: one pass over whole rows
            output = self.model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                logits_to_keep=columns + 1,
                use_cache=False,
            )
            return output.logits[:, :-1]
        from transformers import DynamicCache

        unique_mask = unique[:, width:]
        cache = DynamicCache(config=self.model.config)
        first = self.model(
            input_ids=unique[:, :width],
            attention_mask=unique_mask,
            position_ids=(unique_mask.cumsum(1) - 1).clamp(min=0),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[inverse]  # (R, 1, V): predicts the first completion token
        if columns == 1:
            return first
        for layer in cache.layers:  # every row continues from its prompt's keys and values
            layer.keys, layer.values = layer.keys[inverse], layer.values[inverse]
        rest = self.model(
            input_ids=input_ids[:, width:-1],
            attention_mask=attention_mask[:, :-1],
            position_ids=position_ids[:, width:-1],
            past_key_values=cache,
            use_cache=True,
        ).logits  # (R, columns - 1, V)
        return torch.cat([first, rest], dim=1)


def row_logprobs(
    scorer: Any, batch: MicroBatch, temperature: float, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities ``(R, C)`` of the generated tokens at ``temperature``, and optionally the entropy there.

    Args:
        scorer: A :class:`CompletionLogits` (or a DDP wrapper of one), on the batch's device.
        batch: The micro-batch.
        temperature: The sampling temperature the tokens were drawn at.
        with_entropy: Also return the entropy of the same tempered distribution, without gradient (a diagnostic,
            not a loss term).
    """
    columns = batch.completion_ids.shape[1]
    logits = scorer(batch.input_ids, batch.attention_mask, batch.position_ids, columns).float() / temperature
    targets = batch.completion_ids.unsqueeze(-1)
    logp = logits.gather(-1, targets).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            log_probs = logits.log_softmax(-1)
            entropy = -(log_probs.exp() * log_probs).sum(-1)
    return logp, entropy
