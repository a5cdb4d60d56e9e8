"""The embedded default model: the shipped checkpoint loads and plays; the script that trains it runs and resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

import safetensors.torch
import torch

from agents.models import TINY_MODEL_DIR, build_char_tokenizer
from agents.policies import make_policy
from agents.policies.hf import HFPolicy
from reason_gym.checkers.game24 import parse_step
from reason_gym.core import CHARSET
from reason_gym.envs.arithmetic import ArithmeticEnv
from reason_gym.envs.game24 import Game24Env


@pytest.fixture(scope="module")
def tiny() -> Any:
    return make_policy("tiny", max_new_tokens=48)


def test_the_checkpoint_ships_small_in_the_package() -> None:
    files = {p.name for p in TINY_MODEL_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= files
    size = sum(p.stat().st_size for p in TINY_MODEL_DIR.iterdir())
    assert size < 10 * 2**20


def test_tiny_loads_with_its_character_tokenizer(tiny: Any) -> None:
    assert isinstance(tiny, HFPolicy)
    parameters = sum(p.numel() for p in tiny.model.parameters())
    assert 500_000 <= parameters <= 10_000_000
    assert tiny.tokenizer.get_vocab() == build_char_tokenizer().get_vocab()  # every env character is one token
    assert all(len(tiny.tokenizer.encode(c, add_special_tokens=False)) == 1 for c in CHARSET)
    assert tiny.stop_ids == [tiny.tokenizer.convert_tokens_to_ids("\n"), tiny.tokenizer.eos_token_id]


def test_tiny_proposes_parsable_game24_steps(tiny: Any) -> None:
    env = Game24Env(split="test")
    states = [env.reset(options={"index": i})[0] for i in range(10)]
    for candidates in tiny.propose(states, n=4, temperature=1.0):
        parsed = [parse_step(c.text) for c in candidates]
        assert sum(not isinstance(p, str) for p in parsed) >= 3  # most samples are well-formed steps
    for (candidate,) in tiny.propose(states, temperature=0):
        assert not isinstance(parse_step(candidate.text), str), candidate.text


def test_tiny_computes_arithmetic_steps(tiny: Any) -> None:
    env = ArithmeticEnv(split="test")
    states = [env.reset(options={"index": i})[0] for i in range(10)]
    accepted = 0
    for i, (candidate,) in enumerate(tiny.propose(states, temperature=0)):
        env.reset(options={"index": i})
        _, _, _, _, info = env.step(candidate.text)
        accepted += "error" not in info  # a readable step (true or not)
    assert accepted >= 8


SFT_SCRIPT = "scripts/train_sft.py"


@pytest.mark.slow
def test_train_sft_runs_end_to_end_and_resumes(tmp_path: Path, run_script) -> None:
    if not Game24Env(split="train").tot_order:
        pytest.skip("needs the Tree-of-Thoughts 24.csv (REASON_GYM_DATA_DIR) for the train/test split")
    common = [
        f"--output-dir={tmp_path / 'model'}",
        f"--run-dir={tmp_path / 'run'}",
        "--game24-max-puzzles=10",
        "--game24-traces-per-puzzle=2",
        "--arithmetic-problems=20",
        "--hidden-size=32",
        "--num-layers=1",
        "--num-heads=2",
        "--batch-size=4",
        "--warmup-steps=1",
        "--checkpoint-every=2",
        "--eval-problems=2",
        "--no-progress",
    ]
    run_script(SFT_SCRIPT, *common, "--total-steps=2")
    assert (tmp_path / "run" / "checkpoint.pt").exists()
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "run").iterdir())
    second = run_script(SFT_SCRIPT, *common, "--total-steps=4")
    assert "resumed from" in second.stdout and "at step 2" in second.stdout
    assert "init_model_training" not in json.loads((tmp_path / "model" / "training.json").read_text())
    policy = HFPolicy.from_pretrained(tmp_path / "model", max_new_tokens=4)
    assert len(policy.propose(["Compute 1 + 2."], n=2)[0]) == 2
    other = run_script(SFT_SCRIPT, *common, "--total-steps=4", "--hidden-size=64", check=False)
    assert other.returncode != 0 and "--no-resume" in other.stderr  # a different model never resumes silently


@pytest.mark.slow
def test_train_sft_can_start_from_a_trained_model(tmp_path: Path, run_script) -> None:
    if not Game24Env(split="train").tot_order:
        pytest.skip("needs the Tree-of-Thoughts 24.csv (REASON_GYM_DATA_DIR) for the train/test split")
    run_script(
        SFT_SCRIPT,
        "--init-model=tiny",
        f"--output-dir={tmp_path / 'model'}",
        f"--run-dir={tmp_path / 'run'}",
        "--game24-traces-per-puzzle=0",
        "--arithmetic-problems=8",
        "--batch-size=4",
        "--total-steps=1",
        "--learning-rate=1e-9",
        "--min-learning-rate=1e-9",
        "--eval-problems=1",
        "--no-progress",
    )
    start = safetensors.torch.load_file(TINY_MODEL_DIR / "model.safetensors")
    trained = safetensors.torch.load_file(tmp_path / "model" / "model.safetensors")
    assert start.keys() == trained.keys()
    assert all(torch.allclose(start[k], trained[k], atol=1e-6) for k in start)  # one step of 1e-9 from the weights
    info = json.loads((tmp_path / "model" / "training.json").read_text())
    assert info["args"]["init_model"] == "tiny"  # and the stages that made the starting model come along
    assert info["init_model_training"] == json.loads((TINY_MODEL_DIR / "training.json").read_text())


def test_eval_policy_script_plays_the_split_it_names(tmp_path: Path, run_script) -> None:
    out = tmp_path / "episodes.json"
    done = run_script("scripts/eval_policy.py", "--task=game24", "--split=train", "--limit=3", f"--out={out}")
    assert "Game24 train" in done.stdout and "/3 solved greedily" in done.stdout
    [summary] = json.loads(out.read_text())
    assert (summary["task"], summary["split"], summary["problems"]) == ("game24", "train", 3)
    assert len(summary["episodes"]) == 3
    assert 0 <= summary["solved"] <= 3 and summary["accuracy"] == summary["solved"] / 3
    assert [e["row"] for e in summary["episodes"]] == [0, 1, 2]  # train rows 0-899 keep their ToT row numbers
    assert all(0 <= e["solvable_steps"] <= len(e["actions"]) for e in summary["episodes"])
    assert "still solvable after step 1 / 2 / 3:" in done.stdout and "rows 0-299" not in done.stdout
    by_band = run_script("scripts/eval_policy.py", "--task=game24", "--split=test", "--limit=2", "--by-difficulty")
    assert "rows 900-999: " in by_band.stdout and "/2 (" in by_band.stdout and "rows 0-299" not in by_band.stdout


SOLVABLE_STEPS_CASES = [  # test puzzle 0 is 4 5 6 10
    (["4 * 5 = 20 (left: 6 10 20)", "10 - 6 = 4 (left: 4 20)", "4 + 20 = 24", "Answer: 4 * 5 + 10 - 6 = 24"], 3),
    (["4 * 5 = 20 (left: 6 10 20)", "10 - 6 = 4 (left: 4 20)", "4 + 20 = 24", "Answer: (4 + 5) * 6 = 24"], 3),
    (["5 - 6 = -1 (left: -1 4 10)", "10 - -1 = 11 (left: 4 11)"], 0),  # accepted but a dead end at once
    (["4 * 5 = 20 (left: 6 10 20)", "6 + 10 = 16 (left: 16 20)"], 1),  # 16 and 20 cannot make 24
    (["4 * 5 = 20 (left: 6 10 20)", "4 * 5 = 20 (left: 6 10 20)"], 1),  # the 4 is used up: rejected
    (["4 * 5 = 21 (left: 6 10 21)"], 0),  # wrong arithmetic is rejected, not judged for solvability
    (["Answer: 4 * 5 + 10 - 6 = 24"], 0),  # an answer is not a step
    ([], 0),
]


@pytest.mark.parametrize(("actions", "expected"), SOLVABLE_STEPS_CASES)
def test_solvable_steps_counts_the_steps_still_on_a_path_to_24(
    actions: list[str], expected: int, eval_policy_script: Any
) -> None:
    replay = eval_policy_script.solvable_step_checker("test")
    assert eval_policy_script.solvable_steps(replay, actions, 0) == expected
