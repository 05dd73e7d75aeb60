"""The rest of Slack's contract: app_rate_limited is answered 200, a customer's /me message is
their message, and the managers' daily digest reaches the managers' channel through the bot."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from models.db import Database
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import Clock, Slack, slack_settings, start_service
from tests.integration.reminder_kit import posted
from tests.integration.test_digest_job import TUESDAY_10
from tests.integration.test_slack_chat import LOGISTIK, posted_to


def rate_limited() -> str:
    """What Slack sends when the app got more than 30,000 events in an hour from a workspace."""
    return json.dumps({"token": "unused", "type": "app_rate_limited", "team_id": "T0NETTASK",
                       "minute_rate_limited": int(time.time()) // 60 * 60,
                       "api_app_id": "A0NETTASK"})


async def test_app_rate_limited_is_answered_200(slack: Slack) -> None:
    assert (await slack.sender.post(rate_limited())).status == 200


async def test_app_rate_limited_is_logged(slack: Slack, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.intake.slack.app"):
        await slack.sender.post(rate_limited())
    assert [r.getMessage().split()[0] for r in caplog.records
            if "app_rate_limited" in r.getMessage()] == ["event=slack_app_rate_limited"]


async def test_a_customers_me_message_opens_their_ticket(slack: Slack) -> None:
    await slack.sender.event(slack.sender.message("ist ohne VPN seit heute früh",
                                                  subtype="me_message", **LOGISTIK))
    [row] = await slack.processed()
    assert (row.disposition, row.text) == ("ticket", "ist ohne VPN seit heute früh")


async def test_the_daily_digest_is_posted_to_the_managers_channel(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    await db.dispose()
    settings = slack_settings(tmp_path, database_url, fake, digest_time="07:30",
                              slack_managers_channel="C0MANAGERS")
    service = await start_service(settings, Clock(TUESDAY_10))
    try:
        [digest] = await posted_to(fake, "C0MANAGERS")
    finally:
        await service.service.stop()
    assert digest.args["text"].splitlines()[0] == "Support digest for Mon 23 Nov 2026"


async def test_with_a_bot_token_the_digest_is_not_written_to_the_file(
        db: Database, database_url: str, tmp_path: Path, fake: FakeSlack) -> None:
    await db.dispose()
    settings = slack_settings(tmp_path, database_url, fake, digest_time="07:30",
                              slack_managers_channel="C0MANAGERS")
    service = await start_service(settings, Clock(TUESDAY_10))
    try:
        await posted_to(fake, "C0MANAGERS")
    finally:
        await service.service.stop()
    assert [line for line in posted(tmp_path / "slack.jsonl") if "digest" in line] == []
