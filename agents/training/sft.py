"""Supervised fine-tuning of the embedded character model on solver traces (Game24 and Arithmetic).

    python scripts/train_sft.py                     # stage 1 of the shipped checkpoint, from scratch: runs/sft_tiny/
    reason-gym train sft --help                     # every setting (the same flags as the script's)
    # a model trained on, on problems it has not seen (the seed draws them); stage 2 of the shipped checkpoint:
    python scripts/train_sft.py --init-model runs/sft_tiny/model --seed 22 --arithmetic-problems 57600 \\
        --arithmetic-max-operations 3 --total-steps 2400 --learning-rate 1e-3 --warmup-steps 50 \\
        --output-dir runs/sft_stage2/model --run-dir runs/sft_stage2
    tensorboard --logdir runs                       # losses/, charts/, eval/

The shipped checkpoint (``agents/models/tiny/``) is never overwritten unless ``--output-dir`` names it. A model's
``training.json`` records every stage that made it: with ``--init-model``, the starting model's own
``training.json`` is kept under ``init_model_training``.

Each training sequence is a whole solved episode exactly as the environment shows it: the question, then one line
per step, then ``Answer: ...``, each followed by a newline. The loss is on the step characters only (the question is
input), so the model learns ``observation + "\\n" -> next step + "\\n"`` for every step at once, which is exactly
what :class:`~agents.policies.hf.HFPolicy` asks of it (:class:`~agents.policies.prompts.RawPrompt`).

Data never comes from a test split (a check refuses to train otherwise, with a :class:`ValueError` that says why):

- Game24: the TRAIN split of the Tree-of-Thoughts puzzles (rows outside 900-999; checked against the test
  puzzles below). Each puzzle gives several solution traces, random walks over the moves that keep the puzzle
  solvable (the environment's ``step_solvable`` check), ending with the answer ``candidate_actions()`` builds.
  A few train puzzles are held out for validation.
- Arithmetic: problems drawn from ``ArithmeticEnv(split="train")``, with
  :func:`reason_gym.envs.arithmetic.solution_trace` as the steps.

Every trace is replayed through the environment before it is used, and must be accepted step by step and end
correct. Training resumes from ``run_dir/checkpoint.pt`` when it is there (``--no-resume`` starts over); see
:mod:`agents.training.checkpoints`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from agents.cli import parse, run_script
from agents.evaluation import play_greedy
from agents.models import build_char_tokenizer, tiny_llama_config
from agents.policies import model_path
from agents.policies.hf import HFPolicy, configure_threads, load_model_and_tokenizer
from agents.training.checkpoints import Checkpoints, log_scalars, open_writer
from reason_gym.core import TaskSpec
from reason_gym.envs.arithmetic import ArithmeticEnv, solution_trace, split_of
from reason_gym.envs.game24 import Game24Env
from reason_gym.files import write_atomic


@dataclass
class SFTConfig:
    """SFT of a causal LM on solver traces (every field is a command-line flag: ``--total-steps 3000``)."""

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

    def __post_init__(self) -> None:
        """Refuses a configuration that cannot work, before any data is made."""
        positive = ("total_steps", "batch_size", "log_every", "checkpoint_every", "arithmetic_max_operations")
        counts = ("warmup_steps", "eval_every", "eval_problems", "arithmetic_problems", "game24_val_puzzles")
        problems = [f"{name} must be >= 1, got {getattr(self, name)}" for name in positive if getattr(self, name) < 1]
        problems += [f"{name} must be >= 0, got {getattr(self, name)}" for name in counts if getattr(self, name) < 0]
        if problems:
            raise ValueError("bad SFT configuration:\n  " + "\n  ".join(problems))


RESUME_KEYS = ("seed", "init_model", "hidden_size", "num_layers", "num_heads", "batch_size")
"""With the data settings, the arguments a resumed run must share with its checkpoint."""

# ------------------------------------------------------------------ data


def game24_traces(config: SFTConfig, rng: np.random.Generator) -> tuple[list[str], list[tuple[int, ...]]]:
    """Solved Game24 train episodes (final observations) and the held-out validation puzzles."""
    env = Game24Env(split="train", reward_weights={"step_solvable": 1.0})
    if not env.tot_order:
        raise ValueError(
            "SFT needs the Tree-of-Thoughts 24.csv (set REASON_GYM_DATA_DIR, or pip install --no-deps "
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
    # The guarantee SFT rests on: no test puzzle is trained on (nor validated on). Not an `assert`, which
    # `python -O` would skip.
    leaked = test_puzzles & {tuple(sorted(p)) for p in puzzles}
    if leaked:
        raise ValueError(
            f"{len(leaked)} Game24 test puzzles (e.g. {sorted(leaked)[0]}) are in the train split: refusing to train "
            "on them. The split is the rows of the Tree-of-Thoughts 24.csv (rows 900-999 are the test puzzles): point "
            "REASON_GYM_DATA_DIR at an unmodified copy (or pip install --no-deps tree-of-thoughts-llm==0.1.0)"
        )

    order = rng.permutation(len(puzzles))
    val = [puzzles[i] for i in order[: config.game24_val_puzzles]]
    train = [puzzles[i] for i in order[config.game24_val_puzzles :]][: config.game24_max_puzzles]
    texts = []
    for numbers in train:
        seen: set[str] = set()
        winning: dict[str, list[str]] = {}  # the winning moves of each state met, for this puzzle's walks
        for _ in range(4 * config.game24_traces_per_puzzle):  # random walks; duplicates are dropped
            text = _random_winning_episode(env, numbers, rng, winning)
            if text not in seen:
                seen.add(text)
                texts.append(text + "\n")
            if len(seen) == config.game24_traces_per_puzzle:
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
            if not info["is_correct"]:
                raise RuntimeError(f"the replayed Game24 trace of {numbers} is wrong: {observation!r}")
            return observation


def arithmetic_traces(config: SFTConfig, rng: np.random.Generator) -> list[str]:
    """Solved Arithmetic train episodes: the solver's steps, replayed through the environment."""
    texts = []
    per_size = math.ceil(config.arithmetic_problems / config.arithmetic_max_operations)
    for operations in range(1, config.arithmetic_max_operations + 1):
        env = ArithmeticEnv(split="train", num_operations=operations)
        for _ in range(per_size):
            observation, _ = env.reset(seed=int(rng.integers(2**31)))
            problem = env.get_state().problem
            if split_of(problem) != "train":  # not an `assert`, which `python -O` would skip
                raise ValueError(
                    f"ArithmeticEnv(split='train') drew a test problem ({problem}): refusing to train on it. Its "
                    "problems and reason_gym.envs.arithmetic.split_of must agree on the split: fix the one that "
                    "changed, then run again"
                )
            for action in solution_trace(problem):
                observation, _, terminated, _, info = env.step(action)
                if "error" in info and not terminated:
                    raise RuntimeError(f"the solver's step {action!r} of {problem} was rejected: {info}")
            if not (terminated and info["is_correct"]):
                raise RuntimeError(f"the solver's trace of {problem} is wrong: {observation!r}")
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


