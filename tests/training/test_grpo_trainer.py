"""The GRPO trainer: its batches, rollouts, configuration errors, learning on a trivial task, exact resume, NaN stop,
and its command-line entry points."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from agents.models import build_char_tokenizer, tiny_llama_config  # noqa: E402
from agents.policies.base import Candidate  # noqa: E402
from agents.training import batches, grpo  # noqa: E402
from agents.training.batches import (  # noqa: E402
    CompletionLogits,
    Row,
    length_chunks,
    make_micro_batch,
    pack_steps,
    row_logprobs,
    rows_of,
)
from agents.training.grpo import GRPOConfig, GRPOTrainer, NonFiniteLossError  # noqa: E402
from agents.training.rollouts import Episode, Step, collect_groups  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------- a trivial task


class SevensEnv(gym.Env[str, str]):
    """Say as many 7s as you can: one step, reward = the fraction of the step's characters that are '7'."""

    observation_space = gym.spaces.Text(max_length=64, charset="Say 7s:")
    action_space = gym.spaces.Text(max_length=64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "Say 7s:", {}

    def step(self, action):
        reward = action.count("7") / max(1, len(action))
        return "Say 7s:", reward, True, False, {"is_correct": reward > 0.5, "reward_components": {"sevens": reward}}


gym.register("test/Sevens-v0", entry_point=SevensEnv)


@pytest.fixture(scope="module")
def random_model_dir(tmp_path_factory) -> Path:
    """A freshly initialised (untrained) tiny character model, saved like any checkpoint."""
    from transformers import LlamaForCausalLM

    folder = tmp_path_factory.mktemp("random_model")
    tokenizer = build_char_tokenizer()
    torch.manual_seed(0)
    config = tiny_llama_config(len(tokenizer), hidden_size=32, num_layers=1, num_heads=2)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sevens_config(model: Path, run: Path, **overrides) -> GRPOConfig:
    settings = dict(
        env_id="test/Sevens-v0",
        model=str(model),
        run_dir=str(run),
        output_dir=str(run / "model"),
        total_steps=4,
        batch_size=16,
        group_size=8,
        max_new_tokens=6,
        eval_problems=0,
        learning_rate=3e-3,
        micro_batch_size=8,
        gradient_accumulation_steps=1,
        progress=False,
        dynamic_sampling=False,
        num_threads=1,
    )
    return GRPOConfig(**{**settings, **overrides})


# ---------------------------------------------------------------------------------------------- batch layout


def alone_logprobs(model, row: Row, temperature: float) -> torch.Tensor:
    """The reference: one row through the model by itself, no padding, no sharing."""
    ids = torch.tensor([row.prompt_ids + row.completion_ids])
    logits = model(input_ids=ids).logits[0, len(row.prompt_ids) - 1 : -1] / temperature
    return logits.log_softmax(-1).gather(1, torch.tensor(row.completion_ids)[:, None]).squeeze(1)


ROWS = [  # rows 0, 2 and 3 share a prompt (as a group's episodes do), row 1 has its own
    Row([1, 5, 6, 7], [8, 9], 1.0),
    Row([1, 5], [10, 11, 12, 13], -1.0),
    Row([1, 5, 6, 7], [30, 31, 32], 0.5),
    Row([1, 5, 6, 7], [8], -0.5),
]


@pytest.mark.parametrize(
    "episodes",
    [[ROWS[:2], ROWS[2:]], [[ROWS[1]], [ROWS[3]]], [[ROWS[0]], [ROWS[2]], [ROWS[3]]]],
    ids=["shared prompts", "nothing shared", "one column shared"],
)
@pytest.mark.filterwarnings("error::FutureWarning")  # the KV cache is passed under the installed version's name
def test_padded_rows_get_the_log_probs_and_gradients_they_get_alone(random_model_dir, episodes):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(random_model_dir).eval()
    rows = [row for episode in episodes for row in episode]
    batch = make_micro_batch(episodes, layout="steps")  # a row per step: this test is about padding and sharing
    assert batch.output_of_row.tolist() == [e for e, episode in enumerate(episodes) for _ in episode]
    assert batch.num_tokens == sum(len(r.completion_ids) for r in rows)
    together, _ = row_logprobs(CompletionLogits(model), batch, temperature=0.7)
    weights = torch.randn_like(together)
    (together * batch.mask * weights).sum().backward()
    batched_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    total = 0
    for i, row in enumerate(rows):
        alone = alone_logprobs(model, row, 0.7)
        assert together[i, : len(row.completion_ids)].detach() == pytest.approx(alone.detach(), abs=1e-5)
        total = total + (alone * weights[i, : len(row.completion_ids)]).sum()
    total.backward()
    for batched, single in zip(batched_grads, (p.grad for p in model.parameters()), strict=True):
        assert torch.allclose(batched, single, atol=1e-5)


# An episode as a character environment makes one (stop token 2; the env writes 3 between steps): step 2 extends
# step 1, step 3 is rejected (its text is not in the next prompt), step 4 extends step 2.
EPISODE = [
    Row([1, 5, 6], [7, 8, 2], 0.5),
    Row([1, 5, 6, 7, 8, 3], [9, 10, 2], -1.0),
    Row([1, 5, 6, 7, 8, 3, 9, 10, 3, 4], [11, 2], 2.0),
    Row([1, 5, 6, 7, 8, 3, 9, 10, 3, 4], [12, 13, 2], 0.25),
]


def test_rows_of_gives_index_selects_values_and_gradients_to_the_bit() -> None:
    """The shared prompt's rows: index_select's numbers, and its gradient from a strided upstream gradient."""
    torch.manual_seed(0)
    x = torch.randn(3, 4, 5, 6, requires_grad=True)
    index = torch.tensor([2, 0, 0, 1, 2, 2])
    upstream = torch.randn(6, 5, 4, 6).transpose(1, 2)  # not contiguous, as attention's gradients arrive
    mine = rows_of(x, index)
    (grad,) = torch.autograd.grad(mine, x, upstream)
    theirs = x.index_select(0, index)
    (want,) = torch.autograd.grad(theirs, x, upstream)
    assert torch.equal(mine, theirs) and torch.equal(grad, want)
    with torch.no_grad():
        assert torch.equal(rows_of(x, index), theirs)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (EPISODE[:1], [([1, 5, 6], [7, 8, 2], [7, 8, 2])]),
        (EPISODE[:2], [([1, 5, 6], [7, 8, 3, 9, 10, 2], [7, 8, 2, 9, 10, 2])]),
        (
            EPISODE,
            [
                ([1, 5, 6], [7, 8, 3, 9, 10, 3, 4, 12, 13, 2], [7, 8, 2, 9, 10, 2, None, 12, 13, 2]),
                ([1, 5, 6], [7, 8, 3, 9, 10, 3, 4, 11, 2], [None] * 7 + [11, 2]),
            ],
        ),
        # the next prompt drops the stop token and adds nothing: both would score one column, so no packing
        (
            [Row([1, 5], [7, 2], 1.0), Row([1, 5, 7], [8, 2], 1.0)],
            [([1, 5], [7, 2], [7, 2]), ([1, 5], [7, 8, 2], [None, 8, 2])],
        ),
        # a step whose prompt differs from what the earlier step saw (a re-tokenised prompt) is not packed
        (
            [Row([1, 5], [7, 2], 1.0), Row([1, 4, 7, 2], [8, 2], 1.0)],
            [([1, 5], [7, 2], [7, 2]), ([1, 4, 7, 2], [8, 2], [8, 2])],
        ),
    ],
    ids=["one step", "two steps", "a rejected step", "columns collide", "prompt differs"],
)
def test_steps_that_extend_each_other_are_packed_into_one_sequence(rows, expected):
    packed = pack_steps(rows)
    assert [(r.prompt_ids, r.continuation_ids, r.targets) for r in packed] == expected
    scored = sorted((a, t) for r in packed for t, a in zip(r.targets, r.advantages, strict=True) if t is not None)
    assert scored == sorted((row.advantage, t) for row in rows for t in row.completion_ids)


