"""A hand-written sampling loop for Llama-architecture causal LMs: what ``model.generate()`` computes, minus its
per-token Python machinery.

For a small model ``generate()`` spends most of each decoding step in bookkeeping (logits processors, stopping
criteria, cache objects, mask building), not in the forward pass. This module runs the same arithmetic directly:

- the query/key/value projections of a layer are one fused matmul, and so are the MLP's gate and up projections,
  their weights stored transposed (``x @ W``: BLAS runs a small-batch product faster than ``x @ W.T``);
- a decoding step's attention (one query per row) is two batched matrix products and a softmax on CPU: for rows
  of a few hundred cached tokens that is faster than the fused attention kernel, whose cost there is per head;
- the KV cache is one preallocated tensor per keys and values, ``(layers, rows, kv_heads, length, head_dim)``,
  written in place;
- each distinct prompt is prefilled once, and its cache copied to the ``n`` rows that continue it;
- a step draws ``torch.multinomial``'s token from the softmax of the (tempered, top-p filtered) float32 logits,
  like ``generate()``, from torch's global RNG in the same pattern (:func:`_draw`), and the sampled tokens'
  log-probabilities are gathered once at the end;
- rows that stopped leave the cache (:data:`COMPACT_AT`) and the model runs only the others. They are still drawn
  from (their last logits, then padded), because ``torch.multinomial`` takes one exponential variate per row and
  token whatever the probabilities: the rows that go on get ``generate()``'s draws.

Every op mirrors transformers' Llama (RMSNorm in float32, rotary tables cast to the model's dtype, attention scale
``head_dim ** -0.5``), so the logits equal HF's up to floating-point rounding (float32: about 1e-6; matmuls over a
different number of rows may round differently). :func:`supports` says which models qualify; everything else goes
through ``generate()`` (see :class:`agents.policies.hf.HFPolicy`).

Shapes in comments: B rows, U distinct prompts, P prompt width, T new tokens, S cache length, L layers,
H query heads, K key/value heads (H = K * G), D head dim, C hidden size, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

# Fields of a model's generation_config that generate() would fill into HFPolicy's GenerationConfig (which leaves
# them unset) and that change what is sampled or when a row stops, with the values that change nothing.
_NEUTRAL_GENERATION_FIELDS: dict[str, tuple[Any, ...]] = {
    "min_p": (None,),
    "top_h": (None,),
    "epsilon_cutoff": (None, 0.0),
    "eta_cutoff": (None, 0.0),
    "min_length": (None, 0),
    "min_new_tokens": (None, 0),
    "bad_words_ids": (None,),
    "sequence_bias": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "exponential_decay_length_penalty": (None,),
    "remove_invalid_values": (None, False),
    "renormalize_logits": (None, False),
    "watermarking_config": (None,),
    "guidance_scale": (None, 1.0),
    "max_time": (None,),
    "stop_strings": (None,),
}


def unsupported_reason(model: Any) -> str | None:
    """Why :class:`LlamaDecoder` would not reproduce ``model`` exactly, or ``None`` when it does."""
    try:
        from transformers import LlamaForCausalLM
        from transformers.models.llama.modeling_llama import LlamaRMSNorm
    except ImportError:
        return "transformers is not installed"
    if type(model) is not LlamaForCausalLM:  # subclasses and wrappers (PEFT, DDP) may change the forward
        return f"the model is a {type(model).__name__}, not a LlamaForCausalLM"
    config = model.config
    if getattr(config, "model_type", None) != "llama":
        return f"model_type is {getattr(config, 'model_type', None)!r}, not 'llama'"
    rope = getattr(config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default" or set(rope) - {"rope_type", "rope_theta"}:
        return f"rope_parameters {rope} are not the default rope (no scaling)"
    rotary = model.model.rotary_emb
    if rotary.rope_type != "default" or rotary.attention_scaling != 1.0:
        return "the rotary embedding is not the default one"
    if config.attention_bias or config.mlp_bias:
        return "attention or MLP projections have biases"
    if config.hidden_act != "silu":
        return f"hidden_act is {config.hidden_act!r}, not 'silu'"
    if getattr(config, "pretraining_tp", 1) not in (None, 1):
        return "pretraining_tp is not 1"
    if config.num_attention_heads % config.num_key_value_heads:
        return "num_attention_heads is not a multiple of num_key_value_heads"
    if getattr(model, "hf_quantizer", None) is not None or getattr(model, "use_kernels", False):
        return "the model is quantized or uses hub kernels"
    if model.training and config.attention_dropout:
        return "attention dropout is active (the model is in training mode)"
    parameters = list(model.parameters())
    devices = {p.device for p in parameters}
    if len(devices) != 1 or next(iter(devices)).type not in ("cpu", "cuda"):
        return f"the parameters are on {sorted(map(str, devices))}, not all on one CPU or CUDA device"
    dtypes = {p.dtype for p in parameters}
    if len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
        return f"the parameters have dtypes {sorted(map(str, dtypes))}, not one floating dtype"
    attention = config._attn_implementation
    if attention != "sdpa" and not (attention == "eager" and model.dtype == torch.float32):
        # eager attention rounds its softmax to a half dtype before the value matmul; sdpa does not
        return f"attention implementation {attention!r} with {model.dtype} (needs sdpa, or eager in float32)"
    for layer in model.model.layers:
        projections = (*_attention_projections(layer), layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj)
        norms = (layer.input_layernorm, layer.post_attention_layernorm)
        if any(type(m) is not torch.nn.Linear for m in projections) or any(type(m) is not LlamaRMSNorm for m in norms):
            return "a layer's projections or norms are not plain Linear / LlamaRMSNorm modules"
    if type(model.lm_head) is not torch.nn.Linear or model.lm_head.bias is not None:
        return "lm_head is not a plain Linear without bias"
    generation_config = getattr(model, "generation_config", None)
    for field, neutral in _NEUTRAL_GENERATION_FIELDS.items():
        value = getattr(generation_config, field, None)
        if not any(value is v or value == v for v in neutral):
            return f"model.generation_config.{field} = {value!r} changes sampling"
    return None


def supports(model: Any) -> bool:
    """True when :class:`LlamaDecoder` reproduces ``model``'s sampling through ``HFPolicy``'s ``generate()`` call.

    That is a plain ``LlamaForCausalLM`` (no subclass or wrapper, not quantized): default rope without scaling, no
    attention or MLP bias, SiLU, any number of key/value heads (grouped-query attention included), tied or untied
    ``lm_head``, all parameters in one floating dtype on one CPU or CUDA device, sdpa attention (or eager in
    float32), no active attention dropout, and a ``generation_config`` that adds no logits processor or stopping
    rule of its own (no ``min_p``, ``suppress_tokens``, ``min_new_tokens``, ...).
    """
    return unsupported_reason(model) is None


def _attention_projections(layer: Any) -> tuple[Any, Any, Any, Any]:
    attention = layer.self_attn
    return attention.q_proj, attention.k_proj, attention.v_proj, attention.o_proj


def _rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """LlamaRMSNorm: normalise in float32, back to x's dtype, then scale (not when ``weight`` is None: a float32
    ``x`` whose scale the next product's weights hold, see :attr:`LlamaDecoder.folded`)."""
    if weight is None:
        return x * torch.rsqrt(torch.mean(x * x, -1, keepdim=True).add_(eps))  # five ops; x * x is pow(x, 2)
    dtype = x.dtype
    if dtype == torch.float32 and weight.dtype == torch.float32:
        # one fused op instead of eight, the same bits in float32 (a test checks it); in a half dtype the fused
        # op would scale before rounding down, and LlamaRMSNorm rounds first
        return F.rms_norm(x, weight.shape, weight, eps)
    x = x.to(torch.float32)
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)).to(dtype)


