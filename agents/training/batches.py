"""Training rows, micro-batches, and the log-probabilities of generated tokens under a model.

A row is one generated step: the prompt the policy saw and the tokens it generated, with the advantage every one
of those tokens gets. A multi-step episode is several rows (one per step); the loss aggregation needs to know which
rows form one episode (``output_of_row``).

Steps of one episode usually extend each other: the next prompt is the last prompt, the step, and whatever the
environment appended. Such steps are scored in one sequence (:func:`pack_steps`): the model reads the episode once
instead of once per step, which for an episode of K steps divides the tokens it runs by about K. A token's
log-probability depends only on the tokens before it, so the numbers are those of the separate rows.

Layout of a micro-batch, so that the model's output head runs on the scored tokens only: prompts are padded on the
left and the rest on the right, so every sequence's scored part starts at the same column ``P`` (the longest
prompt)::

    input_ids   <pad> <pad> p p p | c c c e e c c <pad>
                <pad> p p p p p p | c c c c <pad> <pad> <pad>
                                  ^ column P            (c: generated, scored; e: appended by the env, not scored)

Position ids count real tokens only, so a padded row computes what it would alone. Only the logits that predict
columns ``P`` on are computed (:class:`CompletionLogits`), and rows that share a prompt run it once.

The ``tree`` layout (:func:`tree_of`) goes further: an episode's sequences, which share its first prompt, are merged
where they share a prefix, so an episode is one row however many steps the environment rejected. The continuation
columns are then the nodes of a tree: each attends to the prompt and to its ancestors only (a 4D attention mask),
sits at the position of its depth, and its token is scored from its parent's output::

    input_ids   p p p | a a a r r b b      a: accepted step; r, b: two steps tried after it (r rejected)
    parents           | - 0 1 2 3 2 5      r and b both continue from the last a; neither sees the other

A tree row is padded to the longest row of its micro-batch; rows of similar length run together, each group only
as wide as its longest row (:func:`length_chunks`), so one long episode does not pad all the others.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F


class Row(NamedTuple):
    """One generated step and its advantage."""

    prompt_ids: list[int]
    completion_ids: list[int]
    advantage: float


class PackedRow(NamedTuple):
    """One or more steps of an episode scored in one sequence: ``prompt_ids`` then ``continuation_ids``.

    Column ``j`` of the continuation scores ``targets[j]`` (the token the policy generated there) with
    ``advantages[j]``, or nothing where ``targets[j]`` is None (text the environment appended between steps; its
    advantage is 0). A
    target may differ from the input token in its column: a step's stop token is scored where the next prompt
    continues with other text; the logits that score it see only the tokens before it.
    """

    prompt_ids: list[int]
    continuation_ids: list[int]
    targets: list[int | None]
    advantages: list[float]


def pack_steps(rows: Sequence[Row]) -> list[PackedRow]:
    """An episode's steps in as few sequences as exact scoring allows (one, when every step extends the last).

    A step joins a sequence when its prompt and its generated tokens but the last are a prefix of that sequence
    (so every token it generated is predicted from exactly what the policy saw) and its tokens end before the
    sequence's first scored column (one target per column). Steps are taken from the last, whose prompt is the
    longest; a step the environment rejected (its text is not in the next prompt) gets a sequence of its own.

    Every sequence that starts with the episode's first prompt is split there, the tokens after it and before its
    first scored one left unscored: then all of a group's sequences share one prompt, which
    :class:`CompletionLogits` runs once, instead of a rejected step's long prompt (the question and the steps
    before it) running alone and widening the prompt column of the whole micro-batch.
    """
    segments: list[tuple[int, list[int], int, dict[int, tuple[int, float]]]] = []
    # (its earliest step, its tokens, its first scored column, {column: (target, advantage)})
    for index in reversed(range(len(rows))):
        row = _checked(rows[index])
        seen = [*row.prompt_ids, *row.completion_ids[:-1]]
        start, end = len(row.prompt_ids), len(row.prompt_ids) + len(row.completion_ids)
        scored = {start + j: (token, row.advantage) for j, token in enumerate(row.completion_ids)}
        for i, (_, tokens, first, targets) in enumerate(segments):
            if end <= first and tokens[: len(seen)] == seen:
                segments[i] = (index, tokens, start, targets | scored)
                break
        else:
            segments.append((index, [*row.prompt_ids, *row.completion_ids], start, scored))
    packed = []
    base = list(rows[0].prompt_ids)  # the episode's first prompt: every sequence that starts with it splits there
    for _, tokens, first, scored in sorted(segments):  # in the order of their first steps
        split = len(base) if tokens[: len(base)] == base else first
        columns = range(split, len(tokens))
        packed.append(
            PackedRow(
                prompt_ids=tokens[:split],
                continuation_ids=tokens[split:],
                targets=[scored[c][0] if c in scored else None for c in columns],
                advantages=[scored[c][1] if c in scored else 0.0 for c in columns],
            )
        )
    return packed


class TreeRow(NamedTuple):
    """An episode's sequences that share a prompt, merged into a tree: ``continuation_ids[j]`` follows the prompt
    and its ancestors; ``parents[j]`` is the column of its parent (-1: the prompt's last token), whose output
    scores ``targets[j]`` with ``advantages[j]`` (None and 0 where nothing is scored)."""

    prompt_ids: list[int]
    continuation_ids: list[int]
    targets: list[int | None]
    advantages: list[float]
    parents: list[int]


def tree_of(sequences: Sequence[PackedRow]) -> list[TreeRow]:
    """An episode's sequences (:func:`pack_steps`) as trees, one per distinct prompt (one when every sequence starts
    with the episode's first prompt, as ``pack_steps`` arranges).

    A column joins an existing node when it has the same parent and token and at most one of the two scores it (two
    steps that generated the same tokens from the same state are two samples, each scored); otherwise it starts a
    branch. A node comes after its parent, so columns are in an order a causal pass can follow.
    """
    by_prompt: dict[tuple[int, ...], list[PackedRow]] = {}
    for sequence in sequences:
        by_prompt.setdefault(tuple(sequence.prompt_ids), []).append(sequence)
    trees = []
    for prompt, group in by_prompt.items():
        tokens: list[int] = []
        targets: list[int | None] = []
        advantages: list[float] = []
        parents: list[int] = []
        children: dict[tuple[int, int], list[int]] = {}
        for sequence in group:
            parent = -1
            for token, target, advantage in zip(
                sequence.continuation_ids, sequence.targets, sequence.advantages, strict=True
            ):
                shared = children.get((parent, token), [])
                node = next((n for n in shared if targets[n] is None or target is None), None)
                if node is None:
                    node = len(tokens)
                    tokens.append(token)
                    targets.append(None)
                    advantages.append(0.0)
                    parents.append(parent)
                    children.setdefault((parent, token), []).append(node)
                if target is not None:
                    targets[node], advantages[node] = target, advantage
                parent = node
        trees.append(TreeRow(list(prompt), tokens, targets, advantages, parents))
    return trees


@dataclass
class MicroBatch:
    """Whole episodes, packed and padded (see the module docstring); ``R`` sequences, ``C`` scored columns."""

    input_ids: torch.Tensor  # (R, P + C)
    attention_mask: torch.Tensor  # (R, P + C)
    position_ids: torch.Tensor  # (R, P + C)
    targets: torch.Tensor  # (R, C) the generated token scored in each column (padding elsewhere)
    mask: torch.Tensor  # (R, C) 1 on generated tokens
    advantages: torch.Tensor  # (R, C) each generated token's advantage (its step's), 0 elsewhere
    output_of_row: torch.Tensor  # (R,) the episode (0..O-1 within this micro-batch) each sequence belongs to
    num_outputs: int
    old_logp: torch.Tensor | None = None  # (R, C) under the policy that sampled the batch, when it has moved since
    ref_logp: torch.Tensor | None = None  # (R, C) under the reference policy, when beta > 0
    parents: torch.Tensor | None = None  # (R, C) tree layout: each column's parent column (-1: the prompt's end)
    tree_mask: torch.Tensor | None = None  # (R, C, C) tree layout: column i sees column j (an ancestor, or itself)

    @property
    def num_tokens(self) -> int:
        return int(self.mask.sum())

    def to(self, device: str | torch.device) -> MicroBatch:
        """This micro-batch with its tensors on ``device``."""
        moved = {
            name: value.to(device) if isinstance(value, torch.Tensor) else value for name, value in vars(self).items()
        }
        return MicroBatch(**moved)


def layout_cost(sequences: Sequence[Sequence[PackedRow | TreeRow]]) -> int:
    """The token positions :class:`CompletionLogits` runs for these sequences in one micro-batch: each distinct
    prompt once at the prompt width, then every sequence at the continuation width (both padded to the longest)."""
    rows = [row for episode in sequences for row in episode]
    prompts = {tuple(row.prompt_ids) for row in rows}
    width = max(len(row.prompt_ids) for row in rows)
    return len(prompts) * width + len(rows) * max(len(row.continuation_ids) for row in rows)


Layout = Literal["auto", "packed", "steps", "tree"]
"""How a micro-batch lays out its episodes: ``packed`` (:func:`pack_steps`), ``steps`` (a sequence per step),
``tree`` (:func:`tree_of`), or ``auto``, whichever of the three runs the fewest token positions."""


def make_micro_batch(episodes: Sequence[Sequence[Row]], pad_id: int = 0, layout: Layout = "auto") -> MicroBatch:
    """Puts episodes' rows into one micro-batch in the given ``layout``; ``auto`` takes the one that runs the fewest
    token positions (:func:`layout_cost`): usually the tree, which holds every token of an episode once."""
    if not episodes or not all(episodes):
        raise ValueError("a micro-batch needs episodes, each with at least one row")
    if layout not in ("auto", "packed", "steps", "tree"):
        raise ValueError(f"unknown layout {layout!r}: auto, packed, steps or tree")
    layouts: dict[str, list[list[Any]]] = {"steps": [[_unpacked(row) for row in episode] for episode in episodes]}
    if layout != "steps":
        layouts["packed"] = [pack_steps(episode) for episode in episodes]
    if layout in ("auto", "tree"):
        layouts["tree"] = [tree_of(sequences) for sequences in layouts["packed"]]
    if layout == "auto":  # the plainer layout wins a tie (min keeps the first of equals, in the order above)
        layout = min(layouts, key=lambda name: layout_cost(layouts[name]))
    batch = _padded(layouts[layout], pad_id)
    return _with_trees(batch, layouts[layout]) if layout == "tree" else batch


def _padded(sequences: Sequence[Sequence[PackedRow | TreeRow]], pad_id: int) -> MicroBatch:
    """Each episode's sequences, prompts left-padded and continuations right-padded to a common column (see the
    module docstring), position ids counting real tokens."""
    rows = [row for episode in sequences for row in episode]
    prompt_width = max(len(row.prompt_ids) for row in rows)
    columns = max(len(row.continuation_ids) for row in rows)
    input_ids = torch.full((len(rows), prompt_width + columns), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    targets = torch.full((len(rows), columns), pad_id, dtype=torch.long)
    mask = torch.zeros_like(targets)
    advantages = torch.zeros((len(rows), columns), dtype=torch.float32)
    for i, row in enumerate(rows):
        start, end = prompt_width - len(row.prompt_ids), prompt_width + len(row.continuation_ids)
        input_ids[i, start:end] = torch.tensor([*row.prompt_ids, *row.continuation_ids])
        attention_mask[i, start:end] = 1
        width = len(row.targets)
        targets[i, :width] = torch.tensor([pad_id if target is None else target for target in row.targets])
        mask[i, :width] = torch.tensor([target is not None for target in row.targets])
        advantages[i, :width] = torch.tensor(row.advantages)  # 0 where nothing is scored
    return MicroBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=(attention_mask.cumsum(1) - 1).clamp(min=0),
        targets=targets,
        mask=mask,
        advantages=advantages,
        output_of_row=torch.tensor([e for e, episode in enumerate(sequences) for _ in episode], dtype=torch.long),
        num_outputs=len(sequences),
    )


def _with_trees(batch: MicroBatch, trees: Sequence[Sequence[TreeRow]]) -> MicroBatch:
    """``batch`` of tree rows with each node at the position of its depth, its parent's column and its ancestors."""
    rows = [row for episode in trees for row in episode]
    columns = batch.targets.shape[1]
    width = batch.input_ids.shape[1] - columns
    positions = batch.position_ids.numpy()  # a view: the nodes' positions are set in place below
    parents = np.full((len(rows), columns), -1, dtype=np.int64)
    seen = np.zeros((len(rows), columns, columns), dtype=bool)
    seen[:, np.arange(columns), np.arange(columns)] = True  # every column sees itself (padding columns only that)
    for i, row in enumerate(rows):  # numpy, not torch, in this loop: a torch op per node costs ~10x more
        depth: list[int] = []
        for j, parent in enumerate(row.parents):
            depth.append(0 if parent < 0 else depth[parent] + 1)
            if parent >= 0:
                seen[i, j] |= seen[i, parent]
        parents[i, : len(row.parents)] = row.parents
        positions[i, width : width + len(depth)] = len(row.prompt_ids) + np.asarray(depth, dtype=np.int64)
    batch.parents, batch.tree_mask = torch.from_numpy(parents), torch.from_numpy(seen)
    return batch


