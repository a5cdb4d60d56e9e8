"""The reasoning MDP as a Gymnasium environment.

State ``s_t = (Q, R_1..R_{t-1})``: the question and the accepted reasoning steps so far. Action ``a_t``: one text
step, or the final answer, a line starting with ``Answer:``. The transition appends the step; the reward is a
weighted sum of named components from the task's checker (and an optional process reward model).

Observation format (plain text; a chat-template wrapper turns it into messages for instruct models)::

    <question, one or more lines>
    <accepted step 1>
    <accepted step 2>
    Answer: <final answer>          (only once the episode has terminated)

Steps are joined by newlines; a step may itself span lines (a program, its output), so the exact steps are in
``env.steps`` and ``get_state().steps``.

Tasks subclass :class:`ReasoningEnv` and implement the hooks at the bottom of the class: how problems are
chosen, how a step changes the task state, and how a final answer is judged. Everything else (spaces, option
checking, reward components, step limits, branching for planners, rendering) lives here once.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import operator
import re
import string
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

from reason_gym.spaces import TextSpace as TextSpace

CHARSET = "".join(c for c in string.printable if c not in "\x0b\x0c") + "×÷−"
"""The default characters of observations: printable ASCII, newline, tab, and the operator symbols tasks use.
Text that comes from outside (answers echoed back, data-set questions) is cleaned into the env's ``charset``, so
every observation is inside ``observation_space``. Tasks that need more characters extend ``charset``."""

ANSWER_PREFIX = "Answer:"

ProcessRewardModel = Callable[[str, Sequence[str]], Sequence[float]]
"""A plain PRM scores every step of a solution from its text: ``prm(question, steps) -> one float per step``
(learned PRMs from outside, such as Hugging Face models). PRMs that read the structured problem are
:class:`StatePRM`; anything that takes a ``prm`` accepts both (see :func:`prm_scores`)."""


@cache
def _outside(charset: str) -> re.Pattern[str]:
    return re.compile(f"[^{re.escape(charset)}]")


def clean_text(text: str, charset: str = CHARSET) -> str:
    """Replaces every character outside ``charset`` with ``?`` (and drops carriage returns).

    >>> clean_text("2 ≤ x")
    '2 ? x'
    """
    return _outside(charset).sub("?", text.replace("\r", ""))


def is_final_answer(action: str) -> bool:
    """Whether an action is a final answer: its text starts with ``Answer:`` (any case, leading space allowed)."""
    if action[:1].isspace():
        action = action.lstrip()
    return action[:7].lower() == "answer:"


def reject_unknown(what: str, given: Iterable[str], accepted: Iterable[str]) -> None:
    """Raises a ``ValueError`` naming the unknown keys and the accepted ones."""
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; accepted: {sorted(accepted)}")


def as_integer(value: Any) -> int | None:
    """``value`` as an int if it is an integer (Python's, numpy's, a 0-d integer array), else ``None``: never a
    bool (True is no index or move), a float or a string, which ``int()`` would quietly turn into a number."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # refuses numpy's bools, floats and arrays of more than one value itself
    except TypeError:
        return None


def check_index(index: Any, count: int | None, split: str | None) -> int:
    """A reset option ``index`` checked: an integer (numpy's too), not a bool, in ``[0, count)`` (``>= 0`` when
    ``count`` is ``None``: a sequence without end); a ``ValueError`` otherwise.

    >>> check_index(True, 10, "test")
    Traceback (most recent call last):
    ...
    ValueError: index must be an int in [0, 10) for split 'test', got True
    """
    value = as_integer(index)
    if count is None:
        if value is None or value < 0:
            raise ValueError(f"index must be an int >= 0 (the sequence has no end), got {index!r}")
    elif value is None or not 0 <= value < count:
        raise ValueError(f"index must be an int in [0, {count}) for split {split!r}, got {index!r}")
    return value


GENERIC_SYSTEM_PROMPT = (
    "Solve the problem step by step, one step per line. When you know the final answer, write it on one line as "
    "`Answer: <answer>`."
)
"""The system prompt of tasks that declare no step language of their own."""