# Five steps rejected from the same state, then an accepted one: packed, each rejected step is a sequence as long as
# the episode; alone, each is a short continuation of one shared prompt; as a tree, each is a branch of one row.
REJECTED = [Row([1, 5, 6], [9, 9, 9, 2], -1.0) for _ in range(5)] + [Row([1, 5, 6], [7, 8, 2], 1.0)]
LONG = [Row([1, 5, 6, *[7] * 10 * i], [*[7] * 10, 2], 1.0) for i in range(4)]  # each step extends the last
SHORT = [Row([1, 5, 6], [9, 2], -1.0), Row([1, 5, 6], [7, 2], 1.0)]  # two one-token steps from the first prompt


@pytest.mark.parametrize(
    ("episodes", "expected", "rows"),
    [
        ([EPISODE], "tree", 1),  # packed, the rejected step needs a second sequence
        ([EPISODE[:2]], "packed", 1),  # one sequence either way: the plainer layout wins the tie
        ([LONG, LONG], "tree", 2),  # the stop tokens collide with the next steps' columns: packing cannot merge
        ([REJECTED], "tree", 1),
        ([REJECTED, REJECTED, LONG], "tree", 3),
        ([SHORT], "steps", 2),  # nothing to share beyond the prompt: every layout is the same size
    ],
    ids=["a rejected step", "extending steps", "long episodes", "rejected steps", "mixed", "nothing shared"],
)
def test_a_micro_batch_takes_the_layout_with_fewer_token_positions(episodes, expected, rows):
    chosen = make_micro_batch(episodes)
    layouts = {layout: make_micro_batch(episodes, layout=layout) for layout in ("packed", "steps", "tree")}
    assert chosen.input_ids.tolist() == layouts[expected].input_ids.tolist() and len(chosen.input_ids) == rows
    assert (chosen.tree_mask is None) == (expected != "tree")
    assert chosen.num_tokens == sum(len(row.completion_ids) for episode in episodes for row in episode)


