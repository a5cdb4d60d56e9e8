"""agents.integrations.trl.EnvRollout inside TRL's GRPOTrainer: whole episodes step by step, with the rewards TRL
logs equal to the env's own for the same steps."""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import gymnasium as gym
import pytest

pytest.importorskip("trl")
pytest.importorskip("datasets")

import torch

from reason_gym.integrations.trl import (
    make_dataset,
    make_reward_funcs,
    reset_to_row,
    reward_weights,
    split_completion,
)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

ENV_ID = "reason_gym/Game24-v0"
STEPS = 2


def note(step: str, reward: float, info: dict[str, Any]) -> str:
    """Feedback after every step (the default writes only after rejected ones): every episode has env text."""
    return f"[{reward:g}]\n"


def make_trainer(tmp_path: Any, **kwargs: Any) -> Any:
    os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
    from trl import GRPOConfig, GRPOTrainer

    from agents.models import TINY_MODEL_DIR
    from agents.policies.hf import load_model_and_tokenizer

    torch.manual_seed(0)
    model, tokenizer = load_model_and_tokenizer(TINY_MODEL_DIR, dtype=torch.float32)
    funcs = kwargs.pop("reward_funcs")
    config = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,  # TRL's default autocasts to bf16 (on CPU too): logits then differ from float32 by ~1e-2
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        max_steps=STEPS,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=kwargs.pop("max_completion_length", 96),
        beta=0.0,
        learning_rate=1e-4,
        reward_weights=reward_weights(funcs),
        seed=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GRPOTrainer(model=model, reward_funcs=funcs, args=config, processing_class=tokenizer, **kwargs)


def replay(env: gym.Env, row: dict[str, Any], steps: list[str]) -> tuple[float, float]:
    """The env's return for these steps, and its outcome component's share."""
    reset_to_row(env, row)
    total = outcome = 0.0
    for step in steps:
        _, reward, terminated, truncated, info = env.step(step)
        total += reward
        outcome += info["reward_components"]["outcome"]
        if terminated or truncated:
            break
    return total, outcome


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    from agents.integrations.trl import EnvRollout

    torch.set_num_threads(1)
    rollout = EnvRollout(ENV_ID, feedback=note)
    trainer = make_trainer(
        tmp_path_factory.mktemp("trl"),
        reward_funcs=rollout.reward_funcs(),
        train_dataset=make_dataset(ENV_ID, limit=8),
        rollout_func=rollout,
    )
    trainer.train()
    return trainer, rollout


def test_logged_rewards_equal_the_envs(trained: tuple[Any, Any]) -> None:
    trainer, rollout = trained
    env = gym.make(ENV_ID)
    logs = [h for h in trainer.state.log_history if "rewards/total/mean" in h]
    assert len(logs) == STEPS == len(rollout.history)
    for log, episodes in zip(logs, rollout.history, strict=True):
        replays = [replay(env, e.row, e.steps) for e in episodes]
        assert all(math.isclose(sum(e.rewards), r[0], abs_tol=1e-9) for e, r in zip(episodes, replays, strict=True))
        assert math.isclose(log["rewards/total/mean"], sum(r[0] for r in replays) / len(replays), abs_tol=1e-6)
        assert math.isclose(log["rewards/outcome/mean"], sum(r[1] for r in replays) / len(replays), abs_tol=1e-6)
    last = [replay(env, e.row, e.steps)[0] for e in rollout.history[-1]]
    assert list(trainer._logs["rewards"]["total"]) == pytest.approx(last, abs=1e-6)
    assert any(len(e.steps) > 1 for e in rollout.history[-1]), "no episode took more than one step"


