"""The environment contract on Arithmetic: spaces, options, rewards, episode ends, branching, traces, bad input."""

import re
from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import reason_gym  # noqa: F401  (registers the environments)
from reason_gym.checkers.numbers import one_line
from reason_gym.envs import arithmetic
from reason_gym.envs.arithmetic import (
    ArithmeticEnv,
    generate_problem,
    solution_trace,
    split_of,
    validate_problem,
)

EXPRESSION = {"kind": "expression", "expression": "(3 + 4) * 5 - 6 / 2"}
EXPRESSION_TRACE = ["3 + 4 = 7", "7 * 5 = 35", "6 / 2 = 3", "35 - 3 = 32"]
LINEAR = {"kind": "linear", "equation": "3x + 4 = 19"}
LINEAR_TRACE = ["3x = 19 - 4", "3x = 15", "x = 15 / 3", "x = 5"]


def started(problem=EXPRESSION, **kwargs) -> ArithmeticEnv:
    env = ArithmeticEnv(**kwargs)
    env.reset(seed=0, options={"problem": problem})
    return env


def play(env: ArithmeticEnv, actions: list[str]) -> list[tuple]:
    return [env.step(action) for action in actions]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "expression", "num_operations": 1},
        {"kind": "linear", "fractions": True, "max_number": 50},
        {"split": "test", "num_operations": 6},
        {"render_mode": "ansi"},
    ],
)
def test_check_env_passes(kwargs):
    check_env(gym.make("reason_gym/Arithmetic-v0", **kwargs).unwrapped, skip_render_check=False)


def test_a_full_expression_episode():
    env = ArithmeticEnv()
    obs, info = env.reset(options={"problem": EXPRESSION})
    assert obs == "Compute (3 + 4) * 5 - 6 / 2."
    assert info == {"problem_id": "arithmetic/expression/(3+4)*5-6/2"}
    for step in EXPRESSION_TRACE:
        obs, reward, terminated, truncated, info = env.step(step)
        assert (reward, terminated, truncated) == (0.0, False, False)
        assert info["reward_components"] == {"outcome": 0.0, "invalid_step": 0.0, "step_check": 1.0}
    obs, reward, terminated, truncated, info = env.step("Answer: 32")
    assert (reward, terminated, truncated, info["is_correct"]) == (1.0, True, False, True)
    assert obs == "\n".join(["Compute (3 + 4) * 5 - 6 / 2.", *EXPRESSION_TRACE, "Answer: 32"])
    assert env.observation_space.contains(obs)
    assert env.step_checks == (True,) * 4
    with pytest.raises(gym.error.ResetNeeded):
        env.step("1 + 1 = 2")


def test_a_full_linear_episode():
    env = started(LINEAR)
    assert env.get_state().question == "Solve for x: 3x + 4 = 19."
    for _, reward, _, _, info in play(env, LINEAR_TRACE):
        assert reward == 0.0 and info["reward_components"]["step_check"] == 1.0
    _, reward, terminated, _, info = env.step("Answer: x = 5")
    assert terminated and info["is_correct"] and reward == 1.0


