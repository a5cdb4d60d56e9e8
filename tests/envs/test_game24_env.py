"""The environment contract on Game of 24: spaces, options, rewards, episode ends, branching, bad input."""

import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import reason_gym
from reason_gym import data
from reason_gym.envs import game24
from reason_gym.envs.game24 import Game24Env

SOLUTION = ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)"]
PUZZLE = {"numbers": [4, 9, 10, 13]}


def started(**kwargs) -> Game24Env:
    env = Game24Env(**kwargs)
    env.reset(seed=0, options={"problem": PUZZLE})
    return env


@pytest.mark.parametrize(
    "kwargs",
    [{"split": "test"}, {"source": "procedural", "num_numbers": 5, "target": 48}, {"render_mode": "ansi"}],
)
def test_check_env_passes(kwargs):
    check_env(gym.make("reason_gym/Game24-v0", **kwargs).unwrapped, skip_render_check=False)


def test_a_full_episode():
    env = started()
    obs, info = env.reset(options={"problem": PUZZLE})
    assert obs == "Game of 24: use each number once with + - * / to reach 24.\nInput: 4 9 10 13"
    assert info == {"problem_id": "game24/4-9-10-13"}
    for step in SOLUTION:
        obs, reward, terminated, truncated, info = env.step(step)
        assert (reward, terminated, truncated) == (0.0, False, False)
        assert info["reward_components"] == {"outcome": 0.0, "invalid_step": 0.0}
    assert obs.endswith("\n" + "\n".join(SOLUTION))
    obs, reward, terminated, truncated, info = env.step("Answer: (13 - 9) * (10 - 4) = 24")
    assert (reward, terminated, truncated, info["is_correct"]) == (1.0, True, False, True)
    assert obs.endswith("\nAnswer: (13 - 9) * (10 - 4) = 24")
    assert env.observation_space.contains(obs)
    with pytest.raises(gym.error.ResetNeeded):
        env.step("4 + 4 = 8")


def test_the_answer_is_judged_against_the_puzzle_whatever_the_steps():
    env = started()
    env.step("13 + 9 = 22")  # a step that leads nowhere does not spoil a correct answer
    _, reward, terminated, _, info = env.step("Answer: (13 - 9) * (10 - 4)")
    assert terminated and info["is_correct"] and reward == 1.0
    env = started()
    for step in SOLUTION:
        env.step(step)
    _, reward, _, _, info = env.step("Answer: 24")  # the bare value is not an expression over the puzzle
    assert not info["is_correct"] and reward == 0.0 and "uses 24" in info["error"]


def test_an_invalid_step_is_penalised_and_changes_nothing():
    env = started()
    before = env.get_state()
    obs, reward, terminated, truncated, info = env.step("13 - 9 = 5")
    assert reward == pytest.approx(-0.1)
    assert info["reward_components"]["invalid_step"] == 1.0
    assert "is wrong" in info["error"]
    assert obs == before.observation and env.numbers == before.task
    assert (terminated, truncated) == (False, False)


def test_truncated_only_at_the_step_limit_and_terminated_only_at_an_answer():
    env = Game24Env(max_steps=4)
    env.reset(options={"problem": PUZZLE})
    ends = [env.step("junk")[2:4] for _ in range(4)]
    assert ends == [(False, False)] * 3 + [(False, True)]
    env.reset(options={"problem": PUZZLE})
    for step in SOLUTION:
        env.step(step)
    assert env.step("Answer: (13-9)*(10-4)")[2:4] == (True, False)  # an answer at the limit terminates


