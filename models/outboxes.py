"""What waits in the two outboxes (mail, Slack calls), for /health and `intake-bot outbox`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Message, SlackCall


@dataclass(frozen=True)
class Backlog:
    """How many wait, since when the oldest, how many failed."""

    waiting: int
    oldest: datetime | None
    failed: int


async def slack_backlog(session: AsyncSession) -> Backlog:
    """The Slack outbox: queued calls and failed ones."""
    row = (await session.exec(
        select(func.count(), func.min(SlackCall.created_at)).where(SlackCall.status == "queued"))
    ).one()
    failed = (await session.exec(
        select(func.count()).select_from(SlackCall).where(SlackCall.status == "failed"))).one()
    return Backlog(waiting=int(row[0]), oldest=_aware(row[1]), failed=int(failed))


async def mail_backlog(session: AsyncSession) -> Backlog:
    """The mail outbox: outbound mail queued, and failed."""
    row = (await session.exec(
        select(func.count(), func.min(Message.created_at))
        .where(Message.direction == "out", Message.disposition == "queued"))).one()
    failed = (await session.exec(
        select(func.count()).select_from(Message)
        .where(Message.direction == "out", Message.disposition == "failed"))).one()
    return Backlog(waiting=int(row[0]), oldest=_aware(row[1]), failed=int(failed))


def _aware(value: object) -> datetime | None:
    """min() bypasses the column type on SQLite: a naive UTC string or datetime comes back."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def list_outbox(session: AsyncSession, *, include_sent: bool = False,
                      limit: int = 200) -> tuple[list[SlackCall], list[Message]]:
    """Slack calls and outbound mail that wait or failed (or all, newest last)."""
    calls = select(SlackCall).order_by(col(SlackCall.id))
    mails = select(Message).where(Message.direction == "out").order_by(col(Message.id))
    if not include_sent:
        calls = calls.where(col(SlackCall.status).in_(["queued", "failed"]))
        mails = mails.where(col(Message.disposition).in_(["queued", "failed"]))
    return (list((await session.exec(calls.limit(limit))).all()),
            list((await session.exec(mails.limit(limit))).all()))


async def requeue_slack(session: AsyncSession, *, ids: list[int] | None) -> list[int]:
    """Queue failed Slack calls again (these ids, or every failed one); the ids requeued."""
    query = select(SlackCall).where(SlackCall.status == "failed").with_for_update()
    if ids is not None:
        query = query.where(col(SlackCall.id).in_(ids))
    done = []
    for call in (await session.exec(query)).all():
        # due at once (None), whatever the running service's clock says
        call.status, call.next_attempt_at, call.done_at = "queued", None, None
        call.sending_at = None
        session.add(call)
        done.append(call.id or 0)
    return sorted(done)


async def requeue_mail(session: AsyncSession, *, ids: list[int] | None) -> list[int]:
    """Queue failed outbound mail again (these ids, or every failed one); the ids requeued."""
    query = (select(Message).where(Message.direction == "out", Message.disposition == "failed")
             .with_for_update())
    if ids is not None:
        query = query.where(col(Message.id).in_(ids))
    done = []
    for message in (await session.exec(query)).all():
        message.disposition, message.next_attempt_at, message.done_at = "queued", None, None
        session.add(message)
        done.append(message.id or 0)
    return sorted(done)
