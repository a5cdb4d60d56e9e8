"""AsyncVectorEnv with Gymnasium's default shared memory: observations are read live from the shared buffer at
every step, match SyncVectorEnv's step by step, and follow Gymnasium's copy semantics."""

from __future__ import annotations

import copy
import json
import multiprocessing
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory

import reason_gym  # noqa: F401  (registers the environments)
from reason_gym.spaces import SharedTextBatch, TextSpace

Actions = Callable[[SyncVectorEnv, np.random.Generator], list[str]]

# ------------------------------------------------------------------ the buffer itself


def make_buffer(max_length: int, n: int) -> tuple[TextSpace, Any, SharedTextBatch]:
    space = TextSpace(max_length=max_length, min_length=0)
    memory = create_shared_memory(space, n=n, ctx=multiprocessing)
    return space, memory, read_from_shared_memory(space, memory, n=n)


@pytest.mark.parametrize(
    "texts",
    [
        ("", "", ""),
        ("abcdef", "a", ""),  # exactly max_length, and shorter
        ("é€¾×÷−", "’“”—", "А"),  # non-ASCII (BMP)
        ("😀\U0010ffff", "\ud800x", "\x00\n\t"),  # astral code points, a lone surrogate, NUL
    ],
)
def test_any_string_up_to_max_length_round_trips(texts):
    space, memory, batch = make_buffer(max_length=6, n=3)
    for index, text in enumerate(texts):
        write_to_shared_memory(space, index, text, memory)
    assert batch == texts and tuple(batch) == texts and len(batch) == 3


def test_the_batch_is_read_live_and_a_shorter_string_leaves_no_tail():
    space, memory, batch = make_buffer(max_length=6, n=2)
    first = batch[0]
    write_to_shared_memory(space, 0, "abcdef", memory)
    assert batch[0] == "abcdef" and first == ""
    write_to_shared_memory(space, 0, "xy", memory)
    assert batch[0] == "xy" and batch[1] == ""


def test_a_string_over_max_length_or_not_a_string_is_refused_and_the_slots_are_untouched():
    space, memory, batch = make_buffer(max_length=4, n=2)
    write_to_shared_memory(space, 0, "keep", memory)
    with pytest.raises(ValueError, match=r"5 characters .* slot of 4 characters"):
        write_to_shared_memory(space, 1, "é" * 5, memory)
    with pytest.raises(TypeError, match="str"):
        write_to_shared_memory(space, 1, b"abc", memory)
    assert batch == ("keep", "")


def test_the_slot_size_comes_from_the_buffer_not_the_space_a_worker_passes():
    """A worker whose space is bigger than the buffer's must not write across the next sub-env's slot."""
    _, memory, batch = make_buffer(max_length=3, n=2)
    with pytest.raises(ValueError, match="slot of 3 characters"):
        write_to_shared_memory(TextSpace(max_length=10), 0, "abcdefg", memory)
    write_to_shared_memory(TextSpace(max_length=10), 1, "abc", memory)
    assert batch == ("", "abc")


def test_copies_and_pickles_are_tuples_that_later_writes_do_not_change():
    space, memory, batch = make_buffer(max_length=8, n=3)
    for index, text in enumerate(("a", "bé", "c😀")):
        write_to_shared_memory(space, index, text, memory)
    snapshots = [copy.copy(batch), copy.deepcopy(batch), pickle.loads(pickle.dumps(batch)), batch.snapshot()]
    nested = copy.deepcopy({"text": batch})  # how a Dict observation space holding this space is copied
    write_to_shared_memory(space, 1, "changed", memory)
    for snapshot in [*snapshots, nested["text"]]:
        assert type(snapshot) is tuple and snapshot == ("a", "bé", "c😀")
    assert batch == ("a", "changed", "c😀")


