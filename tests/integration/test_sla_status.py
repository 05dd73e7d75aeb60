"""`intake-bot sla status` as a process: unanswered tickets, least time left first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from bot.cases import deadlines
from bot.config import DEFAULT_POLICY_FILE
from bot.domain import Severity
from bot.sla.engine import Engine
from models.db import Database
from tests.integration.reminder_kit import load_demo_customers, open_ticket_now
from tests.integration.test_service import cli

pytestmark = pytest.mark.slow  # `intake-bot` child processes


async def test_status_lists_unanswered_tickets_by_time_left(
    db: Database, database_url: str, engine: Engine
) -> None:
    now = datetime.now(UTC)
    await load_demo_customers(db, engine, now)
    # severity A, 24/7 plan, German: 2 h around the clock; opened 3 h ago is 1 h overdue
    overdue = await open_ticket_now(db, engine, now - timedelta(hours=3), subject="overdue")
    soon = await open_ticket_now(db, engine, now - timedelta(minutes=30), subject="soon")
    answered = await open_ticket_now(db, engine, now, severity=Severity.A, subject="answered")
    assert answered.number is not None
    async with db.session() as session:
        await deadlines.record_first_answer(session, number=answered.number, now=now,
                                            actor="agent")
    env = {"DATABASE_URL": database_url, "POLICY_FILE": str(DEFAULT_POLICY_FILE)}
    shown = cli(env, "sla", "status", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [r["ticket"] for r in rows] == [overdue.number, soon.number]
    assert [r["left_seconds"] // 60 for r in rows] == [-61, 89]  # whole minutes, rounded down
    assert rows[1]["next_reminder"].startswith("agents_50 to agents at ")


async def test_status_as_a_table_says_overdue(db: Database, database_url: str,
                                              engine: Engine) -> None:
    now = datetime.now(UTC)
    await load_demo_customers(db, engine, now)
    await open_ticket_now(db, engine, now - timedelta(hours=3), subject="overdue")
    shown = cli({"DATABASE_URL": database_url}, "sla", "status")
    assert shown.returncode == 0, shown.stderr
    assert "h00m overdue" in shown.stdout.splitlines()[1]
