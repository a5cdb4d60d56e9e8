"""One compute budget for every planner, so accuracy-versus-compute curves compare like with like.

A :class:`Budget` counts what a planner spends on one problem and stops it at the limits it was given. The counters
and their units (every planner charges them the same way, through :class:`~agents.planners.base.Search`):

- ``policy_calls``: calls of ``policy.propose``, whatever the batch (one call on 8 states with ``n=4`` is 1). It
  measures round trips (latency), not work.
- ``samples``: candidate steps generated: a ``propose`` call on ``B`` states with ``n=k`` adds ``B * k``, whether the
  candidates are later used, deduplicated or rejected by the environment. **This is the unit of the bench's
  budgets**: one sample is one step written by the policy, in any planner, so a budget of 32 buys 32 steps whether
  they go to 8 full solutions (best-of-N), to beam expansions or to MCTS expansions and rollouts.
- ``tokens``: tokens the policy generated, the sum of ``Candidate.num_tokens`` over those samples (0 for scripted
  policies). The truest measure of generation compute; the bench plots accuracy against it.
- ``prm_calls``: calls of the process reward model, ``prm(question, steps)``: one per solution prefix scored (one
  forward pass), however many steps the prefix has.
- ``env_steps``: ``env.step`` calls on the planner's behalf (on the env and its clones): checker work, usually free
  next to generation, counted so planners that lean on the environment show it.

Limits are optional, on any counter. :attr:`Budget.exhausted` is true once any limited counter has reached its limit;
planners test it before each unit of work and ask :meth:`Budget.affordable` how many samples they may request, so
``samples`` never exceeds its limit. The other limits are checked before each call: a call can pass a ``tokens``
limit by at most its own tokens, since they are known only afterwards.

>>> budget = Budget(samples=8)
>>> budget.affordable(12)
8
>>> budget.charge_samples(num_candidates=6, num_tokens=60)
>>> budget.used()
{'policy_calls': 1, 'samples': 6, 'tokens': 60, 'prm_calls': 0, 'env_steps': 0}
>>> budget.exhausted, budget.affordable(12)
(False, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

COUNTERS = ("policy_calls", "samples", "tokens", "prm_calls", "env_steps")
"""The names of the counters, in the order reports list them."""


@dataclass
class Budget:
    """Counters of compute spent on one problem, and optional limits on them.

    Args (limits; ``None`` means unlimited):
        policy_calls: Most ``propose`` calls.
        samples: Most candidate steps generated (the bench's budget unit).
        tokens: Most generated tokens.
        prm_calls: Most process-reward-model calls.
        env_steps: Most environment steps.
    """

    policy_calls: int | None = None
    samples: int | None = None
    tokens: int | None = None
    prm_calls: int | None = None
    env_steps: int | None = None
    _used: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0), init=False, repr=False)

    def __post_init__(self) -> None:
        for limit in fields(self):
            value = getattr(self, limit.name)
            if limit.init and value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"the {limit.name} limit must be a non-negative int or None, got {value!r}")

    def limits(self) -> dict[str, int]:
        """The counters that have a limit, with it."""
        return {name: getattr(self, name) for name in COUNTERS if getattr(self, name) is not None}

    def used(self) -> dict[str, int]:
        """A copy of the counters, in :data:`COUNTERS` order."""
        return dict(self._used)

    def remaining(self, name: str) -> int | None:
        """What is left of one counter's limit (``None`` when it has none)."""
        limit = getattr(self, name)
        return None if limit is None else max(0, limit - self._used[name])

    @property
    def exhausted(self) -> bool:
        """Whether any limited counter has reached its limit: the planner must stop."""
        return any(self._used[name] >= limit for name, limit in self.limits().items())

    def affordable(self, requested: int) -> int:
        """How many of ``requested`` samples one more ``propose`` call may generate (0 when exhausted)."""
        if self.exhausted:
            return 0
        left = self.remaining("samples")
        return requested if left is None else min(requested, left)

    def charge_samples(self, num_candidates: int, num_tokens: int) -> None:
        """Records one ``propose`` call that generated ``num_candidates`` candidates with ``num_tokens`` tokens."""
        self._used["policy_calls"] += 1
        self._used["samples"] += num_candidates
        self._used["tokens"] += num_tokens

    def charge_prm(self, calls: int = 1) -> None:
        """Records ``calls`` process-reward-model calls."""
        self._used["prm_calls"] += calls

    def charge_env_steps(self, steps: int = 1) -> None:
        """Records ``steps`` environment steps."""
        self._used["env_steps"] += steps