def learning_rate(step: int, config: SFTConfig) -> float:
    """Linear warm-up, then cosine decay from ``learning_rate`` to ``min_learning_rate``."""
    return cosine_learning_rate(step, config.total_steps, config.learning_rate, config.min_learning_rate,
                                config.warmup_steps)  # fmt: skip


def cosine_learning_rate(
    step: int, total_steps: int, peak: float, minimum: float = 0.0, warmup_steps: int = 0
) -> float:
    """The learning rate of optimizer step ``step`` (from 0): linear warm-up over ``warmup_steps``, then cosine decay
    from ``peak`` to ``minimum`` at ``total_steps``.

    >>> [round(cosine_learning_rate(s, 4, 1.0), 3) for s in range(5)]
    [1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return minimum + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - minimum)


def validate(model, tokenizer, val_puzzles: list[tuple[int, ...]], config: SFTConfig) -> dict[str, float]:
    """Greedy top-1 on the held-out Game24 train puzzles and on Arithmetic train-split problems."""
    model.eval()
    policy = HFPolicy(model, tokenizer, max_new_tokens=48, num_threads=torch.get_num_threads())
    game24 = play_greedy(
        policy,
        lambda: Game24Env(split="train"),
        [{"problem": {"numbers": list(p)}} for p in val_puzzles[: config.eval_problems]],
    )
    arithmetic = play_greedy(
        policy,
        lambda: ArithmeticEnv(split="train"),
        [{"index": 10_000 + i} for i in range(config.eval_problems)],  # far from the seeds above in practice
    )
    model.train()
    return {
        "eval/game24_val_solved": sum(e["is_correct"] for e in game24) / max(1, len(game24)),
        "eval/arithmetic_val_solved": sum(e["is_correct"] for e in arithmetic) / max(1, len(arithmetic)),
    }


# ------------------------------------------------------------------ training


def train(config: SFTConfig) -> dict[str, float]:
    """Makes the data, trains (or resumes) the configured steps, saves the model; returns the final validation."""
    from transformers import LlamaForCausalLM

    threads = configure_threads(config.num_threads)
    checkpoints = Checkpoints(config.run_dir)
    checkpoint = None
    if config.resume and checkpoints.exists():  # checked first: a run that cannot resume fails before any work
        # What defines the model and its batch stream must match (total_steps may grow: training goes on).
        same = [k for k in asdict(config) if k.startswith(("game24_", "arithmetic_")) or k in RESUME_KEYS]
        checkpoint = checkpoints.read(config, same)

    # Data: deterministic given the seed (so a resumed run trains on the same sequences).
    rng = np.random.default_rng(config.seed)
    started = time.perf_counter()
    game24, val_puzzles = game24_traces(config, rng)
    arithmetic = arithmetic_traces(config, rng)
    texts = game24 + arithmetic
    tokenizer = build_char_tokenizer()
    ids, starts = encode(texts, [Game24Env.task] * len(game24) + [ArithmeticEnv.task] * len(arithmetic), tokenizer)
    tokens = sum(len(x) for x in ids)
    print(
        f"data: {len(game24)} Game24 traces, {len(arithmetic)} Arithmetic traces, {tokens:,} tokens "
        f"({time.perf_counter() - started:.1f} s); {threads} threads"
    )

    torch.manual_seed(config.seed)
    if config.init_model:
        model = load_model_and_tokenizer(model_path(config.init_model))[0]
        if model.config.vocab_size != len(tokenizer):
            raise ValueError(
                f"{config.init_model} has {model.config.vocab_size} token ids, not the character model's "
                f"{len(tokenizer)}: SFT trains the character model (agents.models), so --init-model must be one"
            )
    else:
        model = LlamaForCausalLM(
            tiny_llama_config(
                len(tokenizer), hidden_size=config.hidden_size, num_layers=config.num_layers, num_heads=config.num_heads
            )
        )
    print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")
    decay = [p for p in model.parameters() if p.dim() >= 2]  # matrices decay; norm gains do not
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        betas=(0.9, 0.95),
    )

    step = 0
    if checkpoint is not None:
        step, _ = checkpoints.restore(checkpoint, model=model, optimizer=optimizer)
        print(f"resumed from {checkpoints.path} at step {step}")
    writer = open_writer(config.run_dir, step, config)  # drops events a killed run logged after its checkpoint

    model.train()
    lengths = np.array([len(x) for x in ids])
    batches_per_epoch = len(epoch_batches(lengths, config.batch_size, (config.seed, 0)))
    batches, batches_epoch = [], -1
    bar = tqdm(total=config.total_steps, initial=step, disable=not config.progress, desc="sft")
    window_tokens, window_start = 0, time.perf_counter()
    metrics: dict[str, float] = {}
    while step < config.total_steps:
        # The batch order depends only on (seed, epoch): a resumed run sees the batches the killed one would have.
        epoch, offset = divmod(step, batches_per_epoch)
        if epoch != batches_epoch:
            batches, batches_epoch = epoch_batches(lengths, config.batch_size, (config.seed, epoch)), epoch
        batch = batch_of(ids, starts, batches[offset], tokenizer.pad_token_id)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)

        loss = model(**batch).loss  # mean cross-entropy over the step tokens of the batch
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        optimizer.step()
        step += 1
        window_tokens += int(batch["attention_mask"].sum())
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")

        if step % config.log_every == 0 or step == config.total_steps:
            elapsed = time.perf_counter() - window_start
            scalars = {
                "losses/train_loss": loss.item(),
                "losses/grad_norm": float(grad_norm),
                "charts/learning_rate": optimizer.param_groups[0]["lr"],
                "charts/tokens_per_second": window_tokens / elapsed,
            }
            log_scalars(writer, scalars, step)
            window_tokens, window_start = 0, time.perf_counter()
        if (config.eval_every and step % config.eval_every == 0) or step == config.total_steps:
            metrics = validate(model, tokenizer, val_puzzles, config)
            log_scalars(writer, metrics, step)
            bar.write(f"step {step}: " + ", ".join(f"{k.split('/')[1]} {v:.0%}" for k, v in metrics.items()))
        if step % config.checkpoint_every == 0 or step == config.total_steps:
            checkpoints.save(step, model=model, optimizer=optimizer, config=config)
    bar.close()
    writer.close()

    output_dir = Path(config.output_dir)
    model.save_pretrained(output_dir)  # config.json, generation_config.json, model.safetensors
    tokenizer.save_pretrained(output_dir)
    info = {"args": asdict(config), "steps": step, "final_validation": metrics, "train_tokens": tokens}
    init_info = Path(model_path(config.init_model)) / "training.json" if config.init_model else None
    if init_info is not None and init_info.exists():
        info["init_model_training"] = json.loads(init_info.read_text())
    write_atomic(output_dir / "training.json", json.dumps(info, indent=1) + "\n")
    print(f"saved {output_dir} ({time.perf_counter() - started:.0f} s in all)")
    return metrics


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Parses the flags (``--help`` lists them) and trains.

    Raises:
        ValueError: A bad flag or configuration, a checkpoint that cannot be resumed, or data that would leak a test
            problem into training (one line each, saying what to do).
    """
    config = parse(SFTConfig, argv, "reason-gym train sft", description=__doc__.split("\n\n")[0])
    return train(config)


if __name__ == "__main__":
    raise SystemExit(run_script(main, "sft"))