@pytest.mark.parametrize(
    ("problem", "step", "true"),
    [
        (EXPRESSION, "3 + 4 = 7", True),
        (EXPRESSION, "3+4=7", True),
        (EXPRESSION, "3 × 4 = 12", True),
        (EXPRESSION, "7 ÷ 2 = 3.5", True),
        (EXPRESSION, "7 / 2 = 3.50", True),
        (EXPRESSION, "(7/2) * 4 = 14", True),
        (EXPRESSION, "0.1 + 0.2 = 0.3", True),  # exact decimals
        (EXPRESSION, "7 = 3 + 4", True),
        (EXPRESSION, "1 + 1 = 2", True),  # true, though it does not help: step_check is truth, not progress
        (EXPRESSION, "3 + 4 = 8", False),
        (EXPRESSION, "1 / 3 = 0.33", False),
        (EXPRESSION, "1 / 3 = 0.3333333333", False),
        (EXPRESSION, "7 / 2 = 3", False),  # no integer division
        (LINEAR, "3x = 15", True),
        (LINEAR, "3 * x = 19 - 4", True),
        (LINEAR, "x = 15 / 3", True),
        (LINEAR, "x = 5", True),
        (LINEAR, "5 = x", True),
        (LINEAR, "6x + 8 = 38", True),  # any equation equivalent to the problem
        (LINEAR, "2(x + 1) = 12", True),
        (LINEAR, "19 - 4 = 15", True),  # arithmetic without x
        (LINEAR, "0 = 0", True),  # arithmetic without x: exact truth, like 19 - 4 = 15
        # a step with x must have exactly the problem's solution: an identity holds for every x, so it is false
        (LINEAR, "x - x = 0", False),
        (LINEAR, "x = x", False),
        (LINEAR, "2x = x + x", False),
        (LINEAR, "0x = 0", False),
        (LINEAR, "0 * x = 0", False),
        (LINEAR, "3x + 4 = 3x + 4", False),
        (LINEAR, "3x + 4 - 19 = 3(x - 5)", False),
        (LINEAR, "x + 1 = x + 2", False),  # no solution at all
        (LINEAR, "0x = 1", False),
        (LINEAR, "3x + 4 = 19", True),  # the problem itself
        (LINEAR, "-x = -5", True),
        (LINEAR, "x/5 = 1", True),
        (EXPRESSION, "3 x 4 = 12", True),  # x between numbers is a times sign in an expression problem
        (EXPRESSION, "2 ^ 6/2 = 8", False),  # the audit's: a power binds first, 2^6/2 = 32
        (EXPRESSION, "2 ^ 6/2 = 32", True),
        (LINEAR, "3x = 16", False),
        (LINEAR, "x = 6", False),
        (LINEAR, "3x + 4 = 20", False),
        (LINEAR, "x = x + 1", False),
        (LINEAR, "19 - 4 = 14", False),
    ],
)
def test_steps_are_accepted_and_checked_exactly(problem, step, true):
    env = started(problem, reward_weights={"step_check": 0.25})
    obs, reward, _, _, info = env.step(step)
    assert "error" not in info
    assert info["reward_components"]["step_check"] == float(true)
    assert reward == pytest.approx(0.25 * true)
    assert obs.endswith("\n" + one_line(step)) and env.step_checks == (true,)  # stored with ASCII operators


def test_a_false_step_is_accepted_and_its_error_carries_forward():
    env = started()
    play(env, ["3 + 4 = 8", "8 * 5 = 40", "6 / 2 = 3", "40 - 3 = 37"])
    assert env.step_checks == (False, True, True, True)
    _, reward, _, _, info = env.step("Answer: 37")
    assert not info["is_correct"] and reward == 0.0 and info["error"] == "wrong answer"


@pytest.mark.parametrize(
    ("problem", "step", "error"),
    [
        (EXPRESSION, "3 + 4", "exactly one '='"),
        (EXPRESSION, "3 + 4 = 7 = 7", "exactly one '='"),
        (EXPRESSION, "so 3 + 4 = 7", "is not arithmetic on numbers"),
        (EXPRESSION, "3 + 4 = 7 apples", "is not arithmetic on numbers"),
        (EXPRESSION, "x = 32", "is not arithmetic on numbers"),  # an expression problem has no unknown
        (EXPRESSION, "7 / 0 = 1", "divides by zero"),
        (EXPRESSION, "3 + 4 =", "is not arithmetic"),
        (EXPRESSION, "= 7", "is not arithmetic"),
        (EXPRESSION, "3 +\n4 = 7", "one line"),
        (EXPRESSION, "2^10000 = 0", "is not arithmetic"),
        (LINEAR, "x^2 = 25", "not linear in x"),
        (LINEAR, "1 / x = 1/5", "not linear in x"),
        (LINEAR, "x * x = 25", "not linear in x"),
        (LINEAR, "y = 5", "not linear in x"),
        (LINEAR, "3x + 4 == 19", "exactly one '='"),
    ],
)
def test_an_invalid_step_is_penalised_and_changes_nothing(problem, step, error):
    env = started(problem)
    before = env.get_state()
    obs, reward, terminated, truncated, info = env.step(step)
    assert reward == pytest.approx(-0.1) and info["reward_components"]["invalid_step"] == 1.0
    assert error in info["error"] and info["reward_components"]["step_check"] == 0.0  # reported on every step
    assert obs == before.observation and env.get_state().task == before.task == ()
    assert (terminated, truncated) == (False, False)