@dataclass(frozen=True)
class TaskSpec:
    """What an agent needs to know about a task, declared by the task's environment as data.

    Policies, prompts and PRMs read it (``env.unwrapped.task``, ``get_state().spec``)
    instead of recognising a task by the wording of its questions: rewording a question changes nothing here.

    Attributes:
        name: A short name of the task (``"game24"``).
        env_id: The Gymnasium id the task is registered under; scorers and scripted policies build a scratch env of
            the task from it (see :func:`scratch_env`).
        description: What the task asks, in one paragraph.
        system_prompt: The system prompt for instruct models: the step and answer formats, with examples.
        step_format: The language of a reasoning step.
        answer_format: The language of the final answer line.
        question_lines: How many lines of an observation the question fills, where that is fixed (so a state string
            splits into the question and its steps); ``None`` where it varies (data-set questions span lines).
        step_checks: The reward components that check a step (computed when their weight is non-zero).
        exact_step_check: The step check that labels every accepted step exactly (rejected steps are 0), or
            ``None``: a rule-based PRM replays steps through it. Partial checks (stated arithmetic in free text) are
            not exact.
    """

    name: str
    env_id: str | None
    description: str
    system_prompt: str = GENERIC_SYSTEM_PROMPT
    step_format: str = "One reasoning step: any non-empty text."
    answer_format: str = "One line `Answer: <answer>`."
    question_lines: int | None = None
    step_checks: tuple[str, ...] = ()
    exact_step_check: str | None = None

    def __post_init__(self) -> None:
        if self.exact_step_check is not None and self.exact_step_check not in self.step_checks:
            raise ValueError(
                f"exact_step_check {self.exact_step_check!r} must be one of step_checks {self.step_checks}"
            )
        if self.question_lines is not None and self.question_lines < 1:
            raise ValueError(f"question_lines must be >= 1 or None, got {self.question_lines!r}")

    def split(self, observation: str) -> tuple[str, list[str]]:
        """An observation's question and steps, by :attr:`question_lines` (all question where it is ``None``).

        Exact for tasks whose steps are one line each; the exact steps of a state are in ``EpisodeState.steps``.
        """
        if self.question_lines is None:
            return observation, []
        lines = observation.split("\n")
        return "\n".join(lines[: self.question_lines]), lines[self.question_lines :]


class EpisodeState(NamedTuple):
    """A snapshot of an episode: immutable, cheap to take and picklable (see :meth:`ReasoningEnv.get_state`).

    Attributes:
        problem: The task's record of the problem (its own data format).
        problem_id: A stable identifier of the problem.
        question: The question text, the first part of every observation.
        steps: The accepted steps (and, at the end, the final answer) as they appear in the observation.
        observation: The current observation string: the question and the steps, joined by newlines.
        num_actions: Actions taken so far, valid or not (the step limit counts these).
        done: Whether the episode has terminated or been truncated.
        task: The task's own immutable state (e.g. the numbers left in Game of 24).
        spec: What the task declares about itself (:class:`TaskSpec`): prompts and PRMs read it from the state.
    """

    problem: Mapping[str, Any]
    problem_id: str
    question: str
    steps: tuple[str, ...]
    observation: str
    num_actions: int
    done: bool
    task: Any
    spec: TaskSpec | None = None


@runtime_checkable
class StatePRM(Protocol):
    """A process reward model that reads the structured state: the task's spec, the problem record and the steps.

    ``score_state(state)`` returns one float per step of ``state.steps`` (the solution prefix to score) for the
    problem ``state.problem`` of the task ``state.spec``; it never parses the question text.
    """

    def score_state(self, state: EpisodeState) -> Sequence[float]: ...


PRM = StatePRM | ProcessRewardModel
"""Either kind of PRM: what ``prm=`` arguments accept."""


def prm_scores(prm: PRM, state: EpisodeState) -> list[float]:
    """A PRM's scores of ``state.steps``, one per step: a :class:`StatePRM` reads the state, a plain
    ``prm(question, steps)`` the question text and the steps (the adapter for PRMs from outside).

    Raises:
        ValueError: The PRM returned a score count other than the step count.
    """
    score_state = getattr(prm, "score_state", None)
    scores = score_state(state) if score_state is not None else prm(state.question, state.steps)  # type: ignore[operator]
    if isinstance(scores, (str, bytes, Mapping)) or not isinstance(scores, Sized):
        raise ValueError(f"the prm must return a sequence of floats, one per step, got {type(scores).__name__}")
    if len(scores) != len(state.steps):
        raise ValueError(f"the prm returned {len(scores)} scores for {len(state.steps)} steps")
    return [_finite_real(score, "a prm score") for score in scores]


