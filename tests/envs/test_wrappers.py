"""Behaviour of the discrete-action wrapper, its encoders, and MaskablePPO training on top of it."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from reason_gym.checkers.game24_solver import solve
from reason_gym.envs.game24 import Game24Env
from reason_gym.wrappers import DiscreteActions, Game24NumbersEncoder, HashedTextEncoder

ENCODERS = {"numbers": Game24NumbersEncoder, "hashed": lambda: HashedTextEncoder(dim=64)}


def wrapped(encoder: str = "numbers", **kwargs) -> DiscreteActions:
    return DiscreteActions(gym.make("reason_gym/Game24-v0"), ENCODERS[encoder](), **kwargs)


def start(env: DiscreteActions, numbers: list[int]) -> tuple[np.ndarray, dict]:
    return env.reset(options={"problem": {"numbers": numbers}})


def index_of(env: DiscreteActions, text: str) -> int:
    return env.candidate_texts().index(text)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_spaces_and_observations(encoder):
    env = wrapped(encoder)
    assert env.action_space == spaces.Discrete(36)
    assert isinstance(env.observation_space, spaces.Box)
    assert env.observation_space.dtype == np.float32
    obs, info = env.reset(seed=3)
    assert obs in env.observation_space
    assert info["text"].startswith("Game of 24")
    rng = np.random.default_rng(0)
    for _ in range(4):
        obs, _, terminated, _, info = env.step(rng.choice(np.flatnonzero(env.action_masks())))
        assert obs in env.observation_space
        assert info["text"] == env.unwrapped.get_state().observation
    assert terminated


@pytest.mark.parametrize("seed", range(5))
def test_masks_match_candidate_actions(seed):
    env = wrapped()
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    done = False
    while not done:
        mask = env.action_masks()
        expected = [text is not None for text in env.unwrapped.candidate_actions()]
        assert mask.dtype == bool
        assert mask.tolist() == expected
        _, _, terminated, truncated, _ = env.step(rng.choice(np.flatnonzero(mask)))
        done = terminated or truncated
    assert mask.any()


@pytest.mark.parametrize("numbers", [[4, 9, 10, 13], [3, 3, 8, 8], [1, 1, 1, 8], [1, 5, 5, 5]])
def test_solver_trace_played_by_index_solves_the_puzzle(numbers):
    env = wrapped()
    start(env, numbers)
    steps = solve(numbers)[:-1]  # the last line is the answer, played as action 0 below
    for step in steps:
        _, reward, terminated, truncated, info = env.step(index_of(env, step))
        assert (reward, terminated, truncated) == (0.0, False, False)
        assert info["text"].endswith(step)
    assert env.action_masks().tolist() == [True] + [False] * 35  # one number left: only the answer
    _, reward, terminated, truncated, info = env.step(0)
    assert (reward, terminated, truncated, info["is_correct"]) == (1.0, True, False, True)
    assert env.action_masks().all()  # no episode running: nothing to constrain, and never all False


@pytest.mark.parametrize(
    ("numbers", "steps_first", "action"),
    [
        ([4, 9, 10, 13], [], -1),  # out of range
        ([4, 9, 10, 13], [], 36),
        ([4, 9, 10, 13], [], 10**6),
        ([4, 9, 10, 13], ["13 - 9 = 4 (left: 4 4 10)"], 6 * 2),  # slot 3 is empty with 3 numbers left
        ([4, 4, 10, 13], [], 6 * 3 + 1),  # pair (1, 2) repeats pair (0, 2): the duplicate is masked
        ([4, 9, 10, 13], ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)"], 1),
    ],
)
def test_masked_action_is_an_invalid_step_and_changes_nothing(numbers, steps_first, action):
    env = wrapped()
    obs, info = start(env, numbers)
    for step in steps_first:
        obs, _, _, _, info = env.step(index_of(env, step))
    mask = env.action_masks()
    assert not (0 <= action < 36 and mask[action])
    before = (env.unwrapped.numbers, info["text"], obs)
    obs, reward, terminated, truncated, info = env.step(action)
    assert info["reward_components"]["invalid_step"] == 1.0
    assert reward == pytest.approx(-0.1)
    assert not terminated and not truncated
    assert env.unwrapped.numbers == before[0]
    assert info["text"] == before[1]
    np.testing.assert_array_equal(obs, before[2])
    assert env.action_masks().tolist() == mask.tolist()


def test_custom_candidates():
    env = wrapped(candidates=lambda unwrapped: ["Answer: 24", None], max_actions=3)
    start(env, [4, 9, 10, 13])
    assert env.action_space == spaces.Discrete(3)
    assert env.action_masks().tolist() == [True, False, False]
    _, reward, terminated, _, info = env.step(0)
    assert (reward, terminated, info["is_correct"]) == (0.0, True, False)  # 24 is not the puzzle's numbers


def test_no_candidates_allows_every_action_as_an_invalid_step():
    env = wrapped(candidates=lambda unwrapped: [None, None])
    start(env, [4, 9, 10, 13])
    assert env.action_masks().all()
    _, reward, terminated, truncated, _ = env.step(2)
    assert (reward, terminated, truncated) == (pytest.approx(-0.1), False, False)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: DiscreteActions(gym.make("CartPole-v1"), HashedTextEncoder()), "max_candidates"),
        (lambda: DiscreteActions(gym.make("CartPole-v1"), HashedTextEncoder(), max_actions=2), "candidate_actions"),
        (lambda: wrapped(max_actions=0), "max_actions"),
        (lambda: HashedTextEncoder(dim=0), "dim"),
        (lambda: Game24NumbersEncoder(num_numbers=1), "num_numbers"),
    ],
)
def test_configuration_errors_say_what_to_fix(make, error):
    with pytest.raises(ValueError, match=error):
        make()


def test_too_many_candidates_is_an_error():
    env = wrapped(max_actions=4)
    start(env, [4, 9, 10, 13])
    with pytest.raises(ValueError, match="raise max_actions"):
        env.action_masks()


HASH_TEXTS = ["", "a", "Game of 24: use each number once\nInput: 4 9 10 13", "8 × 3 ÷ 1 − 0", "x" * 5000]


@pytest.mark.parametrize("text", HASH_TEXTS)
def test_hashed_encoder_is_deterministic_and_in_its_space(text):
    encoder = HashedTextEncoder(dim=32)
    vector = encoder(None, text)
    assert vector in encoder.observation_space
    np.testing.assert_array_equal(vector, HashedTextEncoder(dim=32)(None, text))
    assert np.linalg.norm(vector) == pytest.approx(1.0 if text else 0.0, abs=1e-6)


def test_hashed_encoder_is_the_same_in_another_process():
    code = (
        "import json, sys; from reason_gym.wrappers import HashedTextEncoder; "
        "print(json.dumps([HashedTextEncoder(dim=32)(None, t).tolist() for t in json.loads(sys.argv[1])]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(HASH_TEXTS)], capture_output=True, text=True, check=True
    ).stdout
    here = [HashedTextEncoder(dim=32)(None, text) for text in HASH_TEXTS]
    np.testing.assert_array_equal(np.array(json.loads(out), np.float32), np.array(here))


def test_hashed_encoder_tells_states_apart():
    env = wrapped("hashed")
    obs, _ = start(env, [4, 9, 10, 13])
    after, *_ = env.step(0)
    assert not np.array_equal(obs, after)


def numbers_features(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Game24NumbersEncoder's vector as (slot, feature) and (pair, operation, feature) arrays."""
    return obs[:20].reshape(4, 5), obs[20:-1].reshape(6, 6, 5)


