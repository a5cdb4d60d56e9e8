"""Registration with Gymnasium and vectorised use (Text spaces through shared memory, autoreset info)."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import reason_gym  # noqa: F401  (registers the environments)


def test_make_with_the_module_prefix_needs_no_import():
    code = (
        "import gymnasium as gym, sys\n"
        "env = gym.make('reason_gym:reason_gym/Game24-v0')\n"
        "assert 'torch' not in sys.modules, 'reason_gym must not import torch'\n"
        "print(env.reset(seed=0)[1]['problem_id'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("game24/")


def test_registered_ids_are_namespaced():
    assert "reason_gym/Game24-v0" in gym.registry
    assert gym.spec("reason_gym/Game24-v0").namespace == "reason_gym"


def solve_in_vector_env(envs: gym.vector.VectorEnv) -> None:
    """Plays every sub-env to the end with its first candidate action and checks the autoreset contract."""
    observations, infos = envs.reset(seed=[11, 12])
    assert all(envs.single_observation_space.contains(obs) for obs in observations)
    finished = np.zeros(envs.num_envs, dtype=bool)
    for _ in range(4):  # three steps and the answer
        actions = [next(c for c in candidates if c) for candidates in envs.call("candidate_actions")]
        observations, rewards, terminated, _truncated, infos = envs.step(actions)
        assert rewards.dtype == np.float64 and all(envs.single_observation_space.contains(o) for o in observations)
        finished |= terminated
    assert finished.all()
    assert "is_correct" in infos and infos["_is_correct"].all()  # the final info is not dropped
    # NEXT_STEP autoreset: the next step resets the finished envs and reports a fresh problem.
    observations, rewards, terminated, _, _ = envs.step(["ignored"] * envs.num_envs)
    assert (rewards == 0).all() and not terminated.any()
    assert all(obs.count("\n") == 1 for obs in observations)


def test_sync_vector_env():
    envs = gym.make_vec("reason_gym/Game24-v0", num_envs=2, vectorization_mode="sync")
    solve_in_vector_env(envs)
    envs.close()


@pytest.mark.parametrize("vector_kwargs", [{}, {"shared_memory": False}], ids=["shared_memory", "pipes"])
def test_async_vector_env(vector_kwargs):
    envs = gym.make_vec("reason_gym/Game24-v0", num_envs=2, vectorization_mode="async", vector_kwargs=vector_kwargs)
    solve_in_vector_env(envs)
    envs.close()
