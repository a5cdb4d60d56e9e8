"""On/off switches read from environment variables, in one way everywhere (``REASON_GYM_ALLOW_HUB``,
``REASON_GYM_SANDBOX_ALLOW_PARTIAL``, ``HF_HUB_OFFLINE``, ...)."""

from __future__ import annotations

import os

TRUE_WORDS = ("1", "true", "yes", "on")
"""What switches a flag on, in any case and with spaces around; anything else (unset, empty, 0, no) is off."""


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is switched on (see :data:`TRUE_WORDS`)."""
    return os.environ.get(name, "").strip().lower() in TRUE_WORDS