@pytest.mark.parametrize(
    ("layout", "episodes", "sequences"),
    [
        ("packed", [EPISODE, EPISODE[:2], [ROWS[1]]], [0, 0, 1, 2]),  # 7 steps in 4 sequences
        ("tree", [EPISODE, EPISODE[:2], [ROWS[1]]], [0, 1, 2]),  # the rejected step is a branch of its episode
        ("tree", [REJECTED, LONG], [0, 1]),  # 5 identical rejected steps: 5 branches, each scored
        ("tree", [[ROWS[0], ROWS[2], ROWS[3]]], [0]),  # steps from one prompt sharing a first token
        ("tree", [[Row([1, 5], [7, 2], 1.0), Row([1, 4, 7, 2], [8, 2], -1.0)]], [0, 0]),  # two prompts: two trees
    ],
    ids=["packed", "tree", "tree, identical branches", "tree, shared first token", "tree, prompt differs"],
)
@pytest.mark.parametrize("chunk_cost", [None, 0], ids=["default chunks", "a chunk per length"])
@pytest.mark.filterwarnings("error::FutureWarning")
def test_packed_episodes_get_the_log_probs_and_gradients_of_their_steps_alone(
    random_model_dir, layout, episodes, sequences, chunk_cost, monkeypatch
):
    from transformers import AutoModelForCausalLM

    if chunk_cost is not None:  # the tree's rows of each length run as a chunk of their own (length_chunks)
        monkeypatch.setattr(batches, "CHUNK_COST", chunk_cost)
    model = AutoModelForCausalLM.from_pretrained(random_model_dir).eval()
    batch = make_micro_batch(episodes, layout=layout)
    assert batch.output_of_row.tolist() == sequences
    assert batch.num_tokens == sum(len(r.completion_ids) for e in episodes for r in e)
    together, _ = row_logprobs(CompletionLogits(model), batch, temperature=0.7)
    (together * batch.advantages * batch.mask).sum().backward()
    packed_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    alone = [(alone_logprobs(model, row, 0.7), row.advantage) for episode in episodes for row in episode]
    assert sorted(together[batch.mask.bool()].tolist()) == pytest.approx(
        sorted(torch.cat([logp for logp, _ in alone]).tolist()), abs=1e-5
    )
    sum(advantage * logp.sum() for logp, advantage in alone).backward()
    for packed, single in zip(packed_grads, (p.grad for p in model.parameters()), strict=True):
        assert torch.allclose(packed, single, atol=1e-5)


