"""What the code environments (HumanEval, MBPP) share: steps that run programs, answers judged by hidden tests.

An episode's steps are free text (thoughts, accepted as they are) or programs to try: a step that starts with
``Run:`` followed by a fenced Python block runs in :mod:`reason_gym.sandbox` against the problem's visible examples,
and what it printed, its traceback and each example's verdict become part of the observation. The final answer,
``Answer:`` with a fenced Python block, is judged on every hidden test: ``is_correct`` iff all pass, and the
``tests_passed`` component is the fraction that passed. Programs are only ever run in the sandbox.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any, ClassVar

from reason_gym.checkers.program_tests import defines, extract_code
from reason_gym.core import CHARSET, AnswerOutcome, EpisodeState, ReasoningEnv, StepOutcome
from reason_gym.parse import parse_python
from reason_gym.sandbox import Limits, RunResult, Sandbox, TestSuite, default_sandbox
from reason_gym.tasks import DatasetEnv

CODE_CHARSET = CHARSET + "➞≤’‘“”³²–…"
"""Printable ASCII plus the non-ASCII characters of HumanEval's and MBPP's prompts and tests."""
RUN_PREFIX = "Run:"
FORMAT_HINT = 'Try code with "Run:" and a ```python block; finish with "Answer:" and a ```python block.'
STEP_FORMAT = 'A thought (any text), or "Run:" and a ```python block that runs against the visible examples.'
ANSWER_FORMAT = '"Answer:" and a ```python block with the program, judged on every hidden test.'
_REPORT_CHARS = 1600
"""Room kept in a step's observation line for its run report (the code shown is cut first)."""


