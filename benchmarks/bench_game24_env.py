"""Game-of-24 environment throughput, and its answer checker against reasoning-gym's, measured side by side.

Run it from the repository root (``REASON_GYM_DATA_DIR`` names the folder that holds ``game24/24.csv``)::

    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_game24_env.py --json bench.json
    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_game24_env.py --quick   # a few seconds
    REASON_GYM_DATA_DIR=/work/shared/data python benchmarks/bench_game24_env.py --profile # + where the time goes

Every figure is the median over ``--repeats`` repeats: on a shared machine a single timing is noise.

1. One env, the raw ``Game24Env`` and ``gymnasium.make("reason_gym/Game24-v0")`` (its default wrappers), actions/s
   for valid steps (the exact solver's trace of every puzzle of the split), invalid steps (near misses: a wrong
   result, a number not available, a wrong left list; and garbage) and final answers (right and wrong). Every
   episode starts with ``reset(options={"index": i})``; the cost of the resets is taken out by timing the same loop
   of resets alone in the same repeat and subtracting it. Steps are parsed through an LRU cache (``parse_step``),
   so steps are timed "cold" (cache cleared before the pass; only strings repeated within the pass, such as the
   common last step ``4 * 6 = 24 (left: 24)``, hit it) and "warm" (the same strings again, as in rollouts).
   Clock: this process's CPU time (``time.process_time``), which leaves out the time the scheduler gives other
   processes; wall-clock rates go to the JSON as well.
2. Vector envs, ``SyncVectorEnv`` and ``AsyncVectorEnv`` (with Gymnasium's default shared memory, which
   reason_gym's Text space supports, and with ``shared_memory=False``: pipes), N sub-envs made with
   ``gymnasium.make``.
   Each sub-env plays the solver's trace of whatever puzzle it drew: 3 valid steps, the correct answer, then one
   ``step`` that Gymnasium's NEXT_STEP autoreset turns into a reset (5 sub-env steps per episode). The acting
   "policy" is a dict from observation to the next action, built before timing, so the timing is about the envs.
   Clock: wall (the work happens in worker processes for AsyncVectorEnv).
3. Answer checking on the SAME expressions: ours (``judge_answer``) against reasoning-gym's puzzle24
   ``score_answer`` (score 1.0 = correct). Every verdict is compared with an independent exact judge written here
   (shunting-yard over ``Fraction``, multiset comparison) and with how the answer was built. reasoning-gym's
   ``score_answer`` runs sympy's ``parse_expr`` (an ``eval``), so the "injection" answers here are harmless.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import io
import itertools
import json
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

import reason_gym
from reason_gym.checkers import game24 as checker
from reason_gym.checkers.game24_solver import solve
from reason_gym.envs.game24 import Game24Env

ENV_ID = "reason_gym/Game24-v0"
TARGET_STEPS_PER_S = 100_000
"""The goal for valid steps/s in one env."""
TARGET_CHECK_RATIO = 10.0
"""The goal for our answers/s over reasoning-gym's."""

Episode = tuple[dict[str, int], list[str]]
"""``(reset options, actions)``: one episode of a workload."""


# ---------------------------------------------------------------------------------------------- an independent judge

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_SPELLINGS = {"×": "*", "÷": "/", "−": "-"}
_DIGITS = "0123456789"


def reference_judge(text: str, numbers: Sequence[int], target: int = 24) -> tuple[bool, str, Fraction | None]:
    """Judges an answer by the Game-24 rules, independently of reason_gym's checker.

    Rules: integer literals and binary ``+ - * /`` (also ``× ÷ −``) with parentheses, nothing else (no unary minus,
    powers, decimals or names); the literals are the puzzle's numbers, each used once; the exact value is the
    target. Shunting-yard over ``Fraction``, no recursion (so 400 nested parentheses are fine).

    Returns:
        ``(correct, reason, exact value or None)``.
    """
    values: list[Fraction] = []
    ops: list[str] = []
    used: list[int] = []

    def reduce() -> None:
        op, right, left = ops.pop(), values.pop(), values.pop()
        if op == "/" and right == 0:
            raise ZeroDivisionError
        values.append({"+": left + right, "-": left - right, "*": left * right}[op] if op != "/" else left / right)

    expect_operand, i = True, 0
    try:
        while i < len(text):
            ch = _SPELLINGS.get(text[i], text[i])
            if ch in " \t\n\r":
                i += 1
                continue
            if ch in _DIGITS:
                j = i
                while j < len(text) and text[j] in _DIGITS:
                    j += 1
                if not expect_operand:
                    return False, "two numbers in a row", None
                if j - i > 6:
                    return False, f"a {j - i}-digit number", None
                used.append(int(text[i:j]))
                values.append(Fraction(used[-1]))
                expect_operand, i = False, j
                continue
            if ch == "(" and expect_operand:
                ops.append(ch)
            elif ch == ")" and not expect_operand:
                while ops and ops[-1] != "(":
                    reduce()
                if not ops:
                    return False, "unbalanced ')'", None
                ops.pop()
            elif ch in _PRECEDENCE and not expect_operand:
                while ops and ops[-1] != "(" and _PRECEDENCE[ops[-1]] >= _PRECEDENCE[ch]:
                    reduce()
                ops.append(ch)
                expect_operand = True
            elif ch in "()" or ch in _PRECEDENCE:
                return False, f"'{ch}' out of place (unary minus, '**' or a missing operand)", None
            else:
                return False, f"{ch!r} is not allowed", None
            i += 1
        if expect_operand:
            return False, "incomplete expression", None
        while ops:
            if ops[-1] == "(":
                return False, "unbalanced '('", None
            reduce()
    except ZeroDivisionError:
        return False, "division by zero", None
    value = values[0]
    if sorted(used) != sorted(numbers):
        return False, f"uses {' '.join(map(str, sorted(used)))}", value
    if value != target:
        return False, f"value {value}", value
    return True, "the puzzle's numbers once each, exactly 24", value


