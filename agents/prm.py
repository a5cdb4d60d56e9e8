"""Process reward models: step scorers ``(question, steps) -> one float per step``.

A step scorer is the :data:`~reason_gym.core.ProcessRewardModel` type of the environments, so any of these plugs
into an environment (``Game24Env(prm=...)``, added to the reward as the ``prm`` component) or into a planner.

- Rule-based scorers replay the steps in the task's own environment and read its exact step checks:
  :class:`Game24StepScorer` (a step is good iff the numbers left can still reach the target),
  :class:`ArithmeticStepScorer` (a step is good iff it is true at the problem's solution), and
  :func:`claims_step_scorer` (arithmetic equalities stated in free text, for GSM8K-style steps).
  :func:`rule_based_prm` picks the right one from the question.
- :class:`HFStepScorer` reads a learned PRM: the probability of a "good" token at a tag after each step (as
  Math-Shepherd), or the value head of a token-classification model.

Scores are in ``[0, 1]``; a final answer line is scored 1.0 when it is correct and 0.0 when it is not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from reason_gym.checkers.arithmetic import check_arithmetic_claims
from reason_gym.core import ProcessRewardModel, ReasoningEnv, is_final_answer

StepScorer = ProcessRewardModel
"""``scorer(question, steps) -> list[float]``: one score per step, higher is better."""

__all__ = [
    "ArithmeticStepScorer",
    "Game24StepScorer",
    "HFStepScorer",
    "RuleBasedPRM",
    "StepScorer",
    "claims_step_scorer",
    "make_prm",
    "rule_based_prm",
]


def _replay(env: ReasoningEnv, problem: Mapping[str, Any], steps: Sequence[str], component: str) -> list[float]:
    """Plays ``steps`` from ``problem`` and returns each one's ``component`` (0.0 for a rejected step, the outcome
    for a final answer). A rejected step changes nothing, so the steps after it are scored from the same state."""
    env.reset(options={"problem": dict(problem)})
    scores = []
    for step in steps:
        if env.get_state().done:  # steps after the final answer (or the step limit) have no future
            scores.append(0.0)
            continue
        _, _, terminated, _, info = env.step(step)
        components = info["reward_components"]
        if terminated:
            scores.append(float(info["is_correct"]))
        elif "error" in info:
            scores.append(0.0)
        else:
            scores.append(float(components[component]))
    return scores


_GAME24 = re.compile(r"reach (-?\d+)\.\s*\nInput:((?: \d+)+)\s*$")


class Game24StepScorer:
    """Scores Game24 steps exactly: 1.0 iff the numbers left after the step can still reach the target.

    Replays the steps in a :class:`~reason_gym.envs.game24.Game24Env` with the ``step_solvable`` reward component
    on. Invalid steps (a number not available, wrong arithmetic) score 0.0.

    >>> scorer = Game24StepScorer()
    >>> question = "Game of 24: use each number once with + - * / to reach 24.\\nInput: 4 9 10 13"
    >>> scorer(question, ["13 - 9 = 4 (left: 4 4 10)", "4 + 4 = 8 (left: 8 10)", "10 - 4 = 6 (left: 6 9 13)"])
    [1.0, 0.0, 0.0]
    """

    def __init__(self) -> None:
        from reason_gym.envs.game24 import Game24Env

        # Procedural source: no data file to load; the puzzle is injected at every call. Generous step limit.
        self.env = Game24Env(source="procedural", max_steps=64, reward_weights={"step_solvable": 1.0})

    def __call__(self, question: str, steps: Sequence[str]) -> list[float]:
        match = _GAME24.search(question)
        if match is None:
            raise ValueError(f"not a Game24 question: {question[:80]!r}")
        problem = {"numbers": [int(x) for x in match.group(2).split()], "target": int(match.group(1))}
        return _replay(self.env, problem, steps, "step_solvable")


class ArithmeticStepScorer:
    """Scores Arithmetic-v0 steps exactly: 1.0 iff the step is true at the problem's solution.

    Replays the steps in an :class:`~reason_gym.envs.arithmetic.ArithmeticEnv` with the ``step_check`` component
    on: a step without x must be true arithmetic, a step with x must be equivalent to the equation. Steps the
    environment cannot read score 0.0.

    >>> ArithmeticStepScorer()("Solve for x: 3x + 4 = 19.", ["3x = 19 - 4", "3x = 14", "Answer: 5"])
    [1.0, 0.0, 1.0]
    """

    def __init__(self) -> None:
        from reason_gym.envs.arithmetic import ArithmeticEnv

        self.env = ArithmeticEnv(max_steps=64, reward_weights={"step_check": 1.0})

    def __call__(self, question: str, steps: Sequence[str]) -> list[float]:
        if question.startswith("Compute ") and question.endswith("."):
            problem = {"kind": "expression", "expression": question[len("Compute ") : -1]}
        elif question.startswith("Solve for x: ") and question.endswith("."):
            problem = {"kind": "linear", "equation": question[len("Solve for x: ") : -1]}
        else:
            raise ValueError(f"not an Arithmetic-v0 question: {question[:80]!r}")
        return _replay(self.env, problem, steps, "step_check")


def claims_step_scorer(question: str, steps: Sequence[str]) -> list[float]:
    """Scores free-text steps by the arithmetic they state: the share of their equalities that hold.

    A step that states no equality scores 0.5 (nothing to judge); a final answer line scores 0.5 too (this scorer
    has no answer key).

    >>> claims_step_scorer("", ["48 / 2 = 24 apples", "So 24 + 3 = 28.", "She is happy."])
    [1.0, 0.0, 0.5]
    """
    scores = []
    for step in steps:
        true, checked = (0, 0) if is_final_answer(step) else check_arithmetic_claims(step)
        scores.append(true / checked if checked else 0.5)
    return scores


def rule_based_prm(question: str) -> StepScorer:
    """The exact rule-based scorer for a question's task (Game24, Arithmetic), else :func:`claims_step_scorer`."""
    if question.startswith("Game of 24:"):
        return Game24StepScorer()
    if question.startswith(("Compute ", "Solve for x: ")):
        return ArithmeticStepScorer()
    return claims_step_scorer


