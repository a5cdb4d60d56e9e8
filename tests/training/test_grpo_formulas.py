"""GRPO's formulas against numbers computed by hand (the derivations are in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agents.training.advantages import EPS, is_informative, outcome_advantages, process_advantages  # noqa: E402
from agents.training.policy_loss import Window, aggregate, clipped_surrogate, k3_kl  # noqa: E402

# ----------------------------------------------------------------------------------------- outcome advantages

# rewards -> (advantages with std scaling, without). Sample std (ddof=1), eps 1e-4.
OUTCOME_CASES = [
    # mean 0.5; sample std sqrt(4 * 0.25 / 3) = 0.577350; 0.5 / 0.577450 = 0.865876
    ([1.0, 0.0, 0.0, 1.0], [0.865876, -0.865876, -0.865876, 0.865876], [0.5, -0.5, -0.5, 0.5]),
    # mean 1; sample std sqrt((1 + 1 + 0) / 2) = 1; 1 / 1.0001 = 0.999900
    ([2.0, 0.0, 1.0], [0.999900, -0.999900, 0.0], [1.0, -1.0, 0.0]),
    # one success in four: mean 0.25; std sqrt((0.5625 + 3 * 0.0625) / 3) = 0.5; 0.75 / 0.5001 = 1.499700
    ([1.0, 0.0, 0.0, 0.0], [1.499700, -0.499900, -0.499900, -0.499900], [0.75, -0.25, -0.25, -0.25]),
    # all equal: zero advantage (0 / eps), never NaN
    ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    ([-1.0, -1.0], [0.0, 0.0], [0.0, 0.0]),
]


@pytest.mark.parametrize(("rewards", "scaled", "centred"), OUTCOME_CASES)
def test_outcome_advantages_by_hand(rewards, scaled, centred):
    assert outcome_advantages(rewards) == pytest.approx(scaled, abs=1e-6)
    assert outcome_advantages(rewards, scale=False) == pytest.approx(centred, abs=1e-12)


def test_outcome_advantages_use_the_sample_std_and_the_documented_eps():
    rewards = np.array([3.0, 1.0, 0.0, 2.0])
    expected = (rewards - rewards.mean()) / (rewards.std(ddof=1) + EPS)
    assert outcome_advantages(rewards) == pytest.approx(expected)
    assert EPS == 1e-4


@pytest.mark.parametrize("rewards", [[], [1.0], [[1.0, 2.0]]])
def test_outcome_advantages_need_a_group(rewards):
    with pytest.raises(ValueError, match="at least 2"):
        outcome_advantages(rewards)


# ----------------------------------------------------------------------------------------- process advantages


def test_process_advantages_pool_the_group_and_sum_from_each_step_on():
    # Three outputs with 2, 1 and 2 steps. Pool [1, 0, 0, 1, 1]: mean 0.6, centred [.4, -.6, -.6, .4, .4];
    # sample std sqrt((3 * 0.16 + 2 * 0.36) / 4) = sqrt(0.3) = 0.547723 (+ eps = 0.547823).
    group = [[1.0, 0.0], [0.0], [1.0, 1.0]]
    centred = process_advantages(group, scale=False)
    # suffix sums: output 0: [.4 - .6, -.6]; output 1: [-.6]; output 2: [.4 + .4, .4]
    assert [a.tolist() for a in centred] == [
        pytest.approx([-0.2, -0.6]),
        pytest.approx([-0.6]),
        pytest.approx([0.8, 0.4]),
    ]
    scaled = process_advantages(group)
    sigma = math.sqrt(0.3) + EPS
    assert scaled[0].tolist() == pytest.approx([-0.2 / sigma, -0.6 / sigma])
    assert scaled[1].tolist() == pytest.approx([-0.6 / sigma])
    assert scaled[2].tolist() == pytest.approx([0.8 / sigma, 0.4 / sigma])
    assert scaled[2][0] == pytest.approx(1.460326, abs=1e-6)


def test_process_advantages_of_a_flat_pool_are_zero_and_an_empty_output_is_refused():
    assert [a.tolist() for a in process_advantages([[0.5, 0.5], [0.5]])] == [[0.0, 0.0], [0.0]]
    with pytest.raises(ValueError, match="at least one step"):
        process_advantages([[1.0], []])
    with pytest.raises(ValueError, match="at least 2 outputs"):
        process_advantages([[1.0, 0.0]])


def test_with_one_step_per_output_process_equals_outcome_advantages():
    rewards = [0.0, 1.0, 0.5, 1.0]
    per_step = process_advantages([[r] for r in rewards])
    assert [a[0] for a in per_step] == pytest.approx(outcome_advantages(rewards).tolist())


# --------------------------------------------------------------------------------------------- dynamic sampling

INFORMATIVE_CASES = [
    ([1.0, 1.0, 1.0, 1.0], False),  # all solved: no signal
    ([0.0, 0.0], False),  # none solved
    ([0.0, 1.0, 0.0, 0.0], True),
    ([-0.5, -0.5, -0.4999], True),  # any difference counts
    ([[1.0, 0.0], [1.0, 0.0]], True),  # pooled step rewards differ within outputs
    ([[0.5], [0.5, 0.5]], False),
]


@pytest.mark.parametrize(("rewards", "informative"), INFORMATIVE_CASES)
def test_dynamic_sampling_keeps_only_groups_whose_rewards_differ(rewards, informative):
    assert is_informative(rewards) is informative


# ----------------------------------------------------------------------------------------------------------- k3


@pytest.mark.parametrize(
    ("logp", "ref", "expected"),
    [
        (-1.0, -1.0, 0.0),  # same policy: no penalty
        (-1.0, -2.0, math.exp(-1) + 1 - 1),  # ref - logp = -1: e^-1 - (-1) - 1 = 0.367879
        (-2.0, -1.0, math.e - 1 - 1),  # ref - logp = 1: e - 1 - 1 = 0.718282
        (-0.1, -3.0, math.exp(-2.9) + 2.9 - 1),
    ],
)
def test_k3_by_hand(logp, ref, expected):
    value = k3_kl(torch.tensor([logp], dtype=torch.float64), torch.tensor([ref], dtype=torch.float64))
    assert value.item() == pytest.approx(expected, abs=1e-12)
    assert value.item() >= 0


def test_k3_is_an_unbiased_estimate_of_kl_under_samples_from_the_policy():
    # pi = softmax([0, 1, 2]), ref = uniform; E_pi[k3] = KL(pi || ref) exactly (expectation over all 3 tokens)
    pi = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64).log_softmax(0)
    ref = torch.full((3,), -math.log(3), dtype=torch.float64)
    expectation = (pi.exp() * k3_kl(pi, ref)).sum()
    kl = (pi.exp() * (pi - ref)).sum()
    assert expectation.item() == pytest.approx(kl.item(), abs=1e-12)


# ------------------------------------------------------------------------------------------- clipped objective

# (advantage, ratio) -> (objective, clipped); epsilon_low 0.2, epsilon_high 0.28: the ratio is kept in [0.8, 1.28]
CLIP_CASES = [
    (1.0, 1.5, 1.28, True),  # positive advantage, ratio above 1 + eps_high: capped, no gradient
    (1.0, 0.5, 0.5, False),  # positive advantage, ratio below 1 - eps_low: the unclipped term is smaller
    (1.0, 1.1, 1.1, False),  # inside the band
    (-1.0, 1.5, -1.5, False),  # negative advantage, ratio above: the unclipped term is smaller (pessimistic)
    (-1.0, 0.5, -0.8, True),  # negative advantage, ratio below 1 - eps_low: floored, no gradient
    (-2.0, 0.9, -1.8, False),
    (2.0, 1.28, 2.56, False),  # at the bound both terms are equal: not counted as clipped
]


@pytest.mark.parametrize(("advantage", "ratio", "objective", "clipped"), CLIP_CASES)
def test_clipped_objective_on_both_signs_of_the_advantage(advantage, ratio, objective, clipped):
    logp = torch.tensor([math.log(ratio)], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([0.0], dtype=torch.float64)
    value, was_clipped = clipped_surrogate(logp, old, torch.tensor([advantage], dtype=torch.float64), 0.2, 0.28)
    assert value.item() == pytest.approx(objective)
    assert bool(was_clipped.item()) is clipped
    value.sum().backward()
    # d(ratio * A)/d logp = ratio * A where the unclipped term decides; 0 where the clip does
    assert logp.grad.item() == pytest.approx(0.0 if clipped else ratio * advantage)


# ------------------------------------------------------------------------------------------------ aggregation

# Two episodes in one micro-batch. Episode 0 has two steps (rows 0 and 1: tokens 1, 2 and 3), episode 1 one step
# (row 2: tokens 4, 5, 6). Padding holds NaN, which must never leak.
TOKEN_LOSS = torch.tensor([[1.0, 2.0, math.nan], [3.0, math.nan, math.nan], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]])
OUTPUT_OF_ROW = torch.tensor([0, 0, 1])

AGGREGATION_CASES = [
    # grpo: mean over episodes of per-episode token means: ((1+2+3)/3 + (4+5+6)/3) / 2 = (2 + 5) / 2
    ("grpo", Window(outputs=2, tokens=6, micro_batches=1, max_tokens=10), 3.5),
    # ... in a window of 4 episodes (another micro-batch holds the other two): (2 + 5) / 4
    ("grpo", Window(outputs=4, tokens=12, micro_batches=2, max_tokens=10), 1.75),
    # bnpo: token mean of the micro-batch, 21 / 6, over the window's micro-batches
    ("bnpo", Window(outputs=2, tokens=6, micro_batches=1, max_tokens=10), 3.5),
    ("bnpo", Window(outputs=4, tokens=12, micro_batches=2, max_tokens=10), 1.75),
    # dr_grpo: token sum over (episodes in the window x constant max length): 21 / (2 * 10)
    ("dr_grpo", Window(outputs=2, tokens=6, micro_batches=1, max_tokens=10), 1.05),
    ("dr_grpo", Window(outputs=3, tokens=9, micro_batches=2, max_tokens=7), 1.0),
    # dapo: token sum over the tokens of the whole window: 21 / 6, and 21 / 14
    ("dapo", Window(outputs=2, tokens=6, micro_batches=1, max_tokens=10), 3.5),
    ("dapo", Window(outputs=3, tokens=14, micro_batches=2, max_tokens=10), 1.5),
]


@pytest.mark.parametrize(("loss_type", "window", "expected"), AGGREGATION_CASES)
def test_each_aggregation_by_hand(loss_type, window, expected):
    value = aggregate(TOKEN_LOSS, MASK, OUTPUT_OF_ROW, loss_type, window)
    assert value.item() == pytest.approx(expected)


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_shares_of_a_window_add_up_to_the_whole_window(loss_type):
    # The same three episodes as one micro-batch, or split 2 + 1 over two micro-batches of one window: gradient
    # accumulation must give the same loss (bnpo is by definition a mean of micro-batch means, so it differs).
    losses = torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [4.0, 5.0, 6.0], [7.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 0, 0]])
    whole = aggregate(losses, mask, torch.tensor([0, 0, 1, 2]), loss_type, Window(3, 7, 1, 5))
    window = Window(3, 7, 2, 5)
    first = aggregate(losses[:3], mask[:3], torch.tensor([0, 0, 1]), loss_type, window)
    second = aggregate(losses[3:], mask[3:], torch.tensor([0]), loss_type, window)
    assert (first + second).item() == pytest.approx(whole.item())


def test_an_unknown_loss_type_is_refused():
    with pytest.raises(ValueError, match="unknown loss_type 'ppo'"):
        aggregate(TOKEN_LOSS, MASK, OUTPUT_OF_ROW, "ppo", Window(2, 6, 1, 10))
