"""scripts/eval_prm.py in a subprocess: a PRM trained here for 2 steps, the rule-based oracle and the data's own
labels against the exact labels of hand-built Game24 trajectories; the figures equal evaluate_prm's, the JSON, the
plot, the group intervals and the selection rule; a bad spec is one line and exit status 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from agents.prm import Game24StepScorer, make_prm
from agents.training.prm import PRMTrainer, evaluate_prm
from agents.training.prm_config import PRMConfig
from reason_gym.envs.game24 import Game24Env

ENV_ID = "reason_gym/Game24-v0"


def trajectories(count: int) -> list[dict]:
    """Step-data records of random legal moves on the first ``count`` Game24 test puzzles, exactly labelled; the
    ``mc_soft`` label is the exact one, flipped on every third step (a noisy estimate)."""
    env, scorer, rng, records = Game24Env(split="test"), Game24StepScorer(), np.random.default_rng(0), []
    for index in range(count):
        question, _ = env.reset(options={"index": index, "split": "test"})
        terminated = False
        while not terminated:
            moves = [a for a in env.candidate_actions() if a is not None]
            _, _, terminated, _, info = env.step(moves[int(rng.integers(len(moves)))])
        state = env.get_state()
        exact = [int(v) for v in scorer.score(state.problem, list(state.steps))]
        noisy = [float(1 - v if i % 3 == 2 else v) for i, v in enumerate(exact)]
        records.append({"env_id": ENV_ID, "split": "test", "index": index, "problem_id": state.problem_id,
                        "question": question, "steps": list(state.steps), "outcome": int(info["is_correct"]),
                        "labels": {"mc_soft": noisy, "mc_hard": [int(v) for v in noisy], "exact": exact},
                        "k": 1, "policy_calls": 3, "tokens": 30, "source": "mc"})  # fmt: skip
    return records


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path, list[dict]]:
    folder = tmp_path_factory.mktemp("eval_prm")
    records = trajectories(8)
    data = folder / "data"
    data.mkdir()
    meta = {"config": {"made_by": "tests/training/test_eval_prm.py"}, "compute": {"policy_calls": 24, "samples": 40,
            "tokens": 240, "wall_s": 1.5}}  # fmt: skip
    (data / "meta.json").write_text(json.dumps(meta))
    (data / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    config = PRMConfig(data=str(data), run_dir=str(folder / "run"), total_steps=2, batch_size=4, progress=False,
                       label="mc_soft", learning_rate=1e-3)  # fmt: skip
    PRMTrainer(config).train()
    return data, folder / "run/model", records


def test_eval_prm_figures_json_plot_and_choice(setup, tmp_path, run_script):
    data, model, records = setup
    out, png = tmp_path / "eval.json", tmp_path / "eval.png"
    done = run_script("scripts/eval_prm.py", "--data", str(data), "--prms", f"learned=hf:{model}",
                      f"learned={model}", "rule", "label:mc_soft", "--choose-from", "learned", "label:mc_soft",
                      "--bootstrap", "50", "--out", str(out), "--plot", str(png), timeout=120)  # fmt: skip
    result = json.loads(out.read_text())
    rows = {row["spec"]: row for row in result["prms"]}
    steps = sum(len(r["steps"]) for r in records)
    assert result["trajectories"] == 8 and result["steps"] == steps
    assert rows["rule"]["roc_auc"] == 1.0 and rows["rule"]["brier"] == 0.0
    # the learned PRM's figures are evaluate_prm's (one definition), its cost is its data's
    expected = evaluate_prm(make_prm(f"hf:{model}"), records)
    learned = rows[f"hf:{model}"]
    assert learned["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-9)
    assert learned["brier"] == pytest.approx(expected["brier"], abs=1e-9)
    assert [tuple(c) for c in learned["calibration"]] == [pytest.approx(c) for c in expected["calibration"]]
    assert learned["cost"]["policy_calls"] == 24 and learned["cost"]["tokens"] == 240
    assert learned["cost"]["method"] == "classification" and learned["cost"]["train_steps"] == 2
    low, high = learned["roc_auc_95"]
    assert low <= high and 0.0 <= low <= 1.0
    # a group of two members (the same PRM twice): mean equal to each, zero spread
    group = result["groups"]["learned"]["roc_auc"]
    assert group["n"] == 2 and group["mean"] == pytest.approx(learned["roc_auc"]) and group["sd"] == pytest.approx(0)
    # the data's own noisy labels: 2 of every 3 steps right
    flipped = rows["label:mc_soft"]["brier"]
    assert flipped == pytest.approx(sum(i % 3 == 2 for r in records for i in range(len(r["steps"]))) / steps)
    assert result["groups"]["rule"]["target_met"] and result["chosen"]["name"] in ("learned", "label:mc_soft")
    assert "chosen" in done.stdout and "roc_auc" in done.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_bad_prm_spec_is_one_line_and_exit_status_2(setup, run_script):
    data, _, _ = setup
    done = run_script("scripts/eval_prm.py", "--data", str(data), "--prms", "no/such/folder", check=False)
    assert done.returncode == 2
    assert "eval_prm.py: PRM 'no/such/folder': not rule, label:NAME, hf:PATH, mean:hf:A+hf:B or a folder" in done.stderr


def test_an_ensemble_scores_the_mean_of_its_members_and_is_charged_its_data_once(setup, tmp_path, run_script):
    data, model, records = setup
    config = PRMConfig(data=str(data), run_dir=str(tmp_path / "run"), total_steps=2, batch_size=4, progress=False,
                       label="mc_soft", learning_rate=1e-3, seed=1)  # fmt: skip
    PRMTrainer(config).train()
    other = tmp_path / "run/model"
    ensemble = make_prm(f"mean:hf:{model}+hf:{other}")
    solutions = [(r["question"], r["steps"]) for r in records]
    members = [make_prm(f"hf:{m}").score_batch(solutions) for m in (model, other)]
    for mean, a, b in zip(ensemble.score_batch(solutions), *members, strict=True):
        assert mean == pytest.approx([(x + y) / 2 for x, y in zip(a, b, strict=True)], abs=1e-7)
    assert ensemble(*solutions[0]) == pytest.approx(ensemble.score_batch(solutions[:1])[0])
    out = tmp_path / "eval.json"
    run_script("scripts/eval_prm.py", "--data", str(data), "--prms", f"ensemble=mean:hf:{model}+hf:{other}",
               "--bootstrap", "0", "--out", str(out), timeout=120)  # fmt: skip
    row = json.loads(out.read_text())["prms"][0]
    assert row["roc_auc"] == pytest.approx(evaluate_prm(ensemble, records)["roc_auc"], abs=1e-9)
    assert row["cost"]["members"] == 2 and row["cost"]["policy_calls"] == 24  # the shared data, charged once
    with pytest.raises(ValueError, match="reads the structured state"):
        make_prm(f"mean:rule+hf:{model}")
    with pytest.raises(ValueError, match="two members or more"):
        make_prm(f"mean:hf:{model}")


@pytest.mark.parametrize(
    ("method", "label", "split", "charged"),
    [
        ("classification", "mc_soft", True, (24, 240)),  # the Monte-Carlo labels need the completions
        ("classification", "exact", True, (24 - 15, 240 - 150)),  # exact labels and TD need only the trajectories
        ("td", "mc_soft", True, (24 - 15 + 7, 240 - 150 + 70)),  # plus the TD proposals
        ("td", "mc_soft", False, (24 + 7, 240 + 70)),  # data labelled before completions were counted apart
        ("td", "mc_soft", "pooled", (2 * (24 - 15) + 7, 2 * (240 - 150) + 70)),  # two folders, each charged
        ("td", "mc_soft", "mixed", (2 * 24 + 7, 2 * 240 + 70)),  # one folder without the split: no split at all
    ],
)
def test_each_prm_is_charged_the_labelling_compute_it_used(tmp_path, monkeypatch, method, label, split, charged):
    import importlib.util

    spec = importlib.util.spec_from_file_location("eval_prm", Path(__file__).parents[2] / "scripts/eval_prm.py")
    eval_prm = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "eval_prm", eval_prm)  # its dataclasses look their module up
    spec.loader.exec_module(eval_prm)
    data_meta = {"compute": {"policy_calls": 24, "samples": 40, "tokens": 240, "wall_s": 1.5}}
    if split:
        data_meta["compute_completions"] = {"policy_calls": 15, "samples": 30, "tokens": 150}
    if split in ("pooled", "mixed"):  # training.json lists one meta per folder
        data_meta = [data_meta, data_meta if split == "pooled" else {"compute": data_meta["compute"]}]
    proposals = {"policy_calls": 7, "samples": 9, "tokens": 70} if method == "td" else None
    info = {"config": {"method": method, "label": label}, "data_meta": data_meta, "proposal_cost": proposals}
    (tmp_path / "training.json").write_text(json.dumps(info))
    cost = eval_prm._cost(f"hf:{tmp_path}")
    assert (cost["policy_calls"], cost["tokens"]) == charged


def test_the_shipped_prm_loads_says_how_it_was_made_and_plugs_into_an_env():
    from agents.prm import TINY_PRM

    info = json.loads((TINY_PRM / "training.json").read_text())
    assert info["config"]["method"] == "td" and info["config"]["backbone"] == "tiny" and len(info["data_meta"]) == 2
    prm = make_prm("tiny")
    env = Game24Env(split="test", prm=prm, reward_weights={"prm": 1.0})
    env.reset(options={"problem": {"numbers": [3, 3, 8, 8]}})
    state = env.get_state()
    scores = {}
    for move in env.candidate_actions()[:3]:
        env.set_state(state)
        _, _, _, _, info = env.step(move)
        scores[move] = info["reward_components"]["prm"]
    assert all(0.0 < v < 1.0 for v in scores.values()), scores