def reachable(numbers: Sequence[int]) -> dict[Fraction, str]:
    """Every value that all of ``numbers`` reach with ``+ - * /`` (each used once), with a fully bracketed
    expression for each. Exhaustive; only used for a few puzzles."""
    found: dict[Fraction, str] = {}

    def walk(items: list[tuple[Fraction, str]]) -> None:
        if len(items) == 1:
            found.setdefault(*items[0])
            return
        for i, j in itertools.combinations(range(len(items)), 2):
            rest = [item for k, item in enumerate(items) if k not in (i, j)]
            (x, tx), (y, ty) = items[i], items[j]
            moves = [(x + y, f"({tx} + {ty})"), (x * y, f"({tx} * {ty})")]
            moves += [(x - y, f"({tx} - {ty})"), (y - x, f"({ty} - {tx})")]
            moves += [(x / y, f"({tx} / {ty})")] if y else []
            moves += [(y / x, f"({ty} / {tx})")] if x else []
            for move in moves:
                walk([*rest, move])

    walk([(Fraction(n), str(n)) for n in numbers])
    return {value: text[1:-1] if len(numbers) > 1 else text for value, text in found.items()}


# ---------------------------------------------------------------------------------------------------- workloads


def solver_expression(numbers: Sequence[int]) -> str | None:
    """The exact solver's answer expression (without ``= 24``), or ``None``."""
    trace = solve(numbers)
    return trace[-1].removeprefix("Answer:").rsplit("=", 1)[0].strip() if trace else None


def wrong_value_expression(numbers: Sequence[int]) -> str:
    """An expression over exactly the puzzle's numbers whose value is not 24."""
    a, b, c, d = numbers
    for text in (f"{a} + {b} + {c} + {d}", f"{a} * {b} * {c} * {d}", f"({a} + {b}) * {c} + {d}", f"{d} * {c} - {b}"):
        if reference_judge(text, numbers)[2] != 24:
            return text
    raise RuntimeError(f"no wrong-value template for {numbers}")  # unreachable for 1-13: the first two differ


def near_miss_steps(numbers: Sequence[int]) -> list[str]:
    """Six invalid steps that look like steps: a wrong result, an unavailable or reused number, a wrong left list."""
    a, b, c, d = numbers
    absent = next(x for x in itertools.count(1) if x not in numbers)
    single = next((x for x in numbers if list(numbers).count(x) == 1), None)
    return [
        f"{a} + {b} = {a + b + 1}",
        f"{absent} + {a} = {absent + a} (left: {b} {c} {absent + a} {d})",
        f"{single} * {single} = {single * single}" if single is not None else f"{absent} - {a} = {absent - a}",
        f"{a} + {b} = {a + b} (left: {c} {d})",
        f"{d} - {c} = {c - d}" if c != d else f"{d} - {c} = 1",
        f"{d} / {c} = {c}/{d}" if c != d else f"{d} / {c} = 2",
    ]


def garbage_steps(numbers: Sequence[int], index: int) -> list[str]:
    """Six actions that are not steps: empty, prose, half a step, a list, too long to parse, too long to read."""
    a, b, c, d = numbers
    return [
        "",
        f"Let's try {a} and {b} first.",
        f"{a} + {b}",
        f"{a} {b} {c} {d}",
        "step " * 60 + str(index),
        "=" * 9000,
    ]


def wrong_answer(numbers: Sequence[int], index: int, other: str) -> str:
    """A wrong final answer, rotating through a wrong value, another puzzle's solution, a bare number, prose."""
    return [f"Answer: {wrong_value_expression(numbers)} = 24", f"Answer: {other} = 24", "Answer: 24", "Answer: ?"][
        index % 4
    ]


def build_workloads(env: Game24Env) -> tuple[list[tuple[int, ...]], list[list[str]], dict[str, list[Episode]]]:
    """The puzzles of the env's split, their solver traces and one list of episodes per workload."""
    puzzles, traces = [], []
    for i in range(len(env.split_indices())):
        env.reset(options={"index": i})
        numbers = tuple(env.get_state().problem["numbers"])
        puzzles.append(numbers)
        traces.append(solve(numbers) or [])
    solutions = [trace[-1].removeprefix("Answer:").rsplit("=", 1)[0].strip() for trace in traces]
    options = [{"index": i} for i in range(len(puzzles))]
    n = len(puzzles)
    workloads = {
        "valid steps": [(options[i], traces[i][:-1]) for i in range(n)],
        "invalid: near miss": [(options[i], near_miss_steps(puzzles[i])) for i in range(n)],
        "invalid: garbage": [(options[i], garbage_steps(puzzles[i], i)) for i in range(n)],
        "answer: correct": [(options[i], traces[i][-1:]) for i in range(n)],
        "answer: wrong": [(options[i], [wrong_answer(puzzles[i], i, solutions[(i + 1) % n])]) for i in range(n)],
    }
    return puzzles, traces, workloads


