# ruff: noqa: E402  (the imports after importorskip need verl)
"""agents.integrations.verl.ReasonGymAgentLoop: verl's AgentLoopBase subclass, its run() driven by a server manager
that samples from the embedded tiny model (no mock), then verl's own agent-loop worker post-processing (padding,
rm_scores) through StepRewardAgentLoopWorker, then the process estimator on the result."""

from __future__ import annotations

import asyncio

import pytest

verl = pytest.importorskip("verl.trainer")  # not a folder named verl: the package

import gymnasium as gym
import numpy as np
import torch
from omegaconf import OmegaConf
from verl.experimental.agent_loop.agent_loop import DictConfigWrap, _agent_loop_registry

from agents.integrations.verl import (
    AGENT_NAME,
    HFServerManager,
    ReasonGymAgentLoop,
    StepRewardAgentLoopWorker,
    compute_process_advantage,
    rejection_feedback,
)
from agents.training.advantages import process_advantages

pytestmark = pytest.mark.slow

ENV_ID = "reason_gym/Game24-v0"
ENV_KWARGS = {"reward_weights": {"step_solvable": 0.2}, "max_steps": 4}
SAMPLING = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "logprobs": True}
GROUPS, GROUP_SIZE = 3, 4


@pytest.fixture(scope="module")
def played():
    torch.manual_seed(0)
    loop, server, config = make_loop(response_length=160, max_step_tokens=40)
    model, tokenizer = server.model, loop.tokenizer
    rows = [{"index": 10 + g, "split": "test"} for g in range(GROUPS) for _ in range(GROUP_SIZE)]

    async def play():  # verl's worker runs the episodes of a batch concurrently, as tasks of one event loop
        return await asyncio.gather(*[loop.run(dict(SAMPLING), extra_info=row) for row in rows])

    outputs = asyncio.run(play())
    return model, tokenizer, config, server, rows, outputs


def replay(row, steps):
    env = gym.make(ENV_ID, **ENV_KWARGS)
    observation, _ = env.reset(options=row)
    rewards, infos = [], []
    for step in steps:
        _, reward, terminated, truncated, info = env.step(step)
        rewards.append(float(reward))
        infos.append(info)
        if terminated or truncated:
            break
    return observation, rewards, infos


def test_registered_with_verl():
    assert _agent_loop_registry[AGENT_NAME] == {"_target_": "agents.integrations.verl.ReasonGymAgentLoop"}


def test_tokens_decode_to_the_steps_the_env_accepted_and_rewards_are_the_envs(played):
    model, tokenizer, _, server, rows, outputs = played
    assert server.calls >= len(outputs)
    env_text = 0
    for row, out in zip(rows, outputs, strict=True):
        steps = out.extra_fields["steps"]
        assert steps, "every episode takes at least one step"
        observation, rewards, infos = replay(row, steps)
        assert tokenizer.decode(out.prompt_ids, skip_special_tokens=True) == observation + "\n"
        assert out.extra_fields["step_rewards"] == rewards
        assert out.reward_score == pytest.approx(sum(rewards))
        assert len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs)
        # The model's tokens, cut at the step ends, are the steps (and their newline); the env's tokens are its
        # feedback after each step it rejected.
        ids, mask, ends = out.response_ids, out.response_mask, out.extra_fields["step_ends"]
        start = 0
        for j, (end, step, info) in enumerate(zip(ends, steps, infos, strict=True)):
            model_part = [t for t, m in zip(ids[start : end + 1], mask[start : end + 1], strict=True) if m]
            assert tokenizer.decode(model_part, skip_special_tokens=True).rstrip("\n") == step
            following = ends[j + 1] if j + 1 < len(ends) else len(ids) - 1
            after = zip(ids[end + 1 : following + 1], mask[end + 1 : following + 1], strict=True)
            note = [t for t, m in after if not m]
            written = tokenizer.decode(note, skip_special_tokens=True)
            want = rejection_feedback(step, rewards[j], info)
            if j + 1 < len(ends):
                assert written == want
            elif out.extra_fields["done"]:
                assert written == ""  # nothing after the env's last step
            else:  # the response length cut the episode, perhaps inside the feedback
                assert want.startswith(written)
            env_text += len(note)
            start = end + 1
        # the log-probabilities are the model's own, at the sampling temperature, on the model's tokens
        with torch.no_grad():
            logits = model(torch.tensor([out.prompt_ids + ids])).logits[0, len(out.prompt_ids) - 1 : -1].float()
        logps = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(ids)[:, None]).squeeze(-1)
        model_tokens = torch.tensor(mask, dtype=torch.bool)
        sampled = torch.tensor(out.response_logprobs)[model_tokens]
        torch.testing.assert_close(sampled, logps[model_tokens], atol=1e-4, rtol=0)
    assert any(out.extra_fields["done"] for out in outputs)
    print(f"env-written tokens: {env_text}; steps: {sum(len(o.extra_fields['steps']) for o in outputs)}")


