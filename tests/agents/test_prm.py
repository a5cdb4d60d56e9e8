"""Step scorers: the exact rule-based ones (from the environments' own checks) and the HF model wrapper."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from agents.prm import ArithmeticStepScorer, Game24StepScorer, HFStepScorer, claims_step_scorer, rule_based_prm
from reason_gym.checkers.game24_solver import solve
from reason_gym.envs.arithmetic import ArithmeticEnv, solution_trace
from reason_gym.envs.game24 import Game24Env
from reason_gym.envs.gsm8k import GSM8KEnv

QUESTION = "Game of 24: use each number once with + - * / to reach 24.\nInput: 4 9 10 13"
PUZZLE = {"numbers": [4, 9, 10, 13], "target": 24}


def state_of(env_class: type, problem: dict, steps: list[str] = ()) -> Any:
    """A state of ``problem`` with ``steps`` to score (what planners and envs give a PRM)."""
    env = env_class(**env_class.scratch_kwargs(problem))
    env.reset(options={"problem": problem})
    return env.get_state()._replace(steps=tuple(steps))


def test_game24_solver_traces_score_one_everywhere() -> None:
    scorer = Game24StepScorer()
    for numbers in [(4, 9, 10, 13), (1, 1, 4, 6), (3, 3, 8, 8)]:
        steps = solve(numbers)
        assert scorer.score({"numbers": numbers, "target": 24}, steps) == [1.0] * len(steps)
        assert scorer.score_state(state_of(Game24Env, {"numbers": numbers}, steps)) == [1.0] * len(steps)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (["13 - 9 = 4 (left: 4 4 10)"], [1.0]),
        (["4 + 4 = 8 (left: 8 10 13)", "4 * 4 = 16 (left: 9 10 13)"], [0.0, 0.0]),  # wrong left list; 4 used up
        (["13 + 10 = 23 (left: 4 9 23)"], [0.0]),  # valid, but 4 9 23 cannot make 24
        (["13 - 9 = 5"], [0.0]),  # wrong arithmetic: rejected
        (["hello", "13 - 9 = 4"], [0.0, 1.0]),  # a rejected step changes nothing
        (["Answer: (13 - 9) * (10 - 4) = 24"], [1.0]),
        (["Answer: 13 + 9 + 10 - 4 = 24", "1 + 1 = 2"], [0.0, 0.0]),  # wrong answer; nothing after an answer
        ([], []),
    ],
)
def test_game24_scores(steps: list[str], expected: list[float]) -> None:
    assert Game24StepScorer().score(PUZZLE, steps) == expected


def test_game24_scorer_agrees_with_the_env_step_solvable_component() -> None:
    scorer = Game24StepScorer()
    env = Game24Env(split="train", reward_weights={"step_solvable": 1.0})
    rng = np.random.default_rng(0)
    for index in range(20):
        env.reset(options={"index": index})
        root = env.get_state()
        legal = [a for a in env.candidate_actions() if a is not None]
        action = legal[int(rng.integers(len(legal)))]
        _, _, _, _, info = env.step(action)
        assert scorer.score_state(root._replace(steps=(action,))) == [info["reward_components"]["step_solvable"]]


def test_a_scorer_plugs_into_the_env_as_its_prm() -> None:
    env = Game24Env(split="train", prm=Game24StepScorer())
    env.reset(options={"problem": {"numbers": [4, 9, 10, 13]}})
    _, reward, _, _, info = env.step("13 + 10 = 23")
    assert info["reward_components"]["prm"] == 0.0
    env.reset(options={"problem": {"numbers": [4, 9, 10, 13]}})
    _, reward, _, _, info = env.step("13 - 9 = 4")
    assert info["reward_components"]["prm"] == 1.0 and reward == 1.0


def test_arithmetic_solution_traces_score_one_and_false_steps_zero() -> None:
    scorer = ArithmeticStepScorer()
    env = ArithmeticEnv(split="train")
    for index in range(10):
        env.reset(options={"index": index})
        steps = solution_trace(env.get_state().problem)
        assert scorer.score_state(env.get_state()._replace(steps=tuple(steps))) == [1.0] * len(steps)
    expression = {"kind": "expression", "expression": "(3 + 4) * 5"}
    assert scorer.score(expression, ["3 + 4 = 8", "8 * 5 = 40", "Answer: 40"]) == [0.0, 1.0, 0.0]
    linear = {"kind": "linear", "equation": "3x + 4 = 19"}
    assert scorer.score(linear, ["3x = 19 + 4", "x = 5", "Answer: x = 5"]) == [0.0, 1.0, 1.0]
    assert scorer.score({"kind": "expression", "expression": "1 + 2"}, ["one plus two", "Answer: 3"]) == [0.0, 1.0]


def test_a_long_episode_scores_past_the_scratch_envs_own_step_limit() -> None:
    # the scorer's scratch env had a limit of 64 steps: every later step scored 0 whatever it was
    env = ArithmeticEnv(reward_weights={"step_check": 1.0}, max_steps=100)
    env.reset(options={"problem": {"kind": "linear", "equation": "3x + 4 = 19"}})
    for _ in range(70):
        env.step("3x = 15")
    assert ArithmeticStepScorer().score_state(env.get_state()) == [1.0] * 70
    problem = {"kind": "linear", "equation": "3x + 4 = 19"}
    assert ArithmeticStepScorer().score(problem, ["3x = 15"] * 70) == [1.0] * 70


def test_claims_scorer_and_dispatch() -> None:
    assert claims_step_scorer("q", ["2 + 2 = 4 and 3 * 3 = 10", "no numbers", "Answer: 4"]) == [0.5, 0.5, 0.5]
    assert isinstance(rule_based_prm(Game24Env.task), Game24StepScorer)
    assert isinstance(rule_based_prm(ArithmeticEnv.task), ArithmeticStepScorer)
    assert rule_based_prm(GSM8KEnv.task) is claims_step_scorer
    with pytest.raises(ValueError, match="not a Game24 question"):
        Game24StepScorer().score_state(state_of(ArithmeticEnv, {"kind": "expression", "expression": "1 + 2"}))
    with pytest.raises(ValueError, match="not an Arithmetic-v0 question"):
        ArithmeticStepScorer().score_state(state_of(Game24Env, PUZZLE))


# ------------------------------------------------------------------ a learned PRM, on tiny random models

STEPS = ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)"]


def test_hf_token_scorer_shapes_and_ranges(random_model: Any, char_tokenizer: Any) -> None:
    scorer = HFStepScorer(random_model, char_tokenizer)
    scores = scorer(QUESTION, STEPS)
    assert len(scores) == 3 and all(0.0 < s < 1.0 for s in scores)
    assert scorer(QUESTION, []) == []
    batch = scorer.score_batch([(QUESTION, STEPS), ("Compute 1 + 2.", ["1 + 2 = 3"])])  # right padding
    assert batch[0] == pytest.approx(scores, abs=1e-5) and len(batch[1]) == 1
    assert scorer(QUESTION, STEPS[:2]) == pytest.approx(scores[:2], abs=1e-5)  # causal: later steps change nothing


def test_hf_token_scorer_reads_the_good_token_probability_at_each_tag(random_model: Any, char_tokenizer: Any) -> None:
    import torch

    scorer = HFStepScorer(random_model, char_tokenizer, step_tag=" ki\n")
    ids = char_tokenizer(QUESTION + "\n" + "".join(s + " ki\n" for s in STEPS))["input_ids"]
    with torch.no_grad():
        logits = random_model(input_ids=torch.tensor([ids])).logits[0]
    tags = [i for i in range(len(ids)) if char_tokenizer.decode(ids[i - 3 : i + 1]) == " ki\n"]
    good, bad = char_tokenizer.convert_tokens_to_ids(["+", "-"])
    expected = [float(logits[t, [good, bad]].softmax(-1)[0]) for t in tags]
    assert scorer(QUESTION, STEPS) == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="single tokens"):
        HFStepScorer(random_model, char_tokenizer, good_token="++")


@pytest.mark.parametrize("num_labels", [1, 2])
def test_hf_value_head_scorer(char_tokenizer: Any, num_labels: int) -> None:
    import torch
    from transformers import LlamaForTokenClassification

    from agents.models import tiny_llama_config

    config = tiny_llama_config(len(char_tokenizer), hidden_size=32, num_layers=2, num_heads=2)
    config.num_labels = num_labels
    torch.manual_seed(0)
    model = LlamaForTokenClassification(config).eval()
    scores = HFStepScorer(model, char_tokenizer, mode="value")(QUESTION, STEPS)
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    with pytest.raises(ValueError, match="mode"):
        HFStepScorer(model, char_tokenizer, mode="q")