def verify_workload(env: gym.Env, name: str, episodes: list[Episode]) -> int:
    """Plays every episode once and counts actions the env did not treat as their label says (should be 0)."""
    wrong = 0
    for option, actions in episodes:
        env.reset(options=option)
        for action in actions:
            _, _, terminated, _, info = env.step(action)
            if name == "valid steps":
                wrong += "error" in info
            elif name.startswith("invalid"):
                wrong += info["reward_components"]["invalid_step"] != 1.0
            else:
                wrong += not terminated or info["is_correct"] != (name == "answer: correct")
    return wrong


# ------------------------------------------------------------------------------------------------- timing: one env


def _clear_step_cache() -> None:
    clear: Callable[[], None] | None = getattr(checker.parse_step, "cache_clear", None)
    if clear is not None:
        clear()


def _run_resets(env: gym.Env, episodes: list[Episode]) -> None:
    for option, _ in episodes:
        env.reset(options=option)


def _run_episodes(env: gym.Env, episodes: list[Episode]) -> None:
    for option, actions in episodes:
        env.reset(options=option)
        for action in actions:
            env.step(action)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``fn(*args)``."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn(*args)
    return time.process_time() - cpu, time.perf_counter() - wall


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _reference_rate() -> float:
    """Loops/s (CPU clock) of a fixed pure-Python loop: how fast this machine runs Python at the moment."""
    table = {str(i): i for i in range(64)}
    cpu = time.process_time()
    for i in range(20_000):
        sorted((table[f"{i % 64}"], 3, 1, 2))
    return 20_000 / max(time.process_time() - cpu, 1e-9)


def _modes(name: str) -> tuple[str, ...]:
    """Steps are timed with the step cache cold and warm; answers are not cached."""
    return ("cold", "warm") if name == "valid steps" or name.startswith("invalid") else ("",)


def measure_one_env(
    envs: dict[str, gym.Env], workloads: dict[str, list[Episode]], repeats: int
) -> tuple[dict[str, Any], list[float]]:
    """Actions/s of every (env, workload, cache mode), resets subtracted; and the machine's speed per repeat.

    Each repeat times every case once, in a shuffled order, so that all figures sample the same machine states
    (a shared machine's speed drifts, here by up to 2x within a minute). Per case: the (reset + actions) loop
    minus the same resets alone, timed back to back in alternating order.
    """
    cases = [(label, name, mode) for label in envs for name in workloads for mode in _modes(name)]
    samples: dict[tuple[str, str, str], tuple[list[float], list[float], list[float]]] = {c: ([], [], []) for c in cases}
    reference = []
    for repeat in range(repeats):
        reference.append(_reference_rate())
        for label, name, mode in random.Random(repeat).sample(cases, len(cases)):
            env, episodes = envs[label], workloads[name]
            if mode == "warm":
                _run_episodes(env, episodes)  # every step string of the workload is in the cache
            timings = {}
            for part in ("resets", "episodes") if repeat % 2 == 0 else ("episodes", "resets"):
                if part == "episodes" and mode == "cold":
                    _clear_step_cache()
                timings[part] = _timed(_run_resets if part == "resets" else _run_episodes, env, episodes)
            (reset_cpu, reset_wall), (both_cpu, both_wall) = timings["resets"], timings["episodes"]
            n_actions = sum(len(actions) for _, actions in episodes)
            cpu_rates, wall_rates, reset_rates = samples[(label, name, mode)]
            if both_cpu > reset_cpu:
                cpu_rates.append(n_actions / (both_cpu - reset_cpu))
            if both_wall > reset_wall:
                wall_rates.append(n_actions / (both_wall - reset_wall))
            reset_rates.append(len(episodes) / max(reset_cpu, 1e-9))
        so_far = (
            _median(samples[("raw", "valid steps", "warm")][0]) if ("raw", "valid steps", "warm") in samples else None
        )
        print(f"  repeat {repeat + 1}/{repeats} done; raw env, valid steps (warm) so far: {_rate(so_far)}", flush=True)
    results: dict[str, Any] = {label: {"env": str(env), "workloads": {}} for label, env in envs.items()}
    for (label, name, mode), (cpu_rates, wall_rates, reset_rates) in samples.items():
        results[label]["workloads"][f"{name} ({mode})" if mode else name] = {
            "per_s": _median(cpu_rates),
            "per_s_wall": _median(wall_rates),
            "per_s_best_repeat": max(cpu_rates, default=None),
            "per_s_repeats": [round(r) for r in cpu_rates],
            "actions": sum(len(actions) for _, actions in workloads[name]),
            "episodes": len(workloads[name]),
            "resets_per_s": _median(reset_rates),
        }
    for label in envs:
        results[label]["resets_per_s"] = _median([w["resets_per_s"] for w in results[label]["workloads"].values()])
    return results, reference


# ---------------------------------------------------------------------------------------------- timing: vector envs


