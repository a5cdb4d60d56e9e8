"""Training process reward models on step data: classification on step labels, or value iteration (TD).

    reason-gym train prm --data runs/prm_data/game24 --label mc_soft               # BCE on Monte-Carlo labels
    reason-gym train prm --data runs/prm_data/game24 --method td --td-lambda 0.5   # value iteration
    reason-gym train prm --help                                                    # every setting

The data is one or more step-data folders (``meta.json`` + ``steps.jsonl``, see :mod:`agents.training.prm_data`;
``--data a,b`` pools their trajectories, e.g. two rounds of the loop). A PRM gives the state after each step a score
in [0, 1], read at the end of the step's tag: a value head's sigmoid (``--head value``: a token-classification
model, e.g. the embedded model with a new one-label head) or a causal LM's
``p(+) / (p(+) + p(-))`` (``--head token``, Math-Shepherd). Training reads the very logits that
:class:`agents.prm.HFStepScorer` scores with (:meth:`~agents.prm.HFStepScorer.step_logits`), and the saved folder's
``training.json`` tells ``make_prm("hf:PATH")`` how to read it back.

- **Classification** (§4.2.1 first form): BCE on ``--label`` ``mc_soft`` (share of Monte-Carlo completions that end
  correct), ``mc_hard`` (whether any does) or ``exact`` (the env's exact check: an upper bound, trained on the very
  signal the PRM is evaluated against).
- **Value iteration** (``--method td``, §4.2.1 second form): the state after a step gets ``gamma * max_a V'(s + a)``
  over ``num_proposals`` steps the policy proposes there (sampled once into ``run_dir/proposals.jsonl``, their cost
  counted with :class:`agents.budget.Budget`) and the trajectory's own next step. ``V'(s + a)`` is the env's outcome
  (0/1) for a final answer, 0 for a step the env rejects, else the target network's score (a copy of the PRM synced
  every ``target_sync_every`` steps); a trajectory's final answer is terminal, its target the outcome. n-step and
  TD(lambda) targets: :func:`td_targets`.

``run_dir/checkpoint.pt`` (PRM, target network, optimizer, every generator: :mod:`agents.training.checkpoints`)
resumes a killed run exactly; a checkpoint of another kind of PRM is refused naming both; a non-finite loss stops the
run and keeps the last good checkpoint. :func:`evaluate_prm` measures any PRM against exact step labels.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from agents.bench import seed_policy
from agents.budget import Budget
from agents.cli import parse, run_script
from agents.policies import make_policy, model_path
from agents.policies.base import policy_inputs
from agents.policies.hf import configure_threads, load_model_and_tokenizer
from agents.prm import HFStepScorer, score_steps, tokenizer_fingerprint
from agents.provenance import code_commit
from agents.training.checkpoints import CheckpointError, Checkpoints, log_scalars, open_writer
from agents.training.grpo import NonFiniteLossError
from agents.training.prm_config import PRMConfig
from agents.training.prm_records import META_FILE, load_step_data, read_meta
from agents.training.sft import cosine_learning_rate
from reason_gym.core import EpisodeState, is_final_answer
from reason_gym.files import write_atomic

SAME = ("data", "method", "label", "step_tag", "separator", "good_token", "bad_token", "gamma", "td_lambda", "n_step",
        "num_proposals", "include_taken", "policy", "proposal_temperature", "max_new_tokens", "target_sync_every",
        "seed", "batch_size", "lr_schedule")  # fmt: skip
"""With the kind fields (backbone, head), what a resumed run must share with its checkpoint."""
PROPOSAL_CHUNK = 32
"""States per ``propose`` call while sampling the TD proposals (each chunk is seeded and saved on its own)."""

# --------------------------------------------------------------------------------------------------- step data


def read_step_data(folder: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The trajectories of a step-data folder, each checked (:func:`~agents.training.prm_records.load_step_data`:
    a bad record is a ValueError naming the file and line), and its ``meta.json``."""
    return load_step_data(folder), read_meta(Path(folder) / META_FILE)