def _unpacked(row: Row) -> PackedRow:
    """A row as a sequence of its own (what :func:`pack_steps` makes of a step that joins no other)."""
    _checked(row)
    return PackedRow(
        row.prompt_ids, row.completion_ids, list(row.completion_ids), [row.advantage] * len(row.completion_ids)
    )


def _checked(row: Row) -> Row:
    if not row.prompt_ids or not row.completion_ids:
        raise ValueError("a row needs a non-empty prompt and completion")
    return row


def micro_batches(
    episodes: Sequence[Sequence[Row]], size: int, pad_id: int = 0, layout: Layout = "auto"
) -> list[MicroBatch]:
    """Consecutive micro-batches of ``size`` episodes (the last may be smaller)."""
    return [make_micro_batch(episodes[i : i + size], pad_id, layout) for i in range(0, len(episodes), size)]


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
        # transformers 5.25 renamed ``past_key_values`` to ``cache`` (the old name warns, and goes in 5.40)
        self.cache_kwarg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        columns: int,
        parents: torch.Tensor | None = None,
        tree_mask: torch.Tensor | None = None,
    ):
        """``(R, columns, V)`` logits; column j predicts the completion token at ``input_ids[:, P + j]`` (in the tree
        layout, given ``parents`` and ``tree_mask``: the token scored at column j, from its parent's output)."""
        width = input_ids.shape[1] - columns  # P: prompts end here (left-padded), completions start
        prompts = torch.cat([input_ids[:, :width], attention_mask[:, :width]], dim=1)
        unique, inverse = torch.unique(prompts, dim=0, return_inverse=True)
        if tree_mask is None and len(unique) == len(input_ids):  # nothing shared: one pass over whole rows
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
            **{self.cache_kwarg: cache},
            use_cache=True,
            logits_to_keep=1,
        ).logits  # (U, 1, V): predicts each prompt's first completion token
        if columns == 1 and tree_mask is None:
            return rows_of(first, inverse)
        if tree_mask is not None:
            return self._tree_chunks(first, cache, inverse, input_ids, attention_mask, position_ids, parents, tree_mask)
        rest = self.model(
            input_ids=input_ids[:, width:-1],
            attention_mask=attention_mask[:, :-1],
            position_ids=position_ids[:, width:-1],
            **{self.cache_kwarg: self._continuing(cache, inverse)},
            use_cache=True,
        ).logits  # (R, columns - 1, V)
        return torch.cat([rows_of(first, inverse), rest], dim=1)

    def _continuing(self, prompts: Any, rows: torch.Tensor) -> Any:
        """A cache holding, for each of ``rows`` (indices of the distinct prompts in ``prompts``), its prompt's keys
        and values: what each sequence continues from."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        for layer, prompt in zip(cache.layers, prompts.layers, strict=True):
            layer.lazy_initialization(prompt.keys, prompt.values)
            layer.keys, layer.values = rows_of(prompt.keys, rows), rows_of(prompt.values, rows)
        return cache

    def _tree_chunks(
        self, first, prompts, inverse, input_ids, attention_mask, position_ids, parents, tree_mask
    ) -> torch.Tensor:
        """The tree layout's logits (R, C, V), rows of similar length run together (:func:`length_chunks`), each
        chunk only as wide as its longest row: a row's nodes see its prompt and its ancestors only, never the padding
        after them, so narrower chunks change no number (up to float rounding) and skip the padding's compute. The
        padding columns get zero logits (nothing scores them). ``first`` (U, 1, V) and the cache ``prompts`` hold the
        distinct prompts; ``inverse`` (R,) says each row's."""
        columns = parents.shape[1]
        width = input_ids.shape[1] - columns
        chunks = length_chunks(attention_mask[:, width:].sum(1).tolist())
        if len(chunks) == 1:
            cache, nodes = self._continuing(prompts, inverse), input_ids[:, width:]
            return self._tree_logits(
                rows_of(first, inverse), cache, nodes, attention_mask, position_ids, parents, tree_mask
            )
        pieces = []
        for chunk, used in chunks:
            index = torch.tensor(chunk, device=parents.device)
            rows = inverse[index]  # each row's prompt, straight from the distinct prompts (one copy, not two)
            logits = self._tree_logits(
                rows_of(first, rows),
                self._continuing(prompts, rows),
                input_ids[index, width : width + used],
                attention_mask[index, : width + used],
                position_ids[index, : width + used],
                parents[index, :used],
                tree_mask[index, :used, :used],
            )
            pieces.append(F.pad(logits, (0, 0, 0, columns - used)))  # zero logits on the padding columns
        order = torch.tensor([row for chunk, _ in chunks for row in chunk], device=parents.device)
        return rows_of(torch.cat(pieces), torch.argsort(order))

    def _tree_logits(self, first, cache, nodes, attention_mask, position_ids, parents, tree_mask) -> torch.Tensor:
        """The tree layout's logits: every node runs once, seeing the prompt and its ancestors; column j is scored
        from its parent's output (the prompt's, ``first``, for a root)."""
        width, columns = attention_mask.shape[1] - nodes.shape[1], nodes.shape[1]
        seen = torch.cat([attention_mask[:, None, :width].bool().expand(-1, columns, -1), tree_mask], dim=2)
        dtype = first.dtype
        additive = torch.zeros(seen.shape, dtype=dtype, device=seen.device).masked_fill(~seen, torch.finfo(dtype).min)
        outputs = self.model(
            input_ids=nodes,
            attention_mask=additive[:, None],  # (R, 1, C, P + C): a 4D mask is used as it is
            position_ids=position_ids[:, width:],
            **{self.cache_kwarg: cache},
            use_cache=True,
        ).logits  # (R, C, V): the output after each node
        outputs = torch.cat([first, outputs], dim=1)  # index 0: after the prompt; j + 1: after node j
        rows, width = outputs.shape[:2]
        # one (V,) row per node, picked from the flat (R * (C + 1), V) outputs: the same numbers as a gather along
        # dimension 1, and a backward that adds whole rows up (4x faster than gather's element-wise scatter)
        flat = (parents + 1 + width * torch.arange(rows, device=parents.device)[:, None]).reshape(-1)
        return rows_of(outputs.reshape(rows * width, -1), flat).view(rows, columns, -1)