def test_the_batch_is_a_read_only_sequence_of_str():
    space, memory, batch = make_buffer(max_length=4, n=3)
    for index, text in enumerate(("a", "b", "c")):
        write_to_shared_memory(space, index, text, memory)
    assert batch[-1] == "c" and batch[np.int64(1)] == "b" and batch[1:] == ("b", "c")
    assert list(batch) == ["a", "b", "c"] and "b" in batch and batch.index("c") == 2
    assert batch == SharedTextBatch(memory, 3) and batch != ["a", "b", "c"] and batch != ("a", "b")
    assert repr(batch) == "SharedTextBatch(('a', 'b', 'c'))"
    with pytest.raises(IndexError):
        batch[3]
    with pytest.raises(TypeError):
        hash(batch)
    with pytest.raises(TypeError):
        batch[0] = "x"  # type: ignore[index]
    with pytest.raises(ValueError, match="3 text slots, not 2"):
        SharedTextBatch(memory, 2)


# ------------------------------------------------------------------ async against sync, step by step


def game24_actions(sync: SyncVectorEnv, rng: np.random.Generator) -> list[str]:
    """Mostly legal moves (so episodes end with right and wrong answers), some garbage and early answers."""
    actions = []
    for env in sync.envs:
        inner = env.unwrapped
        if inner.get_state().done:
            actions.append("ignored: the next step autoresets")
            continue
        legal = [action for action in inner.candidate_actions() if action]
        draw = rng.random()
        actions.append(legal[rng.integers(len(legal))] if draw < 0.75 else "Answer: 24" if draw < 0.9 else "8 × 3")
    return actions


def pool_actions(pool: list[str]) -> Actions:
    def actions(sync: SyncVectorEnv, rng: np.random.Generator) -> list[str]:
        return [pool[rng.integers(len(pool))] for _ in range(sync.num_envs)]

    return actions


ARITHMETIC_POOL = ["1 + 1 = 2", "x = 3", "2 × 3 = 6", "not a step", "Answer: 7", "Answer: x = 1"]
GSM8K_POOL = [
    "The café charges €3 for ¾ of a cake.",  # non-ASCII characters of the env's charset
    "“Two” — twice: 2 × 2 = 4\nthen 4 − 1 = 3",  # a step over two lines
    "emoji 😀 and ≤ are not in the charset",  # cleaned into '?' by the env, as sync does
    "long " * 600,  # cut to max_step_chars, with '...'
    "Answer: 5",
    "Answer: €72",
]


@pytest.fixture(scope="module")
def gsm8k_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few GSM8K-format problems with non-ASCII questions (no data set needed)."""
    path = tmp_path_factory.mktemp("gsm8k") / "test.jsonl"
    questions = ["Zoe’s café sells ¾ of a cake for €3. How much is a cake?", "José runs 5 km — how far in 2 days?"]
    records = [{"question": f"{q} (#{i})", "answer": f"... #### {i}"} for i, q in enumerate(questions * 3)]
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records), encoding="utf-8")
    return path


def make_pair(env_id: str, num_envs: int, env_kwargs: dict[str, Any], **vector_kwargs: Any) -> tuple[Any, Any]:
    """A SyncVectorEnv and an AsyncVectorEnv with Gymnasium's default shared memory, on the same envs."""
    sync = gym.make_vec(env_id, num_envs, vectorization_mode="sync", vector_kwargs=dict(vector_kwargs), **env_kwargs)
    vector_kwargs.setdefault("copy", True)
    async_ = gym.make_vec(env_id, num_envs, vectorization_mode="async", vector_kwargs=vector_kwargs, **env_kwargs)
    assert isinstance(async_, AsyncVectorEnv) and async_.shared_memory
    return sync, async_


def assert_same_step(expected: tuple, got: tuple) -> None:
    assert tuple(got[0]) == expected[0]
    for want, have in zip(expected[1:4], got[1:4], strict=True):
        np.testing.assert_array_equal(have, want)


