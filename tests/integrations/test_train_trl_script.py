"""scripts/train_trl.py on a tiny budget, as a user runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("datasets")


@pytest.mark.parametrize("mode", ["rollout", "rewards"])
def test_train_trl_runs(mode: str, run_script: Callable[..., object], tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    budget = ["--steps", "1", "--batch-size", "4", "--group-size", "2", "--limit", "4"]
    done = run_script(
        "scripts/train_trl.py",
        *budget,
        "--mode",
        mode,
        "--max-completion-length",
        "32",
        "--output-dir",
        str(tmp_path / "trl"),
        "--out",
        str(out),
        timeout=300,
    )
    assert "step 1: reward total" in done.stdout and "samples/s" in done.stdout
    result = json.loads(out.read_text())
    logged = [h for h in result["log_history"] if "rewards/total/mean" in h]
    assert len(logged) == 1 and {"rewards/outcome/mean", "rewards/invalid_step/mean"} <= set(logged[0])
    assert result["samples_per_s"] > 0


def test_train_trl_refuses_unknown_env_before_loading(run_script: Callable[..., object]) -> None:
    done = run_script("scripts/train_trl.py", "--env-id", "reason_gym/Nope-v0", check=False)
    assert done.returncode == 2
    assert "'reason_gym/Nope-v0' is not registered" in done.stderr
