"""Adapters to the field's trainers that need no torch: each module imports its library only inside its functions.

- :mod:`reason_gym.integrations.trl`: datasets of a task's problems and reward functions for TRL's
  ``GRPOTrainer``, scored by the environment itself.

Trainer-side code (TRL's ``rollout_func``) lives in ``agents.integrations``.
"""
