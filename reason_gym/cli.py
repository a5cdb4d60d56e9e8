"""The ``reason-gym`` command: ``list`` environments, ``play`` one in the terminal, ``bench`` agents on a task,
``train grpo`` a policy."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

import gymnasium as gym

NAMESPACE = "reason_gym"


def registered_ids() -> list[str]:
    import reason_gym  # noqa: F401  (registers the environments)

    return sorted(env_id for env_id, spec in gym.registry.items() if spec.namespace == NAMESPACE)


def describe(env_id: str) -> str:
    """The first line of the environment class's docstring."""
    entry_point = gym.spec(env_id).entry_point
    if callable(entry_point):
        cls = entry_point
    else:
        module, name = str(entry_point).split(":")
        cls = getattr(importlib.import_module(module), name)
    return (cls.__doc__ or "").strip().split("\n")[0]


def cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    ids = registered_ids()
    width = max(len(env_id) for env_id in ids)
    for env_id in ids:
        print(f"{env_id:<{width}}  {describe(env_id)}", file=out)
    return 0


def cmd_play(args: argparse.Namespace, out: TextIO, lines: TextIO) -> int:
    if args.env_id not in registered_ids():
        print(f"unknown environment {args.env_id!r}; `reason-gym list` shows them", file=sys.stderr)
        return 2
    kwargs = {"split": args.split} if args.split else {}
    env = gym.make(args.env_id, **kwargs)
    options = {"index": args.index} if args.index is not None else None
    obs, info = env.reset(seed=args.seed, options=options)
    print(f"[{info['problem_id']}]  Type a step, or 'Answer: ...' to finish; an empty line or Ctrl-D quits.", file=out)
    print(obs, file=out)
    while True:
        print("> ", end="", file=out, flush=True)
        action = lines.readline()
        if not action.strip():
            print("\nbye", file=out)
            return 0
        obs, reward, terminated, truncated, info = env.step(action.rstrip("\n"))
        parts = ", ".join(f"{name}={value:g}" for name, value in info["reward_components"].items())
        print(f"reward {reward:g} ({parts})" + (f"  rejected: {info['error']}" if "error" in info else ""), file=out)
        if terminated or truncated:
            verdict = "correct" if info.get("is_correct") else "wrong" if terminated else "out of steps"
            print(f"{obs}\n-- episode over: {verdict}", file=out)
            return 0
        if "error" not in info:
            print(obs.split("\n")[-1], file=out)


def cmd_bench(args: argparse.Namespace, out: TextIO) -> int:
    from agents.bench import BenchConfig, format_table, run_bench  # the agents package is only needed here

    config = BenchConfig(
        env=args.env,
        split=args.split,
        planners=_names(args.planners),
        budgets=[_positive_int(value, "--budgets") for value in _names(args.budgets)],
        limit=args.limit,
        policy=args.policy,
        prm=args.prm,
        seed=args.seed,
        out=args.out,
        depth_hint=args.depth_hint,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    rows = run_bench(config)
    print(format_table(rows), file=out)
    print(f"wrote {args.out}/episodes.jsonl, summary.json and accuracy_vs_budget.png", file=out)
    return 0


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _positive_int(text: str, flag: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{flag} takes comma-separated positive integers, got {text!r}") from None
    if value < 1:
        raise ValueError(f"{flag} takes comma-separated positive integers, got {text!r}")
    return value


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line (and exit status 2), not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="reason-gym", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("list", help="registered environments, with a one-line description each")
    play = commands.add_parser("play", help="play an environment in the terminal")
    play.add_argument("env_id", help="e.g. reason_gym/Game24-v0")
    play.add_argument("--index", type=int, help="the i-th problem of the split (default: a random one)")
    play.add_argument("--split", help="train, test or all")
    play.add_argument("--seed", type=int, help="seed of the random problem choice")
    bench = commands.add_parser(
        "bench",
        help="benchmark planners on a task: accuracy against compute (default: the tiny model on Game24 test)",
        description="Planners x budgets x problems, resumable: rerun the same command to finish a killed run.",
    )
    bench.add_argument("--env", default="reason_gym/Game24-v0", help="environment id (default: %(default)s)")
    bench.add_argument("--split", default="test", help="split whose first --limit problems are played (%(default)s)")
    bench.add_argument(
        "--planners", default="greedy,bon,beam,mcts,tot", help="comma-separated, from: %(default)s (default: all)"
    )
    bench.add_argument("--budgets", default="4,16,64", help="samples per problem, comma-separated (%(default)s)")
    bench.add_argument("--limit", type=int, default=10, help="the first N problems of the split (%(default)s)")
    bench.add_argument(
        "--policy",
        default="tiny",
        help="tiny, hf:PATH, vllm:PATH, openai:URL[#MODEL], or random[:LATENCY_S] (no model) (default: %(default)s)",
    )
    bench.add_argument(
        "--prm", help="rule (exact rule-based step scores) or hf:PATH (default: none: votes, log-probs, rollouts)"
    )
    bench.add_argument("--seed", type=int, default=0, help="seeds every episode (%(default)s)")
    bench.add_argument("--out", default="runs/bench", help="folder of the run (%(default)s)")
    bench.add_argument("--depth-hint", type=int, default=4, help="expected steps per solution, for sizing (4)")
    bench.add_argument("--overwrite", action="store_true", help="discard the run in --out and start afresh")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    train = commands.add_parser(
        "train",
        help="train a policy through the environments: `reason-gym train grpo --help` lists the settings",
        add_help=False,  # the trainer parses its own flags (--help included)
    )
    train.add_argument("algorithm", choices=["grpo"], help="the trainer")
    train.add_argument("flags", nargs=argparse.REMAINDER, help="the trainer's flags")
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from agents.training.grpo import main as train_grpo  # torch and transformers are only needed here

    train_grpo(args.flags)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list(args, sys.stdout)
        if args.command == "play":
            return cmd_play(args, sys.stdout, sys.stdin)
        if args.command == "train":
            return cmd_train(args)
        return cmd_bench(args, sys.stdout)
    except (ValueError, OSError, ImportError) as error:  # bad flags, missing models, data or servers
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"reason-gym: {message}", file=sys.stderr)  # reach the user as one line, not a traceback
        return 2
    except KeyboardInterrupt:
        print("reason-gym: interrupted; the same command with the same flags resumes the run", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