def test_verls_worker_postprocess_then_the_estimator_give_our_process_advantages(played):
    """verl's AgentLoopWorker._agent_loop_postprocess and _postprocess (padding, masks, rm_scores), with the
    step-reward override, on the real episodes; then the estimator; against process_advantages per group."""
    _, tokenizer, config, _, rows, outputs = played
    worker = object.__new__(StepRewardAgentLoopWorker)  # no Ray actor: only the post-processing methods run
    worker.config = config
    worker.rollout_config = config.actor_rollout_ref.rollout
    worker.tokenizer, worker.processor = tokenizer, None
    worker.reward_loop_worker_handles = None
    worker.distillation_enabled = False
    worker.mm_processor_kwargs = {}

    async def post():
        return [
            await worker._agent_loop_postprocess(out.model_copy(deep=True), False, raw_prompt=[]) for out in outputs
        ]

    internal = asyncio.run(post())
    batch = worker._postprocess(internal)
    scores, mask = batch.batch["rm_scores"], batch.batch["response_mask"]
    for i, out in enumerate(outputs):
        n = len(out.response_ids)
        assert batch.batch["responses"][i, :n].tolist() == out.response_ids
        assert mask[i, :n].tolist() == out.response_mask and not mask[i, n:].any()
        assert scores[i].sum().item() == pytest.approx(out.reward_score, abs=1e-6)
    index = np.array([f"uid-{row['index']}" for row in rows], dtype=object)
    advantages, _ = compute_process_advantage(scores, mask, index)
    for g in range(GROUPS):
        members = list(range(g * GROUP_SIZE, (g + 1) * GROUP_SIZE))
        want = process_advantages([outputs[i].extra_fields["step_rewards"] for i in members])
        for i, per_step in zip(members, want, strict=True):
            start = 0
            for end, value in zip(outputs[i].extra_fields["step_ends"], per_step, strict=True):
                span = mask[i, start : end + 1].bool()
                torch.testing.assert_close(
                    advantages[i, start : end + 1][span].double(),
                    torch.full((int(span.sum()),), float(value), dtype=torch.float64),
                    atol=1e-5,
                    rtol=0,
                )
                start = end + 1


# ---------------------------------------------------------------------- bad rows and settings (the audit's table)


def make_loop(model_and_tokenizer=None, response_length=64, **settings):
    """A loop over the tiny model (or the given one) behind HFServerManager; returns it, its server and config."""
    from agents.models import TINY_MODEL_DIR
    from agents.policies.hf import load_model_and_tokenizer

    model, tokenizer = model_and_tokenizer or load_model_and_tokenizer(TINY_MODEL_DIR, dtype=torch.float32)
    rollout = {"prompt_length": 128, "response_length": response_length}
    config = OmegaConf.create({"actor_rollout_ref": {"rollout": rollout}})
    server = HFServerManager(model, tokenizer)
    loop = ReasonGymAgentLoop(
        trainer_config=DictConfigWrap(config),
        server_manager=server,
        tokenizer=tokenizer,
        processor=None,
        dataset_cls=None,
        data_config=DictConfigWrap(OmegaConf.create({})),
        **{"env_id": ENV_ID, "env_kwargs": ENV_KWARGS, "max_step_tokens": 8, **settings},
    )
    return loop, server, config


@pytest.fixture(scope="module")
def small_loop():
    return make_loop()


@pytest.mark.parametrize(
    ("extra_info", "error"),
    [
        ({}, r"names no problem: it needs 'index' \(and 'split'\) or 'problem'"),
        ({"idx": 3}, "names no problem"),
        ({"split": "test"}, "names no problem"),
        ({"index": 0.7}, "'index' column must hold ints"),
        ({"index": True}, "'index' column must hold ints"),
        ({"index": 0, "split": "test", "problem_id": "wrong"}, "names problem 'wrong'"),
        ({"problem": '{"numbers": [1, 2, 3, 4]}', "problem_id": "wrong"}, "names problem 'wrong'"),
        ({"problem": "What is 24?"}, "'problem' column must hold .* JSON object"),
        ({"env_id": "reason_gym/Nope-v0", "index": 0}, "'reason_gym/Nope-v0' is not registered"),
    ],
)
def test_rows_that_name_no_problem_are_refused_before_any_generation(small_loop, extra_info, error):
    loop, server, _ = small_loop
    calls = server.calls
    with pytest.raises(ValueError, match=error):
        asyncio.run(loop.run(dict(SAMPLING), extra_info=extra_info))
    assert server.calls == calls


@pytest.mark.parametrize(
    ("extra_info", "options"),
    [
        ({"problem": '{"numbers": [1, 2, 3, 4]}'}, {"problem": {"numbers": [1, 2, 3, 4]}}),
        ({"index": np.int64(3), "split": "test"}, {"index": 3, "split": "test"}),
        ({"index": 3, "split": "test", "problem_id": None}, {"index": 3, "split": "test"}),
    ],
)
def test_a_row_plays_the_problem_it_names(small_loop, extra_info, options):
    loop, _, _ = small_loop
    out = asyncio.run(loop.run(dict(SAMPLING), extra_info=extra_info))
    observation, _ = gym.make(ENV_ID, **ENV_KWARGS).reset(options=options)
    assert loop.tokenizer.decode(out.prompt_ids, skip_special_tokens=True) == observation + "\n"


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"env_id": "reason_gym/Nope-v0"}, "'reason_gym/Nope-v0' is not registered"),
        ({"env_kwargs": {"bogus": 1}}, "bogus"),
        ({"env_kwargs": {"split": "nope"}}, "split"),
        ({"env_kwargs": ["split"]}, "env_kwargs must be a mapping"),
        ({"max_step_tokens": 1.5}, "max_step_tokens must be an int >= 1, got 1.5"),
        ({"max_step_tokens": "8"}, "max_step_tokens must be an int >= 1, got '8'"),
        ({"max_turns": 0}, "max_turns must be an int >= 1, got 0"),
        ({"feedback": "yes"}, "feedback must be True, False or a callable"),
    ],
)
def test_bad_settings_are_refused_when_the_loop_is_built(small_loop, settings, error):
    loop, _, _ = small_loop
    with pytest.raises(ValueError, match=error):
        make_loop((loop.server_manager.model, loop.tokenizer), **settings)