def play_in_lockstep(sync: Any, async_: Any, actions: Actions, steps: int, seed: int) -> tuple[list, list, int]:
    """Plays both vector envs with the same seeds and actions, comparing every step; returns the observations
    each returned (as returned) and the number of autoreset steps."""
    rng = np.random.default_rng(seed)
    expected, info = sync.reset(seed=seed)
    got, async_info = async_.reset(seed=seed)
    assert tuple(got) == expected and list(async_info["problem_id"]) == list(info["problem_id"])
    sync_history, async_history, autoresets = [expected], [got], 0
    done = np.zeros(sync.num_envs, dtype=bool)
    for _ in range(steps):
        batch = actions(sync, rng)
        expected_step, got_step = sync.step(batch), async_.step(batch)
        assert_same_step(expected_step, got_step)
        if "final_obs" in expected_step[4]:
            assert list(got_step[4]["final_obs"]) == list(expected_step[4]["final_obs"])
        autoresets += int(done.sum())
        done = expected_step[2] | expected_step[3]
        sync_history.append(expected_step[0])
        async_history.append(got_step[0])
    return sync_history, async_history, autoresets


CASES = [
    pytest.param("reason_gym/Game24-v0", {}, game24_actions, id="Game24"),
    pytest.param(
        "reason_gym/Game24-v0",
        {"source": "procedural", "num_numbers": 3, "max_steps": 3},
        game24_actions,
        id="Game24-procedural",
    ),
    pytest.param("reason_gym/Arithmetic-v0", {"max_steps": 8}, pool_actions(ARITHMETIC_POOL), id="Arithmetic"),
    pytest.param("reason_gym/GSM8K-v0", {"max_steps": 4}, pool_actions(GSM8K_POOL), id="GSM8K"),
]


@pytest.fixture
def env_kwargs(gsm8k_file: Path) -> Callable[[str, dict], dict]:
    def kwargs(env_id: str, given: dict) -> dict:
        return {**given, "data_path": gsm8k_file} if env_id == "reason_gym/GSM8K-v0" else given

    return kwargs


@pytest.mark.parametrize(("env_id", "given", "actions"), CASES)
def test_copy_true_matches_sync_and_returns_snapshots_later_steps_do_not_change(env_id, given, actions, env_kwargs):
    sync, async_ = make_pair(env_id, 3, env_kwargs(env_id, given), copy=True)
    try:
        sync_history, async_history, autoresets = play_in_lockstep(sync, async_, actions, steps=24, seed=5)
    finally:
        sync.close()
        async_.close()
    assert autoresets > 0
    assert all(type(obs) is tuple for obs in async_history)
    assert async_history == sync_history  # every earlier step's observations are as they were returned


@pytest.mark.parametrize(("env_id", "given", "actions"), CASES)
def test_copy_false_matches_sync_and_returns_one_live_batch(env_id, given, actions, env_kwargs):
    sync, async_ = make_pair(env_id, 3, env_kwargs(env_id, given), copy=False)
    try:
        sync_history, async_history, autoresets = play_in_lockstep(sync, async_, actions, steps=24, seed=9)
        assert autoresets > 0
        assert all(obs is async_history[0] for obs in async_history)  # the same view, read live ...
        assert async_history[0] == sync_history[-1]  # ... so the first step's object shows the last observations
    finally:
        sync.close()
        async_.close()


def test_same_step_autoreset_final_observations_match_sync():
    sync, async_ = make_pair("reason_gym/Game24-v0", 2, {}, autoreset_mode=AutoresetMode.SAME_STEP)
    try:
        _, _, ended = play_in_lockstep(sync, async_, game24_actions, steps=16, seed=3)
        assert ended > 0  # so some steps carried final_obs, compared in play_in_lockstep
    finally:
        sync.close()
        async_.close()


