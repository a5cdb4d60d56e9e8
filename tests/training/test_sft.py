"""The SFT trainer (agents.training.sft): a killed run resumes exactly, a checkpoint that cannot be resumed says what to
do, test problems are refused with a ValueError (never an assert), and ``reason-gym train sft`` runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import safetensors.torch
import torch

from agents.training import sft
from agents.training.sft import SFTConfig
from reason_gym.envs.game24 import Game24Env

ROOT = Path(__file__).resolve().parents[2]

needs_24_csv = pytest.mark.skipif(
    not Game24Env(split="train").tot_order,
    reason="needs the Tree-of-Thoughts 24.csv (REASON_GYM_DATA_DIR) for the train/test split",
)


def tiny_config(folder: Path, **overrides) -> SFTConfig:
    settings = dict(
        output_dir=str(folder / "model"),
        run_dir=str(folder / "run"),
        game24_max_puzzles=4,
        game24_traces_per_puzzle=2,
        arithmetic_problems=16,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        batch_size=4,
        total_steps=4,
        warmup_steps=1,
        log_every=1,
        eval_every=0,
        eval_problems=1,
        checkpoint_every=2,
        progress=False,
    )
    return SFTConfig(**{**settings, **overrides})


class Killed(Exception):
    """Stands for SIGKILL: raised where a test stops a run."""


def record_scalars(monkeypatch) -> dict[int, dict[str, float]]:
    """Every TensorBoard scalar the trainer logs, by step (the throughput left out: it is a timing)."""
    logged: dict[int, dict[str, float]] = {}
    real = sft.log_scalars

    def record(writer, metrics, step):
        logged.setdefault(step, {}).update({k: v for k, v in metrics.items() if k != "charts/tokens_per_second"})
        real(writer, metrics, step)

    monkeypatch.setattr(sft, "log_scalars", record)
    return logged


@needs_24_csv
def test_a_killed_run_resumes_with_the_steps_and_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    straight = record_scalars(monkeypatch)
    sft.train(tiny_config(tmp_path / "straight"))

    real_batch_of, calls = sft.batch_of, []

    def killed_at_step_three(*args, **kwargs):  # after step 2's checkpoint
        calls.append(1)
        if len(calls) == 3:
            raise Killed
        return real_batch_of(*args, **kwargs)

    monkeypatch.setattr(sft, "batch_of", killed_at_step_three)
    with pytest.raises(Killed):
        sft.train(tiny_config(tmp_path / "killed"))
    monkeypatch.setattr(sft, "batch_of", real_batch_of)
    resumed = record_scalars(monkeypatch)
    sft.train(tiny_config(tmp_path / "killed"))

    assert sorted(resumed) == [3, 4]  # it went on from the checkpoint, not from the start
    assert resumed == {step: straight[step] for step in (3, 4)}  # losses, gradient norms, learning rates, validation
    a = safetensors.torch.load_file(tmp_path / "straight" / "model" / "model.safetensors")
    b = safetensors.torch.load_file(tmp_path / "killed" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "killed" / "model" / "training.json").read_text())["steps"] == 4
    assert list((tmp_path / "killed" / "run").glob("events.out.tfevents.*"))


def test_a_corrupt_checkpoint_is_refused_before_any_data_is_made(tmp_path, monkeypatch):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"half a checkpoint")
    monkeypatch.setattr(sft, "game24_traces", lambda *a: pytest.fail("data was made"))
    with pytest.raises(ValueError, match=r"run/checkpoint\.pt cannot be resumed: .*--no-resume"):
        sft.train(tiny_config(tmp_path))


@needs_24_csv
def test_a_game24_test_puzzle_in_the_train_split_is_refused_with_the_fix(tmp_path, monkeypatch):
    class LeakyGame24(Game24Env):  # a 24.csv whose "test" rows are train rows
        def split_indices(self, split=None):
            return (
                super().split_indices("train")[:5] if (split or self.split) == "test" else super().split_indices(split)
            )

    monkeypatch.setattr(sft, "Game24Env", LeakyGame24)
    with pytest.raises(ValueError, match=r"5 Game24 test puzzles .* refusing to train on them.*REASON_GYM_DATA_DIR"):
        sft.train(tiny_config(tmp_path))


@needs_24_csv
def test_an_arithmetic_test_problem_is_refused_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(sft, "split_of", lambda problem: "test")
    with pytest.raises(ValueError, match=r"drew a test problem .* refusing to train on it.*split_of must agree"):
        sft.train(tiny_config(tmp_path, game24_traces_per_puzzle=0))


@pytest.mark.parametrize(("overrides", "message"), [({"total_steps": 0}, "total_steps must be >= 1"),
                                                    ({"eval_every": -1}, "eval_every must be >= 0")])  # fmt: skip
def test_a_config_that_cannot_work_is_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        SFTConfig(**overrides)


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=dict(os.environ))


def test_reason_gym_train_sft_help_lists_the_script_flags():
    shown = run(sys.executable, "-m", "reason_gym.cli", "train", "sft", "--help", timeout=120)
    assert shown.returncode == 0
    for flag in ("--init-model", "--game24-traces-per-puzzle", "--arithmetic-max-operations", "--no-resume"):
        assert flag in shown.stdout
    listed = run(sys.executable, "-m", "reason_gym.cli", "train", "--help", timeout=120)
    assert "sft " in listed.stdout and "grpo " in listed.stdout
    refused = run(sys.executable, "-m", "reason_gym.cli", "train", "sft", "--batch-size", "0", timeout=120)
    assert refused.returncode == 2 and "batch_size must be >= 1" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.slow
@needs_24_csv
def test_reason_gym_train_sft_trains_on_a_tiny_budget(tmp_path):
    flags = ["--game24-max-puzzles", "3", "--game24-traces-per-puzzle", "1", "--arithmetic-problems", "8",
             "--hidden-size", "32", "--num-layers", "1", "--num-heads", "2", "--batch-size", "4", "--total-steps", "2",
             "--warmup-steps", "1", "--eval-problems", "1", "--no-progress"]  # fmt: skip
    where = ["--run-dir", str(tmp_path / "run"), "--output-dir", str(tmp_path / "model")]
    done = run(sys.executable, "-m", "reason_gym.cli", "train", "sft", *flags, *where)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "saved" in done.stdout and (tmp_path / "model" / "model.safetensors").exists()
    assert json.loads((tmp_path / "model" / "training.json").read_text())["steps"] == 2
    again = run(sys.executable, "-m", "reason_gym.cli", "train", "sft", *flags, *where, "--total-steps", "3")
    assert again.returncode == 0 and "resumed from" in again.stdout and "at step 2" in again.stdout