def _is_real(value: Any) -> bool:
    """A real number (numpy's too), not a bool: what a reward weight or a PRM score may be."""
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def _finite_real(value: Any, what: str) -> float:
    """``value`` as a float if it is a finite real number (numpy's too), else a ``ValueError`` naming ``what``: a
    bool, a string or nan would each become a reward silently (True as 1.0, "0.5" parsed, nan poisoning every
    return)."""
    if not _is_real(value):
        raise ValueError(f"{what} must be a real number, got {value!r} ({type(value).__name__})")
    if not math.isfinite(float(value)):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return float(value)


def task_env_class(spec: TaskSpec) -> type[ReasoningEnv]:
    """The environment class of a task, from its spec's registered ``env_id``.

    Raises:
        ValueError: The spec names no registered env.
    """
    if spec.env_id is None or spec.env_id not in gym.registry:
        raise ValueError(f"the task {spec.name!r} names no registered env (env_id={spec.env_id!r})")
    creator = gym.registry[spec.env_id].entry_point
    return load_env_creator(creator) if isinstance(creator, str) else creator  # type: ignore[return-value]


def scratch_env(spec: TaskSpec, problem: Mapping[str, Any], **kwargs: Any) -> ReasoningEnv:
    """A fresh env of a task that can play ``problem`` (injected with ``reset(options={"problem": ...})``).

    Built from the spec's ``env_id`` with the task's own :meth:`ReasoningEnv.scratch_kwargs` (e.g. no data file to
    load) and ``kwargs``; for scorers and scripted policies that replay steps through the task's exact checks.

    Raises:
        ValueError: The spec names no registered env.
    """
    cls = task_env_class(spec)
    return cls(**{**cls.scratch_kwargs(problem), **kwargs})


class StepOutcome(NamedTuple):
    """What a task reports for a reasoning step (see :meth:`ReasoningEnv._apply_step`).

    Attributes:
        line: The canonical text appended to the observation; empty for a rejected step.
        task: The new task state (the old one for a rejected step).
        error: Why the step was rejected; empty when it was accepted.
        components: Task-specific reward components of this step.
    """

    line: str
    task: Any
    error: str = ""
    components: Mapping[str, float] | None = None


class AnswerOutcome(NamedTuple):
    """What a task reports for a final answer (see :meth:`ReasoningEnv._judge_answer`).

    Attributes:
        correct: Whether the answer is right.
        line: The text appended to the observation (``Answer: ...``).
        error: Why the answer is wrong, where the checker can say.
        components: Task-specific reward components of the answer.
    """

    correct: bool
    line: str
    error: str = ""
    components: Mapping[str, float] | None = None