@pytest.mark.parametrize(
    ("lengths", "cost", "chunks"),
    [
        ([5, 5, 5], 128, [([0, 1, 2], 5)]),  # nothing to save
        ([10] * 15 + [200], 128, [(list(range(15)), 10), ([15], 200)]),  # one long row: 2,850 positions saved
        ([98] * 10 + [106] * 6, 128, [(list(range(16)), 106)]),  # 80 saved: not worth a pass
        ([3, 100, 3], 0, [([0, 2], 3), ([1], 100)]),
        ([0, 4], 0, [([0], 1), ([1], 4)]),  # an empty row still runs one column
    ],
)
def test_length_chunks_take_the_fewest_positions(lengths, cost, chunks) -> None:
    assert length_chunks(lengths, cost) == chunks


# ------------------------------------------------------------------------------------------------- rollouts


class ReplayPolicy:
    """Answers every Game24 state from a fixed list of steps, with made-up token ids (one per character)."""

    def __init__(self, steps: dict[str, str]) -> None:
        self.steps = steps

    def propose(self, states, n=1, *, temperature=None):
        out = []
        for state in states:
            text = next((step for key, step in self.steps.items() if state.endswith(key)), "Answer: 24")
            out.append([Candidate(text, len(text), 0.0, tuple(range(1, len(text) + 2)))] * n)
        return out


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_groups_are_played_to_the_end_through_a_vector_env(mode):
    kwargs = {"shared_memory": False} if mode == "async" else {}
    envs = gym.make_vec("reason_gym/Game24-v0", num_envs=4, vectorization_mode=mode, vector_kwargs=kwargs)
    solve = {  # puzzle 4 5 6 10 (index 0 of the test split: ToT row 900)
        "4 5 6 10": "10 - 6 = 4 (left: 4 4 5)",
        "(left: 4 4 5)": "4 * 5 = 20 (left: 4 20)",
        "(left: 4 20)": "4 + 20 = 24 (left: 24)",
        "(left: 24)": "Answer: 4 + 5 * (10 - 6) = 24",
    }
    policy = ReplayPolicy(solve)
    groups = collect_groups(
        envs,
        policy,
        lambda states: [[1] * len(s) for s in states],
        [{"index": 0, "split": "test"}, {"index": 1, "split": "test"}],
    )
    envs.close()
    assert [len(g) for g in groups] == [2, 2]
    first = groups[0][0]
    assert first.question.endswith("4 5 6 10") and first.terminated and first.is_correct
    assert [s.text for s in first.steps] == list(solve.values())
    assert first.reward == pytest.approx(1.0) and first.steps[-1].components["outcome"] == 1.0
    assert all(len(s.completion_ids) == len(s.text) + 1 for s in first.steps)
    other = groups[1][0]  # another puzzle: the scripted steps do not apply, the fallback answer is wrong
    assert other.terminated and not other.is_correct and len(other.steps) == 1

    # a PRM's step scores join the step rewards (weighted), as the "prm" component; the answer has the outcome
    from agents.prm import make_prm

    grpo.with_prm_rewards(groups, make_prm("rule"), weight=0.5)
    assert [s.components["prm"] for s in first.steps] == [1.0, 1.0, 1.0, 0.0]
    assert first.reward == pytest.approx(1.0 + 3 * 0.5)
    assert other.steps[0].components["prm"] == 0.0 and other.reward == pytest.approx(0.0)


def _step(text: str, rejected: bool = False) -> Step:
    return Step([1], [1], text, reward=0.0, components={"invalid_step": float(rejected)})


