"""Data files are parsed once per process and version: a file edited in place is read again."""

from __future__ import annotations

import json
import os

import gymnasium as gym

import reason_gym  # noqa: F401  (registers the environments)


def rewrite(path, text: str) -> None:
    before = os.stat(path).st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a new version even on a coarse clock


def test_an_edited_gsm8k_file_is_read_again(tmp_path):
    path = tmp_path / "test.jsonl"
    rows = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(5)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert gym.make("reason_gym/GSM8K-v0", data_path=str(path)).unwrapped.split_indices() == range(5)
    rewrite(path, json.dumps({"question": "What is 7 + 1?", "answer": "#### 8"}) + "\n")
    env = gym.make("reason_gym/GSM8K-v0", data_path=str(path)).unwrapped
    observation, _ = env.reset(options={"index": 0})
    assert len(env.split_indices()) == 1 and "7 + 1" in observation


def test_an_edited_game24_file_is_read_again(tmp_path):
    path = tmp_path / "24.csv"
    header = "Rank,Puzzles,AMT (s),Solved rate,1-sigma Mean (s),1-sigma STD (s)\n"
    path.write_text(header + "1,1 1 4 6,4.4,99.20%,4.67,1.48\n")
    first, _ = gym.make("reason_gym/Game24-v0", data_path=str(path), split="all").unwrapped.reset(options={"index": 0})
    rewrite(path, header + "1,4 9 10 13,4.4,99.20%,4.67,1.48\n")
    again, _ = gym.make("reason_gym/Game24-v0", data_path=str(path), split="all").unwrapped.reset(options={"index": 0})
    assert "1 1 4 6" in first and "4 9 10 13" in again


HEADER = "Rank,Puzzles,AMT (s),Solved rate,1-sigma Mean (s),1-sigma STD (s)\n"


def test_a_game24_file_with_a_bad_or_repeated_row_fails_when_it_loads_naming_the_row(tmp_path):
    import pytest

    good = "1,1 1 4 6,4.4,99.20%,4.67,1.48\n"
    for rows, message in [
        (good + "2,1 1 x 6,4.4,99.20%,4.67,1.48\n", "record 1"),
        (good + "2,,4.4,99.20%,4.67,1.48\n", "record 1"),
        (good + "2,6 4 1 1,4.4,99.20%,4.67,1.48\n", "rows 0 and 1 hold the same puzzle"),
    ]:
        path = tmp_path / f"{abs(hash(rows))}.csv"
        path.write_text(HEADER + rows)
        with pytest.raises(ValueError, match=message):
            gym.make("reason_gym/Game24-v0", data_path=str(path), split="all").unwrapped.reset(seed=0)


def test_a_game24_file_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("\ufeff" + HEADER + "1,1 1 4 6,4.4,99.20%,4.67,1.48\n", encoding="utf-8")
    observation, _ = gym.make("reason_gym/Game24-v0", data_path=str(path), split="all").unwrapped.reset(seed=0)
    assert "1 1 4 6" in observation


def test_a_gsm8k_file_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_text("\ufeff" + json.dumps({"question": "What is 1 + 1?", "answer": "#### 2"}) + "\n", encoding="utf-8")
    observation, _ = gym.make("reason_gym/GSM8K-v0", data_path=str(path)).unwrapped.reset(options={"index": 0})
    assert "1 + 1" in observation
