"""The ``reason-gym`` subcommands that need agents (``bench``, ``train``), and how every agents command line is read.

``reason_gym`` imports nothing from ``agents``: it finds these commands through the ``reason_gym.commands``
entry-point group (``pyproject.toml``), where each entry is an object with a one-line ``help`` and a
``__call__(argv) -> int``. This module is cheap to import (it is loaded for ``reason-gym --help``); the work each
command does is imported when it runs.

Every configuration is one dataclass with a docstring per field, read by :func:`parse` (``tyro``): the field
``group_size`` is the flag ``--group-size``, its docstring the help text, a ``bool`` field ``progress = True`` the
flags ``--progress`` / ``--no-progress``. Two field types read in a form of their own (:data:`REGISTRY`):

- ``tuple[int, ...]`` and ``tuple[str, ...]``: values separated by commas or spaces (``--budgets 4,16,64`` and
  ``--budgets 4 16 64`` are the same);
- ``dict[str, Any]`` (keyword arguments, e.g. ``env_kwargs``): one JSON object
  (``--env-kwargs '{"reward_weights": {"step_solvable": 0.2}}'``) or ``KEY=VALUE`` pairs whose values are read as
  JSON where they parse and as text otherwise, a dotted key making a nested dictionary
  (``--env-kwargs max_steps=4 reward_weights.step_solvable=0.2``).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import tyro
from tyro.constructors import ConstructorRegistry, PrimitiveConstructorSpec, PrimitiveTypeInfo

from reason_gym.cli import parse_kwargs  # the one reader of keyword arguments on a command line

T = TypeVar("T")

REGISTRY = ConstructorRegistry()
"""How :func:`parse` reads the field types that tyro would otherwise read another way (see the module docstring)."""


def _split_items(tokens: Sequence[str], item: type) -> tuple[Any, ...]:
    values = []
    for token in tokens:
        for part in token.split(","):
            if part.strip():
                try:
                    values.append(item(part.strip()))
                except ValueError:
                    raise ValueError(f"expected comma-separated {item.__name__}s, got {part.strip()!r}") from None
    return tuple(values)


@REGISTRY.primitive_rule
def _comma_lists(info: PrimitiveTypeInfo) -> PrimitiveConstructorSpec | None:
    arguments = getattr(info.type, "__args__", ())
    if info.type_origin is not tuple or len(arguments) != 2 or arguments[1] is not Ellipsis:
        return None
    item = arguments[0]
    if item not in (int, str):
        return None
    return PrimitiveConstructorSpec(
        nargs="*",
        metavar=f"{item.__name__.upper()},...",
        instance_from_str=lambda tokens: _split_items(tokens, item),
        is_instance=lambda value: isinstance(value, tuple),
        str_from_instance=lambda value: [",".join(map(str, value))],
    )


@REGISTRY.primitive_rule
def _keyword_arguments(info: PrimitiveTypeInfo) -> PrimitiveConstructorSpec | None:
    if info.type_origin is not dict or getattr(info.type, "__args__", ()) != (str, Any):
        return None
    return PrimitiveConstructorSpec(
        nargs="*",
        metavar="JSON|KEY=VALUE",
        instance_from_str=lambda tokens: parse_kwargs(tokens),
        is_instance=lambda value: isinstance(value, dict),
        str_from_instance=lambda value: [json.dumps(value)],
    )


def parse(config_type: Callable[..., T], argv: Sequence[str] | None, prog: str, description: str | None = None) -> T:
    """The configuration ``argv`` describes (``--help`` prints the help and exits 0).

    A command line that cannot be read, or a configuration that ``__post_init__`` refuses, raises a
    :class:`ValueError` whose message is tyro's error on one line, so a command reports it as one line too.
    """
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return tyro.cli(
                config_type,
                args=list(sys.argv[1:] if argv is None else argv),
                prog=prog,
                description=description,
                registry=REGISTRY,
            )
    except SystemExit as exit:
        if not exit.code:  # --help
            sys.stderr.write(errors.getvalue())
            raise
        raise ValueError(_one_line(errors.getvalue()) or f"{prog}: bad command line") from None


def _one_line(box: str) -> str:
    """tyro's error (a box, or plain text where stdout is not UTF-8), without its title, rules and help excerpt,
    on one line."""
    lines = []
    for line in box.splitlines():
        text = line.strip().strip("│╭╮╰╯").strip()
        if text.startswith(("Argument helptext", "For full helptext")):
            break
        if text and set(text) - set("─- "):
            lines.append(text)
    lines = lines[1:]  # the title: "Value error", "Unrecognized options", ...
    message = " ".join(" ".join(lines).split()).removeprefix("Error parsing ")
    message = re.sub(r"^[A-Z]\w*: ", "", message)  # "BenchConfig: " before what __post_init__ raised
    # a value no member of a union reads: "--limit: no type matching {None}|INT could be instantiated from ['two']..."
    return re.sub(
        r"^(--\S+): no type matching (\S+) could be instantiated from \[(.*?)\].*",
        r"\1: invalid value \3 (expected \2)",
        message,
    )


def run_script(main: Callable[[list[str] | None], Any], prog: str) -> int:
    """Runs a script's ``main`` on the command line; returns its exit status (``main``'s, where it returns an int).

    A bad flag or configuration (a :class:`ValueError`) is one line on stderr and exit status 2, not a traceback.
    """
    try:
        status = main(None)
    except ValueError as error:
        print(f"{prog}: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0


# ------------------------------------------------------------------------------------------------ the commands


@dataclass(frozen=True)
class Command:
    """A ``reason-gym`` subcommand: what it does in a line, and what runs it (imported when it runs)."""

    help: str
    """one line for ``reason-gym --help``"""
    run: Callable[[list[str]], int]
    """parses its own flags (``--help`` included) and returns an exit status"""

    def __call__(self, argv: list[str]) -> int:
        return self.run(argv)


def _bench(argv: list[str]) -> int:
    from agents.bench import BenchConfig, format_table, run_bench

    config = parse(BenchConfig, argv, "reason-gym bench")
    rows = run_bench(config)
    print(format_table(rows))
    print(f"wrote {config.out}/episodes.jsonl, summary.json and accuracy_vs_budget.png")
    return 0


TRAINERS = {
    "grpo": ("agents.training.grpo", "GRPO through the environments, outcome or process advantages"),
    "sft": ("agents.training.sft", "SFT of the embedded character model on Game24 and Arithmetic solver traces"),
    "prm": ("agents.training.prm", "a process reward model on step data: classification on step labels, or TD"),
}
"""``reason-gym train ALGORITHM``: the module whose ``main(argv)`` trains, and a line about it."""


def _train(argv: list[str]) -> int:
    names = ", ".join(TRAINERS)
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"usage: reason-gym train {{{names}}} [--help] [FLAGS]", "", "trainers:"]
        lines += [f"  {name:<8} {about}" for name, (_, about) in TRAINERS.items()]
        print("\n".join(lines), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] not in TRAINERS:
        raise ValueError(f"unknown trainer {argv[0]!r}; choose from {names} (`reason-gym train --help`)")
    import importlib

    importlib.import_module(TRAINERS[argv[0]][0]).main(argv[1:])  # torch and transformers load here
    return 0


bench = Command(
    "benchmark planners on a task: accuracy against compute (default: the tiny model on Game24 test)", _bench
)
train = Command("train a policy or a PRM: `reason-gym train grpo|sft|prm --help` lists the settings", _train)