class RuleBasedPRM:
    """:func:`rule_based_prm`'s scorer for each question, built once per task rather than per call: one PRM for
    any mix of tasks."""

    def __init__(self) -> None:
        self._scorers: dict[str, StepScorer] = {}

    def __call__(self, question: str, steps: Sequence[str]) -> list[float]:
        task = question[:13]  # the prefixes rule_based_prm tells tasks apart by ("Game of 24:", "Solve for x: ")
        if task not in self._scorers:
            self._scorers[task] = rule_based_prm(question)
        return list(self._scorers[task](question, steps))


def make_prm(spec: str) -> StepScorer:
    """A PRM from a one-string spec.

    Specs: ``rule``, the exact rule-based scorers (:class:`RuleBasedPRM`; for the Game of 24, the solver's verdict
    on the numbers left: an oracle PRM); ``hf:PATH``, a learned PRM read by :class:`HFStepScorer` (a causal LM
    scoring a "+" after each step).

    >>> make_prm("oracle")
    Traceback (most recent call last):
    ...
    ValueError: unknown PRM spec 'oracle'; accepted: 'rule' (exact rule-based scorers), 'hf:PATH'
    """
    kind, _, path = spec.partition(":")
    if spec == "rule":
        return RuleBasedPRM()
    if kind == "hf" and path:
        from agents.policies.hf import load_model_and_tokenizer

        return HFStepScorer(*load_model_and_tokenizer(path))
    raise ValueError(f"unknown PRM spec {spec!r}; accepted: 'rule' (exact rule-based scorers), 'hf:PATH'")


class HFStepScorer:
    """A learned PRM from a transformers model, scoring every step of a solution in one forward pass.

    Two kinds of model:

    - ``mode="token"``, a causal LM (Math-Shepherd style): the text is the question, then each step followed by
      ``step_tag``; at each tag the model's next-token distribution is read, and the score is
      ``p(good) / (p(good) + p(bad))``.
    - ``mode="value"``, a ``*ForTokenClassification`` model (a value head on every token): the logit at the last
      token of each step tag, through a sigmoid (one label) or the softmax's second label (two labels).

    Args:
        model: The model, in eval mode.
        tokenizer: Its tokenizer.
        mode: ``"token"`` or ``"value"``.
        step_tag: Text appended after each step; its last token is where the score is read.
        good_token: The "good step" token (``mode="token"``).
        bad_token: The "bad step" token (``mode="token"``).
        separator: Between the question and the first step.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        mode: str = "token",
        step_tag: str = "\n",
        good_token: str = "+",
        bad_token: str = "-",
        separator: str = "\n",
    ) -> None:
        if mode not in ("token", "value"):
            raise ValueError(f"mode must be 'token' or 'value', got {mode!r}")
        self.model, self.tokenizer, self.mode = model, tokenizer, mode
        self.step_tag, self.separator = step_tag, separator
        if mode == "token":
            ids = [tokenizer.encode(t, add_special_tokens=False) for t in (good_token, bad_token)]
            if any(len(i) != 1 for i in ids):
                raise ValueError(f"good_token and bad_token must be single tokens, got {good_token!r}, {bad_token!r}")
            self.good_id, self.bad_id = ids[0][0], ids[1][0]

    def _encode(self, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """Token ids of the whole text and the position of each step tag's last token.

        Pieces are tokenized one by one and concatenated, so tag positions are exact for any tokenizer.
        """
        ids = self.tokenizer(question + self.separator)["input_ids"]  # with the model's special tokens in front
        positions = []
        for step in steps:
            ids = ids + self.tokenizer.encode(step + self.step_tag, add_special_tokens=False)
            positions.append(len(ids) - 1)
        return ids, positions

    def __call__(self, question: str, steps: Sequence[str]) -> list[float]:
        return self.score_batch([(question, steps)])[0]

    def score_batch(self, solutions: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """Scores of several solutions, in one right-padded forward pass."""
        import torch

        encoded = [self._encode(question, steps) for question, steps in solutions]
        width = max(len(ids) for ids, _ in encoded)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for row, (ids, _) in enumerate(encoded):  # right padding: positions are the tokens' own, no shift needed
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention_mask[row, : len(ids)] = 1
        device = self.model.device
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
        logits = logits.float()  # (B, L, V) for a causal LM, (B, L, num_labels) for a value head
        out = []
        for row, (_, positions) in enumerate(encoded):
            at_tags = logits[row, positions]  # (num_steps, V or num_labels)
            if self.mode == "token":
                pair = at_tags[:, [self.good_id, self.bad_id]]  # (num_steps, 2)
                scores = pair.softmax(-1)[:, 0]
            elif at_tags.shape[-1] == 1:
                scores = at_tags[:, 0].sigmoid()
            else:
                scores = at_tags.softmax(-1)[:, 1]
            out.append([float(s) for s in scores])
        return out
