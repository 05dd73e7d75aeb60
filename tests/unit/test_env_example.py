"""Every setting is listed in .env.example, and .env.example names no setting that is gone."""

from __future__ import annotations

import re

from bot.config import Settings
from tests.conftest import ROOT

LISTED = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=",
                        (ROOT / ".env.example").read_text(encoding="utf-8"), re.M))
SETTINGS = {name.upper() for name in Settings.model_fields}
FOR_TESTS = {"TEST_POSTGRES_URL"}  # read by the test suite, not by the service


def test_every_setting_is_in_env_example() -> None:
    assert sorted(SETTINGS - LISTED) == []


def test_env_example_names_only_settings() -> None:
    assert sorted(LISTED - SETTINGS - FOR_TESTS) == []
