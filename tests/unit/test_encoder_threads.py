"""torch's OpenMP threads sleep rather than spin while they wait, unless the operator says."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import child_cwd, child_env

SHOW = ("import os, sys; import bot.classify.encoder; "
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)")


def policy_seen(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", SHOW], env=child_env(env), cwd=child_cwd(),
                          capture_output=True, text=True, check=True).stdout.strip()


def test_the_wait_policy_is_passive_before_torch_is_loaded() -> None:
    assert policy_seen({}) == "PASSIVE False"


def test_an_operators_wait_policy_wins() -> None:
    assert policy_seen({"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE False"
