"""The "reason_gym_process" advantage estimator registered with verl: the numbers of
agents.training.advantages on verl's token-level tensors, and verl's own GRPO for one reward per response."""

# ruff: noqa: E402  (the imports after importorskip need verl)
from __future__ import annotations

import pytest

verl = pytest.importorskip("verl.trainer")  # not a folder named verl: the package

import numpy as np
import torch
from verl.trainer.config import AlgoConfig
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_adv_estimator_fn

from agents.integrations.verl import (
    ESTIMATOR_NAME,
    compute_process_advantage,
    find_step_ends,
    step_reward_scores,
)
from agents.training.advantages import outcome_advantages, process_advantages


def ragged_batch(seed: int, groups: int = 3, group_size: int = 4, width: int = 48):
    """Responses of 1-4 steps each (3-6 model tokens a step), some steps followed by env text (mask 0), padding
    after; rewards drawn from {-0.1, 0, 0.2, 1} so that many steps have reward 0."""
    rng = np.random.default_rng(seed)
    mask = torch.zeros(groups * group_size, width, dtype=torch.long)
    ends, rewards, spans, index = [], [], [], []
    for row in range(groups * group_size):
        index.append(f"uid-{row // group_size}")
        position, row_ends, row_rewards, row_spans = 0, [], [], []
        for _ in range(int(rng.integers(1, 5))):
            length = int(rng.integers(3, 7))
            mask[row, position : position + length] = 1
            row_spans.append((position, position + length))
            position += length
            row_ends.append(position - 1)
            row_rewards.append(float(rng.choice([-0.1, 0.0, 0.0, 0.2, 1.0])))
            position += int(rng.integers(0, 3))  # env text
        ends.append(row_ends)
        rewards.append(row_rewards)
        spans.append(row_spans)
    return mask, ends, rewards, spans, np.array(index, dtype=object)


def expected(mask, rewards, spans, index, scale: bool, eps: float) -> torch.Tensor:
    """Our process advantages, group by group, spread over each step's model tokens."""
    out = torch.zeros(mask.shape, dtype=torch.float64)
    for key in dict.fromkeys(index):
        rows = [i for i, k in enumerate(index) if k == key]
        per_row = process_advantages([rewards[i] for i in rows], scale=scale, eps=eps)
        for i, advantages in zip(rows, per_row, strict=True):
            for (a, b), value in zip(spans[i], advantages, strict=True):
                out[i, a:b] = value
    return out


def test_registered_under_its_name():
    assert get_adv_estimator_fn(ESTIMATOR_NAME) is compute_process_advantage


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scale", [True, False])
def test_process_advantages_equal_ours_with_explicit_step_ends(seed, scale):
    mask, ends, rewards, spans, index = ragged_batch(seed)
    scores = step_reward_scores(mask, ends, rewards)
    step_ends = torch.zeros_like(mask, dtype=torch.bool)
    for row, row_ends in enumerate(ends):
        step_ends[row, row_ends] = True
    advantages, returns = compute_process_advantage(
        scores, mask, index, epsilon=1e-4, norm_adv_by_std_in_grpo=scale, step_ends=step_ends
    )
    want = expected(mask, rewards, spans, index, scale, 1e-4)
    torch.testing.assert_close(advantages.double(), want, atol=1e-5, rtol=1e-5)
    assert torch.equal(advantages, returns)
    assert (advantages[mask == 0] == 0).all()  # env text and padding


@pytest.mark.parametrize("seed", [3, 4])
def test_zero_reward_steps_are_found_by_their_negative_zero(seed):
    mask, ends, rewards, spans, index = ragged_batch(seed)
    assert any(r == 0 for row in rewards for r in row)
    scores = step_reward_scores(mask, ends, rewards)
    found = find_step_ends(scores, mask)
    assert [torch.nonzero(row).squeeze(-1).tolist() for row in found] == ends
    advantages, _ = compute_process_advantage(scores, mask, index)  # the project's eps, std scaling on
    want = expected(mask, rewards, spans, index, True, 1e-4)
    torch.testing.assert_close(advantages.double(), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("scale", [True, False])
def test_one_reward_per_response_is_verls_grpo(scale):
    rng = np.random.default_rng(7)
    mask, _, _, _, index = ragged_batch(7, groups=4, group_size=5)
    index[-1] = "a group of one"
    scores = torch.zeros(mask.shape)
    last = [int(torch.nonzero(row).max()) for row in mask]
    outcomes = rng.choice([0.0, 0.0, 1.0, 0.5], size=len(last))
    for row, (position, value) in enumerate(zip(last, outcomes, strict=True)):
        scores[row, position] = float(value)
    ours, _ = compute_process_advantage(scores, mask, index, epsilon=1e-6, norm_adv_by_std_in_grpo=scale)
    theirs, _ = compute_grpo_outcome_advantage(scores, mask, index, epsilon=1e-6, norm_adv_by_std_in_grpo=scale)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    # and the project's outcome advantages, group by group (groups of at least two)
    for key in ["uid-0", "uid-1", "uid-2"]:
        rows = [i for i, k in enumerate(index) if k == key]
        want = outcome_advantages(outcomes[rows], scale=scale, eps=1e-6)
        np.testing.assert_allclose(ours[rows, 0].double().numpy(), want, atol=1e-5)


def test_verls_compute_advantage_dispatches_to_it_with_the_configs_scaling():
    from verl import DataProto
    from verl.trainer.ppo.ray_trainer import compute_advantage

    mask, ends, rewards, spans, index = ragged_batch(5)
    scores = step_reward_scores(mask, ends, rewards)
    for scale in (True, False):
        data = DataProto.from_dict(
            tensors={"token_level_rewards": scores.clone(), "response_mask": mask.clone()},
            non_tensors={"uid": index},
        )
        config = AlgoConfig(adv_estimator=ESTIMATOR_NAME, norm_adv_by_std_in_grpo=scale)
        data = compute_advantage(data, adv_estimator=ESTIMATOR_NAME, config=config)
        want = expected(mask, rewards, spans, index, scale, 1e-4)
        torch.testing.assert_close(data.batch["advantages"].double(), want, atol=1e-5, rtol=1e-5)
