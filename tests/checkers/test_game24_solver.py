"""The exact solver against the Tree-of-Thoughts puzzle file and the environment's own checker."""

import csv
import itertools
import os
import time
from fractions import Fraction
from pathlib import Path

import pytest

from reason_gym.checkers.game24 import judge_answer
from reason_gym.checkers.game24_solver import is_solvable, solvable_puzzles, solve, within_reach
from reason_gym.envs.game24 import Game24Env


def tot_file() -> Path:
    path = Path(os.environ.get("REASON_GYM_DATA_DIR", "/nonexistent")) / "game24" / "24.csv"
    if not path.is_file():
        pytest.skip("REASON_GYM_DATA_DIR/game24/24.csv is absent (.ci/run points the variable at shared/data)")
    return path


def test_the_solvable_multisets_of_four_numbers_from_1_to_13_are_exactly_the_tot_puzzles():
    with tot_file().open() as file:
        tot = {tuple(sorted(int(x) for x in row["Puzzles"].split())) for row in csv.DictReader(file)}
    generated = solvable_puzzles()
    assert len(generated) == 1362 == len(tot)
    assert set(generated) == tot


def test_every_solution_is_judged_correct_and_replays_in_the_env():
    env = Game24Env(split="all")
    for index in range(len(env.split_indices())):
        env.reset(options={"index": index})
        numbers = env.get_state().problem["numbers"]
        *steps, answer = solve(numbers)
        for step in steps:
            _, _, _, _, info = env.step(step)
            assert "error" not in info, (numbers, step, info)
        _, reward, terminated, _, info = env.step(answer)
        assert terminated and info["is_correct"] and reward == 1.0, (numbers, answer)
        assert judge_answer(answer.removeprefix("Answer:"), numbers).correct


@pytest.mark.parametrize(
    ("numbers", "target", "solvable"),
    [
        ((1, 1, 1, 1), 24, False),
        ((3, 3, 8, 8), 24, True),  # needs the fraction 8/3
        ((1, 5, 5, 5), 24, True),  # needs 1/5
        ((13, 13, 13, 13), 24, False),
        ((24,), 24, True),
        ((5,), 24, False),
        ((), 24, False),
        ((2, 3), 6, True),
        ((1, 2, 3, 4, 5), 100, True),
        ((1, 1), 3, False),
        ((0, 0, 0, 0), 0, True),
    ],
)
def test_is_solvable(numbers, target, solvable):
    assert is_solvable(numbers, target) is solvable
    solution = solve(numbers, target)
    assert (solution is not None) is solvable
    if solution:
        assert judge_answer(solution[-1].removeprefix("Answer:"), numbers, target).correct


def _reachable(numbers: tuple) -> set:
    """Every value ``numbers`` make, by brute force without any pruning (the reference for the solver)."""
    if len(numbers) == 1:
        return {Fraction(numbers[0])}
    values = set()
    for i, j in itertools.permutations(range(len(numbers)), 2):
        rest = tuple(x for k, x in enumerate(numbers) if k not in (i, j))
        a, b = Fraction(numbers[i]), Fraction(numbers[j])
        for value in (a + b, a - b, a * b, a / b if b else None):
            if value is not None:
                values |= _reachable((*rest, value))
    return values


@pytest.mark.parametrize(
    "numbers",
    [
        *itertools.combinations_with_replacement(range(0, 6), 3),
        *itertools.combinations_with_replacement((1, 13), 4),
        (3, 3, 8, 8),
    ],
)
def test_the_size_bound_prunes_only_unreachable_targets(numbers):
    reachable = _reachable(numbers)
    extremes = {max(reachable), min(reachable), max(reachable) + 1, 8 * max(reachable), Fraction(1, 97)}
    for target in reachable | extremes:
        assert is_solvable(numbers, target) is (target in reachable), (numbers, target)


@pytest.mark.parametrize(
    ("numbers", "target", "reach"),
    [
        ((13, 13, 13, 13), 28561, True),  # 13^4, the largest value: within reach and reached
        ((13, 13, 13, 13), 8 * 13**4, True),  # the bound itself is not refused
        ((13, 13, 13, 13), 8 * 13**4 + 1, False),
        ((13, 13), 10**9, False),
        ((2, 3), Fraction(2, 3), True),
        ((0, 0), 0, True),
        ((), 24, False),
    ],
)
def test_within_reach(numbers, target, reach):
    assert within_reach(numbers, target) is reach


@pytest.mark.parametrize(
    ("numbers", "target"),
    [
        ((2, 3, 5, 7, 11, 13, 17, 19), 10**9),  # the audit's puzzle: out of reach, refused at once
        ((2, 3, 5, 7, 11, 13), 10**9),
        ((2, 3, 5, 7, 11), 9973),  # within reach but unsolvable: the whole 5-number search
    ],
)
def test_unsolvable_searches_are_bounded(numbers, target):
    start = time.perf_counter()
    assert not is_solvable(numbers, target)
    assert time.perf_counter() - start < 5.0
