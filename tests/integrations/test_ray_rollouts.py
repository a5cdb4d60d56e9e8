"""``--rollout-workers``: GRPO steps with rollouts played by two Ray workers equal steps with the same per-group
seeded rollouts played in this process (episodes, rewards, parameters after each update), the workers hold the
learner's weights after every step, and settings Ray cannot honour are refused before a model loads. The tests run
on a local 2-CPU Ray cluster started here and shut down after them."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
ray = pytest.importorskip("ray")

from agents.integrations.ray_rollouts import LocalRollouts, RayRollouts  # noqa: E402
from agents.training.grpo import Callback, GRPOConfig, GRPOTrainer  # noqa: E402
from agents.training.rollouts import Episode  # noqa: E402

STEPS = 2


@pytest.fixture(scope="module")
def cluster():
    """A local 2-CPU Ray cluster for the module (never the one RAY_ADDRESS may name); shut down after it."""
    address = os.environ.pop("RAY_ADDRESS", None)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if address is not None:
        os.environ["RAY_ADDRESS"] = address


def tiny_config(run_dir: Any, **overrides: Any) -> GRPOConfig:
    """The embedded model on Game24: two groups of 2 per step, short steps, one optimizer step per update."""
    settings: dict[str, Any] = dict(
        model="tiny",
        run_dir=str(run_dir),
        total_steps=STEPS,
        batch_size=4,
        group_size=2,
        max_new_tokens=24,
        max_turns=3,
        temperature=1.0,
        eval_problems=0,
        dynamic_sampling=False,
        advantage="process",  # step rewards differ within a group: the update moves the weights
        passes_per_batch=1,
        micro_batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
        num_threads=1,
        progress=False,
        seed=5,
    )
    return GRPOConfig(**{**settings, **overrides})


class Record(Callback):
    """Keeps every step's groups and the parameters after it."""

    def __init__(self) -> None:
        self.groups: list[list[list[Episode]]] = []
        self.parameters: list[dict[str, torch.Tensor]] = []

    def on_rollout_end(self, trainer, groups, metrics) -> None:
        self.groups.append(groups)

    def on_step_end(self, trainer, metrics) -> None:
        self.parameters.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})


