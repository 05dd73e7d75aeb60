"""Manager alerts reach the managers' Slack channel (the fake) and their mailbox (the Maildir)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import alert_config
from bot.jobs.alerts import notify_managers
from models.customers import get_customer
from models.db import Database
from models.tickets import get_ticket, ticket_history
from tests.fakes.slack_api import FakeSlack
from tests.integration.conftest import Clock, Running, slack_settings, start_service
from tests.integration.test_email import outage

MANAGERS = "C0MANAGERS"


@pytest.fixture
async def service(db: Database, database_url: str, tmp_path: Path,
                  fake: FakeSlack) -> AsyncIterator[Running]:
    await db.dispose()
    settings = slack_settings(tmp_path, database_url, fake, slack_managers_channel=MANAGERS,
                              managers_email="leitung@nettask.de")
    running = await start_service(settings, Clock())
    yield running
    await running.service.stop()


async def breach(running: Running, late: timedelta) -> tuple[int, list[str]]:
    """Open a ticket by mail, then alert the managers `late` after its deadline."""
    code, _ = await running.send(outage())
    assert code == 250
    await running.settle()
    [ticket] = await running.tickets()
    assert ticket.number is not None and ticket.due_at is not None
    config = alert_config(running.service.settings, running.service.engine)
    running.clock.now = ticket.due_at + late  # the SLA check runs then
    async with running.db.session() as session:
        row = await get_ticket(session, ticket.number)
        assert row is not None and row.customer_id is not None
        customer = await get_customer(session, row.customer_id)
        queued = await notify_managers(session, config=config, ticket=row, customer=customer,
                                       kind="breach", now=running.clock.now)
    running.service.slack_deliverer.wake.set()  # type: ignore[union-attr]
    running.service.deliverer.wake.set()  # type: ignore[union-attr]
    return ticket.number, queued


async def test_the_managers_channel_gets_the_alert(service: Running, fake: FakeSlack) -> None:
    number, queued = await breach(service, timedelta(hours=1, minutes=20))
    assert queued == ["slack", "email"]
    await fake.wait_for("chat.postMessage", 2)  # the triage post of the ticket, and the alert
    [post] = [c for c in fake.made("chat.postMessage") if c.args["channel"] == MANAGERS]
    assert post.args["text"] == (
        f"NT#{number} missed its deadline: customer Logistik Nord AG (D-1003), plan dehosted "
        "standard, severity A, deadline Mon 23 Nov 2026 14:00 (CET), 1 h 20 min late.")
    assert post.token == "xoxb-test"


async def test_the_managers_mailbox_gets_the_alert(service: Running) -> None:
    number, _ = await breach(service, timedelta(minutes=45))
    await service.settle()
    [_, alert] = service.replies()
    assert alert["To"] == "leitung@nettask.de"
    assert alert["Subject"] == (f"[NT#{number}] Deadline missed: Logistik Nord AG (D-1003), "
                                "severity A")
    assert alert["Auto-Submitted"] == "auto-generated"
    assert "45 min late" in alert.get_content()


async def test_the_same_alert_is_queued_once_and_audited(service: Running) -> None:
    number, first = await breach(service, timedelta(minutes=10))
    config = alert_config(service.service.settings, service.service.engine)
    async with service.db.session() as session:
        ticket = await get_ticket(session, number)
        assert ticket is not None
        again = await notify_managers(session, config=config, ticket=ticket, customer=None,
                                      kind="breach", now=service.clock.now)
        _, trail = await ticket_history(session, number)
    assert first == ["slack", "email"]
    assert again == []
    assert [e.action for e in trail].count("managers_alerted") == 1
