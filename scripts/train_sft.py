"""Supervised fine-tuning of the embedded character model on solver traces (Game of 24 and Arithmetic).

    python scripts/train_sft.py                     # stage 1 of the shipped checkpoint, from scratch: runs/sft_tiny/
    python scripts/train_sft.py --help              # every setting
    # a model trained on, on problems it has not seen (the seed draws them); stage 2 of the shipped checkpoint:
    python scripts/train_sft.py --init-model runs/sft_tiny/model --seed 22 --arithmetic-problems 57600 \
        --arithmetic-max-operations 3 --total-steps 2400 --learning-rate 1e-3 --warmup-steps 50 \
        --output-dir runs/sft_stage2/model --run-dir runs/sft_stage2
    tensorboard --logdir runs                       # losses/, charts/, eval/

The shipped checkpoint (``agents/models/tiny/``) is never overwritten unless ``--output-dir`` names it. A model's
``training.json`` records every stage that made it: with ``--init-model``, the starting model's own
``training.json`` is kept under ``init_model_training``.

Each training sequence is a whole solved episode exactly as the environment shows it: the question, then one line
per step, then ``Answer: ...``, each followed by a newline. The loss is on the step characters only (the question is
input), so the model learns ``observation + "\\n" -> next step + "\\n"`` for every step at once, which is exactly
what :class:`~agents.policies.hf.HFPolicy` asks of it (:class:`~agents.policies.prompts.RawPrompt`).

Data never comes from a test split:

- Game of 24: the TRAIN split of the Tree-of-Thoughts puzzles (rows outside 900-999; checked against the test
  puzzles below). Each puzzle gives several solution traces, random walks over the moves that keep the puzzle
  solvable (the environment's ``step_solvable`` check), ending with the answer ``candidate_actions()`` builds.
  A few train puzzles are held out for validation.
- Arithmetic: problems drawn from ``ArithmeticEnv(split="train")``, with
  :func:`reason_gym.envs.arithmetic.solution_trace` as the steps.

Every trace is replayed through the environment before it is used, and must be accepted step by step and end
correct. Training resumes from ``run_dir/checkpoint.pt`` when it is there (``--no-resume`` starts over).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import tyro
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from agents.models import build_char_tokenizer, tiny_llama_config
from agents.policies import model_path
from agents.policies.hf import HFPolicy, configure_threads, load_model_and_tokenizer
from reason_gym.core import TaskSpec
from reason_gym.envs.arithmetic import ArithmeticEnv, solution_trace, split_of
from reason_gym.envs.game24 import Game24Env

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_policy import play_greedy


@dataclass
class Args:
    seed: int = 1
    """seed of the data, the initialisation and the batch order"""
    output_dir: str = "runs/sft_tiny/model"
    """where the final model and tokenizer are saved (the shipped checkpoint is agents/models/tiny)"""
    run_dir: str = "runs/sft_tiny"
    """TensorBoard logs and the resumable training checkpoint"""
    resume: bool = True
    """continue from run_dir/checkpoint.pt when it exists"""
    progress: bool = True
    """show a progress bar"""
    num_threads: int | None = 1
    """torch CPU threads; one is fastest for a model this small on a busy 2-core machine (with two, each op's
    OpenMP threads wait for each other whenever another process holds a core); None: every core available"""

    # Data
    game24_traces_per_puzzle: int = 12
    """distinct solution traces per Game24 train puzzle (fewer when a puzzle has fewer)"""
    game24_max_puzzles: int | None = None
    """use only the first N train puzzles (for quick runs)"""
    game24_val_puzzles: int = 60
    """train puzzles held out of training, to validate on (the test split is never touched)"""
    arithmetic_problems: int = 12000
    """Arithmetic training problems, spread evenly over 1..arithmetic_max_operations operations"""
    arithmetic_max_operations: int = 4
    """the most operations in an Arithmetic training problem (the env's default is 3)"""

    # Model
    init_model: str | None = None
    """start from this model's weights (``tiny``: the shipped checkpoint, or a folder) instead of a random
    initialisation, which the three sizes below then do not describe: to train a model on more problems (with
    another ``--seed``, so that they are new ones)"""
    hidden_size: int = 128
    """width of the residual stream"""
    num_layers: int = 4
    """transformer blocks"""
    num_heads: int = 4
    """attention heads"""

    # Optimisation
    total_steps: int = 3000
    """optimizer steps"""
    batch_size: int = 32
    """sequences per step"""
    learning_rate: float = 3e-3
    """peak learning rate (AdamW), after a linear warm-up, then cosine decay"""
    min_learning_rate: float = 1e-4
    """the learning rate at the end of the cosine decay"""
    warmup_steps: int = 100
    """steps of linear warm-up"""
    weight_decay: float = 0.05
    """AdamW weight decay of the matrices (not of norms)"""
    max_grad_norm: float = 1.0
    """gradient clipping"""

    # Logging and checkpoints
    log_every: int = 25
    """steps between TensorBoard scalars"""
    eval_every: int = 1500
    """steps between greedy validation runs (0: only at the end)"""
    eval_problems: int = 40
    """problems per task in each validation run"""
    checkpoint_every: int = 250
    """steps between resumable checkpoints"""


RESUME_KEYS = ("seed", "init_model", "hidden_size", "num_layers", "num_heads", "batch_size")
"""With the data settings, the arguments a resumed run must share with its checkpoint."""

# ------------------------------------------------------------------ data


def game24_traces(args: Args, rng: np.random.Generator) -> tuple[list[str], list[tuple[int, ...]]]:
    """Solved Game24 train episodes (final observations) and the held-out validation puzzles."""
    env = Game24Env(split="train", reward_weights={"step_solvable": 1.0})
    if not env.tot_order:
        raise SystemExit(
            "train_sft.py needs the Tree-of-Thoughts 24.csv (set REASON_GYM_DATA_DIR, or pip install --no-deps "
            "tree-of-thoughts-llm==0.1.0): without it there is no train/test split to keep the test puzzles out"
        )
    puzzles = []
    for index in range(len(env.split_indices("train"))):
        env.reset(options={"index": index, "split": "train"})
        puzzles.append(env.get_state().problem["numbers"])
    test_env = Game24Env(split="test")
    test_puzzles = set()
    for index in range(len(test_env.split_indices("test"))):
        test_env.reset(options={"index": index})
        test_puzzles.add(tuple(sorted(test_env.get_state().problem["numbers"])))
    # The guarantee this script rests on: no test puzzle is trained on (nor validated on). Not an `assert`, which
    # `python -O` would skip.
    if test_puzzles & {tuple(sorted(p)) for p in puzzles}:
        raise SystemExit("a Game24 test puzzle is in the train split: refusing to train on it")

    order = rng.permutation(len(puzzles))
    val = [puzzles[i] for i in order[: args.game24_val_puzzles]]
    train = [puzzles[i] for i in order[args.game24_val_puzzles :]][: args.game24_max_puzzles]
    texts = []
    for numbers in train:
        seen: set[str] = set()
        winning: dict[str, list[str]] = {}  # the winning moves of each state met, for this puzzle's walks
        for _ in range(4 * args.game24_traces_per_puzzle):  # random walks; duplicates are dropped
            text = _random_winning_episode(env, numbers, rng, winning)
            if text not in seen:
                seen.add(text)
                texts.append(text + "\n")
            if len(seen) == args.game24_traces_per_puzzle:
                break
    return texts, val


def _random_winning_episode(
    env: Game24Env, numbers: tuple[int, ...], rng: np.random.Generator, cache: dict[str, list[str]]
) -> str:
    """One solved episode: a uniformly random move among those that keep the puzzle solvable, at every step."""
    observation, _ = env.reset(options={"problem": {"numbers": list(numbers)}})
    while True:
        if observation not in cache:
            state, cache[observation] = env.get_state(), []
            for action in env.candidate_actions():
                if action is None:
                    continue
                _, _, terminated, _, info = env.step(action)
                if (info.get("is_correct") if terminated else info["reward_components"]["step_solvable"]) == 1:
                    cache[observation].append(action)
                env.set_state(state)
        winning = cache[observation]
        action = winning[int(rng.integers(len(winning)))]
        observation, _, terminated, _, info = env.step(action)
        if terminated:
            assert info["is_correct"], f"the replayed Game24 trace of {numbers} is wrong"
            return observation


def arithmetic_traces(args: Args, rng: np.random.Generator) -> list[str]:
    """Solved Arithmetic train episodes: the solver's steps, replayed through the environment."""
    texts = []
    per_size = math.ceil(args.arithmetic_problems / args.arithmetic_max_operations)
    for operations in range(1, args.arithmetic_max_operations + 1):
        env = ArithmeticEnv(split="train", num_operations=operations)
        for _ in range(per_size):
            observation, _ = env.reset(seed=int(rng.integers(2**31)))
            problem = env.get_state().problem
            assert split_of(problem) == "train", "an Arithmetic test problem was drawn for training"
            for action in solution_trace(problem):
                observation, _, terminated, _, info = env.step(action)
                assert "error" not in info or terminated, f"the solver's step {action!r} was rejected: {info}"
            assert terminated and info["is_correct"], f"the solver's trace of {problem} is wrong"
            texts.append(observation + "\n")
    return texts


def question_length(text: str, task: TaskSpec) -> int:
    """Characters of the question (plus its newline): the input part of a training text, with no loss on it. The
    question fills ``task.question_lines`` lines, as the task's environment declares."""
    question, _ = task.split(text)
    return len(question) + 1


def encode(texts: list[str], tasks: list[TaskSpec], tokenizer) -> tuple[list[torch.Tensor], list[int]]:
    """Token ids of every text (``<s>`` first) and where its loss starts (the first step character)."""
    ids = tokenizer(texts)["input_ids"]  # character tokenizer: one id per character, after <s>
    return [torch.tensor(x) for x in ids], [1 + question_length(t, task) for t, task in zip(texts, tasks, strict=True)]


def batch_of(ids: list[torch.Tensor], starts: list[int], rows: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded (B, L) input ids, attention mask and labels (-100 on the question and the padding)."""
    width = max(len(ids[i]) for i in rows)
    input_ids = torch.full((len(rows), width), pad_id)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100)
    for row, i in enumerate(rows):
        n = len(ids[i])
        input_ids[row, :n] = ids[i]
        attention_mask[row, :n] = 1
        labels[row, starts[i] : n] = ids[i][starts[i] :]  # the model shifts labels: position t predicts token t+1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def epoch_batches(lengths: np.ndarray, batch_size: int, key: tuple[int, int]) -> list[np.ndarray]:
    """One epoch's batches of row indices: shuffled, with rows of similar length batched together.

    Game24 traces are about twice as long as Arithmetic ones; batching by length (within shuffled pools of 32
    batches) spends the compute on characters instead of padding.
    """
    rng = np.random.default_rng(key)
    permutation = rng.permutation(len(lengths))
    pool = 32 * batch_size
    batches = []
    for start in range(0, len(permutation), pool):
        rows = permutation[start : start + pool]
        rows = rows[np.argsort(lengths[rows], kind="stable")]
        batches += [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def learning_rate(step: int, args: Args) -> float:
    """Linear warm-up, then cosine decay from ``learning_rate`` to ``min_learning_rate``."""
    if step < args.warmup_steps:
        return args.learning_rate * (step + 1) / args.warmup_steps
    progress = min(1.0, (step - args.warmup_steps) / max(1, args.total_steps - args.warmup_steps))
    return args.min_learning_rate + 0.5 * (1 + math.cos(math.pi * progress)) * (
        args.learning_rate - args.min_learning_rate
    )


def validate(model, tokenizer, val_puzzles: list[tuple[int, ...]], args: Args) -> dict[str, float]:
    """Greedy top-1 on the held-out Game24 train puzzles and on Arithmetic train-split problems."""
    model.eval()
    policy = HFPolicy(model, tokenizer, max_new_tokens=48, num_threads=torch.get_num_threads())
    game24 = play_greedy(
        policy,
        lambda: Game24Env(split="train"),
        [{"problem": {"numbers": list(p)}} for p in val_puzzles[: args.eval_problems]],
    )
    arithmetic = play_greedy(
        policy,
        lambda: ArithmeticEnv(split="train"),
        [{"index": 10_000 + i} for i in range(args.eval_problems)],  # far from the seeds above in practice
    )
    model.train()
    return {
        "eval/game24_val_solved": sum(e["is_correct"] for e in game24) / max(1, len(game24)),
        "eval/arithmetic_val_solved": sum(e["is_correct"] for e in arithmetic) / max(1, len(arithmetic)),
    }


# ------------------------------------------------------------------ training


def main(args: Args) -> None:
    from transformers import LlamaForCausalLM

    threads = configure_threads(args.num_threads)
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = run_dir / "checkpoint.pt"
    checkpoint = None
    if args.resume and checkpoint_path.exists():  # checked first: a run that cannot resume fails before any work
        checkpoint = torch.load(checkpoint_path, weights_only=False)
        # What defines the model and its batch stream must match (total_steps may grow: training goes on).
        same = [k for k in asdict(args) if k.startswith(("game24_", "arithmetic_")) or k in RESUME_KEYS]
        changed = [k for k in same if checkpoint["args"].get(k) != getattr(args, k)]
        if changed:
            raise SystemExit(f"{checkpoint_path} was trained with other {changed}: pass --no-resume to start over")

    # Data: deterministic given the seed (so a resumed run trains on the same sequences).
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    game24, val_puzzles = game24_traces(args, rng)
    arithmetic = arithmetic_traces(args, rng)
    texts = game24 + arithmetic
    tokenizer = build_char_tokenizer()
    ids, starts = encode(texts, [Game24Env.task] * len(game24) + [ArithmeticEnv.task] * len(arithmetic), tokenizer)
    tokens = sum(len(x) for x in ids)
    print(
        f"data: {len(game24)} Game24 traces, {len(arithmetic)} Arithmetic traces, {tokens:,} tokens "
        f"({time.perf_counter() - started:.1f} s); {threads} threads"
    )

    torch.manual_seed(args.seed)
    if args.init_model:
        model = load_model_and_tokenizer(model_path(args.init_model))[0]
        if model.config.vocab_size != len(tokenizer):
            raise SystemExit(f"{args.init_model} has {model.config.vocab_size} token ids, not the character model's")
    else:
        config = tiny_llama_config(
            len(tokenizer), hidden_size=args.hidden_size, num_layers=args.num_layers, num_heads=args.num_heads
        )
        model = LlamaForCausalLM(config)
    print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")
    decay = [p for p in model.parameters() if p.dim() >= 2]  # matrices decay; norm gains do not
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.learning_rate,
        betas=(0.9, 0.95),
    )

    step = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = checkpoint["step"]
        print(f"resumed from {checkpoint_path} at step {step}")
    writer = SummaryWriter(run_dir, purge_step=step)  # drop events a crashed run logged after its checkpoint
    writer.add_text("args", json.dumps(asdict(args), indent=1))

    def save_checkpoint() -> None:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "args": asdict(args)}
        torch.save(state, checkpoint_path.with_suffix(".tmp"))
        os.replace(checkpoint_path.with_suffix(".tmp"), checkpoint_path)  # atomic: a crash never leaves half a file

    model.train()
    lengths = np.array([len(x) for x in ids])
    batches_per_epoch = len(epoch_batches(lengths, args.batch_size, (args.seed, 0)))
    batches, batches_epoch = [], -1
    bar = tqdm(total=args.total_steps, initial=step, disable=not args.progress, desc="sft")
    window_tokens, window_start = 0, time.perf_counter()
    metrics: dict[str, float] = {}
    while step < args.total_steps:
        # The batch order depends only on (seed, epoch): a resumed run sees the batches the crashed one would have.
        epoch, offset = divmod(step, batches_per_epoch)
        if epoch != batches_epoch:
            batches, batches_epoch = epoch_batches(lengths, args.batch_size, (args.seed, epoch)), epoch
        batch = batch_of(ids, starts, batches[offset], tokenizer.pad_token_id)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args)

        loss = model(**batch).loss  # mean cross-entropy over the step tokens of the batch
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        step += 1
        window_tokens += int(batch["attention_mask"].sum())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")

        if step % args.log_every == 0 or step == args.total_steps:
            elapsed = time.perf_counter() - window_start
            writer.add_scalar("losses/train_loss", loss.item(), step)
            writer.add_scalar("losses/grad_norm", float(grad_norm), step)
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], step)
            writer.add_scalar("charts/tokens_per_second", window_tokens / elapsed, step)
            window_tokens, window_start = 0, time.perf_counter()
        if (args.eval_every and step % args.eval_every == 0) or step == args.total_steps:
            metrics = validate(model, tokenizer, val_puzzles, args)
            for name, value in metrics.items():
                writer.add_scalar(name, value, step)
            bar.write(f"step {step}: " + ", ".join(f"{k.split('/')[1]} {v:.0%}" for k, v in metrics.items()))
        if step % args.checkpoint_every == 0 or step == args.total_steps:
            save_checkpoint()
    bar.close()
    writer.close()

    output_dir = Path(args.output_dir)
    model.save_pretrained(output_dir)  # config.json, generation_config.json, model.safetensors
    tokenizer.save_pretrained(output_dir)
    info = {"args": asdict(args), "steps": step, "final_validation": metrics, "train_tokens": tokens}
    init_info = Path(model_path(args.init_model)) / "training.json" if args.init_model else None
    if init_info is not None and init_info.exists():
        info["init_model_training"] = json.loads(init_info.read_text())
    (output_dir / "training.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"saved {output_dir} ({time.perf_counter() - started:.0f} s in all)")


if __name__ == "__main__":
    main(tyro.cli(Args))
