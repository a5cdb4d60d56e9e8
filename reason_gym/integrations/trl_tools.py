"""TRL's ``environment_factory`` (tool calling) on any reason_gym environment; no torch, no TRL import.

:class:`ReasonGymEnv`: ``reset(**row)`` returns the question with the task's step and answer formats, the tools
``step(text)`` and ``answer(text)`` call ``env.step``, ``get_reward()`` is the episode's return.
:func:`environment_factory`, :func:`environment_factories` (a ``{name: factory}`` dict mixes tasks in one run) and
:func:`make_environment_dataset` build what ``GRPOTrainer(environment_factory=...)`` and its dataset take. The
datasets and reward functions of single-completion training are in :mod:`reason_gym.integrations.trl`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

from reason_gym.core import is_final_answer
from reason_gym.integrations.trl import PROBLEM_COLUMNS, check_env_id, make_dataset, make_env, reset_to_row

TOOL_SYSTEM_PROMPT = (
    "Solve the task with the tools: call `step` with each reasoning step, one call per step, and `answer` with the "
    "final answer. A tool's reply says what the environment made of the call."
)
"""The system message of :func:`make_environment_dataset`'s prompts (the question comes from ``reset``)."""

DONE = "The episode is over: no more calls are taken."


class ReasonGymEnv:
    """A reason_gym env as TRL's ``environment_factory`` wants it: ``reset(**row)`` starts an episode on a dataset
    row's problem and returns the question with the task's step and answer formats; the tools ``step`` and
    ``answer`` send one action each to ``env.step`` and return what the env made of it; ``get_reward()`` is the
    episode's return (the sum of the env's step rewards so far; 0 when the model called no tool).

    TRL turns every public method but ``reset`` and ``get_reward`` into a tool, so this class has no other public
    methods. Build one per rollout with :func:`environment_factory` (TRL pools and resets them).

    Args:
        env_id: A registered id (checked now).
        recorder: A list to which each episode is appended at its reset (a dict: ``env_id``, ``row``, ``actions``,
            ``rewards``, ``done``, ``is_correct``, ``calls``); for tests and logging.
        **env_kwargs: For ``gymnasium.make``, as given to :func:`make_dataset`.
    """

    def __init__(self, env_id: str, *, recorder: list[dict[str, Any]] | None = None, **env_kwargs: Any) -> None:
        self.env_id = check_env_id(env_id)
        self.env = make_env(env_id, **env_kwargs)
        self.recorder = recorder
        self.episode: dict[str, Any] | None = None
        """the episode in progress (the same dict the recorder holds)"""
        self.calls = 0
        """tool calls over this instance's life"""
        self._observation = ""

    def reset(self, **row: Any) -> str:
        """Starts an episode on a dataset row's problem (``index``/``split`` or ``problem``, see
        :func:`reset_to_row`; other columns, such as ``prompt``, are ignored) and returns the question, the task's
        step and answer formats, and how to use the tools."""
        self._observation = reset_to_row(self.env, row)
        self.episode = {
            "env_id": self.env_id,
            "row": {k: row[k] for k in PROBLEM_COLUMNS if k in row},
            "actions": [],
            "rewards": [],
            "done": False,
            "is_correct": False,
            "calls": 0,
        }
        if self.recorder is not None:
            self.recorder.append(self.episode)
        task = self.env.unwrapped.task
        return (
            f"{self._observation}\n\nStep format (tool `step`): {task.step_format}\n"
            f"Answer format (tool `answer`): {task.answer_format}"
        )

    def step(self, text: str) -> str:
        """Takes one reasoning step in the environment.

        Args:
            text: The step, in the task's step format.

        Returns:
            What the environment made of the step: the accepted step, or why it was rejected.
        """
        return self._act(text if isinstance(text, str) else str(text))

    def answer(self, text: str) -> str:
        """Gives the final answer, which ends the episode.

        Args:
            text: The final answer, in the task's answer format (the `Answer:` prefix may be left out).

        Returns:
            Whether the answer is correct.
        """
        text = text if isinstance(text, str) else str(text)
        return self._act(text if is_final_answer(text) else "Answer: " + text.lstrip())

    def get_reward(self) -> float:
        """The episode's return: the sum of the env's rewards for the actions sent so far."""
        return float(sum(self.episode["rewards"])) if self.episode is not None else 0.0

    def _act(self, action: str) -> str:
        self.calls += 1
        if self.episode is None:
            return "No episode: the environment was not reset."
        self.episode["calls"] += 1
        if self.episode["done"]:
            return DONE
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.episode["actions"].append(action)
        self.episode["rewards"].append(float(reward))
        added = observation[len(self._observation) :].strip() if observation.startswith(self._observation) else ""
        self._observation = observation
        if terminated or truncated:
            self.episode["done"] = True
            self.episode["is_correct"] = bool(info.get("is_correct", False))
            if terminated and is_final_answer(action):
                verdict = "Correct." if self.episode["is_correct"] else "Wrong."
                return f"{verdict} {info['error']}".strip() if info.get("error") else verdict
            return f"{'Rejected: ' + info['error'] + ' ' if info.get('error') else ''}The step limit is reached. {DONE}"
        if info.get("error"):
            return f"Rejected: {info['error']}"
        return f"Accepted. {added}".strip()


