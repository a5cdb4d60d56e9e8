"""A tiny tool-calling model for TRL's ``environment_factory`` (``reason_gym.integrations.trl_tools.ReasonGymEnv``).

TRL's tool loop needs a tokenizer whose chat template renders tool calls and a parser for the model's replies. This
module builds one locally, with no download: the embedded character-level tokenizer
(:func:`agents.models.build_char_tokenizer`) plus six special tokens (``<|im_start|>``, ``<|im_end|>``,
``<tool_call>``, ``</tool_call>``, ``<tool_response>``, ``</tool_response>``), end of turn ``<|im_end|>``, and the
Qwen2.5 chat template that TRL ships (``trl.chat_template_utils.qwen2_5_chat_template``), for which TRL sets the
response parser itself. A random model of that vocabulary never writes a well-formed tool call, and a few hundred
supervised steps on short windows of tool-call transcripts did not teach a 2-layer model to (tried: it wrote
``<tool_response>`` instead, the prompts being 1-2k characters long). So :func:`force_tool_calls` constrains its
generation instead: the call's syntax is forced, the tool and its argument are the model's choices
(:class:`ToolCallForcing`). The model needs to run, not to be good.

torch, transformers and TRL are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TOOL_TOKENS = ("<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")


def tool_chat_tokenizer() -> Any:
    """The character tokenizer with the chat and tool-call tokens and TRL's Qwen2.5 chat template (tools capable)."""
    from trl.chat_template_utils import qwen2_5_chat_template

    from agents.models import build_char_tokenizer

    tokenizer = build_char_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": list(TOOL_TOKENS)})
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.chat_template = qwen2_5_chat_template
    return tokenizer


def tiny_tool_model(tokenizer: Any, *, hidden_size: int = 64, num_layers: int = 2, seed: int = 0) -> Any:
    """A random tiny Llama for ``tokenizer`` (4 heads, tied embeddings, 2k positions), in float32."""
    import torch
    from transformers import LlamaForCausalLM

    from agents.models import tiny_llama_config

    config = tiny_llama_config(
        len(tokenizer), hidden_size=hidden_size, num_layers=num_layers, num_heads=4, max_position_embeddings=2048
    )
    config.eos_token_id = tokenizer.eos_token_id
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def solution_actions(env_id: str, problem: Mapping[str, Any]) -> tuple[list[str], str]:
    """The steps and the final answer (text for the ``answer`` tool) of a known solution of a problem record:
    Game24 from the solver, Arithmetic, GSM8K and MATH from the record's answer, code tasks from its code."""
    name = env_id.rpartition("/")[2]
    if name.startswith("Game24"):
        from reason_gym.checkers.game24_solver import solve

        solution = solve(problem["numbers"], problem.get("target", 24)) or ["Answer: 0"]
        return list(solution[:-1]), solution[-1]
    if name.startswith("Arithmetic"):
        return [], f"Answer: {problem['answer']}"
    if name.startswith(("GSM8K", "MATH")):
        return [], f"Answer: {problem['gold']}"
    code = problem.get("code") or problem.get("prompt", "") + problem.get("canonical_solution", "")
    return [], f"Answer:\n```python\n{code}\n```"


def solution_transcript(messages: list[dict[str, Any]], steps: Sequence[str], answer: str) -> list[dict[str, Any]]:
    """``messages`` (the prompt) followed by one assistant tool call per step and one ``answer`` call, each with a
    short tool reply, as the chat template renders them."""
    out = list(messages)
    for name, text in [*(("step", s) for s in steps), ("answer", answer)]:
        call = {"type": "function", "function": {"name": name, "arguments": {"text": text}}}
        out.append({"role": "assistant", "content": "", "tool_calls": [call]})
        out.append({"role": "tool", "name": name, "content": "Accepted." if name == "step" else "Correct."})
    return out


class ToolCallForcing:
    """A ``LogitsProcessor`` that makes every generation one well-formed tool call: it forces
    ``<tool_call>\n{"name": "``, lets the model choose the tool by its first token, forces the rest of the call's
    head, lets the model write the argument from ``argument_chars`` (a ``"`` it writes ends it; at most
    ``max_argument`` tokens), then forces ``"}}\n</tool_call>`` and the end of turn. The model's own logits decide
    every free choice; TRL computes its log-probabilities from the unprocessed logits.

    Args:
        tokenizer: :func:`tool_chat_tokenizer`'s tokenizer.
        tools: The tool names (their first tokens must differ).
        argument_chars: The characters the argument may hold.
        max_argument: The longest argument, in tokens.
    """

    def __init__(
        self,
        tokenizer: Any,
        tools: Sequence[str] = ("step", "answer"),
        argument_chars: str = "0123456789 +-*/()=",
        max_argument: int = 16,
    ) -> None:
        def ids(text: str) -> list[int]:
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])

        self.head = ids('<tool_call>\n{"name": "')
        self.names = {ids(name)[0]: ids(name) + ids('", "arguments": {"text": "') for name in tools}
        if len(self.names) != len(tools):
            raise ValueError(f"the tools {list(tools)} must start with different tokens")
        self.quote = ids('"')[0]
        self.tail = [*ids('"}}\n</tool_call>')[1:], tokenizer.eos_token_id]
        self.free = sorted({i for c in argument_chars for i in ids(c)} | {self.quote})
        self.max_argument = max_argument
        self.start: int | None = None
        """the prompt's length (set at the first call of a generation; :func:`forced_generate` makes one per call)"""

    def _allowed(self, generated: list[int]) -> list[int]:
        if len(generated) < len(self.head):
            return [self.head[len(generated)]]
        rest = generated[len(self.head) :]
        if not rest:
            return list(self.names)
        call = self.names.get(rest[0], [])
        if len(rest) < len(call):
            return [call[len(rest)]]
        argument = rest[len(call) :]
        if self.quote in argument:
            after = argument[argument.index(self.quote) + 1 :]
            return [self.tail[min(len(after), len(self.tail) - 1)]]
        return [self.quote] if len(argument) >= self.max_argument else self.free

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.start is None:
            self.start = input_ids.shape[1]
        mask = torch.full_like(scores, float("-inf"))
        for row, ids in enumerate(input_ids[:, self.start :].tolist()):
            mask[row, self._allowed(ids)] = 0.0
        return scores + mask


def force_tool_calls(model: Any, tokenizer: Any, **kwargs: Any) -> Any:
    """Makes ``model.generate`` (what TRL's GRPOTrainer calls without vLLM) produce tool calls only, through a
    fresh :class:`ToolCallForcing` per call (``kwargs`` are its arguments). Returns the model."""
    from transformers import LogitsProcessorList

    generate = model.generate

    def forced_generate(*args: Any, **gen_kwargs: Any) -> Any:
        processors = LogitsProcessorList(gen_kwargs.pop("logits_processor", None) or [])
        processors.append(ToolCallForcing(tokenizer, **kwargs))
        return generate(*args, logits_processor=processors, **gen_kwargs)

    model.generate = forced_generate
    return model