@pytest.mark.parametrize(
    ("steps", "terminated", "scored", "prm"),
    [
        # the PRM reads only the accepted steps, as the env's state holds them; a rejected step and the answer get 0
        ([("a", False), ("junk", True), ("b", False), ("answer", False)], True, ["a", "b"], [0.5, 0.0, 0.5, 0.0]),
        ([("a", False), ("b", False)], False, ["a", "b"], [0.5, 0.5]),  # truncated: its last step is not an answer
        ([("junk", True), ("junk", True)], False, [], [0.0, 0.0]),
        ([("answer", False)], True, [], [0.0]),
    ],
)
def test_prm_rewards_score_accepted_reasoning_steps_only(steps, terminated, scored, prm) -> None:
    seen = []

    def halves(question: str, texts: list[str]) -> list[float]:
        seen.append(list(texts))
        return [0.5] * len(texts)

    episode = Episode(0, "q", steps=[_step(text, rejected) for text, rejected in steps], terminated=terminated)
    grpo.with_prm_rewards([[episode]], halves, weight=2.0)
    assert seen == ([scored] if scored else [])
    assert [s.components["prm"] for s in episode.steps] == prm
    assert episode.reward == pytest.approx(2.0 * sum(prm))


# ----------------------------------------------------------------------------------------- bad configuration

