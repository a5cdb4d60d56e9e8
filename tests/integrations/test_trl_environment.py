"""TRL's environment_factory on reason_gym envs: reset returns the question, the tools call env.step, get_reward is
the episode's return; an end-to-end GRPOTrainer run on CPU in which the model really calls the tools, and the
rewards TRL logs equal the env's returns for the same episodes."""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

import gymnasium as gym
import pytest

import reason_gym  # noqa: F401  (registers the environments)
from reason_gym.integrations.trl_tools import (
    DONE,
    ReasonGymEnv,
    environment_factories,
    environment_factory,
    make_environment_dataset,
    reset_to_row,
)

MIXED = {"game24": "reason_gym/Game24-v0", "arithmetic": "reason_gym/Arithmetic-v0", "mbpp": "reason_gym/MBPP-v0"}


def replay(episode: dict[str, Any]) -> float:
    """The return a fresh env gives for an episode's actions on its row's problem."""
    env = gym.make(episode["env_id"])
    reset_to_row(env, episode["row"])
    total = 0.0
    for action in episode["actions"]:
        _, reward, terminated, truncated, _ = env.step(action)
        total += reward
        if terminated or truncated:
            break
    return total


def test_tools_call_the_env_and_get_reward_is_the_return() -> None:
    pytest.importorskip("datasets")
    recorder: list[dict[str, Any]] = []
    dataset = make_environment_dataset(MIXED, limit=2)
    assert dataset["environment"] == ["game24", "arithmetic", "mbpp"] * 2
    factories = environment_factories(MIXED, recorder=recorder)
    env = factories["game24"]()
    row = {k: v for k, v in dataset[0].items() if k != "environment"}
    question = env.reset(**row)
    task = env.env.unwrapped.task
    assert question.startswith("Game of 24:") and task.step_format in question and task.answer_format in question
    from agents.integrations.trl_env import solution_actions

    steps, answer = solution_actions(env.env_id, env.env.unwrapped.get_state().problem)
    assert env.step("1 + 1 = 3").startswith("Rejected:")
    for step in steps:
        assert env.step(step).startswith("Accepted.")
    assert env.answer(answer.removeprefix("Answer: ")) == "Correct."
    assert env.step("more") == DONE and env.calls == len(steps) + 3
    assert env.get_reward() == pytest.approx(1.0 - 0.1) == replay(recorder[0])
    arithmetic = factories["arithmetic"]()
    arithmetic.reset(**{k: v for k, v in dataset[1].items() if k != "environment"})
    assert arithmetic.answer("not a number").startswith("Wrong") and arithmetic.get_reward() == 0.0
    assert [e["env_id"] for e in recorder] == ["reason_gym/Game24-v0", "reason_gym/Arithmetic-v0"]
    # TRL makes tools of the public methods: only step and answer (reset and get_reward are its hooks).
    import inspect

    public = {n for n, _ in inspect.getmembers(ReasonGymEnv, inspect.isfunction) if not n.startswith("_")}
    assert public == {"reset", "step", "answer", "get_reward"}
    with pytest.raises(ValueError, match="not registered"):
        environment_factory("reason_gym/Nope-v0")


@pytest.mark.slow
def test_grpo_trainer_calls_the_tools_and_logs_the_env_rewards(tmp_path: Any) -> None:
    pytest.importorskip("trl")
    pytest.importorskip("datasets")
    import torch

    os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from agents.integrations.trl_env import force_tool_calls, tiny_tool_model, tool_chat_tokenizer

    torch.manual_seed(0)
    dataset = make_environment_dataset(MIXED, limit=4)
    tokenizer = tool_chat_tokenizer()
    # A random model never writes a tool call: its generation is constrained to well-formed calls (the tool and the
    # argument are its choices), see agents.integrations.trl_env.
    model = force_tool_calls(tiny_tool_model(tokenizer), tokenizer)
    recorder: list[dict[str, Any]] = []
    logs: list[dict[str, float]] = []

    class Logs(TrainerCallback):
        def on_log(self, _args: Any, _state: Any, _control: Any, logs: dict[str, float] | None = None, **_: Any):
            if logs and "rewards/ReasonGymEnv/mean" in logs:
                collected.append(dict(logs))

    collected = logs
    config = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        max_steps=STEPS,
        per_device_train_batch_size=6,
        num_generations=3,
        max_completion_length=128,
        max_tool_calling_iterations=3,
        beta=0.0,
        learning_rate=1e-4,
        seed=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = GRPOTrainer(
            model=model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            environment_factory=environment_factories(MIXED, recorder=recorder),
            callbacks=[Logs()],
        )
        trainer.train()
    assert len(logs) == STEPS and len(recorder) == 6 * STEPS
    calls = sum(e["calls"] for e in recorder)
    assert calls > 0, "the model called no tool"
    assert sum(len(e["actions"]) for e in recorder) > 0
    assert {e["env_id"] for e in recorder} <= set(MIXED.values())
    for step, log in enumerate(logs):
        episodes = recorder[6 * step : 6 * step + 6]
        expected = sum(replay(e) for e in episodes) / len(episodes)
        assert math.isclose(log["rewards/ReasonGymEnv/mean"], expected, abs_tol=1e-6), (step, log, episodes)
    print(f"tool calls: {calls} over {len(recorder)} episodes; TRL's tools/call_frequency: "
          f"{[log.get('tools/call_frequency') for log in logs]}")  # fmt: skip


STEPS = 2


# ---------------------------------------------------------------------- bad configurations (the audit's table)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: environment_factory("reason_gym/Game24-v0", bogus=1), r"unknown keyword argument \['bogus'\]"),
        (lambda: environment_factory("reason_gym/Game24-v0", split="nope"), "split"),
        (lambda: environment_factory("reason_gym/Remote-v0"), "Remote-v0 cannot be built .*base_url"),
        (lambda: environment_factory("reason_gym/Nope-v0"), "'reason_gym/Nope-v0' is not registered"),
        (lambda: environment_factory("reason_gym/Game24-v0", recorder={}), "recorder must be a list"),
        (lambda: environment_factories({"g": "reason_gym/Game24-v0"}, g={"bogus": 1}), "bogus"),
        (lambda: environment_factories({"g": "reason_gym/Game24-v0"}, gg={}), r"env_kwargs for \['gg'\]"),
        (lambda: environment_factories({"g": "reason_gym/Game24-v0"}, g="test"), "g= must be a dict"),
        (lambda: make_environment_dataset({"g": "reason_gym/Game24-v0"}, gg={"split": "test"}), r"\['gg'\]"),
        (lambda: make_environment_dataset({"g": "reason_gym/Game24-v0"}, g=["x"]), "g= must be a dict"),
    ],
)
def test_bad_configurations_fail_when_the_factory_is_built(call: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        call()


def test_the_factory_of_a_good_configuration_builds_its_env() -> None:
    recorder: list[dict[str, Any]] = []
    env = environment_factory("reason_gym/Game24-v0", recorder=recorder, max_steps=5)()
    env.reset(index=0, split="test")
    assert env.env.unwrapped.max_steps == 5 and len(recorder) == 1
