"""Mail when the visitor has left (bot/jobs/webchat_mail.py): an agent's answer in the chat not
seen within WEBCHAT_MAIL_AFTER_MINUTES goes to the verified visitor's address once, through the
mail outbox; `now` is the job's parameter. On both databases, the service running."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.jobs.webchat_mail import WebchatMail
from models.db import Database
from models.tables import Message, WebItem, WebVisitor
from models.tickets import get_ticket
from models.webchat import mark_seen
from tests.integration.conftest import Clock, Running, make_settings, start_service
from tests.integration.webchat_flow_kit import ANNA, out_items, send, visitor

OUTAGE = "Unser Mailserver ist seit heute früh nicht erreichbar"
AFTER = timedelta(minutes=15)


def job(running: Running) -> WebchatMail:
    """The job as the service builds it (WEBCHAT_MAIL_AFTER_MINUTES=15)."""
    settings = running.service.settings
    return WebchatMail(db=running.db, after=AFTER, from_address=settings.support_mailboxes[0],
                       from_name=settings.mail_from_name)


async def agent_answer(running: Running, who: WebVisitor, text: str = "Bitte neu starten.",
                       ) -> tuple[int, WebItem]:
    """The visitor's ticket, answered by an agent the way the triage thread answers."""
    row = await send(running, who, OUTAGE, client_id="c1")
    assert row.ticket_number is not None
    async with running.db.session() as session:
        ticket = await get_ticket(session, row.ticket_number)
        assert ticket is not None
        sent = await running.service.intake.replies.queue_person_answer(
            session, ticket, text, key="agent-answer:test", agent_name="Anna Agentin",
            now=running.clock())
    assert sent == "web"
    return row.ticket_number, (await out_items(running.db, who))[-1]


async def mails_to(db: Database, address: str) -> list[Message]:
    async with db.reader() as session:
        rows = await session.exec(select(Message).where(
            Message.direction == "out", Message.channel == "email",
            Message.recipient == address).order_by(col(Message.id)))
        return list(rows.all())


def later(running: Running, minutes: int) -> datetime:
    return running.clock() + timedelta(minutes=minutes)


async def test_no_mail_before_the_time(running: Running) -> None:
    anna = await visitor(running.db, now=running.clock())
    await agent_answer(running, anna)
    assert await job(running).run(later(running, 14)) == 0
    assert await mails_to(running.db, ANNA) == []


async def test_one_mail_after_the_time(running: Running) -> None:
    anna = await visitor(running.db, now=running.clock())
    number, _ = await agent_answer(running, anna, "Wir haben den Dienst neu gestartet.")
    assert await job(running).run(later(running, 16)) == 1
    [mail] = await mails_to(running.db, ANNA)
    assert f"[NT#{number}]" in mail.subject
    assert "Wir haben den Dienst neu gestartet." in mail.text


async def test_the_mail_is_signed_with_the_agents_name(running: Running) -> None:
    """The chat shows the agent's name above the answer; the mail signs it below instead."""
    anna = await visitor(running.db, now=running.clock())
    await agent_answer(running, anna, "Wir haben den Dienst neu gestartet.")
    await job(running).run(later(running, 16))
    [mail] = await mails_to(running.db, ANNA)
    assert mail.text.rstrip().endswith("Mit freundlichen Grüßen\nAnna Agentin\nNetTask Support")


async def test_the_mailed_answer_is_marked(running: Running) -> None:
    anna = await visitor(running.db, now=running.clock())
    _, answer = await agent_answer(running, anna)
    await job(running).run(later(running, 16))
    [after] = [i for i in await out_items(running.db, anna) if i.id == answer.id]
    assert after.mailed_at == later(running, 16)


async def test_the_mail_leaves_through_the_outbox(running: Running) -> None:
    anna = await visitor(running.db, now=running.clock())
    number, _ = await agent_answer(running, anna)
    running.clock.now = later(running, 16)  # the outbox sends what is due on the service clock
    await job(running).run(running.clock())
    assert running.service.deliverer is not None
    running.service.deliverer.wake.set()
    await running.settle()
    [mail] = [m for m in running.replies() if m["To"] == ANNA]
    assert f"[NT#{number}]" in str(mail["Subject"])


async def test_a_seen_answer_is_not_mailed(running: Running) -> None:
    anna = await visitor(running.db, now=running.clock())
    _, answer = await agent_answer(running, anna)
    assert anna.id is not None and answer.id is not None
    async with running.db.session() as session:
        await mark_seen(session, visitor_id=anna.id, upto=answer.id, now=later(running, 3))
    assert await job(running).run(later(running, 16)) == 0
    assert await mails_to(running.db, ANNA) == []


async def test_running_twice_mails_once(running: Running) -> None:
    anna = await visitor(running.db, now=running.clock())
    await agent_answer(running, anna)
    await job(running).run(later(running, 16))
    assert await job(running).run(later(running, 17)) == 0
    assert len(await mails_to(running.db, ANNA)) == 1


async def test_an_unverified_visitor_gets_no_mail(running: Running) -> None:
    """Anyone can type a customer's address into the chat: it gets nothing it did not prove."""
    stranger = await visitor(running.db, now=running.clock(), verified=False)
    await agent_answer(running, stranger)
    assert await job(running).run(later(running, 16)) == 0
    assert await mails_to(running.db, ANNA) == []


async def test_our_automatic_answers_are_not_mailed(running: Running) -> None:
    """Only agents' answers: the ticket's own answer stays in the chat."""
    anna = await visitor(running.db, now=running.clock())
    await send(running, anna, OUTAGE, client_id="c1")
    assert await job(running).run(later(running, 16)) == 0


@pytest.fixture
async def quick(db: Database, database_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    """The service whose leader looks for unseen answers every 0.1 s."""
    await db.dispose()
    started = await start_service(make_settings(tmp_path, database_url,
                                                reminder_refresh_seconds=0.1), Clock())
    yield started
    await started.service.stop()


async def test_the_leader_mails_it_on_its_own(quick: Running) -> None:
    anna = await visitor(quick.db, now=quick.clock())
    await agent_answer(quick, anna)
    quick.clock.now = later(quick, 16)
    deadline = time.monotonic() + 10
    while not await mails_to(quick.db, ANNA):
        assert time.monotonic() < deadline, "the leader did not mail the unseen answer"
        await asyncio.sleep(0.05)
    assert len(await mails_to(quick.db, ANNA)) == 1