def environment_factory(env_id: str, **kwargs: Any) -> Callable[[], ReasonGymEnv]:
    """TRL's ``environment_factory`` for one task: a callable that builds a :class:`ReasonGymEnv` (``kwargs``:
    ``recorder`` and the env's arguments). The env is built once now, so that a bad id or argument fails before
    any model loads.

    Raises:
        ValueError: An unregistered id, arguments the env does not take, or a ``recorder`` that is not a list.
    """
    recorder = kwargs.get("recorder")
    if recorder is not None and not isinstance(recorder, list):
        raise ValueError(f"recorder must be a list (or None), got {type(recorder).__name__}")
    make_env(env_id, **{k: v for k, v in kwargs.items() if k != "recorder"}).close()

    def factory() -> ReasonGymEnv:
        return ReasonGymEnv(env_id, **kwargs)

    factory.__name__ = factory.__qualname__ = "ReasonGymEnv_" + env_id.rpartition("/")[2].replace("-", "_")
    return factory


def environment_factories(
    env_ids: Mapping[str, str], *, recorder: list[dict[str, Any]] | None = None, **env_kwargs: Mapping[str, Any]
) -> dict[str, Callable[[], ReasonGymEnv]]:
    """TRL's ``{name: factory}`` ``environment_factory`` that mixes tasks in one run: each dataset row's
    ``environment`` column (:func:`make_environment_dataset`) picks its task. All are one class, so TRL logs one
    reward column (``rewards/ReasonGymEnv/mean``) over every task.

    Args:
        env_ids: ``{name: env_id}``, e.g. ``{"game24": "reason_gym/Game24-v0", "mbpp": "reason_gym/MBPP-v0"}``.
        recorder: Shared by every env (see :class:`ReasonGymEnv`).
        **env_kwargs: ``name=dict(...)``: the ``gymnasium.make`` arguments of that task.
    """
    _check_task_names(env_ids, env_kwargs)
    return {
        name: environment_factory(env_id, recorder=recorder, **dict(env_kwargs.get(name, {})))
        for name, env_id in env_ids.items()
    }


def _check_task_names(env_ids: Mapping[str, str], env_kwargs: Mapping[str, Any]) -> None:
    """A ``ValueError`` for per-task arguments whose name is no task's, or that are not a dict."""
    unknown = sorted(set(env_kwargs) - set(env_ids))
    if unknown:
        raise ValueError(f"env_kwargs for {unknown}, which are not among the environments {sorted(env_ids)}")
    for name, kwargs in env_kwargs.items():
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"{name}= must be a dict of that task's gymnasium.make arguments, got {kwargs!r}")


def make_environment_dataset(
    env_ids: str | Mapping[str, str],
    *,
    split: str | None = None,
    limit: int | None = None,
    system_prompt: str = TOOL_SYSTEM_PROMPT,
    **env_kwargs: Any,
) -> Any:
    """A ``datasets.Dataset`` for TRL's ``environment_factory``: the rows of :func:`make_dataset` with the prompt
    reduced to ``system_prompt`` and an empty user message (TRL appends what ``reset`` returns: the question).

    Args:
        env_ids: One id, or ``{name: env_id}`` to mix tasks: the rows of each (interleaved: one of each in turn)
            with an ``environment`` column naming it, as :func:`environment_factories` expects.
        split: The split of every task (default: each env's own).
        limit: At most this many problems of each task.
        system_prompt: The system message.
        **env_kwargs: For one id, ``gymnasium.make``'s arguments; for a mapping, ``name=dict(...)`` per task.
    """
    try:
        from datasets import Dataset
    except ImportError as error:
        raise ImportError(
            f"make_environment_dataset needs the datasets package (pip install datasets): {error}"
        ) from None
    if not isinstance(env_ids, str):
        _check_task_names(env_ids, env_kwargs)
    named = {None: env_ids} if isinstance(env_ids, str) else dict(env_ids)
    kwargs = {None: env_kwargs} if isinstance(env_ids, str) else {name: env_kwargs.get(name, {}) for name in named}
    prompt = [{"role": "system", "content": system_prompt}, {"role": "user", "content": ""}]
    tables = []
    for name, env_id in named.items():
        rows = make_dataset(env_id, split=split, limit=limit, **dict(kwargs[name]))
        tables.append([{**row, "prompt": prompt, **({} if name is None else {"environment": name})} for row in rows])
    interleaved = [row for group in itertools.zip_longest(*tables) for row in group if row is not None]
    return Dataset.from_list(interleaved)