BAD_CONFIGS = [
    ({"group_size": 1}, "group_size must be >= 2"),
    ({"batch_size": 12, "group_size": 8}, "multiple of group_size"),
    ({"beta": -0.1}, "beta must be >= 0"),
    ({"loss_type": "ppo"}, "unknown loss_type 'ppo'"),
    ({"env_id": "reason_gym/Chess-v0"}, "not registered"),
    ({"env_kwargs": "{max_steps: 3}"}, "not valid JSON"),
    ({"env_kwargs": "[1]"}, "JSON object"),
    ({"eval_env_kwargs": "{split: 1}"}, "eval_env_kwargs is not valid JSON"),
    ({"eval_env_kwargs": "3"}, "eval_env_kwargs must be a JSON object"),
    ({"epsilon_low": 1.5}, "epsilon_low"),
    ({"temperature": 0.0}, "temperature must be > 0"),
    ({"passes_per_batch": 0}, "passes_per_batch must be >= 1"),
    ({"learning_rate": 0.0}, "learning_rate must be > 0"),
    ({"train_problems": -1}, "train_problems must be >= 0"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_CONFIGS)
def test_a_config_that_cannot_work_is_refused_before_any_model_loads(overrides, message, monkeypatch):
    monkeypatch.setattr(grpo, "load_model_and_tokenizer", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(ValueError, match=message):
        GRPOConfig(**overrides)


def test_evaluations_play_the_eval_env_kwargs_problems(random_model_dir, tmp_path, monkeypatch):
    """Train on one-operation problems, evaluate on three-operation ones: the eval kwargs override the train ones."""
    config = sevens_config(
        random_model_dir,
        tmp_path,
        env_id="reason_gym/Arithmetic-v0",
        env_kwargs='{"num_operations": 1, "kind": "expression"}',
        eval_env_kwargs='{"num_operations": 3}',
        eval_problems=3,
    )
    trainer = GRPOTrainer(config)
    assert {env.unwrapped.num_operations for env in trainer.envs.envs} == {1}
    played = []

    def spy(policy, make_env, options):
        played.extend(make_env() for _ in options)
        return [{"is_correct": False} for _ in options]

    monkeypatch.setattr(grpo, "play_greedy", spy)
    assert trainer.evaluate() == {"eval/accuracy": 0.0}
    assert [(env.num_operations, env.kind) for env in played] == [(3, "expression")] * 3


# --------------------------------------------------------------------------------------------------- learning


def train_and_record(config: GRPOConfig, statistic: str = "rewards/mean") -> list[float]:
    """Runs every step of a fresh trainer; returns one rollout statistic per step."""
    trainer = GRPOTrainer(config)
    values = []
    for _ in range(config.total_steps):
        groups, stats = trainer.sample_batch()
        values.append(stats[statistic])
        trainer.update(grpo.rows_of(groups, config))
    return values


def test_a_short_run_raises_the_reward_of_a_trivial_task(random_model_dir, tmp_path):
    rewards = train_and_record(sevens_config(random_model_dir, tmp_path, total_steps=30, checkpoint_every=100))
    # from the untrained model's ~1% of sevens; the last five batches' mean reward is far above the first five's
    print("mean reward per step:", np.round(rewards, 2).tolist())
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.2, rewards


def test_the_rollouts_follow_the_weights_whatever_the_optimizer(random_model_dir, tmp_path, monkeypatch):
    """torch's fused AdamW on CPU updates the parameters without moving their version counters, which the fast
    decode loop checks: the trainer tells the policy after every step, so the rollouts sample from the trained
    weights (with stale ones this seed's reward stayed at 0.03)."""
    monkeypatch.setattr(torch.optim, "AdamW", functools.partial(torch.optim.AdamW, fused=True))
    config = sevens_config(random_model_dir, tmp_path, total_steps=30, checkpoint_every=100)
    trainer = GRPOTrainer(config)
    assert trainer.optimizer.defaults["fused"] and trainer.policy.uses_fast_decode()
    rewards = []
    for _ in range(config.total_steps):
        groups, stats = trainer.sample_batch()
        rewards.append(stats["rewards/mean"])
        trainer.update(grpo.rows_of(groups, config))
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.2, rewards


@pytest.mark.slow
def test_the_embedded_model_learns_a_few_multi_step_problems(tmp_path):
    """Multi-step GRPO end to end (rollouts, packed steps, updates) on the shipped model and a real task: on 4
    Arithmetic problems of 6-7 steps each, the sampled solve rate climbs (about 0.6 to 0.85, first and last five of
    20 steps). Dynamic sampling is off so that the logged rate is that of every episode sampled, not only of the
    groups kept (as the easy problems' groups become all-correct they would be dropped, hiding the climb)."""
    config = GRPOConfig(
        env_id="reason_gym/Arithmetic-v0",
        train_problems=4,
        run_dir=str(tmp_path),
        total_steps=20,
        batch_size=32,
        micro_batch_size=32,
        gradient_accumulation_steps=1,
        passes_per_batch=1,
        learning_rate=3e-4,
        eval_problems=0,
        dynamic_sampling=False,
        progress=False,
        num_threads=1,
    )
    accuracy = train_and_record(config, "rewards/accuracy")
    print("sampled solve rate per step:", np.round(accuracy, 2).tolist())
    assert np.mean(accuracy[-5:]) > np.mean(accuracy[:5]) + 0.15, accuracy


@pytest.mark.parametrize("advantage", ["outcome", "process"])
def test_a_killed_run_resumes_exactly(random_model_dir, tmp_path, advantage):
    overrides = dict(advantage=advantage, passes_per_batch=2, beta=0.05, checkpoint_every=2)
    straight = GRPOTrainer(sevens_config(random_model_dir, tmp_path / "straight", **overrides))
    straight.train()
    # the same run, "killed" after its step-2 checkpoint, then started again with the same flags
    stopped = GRPOTrainer(sevens_config(random_model_dir, tmp_path / "resumed", **{**overrides, "total_steps": 2}))
    stopped.train()
    resumed = GRPOTrainer(sevens_config(random_model_dir, tmp_path / "resumed", **overrides))
    resumed.train()
    assert resumed.global_step == straight.global_step == 4
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert json.loads((tmp_path / "resumed/model/training.json").read_text())["steps"] == 4


def test_a_checkpoint_of_another_run_is_not_resumed(random_model_dir, tmp_path):
    GRPOTrainer(sevens_config(random_model_dir, tmp_path, total_steps=1)).train()
    with pytest.raises(ValueError, match=r"other \['group_size'\].*--no-resume"):
        GRPOTrainer(sevens_config(random_model_dir, tmp_path, group_size=4)).train()


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(random_model_dir, tmp_path, monkeypatch):
    trainer = GRPOTrainer(sevens_config(random_model_dir, tmp_path, total_steps=5, checkpoint_every=1))
    real_aggregate, calls = grpo.aggregate, []

    def poisoned(*args, **kwargs):  # the third step's loss is NaN
        calls.append(1)
        value = real_aggregate(*args, **kwargs)
        return value * float("nan") if len(calls) > 2 * 2 * 2 else value  # 2 passes x 2 micro-batches x 2 steps

    monkeypatch.setattr(grpo, "aggregate", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"nan at step 3.*last good checkpoint"):
        trainer.train()
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 2
    assert all(torch.isfinite(t).all() for t in saved["model"].values())


class Killed(Exception):
    """Stands for SIGKILL: raised where a test stops a run."""


class RecordSteps(grpo.Callback):
    def __init__(self) -> None:
        self.steps: dict[int, dict[str, float]] = {}

    def on_step_end(self, trainer, metrics):
        self.steps[trainer.global_step] = {k: v for k, v in metrics.items() if not k.startswith(("time/", "charts/"))}


def test_a_run_killed_mid_step_resumes_with_the_same_next_steps(random_model_dir, tmp_path, monkeypatch):
    """Killed while sampling step 3 (its checkpoint is step 2's), then the same command again: steps 3 and 4 give
    the metrics and the weights of a run that was never stopped (every generator came back with the checkpoint)."""
    overrides = dict(advantage="process", passes_per_batch=2, beta=0.05, checkpoint_every=2, temperature=0.9)
    straight_steps = RecordSteps()
    straight = GRPOTrainer(sevens_config(random_model_dir, tmp_path / "straight", **overrides), [straight_steps])
    straight.train()

    real_collect, calls = grpo.collect_groups, []

    def killed_at_step_three(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise Killed
        return real_collect(*args, **kwargs)

    monkeypatch.setattr(grpo, "collect_groups", killed_at_step_three)
    with pytest.raises(Killed):
        GRPOTrainer(sevens_config(random_model_dir, tmp_path / "killed", **overrides)).train()
    monkeypatch.setattr(grpo, "collect_groups", real_collect)
    resumed_steps = RecordSteps()
    resumed = GRPOTrainer(sevens_config(random_model_dir, tmp_path / "killed", **overrides), [resumed_steps])
    resumed.train()
    assert sorted(resumed_steps.steps) == [3, 4]
    assert resumed_steps.steps == {step: straight_steps.steps[step] for step in (3, 4)}
    assert resumed.samples_seen == straight.samples_seen == 4 * 16
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_a_corrupt_checkpoint_names_itself_and_the_way_out(random_model_dir, tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 cut short by a full disk")
    with pytest.raises(ValueError, match=r"checkpoint\.pt cannot be resumed: .*--no-resume"):
        GRPOTrainer(sevens_config(random_model_dir, tmp_path, total_steps=1)).train()
    GRPOTrainer(sevens_config(random_model_dir, tmp_path, total_steps=1, resume=False)).train()  # the way out
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 1


def test_chat_prompts_of_rollouts_get_the_training_task_system_prompt(random_model_dir, tmp_path_factory):
    """Rollouts hand the policy observation strings: a chat-template model still gets the task's system prompt."""
    from transformers import AutoTokenizer

    from agents.policies.prompts import RawPrompt
    from reason_gym.envs.arithmetic import ArithmeticEnv

    folder = tmp_path_factory.mktemp("chat_model")
    for path in random_model_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    tokenizer.save_pretrained(folder)
    trainer = GRPOTrainer(sevens_config(folder, tmp_path_factory.mktemp("run"), env_id="reason_gym/Arithmetic-v0"))
    observation, _ = ArithmeticEnv().reset(seed=0)
    prompt = trainer.policy.prompt(observation)
    assert prompt.startswith(f"[system] {ArithmeticEnv.task.system_prompt}\n[user] ")
    raw = GRPOTrainer(
        sevens_config(random_model_dir, tmp_path_factory.mktemp("raw"), env_id="reason_gym/Arithmetic-v0")
    )
    assert raw.policy.prompt(observation) == RawPrompt()(observation)  # the embedded model's raw state, as before


# ------------------------------------------------------------------------------------------ entry points


def run(*args: str, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})}
    )


TINY_RUN = ["--total-steps", "1", "--batch-size", "4", "--group-size", "2", "--eval-problems", "2",
            "--max-new-tokens", "24", "--max-turns", "3", "--no-progress"]  # fmt: skip


@pytest.mark.slow
def test_reason_gym_train_grpo_runs_on_the_embedded_model(tmp_path):
    done = run(sys.executable, "-m", "reason_gym.cli", "train", "grpo", *TINY_RUN, "--run-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "saved" in done.stdout and (tmp_path / "model" / "model.safetensors").exists()
    info = json.loads((tmp_path / "model" / "training.json").read_text())
    assert info["steps"] == 1 and "eval/accuracy" in info["final"]
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_train_grpo_help_and_bad_flags():
    shown = run(sys.executable, "scripts/train_grpo.py", "--help", timeout=120)
    assert shown.returncode == 0 and "--advantage" in shown.stdout and "--loss-type" in shown.stdout
    refused = run(sys.executable, "-m", "reason_gym.cli", "train", "grpo", "--group-size", "1", timeout=120)
    assert refused.returncode == 2 and "group_size must be >= 2" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.slow
def test_the_script_runs_data_parallel_under_accelerate_with_two_processes(tmp_path):
    pytest.importorskip("accelerate")
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    done = run(
        *launcher,
        "scripts/train_grpo.py",
        *TINY_RUN,
        "--total-steps",
        "2",
        "--eval-problems",
        "0",
        "--run-dir",
        str(tmp_path),
        env={"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "data-parallel: 2 processes, parameters identical on every process" in done.stdout
    assert (tmp_path / "rng-0.pt").exists() and (tmp_path / "rng-1.pt").exists()


@pytest.mark.slow
def test_compare_grpo_script_trains_evaluates_and_plots(tmp_path):
    done = run(
        sys.executable,
        "scripts/compare_grpo.py",
        *("--seeds", "0", "--total-steps", "1", "--batch-size", "4", "--group-size", "2"),
        *("--eval-limit", "2", "--budget", "2", "--out", str(tmp_path), "--no-progress"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["model"] for r in results] == ["start", "outcome-seed0", "process-seed0"]
    assert all(0.0 <= r["game24_greedy"] <= 1.0 and "game24_beam@2" in r for r in results)
    assert (tmp_path / "curves.png").stat().st_size > 10_000 and (tmp_path / "results.md").exists()


@pytest.mark.slow
def test_compare_grpo_runs_in_parallel_plots_evaluations_and_reuses_them(tmp_path):
    args = [
        *("scripts/compare_grpo.py", "--seeds", "0", "1", "--advantages", "outcome", "--total-steps", "2"),
        *("--batch-size", "4", "--group-size", "2", "--micro-batch-size", "4", "--gradient-accumulation-steps", "1"),
        *("--passes-per-batch", "1", "--no-dynamic-sampling", "--outcome-step-reward", "0", "--temperature", "0.7"),
        *("--invalid-step-reward", "0", "--eval-every", "1", "--eval-problems", "2", "--eval-limit", "2"),
        *("--arithmetic-eval-limit", "3", "--budget", "2", "--max-steps", "4", "--out", str(tmp_path), "--jobs", "2"),
    ]
    done = run(sys.executable, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["model"] for r in results] == ["start", "outcome-seed0", "outcome-seed1"]
    config = json.loads((tmp_path / "outcome-seed1" / "model" / "training.json").read_text())["config"]
    assert config["temperature"] == 0.7 and not config["dynamic_sampling"] and config["passes_per_batch"] == 1
    env_kwargs = config["env_kwargs"]  # a dictionary in training.json (it was a JSON string)
    # the outcome's step weight, no penalty, and the step limit
    assert env_kwargs == {"reward_weights": {"step_solvable": 0.0, "invalid_step": 0.0}, "max_steps": 4}
    assert config["eval_every"] == 1 and config["eval_problems"] == 2
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    cached = {f.name: f.stat().st_mtime_ns for f in (tmp_path / "evals").iterdir()}
    assert set(cached) == {"start.json", "outcome-seed0.json", "outcome-seed1.json"}
    again = run(sys.executable, *args)  # trained and evaluated: the second call only tabulates and plots
    assert again.returncode == 0, again.stderr[-3000:]
    assert {f.name: f.stat().st_mtime_ns for f in (tmp_path / "evals").iterdir()} == cached
    assert json.loads((tmp_path / "results.json").read_text()) == results
    weights_file = tmp_path / "outcome-seed1" / "model" / "model.safetensors"
    os.utime(weights_file, ns=(weights_file.stat().st_atime_ns, weights_file.stat().st_mtime_ns + 10**9))
    third = run(sys.executable, *args)  # replaced weights are evaluated again, the others still are not
    assert third.returncode == 0, third.stderr[-3000:]
    changed = {f.name for f in (tmp_path / "evals").iterdir() if f.stat().st_mtime_ns != cached[f.name]}
    assert changed == {"outcome-seed1.json"}
