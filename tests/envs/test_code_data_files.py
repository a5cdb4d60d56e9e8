"""HumanEval and MBPP data files: a corrupt file, a bad line or a duplicate id is a ValueError naming the path and
the line or the id; a UTF-8 byte-order mark is read past. Tables of file contents and expected outcomes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from reason_gym.envs.humaneval import HumanEvalEnv, load_humaneval
from reason_gym.envs.mbpp import MBPP_FORMAT, MBPPEnv, load_mbpp_file

HE = {
    "task_id": "HumanEval/0",
    "prompt": 'def add(a, b):\n    """Add.\n    >>> add(2, 3)\n    5\n    """\n',
    "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
}
HE1 = {**HE, "task_id": "HumanEval/1"}
MB = {"task_id": 1, "text": "Add two numbers.", "test_list": ["assert add(2, 3) == 5"]}


def line(record: object) -> str:
    return json.dumps(record) + "\n"


def gz(text: str) -> bytes:
    return gzip.compress(text.encode())


# (name, file name, bytes, the error's pattern or None for a file that loads, the ids it loads)
HUMANEVAL_FILES = [
    ("good", "he.jsonl.gz", gz(line(HE) + line(HE1)), None),
    ("plain jsonl", "he.jsonl", (line(HE) + "\n" + line(HE1)).encode(), None),
    ("byte-order mark", "he.jsonl.gz", gz("\ufeff" + line(HE) + line(HE1)), None),
    ("truncated gzip", "he.jsonl.gz", gz(line(HE) + line(HE1))[:-12], r"he\.jsonl\.gz: not a readable gzipped"),
    ("plain file named .gz", "he.jsonl.gz", (line(HE) + line(HE1)).encode(), r"not a readable gzipped.*BadGzipFile"),
    ("not UTF-8", "he.jsonl", b"\xff\xfe" + line(HE).encode(), r"he\.jsonl: not a readable UTF-8"),
    ("bad JSON line", "he.jsonl.gz", gz(line(HE) + "{oops\n"), r"he\.jsonl\.gz, line 2: not JSON"),
    ("a number line", "he.jsonl.gz", gz(line(HE) + "5\n"), r"line 2: a record must be a JSON object, got int"),
    ("missing field", "he.jsonl", line({"task_id": "X"}).encode(), r"record 1: not HumanEval data"),
    ("empty", "he.jsonl", b"\n\n", r"holds no HumanEval records"),
    ("duplicate id", "he.jsonl.gz", gz(line(HE) + line(HE1) + line(HE)), r"task_id 'HumanEval/0' appears twice"),
]

MBPP_FILES = [
    ("good", "mbpp.jsonl", (line({**MB, "task_id": 2}) + line(MB)).encode(), None),
    ("byte-order mark", "mbpp.jsonl", ("\ufeff" + line(MB)).encode(), None),
    ("json array with mark", "mbpp.json", ("\ufeff" + json.dumps([MB])).encode(), None),
    ("mixed int and str ids", "mbpp.jsonl", (line({**MB, "task_id": "b"}) + line(MB)).encode(), None),
    ("no task_id", "mbpp.jsonl", line({"text": "x", "test_list": []}).encode(), r"record 1: .*needs a task_id.*none"),
    ("bool task_id", "mbpp.jsonl", line({**MB, "task_id": True}).encode(), r"record 1: .*needs a task_id.*True"),
    ("empty task_id", "mbpp.jsonl", line({**MB, "task_id": ""}).encode(), r"needs a task_id.*''"),
    ("a number line", "mbpp.jsonl", (line(MB) + "5\n").encode(), r"mbpp\.jsonl, line 2: a record must be a JSON"),
    ("bad JSON line", "mbpp.jsonl", (line(MB) + "{\n").encode(), r"mbpp\.jsonl, line 2: not JSON"),
    ("no test_list", "mbpp.jsonl", line({"task_id": 1}).encode(), r"record 1: not MBPP data"),
    ("json not an array", "mbpp.json", json.dumps(MB).encode(), r"holds one array of records, got dict"),
    ("json array of numbers", "mbpp.json", b"[5]", r"mbpp\.json, record 1: a record must be a JSON object"),
    ("bad json", "mbpp.json", b"[\n{", r"mbpp\.json, line 2: not JSON"),
    ("duplicate id", "mbpp.jsonl", (line(MB) + line(MB)).encode(), r"task_id '1' appears twice"),
    ("int and str of one id", "mbpp.jsonl", (line(MB) + line({**MB, "task_id": "1"})).encode(), r"'1' appears twice"),
    ("id and prefixed id", "mbpp.jsonl", (line(MB) + line({**MB, "task_id": "MBPP/1"})).encode(), r"'1' appears twice"),
]


def write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(("case", "name", "content", "error"), HUMANEVAL_FILES, ids=[c[0] for c in HUMANEVAL_FILES])
def test_humaneval_files(tmp_path: Path, case: str, name: str, content: bytes, error: str | None) -> None:
    path = write(tmp_path, name, content)
    if error is None:
        assert [r["task_id"] for r in load_humaneval(path)] == ["HumanEval/0", "HumanEval/1"]
        return
    with pytest.raises(ValueError, match=error) as raised:
        HumanEvalEnv(data_path=path).split_indices()
    assert path in str(raised.value)


@pytest.mark.parametrize(("case", "name", "content", "error"), MBPP_FILES, ids=[c[0] for c in MBPP_FILES])
def test_mbpp_files(tmp_path: Path, case: str, name: str, content: bytes, error: str | None) -> None:
    path = write(tmp_path, name, content)
    if error is None:
        ids = [r["task_id"] for r in load_mbpp_file(path)]
        assert ids == sorted(ids, key=lambda i: (isinstance(i, str), i))  # ints by value, then strings
        return
    with pytest.raises(ValueError, match=error) as raised:
        MBPPEnv(data_path=path, split="all").split_indices()
    assert path in str(raised.value)


def test_mbpp_file_with_mixed_ids_plays_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "mbpp.jsonl", (line({**MB, "task_id": "b"}) + line({**MB, "task_id": 12})).encode())
    env = MBPPEnv(data_path=path, split="all")
    ids = [env.reset(options={"index": i})[1]["problem_id"] for i in range(len(env.split_indices()))]
    assert ids == ["MBPP/12", "MBPP/b"] and list(env.split_indices("test")) == [0]
    assert "required in a data file" in MBPP_FORMAT
