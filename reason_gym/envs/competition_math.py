"""MATH competition problems (Hendrycks et al.) and the MATH-500 subset as a reasoning environment.

The module is not named ``math.py``: that would shadow the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from reason_gym.checkers.math_forms import last_boxed
from reason_gym.core import TaskSpec
from reason_gym.data import DataSource
from reason_gym.envs.math_base import LAYOUT, MathReasoningEnv

_FORMAT = (
    'a MATH problem is {"problem": "...", "solution": "... \\\\boxed{<final answer>} ..."} or '
    '{"problem": "...", "answer": "<final answer>"}'
)

SUBSETS = ("math", "math500")

_HUB = {"math": ("DigitalLearningGmbH/MATH-lighteval", None), "math500": ("HuggingFaceH4/MATH-500", None)}
"""Hub copies: the full MATH (7,500 train / 5,000 test; ``hendrycks/competition_math`` is gone) and MATH-500."""


TASK = TaskSpec(
    name="math",
    env_id="reason_gym/MATH-v0",
    description="Solve a competition math problem step by step, then give the answer (a number, expression, set).",
    step_format="Free text (LaTeX welcome), one step per line; equalities between numbers can be checked.",
    answer_format="`Answer: <answer>` as raw LaTeX, in `$...$` or in `\\boxed{}`.",
    step_checks=("step_check",),
)
"""What agents know about MATH (``CompetitionMathEnv.task``): the generic system prompt; ``step_check`` checks only
equalities between numbers, so it is not an exact step label."""


def math_gold(record: Mapping[str, Any]) -> str | None:
    """The reference answer of a MATH record: its ``answer`` field if present (MATH-500), else the content of the
    last ``\\boxed{}`` of its ``solution``; ``None`` if neither is there.

    >>> math_gold({"solution": "So $x = \\\\boxed{\\\\frac{1}{2}}$."}), math_gold({"answer": "3", "solution": "..."})
    ('\\\\frac{1}{2}', '3')
    """
    answer = record.get("answer")
    if type(answer) is int:  # a whole-number answer given as a JSON number
        return str(answer)
    if isinstance(answer, str) and answer.strip():
        return answer.strip()
    solution = record.get("solution")
    boxed = last_boxed(solution) if isinstance(solution, str) else None
    return boxed.strip() if boxed and boxed.strip() else None


class CompetitionMathEnv(MathReasoningEnv):
    """Solve a competition math problem step by step, then give the answer (a number, expression, set, ...).

    ## Description
    MATH (Hendrycks et al., 2021, "Measuring Mathematical Problem Solving With the MATH Dataset"): 12,500 problems
    from AMC, AIME and other competitions in seven subjects and five levels, 7,500 in ``train`` and 5,000 in
    ``test``, with LaTeX solutions. ``subset="math500"`` serves MATH-500, the 500 test problems of "Let's Verify
    Step by Step" (Lightman et al., 2023), the usual evaluation set of process reward models; all of them are
    also in the full test split. Records keep the data sets' own format: ``{"problem", "solution"}`` with the
    reference answer in the last ``\\boxed{}`` of the solution, or an ``answer`` field (MATH-500), which wins.

    ## Action Space
    Text. A reasoning step is any non-empty text. The final answer is a line starting with ``Answer:``; its value
    may be raw LaTeX (``\\frac{1}{2}``, ``2\\sqrt{3}``), in ``$...$`` or in ``\\boxed{}``. It is judged for
    mathematical equivalence by :mod:`reason_gym.checkers.math_answer` (exact for plain numbers, math-verify for
    the rest: ``\\dfrac{1}{2}`` = ``0.5``, ``\\sqrt{3} + 2`` = ``2 + \\sqrt{3}``, sets in any order), in bounded
    time: hostile answers such as ``9^{9^{9}}`` are judged wrong after about 3 s.

    ## Observation Space
    Text: the problem (LaTeX as in the data), then one line per accepted step, and the answer at the end.

    ## Rewards
    Components (``info["reward_components"]``) and default weights:

    - ``outcome`` (1.0): 1 for a final answer equivalent to the reference;
    - ``invalid_step`` (-0.1): 1 for a rejected step (empty, or longer than ``max_action_chars``);
    - ``step_check`` (0.0, so off and not computed): for a step that states equalities between numbers
      (``$5 \\times 3 = 15$``, ``\\frac{48}{2} = 24``), 1 when all hold exactly and 0 when any is false; absent
      when a step states none. Symbolic steps (``x^2 = 4``) state no checkable claim;
    - ``prm`` (1.0): with ``prm=``, a process reward model's score of each accepted step: any callable
      ``prm(question, steps) -> list[float]`` (one score per step); the newest step's score is the component.

    ## Episode End
    Terminated at a final answer (``info["is_correct"]``); truncated after ``max_steps`` actions without one.

    ## Arguments
    - ``subset``: ``"math"`` (default, the full data set) or ``"math500"`` (test only).
    - ``split``: ``"test"`` (default: 5,000 problems, or 500 for MATH-500) or ``"train"`` (7,500; full MATH only).
      ``shared/data`` holds the test files only (``math/test.jsonl``, ``math500/test.jsonl``); ``train`` comes from
      ``$REASON_GYM_DATA_DIR/math/train.jsonl`` or the hub. To evaluate on MATH-500 after training on MATH, note
      that MATH-500 is drawn from the MATH test split (PRM800K trains on MATH train plus the other 4,500).
    - ``data_path``: a JSONL file of records for ``split`` (the env then serves only that split). Otherwise
      ``$REASON_GYM_DATA_DIR/<subset>/<split>.jsonl``, else, with ``allow_hub=True`` (or
      ``REASON_GYM_ALLOW_HUB=1``), the hub (``DigitalLearningGmbH/MATH-lighteval``, ``HuggingFaceH4/MATH-500``)
      through ``datasets``; the constructor raises :class:`~reason_gym.data.DataNotFoundError` when none has it.
    - ``allow_hub`` (False): whether the Hugging Face hub may be tried last.
    - ``max_steps`` (20), ``reward_weights``, ``prm``, ``render_mode``: see :class:`~reason_gym.core.ReasoningEnv`.

    Reset options: ``{"index": i}``, ``{"split": s}``, or ``{"problem": {"problem": ..., "solution": ...}}``.

    ## Version History
    - v0: initial version.
    """

    question_key: ClassVar[str] = "problem"
    task = TASK

    def __init__(self, *, subset: str = "math", **kwargs: Any) -> None:
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
        self.subset = subset
        self.name = subset  # problem ids: math/test/17, math500/test/17
        super().__init__(**kwargs)

    @property
    def available_splits(self) -> tuple[str, ...]:
        """``("train", "test")``, or ``("test",)`` for MATH-500."""
        return ("test",) if self.subset == "math500" else self.splits

    def data_source(self, split: str) -> DataSource:
        title = "MATH-500" if self.subset == "math500" else "MATH"
        repository, configuration = _HUB[self.subset]
        hub = (repository, configuration, split)
        return DataSource(f"{title} split {split!r}", f"{self.subset}/{split}.jsonl", LAYOUT, hub=hub)

    def _validate_problem(self, record: Any) -> Mapping[str, Any]:
        """Accepts ``{"problem": str, "solution": str with a \\boxed{} answer}`` or ``{"problem": str, "answer":
        str}`` (both fields may be there: ``answer`` wins; other keys are kept)."""
        if not isinstance(record, Mapping):
            raise ValueError(f"{_FORMAT}, got {type(record).__name__}")
        self._text_field(record, "problem", _FORMAT)
        answer = record.get("answer")
        if answer is not None and type(answer) not in (str, int):
            raise ValueError(f"'answer' must be a string (or an int), got {answer!r}; {_FORMAT}")
        gold = math_gold(record)
        if gold is None:
            raise ValueError(f"no reference answer (no 'answer' and no \\boxed{{}} in 'solution'); {_FORMAT}")
        return {**record, "gold": gold}
