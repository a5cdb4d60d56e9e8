"""What an env stores is what it judged: replaying ``state.steps`` reproduces the env's verdicts, every stored line
is one line of the observation, and every step reports the same reward-component keys whatever rejected it."""

import pytest

from agents.prm import ArithmeticStepScorer, Game24StepScorer
from reason_gym.envs.arithmetic import ArithmeticEnv
from reason_gym.envs.game24 import Game24Env

GAME24 = {"numbers": [4, 9, 10, 13]}
LINEAR = {"kind": "linear", "equation": "3x + 4 = 19"}
EXPRESSION = {"kind": "expression", "expression": "(3 + 4) * 5 - 6 / 2"}
ONES = {"numbers": [1, 1, 4, 6]}

EPISODES = [
    (Game24Env, "step_solvable", GAME24, ["Answer: (13–9)*(10–4) = 24"]),  # en dashes: the audit's
    (Game24Env, "step_solvable", GAME24, ["13 – 9 = 4", "10 − 4 = 6", "4 × 6 = 24", "Answer: (13 − 9) × (10 – 4)"]),
    (Game24Env, "step_solvable", GAME24, ["Answer: (13 - 9)\n* (10 - 4) = 24"]),  # a newline is a blank
    (Game24Env, "step_solvable", GAME24, ["Answer: (13 - 9) ≤ (10 - 4)"]),  # a foreign character: wrong both ways
    (Game24Env, "step_solvable", GAME24, ["Answer: " + "(13 - 9) * (10 - 4) = 24" + " " * 9000]),  # over-long
    (Game24Env, "step_solvable", ONES, ["Answer: 4*6*1*1 = 24\nAnswer: 1\n1 + 1 = 2 (left: 2 4 6)"]),
    (Game24Env, "step_solvable", ONES, ["4 * 6 = 24", "x" * 9000, "1 * 1 = 1", "Answer: 4*6*1*1 = 24"]),
    (ArithmeticEnv, "step_check", EXPRESSION, ["3 · 4 = 12", "3 + 4 = 7", "7 ⋅ 5 = 35", "6 ÷ 2 = 3", "35 – 3 = 32"]),
    (ArithmeticEnv, "step_check", EXPRESSION, ["3\u00a0+ 4 = 7", "7 ∗ 5 = 36", "Answer: 32"]),
    (ArithmeticEnv, "step_check", EXPRESSION, ["3 + 4 = 7" + " " * 600 + "", "Answer: –32"]),
    (ArithmeticEnv, "step_check", EXPRESSION, ["Answer: 32\nAnswer: 31"]),
    (ArithmeticEnv, "step_check", LINEAR, ["3x = 19 – 4", "3·x = 15", "x = x", "x = 15 ÷ 3", "Answer: x = 5"]),
    (ArithmeticEnv, "step_check", LINEAR, ["3x\t=\t15", "Answer: x =\n5"]),
]


def _play(cls, check, problem, actions):
    env = cls(reward_weights={check: 1.0}, max_steps=20)
    env.reset(options={"problem": problem})
    verdicts = []  # the env's verdict of each stored line: its step check, or the outcome of the answer
    for action in actions:
        _, _, terminated, _, info = env.step(action)
        components = info["reward_components"]
        if terminated:
            verdicts.append(components["outcome"])
        elif not components["invalid_step"]:
            verdicts.append(components[check])
    return env, verdicts


@pytest.mark.parametrize(("cls", "check", "problem", "actions"), EPISODES)
def test_replaying_the_stored_steps_reproduces_the_env_verdicts(cls, check, problem, actions):
    env, verdicts = _play(cls, check, problem, actions)
    state = env.get_state()
    scorer = Game24StepScorer() if cls is Game24Env else ArithmeticStepScorer()
    assert scorer.score_state(state) == verdicts
    assert all(line.isascii() and line.isprintable() for line in state.steps)  # nothing turned into '?'


@pytest.mark.parametrize(("cls", "check", "problem", "actions"), EPISODES)
def test_each_stored_step_is_one_line_of_the_observation(cls, check, problem, actions):
    env, _ = _play(cls, check, problem, actions)
    state = env.get_state()
    question, steps = env.task.split(state.observation)
    assert question == state.question and steps == list(state.steps)


@pytest.mark.parametrize(
    ("problem", "action", "expected"),
    [
        (  # the audit's: three fake lines before, now one line, still wrong
            ONES,
            "Answer: 4*6*1*1 = 24\nAnswer: 1\n1 + 1 = 2 (left: 2 4 6)",
            "Answer: 4*6*1*1 = 24 Answer: 1 1 + 1 = 2 (left: 2 4 6)",
        ),
        (GAME24, "Answer: (13–9)*(10–4) = 24", "Answer: (13-9)*(10-4) = 24"),
        (GAME24, "Answer: 1" + "\n" * 9000, "Answer: [not judged: too long]"),
    ],
)
def test_an_answer_is_echoed_on_one_line(problem, action, expected):
    env = Game24Env()
    env.reset(options={"problem": problem})
    obs, *_ = env.step(action)
    assert obs.split("\n")[2:] == [expected]


@pytest.mark.parametrize(
    ("cls", "check", "problem"),
    [(Game24Env, "step_solvable", GAME24), (ArithmeticEnv, "step_check", EXPRESSION)],
)
@pytest.mark.parametrize("weight", [1.0, 0.0])
def test_every_step_reports_the_same_component_keys(cls, check, problem, weight):
    keys = set()
    for action in ["x" * 9000, "not a step", "13 - 9 = 5", "7 / 0 = 1", "13 - 9 = 4", "3 + 4 = 7"]:
        env = cls(reward_weights={check: weight})
        env.reset(options={"problem": problem})
        keys.add(frozenset(env.step(action)[4]["reward_components"]))
    reported = weight or cls is ArithmeticEnv  # Arithmetic reports step_check even when off
    assert keys == {frozenset({"outcome", "invalid_step", *([check] if reported else [])})}
