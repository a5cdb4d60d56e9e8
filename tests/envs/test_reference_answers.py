"""The reset option ``hint=True`` (STaR's rationalization): the question ends with the problem's reference answer,
on tasks that have one, and that answer is judged correct; tasks without one refuse the option."""

from __future__ import annotations

from fractions import Fraction

import gymnasium as gym
import pytest

import reason_gym  # noqa: F401

WITH_REFERENCE = [
    ("reason_gym/Arithmetic-v0", {"index": 0}),
    ("reason_gym/Arithmetic-v0", {"problem": {"kind": "linear", "equation": "2*x + 1 = 8"}}),
    ("reason_gym/GSM8K-v0", {"index": 3, "split": "test"}),
    ("reason_gym/MATH-v0", {"index": 5, "split": "test"}),
]


@pytest.mark.parametrize(("env_id", "options"), WITH_REFERENCE)
def test_a_hinted_question_ends_with_the_reference_answer_which_is_correct(env_id, options):
    env = gym.make(env_id)
    plain, _ = env.reset(seed=0, options=options)
    hinted, info = env.reset(seed=0, options={**options, "hint": True})
    state = env.unwrapped.get_state()
    reference = env.unwrapped.reference_answer(state.problem)
    assert hinted == f"{plain} (Hint: the answer is {reference}.)"
    assert state.spec.split(hinted) == (hinted, [])  # the hint is part of the question: no step is read from it
    _, reward, terminated, _, info = env.step(f"Answer: {reference}")
    assert terminated and info["is_correct"] and reward > 0


def test_the_reference_of_a_fraction_answer_is_exact():
    env = gym.make("reason_gym/Arithmetic-v0").unwrapped
    assert env.reference_answer({"kind": "linear", "equation": "2*x = 7", "answer": Fraction(7, 2)}) == "7/2"


@pytest.mark.parametrize(
    ("env_id", "options", "message"),
    [
        ("reason_gym/Game24-v0", {"index": 0, "hint": True}, "no reference answer"),
        ("reason_gym/Arithmetic-v0", {"index": 0, "hint": "yes"}, "True or False"),
        ("reason_gym/Arithmetic-v0", {"index": 0, "hints": True}, "hints"),
    ],
)
def test_a_hint_that_cannot_be_given_is_refused(env_id, options, message):
    with pytest.raises(ValueError, match=message):
        gym.make(env_id).reset(options=options)
