"""The configuration of a PRM training run (:class:`PRMConfig`): every field is a command-line flag of
``reason-gym train prm`` (``td_lambda`` is ``--td-lambda``, its docstring the help), and a configuration that cannot
work is refused before anything loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

METHODS = ("classification", "td")
LABELS = ("mc_soft", "mc_hard", "exact")


@dataclass
class PRMConfig:
    """A process reward model trained on step data (every field is a command-line flag: ``--method td``)."""

    # Data
    data: tuple[str, ...] = ("runs/prm_data/game24",)
    """the step-data folders to train on (``meta.json`` + ``steps.jsonl``, one trajectory a line, see
    agents.training.prm_data), their trajectories pooled: several rounds of the loop, or several policies' data
    (``--data a,b``); they must share the env settings and the validation rule"""
    eval_data: str | None = None
    """a step-data folder with exact labels to evaluate on (ROC-AUC, Brier, calibration against the exact step
    values), e.g. trajectories of the test split; None: no evaluation"""
    method: Literal["classification", "td"] = "classification"
    """classification: BCE on the step labels (``--label``); td: value iteration, targets
    ``gamma * max_a V_target(s + a)`` over the policy's proposals at each state, the terminal value the env's outcome"""
    label: Literal["mc_soft", "mc_hard", "exact"] = "mc_soft"
    """classification targets: mc_soft (the share of Monte-Carlo completions that end correct), mc_hard (whether
    any does), or exact (the env's exact step check, e.g. the Game24 solver's verdict: an UPPER BOUND, as it trains
    on what the PRM is evaluated against; only tasks with an exact check have it)"""

    # Model
    backbone: str = "tiny"
    """the model the PRM starts from: ``tiny`` (the embedded model), or a folder / hub id of a causal LM or a
    token-classification model"""
    head: Literal["value", "token"] = "value"
    """value: a one-label token-classification head (sigmoid of its logit at each step tag; a causal LM backbone gets
    a new head); token: the causal LM itself, p(good_token) / (p(good_token) + p(bad_token)) at each tag
    (Math-Shepherd)"""
    step_tag: str = "\n"
    """text after each step; the score is read at its last token (the newline: what the env's observations have)"""
    separator: str = "\n"
    """text between the question and the first step"""
    good_token: str = "+"
    """with head=token: the "good step" token (one token of the tokenizer)"""
    bad_token: str = "-"
    """with head=token: the "bad step" token"""

    # Value iteration (method=td)
    gamma: float = 1.0
    """discount of the TD targets (1: the value is the probability of ending correct)"""
    td_lambda: float = 0.0
    """TD(lambda): mix of n-step targets along the trajectory (0: one-step; 1: the Monte-Carlo return)"""
    n_step: int = 1
    """n-step targets: follow the trajectory n-1 steps, then bootstrap with the max (use with td_lambda=0)"""
    num_proposals: int = 4
    """K: actions the policy proposes at each state (sampled once, kept in run_dir/proposals.jsonl)"""
    include_taken: bool = True
    """count the trajectory's own next step among the actions of the max"""
    policy: str = "tiny"
    """the policy that proposes actions (any ``make_policy`` spec: tiny, hf:PATH, random, ...)"""
    proposal_temperature: float = 1.0
    """sampling temperature of the proposals"""
    max_new_tokens: int = 48
    """the longest proposed step, in tokens"""
    target_sync_every: int = 20
    """steps between copies of the trained PRM into the target network"""

    # Run
    output_dir: str | None = None
    """where the trained PRM (weights, tokenizer, training.json) is saved (default: run_dir/model); load it with
    ``make_prm("hf:PATH")``"""
    run_dir: str = "runs/prm"
    """TensorBoard logs, the resumable checkpoint and the TD proposals"""
    resume: bool = True
    """continue from run_dir/checkpoint.pt when it exists"""
    seed: int = 0
    """seeds the new head, the batch order, dropout and the proposals"""
    device: str = "auto"
    """cpu, cuda, or auto (CUDA when available)"""
    num_threads: int | None = 1
    """torch CPU threads (one is fastest for the tiny model on a busy machine; None: every core available)"""
    progress: bool = True
    """show a progress bar"""

    # Optimisation
    total_steps: int = 500
    """optimizer steps"""
    batch_size: int = 32
    """trajectories per step (every step of each is a target)"""
    learning_rate: float = 3e-4
    """AdamW learning rate (the peak, with a schedule)"""
    lr_schedule: Literal["constant", "cosine"] = "constant"
    """constant, or cosine decay from learning_rate to 0 at total_steps (steadier last weights: at a constant rate a
    TD PRM's ROC-AUC swings by a few points between checkpoints)"""
    weight_decay: float = 0.0
    """AdamW weight decay"""
    max_grad_norm: float = 1.0
    """gradient clipping"""
    score_batch_size: int = 64
    """sequences per forward pass where nothing is trained (targets, evaluation)"""

    # Logging and checkpoints
    eval_every: int = 0
    """steps between evaluations on eval_data (0: only after the last step)"""
    checkpoint_every: int = 50
    """steps between resumable checkpoints (and always after the last)"""

    def __post_init__(self) -> None:
        """Refuses a configuration that cannot work, before anything is loaded."""
        problems = []
        if isinstance(self.data, str):  # one folder given as text (a script, or a saved configuration)
            self.data = (self.data,)
        self.data = tuple(self.data)
        if not self.data:
            problems.append("data must name at least one step-data folder")
        if self.method not in METHODS:
            problems.append(f"method must be one of {METHODS}, got {self.method!r}")
        if self.label not in LABELS:
            problems.append(f"label must be one of {LABELS}, got {self.label!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            problems.append(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.head not in ("value", "token"):
            problems.append(f"head must be 'value' or 'token', got {self.head!r}")
        if not 0 < self.gamma <= 1:
            problems.append(f"gamma must be in (0, 1], got {self.gamma}")
        if not 0 <= self.td_lambda <= 1:
            problems.append(f"td_lambda must be in [0, 1], got {self.td_lambda}")
        if self.n_step > 1 and self.td_lambda > 0:
            problems.append("choose n-step targets (--n-step) or TD(lambda) (--td-lambda), not both")
        for name in ("n_step", "num_proposals", "max_new_tokens", "target_sync_every", "total_steps", "batch_size",
                     "score_batch_size", "checkpoint_every"):  # fmt: skip
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every < 0:
            problems.append(f"eval_every must be >= 0 (0: only at the end), got {self.eval_every}")
        if self.learning_rate <= 0 or self.proposal_temperature < 0 or self.max_grad_norm <= 0:
            problems.append("learning_rate and max_grad_norm must be > 0 and proposal_temperature >= 0")
        if not self.step_tag:
            problems.append("step_tag must not be empty: the score is read at its last token")
        if problems:
            raise ValueError("bad PRM configuration:\n  " + "\n  ".join(problems))