@pytest.mark.parametrize(
    "action",
    [
        "",
        " ",
        "\x00\x01\x02",
        "\n\n\n",
        "🙂" * 50,
        "Answer:",
        "Answer: 🙂\nmore lines\r\n",
        "answer: (13-9)*(10-4)",
        "ANSWER:" + "9" * 100_000,
        "x" * 1_000_000,
        "13 - 9 = 4" + " " * 10_000,
        "__import__('os').system('echo pwned')",
        "13 - 9 = 4 (left: " + "4 " * 5_000 + ")",
        "Answer: " + "(" * 5_000,
        "1e308 * 1e308 = inf",
    ],
)
def test_any_action_string_gets_a_float_reward_and_a_valid_observation(action):
    env = started()
    obs, reward, terminated, _truncated, info = env.step(action)
    assert isinstance(reward, float)
    assert env.observation_space.contains(obs)
    assert terminated == action.lower().startswith("answer:")
    assert not info.get("is_correct", False) or action.lower().startswith("answer: (13")


def test_non_string_actions_raise_type_error():
    with pytest.raises(TypeError, match="an action is a str"):
        started().step(42)


def test_seeding_is_deterministic_and_only_through_np_random():
    def problems(seed: int) -> list[str]:
        env = Game24Env()
        first = env.reset(seed=seed)[1]["problem_id"]
        return [first] + [env.reset()[1]["problem_id"] for _ in range(20)]

    assert problems(3) == problems(3)
    assert problems(3) != problems(4)
    procedural = [Game24Env(source="procedural", num_numbers=5, target=100).reset(seed=7)[0] for _ in range(2)]
    assert procedural[0] == procedural[1]


def test_splits_follow_the_tree_of_thoughts_paper():
    env = Game24Env(split="test")
    assert env.tot_order, "needs 24.csv (REASON_GYM_DATA_DIR or the tree-of-thoughts-llm package)"
    assert [len(env.split_indices(s)) for s in ("train", "test", "all")] == [1262, 100, 1362]
    assert env.reset(options={"index": 0})[0].endswith("Input: 4 5 6 10")  # rank 901
    assert env.reset(options={"index": 0, "split": "train"})[0].endswith("Input: 1 1 4 6")  # rank 1
    assert env.reset(options={"index": 99})[0].endswith("Input: 4 9 10 13")  # rank 1000
    seen = {env.reset(options={"split": "test"})[1]["problem_id"] for _ in range(300)}
    test_ids = {env.reset(options={"index": i})[1]["problem_id"] for i in range(100)}
    assert seen <= test_ids and len(seen) > 50


def test_without_the_file_the_same_puzzles_are_generated_with_a_warning(monkeypatch):
    monkeypatch.setattr(data, "find_data_file", lambda *args, **kwargs: None)
    game24.generated_puzzles.cache_clear()
    with pytest.warns(UserWarning, match="ToT order and train/test split are unavailable"):
        env = Game24Env(split="test")
    assert not env.tot_order and len(env.split_indices()) == 1362
    assert env.reset(options={"index": 0})[0].endswith("Input: 1 1 1 8")
    check_env(env, skip_render_check=True)


def test_procedural_puzzles_are_solvable_and_respect_their_settings():
    env = Game24Env(source="procedural", num_numbers=3, target=10, max_number=6)
    for seed in range(30):
        obs, _ = env.reset(seed=seed)
        numbers = env.numbers
        assert len(numbers) == 3 and all(1 <= x <= 6 for x in numbers)
        assert "reach 10." in obs
        assert reason_gym.checkers.game24_solver.is_solvable(numbers, 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_numbers": 2, "target": 10**9}, "target=1000000000 is out of reach of num_numbers=2"),  # the audit's
        ({"num_numbers": 3, "target": -(10**6), "max_number": 5}, "out of reach of num_numbers=3"),
    ],
)
def test_procedural_settings_that_no_puzzle_meets_raise_at_once(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Game24Env(source="procedural", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_numbers": 2, "target": 97}, "no solvable puzzle in 200 draws of num_numbers=2 .* max_number=13 .*97"),
        ({"num_numbers": 2, "target": -2, "max_number": 1}, "no solvable puzzle in 200 draws"),
    ],
)
def test_procedural_resets_that_find_no_solvable_puzzle_raise_naming_the_settings(kwargs, message):
    env = Game24Env(source="procedural", **kwargs)  # within reach by size, but never reached
    with pytest.raises(ValueError, match=message):
        env.reset(seed=0)


