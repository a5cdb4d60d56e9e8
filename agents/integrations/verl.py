"""reason_gym inside verl (0.9.1): process advantages as a verl advantage estimator, episodes as a verl agent loop.

verl pins ``transformers<5.11``, so this module lives in a virtual environment of its own
(``scripts/test_verl_cpu.sh`` builds it and runs ``tests/integrations/verl_venv``). Importing it registers both adapters
with verl:

- :func:`compute_process_advantage`, verl's advantage estimator ``"reason_gym_process"``
  (``algorithm.adv_estimator=reason_gym_process``): the numbers of
  :func:`agents.training.advantages.process_advantages` on verl's token-level tensors. Each step's reward sits on
  its last token; the step rewards of a group (verl's ``index``, one uid per prompt) are pooled, centred by the
  pool's mean, divided by its sample std plus ``epsilon`` (when ``norm_adv_by_std_in_grpo``), and every model token
  of a step gets the sum of the normalised rewards of its step and of every later step of its own response. With
  one reward per response (on its last token) this is verl's own ``grpo`` estimator, number for number, at the same
  ``epsilon``.
- :class:`ReasonGymAgentLoop`, verl's agent loop ``"reason_gym_agent"``: plays one episode of a reason_gym
  environment step by step through verl's server manager (``generate(prompt_ids, sampling_params)``, one call per
  step, stopping at a newline) and returns the transcript's token ids, a response mask that is 0 on the text the env
  writes (``Rejected: ...`` lines), the log-probabilities, the episode's return as ``reward_score`` and the per-step
  rewards in ``extra_fields``.

Where a step ends, and verl's reward tensor. verl 0.9.1's agent-loop worker turns an agent loop's *scalar*
``reward_score`` into ``rm_scores`` with the score on the last response token; an advantage estimator sees only
``token_level_rewards``, ``response_mask``, ``index`` and ``config``. Per-step rewards therefore need two things:

1. :class:`StepRewardAgentLoopManager` (``actor_rollout_ref.rollout.agent.agent_loop_manager_class``), whose
   workers write each step's reward on the step's last token (from the loop's ``extra_fields``) instead of the
   return on the last token.
2. A way for the estimator to find steps whose reward is 0: such a step's last token carries ``-0.0`` (equal to 0
   in every sum, but ``torch.signbit`` sees it). The estimator ends a step at every token with a non-zero reward or
   a ``-0.0``, and at the response's last token. Callers that hold the step ends pass them as ``step_ends``.

Without the manager, verl's stock worker gives one reward per response and the estimator computes outcome GRPO.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import reason_gym  # noqa: F401  (registers the environments)
from agents.training.advantages import EPS
from reason_gym.integrations import Feedback, rejection_feedback
from reason_gym.integrations.trl import check_count, make_env, reset_to_row

try:
    from verl.experimental.agent_loop.agent_loop import (
        AgentLoopBase,
        AgentLoopManager,
        AgentLoopMetrics,
        AgentLoopOutput,
        AgentLoopWorker,
        register,
    )
    from verl.trainer.ppo.core_algos import register_adv_est
    from verl.workers.rollout.replica import TokenOutput

    VERL_IMPORT_ERROR: ImportError | None = None
except ImportError as error:
    # Without verl (the main venv) the module still imports, so that pytest's doctest collection and the estimator's
    # tensor code work; the classes below refuse to be built (see _require_verl).
    VERL_IMPORT_ERROR = error
    AgentLoopBase = AgentLoopManager = AgentLoopWorker = object  # type: ignore[assignment,misc]
    AgentLoopMetrics = AgentLoopOutput = TokenOutput = None  # type: ignore[assignment,misc]

    def register(name: str) -> Callable[[Any], Any]:  # type: ignore[misc]
        return lambda target: target

    register_adv_est = register  # type: ignore[assignment]


def _require_verl() -> None:
    if VERL_IMPORT_ERROR is not None:
        raise ImportError(
            f"this needs verl ({VERL_IMPORT_ERROR}); scripts/test_verl_cpu.sh builds a virtual environment with it"
        )


logger = logging.getLogger(__name__)

ESTIMATOR_NAME = "reason_gym_process"
"""The advantage estimator's name in verl's registry (``algorithm.adv_estimator``)."""

AGENT_NAME = "reason_gym_agent"
"""The agent loop's name in verl's registry (a dataset row's ``agent_name``)."""


# ---------------------------------------------------------------------------------------------- advantage estimator


def find_step_ends(token_level_rewards: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Where steps end (bool, like the rewards): tokens with a non-zero reward or a ``-0.0``, and each row's last
    token that is a model token or carries a reward (a response's final step ends there even with reward +0)."""
    marked = (token_level_rewards != 0) | torch.signbit(token_level_rewards)
    ends = marked.clone()
    positions = torch.arange(token_level_rewards.shape[-1], device=token_level_rewards.device)
    live = marked | response_mask.bool()
    last = torch.where(live, positions, -1).max(dim=-1).values  # -1: an empty row
    rows = torch.nonzero(last >= 0).squeeze(-1)
    ends[rows, last[rows]] = True
    return ends


def compute_process_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Sequence[Any] | np.ndarray,
    epsilon: float = EPS,
    norm_adv_by_std_in_grpo: bool | None = None,
    config: Any = None,
    step_ends: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Process-supervised GRPO advantages on verl's tensors (see the module docstring); returns
    ``(advantages, returns)``, both the advantages, as verl's GRPO does.

    Args:
        token_level_rewards: (batch, response_length); a step's reward on its last token (a step's reward is the sum
            of the rewards of its tokens).
        response_mask: (batch, response_length); 1 on model tokens. Env text and padding get advantage 0.
        index: The group of each row (verl passes the prompt's uid).
        epsilon: Added to the std (the project's 1e-4 by default; verl's ``grpo`` uses 1e-6).
        norm_adv_by_std_in_grpo: Divide by the pooled std (default: ``config.norm_adv_by_std_in_grpo``, else True);
            False only centres (Dr. GRPO).
        config: verl's ``AlgoConfig`` (only ``norm_adv_by_std_in_grpo`` is read).
        step_ends: (batch, response_length) bool; where each step ends, if known (default :func:`find_step_ends`).

    A group whose pool holds a single step reward is centred by 0 and divided by 1 (as verl's ``grpo`` does for a
    group of one).
    """
    if norm_adv_by_std_in_grpo is None:
        norm_adv_by_std_in_grpo = True if config is None else bool(config.get("norm_adv_by_std_in_grpo", True))
    if step_ends is None:
        step_ends = find_step_ends(token_level_rewards, response_mask)
    rewards = token_level_rewards.detach().double().cpu()
    ends = step_ends.bool().cpu()
    # Each row's steps: their token spans (after the previous end, up to this end) and rewards (the span's sum).
    spans: list[list[tuple[int, int]]] = []
    step_rewards: list[list[float]] = []
    for row in range(rewards.shape[0]):
        positions = torch.nonzero(ends[row]).squeeze(-1).tolist()
        starts = [0] + [p + 1 for p in positions[:-1]]
        spans.append(list(zip(starts, positions, strict=True)))
        step_rewards.append([float(rewards[row, a : b + 1].sum()) for a, b in spans[-1]])
    groups: dict[Any, list[int]] = {}
    for row, key in enumerate(index):
        groups.setdefault(key, []).append(row)
    advantages = torch.zeros_like(rewards)
    for rows in groups.values():
        pool = np.array([r for row in rows for r in step_rewards[row]], dtype=np.float64)
        if len(pool) == 0:
            continue
        mean, std = (pool.mean(), pool.std(ddof=1)) if len(pool) > 1 else (0.0, 1.0)
        normalised = pool - mean
        if norm_adv_by_std_in_grpo:
            normalised = normalised / (std + epsilon)
        start = 0
        for row in rows:
            own = normalised[start : start + len(step_rewards[row])]
            start += len(step_rewards[row])
            to_go = np.cumsum(own[::-1])[::-1]  # this step and every later step of the same response
            for (a, b), value in zip(spans[row], to_go, strict=True):
                advantages[row, a : b + 1] = value
    advantages = advantages.to(token_level_rewards.dtype).to(token_level_rewards.device) * response_mask
    return advantages, advantages


register_adv_est(ESTIMATOR_NAME)(compute_process_advantage)


def step_reward_scores(
    response_mask: torch.Tensor, step_ends: Sequence[Sequence[int]], step_rewards: Sequence[Sequence[float]]
) -> torch.Tensor:
    """verl's token-level ``rm_scores`` from per-step rewards: each step's reward on its last token, ``-0.0`` where
    it is 0 (so :func:`find_step_ends` still finds the step); steps cut off by the response length are dropped."""
    scores = torch.zeros_like(response_mask, dtype=torch.float32)
    width = scores.shape[-1]
    for row, (ends, rewards) in enumerate(zip(step_ends, step_rewards, strict=True)):
        for end, reward in zip(ends, rewards, strict=True):
            if 0 <= end < width:
                scores[row, end] = float(reward) if reward != 0 else -0.0
    return scores


class StepRewardAgentLoopWorker(AgentLoopWorker):
    """verl's agent-loop worker, with ``rm_scores`` holding each step's reward on the step's last token (from the
    ``step_ends`` and ``step_rewards`` that :class:`ReasonGymAgentLoop` puts in ``extra_fields``) instead of the
    episode's return on the last token. Rows of other agent loops keep verl's scores."""

    def _postprocess(self, inputs: list[Any], input_non_tensor_batch: dict | None = None, validate: bool = False):
        output = super()._postprocess(inputs, input_non_tensor_batch=input_non_tensor_batch, validate=validate)
        if "rm_scores" not in output.batch.keys():  # noqa: SIM118  (a TensorDict)
            return output
        ends = [item.extra_fields.get("step_ends") for item in inputs]
        rewards = [item.extra_fields.get("step_rewards") for item in inputs]
        rows = [i for i, (e, r) in enumerate(zip(ends, rewards, strict=True)) if e is not None and r is not None]
        if rows:
            scores = output.batch["rm_scores"]
            mask = output.batch["response_mask"]
            stepwise = step_reward_scores(mask[rows], [ends[i] for i in rows], [rewards[i] for i in rows])
            scores[rows] = stepwise.to(scores.dtype)
            output.batch["rm_scores"] = scores
        return output


class StepRewardAgentLoopManager(AgentLoopManager):
    """verl's agent-loop manager with :class:`StepRewardAgentLoopWorker` workers
    (``actor_rollout_ref.rollout.agent.agent_loop_manager_class=agents.integrations.verl.StepRewardAgentLoopManager``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _require_verl()
        import ray

        self.agent_loop_workers_class = ray.remote(StepRewardAgentLoopWorker)
        super().__init__(*args, **kwargs)


# ---------------------------------------------------------------------------------------------- agent loop


def _plain(value: Any) -> Any:
    """A dataset value as plain Python (verl hands non-tensor fields over as numpy scalars and object arrays)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@register(AGENT_NAME)
class ReasonGymAgentLoop(AgentLoopBase):
    """One episode of a reason_gym environment, step by step, through verl's server manager.

    The row's ``extra_info`` (verl's dataset column) says which problem: ``env_id`` (default: the loop's),
    ``env_kwargs`` (a dict), and the problem columns of the TRL adapters
    (:func:`reason_gym.integrations.trl.reset_to_row`): ``index`` (and ``split``) or ``problem`` (the record as
    JSON), ``problem_id`` checked where given; a row naming none is a ``ValueError`` naming the columns. The prompt
    is the reset observation in the project's prompt format for the tokenizer
    (:func:`agents.policies.prompts.default_prompt`: the raw observation and a newline for a tokenizer without a
    chat template, the task's system prompt and the question through the chat template otherwise). Each turn
    generates one step, up to and including the first token containing a newline (or an end-of-sequence token, or
    ``max_step_tokens``), conditioned on the prompt and the
    transcript so far; the step's text before the newline goes to ``env.step``. After a step the env rejected,
    ``feedback`` text (mask 0, log-probability 0) is appended. The episode ends at the env's end (a final answer or
    its step limit), at an end-of-sequence token, at ``max_turns``, or when the transcript fills verl's
    ``response_length`` (a step cut there is not sent to the env).

    Extra init arguments (from the agent loop YAML, ``agent_loop_config_path``): ``env_id``, ``env_kwargs``,
    ``max_step_tokens``, ``max_turns``, ``feedback`` (True/False).
    """

    def __init__(
        self,
        *args: Any,
        env_id: str | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        max_step_tokens: int = 64,
        max_turns: int = 32,
        feedback: bool | Feedback = True,
        **kwargs: Any,
    ) -> None:
        _require_verl()
        kwargs.pop("tools", None)
        super().__init__(*args, **kwargs)
        self.max_step_tokens = check_count("max_step_tokens", max_step_tokens)
        self.max_turns = check_count("max_turns", max_turns)
        if not (isinstance(feedback, bool) or callable(feedback)):
            raise ValueError(f"feedback must be True, False or a callable (step, reward, info) -> str: {feedback!r}")
        if env_kwargs is not None and not isinstance(env_kwargs, Mapping):
            raise ValueError(f"env_kwargs must be a mapping of gymnasium.make arguments, got {env_kwargs!r}")
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        if env_id is not None:  # built once now: a bad id or argument fails before the first rollout
            make_env(env_id, **self.env_kwargs).close()
        self.feedback: Feedback | None = (
            rejection_feedback if feedback is True else (feedback if callable(feedback) else None)
        )
        self.response_length = int(self.rollout_config.response_length)
        from agents.policies.hf import stop_token_ids

        self.stop_ids = stop_token_ids(self.tokenizer, "\n")
        self.eos_ids = {self.tokenizer.eos_token_id} - {None}

    def make_env(self, extra: Mapping[str, Any]) -> gym.Env:
        env_id = extra.get("env_id") or self.env_id
        if not env_id:
            raise ValueError("no env id: give the agent loop env_id= or the row's extra_info['env_id']")
        return make_env(env_id, **{**self.env_kwargs, **dict(extra.get("env_kwargs") or {})})

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        from agents.policies.prompts import default_prompt, encode_prompts

        extra = {key: _plain(value) for key, value in dict(_plain(kwargs.get("extra_info")) or {}).items()}
        env = self.make_env(extra)
        observation = reset_to_row(env, extra)  # index (and split) or problem; problem_id checked
        task = getattr(env.unwrapped, "task", None)
        state = env.unwrapped.get_state() if hasattr(env.unwrapped, "get_state") else observation
        prompt_ids = list(encode_prompts(self.tokenizer, default_prompt(self.tokenizer, task), [state])[0])
        prompt_ids = self._cap_text_prompt_length(prompt_ids)

        response_ids: list[int] = []
        response_mask: list[int] = []
        logprobs: list[float] = []
        have_logprobs = True
        steps: list[str] = []
        rewards: list[float] = []
        ends: list[int] = []
        is_correct = done = False
        stopped = "turns"
        timing = {"generate_sequences": 0.0}
        request_id = uuid.uuid4().hex  # one per episode: sticky to one server, so its prefix cache is reused
        for _ in range(self.max_turns):
            room = self.response_length - len(response_ids)
            if room <= 0:
                stopped = "length"
                break
            params = {
                **sampling_params,
                "max_tokens": min(self.max_step_tokens, room),
                "stop_token_ids": list(self.stop_ids),
            }
            started = time.perf_counter()
            output: TokenOutput = await self.server_manager.generate(
                request_id=request_id, prompt_ids=prompt_ids + response_ids, sampling_params=params
            )
            timing["generate_sequences"] += time.perf_counter() - started
            ids = list(output.token_ids)
            cut = next((k + 1 for k, token in enumerate(ids) if token in self.stop_ids), len(ids))
            ids = ids[: min(cut, room)]
            step_logprobs = list(output.log_probs or [])[: len(ids)]
            if len(step_logprobs) != len(ids):
                have_logprobs = False
            response_ids += ids
            response_mask += [1] * len(ids)
            logprobs += step_logprobs + [0.0] * (len(ids) - len(step_logprobs))
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            step, newline, _ = text.partition("\n")
            ended = bool(ids) and ids[-1] in self.eos_ids
            if not ids or (not newline and not ended and len(response_ids) >= self.response_length):
                stopped = "length"  # a step cut by the response length is not sent to the env
                break
            _, reward, terminated, truncated, info = env.step(step)
            steps.append(step)
            rewards.append(float(reward))
            ends.append(len(response_ids) - 1)
            if terminated or truncated:
                done, stopped = True, "env"
                is_correct = bool(info.get("is_correct", False))
                break
            if ended and not newline:
                stopped = "eos"
                break
            note = self.feedback(step, float(reward), info) if self.feedback is not None else ""
            if not newline:  # a step cut by its token budget: the env closes its line
                note = "\n" + note
            note_ids = list(self.tokenizer(note, add_special_tokens=False)["input_ids"]) if note else []
            note_ids = note_ids[: self.response_length - len(response_ids)]
            response_ids += note_ids
            response_mask += [0] * len(note_ids)
            logprobs += [0.0] * len(note_ids)
        env.close()
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids,
            response_mask=response_mask,
            response_logprobs=logprobs if have_logprobs and response_ids else None,
            reward_score=float(sum(rewards)),
            num_turns=1 + 2 * len(steps),
            metrics=AgentLoopMetrics(**timing),
            extra_fields={
                "step_rewards": rewards,
                "step_ends": ends,
                "steps": steps,
                "turn_scores": rewards,
                "tool_rewards": [],
                "is_correct": is_correct,
                "done": done,
                "stopped": stopped,
            },
        )


# ---------------------------------------------------------------------------------------------- a local server


class HFServerManager:
    """A stand-in for verl's server manager on one machine: ``generate`` samples from a transformers causal LM.

    It implements what :class:`ReasonGymAgentLoop` calls, ``await generate(request_id=, prompt_ids=,
    sampling_params=) -> TokenOutput``, with vLLM's sampling-parameter names (``temperature``, ``top_p``, ``top_k``
    (-1: off), ``max_tokens``, ``stop_token_ids``, ``logprobs``); the stop token is kept, as vLLM keeps it. For CPU
    tests and debugging; verl's trainer uses its own vLLM or SGLang servers.
    """

    def __init__(self, model: Any, tokenizer: Any) -> None:
        _require_verl()
        self.model = model
        self.tokenizer = tokenizer
        self.calls = 0

    @torch.inference_mode()
    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **kwargs: Any
    ) -> TokenOutput:
        from transformers import GenerationConfig

        self.calls += 1
        temperature = float(sampling_params.get("temperature", 1.0))
        greedy = temperature == 0
        top_k = int(sampling_params.get("top_k", -1) or -1)
        stop = list(sampling_params.get("stop_token_ids") or [])
        eos = self.tokenizer.eos_token_id
        pad = next(i for i in (self.tokenizer.pad_token_id, eos, 0) if i is not None)
        config = GenerationConfig(
            do_sample=not greedy,
            temperature=None if greedy else temperature,
            top_p=None if greedy else float(sampling_params.get("top_p", 1.0)),
            top_k=None if greedy or top_k < 0 else top_k,
            max_new_tokens=int(sampling_params.get("max_tokens", 64)),
            eos_token_id=stop + ([eos] if eos is not None and eos not in stop else []),
            pad_token_id=pad,
            output_logits=True,
            return_dict_in_generate=True,
        )
        input_ids = torch.tensor([prompt_ids], device=self.model.device)
        output = self.model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), generation_config=config
        )
        new = output.sequences[0, len(prompt_ids) :]
        logits = torch.stack(output.logits, dim=1)[0].float()[: len(new)]
        scale = 1.0 if greedy else temperature
        logprobs = torch.log_softmax(logits / scale, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
        ids = new.tolist()
        ends = [k for k, token in enumerate(ids) if token in config.eos_token_id]
        keep = ends[0] + 1 if ends else len(ids)
        return TokenOutput(
            token_ids=ids[:keep],
            log_probs=logprobs.tolist()[:keep] if sampling_params.get("logprobs", True) else None,
            stop_reason="completed",
        )