@pytest.mark.parametrize(
    ("problem", "answer", "correct"),
    [
        (EXPRESSION, "32", True),
        (EXPRESSION, " 32. ", True),
        (EXPRESSION, "32.0", True),
        (EXPRESSION, "$32$", True),
        (EXPRESSION, r"\boxed{32}", True),
        (EXPRESSION, "64/2", False),  # a fraction not in lowest terms is a division still to do
        (EXPRESSION, "x = 32", True),
        (EXPRESSION, "33", False),
        (EXPRESSION, "(3 + 4) * 5 - 6 / 2", False),  # the question copied is not an answer
        (EXPRESSION, "32 apples", False),
        (EXPRESSION, "", False),
        ({"kind": "expression", "expression": "7 / 2"}, "7/2", True),
        ({"kind": "expression", "expression": "7 / 2"}, "3.5", True),
        ({"kind": "expression", "expression": "7 / 2"}, "3 1/2", False),
        ({"kind": "expression", "expression": "1 / 3"}, "0.33", False),
        ({"kind": "expression", "expression": "1 / 3"}, "0.333333333333333333", False),
        ({"kind": "expression", "expression": "2 - 6"}, "-4", True),
        ({"kind": "expression", "expression": "2 - 6"}, "−4", True),
        ({"kind": "expression", "expression": "2 - 6"}, "4", False),
        (LINEAR, "5", True),
        (LINEAR, "x = 5", True),
        (LINEAR, "x=5.0", True),
        (LINEAR, "x = 15/3", False),  # a fraction not in lowest terms is the division still to do
        (LINEAR, "x = 5/1", False),
        (LINEAR, r"x = \frac{10}{2}", False),
        ({"kind": "expression", "expression": "12 / 4"}, "12 / 4", False),  # the question copied back
        ({"kind": "expression", "expression": "12 / 4"}, "12/4", False),
        ({"kind": "expression", "expression": "12 / 4"}, "(12)/(4)", False),
        ({"kind": "expression", "expression": "12 / 4"}, r"\frac{12}{4}", False),
        ({"kind": "expression", "expression": "12 / 4"}, "3", True),
        ({"kind": "expression", "expression": "0.5 / 0.25"}, "0.5/0.25", False),
        ({"kind": "expression", "expression": "0.5 / 0.25"}, "2", True),
        ({"kind": "expression", "expression": "2 - 6"}, "--4", False),
        ({"kind": "expression", "expression": "2 + 1"}, "--3", False),
        ({"kind": "expression", "expression": "2 + 1"}, "+3", True),
        ({"kind": "expression", "expression": "7 / 2"}, r"\frac{7}{2}", True),
        ({"kind": "expression", "expression": "7 / 2"}, r"\boxed{7/2}", True),
        ({"kind": "expression", "expression": "7 / 2"}, "7 / 2", False),
        ({"kind": "expression", "expression": "2 - 9 / 2"}, "-5/2", True),
        ({"kind": "expression", "expression": "2 - 9 / 2"}, "(-5/2)", True),
        ({"kind": "expression", "expression": "2 - 9 / 2"}, "-(5/2)", True),
        ({"kind": "expression", "expression": "2 - 9 / 2"}, "-(5)/2", False),
        (LINEAR, "x = 10 - 5", False),  # an expression, not a number
        (LINEAR, "y = 5", False),
    ],
)
def test_final_answers_are_compared_exactly(problem, answer, correct):
    _, reward, terminated, _, info = started(problem).step(f"Answer: {answer}")
    assert terminated and info["is_correct"] is correct and reward == float(correct)


