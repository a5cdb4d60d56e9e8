"""Writing files so that a crash leaves either the old version or the new one, never a mix or an empty file."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` in one atomic step when the ``with`` block ends without an error.

    What the block writes goes to a temporary file in the same folder (so the rename stays on one file system), is
    flushed to disk with ``fsync``, and then ``os.replace`` swaps it in; the folder is synced too, so the rename
    itself survives a power cut. A process killed at any moment leaves the previous file intact, plus at worst a
    hidden ``.<name>.*.tmp`` file beside it; an error in the block leaves the previous file and no temporary one.

    Raises:
        OSError: The folder does not exist or cannot be written (the previous file is then unchanged).
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # os.open with mode 0o666 lets the umask decide the permissions, as a plain open() would (mkstemp forces 0o600).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # only still there when writing or renaming failed
    _sync_folder(path.parent)


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Replaces the file at ``path`` with ``data`` (a ``str`` is written as UTF-8) in one atomic step
    (see :func:`atomic_file`).

    Args:
        path: The file to write; its folder must exist.
        data: The whole new content.

    Raises:
        OSError: The folder does not exist or cannot be written (the previous file is then unchanged).
    """
    with atomic_file(path) as file:
        file.write(data.encode() if isinstance(data, str) else data)


def _sync_folder(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


__all__ = ["atomic_file", "write_atomic"]