def build_policy(env: gym.Env, puzzles_count: int, traces: list[list[str]]) -> dict[str, str]:
    """observation -> the solver's next action, for every state of every trace (3 steps and the answer)."""
    policy = {}
    for i in range(puzzles_count):
        observation, _ = env.reset(options={"index": i})
        for action in traces[i]:
            policy[observation] = action
            observation = env.step(action)[0]
    return policy


def _play(env: gym.vector.VectorEnv, observations: tuple[str, ...], policy: dict[str, str], steps: int) -> Any:
    get = policy.get
    rewards = []
    for _ in range(steps):
        observations, reward, *_ = env.step(tuple(get(o, "") for o in observations))
        rewards.append(reward)
    return observations, float(np.sum(rewards))


class _VectorRun:
    """A vector env stepped ``steps`` vector steps at a time, checking that every sub-env stays on its trace."""

    def __init__(self, env: gym.vector.VectorEnv, policy: dict[str, str], steps: int) -> None:
        self.env, self.policy, self.steps = env, policy, steps
        self.observations, _ = env.reset(seed=0)
        self.done, self.reward = 0, 0.0
        self()  # warm-up, not timed: every sub-env's env checker has run

    def __call__(self) -> None:
        self.observations, reward = _play(self.env, self.observations, self.policy, self.steps)
        self.reward += reward
        self.done += self.steps

    def policy_ok(self) -> bool:
        """Every answer earned 1.0 and no step was penalised. All sub-envs start together and every episode takes
        5 vector steps (3 steps, the answer, the autoreset), so phase 3 of 0-4 is the correct answer."""
        answers = self.env.num_envs * sum(1 for t in range(self.done) if t % 5 == 3)
        return abs(self.reward - answers) < 1e-6