@pytest.mark.parametrize(
    ("numbers", "steps", "slots"),
    [
        # per slot: present, value / 24, value == 24, whole, whole divisor of 24
        (
            [4, 9, 10, 13],
            [],
            [(1, 4 / 24, 0, 1, 1), (1, 9 / 24, 0, 1, 0), (1, 10 / 24, 0, 1, 0), (1, 13 / 24, 0, 1, 0)],
        ),
        (
            [3, 3, 8, 8],
            ["8 / 3 = 8/3 (left: 8/3 3 8)"],
            [(1, 1 / 9, 0, 0, 0), (1, 1 / 8, 0, 1, 1), (1, 1 / 3, 0, 1, 1)],
        ),
        (
            [1, 2, 9, 13],
            ["1 - 13 = -12 (left: -12 2 9)"],
            [(1, -1 / 2, 0, 1, 1), (1, 1 / 12, 0, 1, 1), (1, 3 / 8, 0, 1, 0)],
        ),
        (
            [6, 8, 12, 13],
            ["12 * 13 = 156 (left: 6 8 156)"],
            [(1, 1 / 4, 0, 1, 1), (1, 1 / 3, 0, 1, 1), (1, 4, 0, 1, 0)],
        ),
        (
            [4, 9, 10, 13],
            ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)"],
            [(1, 1, 1, 1, 1)],
        ),
    ],
)
def test_numbers_encoder_slots(numbers, steps, slots):
    env = wrapped()
    obs, _ = start(env, numbers)
    for step in steps:
        obs, *_ = env.step(index_of(env, step))
    assert obs in env.observation_space
    expected = np.zeros((4, 5), np.float32)
    expected[: len(slots)] = slots
    np.testing.assert_allclose(numbers_features(obs)[0], expected, rtol=1e-6)
    assert obs[-1] == pytest.approx(len(slots) / 4)


def test_numbers_encoder_encodes_each_move_result_like_a_number():
    env = wrapped()
    obs, _ = start(env, [0, 2, 8, 12])
    moves = numbers_features(obs)[1]
    np.testing.assert_allclose(moves[5, 3], (1, 12 / 8 / 24, 0, 0, 0), rtol=1e-6)  # slots (2, 3): 12 / 8
    np.testing.assert_allclose(moves[4, 1], (1, 1, 1, 1, 1), rtol=1e-6)  # slots (1, 3): 2 * 12 = 24
    assert moves[0, 3].tolist() == [0] * 5  # slots (0, 1): 2 / 0 is impossible
    assert moves[0, 5].tolist() == [1, 0, 0, 1, 0]  # 0 / 2 = 0: whole, not a divisor
    texts = env.candidate_texts()
    assert texts[6 * 4 + 1].startswith("2 * 12 = 24") and texts[6 * 0 + 3] is None


