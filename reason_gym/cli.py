"""The ``reason-gym`` command: ``list`` environments, ``play`` one in the terminal, ``serve`` one through OpenEnv
(:mod:`reason_gym.integrations.openenv`, the ``serve`` extra), and the commands other packages add (``bench`` and
``train`` come from ``agents``).

A package adds a command through the entry-point group ``reason_gym.commands``: the entry's name is the subcommand,
its object has a one-line ``help`` and is called with the subcommand's own flags (``--help`` included), returning
the exit status. reason_gym imports no such package itself, and ``list`` and ``play`` load none of them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, Protocol, TextIO

import gymnasium as gym

NAMESPACE = "reason_gym"
COMMAND_GROUP = "reason_gym.commands"
"""The entry-point group of the subcommands other packages add."""
BUILTIN = ("list", "play", "serve")
DESCRIPTION = "LLM reasoning tasks as Gymnasium environments: list them, play one, and the commands packages add."


class Command(Protocol):
    """What an entry point of :data:`COMMAND_GROUP` names."""

    help: str
    """one line for ``reason-gym --help``"""

    def __call__(self, argv: list[str]) -> int:
        """Parses the subcommand's flags (``--help`` included) and runs it; returns the exit status."""


def commands_found() -> dict[str, importlib.metadata.EntryPoint]:
    """The subcommands installed packages add, by name (not loaded)."""
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group=COMMAND_GROUP)}
    return {name: found[name] for name in sorted(found) if name not in BUILTIN}


def _help_of(entry_point: importlib.metadata.EntryPoint) -> str:
    try:
        return str(entry_point.load().help)
    except (ImportError, AttributeError) as error:  # a broken plugin must not take `reason-gym --help` down
        return f"(unavailable: {error})"


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
    try:
        env = gym.make(args.env_id, **kwargs)
    except TypeError as error:  # a required argument the command line cannot give (Remote-v0's base_url)
        raise ValueError(f"{args.env_id} cannot be played from the command line: {error}") from None
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


def parse_kwargs(value: str | Sequence[str] | dict[str, Any], name: str = "the value") -> dict[str, Any]:
    """Keyword arguments from a JSON object, from ``KEY=VALUE`` strings, or a dictionary as it is (copied).

    >>> parse_kwargs('{"max_steps": 4}')
    {'max_steps': 4}
    >>> parse_kwargs(["max_steps=4", "kind=expression", "reward_weights.step_check=1"])
    {'max_steps': 4, 'kind': 'expression', 'reward_weights': {'step_check': 1}}

    Raises:
        ValueError: Text that is neither, saying what was expected.
    """
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str):
        value = [value]
    if len(value) == 1 and (value[0].lstrip().startswith(("{", "[")) or "=" not in value[0]):
        text = value[0]
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{name} is not valid JSON ({error}): e.g. '{{\"max_steps\": 8}}', or KEY=VALUE pairs"
            ) from None
        if not isinstance(parsed, dict):
            raise ValueError(f"{name} must be a JSON object, got {text!r}")
        return parsed
    kwargs: dict[str, Any] = {}
    for pair in value:
        key, equals, text = pair.partition("=")
        if not equals or not key:
            raise ValueError(f"{name}: expected KEY=VALUE pairs or one JSON object, got {pair!r}")
        try:
            item = json.loads(text)
        except json.JSONDecodeError:
            item = text
        *parents, last = key.split(".")
        target = kwargs
        for parent in parents:
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                raise ValueError(f"{name}: {key!r} sets a key inside {parent!r}, which is not a dictionary")
        target[last] = item
    return kwargs


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    if args.env_id not in registered_ids():
        print(f"unknown environment {args.env_id!r}; `reason-gym list` shows them", file=sys.stderr)
        return 2
    try:
        from reason_gym.integrations.openenv import serve
    except ImportError as error:
        raise ImportError(f"serving needs OpenEnv ({error}): pip install -e .[serve]") from None
    serve(
        args.env_id,
        parse_kwargs(args.env_kwargs, "--env-kwargs"),
        host=args.host,
        port=args.port,
        token_file=args.token_file,
        out=out,
        max_sessions=args.max_sessions,
        session_timeout_s=args.session_timeout,
        max_body_bytes=args.max_body_bytes,
        max_action_chars=args.max_action_chars,
    )
    return 0


def _at_least(least: int, most: int | None = None) -> Callable[[str], int]:
    """An argparse type: an int in [least, most], else argparse's one-line error naming the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < least or (most is not None and value > most):
            span = f">= {least}" if most is None else f"in [{least}, {most}]"
            raise argparse.ArgumentTypeError(f"must be an integer {span}, got {value}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line (and exit status 2), not the usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(plugins: bool = True) -> argparse.ArgumentParser:
    """The parser of ``list`` and ``play``, listing the plugin commands too when ``plugins`` (which loads them)."""
    parser = _Parser(prog="reason-gym", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("list", help="registered environments, with a one-line description each")
    play = commands.add_parser("play", help="play an environment in the terminal")
    play.add_argument("env_id", help="e.g. reason_gym/Game24-v0")
    play.add_argument("--index", type=int, help="the i-th problem of the split (default: a random one)")
    play.add_argument("--split", help="train, test or all")
    play.add_argument("--seed", type=_at_least(0), help="seed of the random problem choice")
    serve = commands.add_parser("serve", help="serve an environment through OpenEnv (HTTP and WebSocket)")
    serve.add_argument("env_id", help="e.g. reason_gym/Game24-v0")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (not loopback: needs a bearer token)")
    serve.add_argument("--port", type=_at_least(0, 65535), default=8000, help="port (0: a free one, printed at start)")
    serve.add_argument("--max-sessions", type=int, default=64, help="concurrent sessions, one env instance each")
    serve.add_argument("--session-timeout", type=float, default=600.0, help="idle sessions are closed after this (s)")
    serve.add_argument("--env-kwargs", nargs="*", default=[], help="a JSON object or KEY=VALUE pairs (JSON values)")
    serve.add_argument("--token-file", help="the bearer token's file (default: $REASON_GYM_SERVE_TOKEN)")
    serve.add_argument("--max-body-bytes", type=int, default=1 << 20, help="cap on request bodies and messages")
    serve.add_argument("--max-action-chars", type=int, default=65_536, help="cap on an action's text")
    for name, command in (commands_found() if plugins else {}).items():
        # listed for --help only: main() hands a plugin command its own flags before this parser sees them
        commands.add_parser(name, help=_help_of(command), add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    found = commands_found() if argv and argv[0] not in BUILTIN else {}
    try:
        if argv and argv[0] in found:
            return found[argv[0]].load()(argv[1:])
        args = build_parser(plugins=not argv or argv[0] not in BUILTIN).parse_args(argv)
        if args.command == "list":
            return cmd_list(args, sys.stdout)
        if args.command == "serve":
            return cmd_serve(args, sys.stdout)
        return cmd_play(args, sys.stdout, sys.stdin)
    except (ValueError, OSError, ImportError, gym.error.Error) as error:  # bad flags, missing models, data or servers
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"reason-gym: {message}", file=sys.stderr)  # reach the user as one line, not a traceback
        return 2
    except KeyboardInterrupt:
        print("reason-gym: interrupted; the same command with the same flags resumes the run", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
