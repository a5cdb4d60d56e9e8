"""Multi-step episodes inside TRL's ``GRPOTrainer``: a ``rollout_func`` that plays whole episodes step by step.

TRL (1.16) calls ``rollout_func(prompts, trainer)`` with the batch's prompts (each already repeated once per
generation of its group) and expects, per prompt, ``prompt_ids``, ``completion_ids`` and ``logprobs``; an
``env_mask`` (1 = a model token, 0 = text from elsewhere) keeps tokens out of the loss, and every other key is
passed on to the reward functions as a column. :class:`EnvRollout` fills them by playing each prompt's problem
through its environment:

1. The problem is found from the prompt: the rows of the trainer's dataset (built by
   :func:`reason_gym.integrations.trl.make_dataset`) are looked up by their ``prompt``.
2. Each turn, every running episode generates its next step with the trainer's current model (its generation
   settings: sampling, temperature, top-p, top-k), conditioned on the prompt and the episode's transcript so far,
   until a newline (the step separator), an end-of-sequence token or the step's token budget.
3. The step (its text up to the newline) goes to ``env.step``; its reward and reward components are kept. The env
   may answer with text of its own (``feedback``, by default a line saying why a step was rejected), appended to
   the transcript with ``env_mask`` 0 and log-probability 0.
4. An episode ends at a final answer or the env's step limit (the env then appends the end-of-sequence token, with
   ``env_mask`` 0, so TRL counts the completion as finished), at an end-of-sequence token the model writes, or when
   the transcript reaches the trainer's ``max_completion_length`` (a step cut there is not sent to the env: TRL
   counts the completion as clipped).

The completion TRL trains on is the transcript: the model's steps and the env's text, in order, so what the model
was conditioned on while generating each step is exactly what TRL scores it with. The per-step rewards travel as
the ``step_rewards`` and ``step_components`` columns; :meth:`EnvRollout.reward_funcs`
(:func:`reason_gym.integrations.trl.process_reward_funcs`) turns them into TRL's scalar: the episode's return
(``total``) and each component's share (logged only, by :func:`~reason_gym.integrations.trl.reward_weights`).

A step is one line, as for the project's own policies: multi-line steps (a code task's ``Run:`` block) are not
generated here; single-turn completions scored by :func:`~reason_gym.integrations.trl.make_reward_funcs` can hold
them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch

from reason_gym.integrations import Feedback, rejection_feedback
from reason_gym.integrations.trl import (
    PROBLEM_COLUMNS,
    EpisodeScorer,
    check_count,
    check_env_id,
    contributions,
    process_reward_funcs,
    reset_to_row,
)


@dataclass
class Episode:
    """One episode a rollout played (kept in :attr:`EnvRollout.history` for logging and tests)."""

    row: dict[str, Any]
    """the problem columns of its dataset row"""
    steps: list[str] = field(default_factory=list)
    """the actions sent to ``env.step``, in order"""
    rewards: list[float] = field(default_factory=list)
    components: list[dict[str, float]] = field(default_factory=list)
    """each step's reward components, as shares of its reward (weight times value)"""
    feedback: list[str] = field(default_factory=list)
    """the env's text after each step (``""`` for none)"""
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    done: bool = False
    """the env ended the episode (a final answer or its step limit)"""
    is_correct: bool = False
    stopped: str = ""
    """why generation ended: "env", "eos", "length" or "turns\""""


