"""Checkers: pure functions that judge steps and answers exactly (no eval, no floating point)."""
