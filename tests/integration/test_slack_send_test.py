"""`intake-bot slack send-test` against `intake-bot serve --demo` without a Slack workspace:
the demo signing secret lets the signed sample event in; the ticket and the calls written to
the JSON-lines outbox are printed."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import pytest

from bot.cli.slack import DEMO_TRIAGE_CHANNEL
from models.db import Database
from tests.conftest import child_cwd, child_env
from tests.integration.test_service import BIN, cli, free_port
from tests.integration.test_slack_process import wait_healthy

pytestmark = pytest.mark.slow  # the service as a child process


async def test_send_test_against_serve_demo_prints_the_ticket_and_the_posts(
        db: Database, database_url: str, tmp_path: Path) -> None:
    await db.dispose()
    port = free_port()
    outbox = tmp_path / "slack.jsonl"
    env = {"DATABASE_URL": database_url, "HTTP_PORT": str(port), "SMTP_PORT": str(free_port()),
           "OUTBOX_DIR": str(tmp_path / "outbox"), "CLASSIFIER": "keywords",
           "SLACK_SIGNING_SECRET": "", "SLACK_BOT_TOKEN": "", "SLACK_TRIAGE_CHANNEL": "",
           "SLACK_OUTBOX_FILE": str(outbox)}
    assert cli(env, "customers", "import", "--demo").returncode == 0
    server = subprocess.Popen([*BIN, "serve", "--demo"], env=child_env(env), cwd=child_cwd(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await asyncio.to_thread(wait_healthy, port)
        sent = await asyncio.to_thread(cli, env, "slack", "send-test")
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=20)
    assert sent.returncode == 0, sent.stderr
    lines = sent.stdout.splitlines()
    assert lines[0].startswith("sent C0LOGNORD:") and ": ticket, ticket NT#" in lines[0]
    assert lines[1] == f"Slack calls (written to {outbox}):"
    assert any(f"chat.postMessage channel={DEMO_TRIAGE_CHANNEL} " in line for line in lines)
    assert any("chat.postMessage channel=C0LOGNORD thread=" in line for line in lines)
    written = [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]
    assert len(written) == len(lines) - 2
    assert "event=slack_demo_secret" in err
