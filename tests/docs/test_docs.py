"""The docs stay true: every relative link and repository path they name exists, and their marked examples run.

Runnable examples: a ```python block in ``docs/*.md`` preceded by a ``<!-- test -->`` line runs in a subprocess, and
what it prints must equal its ``# `` comment lines, in order (the README's own example is run by test_readme.py).
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# Backticked strings that name a file or folder of this repository start with one of its top-level folders.
TOP_LEVEL = ("reason_gym/", "agents/", "scripts/", "benchmarks/", "docs/", "tests/", ".ci/")
ENV_ID = re.compile(r"reason_gym/\w+-v\d+$")  # registered environment ids, not paths
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
EXAMPLE = re.compile(r"^<!-- test -->\n```python\n(.*?)^```", re.S | re.M)


def broken_references(page: Path) -> list[str]:
    """The relative links and backticked repository paths of ``page`` that do not exist."""
    text = page.read_text()
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):  # URLs, mailto:, same-page anchors
            continue
        path = target.split("#")[0]
        if not (page.parent / path).exists():
            broken.append(f"link {target}")
    for code in CODE.findall(FENCE.sub("", text)):
        candidate = code.split()[0] if code.split() else ""
        if not candidate.startswith(TOP_LEVEL) or any(c in candidate for c in "*{}<>$") or ENV_ID.match(candidate):
            continue
        path = candidate.split("::")[0]
        path = re.sub(r":\d+(-\d+)?$", "", path).rstrip(".,;:")
        if not (ROOT / path).exists():
            broken.append(f"path {code}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_and_repository_path_exists(page):
    assert broken_references(page) == []


def test_the_checker_finds_a_broken_link_and_a_missing_path(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "[gone](missing.md#part) [web](https://example.org/x) [here](#top)\n"
        "`reason_gym/sandbox/inside.py` `reason_gym/Game24-v0` `reason_gym/core.py:12`\n"
        "`tests/docs/test_docs.py::test_x` `shared/data`\n"
        "```text\nscripts/not_checked_in_code_blocks.py\n```\n"
    )
    assert broken_references(page) == ["link missing.md#part", "path reason_gym/sandbox/inside.py"]


EXAMPLES = [
    pytest.param(code, id=f"{page.relative_to(ROOT)}-{i}")
    for page in PAGES
    if page.parent.name == "docs"
    for i, code in enumerate(EXAMPLE.findall(page.read_text()))
]


@pytest.mark.parametrize("code", EXAMPLES)
def test_the_docs_examples_print_what_their_comments_say(code):
    expected = [line.removeprefix("# ") for line in code.splitlines() if line.startswith("# ")]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
