"""A policy backed by any OpenAI-compatible completions server (``vllm serve``, llama.cpp's server, TGI, ...).

One ``POST {base}/v1/completions`` per batch of states, with ``n``, ``stop``, ``logprobs``, ``temperature``,
``top_p`` and ``max_tokens``; only the standard library (``urllib.request``, ``json``). The server tokenizes: the
prompt is text (by default the raw state and a newline, :class:`~agents.policies.prompts.RawPrompt`; pass a
:class:`~agents.policies.prompts.ChatPrompt` built on the model's tokenizer for an instruct model).

Every request has a timeout; a server that refuses, does not answer in time or answers garbage raises
:class:`ServerError`, one line that names the URL and the reason.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from agents.policies.base import Candidate
from agents.policies.prompts import PromptFormat, RawPrompt
from reason_gym.core import EpisodeState


class ServerError(ConnectionError):
    """The server did not answer, or answered something that is not a completions response."""


def completions_url(url: str) -> str:
    """The completions endpoint of a server URL given with or without ``/v1``.

    >>> completions_url("http://127.0.0.1:8000"), completions_url("http://127.0.0.1:8000/v1/")
    ('http://127.0.0.1:8000/v1/completions', 'http://127.0.0.1:8000/v1/completions')
    """
    base = url.rstrip("/")
    if base.endswith("/completions"):
        return base
    return f"{base}/completions" if base.endswith("/v1") else f"{base}/v1/completions"


class OpenAICompatPolicy:
    """Samples next steps from an OpenAI-compatible ``/v1/completions`` endpoint.

    Args:
        url: The server, e.g. ``http://127.0.0.1:8000`` or ``http://127.0.0.1:8000/v1``.
        model: The model name to request (default: the first one the server lists at ``/v1/models``).
        temperature: Default sampling temperature; 0 means greedy decoding.
        top_p: Nucleus sampling threshold.
        max_new_tokens: The longest step, in tokens (``max_tokens``).
        stop: The step separator (``stop``); servers leave it out of the text.
        prompt: How a state becomes the prompt text (default: :class:`~agents.policies.prompts.RawPrompt`).
        timeout: Seconds to wait for each request (connecting and reading).
        max_prompts_per_request: States sent in one request (each with ``n`` completions).
        api_key: Sent as a bearer token (default: ``$OPENAI_API_KEY`` when it is set).
    """

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        stop: str = "\n",
        prompt: PromptFormat | None = None,
        timeout: float = 60.0,
        max_prompts_per_request: int = 32,
        api_key: str | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"the server URL must start with http:// or https://, got {url!r}")
        if temperature < 0 or not 0 < top_p <= 1 or max_new_tokens < 1 or timeout <= 0:
            raise ValueError("need temperature >= 0, 0 < top_p <= 1, max_new_tokens >= 1 and timeout > 0")
        self.url = completions_url(url)
        self.model = model
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.stop = stop
        self.prompt = prompt if prompt is not None else RawPrompt(stop)
        self.timeout = timeout
        self.max_prompts_per_request = max_prompts_per_request
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")

    def _request(self, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET (no body) or POST JSON; the decoded JSON answer, or :class:`ServerError`."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=headers, method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:  # the server answered with an error status: show its message
            detail = error.read()[:300].decode(errors="replace").strip()
            raise ServerError(f"{url} answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error) or type(error).__name__
            raise ServerError(f"no answer from {url} within {self.timeout:g} s: {reason}") from None
        except json.JSONDecodeError:
            raise ServerError(f"{url} answered something that is not JSON") from None

    def model_name(self) -> str:
        """The model to request: the one given, else the first the server lists."""
        if self.model is None:
            listing = self._request(self.url.rsplit("/completions", 1)[0] + "/models")
            models = [entry.get("id") for entry in listing.get("data", []) if entry.get("id")]
            if not models:
                raise ServerError(f"{self.url}: the server lists no model; pass one as openai:URL#MODEL")
            self.model = models[0]
        return self.model

    takes_episode_states = True
    """Planners hand it state snapshots: its prompt reads the task's system prompt and formats from them."""

    def propose(
        self, states: Sequence[str | EpisodeState], n: int = 1, *, temperature: float | None = None
    ) -> list[list[Candidate]]:
        """Returns ``n`` candidates per state (see :class:`~agents.policies.base.Policy`)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        temperature = self.temperature if temperature is None else temperature
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        out: list[list[Candidate]] = []
        for start in range(0, len(states), self.max_prompts_per_request):
            chunk = [self.prompt(state) for state in states[start : start + self.max_prompts_per_request]]
            out += self._complete(chunk, n, temperature)
        return out

    def _complete(self, prompts: list[str], n: int, temperature: float) -> list[list[Candidate]]:
        body = {
            "model": self.model_name(),
            "prompt": prompts,
            "n": n,
            "stop": [self.stop],
            "logprobs": 1,
            "temperature": temperature,
            "top_p": self.top_p if temperature > 0 else 1.0,
            "max_tokens": self.max_new_tokens,
        }
        answer = self._request(self.url, body)
        choices = answer.get("choices")
        if not isinstance(choices, list) or len(choices) != len(prompts) * n:
            count = len(choices) if isinstance(choices, list) else 0
            raise ServerError(f"{self.url} returned {count} choices for {len(prompts)} prompts x n={n}")
        # OpenAI's layout: choice i * n + j is the j-th completion of prompt i (``index`` says so).
        choices = sorted(choices, key=lambda choice: choice.get("index", 0))
        out = []
        for i in range(len(prompts)):
            out.append([self._candidate(choice) for choice in choices[i * n : (i + 1) * n]])
        return out

    def _candidate(self, choice: dict[str, Any]) -> Candidate:
        text = str(choice.get("text", "")).split(self.stop, 1)[0]  # some servers keep the stop string
        logprobs = choice.get("logprobs") or {}
        token_logprobs = [lp for lp in logprobs.get("token_logprobs") or [] if lp is not None]
        if not logprobs.get("tokens"):
            return Candidate(text, 0, None)
        return Candidate(text, len(logprobs["tokens"]), float(sum(token_logprobs)))
