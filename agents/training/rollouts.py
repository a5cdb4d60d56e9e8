"""Groups of episodes sampled step by step through a Gymnasium vector environment.

A GRPO group is G episodes of one problem. Here a batch of groups is one vector environment of ``groups x G``
copies of a task: each group's G copies are reset to the same problem (``reset`` with a ``reset_mask``, so any
registered environment and either vectorisation mode works), then every running copy advances one step per turn,
its action sampled by the policy from its own observation. Each step keeps what training needs: the prompt's and the
generated step's token ids, the step's reward and its named reward components.

Only ``reset`` and ``step`` are used: the trainer never sees task internals, so a new task needs no training code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from agents.policies.base import Policy

if TYPE_CHECKING:
    from agents.policies.hf import HFPolicy
    from agents.training.grpo_config import GRPOConfig


@dataclass
class Step:
    """One action of an episode and what the environment made of it."""

    prompt_ids: list[int]
    """the token ids the policy saw (the observation, formatted as its prompt)"""
    completion_ids: list[int]
    """the token ids it generated (the stop token included)"""
    text: str
    """the action sent to ``env.step``"""
    reward: float
    """the environment's reward for this step"""
    components: dict[str, float] = field(default_factory=dict)
    """the environment's named reward components (``info["reward_components"]``), where it reports them"""


@dataclass
class Episode:
    """One sampled episode of a group."""

    group: int
    """the index of its group in the batch"""
    question: str
    """the observation at reset (for reasoning environments: the question)"""
    state: Any = None
    """the env's state snapshot at reset (``get_state()``, for PRMs that read the structured problem), if it has one"""
    steps: list[Step] = field(default_factory=list)
    terminated: bool = False
    """it ended with a final answer"""
    is_correct: bool = False
    """the environment judged the final answer correct (``info["is_correct"]``)"""

    @property
    def reward(self) -> float:
        """The episode's return: the sum of its step rewards."""
        return float(sum(step.reward for step in self.steps))

    @property
    def num_tokens(self) -> int:
        return sum(len(step.completion_ids) for step in self.steps)


def collect_groups(
    envs: gym.vector.VectorEnv,
    policy: Policy,
    encode: Callable[[Sequence[str]], list[list[int]]],
    group_options: Sequence[Mapping[str, Any]],
    *,
    temperature: float = 1.0,
    max_turns: int = 64,
    timings: dict[str, float] | None = None,
) -> list[list[Episode]]:
    """Samples one group of episodes per entry of ``group_options``.

    Args:
        envs: A vector environment of ``len(group_options) * G`` copies of one task (G per group, consecutive).
        policy: Proposes each next step; its candidates must carry ``token_ids`` (in-process backends do).
        encode: Turns observations into the prompt token ids the policy conditions on (for log-probabilities).
        group_options: ``reset`` options per group, e.g. ``{"index": 17, "split": "train"}``.
        temperature: Sampling temperature (the trainer computes log-probabilities at the same temperature).
        max_turns: A guard for environments without a step limit: episodes still running after this many steps
            end there, unfinished.
        timings: If given, ``timings["generate_s"]`` is increased by the seconds spent in ``policy.propose`` (the
            rest of the rollout is the environments' work).

    Returns:
        ``groups[g]``: the G episodes of group ``g``.
    """
    num_envs = envs.num_envs
    if not group_options or num_envs % len(group_options):
        raise ValueError(f"{num_envs} environments cannot hold {len(group_options)} groups of equal size")
    group_size = num_envs // len(group_options)
    observations: list[str] = [""] * num_envs
    for g, options in enumerate(group_options):
        mask = np.zeros(num_envs, dtype=bool)
        mask[g * group_size : (g + 1) * group_size] = True
        batch, _ = envs.reset(options={**options, "reset_mask": mask})
        for i in np.flatnonzero(mask):
            observations[i] = batch[i]
    roots = _snapshots(envs)
    episodes = [Episode(group=i // group_size, question=observations[i], state=roots[i]) for i in range(num_envs)]

    running = list(range(num_envs))
    for _ in range(max_turns):
        if not running:
            break
        states = [observations[i] for i in running]
        prompts = encode(states)
        started = time.perf_counter()
        proposals = policy.propose(states, n=1, temperature=temperature)
        if timings is not None:
            timings["generate_s"] = timings.get("generate_s", 0.0) + time.perf_counter() - started
        actions = [""] * num_envs  # finished copies get an ignored action (the vector env resets them)
        for i, candidates in zip(running, proposals, strict=True):
            actions[i] = candidates[0].text
        next_observations, rewards, terminated, truncated, infos = envs.step(tuple(actions))
        still_running = []
        for row, i in enumerate(running):
            candidate = proposals[row][0]
            if candidate.token_ids is None:
                raise ValueError(f"{type(policy).__name__} gives no token ids: training needs an in-process backend")
            episode = episodes[i]
            episode.steps.append(
                Step(prompts[row], list(candidate.token_ids), candidate.text, float(rewards[i]), _components(infos, i))
            )
            if terminated[i]:
                episode.terminated = True
                episode.is_correct = bool(_info(infos, "is_correct", i, False))
            elif not truncated[i]:
                still_running.append(i)
            observations[i] = next_observations[i]
        running = still_running
    return [episodes[g * group_size : (g + 1) * group_size] for g in range(len(group_options))]


def _snapshots(envs: gym.vector.VectorEnv) -> list[Any]:
    """Each copy's state snapshot (``get_state()``) where its env has one, else ``None``s."""
    try:
        return list(envs.call("get_state"))
    except AttributeError:
        return [None] * envs.num_envs


def _info(infos: Mapping[str, Any], key: str, i: int, default: Any) -> Any:
    """Copy ``i``'s value of ``key`` in a vector env's info dict (which marks present values in ``_key``)."""
    if key in infos and infos.get(f"_{key}", np.ones(i + 1, dtype=bool))[i]:
        return infos[key][i]
    return default


def _components(infos: Mapping[str, Any], i: int) -> dict[str, float]:
    components = infos.get("reward_components")
    if not isinstance(components, Mapping):
        return {}
    return {name: float(_info(components, name, i, 0.0)) for name in components if not name.startswith("_")}


def make_vector_env(config: GRPOConfig, num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` copies of a GRPO run's task, vectorised as ``config.vectorization`` says (the trainer's batch,
    or a Ray rollout worker's group)."""
    import reason_gym  # noqa: F401  (registers the reason_gym/ ids, in a fresh Ray worker process too)

    vector_kwargs = {"shared_memory": False} if config.vectorization == "async" else {}
    return gym.make_vec(
        config.env_id,
        num_envs=num_envs,
        vectorization_mode=config.vectorization,
        vector_kwargs=vector_kwargs,
        **config.env_kwargs,
    )


def make_hf_policy(config: GRPOConfig, model: Any, tokenizer: Any, task: Any) -> HFPolicy:
    """A GRPO run's rollout policy on the transformers backend, sampling from ``model`` itself (the trainer's, or a
    Ray rollout worker's copy); ``task`` (the env's TaskSpec) gives a chat prompt its system prompt."""
    from agents.policies.hf import HFPolicy

    return HFPolicy(
        model,
        tokenizer,
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        max_batch_sequences=max(64, config.batch_size),
        num_threads=config.num_threads,
        task=task,
    )