def prompt_key(prompt: Any) -> str:
    """A hashable key of a dataset prompt (plain text, or chat messages)."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, default=str)


class EnvRollout:
    """TRL's ``rollout_func`` for a reason_gym task: whole episodes, step by step (see the module docstring).

    Args:
        env_id: A registered id (checked now, before any model loads).
        dataset: The rows whose prompts the trainer will pass (default: the trainer's train and eval datasets,
            read at the first call); each needs ``prompt`` and the problem columns of ``make_dataset``.
        max_step_tokens: The longest step, in tokens (a step cut there is still sent to the env).
        max_turns: A guard for envs without a step limit.
        feedback: What the env writes after a step (default :func:`rejection_feedback`; ``None`` for nothing).
        **env_kwargs: For ``gymnasium.make``, as given to ``make_dataset``.
    """

    def __init__(
        self,
        env_id: str,
        *,
        dataset: Any = None,
        max_step_tokens: int = 64,
        max_turns: int = 64,
        feedback: Feedback | None = rejection_feedback,
        **env_kwargs: Any,
    ) -> None:
        self.max_step_tokens = check_count("max_step_tokens", max_step_tokens)
        self.max_turns = check_count("max_turns", max_turns)
        if feedback is not None and not callable(feedback):
            raise ValueError(f"feedback must be None or a callable (step, reward, info) -> str, got {feedback!r}")
        self.env_id = check_env_id(env_id)
        self.env_kwargs = env_kwargs
        self.feedback = feedback
        scorer = EpisodeScorer(env_id, **env_kwargs)  # its first env: the pool's, and the weights and components
        self.weights = scorer.weights
        self.components = scorer.components
        self._envs: list[gym.Env] = [scorer.env]
        self._rows: dict[str, dict[str, Any]] | None = None
        if dataset is not None:
            self._rows = {}
            self._index(dataset)
        self._stop_ids: dict[int, list[int]] = {}
        self.history: list[list[Episode]] = []
        """the episodes of each call, in the order of its prompts (the last ``keep_history`` calls)"""
        self.keep_history = 16
        self.__name__ = "EnvRollout"

    def reward_funcs(self) -> list[Callable[..., list[float | None]]]:
        """The reward functions of these rollouts: the return (``total``), then each weighted component's share."""
        return process_reward_funcs(self.components)

    # ------------------------------------------------------------------ problems

    def _index(self, dataset: Any) -> None:
        assert self._rows is not None
        names = getattr(dataset, "column_names", None) or (list(dataset[0]) if len(dataset) else [])
        if "prompt" not in names or not {"index", "problem"} & set(names):
            raise ValueError(
                f"the dataset needs a 'prompt' column and the problem columns {list(PROBLEM_COLUMNS)} (make_dataset "
                f"builds them); it has {sorted(names)}"
            )
        for row in dataset:
            self._rows.setdefault(prompt_key(row["prompt"]), {k: row[k] for k in PROBLEM_COLUMNS if k in row})

    def _row(self, prompt: Any, trainer: Any) -> dict[str, Any]:
        if self._rows is None:
            self._rows = {}
            for dataset in (getattr(trainer, "train_dataset", None), getattr(trainer, "eval_dataset", None)):
                for part in dataset.values() if isinstance(dataset, Mapping) else [dataset]:
                    if part is not None:
                        self._index(part)
        row = self._rows.get(prompt_key(prompt))
        if row is None:
            raise ValueError(
                f"a prompt is in no dataset this rollout knows ({str(prompt)[:80]!r}...): pass dataset= to EnvRollout"
            )
        return row

    def _env(self, i: int) -> gym.Env:
        while len(self._envs) <= i:
            self._envs.append(gym.make(self.env_id, **self.env_kwargs))
        return self._envs[i]

    # ------------------------------------------------------------------ generation

    def _encode_prompt(self, prompt: Any, trainer: Any) -> list[int]:
        tokenizer = trainer.processing_class
        if isinstance(prompt, str):
            return list(tokenizer(text=prompt)["input_ids"])
        tokenized = tokenizer.apply_chat_template(
            conversation=[prompt],
            chat_template=getattr(trainer, "chat_template", None),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            **(getattr(trainer, "chat_template_kwargs", None) or {}),
        )
        return list(tokenized["input_ids"][0])

    def _stop(self, tokenizer: Any) -> list[int]:
        key = id(tokenizer)
        if key not in self._stop_ids:
            from agents.policies.hf import stop_token_ids

            self._stop_ids[key] = stop_token_ids(tokenizer, "\n")
        return self._stop_ids[key]

    def _generation_config(self, trainer: Any, tokenizer: Any, max_new_tokens: int, stop: list[int]) -> Any:
        from transformers import GenerationConfig

        base = getattr(trainer, "generation_config", None)
        if base is not None:
            config = copy.deepcopy(base)
        else:  # a trainer that generates with vLLM builds none: the same settings from its arguments
            config = GenerationConfig(
                do_sample=True,
                temperature=trainer.temperature,
                top_p=trainer.top_p,
                top_k=trainer.top_k,
                min_p=trainer.min_p,
                repetition_penalty=trainer.repetition_penalty,
            )
        config.max_new_tokens = max_new_tokens
        config.eos_token_id = stop
        config.pad_token_id = _pad_id(tokenizer)
        config.output_logits = True
        config.return_dict_in_generate = True
        return config

    @torch.no_grad()
    def _generate(
        self, trainer: Any, contexts: list[list[int]], max_new_tokens: int
    ) -> tuple[list[list[int]], list[list[float]]]:
        """One step for every context: the generated ids (up to and including the first stop token) and their
        log-probabilities under the model at the trainer's temperature (what TRL computes them with)."""
        tokenizer = trainer.processing_class
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        stop = self._stop(tokenizer)
        model = trainer.accelerator.unwrap_model(trainer.model)
        device = trainer.accelerator.device
        pad = _pad_id(tokenizer)
        width = max(len(c) for c in contexts)
        input_ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts], device=device)
        attention_mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts], device=device)
        config = self._generation_config(trainer, tokenizer, max_new_tokens, stop)
        output = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
        new = output.sequences[:, width:]  # (B, T)
        logits = torch.stack(output.logits, dim=1).float()  # (B, T, V)
        temperature = float(getattr(trainer, "temperature", 1.0) or 1.0)
        logps = torch.log_softmax(logits / temperature, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)  # (B, T)
        stops = torch.tensor(stop, device=new.device)
        ids_out, logps_out = [], []
        for row_ids, row_logps in zip(new.tolist(), logps.tolist(), strict=True):
            hits = torch.isin(torch.tensor(row_ids, device=new.device), stops).nonzero()
            end = int(hits[0]) + 1 if len(hits) else len(row_ids)
            ids_out.append(row_ids[:end])
            logps_out.append(row_logps[:end])
        del stops
        return ids_out, logps_out

    # ------------------------------------------------------------------ the rollout

    def __call__(self, prompts: Sequence[Any], trainer: Any) -> dict[str, Any]:
        """Plays one episode per prompt (see the module docstring); returns TRL's fields and the step rewards."""
        tokenizer = trainer.processing_class
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        eos = {tokenizer.eos_token_id} - {None}
        budget = int(trainer.max_completion_length)
        prompt_ids = [self._encode_prompt(prompt, trainer) for prompt in prompts]
        episodes = [Episode(row=dict(self._row(prompt, trainer))) for prompt in prompts]
        envs = [self._env(i) for i in range(len(prompts))]
        for env, episode in zip(envs, episodes, strict=True):
            reset_to_row(env, episode.row)
        running = list(range(len(prompts)))
        for _ in range(self.max_turns):
            if not running:
                break
            room = [budget - len(episodes[i].completion_ids) for i in running]
            generated, logps = self._generate(
                trainer,
                [prompt_ids[i] + episodes[i].completion_ids for i in running],
                min(self.max_step_tokens, max(room)),
            )
            still = []
            for i, ids, lps, left in zip(running, generated, logps, room, strict=True):
                episode = episodes[i]
                ids, lps = ids[:left], lps[:left]
                episode.completion_ids += ids
                episode.env_mask += [1] * len(ids)
                episode.logprobs += lps
                text = tokenizer.decode(ids, skip_special_tokens=True)
                step, newline, _ = text.partition("\n")
                ended = bool(ids) and ids[-1] in eos
                if not newline and not ended and len(episode.completion_ids) >= budget:
                    episode.stopped = "length"  # a step cut by the completion budget is not sent to the env
                    continue
                _, reward, terminated, truncated, info = envs[i].step(step)
                episode.steps.append(step)
                episode.rewards.append(float(reward))
                episode.components.append(contributions(self.weights, info))
                if terminated or truncated:
                    episode.done, episode.stopped = True, "env"
                    episode.is_correct = bool(info.get("is_correct", False))
                    episode.feedback.append("")
                    if eos and len(episode.completion_ids) < budget and not ended:
                        # the env closes the episode: an end-of-sequence token (not the model's), so TRL counts the
                        # completion as finished rather than clipped
                        episode.completion_ids.append(min(eos))
                        episode.env_mask.append(0)
                        episode.logprobs.append(0.0)
                    continue
                if ended and not newline:
                    episode.stopped = "eos"
                    episode.feedback.append("")
                    continue
                note = self.feedback(step, float(reward), info) if self.feedback is not None else ""
                if not newline:  # a step cut by its token budget: the env closes its line
                    note = "\n" + note
                note_ids = list(tokenizer(note, add_special_tokens=False)["input_ids"]) if note else []
                note_ids = note_ids[: max(budget - len(episode.completion_ids), 0)]
                episode.feedback.append(tokenizer.decode(note_ids, skip_special_tokens=True))
                episode.completion_ids += note_ids
                episode.env_mask += [0] * len(note_ids)
                episode.logprobs += [0.0] * len(note_ids)
                if len(episode.completion_ids) >= budget:
                    episode.stopped = "length"
                else:
                    still.append(i)
            running = still
        for i in running:
            episodes[i].stopped = "turns"
        self.history.append(episodes)
        del self.history[: -self.keep_history]
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": [e.completion_ids for e in episodes],
            "logprobs": [e.logprobs for e in episodes],
            "env_mask": [e.env_mask for e in episodes],
            "step_rewards": [e.rewards for e in episodes],
            "step_components": [e.components for e in episodes],
        }


def _pad_id(tokenizer: Any) -> int:
    return next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)
