"""Every on/off environment variable reads the same words (reason_gym.settings.env_flag)."""

from __future__ import annotations

import pytest

from reason_gym.data import HUB_VARIABLE, hub_unavailable
from reason_gym.sandbox.pool import ALLOW_PARTIAL_ENV, _env_allows_partial
from reason_gym.settings import env_flag


@pytest.mark.parametrize(
    ("value", "on"),
    [("1", True), ("true", True), ("TRUE", True), (" yes ", True), ("On", True),
     ("", False), ("0", False), ("no", False), ("off", False), ("2", False), ("enabled", False)],
)  # fmt: skip
def test_every_flag_reads_the_same_words(monkeypatch, value, on):
    for name in (HUB_VARIABLE, ALLOW_PARTIAL_ENV, "SOME_FLAG"):
        monkeypatch.setenv(name, value)
    assert env_flag("SOME_FLAG") is on
    assert _env_allows_partial() is on
    assert ("it is not allowed" not in (hub_unavailable(False) or "")) is on


def test_an_unset_flag_is_off(monkeypatch):
    monkeypatch.delenv("SOME_FLAG", raising=False)
    assert env_flag("SOME_FLAG") is False