def rotary(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """transformers' ``x * cos + rotate_half(x) * sin`` over the last dimension, given ``sin`` with its first half
    negated (:attr:`LlamaDecoder.sin`): rotate_half is a roll whose first half changes sign, and moving the sign
    into the table gives the same products in two ops fewer than the slices, negation and concatenation."""
    return x * cos + x.roll(x.shape[-1] // 2, -1) * signed_sin


class LlamaDecoder:
    """A ``LlamaForCausalLM``'s forward pass over a preallocated KV cache (check :func:`supports` first).

    It holds fused, transposed copies of each layer's q/k/v and gate/up weights (extra memory: those five matrices, most
    of a layer's weights) and references to the others. On CPU in float32 (:attr:`folded`) the copies also hold the
    RMSNorm weights before them (scaled rows), so that a decoding step's norms are five plain ops each; the logits then
    equal ``generate()``'s up to float rounding (about 1e-6) instead of to the bit. :meth:`refresh` rebuilds the fused
    copies only when the model's parameters changed since the last build: it compares every parameter's storage address
    and in-place version counter (an optimizer step, ``load_state_dict`` or ``p.mul_()`` bumps the counter; ``.to()``
    moves the storage; updates that bump nothing need :meth:`invalidate`). Measured on one CPU thread: the check costs
    0.2 ms for the 0.8M tiny model and 1.4 ms for a model of Qwen2.5-0.5B's shape, a rebuild 0.7 ms and 0.7 s (plus 0.9
    GB of float32 copies). Rebuilding at every call would be negligible for the tiny model but not for the larger one,
    so a trainer that updates the model in place between calls pays for a rebuild only then.
    """

    def __init__(self, model: Any) -> None:
        config = model.config
        self.model = model
        self.num_heads = config.num_attention_heads  # H
        self.num_kv_heads = config.num_key_value_heads  # K
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads  # D
        self.scaling = self.head_dim**-0.5
        self.eps = config.rms_norm_eps
        self.cos = self.sin = torch.empty(0)  # (positions, D) rotary tables in the model's dtype, sin's first half
        # negated (see rotary())
        self._key: tuple | None = None
        self.prefix_cache = PrefixCache()
        """the keys and values of the last :func:`sample` call's sequences, which the next call's prompts extend"""
        self.prefilled_tokens = 0
        """token positions run by prefills so far (what the prefix cache saves shows here)"""
        self.refresh()

    def _weights_key(self) -> tuple | None:
        try:
            key = tuple((p.data_ptr(), p._version) for p in self.model.parameters())
        except RuntimeError:  # inference tensors keep no version counter: rebuild every time
            return None
        return (*key, self.model.model.rotary_emb.inv_freq.data_ptr())

    def invalidate(self) -> None:
        """Forgets the fused weights (and the prefix cache): the next call rebuilds them. For in-place updates that
        leave the parameters' version counters as they were, which :meth:`refresh` cannot see: torch's fused AdamW
        on CPU (``torch.optim.AdamW(..., fused=True)``, torch 2.13) and writes through ``p.data``."""
        self._key = None

    def refresh(self) -> bool:
        """Rebuilds the fused weights if the model's parameters changed since the last build (or since
        :meth:`invalidate`); True if it did."""
        key = self._weights_key()
        if key is not None and key == self._key:
            return False
        self.prefix_cache = PrefixCache()  # computed with other weights
        model = self.model
        with torch.no_grad():
            self.embed = model.model.embed_tokens.weight.detach()  # (V, C)
            self.lm_head = model.lm_head.weight.detach()  # (V, C), the embedding itself when tied
            self.lm_head_t = self.lm_head.t()  # views: F.linear's own product, without its dispatch
            self.norm = model.model.norm.weight.detach()  # (C,)
            self.folded = self.device.type == "cpu" and self.dtype == torch.float32
            """whether decoding steps run :meth:`step`, and the fused weights hold the norms' (see the class)"""
            self.layers = []
            for layer in model.model.layers:
                q, k, v, o = (m.weight.detach() for m in _attention_projections(layer))
                mlp = layer.mlp
                attn_norm = layer.input_layernorm.weight.detach()  # (C,)
                mlp_norm = layer.post_attention_layernorm.weight.detach()  # (C,)
                qkv = torch.cat([q, k, v])  # ((H + 2K) * D, C)
                gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])  # (2I, C)
                if self.folded:  # norm(x) @ W == unit_norm(x) @ (diag(weight) W), up to rounding
                    qkv, gate_up = qkv * attn_norm, gate_up * mlp_norm
                self.layers.append(
                    {
                        "attn_norm": None if self.folded else attn_norm,
                        "qkv": qkv.t().contiguous(),  # (C, (H + 2K) * D)
                        "o": o,  # (C, H * D)
                        "o_t": o.t(),
                        "mlp_norm": None if self.folded else mlp_norm,
                        "gate_up": gate_up.t().contiguous(),  # (C, 2I)
                        "down": mlp.down_proj.weight.detach(),  # (C, I)
                        "down_t": mlp.down_proj.weight.detach().t(),
                    }
                )
            self.cos = self.sin = torch.empty(0)
        self._key = key
        return True

    @property
    def device(self) -> torch.device:
        return self.embed.device

    @property
    def dtype(self) -> torch.dtype:
        return self.embed.dtype

    def new_cache(self, rows: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Empty key and value caches, each (L, rows, K, length, D)."""
        shape = (len(self.layers), rows, self.num_kv_heads, length, self.head_dim)
        keys = torch.zeros(shape, dtype=self.dtype, device=self.device)
        return keys, torch.zeros_like(keys)

    def ensure_positions(self, count: int) -> None:
        """Rotary tables for positions 0..count-1, computed as LlamaRotaryEmbedding does (float32, then cast)."""
        if self.cos.shape[0] >= count:
            return
        count = max(count, 2 * self.cos.shape[0], self.model.config.max_position_embeddings)
        inv_freq = self.model.model.rotary_emb.inv_freq.to(device=self.device, dtype=torch.float)  # (D/2,)
        freqs = torch.arange(count, device=self.device).float()[:, None] * inv_freq  # (count, D/2)
        angles = torch.cat((freqs, freqs), dim=-1)  # (count, D)
        self.cos, sin = angles.cos().to(self.dtype), angles.sin().to(self.dtype)
        half = self.head_dim // 2
        self.sin = torch.cat((-sin[:, :half], sin[:, half:]), dim=-1)

    def forward(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        start: int,
        mask: torch.Tensor,
        *,
        last_only: bool = True,
    ) -> torch.Tensor:
        """Runs tokens ``ids`` (B, T) at ``positions`` (B, T) whose keys and values go into cache slots
        ``start .. start + T - 1``; ``mask`` (B, 1, T, start + T) bool says which slots each token attends to.

        Returns the logits (B, V) of each row's last token, or (B, T, V) for every token when not ``last_only``,
        in the model's dtype. Call :meth:`ensure_positions` first for the largest position.
        """
        B, T = ids.shape
        decoding = T == 1
        if decoding and self.folded:
            # see step() (in a half dtype its products and softmax would round more than the fused kernel's)
            return self.step(ids[:, 0], positions[:, 0], keys, values, start, self.attention_bias(mask[:, 0, 0]))
        H, K, D = self.num_heads, self.num_kv_heads, self.head_dim
        G = H // K  # query heads per key/value head
        end = start + T
        x = F.embedding(ids, self.embed)  # (B, T, C)
        cos, sin = self.cos[positions][:, :, None], self.sin[positions][:, :, None]  # (B, T, 1, D)
        for i, layer in enumerate(self.layers):
            qkv = (_rms_norm(x, layer["attn_norm"], self.eps) @ layer["qkv"]).view(B, T, H + 2 * K, D)
            qk = qkv[:, :, : H + K]  # (B, T, H + K, D): rotary on queries and keys at once
            qk = rotary(qk, cos, sin)
            q = qk[:, :, :H].transpose(1, 2)  # (B, H, T, D)
            keys[i, :, :, start:end] = qk[:, :, H:].transpose(1, 2)  # (B, K, T, D)
            values[i, :, :, start:end] = qkv[:, :, H + K :].transpose(1, 2)
            k, v = keys[i, :, :, :end], values[i, :, :, :end]  # (B, K, end, D)
            if decoding:
                # One query per row: the G heads sharing a key/value head become G queries of it.
                # (B, K, G, D) attends over (B, K, end, D); the mask (B, 1, 1, end) broadcasts.
                q = q.reshape(B, K, G, D)
                a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling).reshape(B, T, H * D)
            else:
                if G > 1:  # (B, K, end, D) -> (B, H, end, D): head h reads key/value head h // G
                    k, v = k.repeat_interleave(G, dim=1), v.repeat_interleave(G, dim=1)
                a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scaling)  # (B, H, T, D)
                a = a.transpose(1, 2).reshape(B, T, H * D)
            x = x + F.linear(a, layer["o"])
            gate, up = (_rms_norm(x, layer["mlp_norm"], self.eps) @ layer["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer["down"])  # (B, T, C)
        if last_only:
            x = x[:, -1]  # (B, C)
        return F.linear(_rms_norm(x, self.norm, self.eps), self.lm_head)

    def attention_bias(self, attend: torch.Tensor) -> torch.Tensor:
        """The additive mask :meth:`step` takes, (B * K, G, S) in the model's dtype: 0 where row b's query heads
        attend to a slot, -inf where they do not (``attend`` (B, S) bool)."""
        B, S = attend.shape
        K, G = self.num_kv_heads, self.num_heads // self.num_kv_heads
        bias = torch.zeros((B, 1, 1, S), dtype=self.dtype, device=attend.device)
        bias.masked_fill_(~attend[:, None, None], -float("inf"))
        return bias.expand(B, K, G, S).reshape(B * K, G, S)

    def step(
        self,
        ids: torch.Tensor,
        positions: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        start: int,
        bias: torch.Tensor,
    ) -> torch.Tensor:
        """:meth:`forward` for one token per row (``ids``, ``positions`` (B,)) on CPU in float32 (:attr:`folded`),
        written for the fewest ops (their dispatch is most of a small model's decoding step): (B, C) activations
        instead of (B, 1, C), residual additions fused into the products (``addmm``), and attention as two batched
        products over (B * K, ...) views of the cache, the mask added as a bias by the first (``baddbmm``). On CPU
        the fused attention kernel costs about as much per head for one query as for a block of queries; the two
        products do the same arithmetic. ``bias`` (:meth:`attention_bias`, at least ``start + 1`` slots wide: a
        caller builds it once for every step) says which slots each row attends to. Returns the logits (B, V), equal
        to :meth:`forward`'s up to float rounding (about 1e-6)."""
        B = ids.shape[0]
        H, K, D = self.num_heads, self.num_kv_heads, self.head_dim
        G = H // K  # the query heads of each key/value head
        end = start + 1
        x = F.embedding(ids, self.embed)  # (B, C)
        cos, sin = self.cos[positions].unsqueeze(1), self.sin[positions].unsqueeze(1)  # (B, 1, D)
        bias = bias[:, :, :end]  # (B * K, G, end), the same for every layer
        for layer, layer_keys, layer_values in zip(self.layers, keys.unbind(0), values.unbind(0), strict=True):
            qkv = torch.mm(_rms_norm(x, layer["attn_norm"], self.eps), layer["qkv"]).view(B, H + 2 * K, D)
            qk = rotary(qkv[:, : H + K], cos, sin)  # (B, H + K, D)
            layer_keys[:, :, start] = qk[:, H:]  # (B, K, D)
            layer_values[:, :, start] = qkv[:, H + K :]
            q = qk[:, :H].reshape(B * K, G, D)  # the G query heads of each key/value head
            k = layer_keys[:, :, :end].flatten(0, 1)  # (B * K, end, D), a view
            v = layer_values[:, :, :end].flatten(0, 1)
            scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=self.scaling)  # (B * K, G, end)
            a = torch.bmm(scores.softmax(-1), v)  # (B * K, G, D)
            x = torch.addmm(x, a.view(B, H * D), layer["o_t"])
            gate, up = torch.mm(_rms_norm(x, layer["mlp_norm"], self.eps), layer["gate_up"]).chunk(2, dim=-1)
            x = torch.addmm(x, F.silu(gate) * up, layer["down_t"])
        return torch.mm(_rms_norm(x, self.norm, self.eps), self.lm_head_t)


PREFIX_CACHE_BYTES = 256 * 2**20
"""The most memory the keys and values kept for the next call take (the tiny model: about 4 KiB a token; a 1B model
in float32: about 180 KiB): the rows that do not fit are not kept, and their continuations are prefilled in full."""


class PrefixCache:
    """The keys and values of every row of the last :func:`sample` call: its prompt and the tokens it fed back.

    A multi-turn episode asks for its next step with a prompt that extends the last one (the question, the steps so
    far, the step just generated, what the environment wrote); a planner's next call extends the states it just
    expanded. Such a prompt's longest common prefix with a cached row needs no prefill: its keys and values are
    copied, and only the rest of the prompt runs. A token's keys and values depend only on the tokens before it
    (and the weights: :meth:`LlamaDecoder.refresh` empties the cache when they change), so the logits are those of
    a full prefill up to floating-point rounding.
    """

    def __init__(self, max_bytes: int | None = None) -> None:
        self.ids: list[torch.Tensor] = []  # (n,) each row's tokens
        self.keys: list[torch.Tensor] = []  # (L, K, n, D)
        self.values: list[torch.Tensor] = []
        self.room = PREFIX_CACHE_BYTES if max_bytes is None else max_bytes  # rows that no longer fit are not kept
        self._table: torch.Tensor | None = None  # (rows, longest) every row's ids, -1 after its end

    def add(self, ids: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        size = 2 * keys.numel() * keys.element_size()
        if size > self.room:
            return
        self.room -= size
        self.ids.append(ids)
        self.keys.append(keys.clone())
        self.values.append(values.clone())
        self._table = None

    def longest(self, prompt: torch.Tensor) -> tuple[int, int]:
        """(length, row) of the longest prefix of ``prompt`` (n,) that a cached row starts with; (0, -1) if none."""
        if not self.ids:
            return 0, -1
        if self._table is None:
            self._table = torch.full((len(self.ids), max(len(ids) for ids in self.ids)), -1, dtype=torch.long)
            for row, ids in enumerate(self.ids):
                self._table[row, : len(ids)] = ids
        width = min(len(prompt), self._table.shape[1])
        same = self._table[:, :width] == prompt[:width]
        common = same.long().cumprod(1).sum(1)  # (rows,): each row's common prefix length with the prompt
        row = int(common.argmax())
        return int(common[row]), row


def _draw(probs: torch.Tensor) -> torch.Tensor:
    """One token per row of ``probs`` (B, V): ``torch.multinomial(probs, 1)``'s draw, from the same exponential
    variates of the same RNG (the argmax of ``probs / q``, ``q ~ Exp(1)``, as ATen computes it for one sample),
    without its validity checks, which synchronise twice per step (:func:`sample` checks the log-probabilities
    once at the end instead)."""
    q = torch.empty_like(probs).exponential_()
    return torch.div(probs, q, out=q).argmax(-1)


COMPACT_AT = 0.75
"""The sampling loop drops stopped rows from its KV cache once at most this share of the cache's rows still run.

Steps within a batch differ a lot in length (measured on the tiny model's rollouts: 61% of the row-steps of an
Arithmetic batch and 76% of a Game24 batch were rows that had not stopped yet), and a decoding step costs about the
same per row, stopped or not. Dropping rows copies the cache, so it waits until a quarter of the rows stopped."""


def top_p_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """transformers' TopPLogitsWarper: -inf for the tokens outside the smallest set whose probability reaches
    ``top_p`` (scores (B, V), the most likely token always kept)."""
    sorted_scores, order = torch.sort(scores, descending=False)
    cumulative = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    remove = cumulative <= (1 - top_p)
    remove[..., -1:] = False
    return scores.masked_fill(remove.scatter(1, order, remove), -float("inf"))


@torch.inference_mode()
def sample(
    decoder: LlamaDecoder,
    prompts: Sequence[Sequence[int]],
    n: int,
    *,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` continuations of each prompt, prompt-major (the ``n`` of prompt 0 first), as ``generate()`` samples them.

    A step divides the float32 logits by ``temperature`` (greedy argmax when it is 0), keeps the top-``top_p``
    nucleus, and draws as ``torch.multinomial`` does; a row that drew one of ``stop_ids`` gets ``pad_id`` from then
    on, and the loop ends when every row stopped or after ``max_new_tokens`` steps.

    Returns the generated ids (R, T), R = ``len(prompts) * n`` rows (pad after a row's stop token), and each
    one's log-probability under the distribution it was drawn from (R, T) (the model's own distribution when
    greedy), on the model's device. Raises ValueError when the logits hold inf or nan (sampling only).
    """
    decoder.refresh()
    device = decoder.device
    greedy = temperature == 0
    # Each distinct prompt once: (U, P) ids padded on the left, `real` marks the prompt tokens.
    distinct: dict[tuple[int, ...], int] = {}
    prompt_of_row = [distinct.setdefault(tuple(ids), len(distinct)) for ids in prompts for _ in range(n)]
    U, P, T = len(distinct), max(len(ids) for ids in distinct), max_new_tokens
    ids = torch.full((U, P), pad_id, dtype=torch.long)
    real = torch.zeros((U, P), dtype=torch.bool)
    for row, prompt in enumerate(distinct):
        ids[row, P - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        real[row, P - len(prompt) :] = True
    ids, real = ids.to(device), real.to(device)
    positions = (real.long().cumsum(1) - 1).clamp(min=0)  # (U, P): a token's index among its row's real tokens
    decoder.ensure_positions(P + T)

    # Prefill: causal attention over real tokens; a pad attends to itself only (its output is never used).
    causal = torch.ones((P, P), dtype=torch.bool, device=device).tril()
    mask = (causal & real[:, None, :]) | torch.eye(P, dtype=torch.bool, device=device)  # (U, P, P)
    keys, values = decoder.new_cache(U, P + T - 1)  # the last sampled token is never fed back
    # What the last call already computed: each prompt's longest cached prefix (all but its last token, whose
    # logits are needed) goes into the cache, and the prefill runs only the last F columns, F the longest rest.
    rest = P
    if decoder.prefix_cache.ids:
        rest = 1
        for u, prompt in enumerate(distinct):
            length, row = decoder.prefix_cache.longest(torch.tensor(prompt))
            length = min(length, len(prompt) - 1)
            if length:
                left = P - len(prompt)
                keys[:, u, :, left : left + length] = decoder.prefix_cache.keys[row][:, :, :length]
                values[:, u, :, left : left + length] = decoder.prefix_cache.values[row][:, :, :length]
            rest = max(rest, len(prompt) - length)
    start = P - rest
    decoder.prefilled_tokens += U * rest
    logits = decoder.forward(ids[:, start:], positions[:, start:], keys, values, start, mask[:, None, start:])

    # Copy each prompt's cache and logits to its n rows (nothing to copy when each row has a prompt of its own).
    rows = torch.tensor(prompt_of_row, device=device)  # (B,)
    B = len(prompt_of_row)
    if B > U:
        # index_select, not keys[:, rows]: advanced indexing on a middle dimension copies several times slower
        keys, values, logits = keys.index_select(1, rows), values.index_select(1, rows), logits.index_select(0, rows)
    attend = torch.cat([real[rows], torch.ones((B, T - 1), dtype=torch.bool, device=device)], 1)  # (B, S)
    position = positions[rows, -1:]  # (B, 1): each row's last prompt position
    stop = torch.tensor(list(stop_ids), device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    live = torch.arange(B, device=device)  # the rows the cache holds, which the model still runs
    bias = decoder.attention_bias(attend) if decoder.folded else None  # step()'s mask, once, not once a step
    tokens, step_logprobs = [], []
    fed = torch.zeros(B, dtype=torch.long, device=device)  # tokens of each row fed back so far (keys in the cache)
    next_cache = PrefixCache()  # this call's rows, for the next call
    prompt_list = list(distinct)

    def keep(cache_rows: torch.Tensor) -> None:
        """Copies the keys and values of cache rows ``cache_rows`` (indices into ``live``) into ``next_cache``."""
        generated = torch.stack(tokens, 1).cpu() if tokens else torch.empty((B, 0), dtype=torch.long)
        rows, counts = live.tolist(), fed.tolist()  # one copy from the device, not one per row
        for i in cache_rows.tolist():
            b = rows[i]
            prompt = prompt_list[prompt_of_row[b]]
            n = counts[b]
            left = P - len(prompt)
            next_cache.add(
                torch.cat([torch.tensor(prompt, dtype=torch.long), generated[b, :n]]),
                keys[:, i, :, left : P + n],
                values[:, i, :, left : P + n],
            )

    for t in range(T):
        scores = logits.float()  # (B, V)
        if not greedy:
            if temperature != 1.0:
                scores = scores / temperature
            if top_p < 1.0:
                scores = top_p_filter(scores, top_p)
        step_logprobs.append(scores.log_softmax(-1))  # (B, V); the drawn tokens' are gathered at the end
        # (B,): the argmax, or a draw from the softmax as generate() makes it
        token = torch.where(done, pad_id, scores.argmax(-1) if greedy else _draw(scores.softmax(-1)))
        tokens.append(token)
        fed_now = ~done  # rows that go on feeding tokens: this one, their stop token included, extends them
        done = done | torch.isin(token, stop)
        running = ~done[live] if len(live) < B else ~done  # (rows in the cache,): those that have not stopped
        count = int(running.sum())
        if t == T - 1 or count == 0:
            break
        if count <= COMPACT_AT * len(live):  # a copy of the cache: only once enough rows stopped
            keep((~running).nonzero().squeeze(1))
            kept = running.nonzero().squeeze(1)
            keys, values = keys.index_select(1, kept), values.index_select(1, kept)
            attend, position, live = attend[running], position[running], live[running]
            bias = decoder.attention_bias(attend) if decoder.folded else None
        position = position + 1
        fed_in = token[live] if len(live) < B else token
        if bias is not None:
            step_logits = decoder.step(fed_in, position[:, 0], keys, values, P + t, bias)
        else:
            step_logits = decoder.forward(
                fed_in[:, None], position, keys, values, P + t, attend[:, None, None, : P + t + 1]
            )
        if len(live) < B:  # rows left the cache
            logits[live] = step_logits  # in place (no (B, V) copy per token); stopped rows keep their last logits
            fed[live[fed_now[live]]] += 1  # the pads fed to rows that stopped before are no prefix
        else:
            logits = step_logits
            fed += fed_now
    keep(torch.arange(len(live)))
    decoder.prefix_cache = next_cache
    generated = torch.stack(tokens, 1)  # (B, steps)
    logprobs = torch.stack(step_logprobs, 1).gather(2, generated[:, :, None]).squeeze(2)
    if not greedy and bool(logprobs.isnan().any()):  # what torch.multinomial would have refused (-inf: top-p's)
        raise ValueError("the model's logits hold inf or nan: the probabilities to sample from are not valid")
    return generated, logprobs