def measure_vectors(
    split: str, policy: dict[str, str], traces: list[list[str]], sizes: Sequence[int], steps: int, repeats: int
) -> list[dict[str, Any]]:
    """Sub-env steps/s of Sync/AsyncVectorEnv replaying solver traces, and of the same episodes in a plain loop.

    The plain loop plays them by hand in one ``gymnasium.make`` env: reset + 3 steps + answer, counted as 5 steps
    like the vector envs' 5 calls. Interleaved like :func:`measure_one_env`; wall clock, and the CPU clock where
    all the work is in this process.
    """
    make = functools.partial(gym.make, ENV_ID, split=split)
    plain = make()
    episodes = [({"index": i}, trace) for i, trace in enumerate(traces)]
    episodes = list(itertools.islice(itertools.cycle(episodes), max(1, steps * max(sizes) // 5)))
    _run_episodes(plain, episodes[:10])
    rows: list[dict[str, Any]] = [{"kind": "plain loop", "num_envs": 1, "calls": 5 * len(episodes), "in_process": True}]
    runs: list[Callable[[], None]] = [functools.partial(_run_episodes, plain, episodes)]
    for num_envs, kind in itertools.product(sizes, ("sync", "async", "async-pipes")):
        start = time.perf_counter()
        fns = [make] * num_envs
        env = SyncVectorEnv(fns) if kind == "sync" else AsyncVectorEnv(fns, shared_memory=kind == "async")
        runs.append(_VectorRun(env, policy, steps))
        row = {"kind": kind, "num_envs": num_envs, "calls": num_envs * steps, "in_process": kind == "sync"}
        rows.append({**row, "startup_s": time.perf_counter() - start})
    samples: list[tuple[list[float], list[float]]] = [([], []) for _ in rows]
    for repeat in range(repeats):
        for i in random.Random(repeat).sample(range(len(rows)), len(rows)):
            cpu, wall = _timed(runs[i])
            samples[i][0].append(rows[i]["calls"] / max(cpu, 1e-9))
            samples[i][1].append(rows[i]["calls"] / wall)
    for row, run, (cpu_rates, wall_rates) in zip(rows, runs, samples, strict=True):
        row["steps_per_s"] = _median(wall_rates)
        row["steps_per_s_repeats"] = [round(r) for r in wall_rates]
        # The CPU clock sees only this process: meaningful when no worker process does the work.
        row["steps_per_s_cpu"] = _median(cpu_rates) if row["in_process"] else None
        row["episodes_per_s"] = row["steps_per_s"] / 5
        if isinstance(run, _VectorRun):
            row["policy_ok"] = run.policy_ok()
            run.env.close()
    return rows


# ------------------------------------------------------------------------------------------ answers side by side


_NOTES = {
    "number not in puzzle": "rg never reads entry['metadata']['numbers']: it only counts 4 numbers within its range",
    "number reused": "rg never reads entry['metadata']['numbers']: it only counts 4 numbers within its range",
    "value in (24, 25)": "rg's int() truncates the value to 24",
    "power **": "'**' is not one of + - * /; sympy evaluates it",
    "comment injection": "sympy drops the '#' comment, rg's regex still counts the numbers in it",
    "factorial injection": "parse_expr evals Python: factorial(4) is 24; '#' hides the rest",
    "odd spelling × ÷ −": "ours reads × ÷ − as * / - (documented); sympy cannot (rg's format asks for * and /)",
}


def build_answers(puzzles: list[tuple[int, ...]], per_category: int) -> list[dict[str, Any]]:
    """Expressions to judge, each with its puzzle, category and the verdict it was built to have."""
    answers: list[dict[str, Any]] = []

    def add(numbers: Sequence[int], category: str, text: str, expected: bool) -> None:
        answers.append({"numbers": tuple(numbers), "category": category, "text": text, "expected": expected})

    solutions = {numbers: solver_expression(numbers) for numbers in puzzles}
    for numbers in puzzles:  # on every puzzle: the solver's answer, a wrong value, a number left out
        expression = solutions[numbers]
        needs_fractions = any(not isinstance(v, int) or v.denominator != 1 for v in _intermediates(numbers))
        add(numbers, "correct (exact fractions)" if needs_fractions else "correct", expression, True)
        add(numbers, "wrong value", wrong_value_expression(numbers), False)
        three = next((e for e in map(solver_expression, itertools.combinations(numbers, 3)) if e), None)
        add(numbers, "number left out", three or " * ".join(map(str, numbers[1:])), False)

    spread = list(puzzles)
    random.Random(0).shuffle(spread)  # the adversarial examples come from puzzles all over the file
    counts: dict[str, int] = {}

    def want(category: str) -> bool:
        return counts.get(category, 0) < per_category

    def add_some(numbers: Sequence[int], category: str, text: str | None, expected: bool) -> None:
        if text is not None and want(category):
            counts[category] = counts.get(category, 0) + 1
            add(numbers, category, text, expected)

    for numbers in spread:
        expression = solutions[numbers]
        add_some(numbers, "odd spelling (spaces, parens)", f"  (( {expression} ))  ", True)
        add_some(numbers, "odd spelling (spaces, parens)", expression.replace(" ", ""), True)
        odd = expression.replace("*", "×").replace("/", "÷").replace("-", "−")
        add_some(numbers, "odd spelling × ÷ −", odd if odd != expression else None, True)
        for category in ("number not in puzzle", "number reused"):  # one of each per puzzle at most
            for position, x in itertools.product(range(4) if want(category) else (), range(1, 14)):
                changed = tuple(sorted((*numbers[:position], x, *numbers[position + 1 :])))
                if changed != numbers and (x in numbers) == (category == "number reused"):
                    expression = solver_expression(changed)
                    if expression:
                        add_some(numbers, category, expression, False)
                        break
        if want("value in (24, 25)") or want("division by zero"):
            values = reachable(numbers)
            add_some(numbers, "value in (24, 25)", next((t for v, t in values.items() if 24 < v < 25), None), False)
            add_some(numbers, "division by zero", _division_by_zero(numbers), False)
        if 1 in numbers:
            rest = list(numbers)
            rest.remove(1)
            three = solver_expression(rest)
            add_some(numbers, "power **", f"({three}) ** 1" if three else None, False)
        pair = next(((x, y) for x, y in itertools.combinations(numbers, 2) if x * y == 24 or x + y == 24), None)
        if pair is not None:
            rest = list(numbers)
            rest.remove(pair[0])
            rest.remove(pair[1])
            op = "*" if pair[0] * pair[1] == 24 else "+"
            add_some(numbers, "comment injection", f"{pair[0]} {op} {pair[1]}  # {rest[0]} {rest[1]}", False)
        if 4 in numbers and any(x != 4 for x in numbers):
            rest = list(numbers)
            rest.remove(4)
            add_some(numbers, "factorial injection", f"factorial(4) # {' '.join(map(str, rest))}", False)

    garbage = [
        "", "24", "Answer: 24", "I think it is 24", "NaN", "1e400", "24.0", "None", "lambda: 24",
        "__import__('os').getpid()", "().__class__.__name__", "{a} {b} {c} {d}", "(({a} + {b})", "{a}+{b}+{c}+{d}=24",
    ]  # fmt: skip
    for text, numbers in zip(garbage, itertools.cycle(spread)):
        a, b, c, d = numbers
        add(numbers, "garbage / injection", text.format(a=a, b=b, c=c, d=d), False)
    long_texts = ["1+" * 1000 + "1", "(" * 400 + "24" + ")" * 400, "9" * 5000, "x" * 20000]
    for text, numbers in zip(long_texts, itertools.cycle(spread)):
        add(numbers, "very long", text, False)
    add(spread[0], "very long (padded, correct)", " " * 5000 + solutions[spread[0]] + "\n" * 3000, True)
    return answers


def _intermediates(numbers: Sequence[int]) -> list[Fraction | int]:
    trace = solve(numbers) or []
    return [checker.parse_step(step).result for step in trace[:-1]]  # type: ignore[union-attr]


def _division_by_zero(numbers: Sequence[int]) -> str | None:
    """An expression over all of ``numbers`` that divides by a zero-valued part of them, if there is one."""
    for size in (2, 3):
        for chosen in itertools.combinations(range(4), size):
            zero = reachable([numbers[k] for k in chosen]).get(Fraction(0))
            if zero is not None:
                rest = [str(numbers[k]) for k in range(4) if k not in chosen]
                return f"{' * '.join(rest)} / ({zero})"
    return None


def compare_checkers(answers: list[dict[str, Any]], repeats: int, rg_repeats: int) -> dict[str, Any]:
    """Our judge_answer and reasoning-gym's puzzle24 score_answer on the same expressions, timed and cross-checked."""
    try:
        import reasoning_gym
    except ImportError:
        return {"skipped": "reasoning-gym is not installed (pip install 'reason-gym[bench]')"}
    dataset = reasoning_gym.create_dataset("puzzle24", size=1, seed=0)
    default_dataset = reasoning_gym.create_dataset("puzzle24", size=1, seed=0)
    # Its config asserts max_value <= 10; the ToT puzzles use 1-13, and score_answer reads the bound when called.
    dataset.config.max_value = 13
    entries = [
        {"question": "", "answer": "", "metadata": {"source_dataset": "puzzle24", "numbers": list(a["numbers"])}}
        for a in answers
    ]
    pairs = [(a["text"], a["numbers"]) for a in answers]
    rg_pairs = [(a["text"], entry) for a, entry in zip(answers, entries, strict=True)]
    judge, score = checker.judge_answer, dataset.score_answer

    def ours() -> None:
        for text, numbers in pairs:
            judge(text, numbers)

    def theirs() -> None:
        for text, entry in rg_pairs:
            score(text, entry)

    correct_only = [(p, e) for p, e, a in zip(pairs, entries, answers, strict=True) if a["expected"]]
    loops: dict[str, tuple[Callable[[], Any], int, int]] = {  # name: (loop, answers, repeats)
        "ours": (ours, len(pairs), repeats),
        "rg": (theirs, len(pairs), rg_repeats),
        "ours_correct": (lambda: [judge(t, n) for (t, n), _ in correct_only], len(correct_only), repeats),
        "rg_correct": (lambda: [score(t, e) for (t, _), e in correct_only], len(correct_only), rg_repeats),
    }
    times: dict[str, list[float]] = {name: [] for name in loops}
    for repeat in range(max(repeats, rg_repeats)):  # interleaved, in a shuffled order, like the env figures
        names = [name for name, (_, _, count) in loops.items() if repeat < count]
        for name in random.Random(repeat).sample(names, len(names)):
            times[name].append(_timed(loops[name][0])[0])
    rates = {name: loops[name][1] / statistics.median(times[name]) for name in loops}
    ours_rate, rg_rate = rates["ours"], rates["rg"]
    ours_correct_rate, rg_correct_rate = rates["ours_correct"], rates["rg_correct"]

    rows, ours_wrong, rg_wrong, built_wrong = [], [], 0, []
    for answer, entry in zip(answers, entries, strict=True):
        text, numbers = answer["text"], answer["numbers"]
        ours_verdict = judge(text, numbers).correct
        rg_verdict = score(text, entry) == 1.0
        truth, reason, _ = reference_judge(text, numbers)
        row = {
            "puzzle": " ".join(map(str, numbers)),
            "category": answer["category"],
            "answer": text if len(text) <= 60 else f"{text[:45]}... ({len(text)} chars)",
            "ours": ours_verdict,
            "reasoning_gym": rg_verdict,
            "truth": truth,
        }
        if truth != answer["expected"]:
            built_wrong.append(row)
        if ours_verdict != truth:
            ours_wrong.append({**row, "why": reason})
        rg_wrong += rg_verdict != truth
        if ours_verdict != rg_verdict:
            right = "ours" if ours_verdict == truth else "reasoning-gym"
            note = _NOTES.get(answer["category"], "")
            rows.append({**row, "right": right, "note": f"{reason}; {note}" if note else reason})
    # The right answers the widened reasoning-gym accepts: how many would its default config (1-10) reject?
    accepted = [
        (a["text"], e) for a, e in zip(answers, entries, strict=True) if a["expected"] and score(a["text"], e) == 1.0
    ]
    default_rejects = sum(default_dataset.score_answer(t, e) != 1.0 for t, e in accepted)
    return {
        "answers": len(answers),
        "categories": {
            c: sum(a["category"] == c for a in answers) for c in dict.fromkeys(a["category"] for a in answers)
        },
        "ours_per_s": ours_rate,
        "reasoning_gym_per_s": rg_rate,
        "ratio": ours_rate / rg_rate,
        "target_ratio": TARGET_CHECK_RATIO,
        "target_met": ours_rate / rg_rate >= TARGET_CHECK_RATIO,
        "correct_only": {
            "answers": len(correct_only),
            "ours_per_s": ours_correct_rate,
            "reasoning_gym_per_s": rg_correct_rate,
        },
        "disagreements": rows,
        "ours_wrong": ours_wrong,
        "reasoning_gym_wrong": rg_wrong,
        "construction_mismatches": built_wrong,
        "reasoning_gym_default_config_rejects_correct": default_rejects,
        "correct_answers_accepted_widened": len(accepted),
        "reasoning_gym_version": getattr(reasoning_gym, "__version__", "?"),
    }


# ------------------------------------------------------------------------------------------------------- output


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}/s"


def print_disagreements(result: dict[str, Any]) -> None:
    rows = result["disagreements"]
    print(f"\nVerdicts that differ ({len(rows)}; truth = the independent Fraction judge in this file):")
    print(f"  {'puzzle':<11} {'category':<28} {'answer':<40} {'ours':<5} {'rg':<5} {'truth':<5} right: note")
    for row in rows:
        answer = row["answer"] if len(row["answer"]) <= 40 else row["answer"][:37] + "..."
        verdicts = " ".join(f"{'yes' if row[k] else 'no':<5}" for k in ("ours", "reasoning_gym", "truth"))
        print(f"  {row['puzzle']:<11} {row['category']:<28} {answer!r:<40} {verdicts} {row['right']}: {row['note']}")
    if result["ours_wrong"]:
        print(f"\n!!! OUR CHECKER DISAGREES WITH THE EXACT JUDGE ON {len(result['ours_wrong'])} ANSWERS !!!")
        for row in result["ours_wrong"]:
            print(f"  {row}")
    if result["construction_mismatches"]:
        print(f"\n!!! {len(result['construction_mismatches'])} answers were not built as intended (benchmark bug):")
        for row in result["construction_mismatches"]:
            print(f"  {row}")


def print_summary(report: dict[str, Any]) -> None:
    print("\n" + "=" * 100)
    print(f"SUMMARY ({report['meta']['repeats']} repeats, medians; one env: CPU clock, resets subtracted)")
    print("=" * 100)
    single = report["single_env"]
    print(f"{'one env, actions/s':<40} {'raw Game24Env':>20} {'gymnasium.make':>20}")
    for name in single["raw"]["workloads"]:
        raw, made = single["raw"]["workloads"][name], single["make"]["workloads"][name]
        print(f"  {name:<38} {_rate(raw['per_s']):>20} {_rate(made['per_s']):>20}")
    resets = (_rate(single[label]["resets_per_s"]) for label in ("raw", "make"))
    print(f"  {'resets (alone)':<38} {next(resets):>20} {next(resets):>20}")
    target = report["target"]
    verdict = "MET" if target["met"] else "NOT MET"
    valid = target["valid_steps_per_s"]
    print(
        f"  target >= {TARGET_STEPS_PER_S:,} valid steps/s in one env ({target['headline']}): {verdict} at "
        f"{_rate(target['figure'])}\n    (best single repeat {_rate(target['best_repeat'])}; wall clock "
        f"{_rate(target['wall_clock'])}; gymnasium.make warm {_rate(valid['make, warm cache'])}; "
        f"raw cold {_rate(valid['raw, cold cache'])})"
    )
    speed = report["meta"]["reference_loops_per_s"]
    print(
        f"  machine speed per repeat (a fixed Python loop, CPU clock): {min(speed):,}..{max(speed):,} loops/s "
        f"(fastest/slowest {max(speed) / min(speed):.2f}x)"
    )
    print(f"\n{'vector envs, sub-env steps/s':<40} {'wall clock':>20} {'CPU (in-process)':>20} {'episodes/s':>12}")
    for row in report["vector"]["rows"]:
        name = f"{row['kind']} x{row['num_envs']}" + ("" if row.get("policy_ok", True) else " (POLICY FAILED)")
        rates = f"{_rate(row['steps_per_s']):>20} {_rate(row['steps_per_s_cpu']):>20}"
        print(f"  {name:<38} {rates} {_rate(row['episodes_per_s']):>12}")
    answers = report["answers"]
    if "skipped" in answers:
        print(f"\nanswer checking: skipped ({answers['skipped']})")
        return
    ok = "MET" if answers["target_met"] else "NOT MET"
    title = f"answer checking, same {answers['answers']} answers (CPU)"
    print(f"\n{title:<40} {'ours':>20} {'reasoning-gym':>20}")
    print(f"  {'all answers':<38} {_rate(answers['ours_per_s']):>20} {_rate(answers['reasoning_gym_per_s']):>20}")
    co = answers["correct_only"]
    print(f"  {'correct answers only':<38} {_rate(co['ours_per_s']):>20} {_rate(co['reasoning_gym_per_s']):>20}")
    print(f"  ratio ours / reasoning-gym: {answers['ratio']:.1f}x (target >= {TARGET_CHECK_RATIO:.0f}x: {ok})")
    right = sum(r["right"] == "ours" for r in answers["disagreements"])
    print(
        f"  verdicts differing: {len(answers['disagreements'])} (ours right on {right}); wrong vs the exact judge: "
        f"ours {len(answers['ours_wrong'])}, reasoning-gym {answers['reasoning_gym_wrong']} of {answers['answers']}"
    )
    rejects = answers["reasoning_gym_default_config_rejects_correct"]
    print(
        f"  reasoning-gym with its default config (max_value=10) would reject {rejects} of the "
        f"{answers['correct_answers_accepted_widened']} right answers it accepts with max_value=13 (puzzles with 11-13)"
    )


def profile(
    env: Game24Env, traces: list[list[str]], workloads: dict[str, list[Episode]], answers: list[dict[str, Any]]
) -> None:
    """cProfile of the hot loops (the top functions by own time)."""

    def show(title: str, fn: Callable[[], None]) -> None:
        profiler = cProfile.Profile()
        profiler.runcall(fn)
        print(f"\n--- profile: {title}")
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(14)
        print("\n".join(line for line in stream.getvalue().splitlines()[4:] if line.strip()))

    valid = workloads["valid steps"]
    _run_episodes(env, valid)
    show("raw Game24Env, valid steps (warm cache), 3 passes", lambda: [_run_episodes(env, valid) for _ in range(3)])
    show("raw Game24Env, valid steps (cold cache), 1 pass", lambda: (_clear_step_cache(), _run_episodes(env, valid)))
    show("judge_answer over the answer set", lambda: [checker.judge_answer(a["text"], a["numbers"]) for a in answers])
    venv = SyncVectorEnv([functools.partial(gym.make, ENV_ID, split=env.split)] * 8)
    observations, _ = venv.reset(seed=0)
    policy = build_policy(env, len(traces), traces)
    show("SyncVectorEnv x8, 500 vector steps", lambda: _play(venv, observations, policy, 500))
    venv.close()


# --------------------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run (< 15 s): test split, 3 repeats, N=2 only")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 7; quick 3)")
    parser.add_argument("--split", choices=("train", "test", "all"), help="puzzles to use (default all; quick test)")
    parser.add_argument("--num-envs", help="comma-separated vector sizes (default 2,8; quick 2)")
    parser.add_argument("--vector-steps", type=int, help="vector steps per repeat (default 600; quick 100)")
    parser.add_argument("--rg-repeats", type=int, help="repeats of the slow reasoning-gym checker (default 3; quick 2)")
    parser.add_argument("--per-category", type=int, help="answers per adversarial category (default 6; quick 3)")
    parser.add_argument("--json", metavar="PATH", help="write every figure to this JSON file")
    parser.add_argument("--profile", action="store_true", help="also print cProfile tables of the hot loops")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")  # answers print × ÷ − even where stdout is ASCII
    quick = args.quick
    repeats = args.repeats or (3 if quick else 7)
    split = args.split or ("test" if quick else "all")
    sizes = [int(n) for n in (args.num_envs or ("2" if quick else "2,8")).split(",")]
    vector_steps = args.vector_steps or (100 if quick else 600)
    rg_repeats = args.rg_repeats or (2 if quick else 3)
    per_category = args.per_category or (3 if quick else 6)
    if repeats < 1 or vector_steps < 1 or rg_repeats < 1 or per_category < 1 or min(sizes) < 1:
        parser.error("--repeats, --vector-steps, --rg-repeats, --per-category and --num-envs must be positive")

    print(
        f"reason_gym {reason_gym.__version__}, gymnasium {gym.__version__}, Python {platform.python_version()}, ",
        end="",
    )
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    env = Game24Env(split=split)
    source = "Tree-of-Thoughts 24.csv" if getattr(env, "tot_order", False) else "generated puzzles (24.csv not found)"
    puzzles, traces, workloads = build_workloads(env)
    print(f"split {split!r}: {len(puzzles)} puzzles from {source}; {repeats} repeats per figure", flush=True)
    checks = {name: verify_workload(env, name, episodes) for name, episodes in workloads.items()}
    if any(checks.values()):
        print(f"!!! actions that did not behave as labelled: {checks}")
    gc.collect()
    gc.freeze()  # the benchmark's own data stays out of the garbage collector's full passes

    print("\n[1/3] one env: actions/s (CPU clock, resets subtracted, all cases interleaved)", flush=True)
    single, reference = measure_one_env({"raw": env, "make": gym.make(ENV_ID, split=split)}, workloads, repeats)
    valid = {
        f"{label}, {mode} cache": single[label]["workloads"][f"valid steps ({mode})"]["per_s"]
        for label in single
        for mode in ("cold", "warm")
    }
    headline = single["raw"]["workloads"]["valid steps (warm)"]
    target = {
        "target": TARGET_STEPS_PER_S,
        "headline": "raw Game24Env, warm cache, median",
        "figure": headline["per_s"],
        "met": (headline["per_s"] or 0) >= TARGET_STEPS_PER_S,
        "best_repeat": headline["per_s_best_repeat"],
        "wall_clock": headline["per_s_wall"],
        "valid_steps_per_s": valid,
        "met_each": {name: (rate or 0) >= TARGET_STEPS_PER_S for name, rate in valid.items()},
    }
    print(f"  target >= {TARGET_STEPS_PER_S:,} valid steps/s: {'MET' if target['met'] else 'NOT MET'}", flush=True)

    print("\n[2/3] vector envs: sub-env steps/s (3 steps, answer, autoreset per episode; interleaved)", flush=True)
    policy = build_policy(env, len(puzzles), traces)
    rows = measure_vectors(split, policy, traces, sizes, vector_steps, repeats)
    for row in rows:
        print(f"  {row['kind']:<10} x{row['num_envs']:<3} {_rate(row['steps_per_s']):>12} (wall clock)", flush=True)
    vector = {"rows": rows, "split": split}

    print("\n[3/3] answer checking: ours vs reasoning-gym on the same answers (CPU clock)", flush=True)
    answer_set = build_answers(puzzles, per_category)
    answers = compare_checkers(answer_set, repeats, rg_repeats)
    if "skipped" not in answers:
        print_disagreements(answers)

    report = {
        "meta": {
            "quick": quick,
            "repeats": repeats,
            "rg_repeats": rg_repeats,
            "split": split,
            "puzzles": len(puzzles),
            "source": source,
            "python": platform.python_version(),
            "gymnasium": gym.__version__,
            "reason_gym": reason_gym.__version__,
            "cpus": os.cpu_count(),
            "load_average_end": os.getloadavg()[0],
            "workload_label_failures": checks,
            "reference_loops_per_s": [round(r) for r in reference],
        },
        "single_env": single,
        "target": target,
        "vector": vector,
        "answers": answers,
    }
    print_summary(report)
    if args.profile:
        profile(env, traces, workloads, answer_set)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1, default=str)
        print(f"\nwrote {args.json}")
    broken = any(checks.values()) or answers.get("ours_wrong") or answers.get("construction_mismatches")
    broken = broken or not all(row.get("policy_ok", True) for row in rows)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