@pytest.mark.parametrize("kind", ["expression", "linear"])
@pytest.mark.parametrize("fractions", [False, True])
def test_generated_traces_are_accepted_and_correct(kind, fractions):
    env = ArithmeticEnv(kind=kind, fractions=fractions, num_operations=4, max_number=12)
    for seed in range(200):
        env.reset(seed=seed)
        trace = solution_trace(env.get_state().problem)
        *steps, answer = trace
        assert answer.startswith("Answer: ") and len(trace) <= env.max_steps
        for step in steps:
            _, reward, terminated, truncated, info = env.step(step)
            assert "error" not in info, (seed, step, info)
            assert info["reward_components"]["step_check"] == 1.0, (seed, step)
            assert not (terminated or truncated)
        _, reward, terminated, _, info = env.step(answer)
        assert terminated and info["is_correct"] and reward == 1.0, (seed, trace)


@pytest.mark.parametrize(
    "problem",
    [
        {"kind": "linear", "equation": "19 = 3x + 4"},
        {"kind": "linear", "equation": "3x + 4 = x + 10"},
        {"kind": "linear", "equation": "x / 2 + x / 3 = 5"},
        {"kind": "linear", "equation": "-(x + 1) = 2.5"},
        {"kind": "linear", "equation": "10 - 2(3 - x) = -x"},
        {"kind": "linear", "equation": "x = 4"},
        {"kind": "expression", "expression": "-(3 + 4) * 2.5 - 1 / 3"},
        {"kind": "expression", "expression": "12"},
        {"kind": "expression", "expression": "((((1 + 2))))"},
    ],
)
def test_traces_of_injected_problems_are_accepted_and_correct(problem):
    env = started(problem, max_steps=20)
    for action in solution_trace(problem):
        _, _, terminated, _, info = env.step(action)
        assert "error" not in info or info.get("is_correct"), (action, info)
    assert terminated and info["is_correct"] and all(env.step_checks)


def test_traces_are_the_documented_step_language():
    assert solution_trace(EXPRESSION) == [*EXPRESSION_TRACE, "Answer: 32"]
    assert solution_trace(LINEAR) == [*LINEAR_TRACE, "Answer: 5"]
    assert solution_trace({"kind": "linear", "equation": "7 - 2(x + 1) = -3"}) == [
        "2(x + 1) = 7 - (-3)",
        "2(x + 1) = 10",
        "x + 1 = 10 / 2",
        "x + 1 = 5",
        "x = 5 - 1",
        "x = 4",
        "Answer: 4",
    ]
    assert solution_trace({"kind": "expression", "expression": "(1 - 3) / 4"}) == [
        "1 - 3 = -2",
        "(-2) / 4 = -1/2",
        "Answer: -1/2",
    ]


@pytest.mark.parametrize("num_operations", [1, 2, 5, 8])
@pytest.mark.parametrize("max_number", [2, 9, 100])
def test_difficulty_arguments_are_respected(num_operations, max_number):
    for kind in ("expression", "linear"):
        env = ArithmeticEnv(kind=kind, num_operations=num_operations, max_number=max_number)
        for seed in range(25):
            env.reset(seed=seed)
            problem = env.get_state().problem
            trace = solution_trace(problem)
            text = problem.get("expression") or problem["equation"].split(" = ")[0]
            literals = [int(n) for n in "".join(c if c.isdigit() else " " for c in text).split()]
            assert literals and all(1 <= n <= max_number for n in literals), text
            if kind == "expression":
                assert sum(text.count(op) for op in "+-*/") == num_operations
                assert len(trace) == num_operations + 1
            else:
                assert len(trace) == 2 * num_operations + 1
                assert abs(problem["answer"]) <= max_number
            # Without fractions every value is an integer: the result of every step, the answer.
            assert all(re.fullmatch(r"-?[0-9]+", step.split(" = ")[1]) for step in trace[:-1] if "x" not in step)
            assert type(problem["answer"]) is int


