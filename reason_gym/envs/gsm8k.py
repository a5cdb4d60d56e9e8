"""GSM8K grade-school math word problems as a reasoning environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reason_gym.core import TaskSpec
from reason_gym.data import DataSource
from reason_gym.envs.math_base import LAYOUT, MathReasoningEnv

_FORMAT = 'a GSM8K problem is {"question": "...", "answer": "<solution steps>\\n#### <final answer>"}'


TASK = TaskSpec(
    name="gsm8k",
    env_id="reason_gym/GSM8K-v0",
    description="Solve a grade-school math word problem step by step, then give the number that answers it.",
    step_format="Free text, one step per line; equalities between numbers (`48/2 = 24`) can be checked.",
    answer_format="`Answer: <number>` (`18`, `$18`, `1,234` and `\\boxed{18}` are read too).",
    step_checks=("step_check",),
)
"""What agents know about GSM8K (``GSM8KEnv.task``): the generic system prompt; ``step_check`` checks only the
arithmetic a step states, so it is not an exact step label."""


def gsm8k_gold(answer: str) -> str:
    """The final answer of a GSM8K solution: the text after its last ``####``.

    >>> gsm8k_gold("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\\n#### 72")
    '72'
    """
    return answer.rsplit("####", 1)[-1].strip()


class GSM8KEnv(MathReasoningEnv):
    """Solve a grade-school math word problem step by step, then give the number that answers it.

    ## Description
    GSM8K (Cobbe et al., 2021, "Training Verifiers to Solve Math Word Problems"): 8,792 word problems that take
    2 to 8 steps of basic arithmetic, 7,473 in ``train`` and 1,319 in ``test``. Records keep the data set's own
    format, ``{"question": ..., "answer": "<solution>\\n#### <final answer>"}``; the reference answer is the text
    after ``####`` (a number, sometimes with thousands separators: ``1,600``).

    ## Action Space
    Text. A reasoning step is any non-empty text (one line or several). The final answer is a line starting with
    ``Answer:``; its value may be written raw (``18``, ``$18``, ``18.00``, ``1,234``, ``18 dollars``), in
    ``$...$`` or in ``\\boxed{}``. It is judged by :mod:`reason_gym.checkers.math_answer`: exact rational
    comparison for plain numbers, math-verify for anything else, in bounded time.

    ## Observation Space
    Text: the question, then one line per accepted step, and the answer at the end::

        Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. ...
        In May she sold 48/2 = 24 clips.
        Altogether she sold 48 + 24 = 72 clips.
        Answer: 72

    Unusual space characters of the data (no-break, line separator, zero-width) are read as spaces and newlines;
    the other non-ASCII characters of the questions (``’ € ¾ é ...``) are in the charset, so questions are shown
    as written.

    ## Rewards
    Components (``info["reward_components"]``) and default weights:

    - ``outcome`` (1.0): 1 for a final answer equivalent to the reference;
    - ``invalid_step`` (-0.1): 1 for a rejected step (empty, or longer than ``max_action_chars``); the state is
      unchanged;
    - ``step_check`` (0.0, so off and not computed): for a step that states arithmetic equalities between numbers
      (``48/2 = 24``, ``$5 \\times 3 = 15$``, ``5 x 3 = 15``, and GSM8K's calculator annotations ``<<48/2=24>>``),
      1 when every one holds exactly and 0 when any is false; absent for a step that states none. Checked with
      exact rationals by :func:`reason_gym.checkers.arithmetic.check_arithmetic_claims`. With a positive weight a
      policy can collect it by stating true trivia: normalise per group (GRPO) or keep it small;
    - ``prm`` (1.0): with ``prm=``, a process reward model's score of each accepted step. The PRM is any callable
      ``prm(question, steps) -> list[float]`` (one score per step); the newest step's score is the component.

    ## Episode End
    Terminated at a final answer (``info["is_correct"]`` says whether it was right; ``info["error"]`` why not);
    truncated after ``max_steps`` actions without one.

    ## Arguments
    - ``split``: ``"test"`` (default, the 1,319 benchmark problems) or ``"train"`` (7,473).
    - ``data_path``: a JSONL file of records for ``split`` (the env then serves only that split). Otherwise
      ``$REASON_GYM_DATA_DIR/gsm8k/<split>.jsonl``, else, with ``allow_hub=True`` (or ``REASON_GYM_ALLOW_HUB=1``),
      the hub's ``openai/gsm8k`` (config ``main``) through ``datasets``; the constructor raises
      :class:`~reason_gym.data.DataNotFoundError` when none has it (see :mod:`reason_gym.tasks`).
    - ``allow_hub`` (False): whether the Hugging Face hub may be tried last.
    - ``max_steps`` (20), ``reward_weights``, ``prm``, ``render_mode``: see :class:`~reason_gym.core.ReasoningEnv`.

    Reset options: ``{"index": i}``, ``{"split": s}``, or ``{"problem": {"question": ..., "answer": "... #### 42"}}``.

    ## Version History
    - v0: initial version.
    """

    name = "gsm8k"
    question_key = "question"
    task = TASK

    def data_source(self, split: str) -> DataSource:
        return DataSource(f"GSM8K split {split!r}", f"gsm8k/{split}.jsonl", LAYOUT, hub=("openai/gsm8k", "main", split))

    def _validate_problem(self, record: Any) -> Mapping[str, Any]:
        """Accepts ``{"question": str, "answer": "<solution> #### <final answer>"}`` (other keys are kept)."""
        if not isinstance(record, Mapping):
            raise ValueError(f"{_FORMAT}, got {type(record).__name__}")
        self._text_field(record, "question", _FORMAT)
        answer = self._text_field(record, "answer", _FORMAT)
        gold = gsm8k_gold(answer)
        if "####" not in answer or not gold:
            raise ValueError(f"the answer has no '#### <final answer>'; {_FORMAT}")
        return {**record, "gold": gold}
