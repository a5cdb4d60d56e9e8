"""The PRM trainer (agents.training.prm): TD targets by hand, learning a separable toy set, exact resume, NaN stop,
wrong-kind checkpoints, load-back through make_prm equal to training-time scores, evaluate_prm by hand, and
``reason-gym train prm`` in a subprocess. Data: Game24 trajectories played here with exact labels."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

import torch

from agents.prm import Game24StepScorer, HFStepScorer, RuleBasedPRM, make_prm
from agents.training import prm as prm_training
from agents.training.checkpoints import CheckpointError
from agents.training.grpo import NonFiniteLossError
from agents.training.prm import PRMTrainer, evaluate_prm, read_step_data, roc_auc, td_targets
from agents.training.prm_config import PRMConfig
from reason_gym.envs.game24 import Game24Env

ROOT = Path(__file__).resolve().parents[2]
ENV_ID = "reason_gym/Game24-v0"
QUESTION = "Game of 24: use each number once with + - * / to reach 24.\nInput: 4 9 10 13"
STEPS = ["13 - 9 = 4 (left: 4 4 10)", "10 - 4 = 6 (left: 4 6)", "4 * 6 = 24 (left: 24)"]


def game24_records(count: int, split: str = "train", seed: int = 0, keep_solvable: float = 0.6) -> list[dict]:
    """Trajectories of a scripted policy (a move that keeps the puzzle solvable with probability ``keep_solvable``
    where there is one, else a random legal move), in the step-data format, every label the exact one."""
    env = Game24Env(split=split, reward_weights={"step_solvable": 1.0})
    scorer, rng, records = Game24StepScorer(), np.random.default_rng(seed), []
    for index in range(count):
        question, _ = env.reset(options={"index": index, "split": split})
        terminated = False
        while not terminated:
            state, moves = env.get_state(), [a for a in env.candidate_actions() if a is not None]
            good = []
            for move in moves:
                _, _, done, _, info = env.step(move)
                if (info["is_correct"] if done else info["reward_components"]["step_solvable"]) == 1:
                    good.append(move)
                env.set_state(state)
            pool = good if good and rng.random() < keep_solvable else moves
            _, _, terminated, _, info = env.step(pool[int(rng.integers(len(pool)))])
        state = env.get_state()
        exact = [int(v) for v in scorer.score(state.problem, list(state.steps))]
        records.append({"env_id": ENV_ID, "split": split, "index": index, "problem_id": state.problem_id,
                        "question": question, "steps": list(state.steps), "outcome": int(info["is_correct"]),
                        "labels": {"mc_soft": [float(v) for v in exact], "mc_hard": exact, "exact": exact},
                        "k": 0, "policy_calls": 0, "tokens": 0, "source": "mc"})  # fmt: skip
    return records


def write_data(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(json.dumps({"config": {"made_by": "tests/training/test_prm_train.py"}}))
    (folder / "steps.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    records = game24_records(12)
    empty = {**records[0], "steps": [], "outcome": 0}
    empty["labels"] = {"mc_soft": [], "mc_hard": [], "exact": []}
    return write_data(tmp_path_factory.mktemp("prm") / "game24", [*records, empty])  # no step accepted: no target


def config(data: Path, folder: Path, **overrides) -> PRMConfig:
    settings = dict(data=str(data), run_dir=str(folder / "run"), total_steps=4, batch_size=4, checkpoint_every=2,
                    progress=False, learning_rate=1e-3, label="exact")  # fmt: skip
    return PRMConfig(**{**settings, **overrides})


# ------------------------------------------------------------------------------------------------- TD targets


@pytest.mark.parametrize(
    ("best_next", "terminal", "options", "expected"),
    [
        # one-step: gamma * M_i; the terminal state's value is the outcome
        ([0.5, 0.8, 9.0], True, {"gamma": 0.9}, [0.45, 0.72, 1.0]),
        # a trajectory cut before its answer: its last state bootstraps too
        ([0.5, 0.8, 0.4], False, {"gamma": 0.9}, [0.45, 0.72, 0.36]),
        # n = 2: follow one step, then the max; past the end, gamma^k * outcome
        ([0.5, 0.8, 9.0], True, {"gamma": 0.9, "n_step": 2}, [0.81 * 0.8, 0.9, 1.0]),
        ([0.5, 0.8, 0.4], False, {"gamma": 0.5, "n_step": 2}, [0.25 * 0.8, 0.25 * 0.4, 0.5 * 0.4]),
        # n past the end of every state: the Monte-Carlo return
        ([0.5, 0.8, 9.0], True, {"gamma": 0.5, "n_step": 5}, [0.25, 0.5, 1.0]),
        # TD(lambda = 0.5): y_i = gamma * (0.5 * M_i + 0.5 * y_{i+1})
        ([0.5, 0.8, 9.0], True, {"gamma": 1.0, "lam": 0.5}, [0.5 * 0.5 + 0.5 * 0.9, 0.9, 1.0]),
        # lambda = 1 is the Monte-Carlo return, whatever the maxes
        ([0.5, 0.8, 9.0], True, {"gamma": 0.5, "lam": 1.0}, [0.25, 0.5, 1.0]),
    ],
)
def test_td_targets_on_a_hand_made_table(best_next, terminal, options, expected):
    assert td_targets(best_next, 1.0, terminal, **options) == pytest.approx(expected)


def test_td_targets_take_the_max_over_proposals_and_the_outcome_at_the_end(data, tmp_path):
    trainer = PRMTrainer(config(data, tmp_path, method="td", policy="random", num_proposals=3, gamma=0.5))
    record = trainer.records[0]
    values = trainer._values([(record["question"], record["steps"])])[0]  # V'(s_1 .. s_T)
    best = []
    for i, actions in enumerate(trainer.proposals[0]):
        options = [v if v is not None else trainer._values([(record["question"], [*record["steps"][:i], a])])[0][-1]
                   for a, v in actions]  # fmt: skip
        if i < len(record["steps"]) - 1:  # the trajectory's own next step
            options.append(record["outcome"] if i == len(record["steps"]) - 2 else values[i + 1])
        best.append(max(options, default=0.0))
    expected = [0.5 * m for m in best[:-1]] + [record["outcome"]]  # ends at a final answer: the outcome
    assert trainer.targets([0])[0].tolist() == pytest.approx(expected, abs=1e-6)
    assert len(trainer.proposals[0][-1]) == 0 and all(len(a) == 3 for a in trainer.proposals[0][:-1])
    assert trainer.proposal_cost["samples"] == 3 * sum(len(r["steps"]) - 1 for r in trainer.records)


# ---------------------------------------------------------------------------------------------------- learning


def test_the_loss_falls_on_a_separable_toy_set(tmp_path):
    rng, records = np.random.default_rng(0), []
    for index in range(16):  # a step with '+' is good, one with '-' bad: one character separates them
        steps = [f"{rng.integers(10)} {'+-'[rng.integers(2)]} {rng.integers(10)}" for _ in range(3)]
        labels = [int("+" in step) for step in steps]
        records.append({"env_id": ENV_ID, "split": "train", "index": index, "problem_id": f"toy/{index}",
                        "question": "Toy:", "steps": steps, "outcome": 0, "k": 0, "policy_calls": 0, "tokens": 0,
                        "labels": {"mc_soft": labels, "mc_hard": labels, "exact": labels}, "source": "mc"})  # fmt: skip
    folder = write_data(tmp_path / "toy", records)
    trainer = PRMTrainer(config(folder, tmp_path, total_steps=30, batch_size=8, learning_rate=3e-3))
    losses = [trainer.step()["losses/bce"] for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_a_stopped_run_resumes_exactly(data, tmp_path):
    for method, schedule in (("classification", "constant"), ("td", "cosine")):
        overrides = {"method": method, "policy": "random", "num_proposals": 2, "target_sync_every": 3,
                     "lr_schedule": schedule}  # fmt: skip
        straight = PRMTrainer(config(data, tmp_path / f"straight-{method}", **overrides))
        straight.train()
        killed = PRMTrainer(config(data, tmp_path / f"killed-{method}", **overrides))
        killed.step = lambda t=killed, step=killed.step: step() if t.global_step < 2 else sys.exit("killed")
        with pytest.raises(SystemExit):
            killed.train()  # killed after its step-2 checkpoint
        resumed = PRMTrainer(config(data, tmp_path / f"killed-{method}", **overrides))
        assert resumed.global_step == 2
        resumed.train()
        assert straight.proposals == resumed.proposals
        for (name, a), b in zip(straight.nets.state_dict().items(), resumed.nets.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    again = PRMTrainer(config(data, tmp_path / "straight-td", **overrides))  # killed while saving the model, say
    assert again.global_step == 4 and "time/train_s" in again.train()
    assert (tmp_path / "straight-td/run/model/training.json").exists()


def test_the_cosine_schedule_decays_the_rate_and_older_checkpoints_resume(data, tmp_path):
    trainer = PRMTrainer(config(data, tmp_path / "cosine", lr_schedule="cosine", learning_rate=1e-3))
    rates = [trainer.step()["charts/learning_rate"] for _ in range(4)]
    assert rates == pytest.approx([1e-3, 0.8536e-3, 0.5e-3, 0.1464e-3], rel=1e-3)
    PRMTrainer(config(data, tmp_path / "old", total_steps=2)).train()
    state = torch.load(tmp_path / "old/run/checkpoint.pt", weights_only=False)
    del state["config"]["lr_schedule"]  # saved before the schedule existed, with one folder as text
    state["config"]["data"] = str(data)
    torch.save(state, tmp_path / "old/run/checkpoint.pt")
    assert PRMTrainer(config(data, tmp_path / "old")).global_step == 2
    with pytest.raises(CheckpointError, match=r"lr_schedule: 'constant' there, 'cosine' here"):
        PRMTrainer(config(data, tmp_path / "old", lr_schedule="cosine"))


def test_proposals_killed_mid_way_are_taken_up_where_they_stopped(data, tmp_path, monkeypatch):
    overrides = {"method": "td", "policy": "random", "num_proposals": 2}
    monkeypatch.setattr(prm_training, "PROPOSAL_CHUNK", 4)
    straight = PRMTrainer(config(data, tmp_path / "straight", **overrides)).proposals
    real, calls = prm_training.make_policy, []

    class Killed(Exception):
        pass

    def dies_at_the_third_chunk(*args, **kwargs):
        policy = real(*args, **kwargs)
        propose = policy.propose

        def counted(*a, **k):
            calls.append(1)
            if len(calls) == 3:
                raise Killed
            return propose(*a, **k)

        policy.propose = counted
        return policy

    monkeypatch.setattr(prm_training, "make_policy", dies_at_the_third_chunk)
    with pytest.raises(Killed):
        PRMTrainer(config(data, tmp_path / "killed", **overrides))
    with (tmp_path / "killed/run/proposals.jsonl").open("a") as file:
        file.write('{"chunk": 2, "act')  # a line cut short by the kill
    resumed = PRMTrainer(config(data, tmp_path / "killed", **overrides)).proposals
    assert resumed == straight and len(calls) > 3  # the first two chunks were not sampled again
    with (tmp_path / "killed/run/proposals.jsonl").open("a") as file:
        file.write('{"chunk": 9')  # torn again, then resumed with other settings
    with pytest.raises(CheckpointError, match=r"holds proposals of \{.*'num_proposals': 2.*this run's .*: 3"):
        PRMTrainer(config(data, tmp_path / "killed", **{**overrides, "num_proposals": 3}))


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(data, tmp_path, monkeypatch):
    trainer, calls = PRMTrainer(config(data, tmp_path)), []
    real = trainer.scorer.step_logits

    def poisoned(*args, **kwargs):  # the third step's logits are NaN
        calls.append(1)
        return [x * float("nan") for x in real(*args, **kwargs)] if len(calls) == 3 else real(*args, **kwargs)

    monkeypatch.setattr(trainer.scorer, "step_logits", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"nan at step 3.*last good checkpoint"):
        trainer.train()
    saved = torch.load(tmp_path / "run/checkpoint.pt", weights_only=False)
    assert saved["step"] == 2
    assert not (tmp_path / "run/model").exists()


def test_a_checkpoint_of_another_kind_is_refused_naming_both(data, tmp_path, monkeypatch):
    PRMTrainer(config(data, tmp_path, total_steps=2)).train()
    real = prm_training.load_backbone
    monkeypatch.setattr(prm_training, "load_backbone", lambda *a: pytest.fail("refused only after loading a model"))
    with pytest.raises(CheckpointError, match=r"holds a value-head classification PRM of tiny, this run trains a "
                                              r"token-head classification PRM of tiny"):  # fmt: skip
        PRMTrainer(config(data, tmp_path, head="token"))
    with pytest.raises(CheckpointError, match=r"other settings \(label: 'exact' there, 'mc_soft' here\)"):
        PRMTrainer(config(data, tmp_path, label="mc_soft"))
    # The same config over a checkpoint of other weights (a causal LM's, with no value head)
    monkeypatch.setattr(prm_training, "load_backbone", real)
    state = torch.load(tmp_path / "run/checkpoint.pt", weights_only=False)
    state["model"] = {k: v for k, v in state["model"].items() if not k.startswith("prm.score")}
    state["model"]["prm.lm_head.weight"] = state["model"]["prm.model.embed_tokens.weight"]
    torch.save(state, tmp_path / "run/checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"other weights than tiny's PRM .*prm.lm_head.weight is \(105, 128\) "
                                              r"there, absent here"):  # fmt: skip
        PRMTrainer(config(data, tmp_path))


def test_a_saved_prm_of_the_wrong_kind_or_tokenizer_is_refused_naming_both(data, tmp_path):
    output = PRMTrainer(config(data, tmp_path, total_steps=1)).train() and tmp_path / "run/model"
    info = json.loads((output / "training.json").read_text())
    info["prm"]["mode"] = "token"
    (output / "training.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"describes a 'token' PRM, which needs a causal LM .*LlamaForTokenClass"):
        make_prm(f"hf:{output}")
    info["prm"] |= {"mode": "value", "tokenizer": "vocab 50257 sha256:0123456789abcdef"}
    (output / "training.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"tokenizer \(vocab 105 sha256:\w+\) is not the one this PRM was trained "
                                         r"with \(vocab 50257 sha256:0123456789abcdef"):  # fmt: skip
        make_prm(f"hf:{output}")


def test_make_prm_reads_models_without_training_json_by_their_architecture(tmp_path, random_model, char_tokenizer):
    from transformers import LlamaForTokenClassification

    random_model.save_pretrained(tmp_path / "lm")
    char_tokenizer.save_pretrained(tmp_path / "lm")
    loaded = make_prm(f"hf:{tmp_path / 'lm'}")  # a causal LM: Math-Shepherd's good token, as before
    expected = HFStepScorer(random_model, char_tokenizer)(QUESTION, STEPS)
    assert loaded.mode == "token" and loaded(QUESTION, STEPS) == pytest.approx(expected, abs=1e-6)
    head_config = copy.deepcopy(random_model.config)
    head_config.num_labels = 1
    LlamaForTokenClassification(head_config).save_pretrained(tmp_path / "head")  # a value head
    char_tokenizer.save_pretrained(tmp_path / "head")
    assert make_prm(f"hf:{tmp_path / 'head'}").mode == "value"


@pytest.mark.parametrize("head", ["value", "token"])
def test_a_trained_prm_loads_back_through_make_prm_with_the_training_time_scores(data, tmp_path, head):
    trainer = PRMTrainer(config(data, tmp_path, head=head, total_steps=3, eval_data=str(data)))
    metrics = trainer.train()
    loaded = make_prm(f"hf:{tmp_path / 'run/model'}")
    assert isinstance(loaded, HFStepScorer) and loaded.mode == head
    records = trainer.records
    solutions = [(r["question"], r["steps"]) for r in records]
    trainer.model.eval()
    at_training = trainer.scorer.score_batch(solutions)
    with torch.no_grad():  # what the loss reads: the logit whose sigmoid the scorer returns
        logits = [x.sigmoid().tolist() for x in trainer.scorer.step_logits(solutions)]
    for a, b, c in zip(at_training, loaded.score_batch(solutions), logits, strict=True):
        assert a == pytest.approx(b, abs=1e-6) and a == pytest.approx(c, abs=1e-6)
    assert metrics["eval/roc_auc"] == pytest.approx(evaluate_prm(loaded, records)["roc_auc"], abs=1e-9)
    info = json.loads((tmp_path / "run/model/training.json").read_text())
    assert info["config"]["head"] == head and info["steps"] == 3 and info["data_meta"][0]["config"]
    assert info["commit"] and info["metrics"]["losses/bce"] == metrics["losses/bce"]


# -------------------------------------------------------------------------------------------------- evaluation


def test_roc_auc_and_brier_by_hand():
    # positives 0.35, 0.8; negatives 0.1, 0.4: pairs won 0.35>0.1, 0.8>0.1, 0.8>0.4 -> 3 of 4
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert roc_auc([0.5, 0.5, 0.2], [1, 0, 0]) == 0.75  # a tie counts one half: (1 + 0.5) / 2
    assert np.isnan(roc_auc([0.1, 0.2], [1, 1]))
    records = [{"question": "q", "steps": ["a", "b", "c"], "labels": {"exact": [1, 0, 1]}},
               {"question": "q", "steps": ["d"], "labels": {"exact": None}}]  # fmt: skip
    table = {"a": 0.9, "b": 0.3, "c": 0.25}
    result = evaluate_prm(lambda question, steps: [table[s] for s in steps], records, bins=2)
    assert result["roc_auc"] == 0.5  # positives 0.9, 0.25 against the negative 0.3: one pair of two
    assert result["brier"] == pytest.approx((0.1**2 + 0.3**2 + 0.75**2) / 3)
    assert result["calibration"] == [(pytest.approx(0.275), 0.5, 2), (0.9, 1.0, 1)]
    assert result["steps"] == 3 and result["positives"] == 2


def test_the_exact_rule_based_prm_is_perfect_on_exact_labels(data):
    result = evaluate_prm(RuleBasedPRM(), read_step_data(data)[0])
    assert result["roc_auc"] == 1.0 and result["brier"] == 0.0


def test_bad_step_data_and_configs_are_refused(tmp_path):
    record = game24_records(1)[0]
    write_data(tmp_path / "d", [record, {**record, "labels": {**record["labels"], "exact": [1]}}])
    with pytest.raises(ValueError, match=r"steps.jsonl:2 is not a step-data record: labels.exact must be a list"):
        read_step_data(tmp_path / "d")
    with pytest.raises(ValueError, match=r"choose n-step targets .* or TD"):
        PRMConfig(n_step=3, td_lambda=0.5)
    write_data(tmp_path / "e", [{**record, "labels": {**record["labels"], "exact": None}}])
    with pytest.raises(ValueError, match="without exact labels"):
        PRMTrainer(config(tmp_path / "e", tmp_path))


def test_several_folders_pool_their_trajectories_and_must_agree(data, tmp_path):
    more = write_data(tmp_path / "more", game24_records(5, split="test"))
    pooled = replace(config(data, tmp_path), data=(str(data), str(more)))
    trainer = PRMTrainer(pooled)
    assert [r["split"] for r in trainer.records] == ["train"] * 12 + ["test"] * 5  # the empty trajectory dropped
    assert len(trainer.metas) == 2
    meta = json.loads((more / "meta.json").read_text())
    for key, value in (("env_kwargs", {"max_steps": 2}), ("val_fraction", 0.2)):
        (more / "meta.json").write_text(json.dumps({"config": {**meta["config"], key: value}}))
        with pytest.raises(ValueError, match=f"labelled with other {key} .*more: .*pool folders that agree"):
            PRMTrainer(pooled)
    with pytest.raises(ValueError, match="at least one step-data folder"):
        PRMConfig(data=())


def test_reason_gym_train_prm_runs_and_its_prm_plugs_in(data, tmp_path):
    args = ["train", "prm", "--data", str(data), "--run-dir", str(tmp_path / "run"), "--total-steps", "2",
            "--batch-size", "4", "--no-progress", "--method", "td", "--policy", "random",
            "--num-proposals", "2"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "reason_gym.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ), timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "saved" in done.stdout and list((tmp_path / "run").glob("events.out.tfevents.*"))
    info = json.loads((tmp_path / "run/model/training.json").read_text())
    assert info["proposal_cost"]["samples"] > 0 and info["config"]["method"] == "td"
    env = Game24Env(prm=make_prm(f"hf:{tmp_path / 'run/model'}"), reward_weights={"prm": 1.0})
    env.reset(options={"index": 0})
    _, _, _, _, info = env.step(env.candidate_actions()[0])
    assert 0.0 < info["reward_components"]["prm"] < 1.0


def test_a_trained_prm_plugs_into_bench_and_grpo_by_its_path(data, tmp_path):
    from agents.bench import BenchConfig, run_bench
    from agents.training.grpo import GRPOConfig, GRPOTrainer

    PRMTrainer(config(data, tmp_path, total_steps=2)).train()
    spec = f"hf:{tmp_path / 'run/model'}"
    rows = run_bench(BenchConfig(env=ENV_ID, policy="random", planners=("bon", "beam"), budgets=(4,), limit=2,
                                 prm=spec, out=tmp_path / "bench", progress=False))  # fmt: skip
    assert {row["value"] for row in rows} == {"prm_vote", "prm"} and all(row["prm_calls"] > 0 for row in rows)
    trainer = GRPOTrainer(GRPOConfig(env_id=ENV_ID, prm=spec, prm_weight=1.0, split="train", eval_problems=0,
                                     run_dir=str(tmp_path / "grpo"), resume=False, device="cpu", num_threads=1,
                                     progress=False, total_steps=1, batch_size=4, group_size=2, max_turns=2,
                                     max_new_tokens=40, dynamic_sampling=False))  # fmt: skip
    metrics = trainer.step()
    trainer.envs.close()
    # an episode sums the PRM's scores in [0, 1] of its accepted steps that are not the answer (at most 2)
    assert 0.0 < metrics["rewards/prm"] <= 2.0
