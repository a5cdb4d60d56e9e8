"""Trainer-side adapters to the field's trainers (they import torch and the trainer's library).

- :mod:`agents.integrations.trl`: :class:`~agents.integrations.trl.EnvRollout`, TRL's ``rollout_func`` that plays
  whole episodes step by step through a reason_gym environment.

What needs no torch (TRL datasets and reward functions) lives in ``reason_gym.integrations``.
"""