def test_numbers_encoder_shows_which_move_reaches_the_target():
    env = wrapped()
    obs, _ = start(env, [4, 9, 10, 13])
    for step in ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)"]:
        obs, *_ = env.step(index_of(env, step))
    hits = numbers_features(obs)[1][:, :, 2]  # (pair, operation): the result equals the target
    assert np.argwhere(hits).tolist() == [[0, 1]]  # pair of slots (0, 1), operation 1: 4 * 6
    assert env.candidate_texts()[6 * 0 + 1].startswith("4 * 6 = 24")


def test_numbers_encoder_uses_the_puzzle_target():
    env = wrapped()
    obs, _ = env.reset(options={"problem": {"numbers": [2, 5], "target": 10}})
    slots, moves = numbers_features(obs)
    np.testing.assert_allclose(slots[:2], [[1, 0.2, 0, 1, 1], [1, 0.5, 0, 1, 1]], rtol=1e-6)
    assert moves[0, 1, 2] == 1  # 2 * 5 == 10


@pytest.mark.parametrize("encoder", ENCODERS)
def test_gymnasium_env_checker_passes(encoder):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(DiscreteActions(Game24Env(), ENCODERS[encoder]()), skip_render_check=True)
    messages = [str(w.message) for w in caught if "different from the unwrapped version" not in str(w.message)]
    assert messages == []


@pytest.mark.parametrize("encoder", ENCODERS)
def test_gymnasium_env_checker_passes_on_a_made_env_and_the_spec_rebuilds_it(encoder):
    env = DiscreteActions(gym.make("reason_gym/Game24-v0", render_mode="ansi"), ENCODERS[encoder]())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env)
    rebuilt = gym.make(env.spec)
    assert isinstance(rebuilt, DiscreteActions) and rebuilt.action_space == env.action_space


@pytest.mark.parametrize(
    "action", [1.7, -0.5, "3", True, np.float32(2.9), np.bool_(True), None, float("nan"), [3], np.array([3])]
)
def test_an_action_that_is_not_an_integer_is_a_type_error_not_another_move(action):
    env = wrapped()
    start(env, [4, 9, 10, 13])
    with pytest.raises(TypeError, match="an action of Discrete is an integer"):
        env.step(action)
    assert env.unwrapped.get_state().steps == ()  # nothing was played


@pytest.mark.parametrize("action", [2, np.int64(2), np.array(2)])
def test_integer_actions_of_any_kind_play_their_move(action):
    env = wrapped()
    start(env, [4, 9, 10, 13])
    env.step(action)
    assert len(env.unwrapped.get_state().steps) == 1


def test_masks_follow_a_state_restored_after_the_end():
    env = wrapped()
    start(env, [4, 9, 10, 13])
    env.step(index_of(env, "13 - 9 = 4 (left: 4 4 10)"))  # three numbers left: fewer moves than actions
    running = env.unwrapped.get_state()
    env.unwrapped.step("Answer: 4 * 9")  # ends the episode (wrong answer)
    assert env.action_masks().all()  # no episode: every action allowed
    env.unwrapped.set_state(running)
    assert env.action_masks().sum() < env.action_space.n  # running again: the real mask


@pytest.mark.slow
def test_maskable_ppo_learns_and_predicts_with_masks():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.maskable.utils import get_action_masks
    from stable_baselines3.common.env_util import make_vec_env

    vec_env = make_vec_env(lambda: wrapped(), n_envs=2, seed=0)
    model = sb3_contrib.MaskablePPO("MlpPolicy", vec_env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)

    obs = vec_env.reset()
    for _ in range(4):  # one whole episode: the vec env resets each env as its episode ends
        masks = get_action_masks(vec_env)
        for mask, env in zip(masks, vec_env.envs, strict=True):
            assert mask.tolist() == [text is not None for text in env.unwrapped.candidate_actions()]
        actions, _ = model.predict(obs, action_masks=masks, deterministic=True)
        assert masks[[0, 1], actions].all()
        obs, _, dones, infos = vec_env.step(actions)
    assert dones.all()
    assert all("is_correct" in info for info in infos)
    assert get_action_masks(vec_env).any(axis=1).all()


@pytest.mark.slow
def test_training_script_runs_end_to_end(tmp_path, run_script):
    pytest.importorskip("sb3_contrib")
    out = tmp_path / "results.json"
    args = ["--timesteps", "256", "--n-envs", "2", "--random-seeds", "2", "--out", str(out)]
    done = run_script("scripts/train_game24_maskable_ppo.py", *args)
    assert "maskable_ppo" in done.stdout and "random_valid" in done.stdout
    report = json.loads(out.read_text())
    assert report["config"]["timesteps"] == 256
    for name in ("maskable_ppo", "random_valid"):
        row = report["results"][name]
        assert 0 <= row["solved"] <= row["total"]
        assert row["accuracy"] == pytest.approx(row["solved"] / row["total"])
    assert len(report["results"]["random_valid"]["solved_per_seed"]) == 2