CHUNK_COST = 128
"""What one more model pass over a chunk of rows costs, in (row, column) positions, for :func:`length_chunks`:
measured on the bench's updates of the tiny model on CPU (forward and backward of 16 episodes, about 0.1 ms a
position), splitting off rows that saved 80-100 positions was slower, and splitting off one long row that saved
300-400 positions was 17-20% faster. A larger model makes a position dearer and a pass relatively cheaper, so for
it the figure errs towards fewer chunks."""


def length_chunks(lengths: Sequence[int], cost: int | None = None) -> list[tuple[list[int], int]]:
    """Rows grouped by length, fewest (row, column) positions first: each chunk is run as wide as its longest row,
    and each costs ``cost`` positions more (None: :data:`CHUNK_COST`). Returns (rows, width) per chunk, shortest
    rows first (one chunk of every row when splitting saves nothing): a dynamic programme over the rows sorted by
    length."""
    cost = CHUNK_COST if cost is None else cost
    order = sorted(range(len(lengths)), key=lambda row: lengths[row])
    sizes = [max(1, lengths[row]) for row in order]
    best = [0] + [0] * len(order)  # best[i]: the cheapest layout of the i shortest rows
    start = [0] * (len(order) + 1)
    for i in range(1, len(order) + 1):
        best[i], start[i] = min((best[j] + (i - j) * sizes[i - 1] + cost, j) for j in range(i))
    chunks, i = [], len(order)
    while i:
        chunks.append((order[start[i] : i], sizes[i - 1]))
        i = start[i]
    return chunks[::-1]


