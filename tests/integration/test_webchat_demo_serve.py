"""`intake-bot serve --demo` without WEBCHAT_IDENTITY_SECRET: the demo portal page signs its
logged-in demo person with the public demo secret, so the chat knows the customer."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from bot.app import utc_now
from bot.cli.main import DEMO_WEBCHAT_SECRET
from bot.intake.web.identity import check
from models.db import Database
from tests.conftest import child_cwd, child_env
from tests.integration.test_service import BIN, cli, free_port
from tests.integration.test_slack_process import wait_healthy

pytestmark = pytest.mark.slow  # the service as a child process


def identity_on(page: str) -> str:
    """The data-identity attribute of the widget's script tag."""
    return page.split('data-identity="', 1)[1].split('"', 1)[0]


async def test_serve_demo_signs_the_demo_person_on_the_demo_page(
        db: Database, database_url: str, tmp_path: Path) -> None:
    await db.dispose()
    port = free_port()
    env = {"DATABASE_URL": database_url, "HTTP_PORT": str(port), "SMTP_PORT": str(free_port()),
           "OUTBOX_DIR": str(tmp_path / "outbox"), "CLASSIFIER": "keywords",
           "SLACK_SIGNING_SECRET": "", "SLACK_BOT_TOKEN": "", "WEBCHAT_IDENTITY_SECRET": "",
           "SLACK_OUTBOX_FILE": str(tmp_path / "slack.jsonl")}
    assert cli(env, "customers", "import", "--demo").returncode == 0
    server = subprocess.Popen([*BIN, "serve", "--demo"], env=child_env(env), cwd=child_cwd(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await asyncio.to_thread(wait_healthy, port)
        with await asyncio.to_thread(
                urllib.request.urlopen, f"http://127.0.0.1:{port}/chat/demo") as response:
            page = response.read().decode("utf-8")
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=20)
    claims = check(identity_on(page), secret=DEMO_WEBCHAT_SECRET.encode(), now=utc_now(),
                   max_seconds=86_400)
    assert (claims.customer, claims.email) == ("D-1001", "petra.krume@baeckerei-krume.de")
    assert "event=webchat_demo_secret" in err