def test_fractions_allow_fractional_values():
    env = ArithmeticEnv(kind="expression", fractions=True)
    answers = [env.reset(seed=seed) and env.get_state().problem["answer"] for seed in range(50)]
    assert any(type(answer) is Fraction for answer in answers)


def test_mixed_draws_both_kinds_and_default_max_steps():
    env = ArithmeticEnv()
    kinds = {(env.reset(seed=seed), env.get_state().problem["kind"])[1] for seed in range(30)}
    assert kinds == {"expression", "linear"} and env.max_steps == 10


def test_truncated_only_at_the_step_limit_and_terminated_only_at_an_answer():
    env = ArithmeticEnv(kind="expression", num_operations=2, max_steps=3)
    env.reset(options={"problem": EXPRESSION})
    ends = [env.step("junk")[2:4] for _ in range(3)]
    assert ends == [(False, False)] * 2 + [(False, True)]
    env.reset(options={"problem": {"kind": "expression", "expression": "1 + 2 * 3"}})
    play(env, ["2 * 3 = 6", "1 + 6 = 7"])
    assert env.step("Answer: 7")[2:4] == (True, False)  # an answer at the limit terminates


@pytest.mark.parametrize(
    "action",
    [
        "",
        " ",
        "=",
        "==",
        "\x00\x01\x02 = 1",
        "\n\n\n",
        "🙂" * 50,
        "🙂 = 🙂",
        "١٣ = ١٣",
        "Answer:",
        "Answer: 🙂\nmore lines\r\n",
        "answer: 32",
        "ANSWER:" + "9" * 100_000,
        "x" * 1_000_000,
        "1 = " + "1" * 10_000,
        "(" * 5_000 + "1 = 1",
        "9^9^9^9 = 1",
        "9**9**9 = 1",
        "10**10**10 = 0",
        "1e308 * 1e308 = inf",
        "__import__('os').system('echo pwned') = 0",
        "().__class__.__bases__[0].__subclasses__() = 1",
        "lambda: 1 = 1",
        "x = 5",
        "3 + 4 = 7" + " " * 10_000,
        "Answer: " + "(" * 5_000,
    ],
)
def test_any_action_string_gets_a_float_reward_and_a_valid_observation(action):
    for problem in (EXPRESSION, LINEAR):
        env = started(problem)
        obs, reward, terminated, _truncated, info = env.step(action)
        assert isinstance(reward, float)
        assert env.observation_space.contains(obs)
        assert terminated == action.lower().startswith("answer:")
        assert not info.get("is_correct", False) or action == "answer: 32"


def test_non_string_actions_raise_type_error():
    with pytest.raises(TypeError, match="an action is a str"):
        started().step(7)


def test_seeding_is_deterministic_and_only_through_np_random():
    def problems(seed: int, **kwargs) -> list[str]:
        env = ArithmeticEnv(**kwargs)
        first = env.reset(seed=seed)[1]["problem_id"]
        return [first] + [env.reset()[1]["problem_id"] for _ in range(20)]

    assert problems(3) == problems(3)
    assert problems(3) != problems(4)
    assert problems(5, kind="linear", fractions=True) == problems(5, kind="linear", fractions=True)
    assert len(set(problems(3))) > 15