class _RowsOf(torch.autograd.Function):
    """``x.index_select(0, index)``, with a backward that adds the gradient's rows up from a contiguous copy: the
    gradients reaching a shared prompt's keys and values are strided views, and adding those up in place is about
    3x slower than copying them first. Same additions in the same order, so the same bits."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.rows = x.shape[0]
        return x.index_select(0, index)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (index,) = ctx.saved_tensors
        grad = grad.contiguous()
        return grad.new_zeros((ctx.rows, *grad.shape[1:])).index_add_(0, index, grad), None


def rows_of(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of ``x`` (``x.index_select(0, index)``), differentiable (see :class:`_RowsOf`)."""
    return _RowsOf.apply(x, index) if x.requires_grad else x.index_select(0, index)


def row_logprobs(
    scorer: Any, batch: MicroBatch, temperature: float, with_entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probabilities ``(R, C)`` of the batch's targets at ``temperature``, and optionally the entropy there.

    Args:
        scorer: A :class:`CompletionLogits` (or a DDP wrapper of one), on the batch's device.
        batch: The micro-batch.
        temperature: The sampling temperature the tokens were drawn at.
        with_entropy: Also return the entropy of the same tempered distribution, without gradient (a diagnostic,
            not a loss term).
    """
    columns = batch.targets.shape[1]
    logits = scorer(batch.input_ids, batch.attention_mask, batch.position_ids, columns, batch.parents, batch.tree_mask)
    logits = logits.float()
    if temperature != 1.0:  # (dividing by 1 would copy the logits, and their gradient)
        logits = logits / temperature
    targets = batch.targets.unsqueeze(-1)
    logp = logits.gather(-1, targets).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            log_probs = logits.log_softmax(-1)
            entropy = -(log_probs.exp() * log_probs).sum(-1)
    return logp, entropy
