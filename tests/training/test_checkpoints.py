"""The trainers' shared checkpoints: every generator comes back, saves are atomic, a checkpoint that cannot be resumed
says which file and what to do, data-parallel generator files survive a kill between saves, older layouts load."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from agents.training import checkpoints  # noqa: E402
from agents.training.checkpoints import CheckpointError, Checkpoints  # noqa: E402


@dataclass
class Config:
    seed: int = 0
    width: int = 4
    learning_rate: float = 0.1


def make(width: int = 4) -> tuple[torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    model = torch.nn.Linear(width, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    return model, optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)


def train_step(model, optimizer, scheduler) -> None:
    optimizer.zero_grad()
    model(torch.randn(3, 4)).pow(2).sum().backward()
    optimizer.step()
    scheduler.step()


def draws(generator: np.random.Generator) -> tuple:
    """One draw from every generator a trainer uses."""
    return random.random(), float(np.random.rand()), float(torch.rand(())), float(generator.random())


def test_a_restored_checkpoint_continues_every_generator_and_the_optimizer(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, optimizer, scheduler = make()
    generator = np.random.default_rng(1)
    train_step(model, optimizer, scheduler)
    saved = Checkpoints(tmp_path)
    saved.save(1, model=model, optimizer=optimizer, scheduler=scheduler, config=Config(), generators={"g": generator},
               counters={"samples_seen": 7})  # fmt: skip
    expected = draws(generator)
    train_step(model, optimizer, scheduler)
    expected_weights = model.weight.detach().clone()

    random.seed(5), np.random.seed(5), torch.manual_seed(5)  # a new process: other states everywhere
    other, other_optimizer, other_scheduler = make()
    other_generator = np.random.default_rng(99)
    loaded = Checkpoints(tmp_path)
    state = loaded.read(Config(), ["seed", "width"])
    step, counters = loaded.restore(state, model=other, optimizer=other_optimizer, scheduler=other_scheduler,
                                    generators={"g": other_generator})  # fmt: skip
    assert (step, counters) == (1, {"samples_seen": 7})
    assert draws(other_generator) == expected
    train_step(other, other_optimizer, other_scheduler)
    assert torch.equal(other.weight, expected_weights)  # AdamW's moments and the schedule came back too
    assert other_scheduler.get_last_lr() == scheduler.get_last_lr()


def test_a_checkpoint_of_other_settings_names_them_and_the_way_out(tmp_path: Path) -> None:
    model, optimizer, _ = make()
    Checkpoints(tmp_path).save(1, model=model, optimizer=optimizer, config=Config(width=4))
    with pytest.raises(CheckpointError, match=r"other \['width'\].*--no-resume"):
        Checkpoints(tmp_path).read(Config(width=8, learning_rate=0.5), ["seed", "width"])
    assert Checkpoints(tmp_path).read(Config(learning_rate=0.5), ["seed", "width"])["step"] == 1  # not compared


def test_a_kill_while_saving_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    model, optimizer, _ = make()
    run = Checkpoints(tmp_path)
    run.save(1, model=model, optimizer=optimizer, config=Config())
    real_save = torch.save

    def killed(obj, file, *args, **kwargs):  # half the bytes reach the disk, then the process dies
        real_save({"step": 2, "padding": torch.zeros(1000)}, file)
        file.truncate(file.tell() // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints.torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        run.save(2, model=model, optimizer=optimizer, config=Config())
    monkeypatch.setattr(checkpoints.torch, "save", real_save)
    assert run.read(Config(), ["seed"])["step"] == 1
    (tmp_path / f".{run.path.name}.0123456789ab.tmp").write_bytes(b"left by a SIGKILL")  # the cleanup's finally
    run.save(3, model=model, optimizer=optimizer, config=Config())  # never ran: the next save removes it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "not a dictionary", "missing keys"])
def test_a_checkpoint_that_cannot_be_read_names_the_file_and_the_way_out(tmp_path: Path, damage: str) -> None:
    model, optimizer, _ = make()
    run = Checkpoints(tmp_path)
    run.save(1, model=model, optimizer=optimizer, config=Config())
    whole = run.path.read_bytes()
    if damage == "garbage":
        run.path.write_bytes(b"\x00not a checkpoint" * 10)
    elif damage == "truncated":
        run.path.write_bytes(whole[: len(whole) // 2])
    elif damage == "empty":
        run.path.write_bytes(b"")
    elif damage == "not a dictionary":
        torch.save([1, 2], run.path)
    else:
        torch.save({"step": 1, "config": {}}, run.path)
    with pytest.raises(CheckpointError) as error:
        run.read(Config(), ["seed"])
    message = str(error.value)
    assert str(run.path) in message and "cannot be resumed" in message
    assert "--no-resume" in message and f"delete {tmp_path}" in message


def test_data_parallel_generators_survive_a_kill_between_a_process_file_and_the_checkpoint(tmp_path: Path) -> None:
    model, optimizer, _ = make()
    first, second = Checkpoints(tmp_path, rank=0, world=2), Checkpoints(tmp_path, rank=1, world=2)
    generator = np.random.default_rng(3)
    second.save(2, model=model, optimizer=optimizer, config=Config(), generators={"g": generator})
    at_two = generator.random()
    first.save(2, model=model, optimizer=optimizer, config=Config())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "rng-0.pt", "rng-1.pt"]
    second.save(4, model=model, optimizer=optimizer, config=Config(), generators={"g": generator})  # rank 0 killed

    state = second.read(Config(), ["seed"])  # the checkpoint is step 2's: so are rank 1's generators
    other = np.random.default_rng(0)
    assert second.restore(state, model=model, optimizer=optimizer, generators={"g": other})[0] == 2
    assert other.random() == at_two
    second.save(6, model=model, optimizer=optimizer, config=Config())  # steps 4 and 6: step 2's is gone
    with pytest.raises(CheckpointError, match=r"rng-1\.pt cannot be resumed: it holds no random state of step 2"):
        second.read(Config(), ["seed"])


def test_checkpoints_of_the_first_layout_still_resume(tmp_path: Path) -> None:
    model, optimizer, _ = make()
    generator = np.random.default_rng(2)
    grpo_state = {  # GRPO's own layout, before this module
        "rng": {"numpy": generator.bit_generator.state, "torch": torch.get_rng_state(), "python": random.getstate()},
        "step": 3,
        "samples_seen": 48,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": {"seed": 0, "width": 4},
    }
    expected = generator.random()
    torch.save(grpo_state, tmp_path / "checkpoint.pt")
    run = Checkpoints(tmp_path)
    other = np.random.default_rng(0)
    assert run.restore(run.read(Config(), ["seed", "width"]), model=model, optimizer=optimizer,
                       generators={"rng": other}) == (3, {"samples_seen": 48})  # fmt: skip
    assert other.random() == expected
    sft_state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 5, "args": {"seed": 0}}
    torch.save(sft_state, tmp_path / "checkpoint.pt")  # SFT's: ``args``, and no generators
    assert run.restore(run.read(Config(), ["seed"]), model=model, optimizer=optimizer) == (5, {})