def test_splits_are_disjoint_and_index_addresses_a_fixed_sequence():
    env = ArithmeticEnv(num_operations=2)
    train = {env.reset(seed=seed)[1]["problem_id"] for seed in range(200)}
    test = {env.reset(options={"split": "test"})[1]["problem_id"] for _ in range(200)}
    assert train and test and not train & test
    assert all(split_of(env.problem_at(i, "test")) == "test" for i in range(20))
    sequence = [env.reset(seed=seed, options={"index": i, "split": "test"})[0] for seed, i in enumerate(range(20))]
    again = [ArithmeticEnv(num_operations=2, split="test").reset(options={"index": i})[0] for i in range(20)]
    assert sequence == again and len(set(sequence)) > 15
    assert env.reset(options={"index": 0})[0] != env.reset(options={"index": 0, "split": "test"})[0]
    test_env = ArithmeticEnv(num_operations=2, split="test")
    assert all(split_of(test_env.reset(seed=s) and test_env.get_state().problem) == "test" for s in range(30))


def test_a_setting_with_too_few_problems_for_a_split_says_so(monkeypatch):
    env = ArithmeticEnv(kind="expression", num_operations=1, max_number=2)
    assert len({env.reset(seed=seed)[1]["problem_id"] for seed in range(200)}) == 14  # a + b, a - b, ...
    monkeypatch.setattr(arithmetic, "split_of", lambda problem: "train")  # as if no problem hashed to test
    with pytest.raises(ValueError, match="no test problem in 1000 draws: these settings have too few"):
        env.reset(options={"split": "test"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"index": -1}, r"index must be an int >= 0"),
        ({"index": 0, "split": "dev"}, "split must be one of"),
        ({"problem": EXPRESSION, "index": 0}, "cannot be combined"),
        ({"problem": "(3 + 4) * 5"}, "an Arithmetic problem is"),
        ({"problem": {"kind": "quadratic", "equation": "x^2 = 4"}}, "an Arithmetic problem is"),
        ({"problem": {"kind": "expression"}}, "an Arithmetic problem is"),
        ({"problem": {"kind": "expression", "equation": "3x = 1"}}, "unknown problem key"),
        ({"problem": {"kind": "expression", "expression": "2x + 1"}}, "no unknown"),
        ({"problem": {"kind": "expression", "expression": "1 / (2 - 2)"}}, "has no value"),
        ({"problem": {"kind": "expression", "expression": "2^3"}}, "cannot read"),
        ({"problem": {"kind": "expression", "expression": "f(3)"}}, "cannot read"),
        ({"problem": {"kind": "expression", "expression": "(3 + 4"}}, "cannot read"),
        ({"problem": {"kind": "expression", "expression": "1" * 300}}, "cannot read"),
        ({"problem": {"kind": "expression", "expression": "__import__('os')"}}, "cannot read"),
        ({"problem": {"kind": "linear", "equation": "3x + 4"}}, "exactly one '='"),
        ({"problem": {"kind": "linear", "equation": "x = 1 = 1"}}, "exactly one '='"),
        ({"problem": {"kind": "linear", "equation": "x * x = 4"}}, "not a linear equation"),
        ({"problem": {"kind": "linear", "equation": "1 / x = 4"}}, "not a linear equation"),
        ({"problem": {"kind": "linear", "equation": "x + 1 = x + 2"}}, "does not determine x"),
        ({"problem": {"kind": "linear", "equation": "2 = 2"}}, "does not determine x"),
        ({"problem": {"kind": "linear", "equation": "y + 1 = 2"}}, "cannot read"),
        ({"problem": {**LINEAR, "answer": 6}}, "answer 6 is wrong"),
    ],
)
def test_bad_reset_options_raise_value_errors_that_say_what_is_accepted(options, message):
    with pytest.raises(ValueError, match=message):
        ArithmeticEnv().reset(options=options)


def test_injected_problems_are_made_canonical():
    env = ArithmeticEnv()
    obs, info = env.reset(options={"problem": {"kind": "linear", "equation": "3*x+4 = 19", "answer": "5"}})
    assert obs == "Solve for x: 3x + 4 = 19." and info["problem_id"] == "arithmetic/linear/3x+4=19"
    obs, _ = env.reset(options={"problem": {"kind": "expression", "expression": "((3+4)) × 5 − 6÷2"}})
    assert obs == "Compute (3 + 4) * 5 - 6 / 2."
    assert env.get_state().problem == {**EXPRESSION, "answer": 32}


