"""What the trainers share around their loops: a checkpoint that resumes a killed run exactly, and TensorBoard.

A run's checkpoint is one file, ``run_dir/checkpoint.pt`` (``torch.save`` of a dictionary):

- ``step`` (training steps done) and ``counters`` (the trainer's other counts, e.g. samples seen);
- ``model`` and ``optimizer`` state dicts, and ``scheduler`` where the trainer has one;
- ``rng``: every random generator: python's ``random``, numpy's global one, torch's CPU one (and every CUDA
  device's, where CUDA is available), and the trainer's own numpy ``Generator`` objects by name;
- ``config``: the run's configuration (``dataclasses.asdict``); a resumed run must match it on the fields that define
  what is trained (the trainer names them), and says which differ otherwise.

Saving is atomic: the dictionary is written to a hidden temporary file beside the checkpoint, flushed to disk, and
renamed over it, so a process killed at any moment leaves the previous checkpoint loadable. A checkpoint that cannot
be read anyway (a disk that filled up, a copy cut short) is refused with an error that names it and the way out.

Data-parallel runs (``world > 1``): rank 0 writes the checkpoint; every process also writes its own generators to
``run_dir/rng-RANK.pt``, which keeps the states of its last two saves, so that a kill between a process's file and
the checkpoint still resumes the checkpoint's step.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reason_gym.files import atomic_file

CHECKPOINT_NAME = "checkpoint.pt"
"""The checkpoint's file name in the run folder."""

FORMAT = 2
"""The checkpoint layout this module writes (1: the trainers' own layouts before it, still read)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: unreadable, incomplete, or of another run; the message says what to do."""


# ------------------------------------------------------------------------------------------- random generators


def random_state(generators: Mapping[str, np.random.Generator] | None = None) -> dict[str, Any]:
    """The state of every random generator of this process (and of the trainer's own ``generators``)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generators": {name: g.bit_generator.state for name, g in (generators or {}).items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict[str, Any], generators: Mapping[str, np.random.Generator] | None = None) -> None:
    """Puts every generator back in the state :func:`random_state` took."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, generator in (generators or {}).items():
        generator.bit_generator.state = state["generators"][name]


