"""Adapters to the field's trainers that need no torch: each module imports its library only inside its functions.

- :mod:`reason_gym.integrations.trl`: datasets of a task's problems and reward functions for TRL's
  ``GRPOTrainer``, scored by the environment itself; :mod:`reason_gym.integrations.trl_tools`: its tool environments.
- :mod:`reason_gym.integrations.openenv`: the OpenEnv server behind ``reason-gym serve``.
- :data:`Feedback` and :func:`rejection_feedback`: what the env writes into a transcript between the model's steps,
  shared by the trainer-side episode loops (TRL's ``rollout_func``, verl's agent loop).

Trainer-side code lives in ``agents.integrations``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Feedback = Callable[[str, float, Mapping[str, Any]], str]
"""``feedback(step, reward, info) -> text``: what the env writes into the transcript after a step that did not end
the episode (``""`` for nothing); it should end with a newline."""


def rejection_feedback(step: str, reward: float, info: Mapping[str, Any]) -> str:
    """The default feedback: ``Rejected: <why>`` after a step the env rejected, nothing after an accepted one.

    >>> rejection_feedback("7 + 7 = 15", -0.1, {"error": "7 + 7 is 14, not 15"})
    'Rejected: 7 + 7 is 14, not 15\\n'
    >>> rejection_feedback("7 + 7 = 14", 0.0, {})
    ''
    """
    error = info.get("error")
    return f"Rejected: {error}\n" if error else ""
