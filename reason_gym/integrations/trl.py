"""TRL's ``GRPOTrainer`` on any reason_gym environment: datasets of a task's problems and reward functions.

Nothing here imports torch or TRL: :func:`make_dataset` imports ``datasets`` when it is called, and the reward
functions are plain Python with TRL's signature, ``f(prompts, completions, **columns) -> list[float | None]``.

- :func:`make_dataset`: the first ``limit`` problems of a split, in the env's own order (row ``i`` is
  ``reset(options={"index": i})``), with a ``prompt`` column (the question as plain text, or as chat messages with
  the task's system prompt) and the columns that identify each problem (:data:`PROBLEM_COLUMNS`).
- :func:`make_reward_funcs`: reward functions that score a whole completion through the env, step by step: the
  completion is cut into actions (:func:`split_completion`), each is sent to ``env.step`` in order until the
  episode ends, and the reward is the episode's return (``total``) or one named component's share of it.
- :func:`process_reward_funcs`: the same names, for completions a ``rollout_func`` already played through the env
  (``agents.integrations.trl``): they add up the per-step rewards the rollout returned.
- TRL's ``environment_factory`` (tool calling) is in :mod:`reason_gym.integrations.trl_tools`.

A completion scored here earns exactly what the env's own ``step`` gives for its actions: there is no second
scorer. A completion that is not text (``None``, a tool call without content) is one empty action, which the env
scores as it scores any garbage step; nothing a model writes makes a reward function raise.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any, NamedTuple

import gymnasium as gym

from reason_gym.core import as_integer, is_final_answer

PROBLEM_COLUMNS = ("problem", "problem_id", "index", "split")
"""The columns of :func:`make_dataset` that identify a problem: ``problem``, the task's record as JSON (what
``reset(options={"problem": ...})`` takes), ``problem_id`` (the env's id, checked when the problem is rebuilt),
``index`` and ``split`` (``reset(options={"index": index, "split": split})``; ``None`` for procedural tasks that
take no index). A reward function needs ``index`` or ``problem``."""

TOTAL = "total"
"""The name of the reward function that returns the episode's return (TRL logs it as ``rewards/total/mean``)."""

RewardFunc = Callable[..., list[float | None]]


def check_env_id(env_id: str) -> str:
    """``env_id`` if it is registered (``"reason_gym:reason_gym/Game24-v0"`` imports its module first).

    Raises:
        ValueError: It is not registered; the message names it and lists the reason_gym ids.
    """
    import reason_gym  # noqa: F401  (registers the environments)

    if not isinstance(env_id, str):
        raise ValueError(f"env_id must be a string such as 'reason_gym/Game24-v0', got {env_id!r}")
    module, _, name = env_id.rpartition(":")
    if module:
        import importlib

        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"env id {env_id!r}: cannot import its module {module!r} ({error})") from None
    if name not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("reason_gym/"))
        raise ValueError(f"env id {env_id!r} is not registered; registered reason_gym ids: {known}")
    return env_id