@pytest.mark.parametrize("copy_", [True, False])
def test_a_partial_reset_keeps_the_other_envs_observations_as_sync_does(copy_):
    sync, async_ = make_pair("reason_gym/Game24-v0", 3, {}, copy=copy_)
    try:
        play_in_lockstep(sync, async_, game24_actions, steps=2, seed=1)
        mask = np.array([True, False, True])
        expected, _ = sync.reset(seed=[21, 22, 23], options={"reset_mask": mask})
        got, _ = async_.reset(seed=[21, 22, 23], options={"reset_mask": mask})
        assert tuple(got) == expected and expected[0].count("\n") == 1 and expected[1].count("\n") > 1
    finally:
        sync.close()
        async_.close()


def test_observations_stay_in_the_observation_space_and_non_ascii_survives(gsm8k_file):
    envs = gym.make_vec("reason_gym/GSM8K-v0", 2, vectorization_mode="async", data_path=gsm8k_file)
    try:
        observations, _ = envs.reset(seed=[0, 1])
        assert all("Zoe’s café" in obs or "José runs 5 km —" in obs for obs in observations)
        observations, *_ = envs.step([GSM8K_POOL[0], GSM8K_POOL[2]])
        assert observations[0].endswith("\nThe café charges €3 for ¾ of a cake.")
        assert observations[1].endswith("\nemoji ? and ? are not in the charset")
        assert all(envs.single_observation_space.contains(obs) for obs in observations)
    finally:
        envs.close()


# ------------------------------------------------------------------ defaults, and observations at max_length


def test_make_vec_async_with_gymnasium_defaults_works():
    envs = gym.make_vec("reason_gym/Game24-v0", 2, vectorization_mode="async")
    try:
        first, _ = envs.reset(seed=[1, 2])
        second, _, terminated, _, _ = envs.step(["Answer: 24", "not a step"])
        assert second[0] == first[0] + "\nAnswer: 24" and second[1] == first[1]
        assert terminated.tolist() == [True, False]
    finally:
        envs.close()


def test_async_vector_env_constructor_with_defaults_works():
    envs = AsyncVectorEnv([lambda: gym.make("reason_gym/Arithmetic-v0")] * 2)
    try:
        first, _ = envs.reset(seed=4)
        second, *_ = envs.step(["Answer: 1", "Answer: 2"])
        assert [s.startswith(f) and s != f for f, s in zip(first, second, strict=True)] == [True, True]
    finally:
        envs.close()


def test_a_spawned_worker_writes_the_shared_buffer_too():
    envs = gym.make_vec("reason_gym/Game24-v0", 2, vectorization_mode="async", vector_kwargs={"context": "spawn"})
    try:
        first, _ = envs.reset(seed=[1, 2])
        second, *_ = envs.step(["Answer: 1", "Answer: 2"])
        assert second == (first[0] + "\nAnswer: 1", first[1] + "\nAnswer: 2")
    finally:
        envs.close()


class EchoEnv(gym.Env[str, str]):
    """Observes its action: any text up to max_length, to reach the space's bound exactly."""

    def __init__(self, max_length: int = 6) -> None:
        self.observation_space = TextSpace(max_length=max_length, min_length=0, charset="abé😀")
        self.action_space = TextSpace(max_length=64, min_length=0)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        return "", {}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        return action, 0.0, False, False, {}


@pytest.mark.filterwarnings("ignore::UserWarning")  # Gymnasium logs the worker's error before raising it
@pytest.mark.parametrize("copy_", [True, False])
def test_observations_at_max_length_and_over_it(copy_):
    envs = AsyncVectorEnv([EchoEnv] * 2, copy=copy_)
    try:
        assert envs.reset(seed=0)[0] == ("", "")
        full = ("a😀é😀ba", "😀" * 6)
        assert envs.step(list(full))[0] == full
        assert envs.step(["b", ""])[0] == ("b", "")  # the shorter text shows no tail of the longer one
        with pytest.raises(ValueError, match="7 characters does not fit the shared-memory slot of 6"):
            envs.step(["a" * 7, "a"])
    finally:
        envs.close(terminate=True)