def test_the_step_solvable_check_is_fast_on_the_largest_injected_puzzle():
    env = Game24Env(reward_weights={"step_solvable": 1.0})
    env.reset(options={"problem": {"numbers": [2, 3, 5, 7, 11, 13], "target": 9973}})  # within reach, unsolvable
    start = time.perf_counter()
    assert env.step("2 + 3 = 5")[4]["reward_components"]["step_solvable"] == 0.0
    assert time.perf_counter() - start < 5.0


def test_candidate_actions_refuse_a_puzzle_larger_than_the_env_slots():
    env = Game24Env(reward_weights={"step_solvable": 1.0})
    env.reset(options={"problem": {"numbers": [1, 2, 3, 4, 5, 6]}})
    with pytest.raises(ValueError, match="num_numbers=4 numbers, the puzzle has 6: make the env with num_numbers=6"):
        env.candidate_actions()
    wide = Game24Env(source="procedural", num_numbers=6)
    wide.reset(options={"problem": {"numbers": [1, 2, 3, 4, 5, 6]}})
    moves = [c for c in wide.candidate_actions() if c]
    assert "5 * 6 = 30 (left: 1 2 3 4 30)" in moves and "1 + 2 = 3 (left: 3 3 4 5 6)" in moves
    wide.reset(options={"problem": {"numbers": [4, 9]}})  # smaller than the slots: every move is listed
    assert "4 + 9 = 13 (left: 13)" in wide.candidate_actions()


def test_step_solvable_component_is_off_by_default_and_exact_when_on():
    assert "step_solvable" not in started().step(SOLUTION[0])[4]["reward_components"]
    env = started(reward_weights={"step_solvable": 0.5})
    _, reward, _, _, info = env.step(SOLUTION[0])
    assert info["reward_components"]["step_solvable"] == 1.0 and reward == 0.5
    env.set_state(env.get_state())
    _, reward, _, _, info = env.step("4 + 4 = 8 (left: 8 10)")  # from 4 4 10: 8 and 10 cannot make 24
    assert info["reward_components"]["step_solvable"] == 0.0 and reward == 0.0


def test_a_prm_scores_each_accepted_step():
    calls = []

    def toy_prm(question: str, steps: list[str]) -> list[float]:
        calls.append(list(steps))
        return [1.0 if "= 24" in step or "= 4" in step else 0.25 for step in steps]

    env = started(prm=toy_prm, reward_weights={"prm": 2.0})
    _, reward, _, _, info = env.step(SOLUTION[0])
    assert info["reward_components"]["prm"] == 1.0 and reward == 2.0
    _, reward, _, _, info = env.step(SOLUTION[1])
    assert info["reward_components"]["prm"] == 0.25 and reward == 0.5
    env.step("junk")  # rejected steps are not scored
    assert calls == [SOLUTION[:1], SOLUTION[:2]]


@pytest.mark.parametrize(
    "scores",
    [[float("nan")], [float("inf")], [-float("inf")], [True], ["0.5"], [None], {"a": 1.0}, "1", None, [1.0, 2.0]],
)
def test_a_prm_score_that_is_no_finite_number_is_an_error_not_a_reward(scores):
    env = started(prm=lambda question, steps: scores)
    state = env.get_state()
    with pytest.raises(ValueError, match="prm"):
        env.step(SOLUTION[0])
    assert env.get_state() is state  # not advanced


@pytest.mark.parametrize("score", [0.5, -5.0, 2.0, np.float32(0.25), np.int64(1), 0])
def test_a_prm_may_score_on_any_finite_scale(score):
    env = started(prm=lambda question, steps: [score] * len(steps))
    assert env.step(SOLUTION[0])[4]["reward_components"]["prm"] == float(score)


@pytest.mark.parametrize(
    "weights", [{"prm": float("nan")}, {"outcome": float("inf")}, {"outcome": True}, {"outcome": "1"}, [("prm", 1)]]
)
def test_reward_weights_must_be_finite_numbers(weights):
    with pytest.raises(ValueError, match="reward"):
        Game24Env(reward_weights=weights)