def check_count(name: str, value: Any, minimum: int = 1) -> int:
    """A count setting (``max_step_tokens``, ``max_turns``, ...) checked: an int (not a bool) ``>= minimum``.

    >>> check_count("max_turns", 1.5)
    Traceback (most recent call last):
    ...
    ValueError: max_turns must be an int >= 1, got 1.5
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def make_env(env_id: str, **env_kwargs: Any) -> gym.Env:
    """``gymnasium.make(env_id, **env_kwargs)`` after :func:`check_env_id`.

    Raises:
        ValueError: An unregistered id, or arguments the env does not take (a ``TypeError`` of its constructor,
            such as a missing required argument, is raised as a ``ValueError`` naming the env and its arguments).
    """
    check_env_id(env_id)
    try:
        return gym.make(env_id, **env_kwargs)
    except TypeError as error:
        raise ValueError(f"{env_id} cannot be built with the arguments {sorted(env_kwargs)}: {error}") from None


# --------------------------------------------------------------------------------------------------- datasets


def question_messages(question: str, system_prompt: str) -> list[dict[str, str]]:
    """The chat messages of a question: the task's system prompt, then the question as the user's message.

    >>> question_messages("What is 1 + 2?", "Answer briefly.")[1]
    {'role': 'user', 'content': 'What is 1 + 2?'}
    """
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": question}]


def plain_prompt(question: str) -> str:
    """The plain-text prompt of a question: the question, then the step separator (the format the embedded model
    was trained on, ``agents.policies.prompts.RawPrompt``)."""
    return question + "\n"


def problem_json(problem: Mapping[str, Any]) -> str:
    """A problem record as JSON: tuples become lists; values JSON cannot hold (objects the env derives from the
    record, such as a code task's test suites) are left out."""
    kept = {}
    for key, value in problem.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        kept[str(key)] = value
    return json.dumps(kept)


def make_dataset(
    env_id: str,
    *,
    split: str | None = None,
    limit: int | None = None,
    conversational: bool = False,
    **env_kwargs: Any,
) -> Any:
    """A ``datasets.Dataset`` of a task's problems for TRL, row ``i`` being ``reset(options={"index": i})``.

    Columns: ``prompt`` (the question and a newline, or with ``conversational`` the chat messages: the task's
    system prompt and the question) and :data:`PROBLEM_COLUMNS`. Procedural tasks that take no index (Game24 with
    ``source="procedural"``) number their rows by seed instead (row ``i`` is ``reset(seed=i)``, ``index`` None).

    Args:
        env_id: A registered id, e.g. ``"reason_gym/Game24-v0"``.
        split: The split (default: the env's own).
        limit: At most this many problems (the first ones); required where the task has no fixed list.
        conversational: Chat messages instead of plain text in ``prompt``.
        **env_kwargs: For ``gymnasium.make`` (data paths, the source, reward weights, ...).

    Raises:
        ValueError: An unregistered id, a bad ``limit``, or a split the env does not have.
        ImportError: ``datasets`` is not installed.
    """
    check_env_id(env_id)
    if limit is not None and (type(limit) is not int or limit < 0):
        raise ValueError(f"limit must be an int >= 0 or None, got {limit!r}")
    try:
        from datasets import Dataset
    except ImportError as error:
        raise ImportError(f"make_dataset needs the datasets package (pip install datasets): {error}") from None
    env = make_env(env_id, **env_kwargs)
    base = env.unwrapped
    by_index, split = _dataset_split(env_id, env, split)
    indices = base.split_indices(split) if by_index and hasattr(base, "split_indices") else None
    if indices is None and limit is None:
        raise ValueError(f"{env_id} has no fixed list of problems: give limit= (how many to take)")
    count = limit if indices is None else len(indices) if limit is None else min(limit, len(indices))
    columns: dict[str, list[Any]] = {"prompt": [], **{name: [] for name in PROBLEM_COLUMNS}}
    for i in range(count):
        if by_index:
            observation, _ = env.reset(options=_index_options(i, split))
        else:
            observation, _ = env.reset(seed=i)
        state = base.get_state()
        columns["prompt"].append(
            question_messages(observation, base.task.system_prompt) if conversational else plain_prompt(observation)
        )
        columns["problem"].append(problem_json(state.problem))
        columns["problem_id"].append(state.problem_id)
        columns["index"].append(i if by_index else None)
        columns["split"].append(split if by_index else None)
    env.close()
    return Dataset.from_dict(columns)


def _index_options(index: int, split: str | None) -> dict[str, Any]:
    return {"index": index} if split is None else {"index": index, "split": split}


def _takes_index(env: gym.Env) -> bool:
    """Whether ``reset(options={"index": 0})`` works: procedural tasks such as Game24's ``source="procedural"``
    take no index (their rows are numbered by seed)."""
    try:
        env.reset(options={"index": 0})
    except ValueError:
        return False
    return True


def _dataset_split(env_id: str, env: gym.Env, split: str | None) -> tuple[bool, str | None]:
    """``(by_index, split)`` for :func:`make_dataset`: the split checked (a ``ValueError`` naming the env's splits
    for one it does not have), and whether rows are numbered by index (else by seed, where no split can be given)."""
    base = env.unwrapped
    given = split
    if split is None:
        split = getattr(base, "split", None)
    elif hasattr(base, "_check_split"):
        split = base._check_split(split)
    if (hasattr(base, "split_indices") and base.split_indices(split) is not None) or _takes_index(env):
        return True, split
    if given is not None:
        raise ValueError(
            f"{env_id} takes no index or split (its problems are drawn by seed; make_dataset numbers the rows by "
            f"seed): leave out split={given!r}"
        )
    return False, None


# --------------------------------------------------------------------------------------------------- scoring


def completion_text(completion: Any) -> str | None:
    """The text of a TRL completion: a string, or the assistant messages' contents (``[{"role": "assistant",
    "content": ...}]``, content a string or a list of ``{"type": "text", "text": ...}`` parts) joined by newlines;
    ``None`` when it holds no text.

    >>> completion_text([{"role": "assistant", "content": "1 + 2 = 3"}])
    '1 + 2 = 3'
    >>> completion_text(None) is None
    True
    """
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, Sequence) or not completion:
        return None
    texts = []
    for message in completion:
        if not isinstance(message, Mapping) or message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, Sequence):
            parts = [p.get("text") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
            texts.append("".join(p for p in parts if isinstance(p, str)))
    return "\n".join(texts) if texts else None


def _is_fence(line: str) -> bool:
    return line.lstrip().startswith("```")


def split_completion(text: str) -> list[str]:
    """The actions of a completion, in order: one step per line, then the final answer.

    - Lines are separated by newlines; one trailing newline ends the last line (it is no empty step), and an
      empty completion is one empty action. A blank line in between is an empty step (the env rejects it).
    - The first line that starts with ``Answer:`` (outside a code block) is the final answer; a fenced code block
      that it opens, or that starts on the next line, is part of it (a program). Text after the answer is ignored:
      the episode has ended.
    - A fenced code block (from a line starting with three backticks to the next such line) belongs to the step of
      the line before it (``Run:`` then the program).

    >>> split_completion("2 * 3 = 6\\n1 + 6 = 7\\nAnswer: 7\\nThe end.")
    ['2 * 3 = 6', '1 + 6 = 7', 'Answer: 7']
    >>> split_completion("Run:\\n```python\\nprint(1)\\n```\\nAnswer:\\n```python\\nx = 1\\n```\\nDone.")
    ['Run:\\n```python\\nprint(1)\\n```', 'Answer:\\n```python\\nx = 1\\n```']
    """
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    actions: list[str] = []
    in_fence = False
    for number, line in enumerate(lines):
        if in_fence:
            actions[-1] += "\n" + line
            in_fence = not _is_fence(line)
        elif _is_fence(line):
            if actions:
                actions[-1] += "\n" + line
            else:
                actions.append(line)
            in_fence = True
        elif is_final_answer(line):
            actions.append(_answer(lines[number:]))
            break
        else:
            actions.append(line)
    return actions


def _answer(lines: list[str]) -> str:
    """The final answer at the head of ``lines``: its line, and the fenced block it opens or that follows it."""
    answer, rest = lines[0], lines[1:]
    if answer.count("```") % 2 == 0:  # no block opened on the answer line
        if not rest or not _is_fence(rest[0]):
            return answer
        answer, rest = f"{answer}\n{rest[0]}", rest[1:]
    for line in rest:
        answer += "\n" + line
        if _is_fence(line):
            break
    return answer


def contributions(weights: Mapping[str, float], info: Mapping[str, Any]) -> dict[str, float]:
    """Each reward component's share of a step's reward: its weight times its value (``info["reward_components"]``).

    >>> contributions({"outcome": 1.0, "invalid_step": -0.1}, {"reward_components": {"invalid_step": 1.0}})
    {'invalid_step': -0.1}
    """
    components = info.get("reward_components") or {}
    return {name: weights.get(name, 0.0) * float(value) for name, value in components.items()}


def row_request(row: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """What a dataset row asks for: the ``reset`` options of its problem (``index`` and ``split`` when it has an
    index, else ``problem``) and the ``problem_id`` it names (``None``: unchecked).

    Raises:
        ValueError: The row names no problem, or a column holds a value of the wrong type (the message names the
            column and what :func:`make_dataset` puts there).
    """
    index, problem = row.get("index"), row.get("problem")
    if index is not None:
        options = _index_options(_index_value(index), _text_value(row, "split"))
    elif problem is not None:
        options = {"problem": _problem_value(problem)}
    else:
        raise ValueError(
            f"a row names no problem: it needs 'index' (and 'split') or 'problem' (see {__name__}.PROBLEM_COLUMNS)"
        )
    return options, _text_value(row, "problem_id")


def _column_error(name: str, expected: str, value: Any) -> ValueError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ValueError(
        f"the {name!r} column must hold {expected}, got {shown}: build the rows with {__name__}.make_dataset"
    )


def _index_value(index: Any) -> int:
    value = as_integer(index)
    if value is None:
        raise _column_error("index", "ints (the problem's position in its split)", index)
    return value


def _text_value(row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if value is not None and not isinstance(value, str):
        raise _column_error(name, "strings (or None)", value)
    return value


def _problem_value(problem: Any) -> Mapping[str, Any]:
    expected = "the task's problem record as a JSON object (not a data set's own question text)"
    if isinstance(problem, str):
        try:
            problem = json.loads(problem)
        except json.JSONDecodeError:
            raise _column_error("problem", expected, problem) from None
    if not isinstance(problem, Mapping):
        raise _column_error("problem", expected, problem)
    return problem


def reset_to_row(env: gym.Env, row: Mapping[str, Any]) -> str:
    """Starts an episode on a dataset row's problem and returns its observation: by ``index`` (and ``split``) when
    the row has one, else by ``problem`` (a record, or its JSON); then checks ``problem_id`` where the row has it.

    Raises:
        ValueError: The row names no problem, holds a value of the wrong type (:func:`row_request`), or the env
            built another problem than the row names.
    """
    return _start(env, *row_request(row))


def _start(env: gym.Env, options: dict[str, Any], expected: str | None) -> str:
    observation, _ = env.reset(options=options)
    built = env.unwrapped.get_state().problem_id
    if expected is not None and expected != built:
        raise ValueError(
            f"the row names problem {expected!r} but {env.spec.id if env.spec else 'the env'} built {built!r}: build "
            "the dataset and the reward functions (or rollout) with the same env arguments"
        )
    return observation


class Score(NamedTuple):
    """What the env made of one completion."""

    total: float
    """the episode's return: the sum of the step rewards"""
    components: dict[str, float]
    """each component's share of the return"""
    rewards: list[float]
    """the reward of each action sent, in order"""
    done: bool
    """whether the episode ended (a final answer, or the step limit) within the completion"""


class EpisodeScorer:
    """Plays completions through one env of a task and scores them; what TRL reward functions call.

    Args:
        env_id: A registered id.
        cache_size: Scores kept (a completion is scored once for the total and every component).
        **env_kwargs: For ``gymnasium.make``; they must match the dataset's (``problem_id`` is checked).
    """

    def __init__(self, env_id: str, *, cache_size: int = 4096, **env_kwargs: Any) -> None:
        self.env_id = env_id
        self.env = make_env(env_id, **env_kwargs)
        base = self.env.unwrapped
        self.weights: Mapping[str, float] = dict(getattr(base, "reward_weights", {}))
        has_prm = getattr(base, "prm", None) is not None
        self.components: tuple[str, ...] = tuple(
            name for name, weight in self.weights.items() if weight and (name != "prm" or has_prm)
        )
        """the components with a non-zero weight (``prm`` only when the env has a PRM): one reward function each"""
        self._cache: OrderedDict[tuple[Any, ...], Score] = OrderedDict()
        self._cache_size = cache_size

    def reset(self, row: Mapping[str, Any]) -> None:
        """Starts an episode on a row's problem (see :func:`reset_to_row`)."""
        reset_to_row(self.env, row)

    def score(self, row: Mapping[str, Any], completion: Any) -> Score:
        """Plays a completion (text, or TRL's chat messages) through the env on the row's problem."""
        text = completion_text(completion)
        actions = [""] if text is None else split_completion(text)
        options, expected = row_request(row)
        # everything that decides the verdict: the problem asked for, the id checked against it, the actions
        key = (json.dumps(options, sort_keys=True, default=repr), expected, tuple(actions))
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        _start(self.env, options, expected)
        total, rewards, shares, done = 0.0, [], dict.fromkeys(self.components, 0.0), False
        for action in actions:
            _, reward, terminated, truncated, info = self.env.step(action)
            rewards.append(float(reward))
            total += float(reward)
            for name, share in contributions(self.weights, info).items():
                if name in shares:
                    shares[name] += share
            if terminated or truncated:
                done = True
                break
        score = Score(total, shares, rewards, done)
        self._cache[key] = score
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return score

    def reward_func(self, component: str | None = None) -> RewardFunc:
        """A TRL reward function: the episode's return (``component=None``, named :data:`TOTAL`) or one
        component's share of it (named after the component)."""
        if component is not None and component not in self.components:
            raise ValueError(f"{self.env_id} has no weighted component {component!r}; it has {list(self.components)}")

        def reward(prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any) -> list:
            rows = _rows(columns, len(completions))
            scores = [self.score(row, completion) for row, completion in zip(rows, completions, strict=True)]
            return [s.total if component is None else s.components[component] for s in scores]

        reward.__name__ = reward.__qualname__ = TOTAL if component is None else component
        reward.__doc__ = f"{self.env_id}: the episode's " + (
            "return." if component is None else f"reward from its {component!r} component."
        )
        return reward


def _rows(columns: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    """Each completion's problem columns, from TRL's per-completion column lists."""
    if "index" not in columns and "problem" not in columns:
        present = sorted(k for k in columns if k not in ("trainer_state", "log_extra", "log_metric", "completion_ids"))
        missing = [name for name in PROBLEM_COLUMNS if name not in columns]
        raise ValueError(
            f"the dataset lacks the problem columns {missing}: a reward function needs 'index' (and "
            f"'split') or 'problem' to rebuild each problem; the rows have {present}. Build the dataset with "
            "reason_gym.integrations.trl.make_dataset"
        )
    names = [name for name in PROBLEM_COLUMNS if name in columns]
    for name in names:
        if not isinstance(columns[name], Sized) or isinstance(columns[name], (str, bytes, Mapping)):
            raise ValueError(
                f"column {name!r} must be a list with one value per completion (TRL passes each dataset column so), "
                f"got {type(columns[name]).__name__}"
            )
        if len(columns[name]) != count:
            raise ValueError(f"column {name!r} has {len(columns[name])} values for {count} completions")
    return [{name: columns[name][i] for name in names} for i in range(count)]


def make_reward_funcs(env_id: str, **env_kwargs: Any) -> list[RewardFunc]:
    """TRL reward functions for a task: the episode's return (named :data:`TOTAL`, first), then one per reward
    component with a non-zero weight (named after it: ``outcome``, ``invalid_step``, ...), so TRL logs each.

    The components add up to the total: to train on the total and only log the components, give TRL
    ``reward_weights=reward_weights(funcs)`` (1 for the total, 0 for the rest).

    Args:
        env_id: A registered id (checked now, before any model loads).
        **env_kwargs: For ``gymnasium.make``, as given to :func:`make_dataset`.
    """
    scorer = EpisodeScorer(env_id, **env_kwargs)
    return [scorer.reward_func(None)] + [scorer.reward_func(name) for name in scorer.components]


def reward_weights(funcs: Sequence[RewardFunc]) -> list[float]:
    """TRL's ``reward_weights`` that train on the total and only log the components: 1 for :data:`TOTAL`, else 0."""
    return [1.0 if getattr(f, "__name__", "") == TOTAL else 0.0 for f in funcs]


def process_reward_funcs(components: Sequence[str] = ()) -> list[RewardFunc]:
    """Reward functions for completions a ``rollout_func`` played through the env step by step: the return (the
    sum of the ``step_rewards`` field) and each component's share (from ``step_components``), with the names of
    :func:`make_reward_funcs`.

    >>> total, outcome = process_reward_funcs(["outcome"])
    >>> total([], ["", ""], step_rewards=[[-0.1, 1.0], [0.0]])
    [0.9, 0.0]
    >>> outcome([], [""], step_components=[[{"invalid_step": -0.1}, {"outcome": 1.0}]])
    [1.0]
    """

    def make(component: str | None) -> RewardFunc:
        field = "step_rewards" if component is None else "step_components"

        def reward(prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns: Any) -> list:
            if field not in columns:
                raise ValueError(
                    f"the reward function {reward.__name__!r} needs the {field!r} field that a step-by-step "
                    "rollout_func returns (agents.integrations.trl.EnvRollout)"
                )
            values = columns[field]
            if component is None:
                return [float(sum(steps)) for steps in values]
            return [float(sum(step.get(component, 0.0) for step in steps)) for steps in values]

        reward.__name__ = reward.__qualname__ = TOTAL if component is None else component
        return reward

    return [make(None)] + [make(name) for name in components]
