"""An exact, memoised solver for the Game of 24 (any target, any count of numbers).

The search combines two numbers at a time, exactly as the environment's steps do, and memoises the first winning
move of every sorted multiset it meets. Subproblems are shared between puzzles, so solving all 1,820 multisets of
four numbers from 1-13 takes about a second, and later look-ups are dictionary hits.

The search is exponential in the count of numbers: with an unreachable target, five numbers take a fraction of a
second, six a few seconds, seven minutes; a target beyond what the numbers' sizes allow is refused at once.

Used for: solvability of generated puzzles, the optional rule-based step reward (a step is good iff the remaining
numbers can still reach the target) and solution traces for training data.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from functools import lru_cache

from reason_gym.checkers.game24 import format_step, pair_moves, replay_expressions
from reason_gym.checkers.numbers import Number, apply

Move = tuple[Number, str, Number]


def _moves(numbers: tuple[Number, ...]) -> Iterable[tuple[Move, tuple[Number, ...]]]:
    """Every distinct ``(a, op, b)`` on two of ``numbers``, with the sorted multiset it leaves.

    ``numbers`` is sorted, so ``x <= y`` and :func:`pair_moves` tries the moves that keep numbers positive first,
    which makes the solution traces read the way people write them (``13 - 9``, not ``9 - 13``).
    """
    seen: set[Move] = set()
    for i, j in itertools.combinations(range(len(numbers)), 2):
        rest = numbers[:i] + numbers[i + 1 : j] + numbers[j + 1 :]
        x, y = numbers[i], numbers[j]
        for a, op, b in pair_moves(x, y):
            if (op == "/" and b == 0) or (a, op, b) in seen:
                continue
            seen.add((a, op, b))
            yield (a, op, b), tuple(sorted((*rest, apply(a, op, b))))


def _height(x: Number) -> int:
    """``max(|p|, q)`` of ``x = p/q`` in lowest terms (1 for 0)."""
    return max(abs(x), 1) if type(x) is int else max(abs(x.numerator), x.denominator)


def _out_of_reach(numbers: tuple[Number, ...], target: Number) -> bool:
    """Whether ``target`` is surely out of reach: each of ``+ - * /`` at most doubles the product of the heights
    (``H(a ± b) <= 2 H(a) H(b)``, ``H(a * b), H(a / b) <= H(a) H(b)``), so every value ``numbers`` make has a
    height at most ``2^(n-1)`` times theirs. An exact test: it prunes only what has no solution."""
    bound = 1 << (len(numbers) - 1)
    for x in numbers:
        bound *= _height(x)
    return _height(target) > bound


@lru_cache(maxsize=1 << 18)  # about 100 MB at capacity; a 6-number search needs at most about 200,000 entries
def _winning_move(numbers: tuple[Number, ...], target: Number) -> Move | tuple[()] | None:
    """The first move that still reaches ``target`` from the sorted ``numbers``.

    Returns ``()`` when ``numbers`` is already just the target, ``None`` when the target cannot be reached.
    """
    if len(numbers) == 1:
        return () if numbers[0] == target else None
    if _out_of_reach(numbers, target):
        return None
    if len(numbers) == 2:  # the leaves dominate the search: check them without building child tuples
        x, y = numbers
        for a, op, b in pair_moves(x, y):
            if not (op == "/" and b == 0) and apply(a, op, b) == target:
                return (a, op, b)
        return None
    for move, rest in _moves(numbers):
        if _winning_move(rest, target) is not None:
            return move
    return None


def _key(numbers: Iterable[Number]) -> tuple[Number, ...]:
    return tuple(sorted(numbers))


def within_reach(numbers: Iterable[Number], target: Number = 24) -> bool:
    """Whether the sizes of ``numbers`` allow ``target`` at all (a necessary condition of :func:`is_solvable`,
    decided at once: no value of four numbers up to 13 exceeds ``8 * 13^4``).

    >>> within_reach([13, 13, 13, 13], 24), within_reach([13, 13], 10**9)
    (True, False)
    """
    key = _key(numbers)
    return bool(key) and not _out_of_reach(key, target)


def is_solvable(numbers: Iterable[Number], target: Number = 24) -> bool:
    """Whether ``numbers`` can be combined with ``+ - * /`` into ``target``, each used exactly once.

    >>> is_solvable([4, 9, 10, 13]), is_solvable([1, 1, 1, 1])
    (True, False)
    """
    key = _key(numbers)
    return bool(key) and _winning_move(key, target) is not None


def solve(numbers: Iterable[Number], target: Number = 24) -> list[str] | None:
    """A solution as ToT-format steps ending with the final answer line, or ``None`` if there is none.

    >>> solve([4, 9, 10, 13])
    ['10 - 4 = 6 (left: 6 9 13)', '13 - 9 = 4 (left: 4 6)', '4 * 6 = 24 (left: 24)', 'Answer: (13 - 9) * (10 - 4) = 24']
    """
    puzzle = _key(numbers)
    if not puzzle or _winning_move(puzzle, target) is None:
        return None
    steps: list[str] = []
    state = puzzle
    while len(state) > 1:
        a, op, b = _winning_move(state, target)  # type: ignore[misc]
        rest = list(state)
        rest.remove(a)
        rest.remove(b)
        value = apply(a, op, b)
        state = tuple(sorted((*rest, value)))
        steps.append(format_step(a, op, b, value, state))
    expression = replay_expressions(puzzle, steps)[0][0]
    return [*steps, f"Answer: {expression} = {target}"]


def solvable_puzzles(count: int = 4, low: int = 1, high: int = 13, target: int = 24) -> list[tuple[int, ...]]:
    """Every solvable multiset of ``count`` numbers from ``low``-``high``, in lexicographic order.

    With the defaults this is the 1,362 puzzles of the Tree-of-Thoughts file.
    """
    combos = itertools.combinations_with_replacement(range(low, high + 1), count)
    return [combo for combo in combos if is_solvable(combo, target)]
