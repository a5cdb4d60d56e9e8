"""Process reward models: step scorers that give one float per step of a solution.

Two kinds plug in wherever a ``prm`` is taken (``Game24Env(prm=...)``, the ``prm`` reward component; planners;
GRPO), and :func:`reason_gym.core.prm_scores` calls either:

- a :class:`~reason_gym.core.StatePRM`, ``prm.score_state(state) -> list[float]``, reads the structured state: the
  task's :class:`~reason_gym.core.TaskSpec` (``state.spec``), the problem record (``state.problem``) and the steps.
  The rule-based scorers are of this kind and are env-backed: :class:`EnvStepScorer` replays the steps in a scratch
  env of the task and reads the exact step check the task declares (``TaskSpec.exact_step_check``):
  :class:`Game24StepScorer` (``step_solvable``: the numbers left can still reach the target),
  :class:`ArithmeticStepScorer` (``step_check``: the step is true at the problem's solution). :class:`RuleBasedPRM`
  picks the task's exact scorer from the state's spec, and :func:`claims_step_scorer` (arithmetic equalities
  stated in free text) for tasks without an exact step check. Nothing here reads the question text.
- a plain ``prm(question, steps) -> list[float]`` (:data:`~reason_gym.core.ProcessRewardModel`), for scorers from
  outside that read text: :class:`HFStepScorer`, a learned PRM (the probability of a "good" token at a tag after each
  step, as Math-Shepherd, or the value head of a token-classification model). It gets the question and the steps.

Scores are in ``[0, 1]``; a final answer line is scored 1.0 when it is correct and 0.0 when it is not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from reason_gym.checkers.arithmetic import check_arithmetic_claims
from reason_gym.core import (
    PRM,
    EpisodeState,
    ProcessRewardModel,
    ReasoningEnv,
    StatePRM,
    TaskSpec,
    is_final_answer,
    prm_scores,
    scratch_env,
    task_env_class,
)
from reason_gym.envs.arithmetic import ArithmeticEnv
from reason_gym.envs.game24 import Game24Env

StepScorer = ProcessRewardModel
"""``scorer(question, steps) -> list[float]``: a plain scorer of text, one score per step, higher is better."""

__all__ = [
    "PRM",
    "ArithmeticStepScorer",
    "EnvStepScorer",
    "Game24StepScorer",
    "HFStepScorer",
    "MeanPRM",
    "RuleBasedPRM",
    "StatePRM",
    "StepScorer",
    "claims_step_scorer",
    "make_prm",
    "rule_based_prm",
    "score_steps",
    "tokenizer_fingerprint",
]


def _replay(env: ReasoningEnv, steps: Sequence[str], component: str) -> list[float]:
    """Plays ``steps`` from the env's fresh episode and returns each one's ``component`` (0.0 for a rejected step,
    the outcome for a final answer). A rejected step changes nothing, so the steps after it are scored from the same
    state."""
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


class EnvStepScorer:
    """Scores a task's steps exactly: replays them in a scratch env of the task with its exact step check on.

    The task is known from its :class:`~reason_gym.core.TaskSpec` (``spec.exact_step_check`` names the reward
    component, ``spec.env_id`` the env), so any task that declares an exact step check gets an exact scorer, and
    the problem comes from the structured state, never from the question text.

    Subclasses that set ``spec`` (:class:`Game24StepScorer`, :class:`ArithmeticStepScorer`) are what
    :meth:`for_task` returns for that spec.

    Args:
        spec: The task (default: the class's ``spec``).
        label: The task's name in error messages, with its article (``"a Game24"``).
    """

    spec: TaskSpec | None = None
    label: ClassVar[str] = ""
    _by_spec: ClassVar[dict[TaskSpec, type[EnvStepScorer]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.spec is not None:
            EnvStepScorer._by_spec[cls.spec] = cls

    def __init__(self, spec: TaskSpec | None = None) -> None:
        spec = spec or type(self).spec
        if spec is None or spec.exact_step_check is None:
            raise ValueError(f"the task {getattr(spec, 'name', None)!r} declares no exact step check to score with")
        self.spec = spec
        self.label = self.label or f"a {spec.name}"
        self._envs: dict[tuple[tuple[str, Any], ...], ReasoningEnv] = {}

    @classmethod
    def for_task(cls, spec: TaskSpec) -> EnvStepScorer:
        """The exact scorer of a task: the subclass declared for its spec, else a generic one."""
        return cls._by_spec.get(spec, cls)(spec)

    def score(self, problem: Mapping[str, Any], steps: Sequence[str]) -> list[float]:
        """The score of each step of a solution of ``problem`` (a record in the task's own format, validated here)."""
        env = self._env(problem, len(steps))
        env.reset(options={"problem": dict(problem)})
        return _replay(env, steps, self.spec.exact_step_check)  # type: ignore[arg-type, union-attr]

    def _env(self, problem: Mapping[str, Any], num_steps: int) -> ReasoningEnv:
        """The scratch env for problems of this shape (Game24: of this puzzle size), its step limit above
        ``num_steps``: a step the scratch env's own limit cut off would score 0 whatever it is."""
        spec, check = self.spec, self.spec.exact_step_check  # type: ignore[union-attr]
        key = tuple(sorted(task_env_class(spec).scratch_kwargs(problem).items()))  # type: ignore[arg-type]
        env = self._envs.get(key)
        if env is None:
            env = scratch_env(spec, problem, max_steps=64, reward_weights={check: 1.0})  # type: ignore[arg-type, dict-item]
            self._envs[key] = env
        env.max_steps = max(env.max_steps, num_steps + 1)
        return env

    def score_state(self, state: EpisodeState) -> list[float]:
        """The score of each step of ``state.steps`` for the state's problem.

        Raises:
            ValueError: The state is of another task.
        """
        if state.spec != self.spec:
            name = state.spec.name if state.spec else None
            raise ValueError(f"not {self.label} question: the state is of the task {name!r}")
        env = self._env(state.problem, len(state.steps))
        env.start_from(state)  # the state's record is already validated (a ToT row is not injectable twice)
        return _replay(env, state.steps, self.spec.exact_step_check)  # type: ignore[arg-type, union-attr]


class Game24StepScorer(EnvStepScorer):
    """Scores Game24 steps exactly: 1.0 iff the numbers left after the step can still reach the target.

    Replays the steps in a procedural :class:`~reason_gym.envs.game24.Game24Env` with the ``step_solvable`` reward
    component on. Invalid steps (a number not available, wrong arithmetic) score 0.0.

    >>> scorer = Game24StepScorer()
    >>> steps = ["13 - 9 = 4 (left: 4 4 10)", "4 + 4 = 8 (left: 8 10)", "10 - 4 = 6 (left: 6 9 13)"]
    >>> scorer.score({"numbers": [4, 9, 10, 13], "target": 24}, steps)
    [1.0, 0.0, 0.0]
    """

    spec = Game24Env.task
    label = "a Game24"


class ArithmeticStepScorer(EnvStepScorer):
    """Scores Arithmetic-v0 steps exactly: 1.0 iff the step is true at the problem's solution.

    Replays the steps in an :class:`~reason_gym.envs.arithmetic.ArithmeticEnv` with the ``step_check`` component
    on: a step without x must be true arithmetic, a step with x must be equivalent to the equation. Steps the
    environment cannot read score 0.0.

    >>> problem = {"kind": "linear", "equation": "3x + 4 = 19"}
    >>> ArithmeticStepScorer().score(problem, ["3x = 19 - 4", "3x = 14", "Answer: 5"])
    [1.0, 0.0, 1.0]
    """

    spec = ArithmeticEnv.task
    label = "an Arithmetic-v0"


def claims_step_scorer(question: str, steps: Sequence[str]) -> list[float]:
    """Scores free-text steps by the arithmetic they state: the share of their equalities that hold.

    A step that states no equality scores 0.5 (nothing to judge); a final answer line scores 0.5 too (this scorer
    has no answer key). The question is not read.

    >>> claims_step_scorer("", ["48 / 2 = 24 apples", "So 24 + 3 = 28.", "She is happy."])
    [1.0, 0.0, 0.5]
    """
    scores = []
    for step in steps:
        true, checked = (0, 0) if is_final_answer(step) else check_arithmetic_claims(step)
        scores.append(true / checked if checked else 0.5)
    return scores


def rule_based_prm(spec: TaskSpec | None) -> EnvStepScorer | StepScorer:
    """The exact rule-based scorer of a task (its declared exact step check), else :func:`claims_step_scorer`."""
    if spec is not None and spec.exact_step_check is not None and spec.env_id is not None:
        return EnvStepScorer.for_task(spec)
    return claims_step_scorer


class RuleBasedPRM:
    """:func:`rule_based_prm`'s scorer for each state's task (read from ``state.spec``), built once per task: one
    PRM for any mix of tasks."""

    def __init__(self) -> None:
        self._scorers: dict[TaskSpec | None, EnvStepScorer | StepScorer] = {}

    def score_state(self, state: EpisodeState) -> list[float]:
        if state.spec not in self._scorers:
            self._scorers[state.spec] = rule_based_prm(state.spec)
        scorer = self._scorers[state.spec]
        if isinstance(scorer, EnvStepScorer):
            return scorer.score_state(state)
        return list(scorer(state.question, state.steps))


def score_steps(prm: PRM, root: EpisodeState | str, steps: Sequence[str]) -> list[float]:
    """A PRM's scores of ``steps`` (actions as taken, rejected ones included) from the problem of ``root``.

    ``root`` is the state snapshot at reset (the PRM gets it with these steps, see
    :func:`reason_gym.core.prm_scores`), or only the question text for envs without snapshots, which only a plain
    ``prm(question, steps)`` can score.

    Raises:
        ValueError: A PRM that reads the structured state was given only a question.
    """
    if isinstance(root, EpisodeState):
        return prm_scores(prm, root._replace(steps=tuple(steps)))
    if callable(getattr(prm, "score_state", None)):
        raise ValueError(f"{type(prm).__name__} reads the structured state (get_state()); this env gives only text")
    return [float(score) for score in prm(root, steps)]  # type: ignore[operator]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """``"vocab N sha256:..."``: the size and a digest of a tokenizer's vocabulary (token -> id), which a learned
    PRM's ``training.json`` records so that it is never read with another tokenizer."""
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return f"vocab {len(vocab)} sha256:{hashlib.sha256(json.dumps(vocab).encode()).hexdigest()[:16]}"


TINY_PRM = Path(__file__).parent / "models" / "prm_tiny"
"""The learned PRM shipped with the package (``--prm tiny``): a TD value head on the embedded model, trained on the
embedded policy's Game24 steps, chosen on validation puzzles by the rule stated in advance; its ``training.json``
says how it was made (docs/reports/2026-12-06-learned-prm-grpo-arithmetic-loop.md, rule 8)."""


def make_prm(spec: str) -> PRM:
    """A PRM from a one-string spec.

    Specs: ``rule``, the exact rule-based scorers (:class:`RuleBasedPRM`, a :class:`~reason_gym.core.StatePRM`;
    for Game24, the solver's verdict on the numbers left: an oracle PRM); ``hf:PATH``, a learned PRM read
    by :meth:`HFStepScorer.from_pretrained` (a plain scorer of the question and steps: a causal LM scoring a "+"
    after each step, or a value head; a PRM trained by :mod:`agents.training.prm` says which in its
    ``training.json``); ``mean:SPEC+SPEC+...``, the mean of several plain scorers' scores (:class:`MeanPRM`, e.g.
    the seeds of one learned PRM); ``tiny``, the learned PRM shipped with the package (:data:`TINY_PRM`).

    >>> make_prm("oracle")
    Traceback (most recent call last):
    ...
    ValueError: unknown PRM spec 'oracle'; accepted: 'tiny' (shipped), 'rule' (exact), 'hf:PATH', 'mean:SPEC+SPEC'
    """
    kind, _, path = spec.partition(":")
    if spec == "tiny":
        return HFStepScorer.from_pretrained(TINY_PRM)
    if spec == "rule":
        return RuleBasedPRM()
    if kind == "hf" and path:
        return HFStepScorer.from_pretrained(path)
    if kind == "mean" and path:
        return MeanPRM([make_prm(member) for member in path.split("+")])
    raise ValueError(
        f"unknown PRM spec {spec!r}; accepted: 'tiny' (shipped), 'rule' (exact), 'hf:PATH', 'mean:SPEC+SPEC'"
    )


class MeanPRM:
    """The mean of several plain scorers' step scores: an ensemble, e.g. the seeds of one learned PRM, which ranks
    steps with less of any one seed's noise. Members that read the structured state (``rule``) are refused: they
    score another input, and an exact scorer gains nothing from averaging.

    >>> prm = MeanPRM([lambda q, steps: [1.0] * len(steps), lambda q, steps: [0.0, 0.5][: len(steps)]])
    >>> prm("question", ["a", "b"])
    [0.5, 0.75]
    """

    def __init__(self, members: Sequence[StepScorer]) -> None:
        if len(members) < 2:
            raise ValueError(f"a mean of PRMs needs two members or more, got {len(members)}")
        for member in members:
            if callable(getattr(member, "score_state", None)):
                raise ValueError(f"{type(member).__name__} reads the structured state: a mean averages text scorers")
        self.members = list(members)

    def __call__(self, question: str, steps: Sequence[str]) -> list[float]:
        return self.score_batch([(question, steps)])[0]

    def score_batch(self, solutions: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        """Each solution's mean step scores (each member scores the batch its own way: batched where it can)."""
        tables = [
            member.score_batch(solutions)
            if hasattr(member, "score_batch")
            else [[float(v) for v in member(question, steps)] for question, steps in solutions]
            for member in self.members
        ]
        return [[sum(scores) / len(scores) for scores in zip(*rows, strict=True)] for rows in zip(*tables, strict=True)]


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

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, device: str = "cpu") -> HFStepScorer:
        """A scorer from a folder (or hub id): as its ``training.json`` ``"prm"`` entry says (written by
        :mod:`agents.training.prm`: mode, step tag, separator, good/bad tokens, tokenizer fingerprint), else a value
        head for a ``*ForTokenClassification`` model and ``mode="token"`` with the defaults for any other.

        Raises:
            ValueError: The weights are not of the kind ``training.json`` names (a causal LM where a value head is
                expected, or the reverse), or the tokenizer is not the one the PRM was trained with; the message
                names both.
        """
        from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

        from agents.policies.hf import load_model_and_tokenizer

        info = Path(name_or_path).expanduser() / "training.json"
        settings = (json.loads(info.read_text()).get("prm") or {}) if info.exists() else {}
        try:
            architectures = AutoConfig.from_pretrained(str(name_or_path)).architectures or []
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"cannot load a PRM from {str(name_or_path)!r}: {str(error).splitlines()[0]}") from None
        value_head = any(name.endswith("ForTokenClassification") for name in architectures)
        mode = settings.get("mode", "value" if value_head else "token")
        if (mode == "value") != value_head:
            needs = "a value head (*ForTokenClassification)" if mode == "value" else "a causal LM (*ForCausalLM)"
            raise ValueError(
                f"{info} describes a {mode!r} PRM, which needs {needs}, but {name_or_path}/config.json holds "
                f"{architectures}: point hf:PATH at the model folder the PRM trainer saved"
            )
        if mode == "value":
            tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
            model = AutoModelForTokenClassification.from_pretrained(str(name_or_path), use_kernels=False)
            model = model.to(device).eval()
        else:
            model, tokenizer = load_model_and_tokenizer(name_or_path, device=device)
        trained_with, found = settings.get("tokenizer"), tokenizer_fingerprint(tokenizer)
        if trained_with and found != trained_with:
            raise ValueError(
                f"{name_or_path}'s tokenizer ({found}) is not the one this PRM was trained with ({trained_with}, "
                f"recorded in {info}): save the PRM's own tokenizer beside its weights"
            )
        options = {k: settings[k] for k in ("step_tag", "good_token", "bad_token", "separator") if k in settings}
        return cls(model, tokenizer, mode=mode, **options)

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

        with torch.inference_mode():
            return [[float(s) for s in logits.sigmoid()] for logits in self.step_logits(solutions)]

    def step_logits(self, solutions: Sequence[tuple[str, Sequence[str]]]) -> list[Any]:
        """Each solution's step logits (a tensor of one per step, with gradients where enabled): the score is their
        sigmoid. What :meth:`score_batch` reads, and what :mod:`agents.training.prm` trains."""
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
        logits = self.model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
        logits = logits.float()  # (B, L, V) for a causal LM, (B, L, num_labels) for a value head
        out = []
        for row, (_, positions) in enumerate(encoded):
            at_tags = logits[row, positions]  # (num_steps, V or num_labels)
            if self.mode == "token":  # p(good) / (p(good) + p(bad)) = sigmoid(good - bad)
                out.append(at_tags[:, self.good_id] - at_tags[:, self.bad_id])
            elif at_tags.shape[-1] == 1:
                out.append(at_tags[:, 0])
            else:  # the softmax's second label: sigmoid(l1 - l0)
                out.append(at_tags[:, 1] - at_tags[:, 0])
        return out
