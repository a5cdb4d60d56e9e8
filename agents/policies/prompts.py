"""Prompt formats: how a state (the question and the steps so far) becomes a model's input text.

Two formats, one per kind of model:

- :class:`RawPrompt`: the state itself, then the step separator (``"<state>\\n"``). The embedded character model
  was trained on exactly this text, so it continues with the next step and a newline.
- :class:`ChatPrompt`: for instruct models, the tokenizer's chat template around the task's system prompt (its step
  and answer formats) and the question as the user's message; the steps taken so far open the assistant's answer,
  one per line, so the model's next line is the next step.

:func:`default_prompt` picks the chat format when the tokenizer has a chat template. What a prompt knows about the
task comes from the task's :class:`~reason_gym.core.TaskSpec`, declared by its environment: carried by a state
(an :class:`~reason_gym.core.EpisodeState`, which planners hand to policies that take them) or given to the prompt
(``task=``). Question texts are never parsed: a state of an unknown task goes whole into the user message, under
the generic system prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from reason_gym.core import GENERIC_SYSTEM_PROMPT, EpisodeState, TaskSpec

GENERIC_SYSTEM = GENERIC_SYSTEM_PROMPT
"""The system prompt of a state whose task is unknown (:data:`reason_gym.core.GENERIC_SYSTEM_PROMPT`)."""

State = str | EpisodeState
"""What a prompt format turns into text: an observation string, or a state snapshot that also carries its task."""


class PromptFormat(Protocol):
    """Turns a state (an observation string or an :class:`~reason_gym.core.EpisodeState`) into model input text.

    Attributes:
        add_special_tokens: Whether the tokenizer should add its special tokens (``<s>``) when encoding the text;
            ``False`` when the text already has them (a chat template writes its own).
    """

    add_special_tokens: bool

    def __call__(self, state: State) -> str: ...


def observation_of(state: State) -> str:
    """The observation string of a state."""
    return state.observation if isinstance(state, EpisodeState) else state


def split_state(state: str, task: TaskSpec | None = None) -> tuple[str, list[str]]:
    """A state's question and steps, by the lines the task's question fills; a state of an unknown task (or of a
    task whose questions vary in length) is all question.

    >>> from reason_gym.envs.arithmetic import ArithmeticEnv
    >>> split_state("What is 1 + 2 * 3?\\n2 * 3 = 6\\n1 + 6 = 7", ArithmeticEnv.task)
    ('What is 1 + 2 * 3?', ['2 * 3 = 6', '1 + 6 = 7'])
    """
    return task.split(state) if task is not None else (state, [])


class RawPrompt:
    """The state, then the step separator: the format the embedded character model was trained on.

    >>> RawPrompt()("What is 3 + 4?")
    'What is 3 + 4?\\n'
    """

    add_special_tokens = True

    def __init__(self, separator: str = "\n") -> None:
        self.separator = separator

    def __call__(self, state: State) -> str:
        return observation_of(state) + self.separator


class ChatPrompt:
    """The tokenizer's chat template: a system prompt for the task, the question, and the steps so far.

    The task is the state's own (``EpisodeState.spec``) or, for observation strings, ``task``; without either, the
    generic system prompt and the whole state as the question.

    Args:
        tokenizer: A Hugging Face tokenizer with a chat template.
        system: A system prompt for every task (default: the task's own, ``TaskSpec.system_prompt``).
        task: The task of observation strings given to this prompt (states carry their own).
    """

    add_special_tokens = False  # the template writes the model's special tokens itself

    def __init__(self, tokenizer: Any, system: str | None = None, task: TaskSpec | None = None) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("ChatPrompt needs a tokenizer with a chat template; use RawPrompt for this model")
        self.tokenizer = tokenizer
        self.system = system
        self.task = task

    def messages(self, question: str, task: TaskSpec | None = None) -> list[dict[str, str]]:
        """The chat messages before the assistant's answer."""
        task = task or self.task
        system = self.system or (task.system_prompt if task else GENERIC_SYSTEM)
        return [{"role": "system", "content": system}, {"role": "user", "content": question}]

    def __call__(self, state: State) -> str:
        if isinstance(state, EpisodeState) and state.spec is not None:
            task = state.spec
            # the state's own question and steps, where the task's questions have a fixed shape (else all question)
            question, steps = (state.question, list(state.steps)) if task.question_lines else (state.observation, [])
        else:
            task = self.task
            question, steps = split_state(observation_of(state), task)
        head = self.tokenizer.apply_chat_template(
            self.messages(question, task), tokenize=False, add_generation_prompt=True
        )
        return head + "".join(f"{step}\n" for step in steps)


def default_prompt(tokenizer: Any, task: TaskSpec | None = None) -> PromptFormat:
    """:class:`ChatPrompt` (for observation strings of ``task``, if given) when the tokenizer has a chat template,
    else :class:`RawPrompt`."""
    return ChatPrompt(tokenizer, task=task) if getattr(tokenizer, "chat_template", None) else RawPrompt()


def encode_prompts(tokenizer: Any, prompt: PromptFormat, states: Sequence[State]) -> list[list[int]]:
    """Token ids of each state's prompt (unpadded)."""
    texts = [prompt(state) for state in states]
    return tokenizer(texts, add_special_tokens=prompt.add_special_tokens)["input_ids"]