def summary(groups: list[list[Episode]]) -> list[list[tuple]]:
    """Everything an episode carries that the update reads, per group."""
    return [
        [
            (
                e.question,
                e.terminated,
                e.is_correct,
                [(s.prompt_ids, s.completion_ids, s.text, s.reward, s.components) for s in e.steps],
            )
            for e in group
        ]
        for group in groups
    ]


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The same STEPS steps from the same weights and seed: rollouts by 2 Ray workers, and in this process."""
    remote_record, local_record = Record(), Record()
    remote = GRPOTrainer(tiny_config(tmp_path_factory.mktemp("ray"), rollout_workers=2), callbacks=[remote_record])
    local = GRPOTrainer(tiny_config(tmp_path_factory.mktemp("local")), callbacks=[local_record])
    local.rollouts = LocalRollouts(local.config, local.policy, local.encode)
    start = {k: v.detach().clone() for k, v in local.model.state_dict().items()}
    synced_after_step_1 = None
    for step in range(STEPS):
        remote.step()
        local.step()
        if step == 0:
            synced_after_step_1 = remote.rollouts.worker_weights()
    played = remote.rollouts.groups_played()
    remote.rollouts.close()
    local.rollouts.close()
    return dict(
        remote=remote_record,
        local=local_record,
        start=start,
        synced=synced_after_step_1,
        played=played,
    )


def test_ray_rollouts_and_updates_equal_local_ones(runs):
    remote, local = runs["remote"], runs["local"]
    assert len(remote.groups) == len(local.groups) == STEPS
    for step in range(STEPS):
        assert summary(remote.groups[step]) == summary(local.groups[step]), f"step {step + 1}: other episodes"
        for name, value in local.parameters[step].items():
            torch.testing.assert_close(remote.parameters[step][name], value, rtol=1e-6, atol=1e-7, msg=name)
    # Not vacuous: the updates moved the weights, the episodes differ between groups and steps, and both workers
    # played groups (two per step, four in all).
    assert any(not torch.equal(runs["start"][k], v) for k, v in local.parameters[0].items())
    assert any(not torch.equal(local.parameters[0][k], v) for k, v in local.parameters[1].items())
    rewards = [e.reward for step in local.groups for group in step for e in group]
    assert len(set(rewards)) > 1, rewards
    assert summary(local.groups[0]) != summary(local.groups[1])
    assert runs["played"] == [2, 2]


def test_workers_hold_the_learners_weights_after_a_step(runs):
    learner = runs["remote"].parameters[0]  # the Ray run's learner after step 1
    assert len(runs["synced"]) == 2
    for weights in runs["synced"]:
        assert weights.keys() == learner.keys()
        for name, value in learner.items():
            assert torch.equal(weights[name], value), name
        assert any(not torch.equal(weights[k], runs["start"][k]) for k in learner), "still the starting weights"


def test_unchanged_weights_are_not_sent_again(cluster, tmp_path):
    config = tiny_config(tmp_path, rollout_workers=1)
    trainer = GRPOTrainer(config)
    try:
        assert trainer.rollouts.sync(trainer.model) is True  # the first copy
        assert trainer.rollouts.sync(trainer.model) is False
        with torch.no_grad():
            next(trainer.model.parameters()).add_(1.0)
        assert trainer.rollouts.sync(trainer.model) is True
        [weights] = trainer.rollouts.worker_weights()
        for name, value in trainer.model.state_dict().items():
            assert torch.equal(weights[name], value), name
        # an update that moves no version counter (as torch's fused AdamW on CPU makes): sent once told
        next(trainer.model.parameters()).data.mul_(0.5)
        assert trainer.rollouts.sync(trainer.model) is False
        trainer.rollouts.weights_changed()
        assert trainer.rollouts.sync(trainer.model) is True
        [weights] = trainer.rollouts.worker_weights()
        for name, value in trainer.model.state_dict().items():
            assert torch.equal(weights[name], value), name
    finally:
        trainer.rollouts.close()


def test_workers_follow_the_steps_of_an_optimizer_that_moves_no_version_counter(cluster, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.optim, "AdamW", functools.partial(torch.optim.AdamW, fused=True))
    trainer = GRPOTrainer(tiny_config(tmp_path, rollout_workers=1, total_steps=1))
    try:
        assert trainer.optimizer.defaults["fused"]
        start = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        trainer.step()
        learner = trainer.model.state_dict()
        assert any(not torch.equal(learner[k], start[k]) for k in start), "the step did not move the weights"
        [weights] = trainer.rollouts.worker_weights()
        for name, value in learner.items():
            assert torch.equal(weights[name], value), name
    finally:
        trainer.rollouts.close()


@pytest.mark.parametrize(
    ("overrides", "environ", "message"),
    [
        ({"rollout_workers": -1}, {}, "rollout_workers must be >= 0"),
        ({"rollout_workers": 2, "generation_backend": "vllm"}, {}, "--generation-backend vllm"),
        ({"rollout_workers": 2}, {"WORLD_SIZE": "2"}, "WORLD_SIZE=2"),
    ],
    ids=["negative", "vllm", "data-parallel"],
)
def test_settings_ray_cannot_honour_are_refused(tmp_path, monkeypatch, overrides, environ, message):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="rollout_workers") as error:
        tiny_config(tmp_path, **overrides)
    assert message in str(error.value)


def test_missing_ray_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: importlib finds no spec
    with pytest.raises(ValueError, match=r"rollout_workers=2 needs Ray: pip install 'reason-gym\[ray\]'"):
        tiny_config(tmp_path, rollout_workers=2)
    tiny_config(tmp_path)  # local rollouts need no Ray


def test_a_model_the_workers_cannot_load_fails_at_start(cluster, tmp_path):
    config = tiny_config(tmp_path, rollout_workers=1, model=str(tmp_path / "no-such-model"))
    with pytest.raises(Exception, match="no-such-model"):
        RayRollouts(config)
