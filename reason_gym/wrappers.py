"""Wrappers that make text reasoning environments usable by standard RL libraries.

Libraries such as stable-baselines3 have no ``Text`` spaces. :class:`DiscreteActions` turns a reasoning env into
a ``Discrete(K)`` action env over a list of candidate steps, with ``action_masks()`` for sb3-contrib's
``MaskablePPO``, and a fixed-size ``Box`` observation made by an *encoder*.

An encoder is any object with an ``observation_space`` (a ``Box``) that is called as
``encoder(env.unwrapped, text_observation) -> np.ndarray``. Two are provided: :class:`HashedTextEncoder` works
with every env; :class:`Game24NumbersEncoder` reads the numbers left in the Game of 24.

Only numpy, gymnasium and reason_gym.core are imported here, so reason_gym stays light.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from reason_gym.core import ReasoningEnv, as_integer

CandidateFn = Callable[[Any], Sequence[str | None]]
"""``candidates(env.unwrapped) -> texts``: the action text at each position, ``None`` where there is none."""


class Encoder(Protocol):
    """Turns a text observation (and the env it came from) into a fixed-size float vector."""

    observation_space: spaces.Box

    def __call__(self, env: Any, text: str) -> np.ndarray: ...


def _default_candidates(env: Any) -> Sequence[str | None]:
    return env.candidate_actions()


class DiscreteActions(gym.Wrapper[np.ndarray, int, str, str], gym.utils.RecordConstructorArgs):
    """A text reasoning env as a ``Discrete(max_actions)`` env over candidate steps, with action masks.

    Action ``i`` sends the text of candidate ``i`` to the wrapped env. A masked action (its candidate is ``None``)
    or one out of range does not raise: it is sent as an empty string, which the env scores as an invalid step
    (``invalid_step`` penalty, state unchanged, the step still counts towards the step limit). An action that is not
    an integer (a float, a bool, a string) is a ``TypeError``: ``Discrete`` holds integers only.

    Observations are ``encoder(env.unwrapped, text)``; the text observation is kept in ``info["text"]``. Reward,
    ``terminated``, ``truncated`` and the rest of ``info`` are the wrapped env's, unchanged.

    :meth:`action_masks` marks the positions that hold a candidate. When no episode is running (before the first
    reset, or after the episode ended and before the next reset) or the candidates function offers nothing, every
    action is allowed instead: an all-False mask would break ``MaskablePPO``'s distribution.

    Example:
        >>> import gymnasium
        >>> env = DiscreteActions(gymnasium.make("reason_gym/Game24-v0"), Game24NumbersEncoder())
        >>> obs, info = env.reset(options={"problem": {"numbers": [4, 9, 10, 13]}})
        >>> env.action_space, obs.shape, int(env.action_masks().sum())
        (Discrete(36), (201,), 36)
        >>> obs, reward, terminated, truncated, info = env.step(6 * 5 + 2)  # slots (2, 3) = (10, 13), op 2: y - x
        >>> info["text"].splitlines()[-1]
        '13 - 10 = 3 (left: 3 4 9)'

    Args:
        env: The text env (its ``unwrapped`` provides the candidates, e.g. ``Game24Env``).
        encoder: Makes the observation vector; its ``observation_space`` becomes the wrapper's.
        candidates: ``candidates(env.unwrapped)`` lists the action texts by position, as a function of the env's
            state only (the list is cached per state, see :meth:`candidate_texts`); default:
            ``env.unwrapped.candidate_actions()``.
        max_actions: The number of positions; default ``env.unwrapped.max_candidates``.
    """

    def __init__(
        self,
        env: gym.Env,
        encoder: Encoder,
        candidates: CandidateFn | None = None,
        max_actions: int | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, encoder=encoder, candidates=candidates, max_actions=max_actions
        )  # gym.make(env.spec) and check_env rebuild the wrapper from these
        super().__init__(env)
        lists_moves = isinstance(env.unwrapped, ReasoningEnv) and env.unwrapped.max_candidates is not None
        if max_actions is None:
            if not lists_moves:
                raise ValueError(f"{type(env.unwrapped).__name__} has no max_candidates: pass max_actions=")
            max_actions = int(env.unwrapped.max_candidates)  # type: ignore[union-attr, arg-type]
        if not isinstance(max_actions, int) or isinstance(max_actions, bool) or max_actions < 1:
            raise ValueError(f"max_actions must be a positive int, got {max_actions!r}")
        if candidates is None and not lists_moves:
            raise ValueError(f"{type(env.unwrapped).__name__} has no candidate_actions(): pass candidates=")
        self.encoder = encoder
        self.candidates: CandidateFn = candidates or _default_candidates
        self.action_space = spaces.Discrete(max_actions)
        self.observation_space = encoder.observation_space
        self._running = False
        self._cached: tuple[Any, list[str | None]] | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        text, info = self.env.reset(seed=seed, options=options)
        self._running = True
        return self._observe(text, info)

    def step(self, action: int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        i = _action_index(action)
        texts = self.candidate_texts()
        text = texts[i] if 0 <= i < len(texts) else None
        observation, reward, terminated, truncated, info = self.env.step(text or "")
        self._running = not (terminated or truncated)
        obs, info = self._observe(observation, info)
        return obs, reward, terminated, truncated, info

    def candidate_texts(self) -> list[str | None]:
        """The action text at each of the ``max_actions`` positions (``None`` where masked).

        Envs with ``get_state()`` (every ``ReasoningEnv``) return a new immutable state object whenever the state
        changes, so the list is computed once per state, not once for the mask and again for the step.
        """
        key = self.env.unwrapped.get_state() if isinstance(self.env.unwrapped, ReasoningEnv) else None
        if key is not None and self._cached is not None and self._cached[0] is key:
            return list(self._cached[1])
        texts = list(self.candidates(self.env.unwrapped))
        if len(texts) > self.action_space.n:
            raise ValueError(f"{len(texts)} candidates for {self.action_space.n} actions: raise max_actions")
        texts += [None] * (self.action_space.n - len(texts))
        self._cached = (key, texts) if key is not None else None
        return list(texts)

    def action_masks(self) -> np.ndarray:
        """A bool array of shape ``(max_actions,)``: True where an action has a candidate (see the class doc)."""
        if self._episode_running():
            mask = np.array([text is not None for text in self.candidate_texts()], dtype=bool)
            if mask.any():
                return mask
        return np.ones(self.action_space.n, dtype=bool)

    def _episode_running(self) -> bool:
        """From the env's state where it has one (``set_state`` may restore a running episode after the end)."""
        base = self.env.unwrapped
        if isinstance(base, ReasoningEnv):
            return base._state is not None and not base._state.done
        return self._running

    def _observe(self, text: str, info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        info["text"] = text
        return self.encoder(self.env.unwrapped, text), info


def _action_index(action: Any) -> int:
    """A ``Discrete`` action as an int (:func:`~reason_gym.core.as_integer`: also numpy's and a 0-d array, as
    predict() returns), never a bool, a float or a string, which ``int()`` would quietly turn into another move."""
    index = as_integer(action)
    if index is None:
        raise TypeError(f"an action of Discrete is an integer, got {action!r} ({type(action).__name__})")
    return index


class HashedTextEncoder:
    """Character n-grams of the text, hashed into ``dim`` signed buckets and scaled to unit length.

    Hashing uses CRC-32 (not Python's salted ``hash``), so vectors are the same in every process.

    >>> encode = HashedTextEncoder(dim=16)
    >>> vector = encode(None, "1 + 2 = 3")
    >>> vector.shape, vector.dtype, round(float(np.linalg.norm(vector)), 4)
    ((16,), dtype('float32'), 1.0)

    Args:
        dim: The length of the vector.
        ngrams: The n-gram lengths used (lowest, highest).
    """

    def __init__(self, dim: int = 256, ngrams: tuple[int, int] = (1, 3)) -> None:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        if not 1 <= ngrams[0] <= ngrams[1]:
            raise ValueError(f"ngrams must be (low, high) with 1 <= low <= high, got {ngrams!r}")
        self.dim, self.ngrams = dim, ngrams
        self.observation_space = spaces.Box(-1.0, 1.0, (dim,), np.float32)

    def __call__(self, env: Any, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, np.float64)
        for n in range(self.ngrams[0], self.ngrams[1] + 1):
            for start in range(len(text) - n + 1):
                h = zlib.crc32(text[start : start + n].encode())
                vector[(h >> 1) % self.dim] += 1.0 if h & 1 else -1.0  # the low bit is the sign
        norm = np.linalg.norm(vector)
        return (vector / norm if norm else vector).astype(np.float32)


class Game24NumbersEncoder:
    """Features of the numbers left in the Game of 24 and of every candidate move's result.

    The sorted numbers ``env.unwrapped.numbers`` fill ``num_numbers`` slots, in the order that
    ``candidate_actions()`` positions refer to. Candidate position ``6 * p + o`` is operation ``o`` of
    :func:`~reason_gym.checkers.game24.pair_moves` on the ``p``-th pair of slots; its result is encoded like a
    number, so the policy sees one step ahead. Each number or result gets five features: present (a filled slot,
    a move without division by zero), ``value / target`` (clipped to +-``clip``), equals the target, is whole,
    is a whole divisor of the target. Empty slots and impossible moves are all zero. The vector ends with the
    fraction of slots filled. Features are computed in floating point with a relative tolerance of 1e-9: they
    guide a policy, they judge nothing.

    Args:
        num_numbers: The puzzle size (the env's ``num_numbers``).
        clip: Bound of the scaled values.
    """

    features_per_number = 5

    def __init__(self, num_numbers: int = 4, clip: float = 4.0) -> None:
        if not isinstance(num_numbers, int) or num_numbers < 2:
            raise ValueError(f"num_numbers must be an int >= 2, got {num_numbers!r}")
        self.num_numbers, self.clip = num_numbers, float(clip)
        self._pairs = list(itertools.combinations(range(num_numbers), 2))  # the order of candidate_actions
        rows = num_numbers + 6 * len(self._pairs)
        self.observation_space = spaces.Box(-self.clip, self.clip, (rows * self.features_per_number + 1,), np.float32)

    def __call__(self, env: Any, text: str) -> np.ndarray:
        numbers = [float(x) for x in env.numbers]
        if len(numbers) > self.num_numbers:
            raise ValueError(f"{len(numbers)} numbers for {self.num_numbers} slots: raise num_numbers")
        target = float(env.get_state().problem["target"])
        # rows: (num_numbers slots, then 6 moves per pair of slots) x features_per_number
        rows = np.zeros((self.num_numbers + 6 * len(self._pairs), self.features_per_number), np.float32)
        for k, x in enumerate(numbers):
            rows[k] = self._features(x, target)
        for p, (i, j) in enumerate(self._pairs):
            if j < len(numbers):
                x, y = numbers[i], numbers[j]
                results = (x + y, x * y, y - x, y / x if x else None, x - y, x / y if y else None)
                for o, value in enumerate(results):
                    if value is not None:
                        rows[self.num_numbers + 6 * p + o] = self._features(value, target)
        return np.append(rows.ravel(), np.float32(len(numbers) / self.num_numbers))

    def _features(self, x: float, target: float) -> tuple[float, ...]:
        scaled = min(max(x / (target or 1.0), -self.clip), self.clip)
        whole = _close(x, round(x))
        divides = whole and round(x) != 0 and _close(target / x, round(target / x))
        return (1.0, scaled, _close(x, target), whole, divides)


def _close(x: float, y: float) -> bool:
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y), 1.0)
