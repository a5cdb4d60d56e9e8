"""The hand-written Llama decode loop (agents.policies.fast_decode) against transformers: its logits, HFPolicy's
candidates with it on and off, its sampling distribution, what it accepts, and its rebuild after weight updates."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

import torch

from agents.policies import fast_decode as fast
from agents.policies.hf import HFPolicy
from agents.policies.prompts import encode_prompts

# ------------------------------------------------------------------ models and states


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    """The shipped 0.8M-parameter character Llama and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agents.models import TINY_MODEL_DIR

    tokenizer = AutoTokenizer.from_pretrained(str(TINY_MODEL_DIR))
    model = AutoModelForCausalLM.from_pretrained(str(TINY_MODEL_DIR), dtype=torch.float32, use_kernels=False).eval()
    return model, tokenizer


def random_llama(vocab_size: int, seed: int = 0, **overrides: Any) -> Any:
    """A small random Llama with grouped-query attention (4 query heads, 2 key/value heads) and an untied head."""
    from transformers import LlamaConfig, LlamaForCausalLM

    settings = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
        "initializer_range": 0.2,  # long greedy continuations (the default makes the newline win at once)
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
    }
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**settings, **overrides})).eval()


@pytest.fixture(scope="module")
def gqa(char_tokenizer: Any) -> tuple[Any, Any]:
    model = random_llama(len(char_tokenizer))
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    return model, char_tokenizer


@pytest.fixture(scope="module")
def states() -> list[str]:
    """Game24 and arithmetic observations of different lengths, a few with steps already taken."""
    from reason_gym.envs.arithmetic import ArithmeticEnv
    from reason_gym.envs.game24 import Game24Env

    game24, arithmetic = Game24Env(), ArithmeticEnv()
    out = [game24.reset(options={"index": i})[0] for i in (0, 1, 2, 400)]
    out += [arithmetic.reset(options={"index": i})[0] for i in (0, 3, 11)]
    out.append(game24.reset(options={"index": 5})[0])
    out.append(game24.step("1 + 1 = 2")[0])  # a state with one (possibly invalid) step taken
    out.append(arithmetic.reset(options={"index": 2})[0])
    out.append(arithmetic.step("2 + 3 = 5")[0])
    assert len({len(s) for s in out}) > 3  # prompts of different lengths: a left-padded batch
    return out


def policies(model: Any, tokenizer: Any, **kwargs: Any) -> tuple[HFPolicy, HFPolicy]:
    """The same policy with the fast path on and off."""
    on = HFPolicy(model, tokenizer, **kwargs)
    off = HFPolicy(model, tokenizer, fast_decode=False, **kwargs)
    assert on.uses_fast_decode() and not off.uses_fast_decode()
    return on, off


