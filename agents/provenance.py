"""Where a run's outputs came from: recorded beside them (``meta.json``, ``training.json``)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def code_commit() -> str | None:
    """The git commit of the code that runs, or None outside a git checkout."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