def test_env_mask_marks_the_envs_text(trained: tuple[Any, Any]) -> None:
    trainer, rollout = trained
    tokenizer = trainer.processing_class
    for episode in rollout.history[-1]:
        ids, mask, logps = episode.completion_ids, episode.env_mask, episode.logprobs
        assert len(ids) == len(mask) == len(logps) <= 96
        model_text = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m], skip_special_tokens=True)
        env_text = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m], skip_special_tokens=True)
        assert env_text == "".join(episode.feedback)
        assert [line for line in model_text.split("\n")][: len(episode.steps)] == episode.steps
        assert all(lp == 0.0 for lp, m in zip(logps, mask, strict=True) if not m)
        assert all(lp <= 0.0 for lp in logps)
        if episode.done:  # the env closed it with the end-of-sequence token, not the model
            assert ids[-1] == tokenizer.eos_token_id and mask[-1] == 0


def test_logprobs_are_the_models_on_the_transcript(trained: tuple[Any, Any]) -> None:
    """Each step was generated from exactly the prompt and transcript TRL scores it with: the returned
    log-probabilities equal a forward pass over prompt + completion (weights fixed after training)."""
    trainer, rollout = trained
    dataset = trainer.train_dataset
    prompts = [dataset[i]["prompt"] for i in range(4)]
    out = rollout(prompts, trainer)
    model = trainer.model.eval()
    for prompt_ids, ids, logps, mask in zip(
        out["prompt_ids"], out["completion_ids"], out["logprobs"], out["env_mask"], strict=True
    ):
        sequence = torch.tensor([prompt_ids + ids])
        with torch.no_grad():
            logits = model(sequence).logits[0, len(prompt_ids) - 1 : -1] / trainer.temperature
        expected = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(ids).unsqueeze(-1)).squeeze(-1)
        got = torch.tensor(logps)
        keep = torch.tensor(mask).bool()
        assert torch.allclose(got[keep], expected[keep], atol=1e-4)


def test_unknown_prompt_and_bad_env(trained: tuple[Any, Any]) -> None:
    from agents.integrations.trl import EnvRollout

    trainer, rollout = trained
    with pytest.raises(ValueError, match="in no dataset"):
        rollout(["Game of 24: nothing like this\n"], trainer)
    with pytest.raises(ValueError, match="'reason_gym/Nope-v0' is not registered"):
        EnvRollout("reason_gym/Nope-v0")
    with pytest.raises(ValueError, match="problem columns"):
        EnvRollout(ENV_ID, dataset=[{"prompt": "x"}])


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"feedback": "yes"}, "feedback must be None or a callable"),
        ({"max_step_tokens": 1.5}, "max_step_tokens must be an int >= 1, got 1.5"),
        ({"max_step_tokens": "8"}, "max_step_tokens must be an int >= 1, got '8'"),
        ({"max_step_tokens": True}, "max_step_tokens must be an int >= 1, got True"),
        ({"max_turns": 0}, "max_turns must be an int >= 1, got 0"),
        ({"bogus": 1}, r"unknown keyword argument \['bogus'\]"),
    ],
)
def test_bad_rollout_settings_name_the_setting(settings: dict[str, Any], error: str) -> None:
    from agents.integrations.trl import EnvRollout

    with pytest.raises(ValueError, match=error):
        EnvRollout(ENV_ID, **settings)


def test_single_turn_reward_funcs_in_trl(tmp_path: Any) -> None:
    """make_reward_funcs in TRL's own generation loop: the logged rewards are the env's for the completions."""
    torch.set_num_threads(1)
    dataset = make_dataset(ENV_ID, limit=8)
    trainer = make_trainer(
        tmp_path, reward_funcs=make_reward_funcs(ENV_ID), train_dataset=dataset, max_completion_length=48
    )
    trainer.train()
    rows = {row["prompt"]: row for row in dataset}
    env = gym.make(ENV_ID)
    expected = [
        replay(env, rows[p], split_completion(c))[0]
        for p, c in zip(trainer._logs["prompt"], trainer._logs["completion"], strict=True)
    ]
    assert list(trainer._logs["rewards"]["total"]) == pytest.approx(expected, abs=1e-6)
    log = [h for h in trainer.state.log_history if "rewards/total/mean" in h][-1]
    assert log["rewards/total/mean"] == pytest.approx(sum(expected) / len(expected), abs=1e-6)
