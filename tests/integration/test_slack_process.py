"""The service as a process: a SIGKILL right after Slack's 200 loses nothing."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlmodel import select

from models.db import Database
from models.tables import Message
from tests.conftest import child_cwd, child_env
from tests.fakes.slack_events import SECRET, SlackSender
from tests.integration.test_service import BIN, cli, free_port

pytestmark = pytest.mark.slow  # the service as a child process


def serve(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*BIN, "serve"], env=child_env(env), cwd=child_cwd(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_healthy(port: int, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                body: dict[str, object] = json.load(r)
                return body
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError("the service did not answer /health")


async def slack_rows(database_url: str) -> list[Message]:
    db = Database(database_url)
    try:
        async with db.reader() as session:
            return list((await session.exec(select(Message).where(
                Message.channel == "slack"))).all())
    finally:
        await db.dispose()


async def test_sigkill_right_after_the_200_and_the_message_is_processed_after_restart(
        db: Database, database_url: str, tmp_path: Path) -> None:
    await db.dispose()  # migrated by the fixture; the processes use their own connections
    port = free_port()
    env = {"DATABASE_URL": database_url, "HTTP_PORT": str(port), "SMTP_PORT": str(free_port()),
           "OUTBOX_DIR": str(tmp_path / "outbox"), "CLASSIFIER": "keywords",
           "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "",
           "SLACK_OUTBOX_FILE": str(tmp_path / "slack.jsonl")}
    assert cli(env, "customers", "import", "--demo").returncode == 0
    first = serve(env)
    try:
        health = await asyncio.to_thread(wait_healthy, port)
        sender = SlackSender(port)
        answer = await sender.event(sender.message())
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.communicate(timeout=20)
    assert answer.status == 200
    assert health["slack"] == {"mode": "outbox-file", "events": "on",
                               "outbox_file": str(tmp_path / "slack.jsonl"),
                               "note": "no SLACK_BOT_TOKEN: mail-only; Slack calls are written "
                                       "to the file"}
    [stored] = await slack_rows(database_url)
    assert stored.external_id == "C0CUSTOMER:1763900000.000100"
    second = serve(env)
    try:
        await asyncio.to_thread(wait_healthy, port)
        deadline = time.monotonic() + 20
        rows = await slack_rows(database_url)
        while time.monotonic() < deadline and rows[0].disposition == "pending":
            await asyncio.sleep(0.1)
            rows = await slack_rows(database_url)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=20)
    assert [r.disposition for r in rows] == ["ticket"]
    assert second.returncode == 0, err
    assert "event=slack_mode mode=outbox-file" in err
