"""The sandbox's isolation modes, as the tests open them: each one this machine offers, with what it verified."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from reason_gym.sandbox import Isolation, Sandbox, SandboxError, pool


@dataclass
class Mode:
    """How to open a sandbox in one mode: constructor settings, and whether partial isolation uses namespaces."""

    settings: dict[str, Any]
    namespaces: bool = True
    unavailable: str = field(default="", compare=False)


MODES = {
    "bubblewrap": Mode({"backend": "bubblewrap"}),
    "partial": Mode({"backend": "subprocess", "allow_partial": True}),
    "partial-uid": Mode({"backend": "subprocess", "allow_partial": True}, namespaces=False),
}
"""Full isolation; partial isolation with the namespaces the kernel grants; and with a uid of its own alone (a
container that refuses ``unshare``)."""


def open_sandbox(mode: str, **kwargs: Any) -> Sandbox:
    """A sandbox in ``mode`` (partial modes warn once: silenced here, tested in test_sandbox_modes.py)."""
    spec = MODES[mode]
    saved = pool._KEEPER_NAMESPACES
    pool._KEEPER_NAMESPACES = spec.namespaces
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Sandbox(**spec.settings, **kwargs)
    finally:
        pool._KEEPER_NAMESPACES = saved


def _probe() -> dict[str, Isolation]:
    found = {}
    for name, spec in MODES.items():
        try:
            with open_sandbox(name, workers=1) as box, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found[name] = box.isolation
        except SandboxError as error:
            spec.unavailable = str(error)[:300]
    if "partial" in found and "partial-uid" in found and not found["partial"].pid_namespace:
        del found["partial"]  # the kernel refused namespaces: "partial" is "partial-uid" again
    return found


ISOLATION = _probe()
"""The isolation each mode verified here, for the modes that can run (root is needed for the partial ones)."""
AVAILABLE = [name for name in MODES if name in ISOLATION]
IS_ROOT = os.geteuid() == 0
