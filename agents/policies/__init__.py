"""LLM policies: one protocol (:class:`Policy`), several backends."""

from agents.policies.base import Candidate, Policy, ScriptedPolicy

__all__ = ["Candidate", "Policy", "ScriptedPolicy"]
