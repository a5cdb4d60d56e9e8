"""Trainers that act on policies only through the environments' ``reset`` / ``step``: GRPO (:mod:`.grpo`)."""
