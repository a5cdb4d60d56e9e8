"""The environment contract (DESIGN.md section 2), checked once over every registered id.

Each env is made with its default arguments (data from ``REASON_GYM_DATA_DIR`` or the packages that ship it; an env
whose data or sandbox this machine lacks is skipped). Task-specific behaviour stays in the per-env test files.
"""

from __future__ import annotations

import pickle
import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import reason_gym  # noqa: F401  (registers the environments)
from reason_gym.core import ReasoningEnv
from reason_gym.data import DataNotFoundError
from reason_gym.envs import TASK_IDS
from reason_gym.sandbox import SandboxError

# Every task; reason_gym/Remote-v0 is a client of a served task (it needs base_url=), checked against a server in
# tests/integrations/test_openenv_serve.py.
ENV_IDS = list(TASK_IDS)
ACTIONS = ("1 + 1 = 2", "", "2 + 2 = 4", "Answer:")
"""A step, an empty step, a step and an empty answer: no task runs a program for these, so they are cheap
everywhere. Where a task lists its legal moves (Game24), each step is its first legal move instead."""


def make(env_id: str) -> ReasoningEnv:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Game24 warns when it generates its puzzles
            env = gym.make(env_id).unwrapped
    except (DataNotFoundError, SandboxError) as error:
        pytest.skip(f"{env_id}: {error}")
    assert isinstance(env, ReasoningEnv)
    return env


def play(env: ReasoningEnv, actions=ACTIONS) -> list[tuple]:
    """Each step's ``(observation, reward, terminated, truncated, info)`` until the episode ends."""
    results = []
    for action in actions:
        legal = [c for c in env.candidate_actions() or () if c] if not action.startswith("Answer:") else []
        results.append(env.step(legal[0] if legal and action else action))
        if results[-1][2] or results[-1][3]:
            break
    return results


@pytest.fixture(params=ENV_IDS)
def env_id(request) -> str:
    return request.param


def test_the_gymnasium_env_checker_passes(env_id):
    check_env(make(env_id), skip_render_check=True)


def test_the_same_seed_gives_the_same_episode(env_id):
    runs = []
    for _ in range(2):
        env = make(env_id)
        runs.append((env.reset(seed=123), play(env), env.reset(), play(env)))
    assert runs[0] == runs[1]


def test_state_round_trip_set_state_and_clone_continue_identically(env_id):
    env = make(env_id)
    env.reset(seed=5)
    play(env, ACTIONS[:1])
    saved = env.get_state()
    assert pickle.loads(pickle.dumps(saved)) == saved
    twin = env.clone()
    first = play(env, ACTIONS[1:])
    assert twin.get_state() == saved  # the clone did not move
    env.set_state(saved)
    assert play(env, ACTIONS[1:]) == first
    assert play(twin, ACTIONS[1:]) == first
    assert twin.np_random is not env.np_random
    assert twin.reset(seed=9) == make(env_id).reset(seed=9)
    with pytest.raises(TypeError, match="EpisodeState"):
        env.set_state({"steps": []})


def test_a_pickled_env_continues_identically(env_id):
    env = make(env_id)
    env.reset(seed=7)
    play(env, ACTIONS[:1])
    copy = pickle.loads(pickle.dumps(env))
    assert copy.get_state() == env.get_state()
    assert play(copy, ACTIONS[1:]) == play(env, ACTIONS[1:])
    assert copy.reset() == env.reset()  # the random generator travelled too


def test_reset_options_pick_problems_and_bad_ones_are_refused(env_id):
    env = make(env_id)
    first = env.reset(options={"index": 0})
    assert env.reset(seed=1, options={"index": 0}) == first  # an index names a problem, whatever the seed
    for split in env.available_splits:
        try:
            assert env.reset(options={"split": split})[0]
        except DataNotFoundError:  # a split this machine has no data for (MATH's train split)
            continue
        assert env.reset(options={"index": 0, "split": split})[0]
    rows = env.split_indices()
    bad = [True, False, np.bool_(True), 1.0, "0", -1] + ([] if rows is None else [len(rows)])
    for index in bad:
        with pytest.raises(ValueError, match=rf"index must be an int.*got {re.escape(repr(index))}"):
            env.reset(options={"index": index})
    assert env.reset(options={"index": np.int64(0)}) == first  # numpy's integers are integers
    for options in ([("index", 0)], "index=0", 0):
        with pytest.raises(TypeError, match="options must be a dict"):
            env.reset(options=options)
    if rows is not None:
        with pytest.raises(ValueError, match=rf"index must be an int in \[0, {len(rows)}\)"):
            env.reset(options={"index": len(rows)})
    with pytest.raises(ValueError, match="split must be one of"):
        env.reset(options={"split": "no such split"})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"seed": 3})


def test_capabilities_have_their_documented_types(env_id):
    env = make(env_id)
    env.reset(seed=0)
    rows = env.split_indices()
    assert rows is None or (len(rows) > 0 and all(isinstance(i, int) for i in rows[:3]))
    candidates = env.candidate_actions()
    assert (candidates is None) == (env.max_candidates is None)
    assert candidates is None or len(candidates) == env.max_candidates
    hash(env.canonical_state())  # a key, or None
    hash(env.answer_key("42"))