def is_run_step(step: str) -> bool:
    """Whether a step asks to run a program: it starts with ``Run:`` (any case)."""
    return step.lstrip()[:4].lower() == "run:"


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, keeping its start and its end (where errors are)."""
    if len(text) <= limit:
        return text
    kept = max(limit - 40, 0)  # room for the marker line
    head = kept // 3
    return f"{text[:head]}\n... ({len(text) - kept} characters cut) ...\n{text[len(text) - (kept - head) :]}"


def format_report(result: RunResult, kind: str) -> str:
    """What the observation says about a run: the verdict, each test (``kind``: "example"/"test"), the output."""
    verdict = f"Result: {result.status.value}"
    if result.tests:
        verdict += f", {result.num_passed} of {result.num_tests} {kind}s passed"
    lines = [verdict]
    if result.error and not result.error.endswith("tests failed"):
        lines.append(f"Error: {result.error}")
    for number, test in enumerate(result.tests[:8], 1):
        state = "passed" if test.passed else f"failed: {test.message}"
        lines.append(_clip(f"{kind.capitalize()} {number} ({test.name}) {state}", 300))
    if len(result.tests) > 8:
        lines.append(f"... and {len(result.tests) - 8} more")
    if result.output:
        more = " (truncated)" if result.output_truncated else ""
        lines.append(f"Output{more}:\n" + _clip(result.output.rstrip("\n"), 900))
    return _clip("\n".join(lines), _REPORT_CHARS)


def format_program_step(prefix: str, code: str, report: str, limit: int) -> str:
    """``prefix``, the program in a fenced block and the report, cutting the program (not the report) to fit."""
    room = limit - len(report) - len(prefix) - 20
    shown = code.rstrip("\n")
    if len(shown) > room:
        shown = shown[: max(room - 40, 0)] + f"\n# ... ({len(shown) - max(room - 40, 0)} characters not shown)"
    return f"{prefix}\n```python\n{shown}\n```\n{report}"


def defines_something(code: str) -> bool:
    """Whether ``code`` parses on its own and defines a function or class at its top level (a whole program)."""
    try:
        tree = parse_python(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for node in tree.body)


def _with_note(report: str, note: str) -> str:
    if not note:
        return report
    first, _, rest = report.partition("\n")
    return f"{first}\nError: {note}" + (f"\n{rest}" if rest else "")


class CodeTaskEnv(DatasetEnv):
    """Base class of the code environments (see the module docstring); tasks provide problems and programs.

    Subclasses implement the data hooks of :class:`~reason_gym.tasks.DatasetEnv`, the problem hooks of
    :class:`~reason_gym.core.ReasoningEnv` (validating, questions, ids) and :meth:`_program`; every problem record
    they return holds ``"tests"`` and ``"examples"`` (:class:`~reason_gym.sandbox.TestSuite`) and ``"entry_point"``.
    """

    charset = CODE_CHARSET
    max_question_chars = 6144
    max_step_chars = 4096
    default_reward_weights: ClassVar[Mapping[str, float]] = {
        **ReasoningEnv.default_reward_weights,
        "tests_passed": 0.0,
    }

    def __init__(
        self, *, timeout: float = 5.0, sandbox: Sandbox | None = None, max_steps: int = 8, **kwargs: Any
    ) -> None:
        if sandbox is not None and not isinstance(sandbox, Sandbox):
            raise ValueError(f"sandbox must be a reason_gym.sandbox.Sandbox or None, got {type(sandbox).__name__}")
        self.limits = Limits(timeout=timeout)  # raises ValueError for a bad timeout
        if sandbox is None:
            default_sandbox()  # fails closed now, at construction, where this machine cannot isolate programs
        self._sandbox = sandbox
        self._last_run: tuple[str, RunResult | None] | None = None
        super().__init__(max_steps=max_steps, **kwargs)  # the data-set arguments, then the data

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox programs run in (the process-wide default unless one was given)."""
        return self._sandbox or default_sandbox()

    # ------------------------------------------------------------------ the Gymnasium API

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """As :meth:`ReasoningEnv.step`; ``info["status"]`` says what became of the step.

        ``"thought"`` (text, accepted), ``"invalid"`` (rejected), or the sandbox's status of a run or an answer
        (``"passed"``, ``"failed"``, ``"timeout"``, ...), with ``info["tests"]``: ``(name, passed, message)`` for
        each example or hidden test, and ``info["output"]``: what the program printed.
        """
        self._last_run = None
        observation, reward, terminated, truncated, info = super().step(action)
        if self._last_run is None:
            info["status"] = "invalid" if "error" in info else "thought"
        else:
            _, result = self._last_run
            info["status"] = result.status.value if result else "failed"
            if result is not None:
                info["tests"] = [(t.name, t.passed, t.message) for t in result.tests]
                info["output"] = result.output
                info["run_time"] = result.wall_time
        return observation, reward, terminated, truncated, info

    # ------------------------------------------------------------------ hooks

    def _program(self, problem: Mapping[str, Any], code: str) -> str:
        """The program to run for submitted ``code`` (HumanEval joins it to the prompt)."""
        raise NotImplementedError

    def _missing_entry_point(self, problem: Mapping[str, Any], code: str) -> str:
        """A note for the observation when ``code`` is a whole program without the entry point, else ``""``.

        Only a note: the tests decide (a program may define the function in a way the check cannot see).
        """
        if defines(code, problem["entry_point"]) or not defines_something(code):
            return ""
        return f"the program does not define `{problem['entry_point']}`"

    def _initial_task_state(self, problem: Mapping[str, Any]) -> int:
        return 0  # the number of programs run so far

    def _apply_step(self, state: EpisodeState, step: str) -> StepOutcome:
        if not is_run_step(step):
            return StepOutcome(step, state.task)  # a thought: accepted as it is
        code = extract_code(_after_prefix(step.lstrip()[len(RUN_PREFIX) :]))
        if not code.strip():
            return StepOutcome("", state.task, 'a "Run:" step needs a program: a ```python block after "Run:"')
        result = self._run(state.problem, code, state.problem["examples"], main=True)
        self._last_run = ("run", result)
        report = _with_note(format_report(result, "example"), self._missing_entry_point(state.problem, code))
        return StepOutcome(format_program_step(RUN_PREFIX, code, report, self.max_step_chars), state.task + 1)

    def _judge_answer(self, state: EpisodeState, answer: str) -> AnswerOutcome:
        code = extract_code(_after_prefix(answer))
        if not code.strip():
            self._last_run = ("answer", None)
            return AnswerOutcome(False, "Answer: (no program)", "the answer has no program", {"tests_passed": 0.0})
        result = self._run(state.problem, code, state.problem["tests"], main=False)
        self._last_run = ("answer", result)
        summary = f"Result: {result.status.value}, {result.num_passed} of {result.num_tests} tests passed"
        note = self._missing_entry_point(state.problem, code)
        line = format_program_step("Answer:", code, _with_note(summary, note), self.max_step_chars)
        error = "" if result.passed else "; ".join(filter(None, (note, result.error)))
        return AnswerOutcome(result.passed, line, error, {"tests_passed": result.fraction_passed})

    def _run(self, problem: Mapping[str, Any], code: str, tests: TestSuite, main: bool) -> RunResult:
        return self.sandbox.run(self._program(problem, code), tests, limits=self.limits, main=main)


def _after_prefix(text: str) -> str:
    """The text after ``Answer:`` / ``Run:``, without the blanks that separate a program starting on the prefix's own
    line from the prefix (``Answer: def f(x): ...`` is ``def f(x): ...``, not an indented line). A program on the
    next lines keeps its indentation (a HumanEval body)."""
    first, newline, rest = text.partition("\n")
    return first.lstrip(" \t") + newline + rest if first.strip() else text
