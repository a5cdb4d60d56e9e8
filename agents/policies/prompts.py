"""Prompt formats: how a state string (the question and the steps so far) becomes a model's input text.

Two formats, one per kind of model:

- :class:`RawPrompt`: the state itself, then the step separator (``"<state>\\n"``). The embedded character model
  was trained on exactly this text, so it continues with the next step and a newline.
- :class:`ChatPrompt`: for instruct models, the tokenizer's chat template around a system prompt that describes the
  task's step format and the question as the user's message; the steps taken so far open the assistant's answer,
  one per line, so the model's next line is the next step.

:func:`default_prompt` picks the chat format when the tokenizer has a chat template. A task is recognised by the
start of its question (:data:`TASK_FORMATS`); a state of an unknown task goes whole into the user message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol


class PromptFormat(Protocol):
    """Turns a state string into model input text.

    Attributes:
        add_special_tokens: Whether the tokenizer should add its special tokens (``<s>``) when encoding the text;
            ``False`` when the text already has them (a chat template writes its own).
    """

    add_special_tokens: bool

    def __call__(self, state: str) -> str: ...


class TaskFormat(NamedTuple):
    """How a task's states look, for prompts.

    Attributes:
        name: A short name of the task.
        prefixes: The task's questions start with one of these.
        question_lines: How many lines of a state are the question (the rest are steps).
        system: The system prompt for instruct models: the step format, with an example.
    """

    name: str
    prefixes: tuple[str, ...]
    question_lines: int
    system: str


TASK_FORMATS: tuple[TaskFormat, ...] = (
    TaskFormat(
        name="game24",
        prefixes=("Game of 24:",),
        question_lines=2,
        system=(
            "You play the Game of 24, one step per line. A step combines two of the numbers left with one of "
            "+ - * / and lists the numbers left after it, e.g. `13 - 9 = 4 (left: 4 4 10)`. When only the target "
            "is left, write the final answer on one line: `Answer: <one expression that uses each input number "
            "exactly once> = 24`, e.g. `Answer: (13 - 9) * (10 - 4) = 24`. Write one step per line and nothing "
            "else: no explanations."
        ),
    ),
    TaskFormat(
        name="arithmetic",
        prefixes=("Compute ", "Solve for x:"),
        question_lines=1,
        system=(
            "Solve the problem one step per line. Each step is one equation `left = right`: to compute an "
            "expression, do one operation per step, innermost first (`3 + 4 = 7`); to solve for x, undo one "
            "operation around x (`3x = 19 - 4`), then simplify (`3x = 15`). End with one line `Answer: <number>` "
            "(a fraction as `7/2`). Write one step per line and nothing else: no explanations."
        ),
    ),
)

GENERIC_SYSTEM = (
    "Solve the problem step by step, one step per line. When you know the final answer, write it on one line as "
    "`Answer: <answer>`."
)


def task_format(state: str) -> TaskFormat | None:
    """The format of the task a state belongs to, or ``None`` for an unknown task.

    >>> task_format("Compute 3 + 4.").name
    'arithmetic'
    """
    for form in TASK_FORMATS:
        if state.startswith(form.prefixes):
            return form
    return None


def split_state(state: str) -> tuple[str, list[str]]:
    """A state's question and steps; a state of an unknown task is all question.

    >>> split_state("Compute 1 + 2 * 3.\\n2 * 3 = 6\\n1 + 6 = 7")
    ('Compute 1 + 2 * 3.', ['2 * 3 = 6', '1 + 6 = 7'])
    """
    form = task_format(state)
    if form is None:
        return state, []
    lines = state.split("\n")
    return "\n".join(lines[: form.question_lines]), lines[form.question_lines :]


class RawPrompt:
    """The state, then the step separator: the format the embedded character model was trained on.

    >>> RawPrompt()("Compute 3 + 4.")
    'Compute 3 + 4.\\n'
    """

    add_special_tokens = True

    def __init__(self, separator: str = "\n") -> None:
        self.separator = separator

    def __call__(self, state: str) -> str:
        return state + self.separator


class ChatPrompt:
    """The tokenizer's chat template: a system prompt for the task, the question, and the steps so far.

    Args:
        tokenizer: A Hugging Face tokenizer with a chat template.
        system: A system prompt for every task (default: the task's own from :data:`TASK_FORMATS`).
    """

    add_special_tokens = False  # the template writes the model's special tokens itself

    def __init__(self, tokenizer: Any, system: str | None = None) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("ChatPrompt needs a tokenizer with a chat template; use RawPrompt for this model")
        self.tokenizer = tokenizer
        self.system = system

    def messages(self, question: str) -> list[dict[str, str]]:
        """The chat messages before the assistant's answer."""
        form = task_format(question)
        system = self.system or (form.system if form else GENERIC_SYSTEM)
        return [{"role": "system", "content": system}, {"role": "user", "content": question}]

    def __call__(self, state: str) -> str:
        question, steps = split_state(state)
        head = self.tokenizer.apply_chat_template(self.messages(question), tokenize=False, add_generation_prompt=True)
        return head + "".join(f"{step}\n" for step in steps)


def default_prompt(tokenizer: Any) -> PromptFormat:
    """:class:`ChatPrompt` when the tokenizer has a chat template, else :class:`RawPrompt`."""
    return ChatPrompt(tokenizer) if getattr(tokenizer, "chat_template", None) else RawPrompt()


def encode_prompts(tokenizer: Any, prompt: PromptFormat, states: Sequence[str]) -> list[list[int]]:
    """Token ids of each state's prompt (unpadded)."""
    texts = [prompt(state) for state in states]
    return tokenizer(texts, add_special_tokens=prompt.add_special_tokens)["input_ids"]
