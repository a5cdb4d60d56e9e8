"""Removing what a program left behind, whatever its shape: any depth, any modes, any number of files.

``shutil.rmtree`` and a recursive walk fail on a folder nested a few thousand levels deep (``RecursionError``, and
paths longer than ``PATH_MAX``). :func:`remove_tree` keeps every path it touches two levels deep: it moves the
children of each folder up into the top folder before removing it, so the work is iterative and the paths short.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid


def _is_dir(path: str) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode)  # lstat: a symlink is removed, never followed


def remove_contents(folder: str, budget: int = 1_000_000) -> bool:
    """Empties ``folder`` (not the folder itself); False when something could not be removed.

    Args:
        folder: The folder to empty (it stays, empty).
        budget: Most files and folders to remove before giving up (a program may have made millions).
    """
    with contextlib.suppress(OSError):
        os.chmod(folder, stat.S_IMODE(os.lstat(folder).st_mode) | 0o700)
    try:
        pending = os.listdir(folder)
    except OSError:
        return False
    while pending:
        budget -= 1
        if budget < 0:
            return False
        path = os.path.join(folder, pending.pop())
        try:
            if not _is_dir(path):
                os.unlink(path)
                continue
            os.chmod(path, 0o700)  # a folder the program made unreadable or unwritable
            for name in os.listdir(path):  # hoist the children: the top folder is never more than 2 levels deep
                hoisted = f".rg-{uuid.uuid4().hex}"
                os.rename(os.path.join(path, name), os.path.join(folder, hoisted))
                pending.append(hoisted)
            os.rmdir(path)
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return not os.listdir(folder)


def remove_tree(path: str) -> bool:
    """Removes ``path`` (a folder of any depth, or a file); True when it is gone."""
    try:
        if not _is_dir(path):
            os.unlink(path)
            return True
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not remove_contents(path):
        return False
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def remove_owned(folder: str, uid: int) -> bool:
    """Removes every entry of ``folder`` owned by ``uid`` (what a run left in a shared folder such as ``/tmp``)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return True  # a folder we cannot list is one the run could not write to either
    clean = True
    for entry in entries:
        try:
            owner = entry.stat(follow_symlinks=False).st_uid
        except OSError:
            continue
        if owner == uid:
            clean = remove_tree(entry.path) and clean
    return clean