def test_render_ansi_shows_the_state_and_the_reward():
    env = started(render_mode="ansi")
    env.step("13 - 9 = 5")
    text = env.render()
    assert "Input: 4 9 10 13" in text and "[step 1/10]" in text and "invalid_step=1" in text
    assert started().render() is None


def test_random_candidate_actions_play_three_legal_steps_then_the_answer_they_spell_out():
    env = gym.make("reason_gym/Game24-v0")
    rng = np.random.default_rng(0)
    for index in range(20):
        env.reset(options={"index": index})
        actions, done = [], False
        while not done:
            legal = [c for c in env.unwrapped.candidate_actions() if c]
            actions.append(legal[int(rng.integers(len(legal)))])
            _, _, terminated, truncated, info = env.step(actions[-1])
            assert terminated or "error" not in info  # every step is legal
            done = terminated or truncated
        assert len(actions) == 4  # three legal steps, then the answer the steps spell out
        assert actions[-1].startswith("Answer:")


def test_candidate_actions_are_the_legal_steps_and_the_final_answer():
    env = started()
    candidates = [c for c in env.candidate_actions() if c]
    assert len(env.candidate_actions()) == env.max_candidates == 36
    assert len(candidates) == len(set(candidates)) and "13 - 9 = 4 (left: 4 4 10)" in candidates
    for candidate in candidates:
        clone = env.clone()
        assert "error" not in clone.step(candidate)[4]
    for step in SOLUTION:
        env.step(step)
    assert env.candidate_actions()[0] == "Answer: (13 - 9) * (10 - 4) = 24"
    assert env.candidate_actions()[1:] == [None] * 35


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"index": 100, "split": "test"}, r"index must be an int in \[0, 100\)"),
        ({"problem": PUZZLE, "index": 0}, "cannot be combined"),
        ({"problem": [4, 9, 10, 13]}, "a Game24 problem is"),
        ({"problem": {"numbers": [4, 9], "Puzzles": "4 10"}}, "needs them to agree"),
        ({"problem": {"numbers": "4 9", "Puzzles": "4 9"}}, "'numbers' of a Game24 problem is a list of ints"),
        ({"problem": {"Rank": "1"}}, "a Game24 problem is"),
        ({"problem": {"numbers": ["four", 9, 10, 13]}}, "'numbers' of a Game24 problem is a list of ints"),
        ({"problem": {"numbers": [-4, 9, 10, 13]}}, "'numbers' of a Game24 problem is 1 to 6 non-negative ints"),
        ({"problem": {"numbers": list(range(9))}}, "'numbers' of a Game24 problem is 1 to 6 non-negative ints"),
        ({"problem": {"numbers": []}}, "'numbers' of a Game24 problem is 1 to 6 non-negative ints"),
        # no silent coercion: a float, a string of digits, a bool is not a puzzle number
        ({"problem": {"numbers": [4.7, 9, 10, 13]}}, "'numbers' of a Game24 problem is a list of ints"),
        ({"problem": {"numbers": [4.0, 9, 10, 13]}}, "'numbers' of a Game24 problem is a list of ints"),
        ({"problem": {"numbers": "4913"}}, "'numbers' of a Game24 problem is a list of ints"),
        ({"problem": {"numbers": ["4", "9"]}}, "'numbers' of a Game24 problem is a list of ints"),
        ({"problem": {"numbers": [True, 2, 3, 4]}}, "'numbers' of a Game24 problem is a list of ints"),
        ({"problem": {"numbers": {4: 1, 9: 1}}}, "'numbers' of a Game24 problem is a list of ints"),
        ({"problem": {"numbers": [1, 2, 3, 4], "target": True}}, "'target' of a Game24 problem is an int"),
        ({"problem": {"numbers": [1, 2, 3, 4], "target": 24.0}}, "'target' of a Game24 problem is an int"),
        ({"problem": {"numbers": [1, 2, 3, 4], "target": "24"}}, "'target' of a Game24 problem is an int"),
        ({"problem": {"Puzzles": 5}}, "'Puzzles' of a Game24 problem is a string"),
        ({"problem": {"Puzzles": "4 9 x 13"}}, "'Puzzles' of a Game24 problem is a string"),
        ({"problem": {"Puzzles": "4 9.5 10 13"}}, "'Puzzles' of a Game24 problem is a string"),
        ({"problem": {"Puzzles": "4 -9 10 13"}}, "'Puzzles' of a Game24 problem is a string"),
        ({"problem": {"Puzzles": ""}}, "'Puzzles' of a Game24 problem is a string"),
        ({"problem": {"Puzzles": "1 2 3 4 5 6 7"}}, "'Puzzles' of a Game24 problem is 1 to 6 non-negative ints"),
        # the audit's hang: 7-8 numbers made the step_solvable check search for minutes
        ({"problem": {"numbers": [2, 3, 5, 7, 11, 13, 17, 19], "target": 10**9}}, "1 to 6 non-negative ints"),
        ({"problem": {"numbers": [2, 3, 5, 7, 11, 13, 17]}}, "1 to 6 non-negative ints"),
    ],
)
def test_bad_reset_options_raise_value_errors_that_say_what_is_accepted(options, message):
    with pytest.raises(ValueError, match=message):
        Game24Env().reset(options=options)