# ------------------------------------------------------------------------------------------------ checkpoints


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)`` in one step: a temporary file beside ``path``, synced to disk, renamed over it."""
    with atomic_file(path) as file:
        torch.save(obj, file)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a run killed while saving
        stale.unlink(missing_ok=True)


class Checkpoints:
    """The resumable checkpoint of the run in ``run_dir``, as one process of ``world`` sees it.

    Args:
        run_dir: The run folder (created by :meth:`save` where it is missing).
        rank: This process's data-parallel rank.
        world: The number of data-parallel processes.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, rank: int = 0, world: int = 1) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / CHECKPOINT_NAME
        self.rank, self.world = rank, world

    def exists(self) -> bool:
        return self.path.exists()

    def _rank_path(self) -> Path:
        return self.run_dir / f"rng-{self.rank}.pt"

    def _refuse(self, path: Path, why: str) -> CheckpointError:
        return CheckpointError(
            f"{path} cannot be resumed: {why}. Pass --no-resume to start over (it is then overwritten), or delete "
            f"{self.run_dir} first"
        )

    def save(
        self,
        step: int,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        config: Any,
        scheduler: Any = None,
        generators: Mapping[str, np.random.Generator] | None = None,
        counters: Mapping[str, int] | None = None,
    ) -> None:
        """Writes the checkpoint of ``step`` (every process calls it; rank 0 writes the checkpoint file)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        rng = random_state(generators)
        if self.world > 1:
            mine: dict[str, Any] = {"step": step, "rng": rng}
            with contextlib.suppress(CheckpointError):  # the previous save's: for a kill before the checkpoint's
                previous = self._read(self._rank_path())
                mine["previous"] = {"step": previous.get("step"), "rng": previous["rng"]}
            save_atomic(mine, self._rank_path())
            if torch.distributed.is_initialized():
                torch.distributed.barrier()
        if self.rank != 0:
            return
        state = {
            "format": FORMAT,
            "step": step,
            "counters": dict(counters or {}),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng,
            "config": asdict(config),
        }
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        save_atomic(state, self.path)

    def read(
        self,
        config: Any,
        same: Sequence[str],
        *,
        upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        map_location: Any = None,
    ) -> dict[str, Any]:
        """The checkpoint, checked: readable, complete, and trained with the same ``same`` fields as ``config``.

        Args:
            config: This run's configuration (a dataclass).
            same: The fields that must equal the checkpoint's (what defines the model and the data it sees).
            upgrade: Turns a saved configuration of an older layout into this one before the comparison.
            map_location: For ``torch.load`` (the device the tensors go to).

        Raises:
            CheckpointError: The checkpoint cannot be resumed (the message names it and what to do).
        """
        state = _upgraded(self._read(self.path, map_location))
        missing = [key for key in ("step", "model", "optimizer", "config") if key not in state]
        if missing:
            raise self._refuse(self.path, f"it has no {missing}")
        saved = upgrade(state["config"]) if upgrade else state["config"]
        current = asdict(config)
        changed = [key for key in same if saved.get(key) != current.get(key)]
        if changed:
            raise CheckpointError(f"{self.path} was trained with other {changed}: pass --no-resume to start over")
        if self.world > 1:
            mine = self._read(self._rank_path())
            if "step" not in mine:  # the first layout: no step, and the generators as GRPO kept them
                mine = {"step": state["step"], "rng": _upgraded({"rng": mine["rng"]})["rng"]}
            if mine["step"] != state["step"]:
                mine = mine.get("previous", {})
            if mine.get("step") != state["step"]:
                raise self._refuse(self._rank_path(), f"it holds no random state of step {state['step']}")
            state["rng"] = mine["rng"]
        return state

    def _read(self, path: Path, map_location: Any = None) -> dict[str, Any]:
        try:
            state = torch.load(path, weights_only=False, map_location=map_location)
        except FileNotFoundError:
            raise self._refuse(path, "the file is missing") from None
        except Exception as error:  # a truncated zip, a pickle cut short, ...: torch raises several kinds
            raise self._refuse(path, f"it is not a complete checkpoint ({type(error).__name__}: {error})") from None
        if not isinstance(state, dict):
            raise self._refuse(path, f"it holds a {type(state).__name__}, not a checkpoint")
        return state

    def restore(
        self,
        state: dict[str, Any],
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any = None,
        generators: Mapping[str, np.random.Generator] | None = None,
    ) -> tuple[int, dict[str, int]]:
        """Loads a checkpoint :meth:`read` returned into the model, optimizer, scheduler and generators; returns
        its step and counters."""
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        if state.get("rng") is not None:  # an SFT checkpoint of the first layout had none (nor needed any)
            set_random_state(state["rng"], generators)
        return state["step"], dict(state["counters"])


def _upgraded(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of the first layout (GRPO's ``samples_seen`` and numpy generator under ``rng``, SFT's ``args``)
    in this module's layout."""
    if state.get("format", 1) >= FORMAT:
        return state
    state = dict(state)
    if "args" in state:
        state["config"] = state.pop("args")
    state["counters"] = {"samples_seen": state.pop("samples_seen")} if "samples_seen" in state else {}
    rng = state.get("rng")
    if rng is not None:
        state["rng"] = rng = dict(rng)
        rng["generators"] = {"rng": rng.pop("numpy")}  # GRPO's one numpy generator, its trainer's ``rng``
        rng["numpy"] = np.random.get_state()  # not saved then: left as it is
    return state


# ------------------------------------------------------------------------------------------------ TensorBoard


def open_writer(run_dir: str | os.PathLike[str], step: int, config: Any) -> Any:
    """The run's TensorBoard writer, (re)starting at ``step``: the events a killed run logged after its last
    checkpoint are dropped, and the configuration is logged as text (at every start, so a resume shows its own)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(run_dir, purge_step=step)
    writer.add_text("config", json.dumps(asdict(config), indent=1), step)
    return writer


def log_scalars(writer: Any, metrics: Mapping[str, float], step: int) -> None:
    """Every metric as a scalar of ``step`` (nothing without a writer: processes other than rank 0)."""
    if writer is not None:
        for name, value in metrics.items():
            writer.add_scalar(name, value, step)
        writer.flush()
