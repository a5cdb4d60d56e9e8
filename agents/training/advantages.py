"""Group-relative advantages for GRPO: outcome supervision, process supervision, and dynamic sampling.

GRPO (DeepSeekMath, Shao et al. 2024, section 4.1) samples a *group* of G outputs for one question and uses the
group itself as the baseline, so no value network is needed.

**Outcome supervision.** Output ``i`` has one reward ``r_i`` (here: its episode return). Every token of the output
gets ``A_i = (r_i - mean(r)) / (std(r) + eps)``; with ``scale=False`` (Dr. GRPO, Liu et al. 2025) the division is
dropped, ``A_i = r_i - mean(r)``, since dividing by a small std up-weights questions that are nearly always solved
or nearly never.

**Process supervision.** Output ``i`` has a reward ``r_i,j`` for each of its steps ``j`` (here: the environment's
reward of that step, plus a PRM's score where one is given). The step rewards of all G outputs are pooled,
normalised by the pool's mean and std, and a token of step ``j`` gets the sum of the normalised rewards of step
``j`` and of every later step of its own output: ``A_i,t = sum_{j' >= j} r~_i,j'``.

Which std, and which eps: the *sample* standard deviation (``ddof=1``, Bessel's correction), as DeepSeek's and
TRL's implementations compute it (``torch.std``), so advantages here equal TRL's on the same rewards; and
``eps = 1e-4`` as in TRL. The eps only guards 0/0: when every reward of a group (or pool) is equal, each ``r - mean``
is exactly 0 and so is the advantage, whatever the eps. (With the population std, G=2 rewards 0 and 1 would give
advantages of ±1 instead of ±0.707; the choice only rescales, so it is the learning rate's business, but it must be
stated to reproduce numbers.)

**Dynamic sampling** (DAPO, Yu et al. 2025): a group whose rewards are all equal has zero advantage everywhere, so
it adds no gradient, only noise in the normalisers; :func:`is_informative` tells such groups apart so the trainer
can drop them and sample more.

>>> outcome_advantages([1.0, 0.0, 0.0, 1.0]).round(4).tolist()
[0.8659, -0.8659, -0.8659, 0.8659]
>>> outcome_advantages([1.0, 0.0, 0.0, 1.0], scale=False).tolist()
[0.5, -0.5, -0.5, 0.5]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPS = 1e-4
"""Added to the std before dividing (see the module docstring)."""


def _normalise(values: np.ndarray, scale: bool, eps: float) -> np.ndarray:
    centred = values - values.mean()
    if not scale:
        return centred
    return centred / (values.std(ddof=1) + eps)


def outcome_advantages(rewards: Sequence[float], *, scale: bool = True, eps: float = EPS) -> np.ndarray:
    """One advantage per output of a group, from one reward per output.

    Args:
        rewards: The G rewards of one group (G >= 2).
        scale: Divide by the group's sample std (GRPO); ``False`` only centres them (Dr. GRPO).
        eps: Added to the std.
    """
    values = np.asarray(rewards, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"a group needs at least 2 rewards, got {values.shape}")
    return _normalise(values, scale, eps)


def process_advantages(
    step_rewards: Sequence[Sequence[float]], *, scale: bool = True, eps: float = EPS
) -> list[np.ndarray]:
    """One advantage per step of each output of a group, from one reward per step.

    Args:
        step_rewards: For each of the G outputs, the rewards of its steps in order (each output has >= 1 step).
        scale: Divide by the pooled sample std; ``False`` only centres by the pooled mean.
        eps: Added to the std.

    Returns:
        For each output, the advantage of each of its steps: the sum of the normalised rewards from that step on.
        Every token of a step gets its step's advantage.

    >>> [a.round(4).tolist() for a in process_advantages([[1.0, 0.0], [0.0]], scale=False)]
    [[0.3333, -0.3333], [-0.3333]]
    """
    if len(step_rewards) < 2 or any(len(steps) == 0 for steps in step_rewards):
        raise ValueError("a group needs at least 2 outputs, each with at least one step reward")
    pool = np.concatenate([np.asarray(steps, dtype=np.float64) for steps in step_rewards])
    normalised = _normalise(pool, scale, eps)
    out, start = [], 0
    for steps in step_rewards:
        own = normalised[start : start + len(steps)]
        start += len(steps)
        out.append(np.cumsum(own[::-1])[::-1])  # suffix sums: this step and every later step of the same output
    return out


def is_informative(rewards: Sequence[float] | Sequence[Sequence[float]]) -> bool:
    """Whether a group's rewards differ at all (flat rewards, or the pooled step rewards of its outputs).

    >>> is_informative([1.0, 1.0, 1.0]), is_informative([[0.0, 1.0], [0.0]]), is_informative([[1.0], [1.0, 1.0]])
    (False, True, False)
    """
    pool = [
        float(value) for item in rewards for value in (item if isinstance(item, (list, tuple, np.ndarray)) else [item])
    ]
    return len(pool) > 0 and min(pool) != max(pool)