def read_step_folders(folders: Sequence[str | Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The trajectories of several step-data folders, pooled in order, and each folder's ``meta.json``.

    Raises:
        ValueError: A bad record (see :func:`read_step_data`), or folders labelled with other env settings or another
            validation rule (a problem one holds out for validation could then be trained on from another).
    """
    records, metas = [], []
    for folder in folders:
        found, meta = read_step_data(folder)
        records += found
        metas.append(meta)
    for key in ("env_kwargs", "val_fraction"):
        seen = {json.dumps(meta["config"].get(key), sort_keys=True): folder
                for folder, meta in zip(folders, metas, strict=True)}  # fmt: skip
        if len(seen) > 1:
            named = "; ".join(f"{folder}: {value}" for value, folder in seen.items())
            raise ValueError(f"the step-data folders were labelled with other {key} ({named}): pool folders that agree")
    return records, metas


def _as_folders(data: str | Sequence[str] | None) -> tuple[str, ...]:
    """A configuration's ``data`` as a tuple of folders (older runs saved one folder as text)."""
    return (data,) if isinstance(data, str) else tuple(data or ())


def replay(
    record: dict[str, Any], envs: dict[str, Any], env_kwargs: dict[str, Any] | None = None
) -> tuple[list[EpisodeState], bool]:
    """The env's states along a trajectory (at reset, then after each step) and whether it ended at a final answer;
    ``envs`` keeps one env per id (made with ``env_kwargs``, those the data was labelled with).

    Raises:
        ValueError: The env's problem, a step's verdict or the outcome disagrees with the record.
    """
    env = envs.get(record["env_id"])
    if env is None:
        env = envs[record["env_id"]] = gym.make(record["env_id"], **(env_kwargs or {})).unwrapped
    observation, _ = env.reset(options={"index": record["index"], "split": record["split"]})
    where = f"the record of {record['env_id']} {record['split']} #{record['index']}"
    if observation != record["question"]:
        raise ValueError(f"{where} has another question than the env's: {record['question']!r} != {observation!r}")
    states, terminated = [env.get_state()], False
    for step in record["steps"]:
        _, _, terminated, _, info = env.step(step)
        if "error" in info and not terminated:
            raise ValueError(f"{where}: the env rejects its step {step!r} ({info['error']})")
        states.append(env.get_state())
    if terminated and int(info["is_correct"]) != record["outcome"]:
        raise ValueError(f"{where} says outcome {record['outcome']}, the env judges {int(info['is_correct'])}")
    return states, terminated


# ------------------------------------------------------------------------------------------------ value targets


def td_targets(best_next: Sequence[float], outcome: float, terminal: bool, gamma: float, lam: float = 0.0,
               n_step: int = 1) -> list[float]:  # fmt: skip
    """Value-iteration targets of the states ``s_1 .. s_T`` after each step of one trajectory.

    ``best_next[i]`` is ``M_i = max_a V'(s_{i+1} + a)`` over the actions at the state after step ``i + 1`` (the
    trajectory's own next step among them, so the last but one state's max includes the outcome); when the
    trajectory is ``terminal`` (it ends at a final answer) the last state's value is ``outcome`` and its ``M`` is
    not read. With no reward before the end:

    - one-step: ``y_i = gamma * M_i``;
    - n-step: ``y_i = gamma^n * M_{i+n-1}``, following the trajectory; past its end, ``gamma^k * outcome`` (k steps
      to the terminal state) or ``gamma^k * M_last`` (a trajectory cut before its answer: the last state bootstraps);
    - TD(lambda): ``y_i = gamma * ((1 - lam) * M_i + lam * y_{i+1})``, the lambda-weighted mix of the n-step targets.

    >>> [round(y, 4) for y in td_targets([0.5, 0.8, float("nan")], outcome=1.0, terminal=True, gamma=0.9)]
    [0.45, 0.72, 1.0]
    >>> [round(y, 4) for y in td_targets([0.5, 0.8, float("nan")], 1.0, True, 0.9, lam=1.0)]
    [0.81, 0.9, 1.0]
    """
    count = len(best_next)
    if lam > 0:
        y = [0.0] * count
        y[-1] = outcome if terminal else gamma * best_next[-1]
        for i in range(count - 2, -1, -1):
            y[i] = gamma * ((1 - lam) * best_next[i] + lam * y[i + 1])
        return y
    targets = []
    for i in range(count):
        last = i + n_step - 1  # the state the max is taken at
        if last < count - 1 or (last == count - 1 and not terminal):
            targets.append(gamma**n_step * best_next[last])
        elif terminal:
            targets.append(gamma ** (count - 1 - i) * outcome)
        else:
            targets.append(gamma ** (count - i) * best_next[-1])
    return targets


def make_proposals(
    records: list[dict[str, Any]], config: PRMConfig, path: Path, env_kwargs: dict[str, Any]
) -> tuple[list[Any], dict[str, int]]:
    """The actions the policy proposes at every non-terminal state of every trajectory, evaluated by the env: for
    record r and state i (after step i + 1), ``actions[r][i]`` is a list of ``[step, value]``, ``value`` being the
    outcome of a final answer, 0.0 for a step the env rejects, and None for a step to bootstrap from (``step`` is
    then the env's canonical text of it). Sampled once, chunk by chunk, into ``path`` (a killed run goes on where it
    stopped, each chunk seeded on its own, so the proposals are those of an uninterrupted run); returns them and the
    compute they cost (:class:`~agents.budget.Budget` counters)."""
    settings = {k: getattr(config, k) for k in ("data", "policy", "num_proposals", "proposal_temperature",
                                                 "max_new_tokens", "seed")}  # fmt: skip
    settings |= {"data": list(config.data), "chunk": PROPOSAL_CHUNK}
    done: dict[int, dict[str, Any]] = {}
    lines = path.read_text().split("\n")[:-1] if path.exists() else []  # a torn last line is dropped: sampled again
    if lines:
        header = json.loads(lines[0])
        header["data"] = list(_as_folders(header.get("data")))
        if header != settings:
            raise CheckpointError(f"{path} holds proposals of {header}, not of this run's {settings}: pass --no-resume")
        done = {item["chunk"]: item for item in map(json.loads, lines[1:])}
    write_atomic(path, "".join(line + "\n" for line in [json.dumps(settings), *lines[1 : 1 + len(done)]]))
    envs: dict[str, Any] = {}
    todo = []  # (record, state index, state) for every state whose value bootstraps
    for r, record in enumerate(records):
        states, terminal = replay(record, envs, env_kwargs)
        todo += [(r, i, s) for i, s in enumerate(states[1:]) if not (terminal and i == len(states) - 2)]
    policy = None
    with path.open("a") as file:
        for chunk, start in enumerate(range(0, len(todo), PROPOSAL_CHUNK)):
            if chunk in done:
                continue
            policy = policy or make_policy(config.policy, temperature=config.proposal_temperature,
                                           max_new_tokens=config.max_new_tokens)  # fmt: skip
            seed_policy(policy, config.seed * 100_003 + chunk)  # this chunk's draws, wherever a run starts
            items, budget = todo[start : start + PROPOSAL_CHUNK], Budget()
            states = [state for _, _, state in items]
            candidates = policy.propose(policy_inputs(policy, states), n=config.num_proposals)
            budget.charge_samples(sum(map(len, candidates)), sum(c.num_tokens for cs in candidates for c in cs))
            actions = []
            for (r, _, state), proposed in zip(items, candidates, strict=True):
                env = envs[records[r]["env_id"]]
                evaluated = []
                for candidate in proposed:
                    env.set_state(state)
                    _, _, terminated, _, info = env.step(candidate.text)
                    budget.charge_env_steps()
                    if terminated:
                        evaluated.append([candidate.text, float(info["is_correct"])])
                    elif "error" in info:
                        evaluated.append([candidate.text, 0.0])
                    else:
                        evaluated.append([env.get_state().steps[-1], None])
                actions.append(evaluated)
            done[chunk] = {"chunk": chunk, "actions": actions, "cost": budget.used()}
            file.write(json.dumps(done[chunk]) + "\n")
            file.flush()
    out: list[Any] = [[[] for _ in record["steps"]] for record in records]
    for chunk, start in enumerate(range(0, len(todo), PROPOSAL_CHUNK)):
        for (r, i, _), evaluated in zip(todo[start : start + PROPOSAL_CHUNK], done[chunk]["actions"], strict=True):
            out[r][i] = evaluated
    cost = {name: sum(item["cost"][name] for item in done.values()) for name in Budget().used()}
    return out, cost


# --------------------------------------------------------------------------------------------------- the model


def load_backbone(config: PRMConfig, device: str) -> tuple[Any, Any]:
    """The model to train and its tokenizer: a token-classification model as it is, a causal LM with a new one-label
    value head (``head=value``) or as it is (``head=token``; a ValueError for a model without a language-model head).
    """
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    source = str(model_path(config.backbone))
    architectures = AutoConfig.from_pretrained(source).architectures or []
    value_head = any(name.endswith("ForTokenClassification") for name in architectures)
    if config.head == "token":
        if value_head:
            raise ValueError(f"{config.backbone} holds {architectures}, a value head; --head token needs a causal LM")
        return load_model_and_tokenizer(source, device=device)
    model = AutoModelForTokenClassification.from_pretrained(
        source, use_kernels=False, **({} if value_head else {"num_labels": 1})
    )
    return model.to(device), AutoTokenizer.from_pretrained(source)


# -------------------------------------------------------------------------------------------------- evaluation


def roc_auc(scores: Sequence[float], labels: Sequence[float]) -> float:
    """The area under the ROC curve (ties count one half), or NaN with only one class.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    p, y = np.asarray(scores, dtype=float), np.asarray(labels) > 0.5
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return float("nan")
    _, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based ranks, ties given their mean rank
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def prm_step_scores(prm: Any, records: Sequence[dict[str, Any]], batch_size: int = 64) -> list[float]:
    """Every step's score under ``prm`` (records in order, steps in order): a plain ``prm(question, steps)``
    (batched through ``score_batch`` where it has one) or a :class:`~reason_gym.core.StatePRM` (given the env's
    state of each record at reset)."""
    scores: list[float] = []
    envs: dict[str, Any] = {}
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        if hasattr(prm, "score_batch"):
            scores += [s for row in prm.score_batch([(r["question"], r["steps"]) for r in chunk]) for s in row]
        elif callable(getattr(prm, "score_state", None)):
            scores += [s for r in chunk for s in score_steps(prm, replay(r, envs)[0][0], r["steps"])]
        else:
            scores += [float(s) for r in chunk for s in prm(r["question"], r["steps"])]
    return scores


def score_metrics(scores: Sequence[float], labels: Sequence[float], bins: int = 10) -> dict[str, Any]:
    """``roc_auc``, ``brier`` (mean squared error of the scores), ``calibration`` (``(mean score, share of positives,
    count)`` of each non-empty bin of ``bins`` equal-width score bins), ``steps`` and ``positives``.

    >>> m = score_metrics([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], bins=2)
    >>> m["roc_auc"], round(m["brier"], 4), m["calibration"][1]
    (0.75, 0.1581, (0.8, 1.0, 1))
    """
    p, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    calibration = [(float(p[which == b].mean()), float(y[which == b].mean()), int((which == b).sum()))
                   for b in range(bins) if (which == b).any()]  # fmt: skip
    return {"roc_auc": roc_auc(p, y), "brier": float(np.mean((p - y) ** 2)), "calibration": calibration,
            "steps": len(p), "positives": int(y.sum())}  # fmt: skip


def evaluate_prm(
    prm: Any, records: Sequence[dict[str, Any]], *, bins: int = 10, batch_size: int = 64
) -> dict[str, Any]:
    """A PRM's step scores (:func:`prm_step_scores`) against the exact step labels of ``records`` (those that have
    them): :func:`score_metrics`.

    Raises:
        ValueError: No record has exact labels.
    """
    usable = [r for r in records if r["labels"].get("exact") is not None]
    if not usable:
        raise ValueError("no record has exact step labels (labels.exact): evaluate on a task with an exact check")
    labels = [v for r in usable for v in r["labels"]["exact"]]
    return score_metrics(prm_step_scores(prm, usable, batch_size), labels, bins)


# ------------------------------------------------------------------------------------------------- the trainer


class PRMTrainer:
    """The PRM, its target network, optimizer and data of one run; :meth:`train` runs it."""

    def __init__(self, config: PRMConfig) -> None:
        self.config = config
        self.commit = code_commit()  # of the code this run started with (the checkout may move while it trains)
        configure_threads(config.num_threads)
        self.device = config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.run_dir = Path(config.run_dir)
        self.checkpoints = Checkpoints(self.run_dir)
        self.state = None
        if config.resume and self.checkpoints.exists():  # first: a run that cannot resume fails before any work
            self.state = self.checkpoints.read(config, (), map_location=self.device)
            self._check_kind(self.state)
        records, self.metas = read_step_folders(config.data)
        self.records = [r for r in records if r["steps"]]  # a trajectory of rejected actions only has no target
        if config.method == "classification" and any(r["labels"].get(config.label) is None for r in self.records):
            raise ValueError(f"{', '.join(config.data)} has records without {config.label} labels: choose another "
                             "--label")  # fmt: skip
        self.eval_records = read_step_data(config.eval_data)[0] if config.eval_data else None
        self.proposals, self.proposal_cost = None, None
        if config.method == "td":
            self.run_dir.mkdir(parents=True, exist_ok=True)
            proposals = self.run_dir / "proposals.jsonl"
            if not config.resume:
                proposals.unlink(missing_ok=True)
            env_kwargs = self.metas[0]["config"].get("env_kwargs") or {}  # the same in every folder
            self.proposals, self.proposal_cost = make_proposals(self.records, config, proposals, env_kwargs)

        torch.manual_seed(config.seed)  # the new head, then dropout
        model, self.tokenizer = load_backbone(config, self.device)
        self.model = model.float().train()
        options = {"mode": config.head, "step_tag": config.step_tag, "separator": config.separator}
        if config.head == "token":
            options |= {"good_token": config.good_token, "bad_token": config.bad_token}
        self.options = options
        self.scorer = HFStepScorer(self.model, self.tokenizer, **options)
        self.nets = torch.nn.ModuleDict({"prm": self.model})
        if config.method == "td":
            self.nets["target"] = copy.deepcopy(self.model).eval().requires_grad_(False)
            self.target_scorer = HFStepScorer(self.nets["target"], self.tokenizer, **options)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
        )
        self.global_step = 0
        if self.state is not None:
            self._check_kind(self.state, self.nets)
            self.global_step, _ = self.checkpoints.restore(self.state, model=self.nets, optimizer=self.optimizer)

    def _check_kind(self, state: dict[str, Any], nets: torch.nn.Module | None = None) -> None:
        """Refuses a checkpoint of another PRM, naming both: another head, method or backbone, other settings, or
        (given ``nets``) other weights than theirs (another tokenizer's embeddings, a causal LM for a value head)."""
        saved, mine, path = state["config"], asdict(self.config), self.checkpoints.path
        saved = {"lr_schedule": "constant"} | saved | {"data": _as_folders(saved.get("data"))}  # older layouts
        kind = "{head}-head {method} PRM of {backbone}"
        if any(saved.get(k) != mine[k] for k in ("head", "method", "backbone")):
            raise CheckpointError(f"{path} holds a {kind.format(**saved)}, this run trains a {kind.format(**mine)}: "
                                  "pass --no-resume or another --run-dir")  # fmt: skip
        changed = [f"{k}: {saved.get(k)!r} there, {mine[k]!r} here" for k in SAME if saved.get(k) != mine[k]]
        if changed:
            raise CheckpointError(f"{path} was trained with other settings ({'; '.join(changed)}): pass --no-resume")
        theirs = {k: tuple(v.shape) for k, v in state["model"].items()}
        ours = {k: tuple(v.shape) for k, v in nets.state_dict().items()} if nets is not None else theirs
        if theirs != ours:
            key = (sorted(set(theirs) ^ set(ours)) or [k for k in ours if theirs[k] != ours[k]])[0]
            raise CheckpointError(
                f"{path} holds other weights than {self.config.backbone}'s PRM (another tokenizer or head): {key} "
                f"is {theirs.get(key, 'absent')} there, {ours.get(key, 'absent')} here"
            )

    def targets(self, rows: Sequence[int]) -> list[torch.Tensor]:
        """The targets of every step of the trajectories ``rows``: labels, or TD targets from the target network."""
        config = self.config
        if config.method == "classification":
            return [torch.tensor(self.records[r]["labels"][config.label], dtype=torch.float) for r in rows]
        records = [self.records[r] for r in rows]
        own = self._values([(r["question"], r["steps"]) for r in records])  # V'(s_1 .. s_T) of each trajectory
        queries = [
            (record["question"], [*record["steps"][:i], step])
            for row, record in zip(rows, records, strict=True)
            for i, actions in enumerate(self.proposals[row])
            for step, value in actions
            if value is None
        ]
        boot = iter(values[-1] for values in self._values(queries))
        out = []
        for row, record, values in zip(rows, records, own, strict=True):
            count, terminal = len(record["steps"]), is_final_answer(record["steps"][-1])
            best = []
            for i, actions in enumerate(self.proposals[row]):
                candidates = [next(boot) if value is None else value for _, value in actions]
                if config.include_taken and i < count - 1:
                    candidates.append(record["outcome"] if terminal and i + 1 == count - 1 else values[i + 1])
                best.append(max(candidates, default=0.0))
            y = td_targets(best, record["outcome"], terminal, config.gamma, config.td_lambda, config.n_step)
            out.append(torch.tensor(y, dtype=torch.float))
        return out

    def _values(self, solutions: list[tuple[str, Sequence[str]]]) -> list[list[float]]:
        size = self.config.score_batch_size
        return [
            v for i in range(0, len(solutions), size) for v in self.target_scorer.score_batch(solutions[i : i + size])
        ]

    def batch_rows(self, step: int) -> list[int]:
        """The trajectories of training step ``step`` (0-based): shuffled once per epoch by ``(seed, epoch)``, so a
        resumed run sees the batches the killed one would have."""
        per_epoch = math.ceil(len(self.records) / self.config.batch_size)
        epoch, offset = divmod(step, per_epoch)
        order = np.random.default_rng((self.config.seed, epoch)).permutation(len(self.records))
        return order[offset * self.config.batch_size : (offset + 1) * self.config.batch_size].tolist()

    def step(self) -> dict[str, float]:
        """One optimizer step on one batch of trajectories; returns its metrics."""
        rows = self.batch_rows(self.global_step)
        targets = torch.cat(self.targets(rows)).to(self.device)
        logits = torch.cat(self.scorer.step_logits([(self.records[r]["question"], self.records[r]["steps"])
                                                     for r in rows]))  # fmt: skip
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the loss is {loss.item()} at step {self.global_step + 1}; the last good checkpoint "
                f"({self.checkpoints.path}, if any) is kept. Lower --learning-rate and run the same command again"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        rate = self.learning_rate(self.global_step)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.optimizer.step()
        self.global_step += 1
        if self.config.method == "td" and self.global_step % self.config.target_sync_every == 0:
            self.nets["target"].load_state_dict(self.model.state_dict())
        scores = logits.detach().sigmoid()
        return {"losses/bce": loss.item(), "losses/grad_norm": float(grad_norm), "charts/learning_rate": rate,
                "charts/target_mean": float(targets.mean()), "charts/score_mean": float(scores.mean())}  # fmt: skip

    def learning_rate(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (from 0) under ``lr_schedule``."""
        config = self.config
        if config.lr_schedule == "cosine":
            return cosine_learning_rate(step, config.total_steps, config.learning_rate)
        return config.learning_rate

    def evaluate(self) -> dict[str, Any]:
        """:func:`evaluate_prm` of the PRM as it is now on ``eval_data`` (empty without it)."""
        if not self.eval_records:
            return {}
        self.model.eval()
        result = evaluate_prm(self.scorer, self.eval_records, batch_size=self.config.score_batch_size)
        self.model.train()
        return result

    def train(self) -> dict[str, Any]:
        """Runs (or resumes) the configured steps, saves the PRM; returns the last metrics and the evaluation."""
        config = self.config
        writer = open_writer(self.run_dir, self.global_step, config)
        bar = tqdm(total=config.total_steps, initial=self.global_step, disable=not config.progress, desc="prm")
        metrics: dict[str, Any] = {}
        started = time.perf_counter()
        while self.global_step < config.total_steps:
            metrics = self.step()
            at_eval = config.eval_every and self.global_step % config.eval_every == 0
            if at_eval or self.global_step == config.total_steps:
                evaluation = self.evaluate()
                metrics |= {f"eval/{k}": v for k, v in evaluation.items() if k in ("roc_auc", "brier")}
                metrics["eval_calibration"] = evaluation.get("calibration")
            log_scalars(writer, {k: v for k, v in metrics.items() if k.count("/")}, self.global_step)
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['losses/bce']:.4f}")
            if self.global_step % config.checkpoint_every == 0 or self.global_step == config.total_steps:
                self.checkpoints.save(self.global_step, model=self.nets, optimizer=self.optimizer, config=config)
        bar.close()
        writer.close()
        if not metrics:  # resumed after the last step (killed while saving the model): evaluate it again
            metrics = {f"eval/{k}": v for k, v in self.evaluate().items() if k in ("roc_auc", "brier")}
        metrics["time/train_s"] = time.perf_counter() - started
        self.save(metrics)
        return metrics

    def save(self, metrics: dict[str, Any]) -> Path:
        """Writes the PRM (weights, tokenizer) and ``training.json`` to the output folder; returns it."""
        output = Path(self.config.output_dir or self.run_dir / "model")
        self.model.save_pretrained(output)
        self.tokenizer.save_pretrained(output)
        prm = self.options | {"tokenizer": tokenizer_fingerprint(self.tokenizer)}  # how make_prm reads it back
        info = {"prm": prm, "config": asdict(self.config), "data_meta": self.metas, "commit": self.commit,
                "steps": self.global_step, "metrics": metrics, "proposal_cost": self.proposal_cost}  # fmt: skip
        write_atomic(output / "training.json", json.dumps(info, indent=1) + "\n")
        return output


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parses the flags (``--help`` lists them) and trains.

    Raises:
        ValueError: A bad flag, configuration, data folder or checkpoint (one line, saying what to do).
    """
    config = parse(PRMConfig, argv, "reason-gym train prm", description=__doc__.split("\n\n")[0])
    metrics = PRMTrainer(config).train()
    shown = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float) and k.startswith(("losses/", "eval/"))}
    print(f"saved {config.output_dir or Path(config.run_dir) / 'model'}: {json.dumps(shown)}")
    return metrics


if __name__ == "__main__":
    raise SystemExit(run_script(main, "prm"))