class ReasoningEnv(gym.Env[str, str]):
    """Base class of every reasoning environment.

    Rewards:
        Each step's reward is ``sum(weights[k] * components[k])`` over named components, all reported in
        ``info["reward_components"]``. The components every task has:

        - ``outcome``: 1.0 for a correct final answer, else 0.0 (default weight 1.0);
        - ``invalid_step``: 1.0 when a step is rejected and the state is unchanged (default weight -0.1);
        - ``prm``: the process reward model's score of the step just accepted, only when a ``prm`` is given
          (default weight 1.0).

        Tasks add their own (documented in each task's docstring); weights are set with ``reward_weights``.
        A component whose weight is 0 and that costs work to compute (``prm``, a task's optional step check)
        is skipped.

    Episode end:
        ``terminated`` only at a final answer; ``truncated`` only when ``max_steps`` actions have been taken
        without one.

    Arguments:
        max_steps: The step limit (counting every action, valid or not).
        reward_weights: Overrides of the default weight of any component.
        prm: A process reward model scoring each step, the newest step's score becoming the ``prm`` component: a
            :class:`StatePRM` (``prm.score_state(state)``, reading the structured state) or a plain
            ``prm(question, steps) -> list[float]`` (see :func:`prm_scores`).
        render_mode: ``None`` or ``"ansi"`` (``render()`` returns the observation and the last reward).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}
    default_reward_weights: ClassVar[Mapping[str, float]] = {"outcome": 1.0, "invalid_step": -0.1, "prm": 1.0}
    splits: ClassVar[tuple[str, ...]] = ()
    """The named splits the task's problems come in (empty for purely procedural tasks)."""
    split: str | None = None
    """The split problems are drawn from when ``reset`` names none (``None`` for tasks without splits)."""
    charset: ClassVar[str] = CHARSET
    """Every character observations may contain (see :data:`CHARSET`)."""
    max_question_chars: ClassVar[int] = 4096
    max_step_chars: ClassVar[int] = 512
    """Steps and answers are cut to this many characters in observations (so observations stay bounded)."""
    max_action_chars: ClassVar[int] = 8192
    """Longer actions are rejected unread (so every action is judged in bounded time)."""
    task: ClassVar[TaskSpec] = TaskSpec(
        name="reasoning", env_id=None, description="Solve the problem step by step, then give the final answer."
    )
    """What agents need to know about the task (formats, system prompt, step checks): each task declares its own.
    It also travels in every state (``get_state().spec``)."""

    def __init__(
        self,
        *,
        max_steps: int,
        reward_weights: Mapping[str, float] | None = None,
        prm: PRM | None = None,
        render_mode: str | None = None,
    ) -> None:
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int, got {max_steps!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if prm is not None and not (callable(prm) or callable(getattr(prm, "score_state", None))):
            raise ValueError("prm must be a callable (question, steps) -> list[float] or have score_state(state)")
        if reward_weights is not None and not isinstance(reward_weights, Mapping):
            raise ValueError(
                f"reward_weights must be a dict {{component: weight}}, got {type(reward_weights).__name__}"
            )
        weights = dict(self.default_reward_weights)
        reject_unknown("reward component", reward_weights or {}, weights)
        weights.update({name: _finite_real(w, f"reward weight {name!r}") for name, w in (reward_weights or {}).items()})
        self.reward_weights: Mapping[str, float] = weights
        self.max_steps = max_steps
        self.prm = prm
        self.render_mode = render_mode
        max_obs = self.max_question_chars + (max_steps + 1) * (self.max_step_chars + 1)
        self.observation_space = TextSpace(max_length=max_obs, min_length=0, charset=self.charset)
        self.action_space = TextSpace(max_length=self.max_action_chars, min_length=0, charset=self.charset)
        self._state: EpisodeState | None = None
        self._last_reward: tuple[float, Mapping[str, float]] | None = None

    # ------------------------------------------------------------------ the Gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Starts an episode on a problem chosen by ``options`` (else drawn with ``self.np_random``).

        Options:
            ``{"index": i}`` or ``{"index": i, "split": s}``: the i-th problem of the split, in file order;
            ``{"split": s}``: a random problem of that split;
            ``{"problem": record}``: a problem given in the task's own record format;
            with ``"hint": True``, the question ends with the problem's reference answer (:meth:`reference_answer`;
            a ValueError where it has none): STaR's rationalization generates steps conditioned on it.
        """
        super().reset(seed=seed)
        if options is not None and not isinstance(options, Mapping):
            raise TypeError(f"options must be a dict (index, split, problem, hint), got {type(options).__name__}")
        options = dict(options or {})
        reject_unknown("reset option", options, ("index", "split", "problem", "hint"))
        if not isinstance(hint := options.pop("hint", False), bool):
            raise ValueError(f"the 'hint' option is True or False, got {hint!r}")
        if "problem" in options:
            if len(options) > 1:
                raise ValueError("the 'problem' option cannot be combined with 'index' or 'split'")
            problem = self._validate_problem(options["problem"])
        else:
            problem = self._choose_problem(options.get("index"), options.get("split"))
        self._state = self._initial_state(problem, hint)
        self._last_reward = None
        return self._state.observation, {"problem_id": self._state.problem_id}

    def start_from(self, state: EpisodeState) -> str:
        """Starts a fresh episode (no steps) on the problem of ``state``, a state of this task, and returns its
        observation: its record is used as validated, so scorers and scripted policies replay steps from any state's
        problem. The random generator is not touched."""
        self._state = self._initial_state(state.problem)
        self._last_reward = None
        return self._state.observation

    def _initial_state(self, problem: Mapping[str, Any], hint: bool = False) -> EpisodeState:
        question = clean_text(self._question(problem), self.charset)
        if hint:  # on the question's last line, so a fixed number of question lines stays fixed
            if (reference := self.reference_answer(problem)) is None:
                raise ValueError(f"{self.task.name} problems have no reference answer to hint at")
            question += clean_text(f" (Hint: the answer is {reference}.)", self.charset)
        if len(question) > self.max_question_chars:
            raise ValueError(f"the question is longer than {self.max_question_chars} characters")
        return EpisodeState(
            problem=problem,
            problem_id=self._problem_id(problem),
            question=question,
            steps=(),
            observation=question,
            num_actions=0,
            done=False,
            task=self._initial_task_state(problem),
            spec=self.task,
        )

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Takes one reasoning step or, for a line starting with ``Answer:``, the final answer.

        Any string is accepted: steps the task rejects earn the ``invalid_step`` penalty and change nothing.
        """
        state = self._state
        if state is None or state.done:
            state = self._require_running()  # raises
        if not isinstance(action, str):
            raise TypeError(f"an action is a str, got {type(action).__name__}")
        components: dict[str, float] = {"outcome": 0.0, "invalid_step": 0.0}
        info: dict[str, Any] = {"problem_id": state.problem_id, "reward_components": components}
        observation, steps, task = state.observation, state.steps, state.task
        terminated = is_final_answer(action)
        if terminated:
            verdict = self._judge(state, action)
            components["outcome"] = float(verdict.correct)
            components.update(verdict.components or {})
            steps += (self._fit_step(verdict.line),)
            observation = f"{observation}\n{steps[-1]}"
            info["is_correct"] = verdict.correct
            if verdict.error:
                info["error"] = verdict.error
        else:
            if len(action) > self.max_action_chars:
                outcome = StepOutcome("", task, self._too_long)
            else:
                outcome = self._apply_step(state, action.strip())
            if outcome.components:
                components.update(outcome.components)
            if outcome.error:
                components["invalid_step"] = 1.0
                info["error"] = outcome.error
                for name, value in self._rejected_components().items():  # the same keys on every path
                    components.setdefault(name, value)
            else:
                line = outcome.line
                if not (line.isascii() and line.isprintable() and len(line) <= self.max_step_chars):
                    line = self._fit_step(line)
                steps += (line,)
                observation = f"{observation}\n{line}"
                task = outcome.task
        num_actions = state.num_actions + 1
        truncated = not terminated and num_actions >= self.max_steps
        done = terminated or truncated
        new_state = EpisodeState(
            state.problem, state.problem_id, state.question, steps, observation, num_actions, done, task, state.spec
        )
        if not terminated and not components["invalid_step"] and self.prm is not None and self.reward_weights["prm"]:
            components["prm"] = prm_scores(self.prm, new_state)[-1]  # the PRM reads the state with the new step
        self._state = new_state
        reward = 0.0
        for name, value in components.items():
            reward += self.reward_weights[name] * value
        self._last_reward = (reward, components)
        return observation, reward, terminated, truncated, info

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the observation, then the step count and the last reward's components."""
        if self.render_mode != "ansi" or self._state is None:
            return None
        status = f"[step {self._state.num_actions}/{self.max_steps}]"
        if self._last_reward is not None:
            reward, components = self._last_reward
            parts = ", ".join(f"{name}={value:g}" for name, value in components.items())
            status += f" reward={reward:g} ({parts})"
        return f"{self._state.observation}\n{status}\n"

    # ------------------------------------------------------------------ branching, for planners

    def get_state(self) -> EpisodeState:
        """The current episode state: immutable and picklable; restore it with :meth:`set_state`."""
        return self._require_state()

    def set_state(self, state: EpisodeState) -> None:
        """Restores a state taken with :meth:`get_state` (of this env or a clone of it)."""
        if not isinstance(state, EpisodeState):
            raise TypeError(f"set_state takes an EpisodeState from get_state(), got {type(state).__name__}")
        self._state = state
        self._last_reward = None

    def clone(self) -> ReasoningEnv:
        """An independent copy in the same state, with its own copy of the random generator.

        Problem data and the PRM are shared, not copied: they are read-only.
        """
        twin = copy.copy(self)
        twin._np_random = copy.deepcopy(self._np_random)
        return twin

    # ------------------------------------------------------------------ capabilities planners and trainers use

    @property
    def available_splits(self) -> tuple[str, ...]:
        """The splits this instance can serve (:attr:`splits`, or a subset of them)."""
        return self.splits

    def split_indices(self, split: str | None = None) -> Sequence[int] | None:
        """The problems of a split (default: the env's), in order: ``reset(options={"index": i, "split": split})``
        plays the ``i``-th of them, so ``len(split_indices(s))`` problems can be addressed.

        ``None`` (the default) where the task has no fixed list of problems (procedural tasks): any index ``>= 0``
        may then be valid. Data-backed tasks (:class:`~reason_gym.tasks.DatasetEnv`) return their rows.
        """
        return None

    def candidate_actions(self) -> list[str | None] | None:
        """Every legal next action at fixed positions (``None`` where a position has none), or ``None`` (the
        default) where the task does not list its moves. The list has :attr:`max_candidates` positions."""
        return None

    @property
    def max_candidates(self) -> int | None:
        """The length of :meth:`candidate_actions` lists, or ``None`` where the task does not list its moves."""
        return None

    def canonical_state(self) -> Hashable | None:
        """A key equal for states that are the same for the task (planners merge them), or ``None``.

        The base class knows no such key; tasks override it (Game of 24: the multiset of numbers left).
        """
        return None

    def answer_key(self, answer: str) -> Hashable | None:
        """A key equal for final answers the task deems equivalent (majority votes group by it), or ``None``.

        ``answer`` is the text after ``Answer:``. The base class knows no key; tasks override it.
        """
        return None

    @property
    def steps(self) -> list[str]:
        """The accepted steps (and final answer) of the current episode, in order."""
        return list(self._require_state().steps)

    # ------------------------------------------------------------------ helpers

    def _require_state(self) -> EpisodeState:
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before using the environment")
        return self._state

    def _require_running(self) -> EpisodeState:
        state = self._require_state()
        if state.done:
            raise gym.error.ResetNeeded("the episode has ended: call reset() before step()")
        return state

    def _check_split(self, split: str | None) -> str:
        """``split`` (default: the env's own) if it is one of :attr:`available_splits`, else a ``ValueError``."""
        split = self.split if split is None else split
        if split not in self.available_splits:
            raise ValueError(f"split must be one of {self.available_splits}, got {split!r}")
        return split

    def _fit_step(self, text: str) -> str:
        """A step as the observation shows it: foreign characters become ``?`` and it is cut to length."""
        if not (text.isascii() and text.isprintable()):  # fast path: the one-line canonical steps tasks write
            text = clean_text(text, self.charset)
        return text if len(text) <= self.max_step_chars else text[: self.max_step_chars - 3] + "..."

    def _judge(self, state: EpisodeState, action: str) -> AnswerOutcome:
        answer = action.lstrip()[len(ANSWER_PREFIX) :]
        if len(action) > self.max_action_chars:  # a placeholder no checker reads as an answer, on one line
            return AnswerOutcome(False, f"{ANSWER_PREFIX} [not judged: too long]", self._too_long)
        return self._judge_answer(state, answer)

    @property
    def _too_long(self) -> str:
        return f"longer than {self.max_action_chars} characters"

    def _rejected_components(self) -> dict[str, float]:
        """The step checks a rejected step reports (0.0), so that every step reports the same keys whatever
        rejected it: those the task computes, i.e. weighted non-zero. Tasks that always report one extend it."""
        return {name: 0.0 for name in self.task.step_checks if self.reward_weights.get(name)}

    @classmethod
    def scratch_kwargs(cls, problem: Mapping[str, Any]) -> dict[str, Any]:
        """Constructor arguments of a light env of this task that can play ``problem`` when it is injected (see
        :func:`scratch_env`); tasks override it to skip loading data they do not need."""
        return {}

    @classmethod
    def accepted_kwargs(cls) -> list[str]:
        """The constructor's keyword arguments (for error messages)."""
        names: list[str] = []
        for klass in cls.__mro__:
            if "__init__" in vars(klass) and klass is not gym.Env:
                params = inspect.signature(vars(klass)["__init__"]).parameters.values()
                names += [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in names]
        return names

    # ------------------------------------------------------------------ task hooks

    def _choose_problem(self, index: int | None, split: str | None) -> Mapping[str, Any]:
        """The problem for ``reset``: the ``index``-th of ``split`` when given, else drawn with ``self.np_random``."""
        raise NotImplementedError

    def _validate_problem(self, record: Any) -> Mapping[str, Any]:
        """Checks an injected record in the task's own format; raises ``ValueError`` saying what is expected."""
        raise NotImplementedError

    def _question(self, problem: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def reference_answer(self, problem: Mapping[str, Any]) -> str | None:
        """The text of a correct answer to ``problem`` (what follows ``Answer:``), or None for tasks without one
        (many answers are right, or the judge runs tests)."""
        return None

    def _problem_id(self, problem: Mapping[str, Any]) -> str:
        raise NotImplementedError

    def _initial_task_state(self, problem: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def _apply_step(self, state: EpisodeState, step: str) -> StepOutcome:
        """Checks a reasoning step (already stripped) and returns the new task state, or why it is rejected."""
        raise NotImplementedError

    def _judge_answer(self, state: EpisodeState, answer: str) -> AnswerOutcome:
        """Judges the final answer (the text after ``Answer:``)."""
        raise NotImplementedError