def no_generate(model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes model.generate fail, so a test sees that the fast path never calls it."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("generate() called on the fast path")

    monkeypatch.setattr(model, "generate", fail)


# ------------------------------------------------------------------ (a) logits equal HF's


@pytest.mark.parametrize("which", ["tiny", "gqa"])
def test_logits_equal_hf_forward_on_left_padded_batches(which: str, request: pytest.FixtureRequest, states) -> None:
    from transformers import DynamicCache

    model, tokenizer = request.getfixturevalue(which)
    prompts = encode_prompts(tokenizer, HFPolicy(model, tokenizer).prompt, states[:7])
    B, P, T = len(prompts), max(map(len, prompts)), 4
    torch.manual_seed(0)
    continuation = torch.randint(4, len(tokenizer), (B, T))  # fed one token at a time after the prompt
    ids = torch.zeros((B, P + T), dtype=torch.long)
    real = torch.zeros((B, P + T), dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        ids[row, P - len(prompt) : P] = torch.tensor(prompt)
        ids[row, P:] = continuation[row]
        real[row, P - len(prompt) :] = True
    assert not real.all()  # left padding
    positions = (real.long().cumsum(1) - 1).clamp(min=0)  # index among the row's real tokens

    def hf(t0: int, t1: int, cache: Any = None) -> torch.Tensor:  # logits (B, t1 - t0, V) of tokens t0 .. t1 - 1
        mask, where = real[:, :t1].long(), positions[:, t0:t1]
        return model(ids[:, t0:t1], attention_mask=mask, position_ids=where, past_key_values=cache).logits

    decoder = fast.LlamaDecoder(model)
    decoder.ensure_positions(P + T)
    keys, values = decoder.new_cache(B, P + T)
    causal = torch.ones((P, P), dtype=torch.bool).tril()
    mask = ((causal & real[:, None, :P]) | torch.eye(P, dtype=torch.bool))[:, None]  # (B, 1, P, P)
    real_prompt = real[:, :P]
    with torch.no_grad():
        # The prompt at once: every real position's logits.
        cache = DynamicCache(config=model.config)
        prefill = decoder.forward(ids[:, :P], positions[:, :P], keys, values, 0, mask, last_only=False)  # (B, P, V)
        # (on CPU in float32 the norms' weights sit in the products' weights: equal up to rounding, ~1e-6 relative)
        torch.testing.assert_close(prefill[real_prompt], hf(0, P, cache)[real_prompt], atol=1e-5, rtol=1e-6)
        # Then one token at a time, as generate() runs HF's model with its KV cache.
        steps = []
        for t in range(P, P + T):
            step_mask = real[:, None, None, : t + 1]  # (B, 1, 1, t + 1)
            steps.append(decoder.forward(ids[:, t : t + 1], positions[:, t : t + 1], keys, values, t, step_mask))
            torch.testing.assert_close(steps[-1], hf(t, t + 1, cache)[:, 0], atol=1e-5, rtol=1e-6)
        # And against one forward pass over the whole padded sequence. HF's own cached steps differ from it by
        # about 1e-6 relative (logits up to ~17 for the tiny model): matmuls over other shapes round differently.
        full = hf(0, P + T)
    torch.testing.assert_close(torch.stack(steps, 1), full[:, P:], atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_norm_and_the_rotary_are_transformers_own_to_the_bit(dtype: torch.dtype) -> None:
    """The fused RMSNorm (float32) and the rotary with its signs folded into the sine table give exactly the bits
    of LlamaRMSNorm and apply_rotary_pos_emb, so the sampled tokens do not move."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm, apply_rotary_pos_emb

    model = random_llama(32).to(dtype)
    decoder = fast.LlamaDecoder(model)
    torch.manual_seed(1)
    x = (3 * torch.randn(5, 7, 64)).to(dtype)
    norm = LlamaRMSNorm(64, eps=decoder.eps).to(dtype)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(64))
        assert torch.equal(fast._rms_norm(x, norm.weight, decoder.eps), norm(x))
    decoder.ensure_positions(40)
    positions = torch.randint(0, 40, (5, 7))
    q, k = torch.randn(2, 5, 4, 7, 16, dtype=dtype)  # (B, heads, T, D) as transformers holds them
    cos, sin = model.model.rotary_emb(x, positions)
    want_q, want_k = apply_rotary_pos_emb(q, k, cos, sin)
    rotated = fast.rotary(torch.cat([q, k], 1).transpose(1, 2), decoder.cos[positions][:, :, None],
                          decoder.sin[positions][:, :, None]).transpose(1, 2)  # fmt: skip
    assert torch.equal(rotated, torch.cat([want_q, want_k], 1))


# ------------------------------------------------------------------ (b) greedy: identical candidates


@pytest.mark.parametrize("which", ["tiny", "gqa"])
def test_greedy_candidates_are_identical_with_and_without_the_fast_path(
    which: str, request: pytest.FixtureRequest, states: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer = request.getfixturevalue(which)
    on, off = policies(model, tokenizer, max_new_tokens=24)
    expected = off.propose(states, n=2, temperature=0)
    no_generate(model, monkeypatch)
    got = on.propose(states, n=2, temperature=0)
    for mine, theirs in zip(got, expected, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            assert (a.text, a.token_ids, a.num_tokens) == (b.text, b.token_ids, b.num_tokens)
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
    assert any(c[0].text for c in got)  # some steps are not empty
    assert len({c[0].num_tokens for c in got}) > 1  # rows stop at different steps


def test_duplicate_states_small_batches_and_a_short_limit(tiny: tuple[Any, Any], states: list[str]) -> None:
    model, tokenizer = tiny
    many = [states[0], states[3], states[0], states[1], states[3]]  # repeated prompts share one prefill
    on, off = policies(model, tokenizer, max_new_tokens=5, max_batch_sequences=3)
    for temperature in (0.0, 1.0):
        torch.manual_seed(11)
        got = on.propose(many, n=2, temperature=temperature)
        torch.manual_seed(11)
        expected = off.propose(many, n=2, temperature=temperature)
        for mine, theirs in zip(got, expected, strict=True):
            assert [(c.text, c.token_ids) for c in mine] == [(c.text, c.token_ids) for c in theirs]
            assert [c.logprob for c in mine] == pytest.approx([c.logprob for c in theirs], abs=1e-4)
            assert all(c.num_tokens <= 5 for c in mine)


# ------------------------------------------------------------------ (c) sampling


def teacher_forced_logprob(
    model: Any, prompt: list[int], token_ids: tuple[int, ...], temperature: float, top_p: float = 1.0
) -> float:
    """The sum of the tokens' log-probs from one forward pass over prompt + tokens (no padding), under the tempered
    (and, with transformers' own TopPLogitsWarper, top-p filtered) distribution."""
    from transformers import TopPLogitsWarper

    ids = torch.tensor([prompt + list(token_ids)])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float() / temperature  # (T, V)
    if top_p < 1:
        logits = TopPLogitsWarper(top_p)(ids, logits)
    return float(logits.log_softmax(-1).gather(1, torch.tensor(token_ids)[:, None]).sum())


@pytest.mark.parametrize(("which", "temperature", "top_p"), [("tiny", 1.0, 1.0), ("tiny", 0.7, 0.9), ("gqa", 1.3, 1.0)])
def test_sampled_logprobs_equal_teacher_forcing_and_the_draws_equal_generates(
    which: str, temperature: float, top_p: float, request: pytest.FixtureRequest, states: list[str]
) -> None:
    model, tokenizer = request.getfixturevalue(which)
    on, off = policies(model, tokenizer, max_new_tokens=16, top_p=top_p)
    torch.manual_seed(3)
    got = on.propose(states[:4], n=6, temperature=temperature)
    torch.manual_seed(3)
    reference = off.propose(states[:4], n=6, temperature=temperature)
    prompts = encode_prompts(tokenizer, on.prompt, states[:4])
    # Sampled, not one repeated outcome per prompt (a trained model may be sure of a puzzle it has learned).
    assert any(len({c.token_ids for c in candidates}) > 1 for candidates in got)
    for prompt, candidates, theirs in zip(prompts, got, reference, strict=True):
        for c in candidates:
            expected = teacher_forced_logprob(model, prompt, c.token_ids, temperature, top_p)
            assert c.logprob == pytest.approx(expected, abs=1e-4)
        # The same softmax fed to torch.multinomial in the same order: generate()'s draws, token for token.
        assert [c.token_ids for c in candidates] == [c.token_ids for c in theirs]


def test_the_draw_is_torch_multinomials_and_nan_logits_are_refused(gqa: tuple[Any, Any], states: list[str]) -> None:
    probs = torch.rand(64, 50) ** 4  # unnormalised and uneven, as multinomial takes them
    torch.manual_seed(11)
    want = torch.multinomial(probs, num_samples=1).squeeze(1)
    torch.manual_seed(11)
    assert torch.equal(fast._draw(probs.clone()), want)
    model, tokenizer = gqa
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.model.layers[0].mlp.down_proj.weight[0, 0] = float("nan")
    policy = HFPolicy(broken, tokenizer, max_new_tokens=8)
    assert policy.uses_fast_decode()
    with pytest.raises(ValueError, match="inf or nan"):
        policy.propose(states[:2], n=2, temperature=1.0)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_dropping_stopped_rows_from_the_cache_changes_no_draw(
    temperature: float, tiny: tuple[Any, Any], states: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer = tiny
    policy, _ = policies(model, tokenizer, max_new_tokens=24)
    runs = {}
    for compact_at in (0.0, 1.0):  # never drop rows; drop them at every step one stops
        monkeypatch.setattr(fast, "COMPACT_AT", compact_at)
        torch.manual_seed(5)
        runs[compact_at] = policy.propose(states, n=4, temperature=temperature)
    kept, dropped = runs[0.0], runs[1.0]
    assert len({c.num_tokens for candidates in kept for c in candidates}) > 2  # rows stop at many different steps
    for mine, theirs in zip(dropped, kept, strict=True):
        assert [c.token_ids for c in mine] == [c.token_ids for c in theirs]
        assert [c.logprob for c in mine] == pytest.approx([c.logprob for c in theirs], abs=1e-5)


@pytest.mark.parametrize("compact_at", [0.0, 0.75, 1.0])
def test_multi_turn_prompts_reuse_the_last_calls_keys_and_values_and_sample_the_same(
    compact_at: float, tiny: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Episodes played turn by turn (accepted steps with the env's canonical text, rejected steps that leave the
    prompt as it was, answers): each turn's prompts extend the last turn's rows, and sampling with their cached
    keys and values draws what a full prefill draws."""
    from reason_gym.envs.game24 import Game24Env

    monkeypatch.setattr(fast, "COMPACT_AT", compact_at)
    model, tokenizer = tiny
    cached, fresh = (HFPolicy(model, tokenizer, max_new_tokens=32) for _ in range(2))
    envs = [Game24Env(reward_weights={"step_solvable": 1.0}) for _ in range(6)]
    states = [env.reset(options={"index": i, "split": "train"})[0] for i, env in enumerate(envs)]
    rejected = 0
    for turn in range(4):
        running = [i for i, env in enumerate(envs) if not env.get_state().done]
        if not running:
            break
        draws = {}
        for name, policy in (("cached", cached), ("fresh", fresh)):
            if policy._decoder is not None and name == "fresh":
                policy._decoder.prefix_cache = fast.PrefixCache()  # a full prefill every turn
            torch.manual_seed(turn)
            draws[name] = policy.propose([states[i] for i in running], n=2, temperature=1.0)
        for mine, theirs in zip(draws["cached"], draws["fresh"], strict=True):
            assert [c.token_ids for c in mine] == [c.token_ids for c in theirs]
            assert [c.logprob for c in mine] == pytest.approx([c.logprob for c in theirs], abs=1e-4)
        for i, candidates in zip(running, draws["cached"], strict=True):
            states[i], _, _, _, info = envs[i].step(candidates[0].text)
            rejected += "error" in info
    assert turn >= 2 and rejected  # several turns, and prompts that a rejected step left unchanged
    assert cached._decoder.prefilled_tokens < 0.6 * fresh._decoder.prefilled_tokens


def test_rows_beyond_the_prefix_caches_memory_are_not_kept(
    tiny: tuple[Any, Any], states: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer = tiny
    policy = HFPolicy(model, tokenizer, max_new_tokens=8)
    policy.propose(states[:3], n=2, temperature=1.0)
    one_row = 2 * policy._decoder.prefix_cache.keys[0].numel() * 4
    monkeypatch.setattr(fast, "PREFIX_CACHE_BYTES", one_row)
    policy.propose(states[:3], n=2, temperature=1.0)
    assert len(policy._decoder.prefix_cache.ids) <= 1
    monkeypatch.setattr(fast, "PREFIX_CACHE_BYTES", 0)
    torch.manual_seed(1)
    drawn = policy.propose(states[:3], n=2, temperature=1.0)
    assert policy._decoder.prefix_cache.ids == []
    torch.manual_seed(1)
    assert [[c.token_ids for c in cs] for cs in policy.propose(states[:3], n=2, temperature=1.0)] == [
        [c.token_ids for c in cs] for cs in drawn
    ]


def test_the_prefix_cache_is_emptied_when_the_weights_change(tiny: tuple[Any, Any], states: list[str]) -> None:
    model, tokenizer = tiny
    policy = HFPolicy(copy.deepcopy(model), tokenizer, max_new_tokens=8)
    policy.propose(states[:3], n=2, temperature=1.0)
    assert len(policy._decoder.prefix_cache.ids) == 6
    with torch.no_grad():
        next(policy.model.parameters()).mul_(1.01)  # an optimizer step would do the same to the version counter
    assert policy._decoder.refresh() and not policy._decoder.prefix_cache.ids


def chi_square_limit(df: int, z: float = 3.09) -> float:
    """The chi-square quantile at normal quantile ``z`` (3.09: p = 0.999), Wilson-Hilferty approximation."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def test_first_tokens_follow_the_models_softmax(tiny: tuple[Any, Any], states: list[str]) -> None:
    model, tokenizer = tiny
    policy = HFPolicy(model, tokenizer, max_new_tokens=1)
    assert policy.uses_fast_decode()
    samples = 4000
    torch.manual_seed(0)
    # temperature 2 spreads a confident model's first token over several (the check needs more than one cell)
    (candidates,) = policy.propose([states[1]], n=samples, temperature=2.0)
    counts = torch.bincount(torch.tensor([c.token_ids[0] for c in candidates]), minlength=len(tokenizer)).double()
    prompt = encode_prompts(tokenizer, policy.prompt, states[1:2])[0]
    with torch.no_grad():
        probs = (model(input_ids=torch.tensor([prompt])).logits[0, -1].double() / 2.0).softmax(-1)  # (V,)
    expected = probs * samples
    # Pearson's chi-square over the tokens expected at least 5 times, the rest pooled into one cell.
    common = expected >= 5
    observed_cells = torch.cat([counts[common], counts[~common].sum()[None]])
    expected_cells = torch.cat([expected[common], expected[~common].sum()[None]])
    keep = expected_cells > 0
    statistic = float(((observed_cells - expected_cells) ** 2 / expected_cells)[keep].sum())
    df = int(keep.sum()) - 1
    assert df >= 2  # the distribution is not a single token
    assert statistic < chi_square_limit(df), (statistic, df)
    assert counts[~common].sum() <= expected[~common].sum() + 5 * math.sqrt(expected[~common].sum() + 1)


# ------------------------------------------------------------------ (d) what supports() accepts


def test_supports_the_tiny_model_and_gqa(tiny: tuple[Any, Any], gqa: tuple[Any, Any]) -> None:
    assert fast.supports(tiny[0]) and fast.supports(gqa[0])


def _gpt2(vocab_size: int) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab_size, n_positions=256, n_embd=32, n_layer=1, n_head=2)
    config.bos_token_id, config.eos_token_id, config.pad_token_id = 1, 2, 0
    return GPT2LMHeadModel(config).eval()


UNSUPPORTED = {
    "rope scaling": lambda vocab: random_llama(vocab, rope_parameters={"rope_type": "linear", "factor": 2.0}),
    "attention bias": lambda vocab: random_llama(vocab, attention_bias=True),
    "mlp bias": lambda vocab: random_llama(vocab, mlp_bias=True),
    "gelu": lambda vocab: random_llama(vocab, hidden_act="gelu"),
    "gpt2": _gpt2,
}


@pytest.mark.parametrize("name", list(UNSUPPORTED))
def test_unsupported_models_fall_back_to_generate(name: str, char_tokenizer: Any, states: list[str]) -> None:
    model = UNSUPPORTED[name](len(char_tokenizer))
    assert not fast.supports(model) and fast.unsupported_reason(model)
    policy = HFPolicy(model, char_tokenizer, max_new_tokens=8)
    assert not policy.uses_fast_decode()
    calls = []
    generate = model.generate
    model.generate = lambda *args, **kwargs: calls.append(1) or generate(*args, **kwargs)
    out = policy.propose(states[:3], n=2, temperature=1.0)
    assert calls and [len(c) for c in out] == [2, 2, 2]
    assert all(1 <= c.num_tokens <= 8 and c.logprob <= 0 for cs in out for c in cs)


def test_a_generation_config_that_changes_sampling_falls_back(tiny: tuple[Any, Any]) -> None:
    model = copy.deepcopy(tiny[0])
    model.generation_config.min_p = 0.05  # generate() would apply it: HFPolicy leaves min_p unset
    assert "min_p" in fast.unsupported_reason(model)
    model.generation_config.min_p = None
    model.generation_config.suppress_tokens = [5]
    assert not fast.supports(model)


def test_bfloat16_and_training_mode_dropout(tiny: tuple[Any, Any]) -> None:
    model = copy.deepcopy(tiny[0])
    model.config.attention_dropout = 0.1
    assert fast.supports(model)  # eval mode: no dropout
    model.train()
    assert "dropout" in fast.unsupported_reason(model)
    model.eval().config._attn_implementation = "eager"
    assert fast.supports(model)  # eager attention in float32 equals sdpa up to rounding
    assert not fast.supports(model.to(torch.bfloat16))  # in bfloat16 it rounds the softmax: not reproduced


# ------------------------------------------------------------------ (e) in-place weight updates


def test_the_fused_weights_follow_in_place_updates(tiny: tuple[Any, Any], states: list[str]) -> None:
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    on, off = policies(model, tokenizer, max_new_tokens=24)
    before = on.propose(states, temperature=0)
    decoder = on._decoder
    assert decoder is not None and not decoder.refresh()  # nothing changed: no rebuild
    with torch.no_grad():  # an update in place, as an optimizer step makes it
        for name, p in model.named_parameters():
            if "proj" in name:
                p.mul_(0.5)
    after, expected = on.propose(states, temperature=0), off.propose(states, temperature=0)
    assert on._decoder is decoder  # the same decoder, its fused weights rebuilt
    assert [c[0].logprob for c in after] != pytest.approx([c[0].logprob for c in before], abs=1e-3)
    for mine, theirs in zip(after, expected, strict=True):
        assert (mine[0].text, mine[0].token_ids) == (theirs[0].text, theirs[0].token_ids)
        assert mine[0].logprob == pytest.approx(theirs[0].logprob, abs=1e-4)
    assert not decoder.refresh()
    model.load_state_dict(tiny[0].state_dict())  # copy_ into the parameters: a change too
    assert decoder.refresh()


def test_updates_the_version_counters_miss_are_followed_once_the_policy_is_told(
    tiny: tuple[Any, Any], states: list[str]
) -> None:
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    on, off = policies(model, tokenizer, max_new_tokens=24)
    on.propose(states, temperature=0)
    for name, p in model.named_parameters():
        if "proj" in name:
            p.data.mul_(0.5)  # through .data: no version counter moves (fused AdamW on CPU updates alike)
    on.weights_changed()
    after, expected = on.propose(states, temperature=0), off.propose(states, temperature=0)
    for mine, theirs in zip(after, expected, strict=True):
        assert (mine[0].text, mine[0].token_ids) == (theirs[0].text, theirs[0].token_ids)
        assert mine[0].logprob == pytest.approx(theirs[0].logprob, abs=1e-4)
    decoder = on._decoder
    assert decoder is not None and not decoder.refresh()
    decoder.invalidate()
    assert decoder.refresh()


def test_half_precision_models_give_generates_candidates(tiny: tuple[Any, Any], states: list[str]) -> None:
    model = copy.deepcopy(tiny[0]).to(torch.bfloat16)  # sdpa attention: the same ops in the same dtypes as HF's
    on, off = policies(model, tiny[1], max_new_tokens=16)
    for temperature in (0.0, 1.0):
        torch.manual_seed(2)
        got = on.propose(states[:6], n=3, temperature=temperature)
        torch.manual_seed(2)
        expected = off.propose(states[:6], n=3, temperature=temperature)
        for mine, theirs in zip(got, expected, strict=True):
            assert [(c.text, c.token_ids) for c in mine] == [(c.text, c.token_ids) for c in theirs]
            assert [c.logprob for c in mine] == pytest.approx([c.logprob for c in theirs], abs=1e-4)


def test_the_generation_benchmark_runs_and_compares_row_dropping(tmp_path: Path, run_script) -> None:
    out = tmp_path / "gen.json"
    args = ["--states", "8", "--n", "2", "--max-new-tokens", "16", "--repeats", "1", "--num-threads", "1"]
    run_script("benchmarks/bench_generation.py", *args, "--json", str(out), timeout=300)
    report = json.loads(out.read_text())
    assert report["transformers"]["sequences"] == 16 and report["transformers"]["tokens_per_s"] > 0
    assert report["row_dropping"]["speedup"] > 0  # its own check that both ways drew the same tokens passed


def test_the_embedded_model_as_users_load_it_samples_through_the_fast_loop() -> None:
    """make_policy loads through agents.policies.hf: it must hand the fast loop a model it supports (transformers 5.25
    began swapping in hub kernels at load time, which turned the fast path off without a word)."""
    from agents.policies import make_policy

    policy = make_policy("tiny")
    assert fast.unsupported_reason(policy.model) is None and policy.uses_fast_decode()