def test_injected_problems_in_both_record_formats():
    env = Game24Env()
    assert env.reset(options={"problem": {"Puzzles": "1 2 3 4", "Rank": "7"}})[1]["problem_id"] == "game24/1-2-3-4"
    obs, info = env.reset(options={"problem": {"numbers": [2, 5], "target": 10}})
    assert obs.endswith("reach 10.\nInput: 2 5") and info["problem_id"] == "game24/2-5/to-10"
    assert env.step("Answer: 2 * 5")[4]["is_correct"]


def test_a_problem_record_the_env_exposes_is_accepted_back():
    env = Game24Env()
    for reset in ({"options": {"index": 3}}, {"seed": 5}):
        observation, info = env.reset(**reset)
        record = env.get_state().problem  # a ToT row: "Puzzles" and the derived "numbers" together
        assert "Puzzles" in record and "numbers" in record
        again = env.reset(options={"problem": record})
        assert again == (observation, info)
        assert env.get_state().problem == record
        assert env.reset(options={"problem": {**record, "numbers": list(record["numbers"])}}) == (observation, info)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"colour": "red"}, r"unknown keyword argument \['colour'\]; accepted: \["),
        ({"source": "web"}, "source must be"),
        ({"split": "validation"}, r"split must be one of \('train', 'test', 'all'\), got 'validation'"),
        ({"target": 10}, "use source='procedural'"),
        ({"source": "procedural", "split": "test"}, "procedural puzzles have no split"),
        ({"source": "procedural", "num_numbers": 7}, "num_numbers must be an int from 2 to 6"),
        ({"max_steps": 0}, "max_steps must be a positive int"),
        ({"max_steps": 3}, "max_steps must be at least num_numbers"),
        ({"reward_weights": {"speed": 1.0}}, "unknown reward component"),
        ({"render_mode": "human"}, "render_mode must be"),
        ({"prm": "a model"}, "prm must be a callable"),
    ],
)
def test_bad_constructor_arguments_raise_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make("reason_gym/Game24-v0", **kwargs)


def test_an_explicit_data_path_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError):
        Game24Env(data_path=tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no 'Puzzles' column"):
        Game24Env(data_path=bad)


def test_no_warning_when_the_file_is_found():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Game24Env()


def test_canonical_state_merges_orders_of_play():
    first, second = started(), started()
    first.step("13 - 9 = 4")
    first.step("10 - 4 = 6")
    second.step("10 - 4 = 6")
    second.step("13 - 9 = 4")
    assert first.canonical_state() == second.canonical_state() == ((4, 6), 24)
    assert first.steps != second.steps