def test_problem_records_round_trip_and_generation_is_canonical():
    rng = np.random.default_rng(0)
    for kind in ("expression", "linear"):
        for fractions in (False, True):
            for _ in range(100):
                problem = generate_problem(rng, kind=kind, num_operations=5, max_number=20, fractions=fractions)
                assert validate_problem(problem) == problem


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"colour": "red"}, r"unknown keyword argument \['colour'\]; accepted: \["),
        ({"kind": "quadratic"}, "kind must be"),
        ({"num_operations": 0}, "num_operations must be an int from 1 to 12"),
        ({"num_operations": 13}, "num_operations must be"),
        ({"num_operations": 2.0}, "num_operations must be"),
        ({"num_operations": True}, "num_operations must be"),
        ({"max_number": 1}, "max_number must be an int from 2"),
        ({"max_number": 10**7}, "max_number must be"),
        ({"fractions": "yes"}, "fractions must be True or False"),
        ({"split": "validation"}, "split must be one of"),
        ({"max_steps": 0}, "max_steps must be a positive int"),
        ({"max_steps": 6}, "max_steps must be at least 7"),
        ({"kind": "expression", "max_steps": 3}, "max_steps must be at least 4"),
        ({"reward_weights": {"speed": 1.0}}, "unknown reward component"),
        ({"render_mode": "human"}, "render_mode must be"),
        ({"prm": "a model"}, "prm must be a callable"),
    ],
)
def test_bad_constructor_arguments_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make("reason_gym/Arithmetic-v0", **kwargs)


def test_a_prm_scores_each_accepted_step():
    calls = []

    def toy_prm(question: str, steps: list[str]) -> list[float]:
        calls.append(list(steps))
        return [1.0 if step.endswith("= 7") else 0.25 for step in steps]

    env = started(prm=toy_prm, reward_weights={"prm": 2.0})
    _, reward, _, _, info = env.step(EXPRESSION_TRACE[0])
    assert info["reward_components"]["prm"] == 1.0 and reward == 2.0
    _, reward, _, _, info = env.step(EXPRESSION_TRACE[1])
    assert info["reward_components"]["prm"] == 0.25 and reward == 0.5
    env.step("junk")  # rejected steps are not scored
    assert calls == [EXPRESSION_TRACE[:1], EXPRESSION_TRACE[:2]]


def test_render_ansi_shows_the_state_and_the_reward():
    env = started(render_mode="ansi")
    env.step("3 + 4 = 8")
    text = env.render()
    assert "Compute (3 + 4)" in text and "[step 1/10]" in text and "step_check=0" in text
    assert started().render() is None


def test_sync_vector_env_keeps_the_final_info():
    envs = gym.make_vec("reason_gym/Arithmetic-v0", num_envs=2, vectorization_mode="sync", kind="expression")
    envs.reset(seed=[1, 2])
    traces = [solution_trace(state.problem) for state in envs.call("get_state")]
    for actions in zip(*traces, strict=True):  # expression traces have num_operations + 1 actions
        _, rewards, terminated, _, infos = envs.step(list(actions))
    assert terminated.all() and (rewards == 1.0).all() and infos["is_correct"].all()
    envs.close()


@pytest.mark.parametrize(("expression", "answer"), [("1 / 2", ".5"), (".5 + 1", "3/2"), ("0 - 1 / 4", "-.25")])
def test_decimals_without_a_leading_zero_are_numbers_in_problems_and_answers(expression, answer):
    env = ArithmeticEnv()
    env.reset(options={"problem": {"kind": "expression", "expression": expression}})
    assert solution_trace(env.get_state().problem)[-1].startswith("Answer:")  # it raised on ".5" as a number
    assert env.step(f"Answer: {answer}")[4]["is_correct"]
