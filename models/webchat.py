"""Web chat repository: visitors, the lines of their conversations, codes and identity uses."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.tables import Message, WebCode, WebIdentityUse, WebItem, WebVisitor

WEB = "web"  # bot.domain.Channel.WEB; models import nothing from bot
HISTORY = 200  # the last lines a `welcome` carries


def token_hash(token: str) -> str:
    """The stored form of a visitor token: sha256 hex (a stolen table holds no tokens)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _insert(session: AsyncSession) -> type[postgresql.Insert] | type[sqlite.Insert]:
    return postgresql.Insert if session.get_bind().dialect.name == "postgresql" else sqlite.Insert


async def create_visitor(session: AsyncSession, *, token_sha: str, language: str,
                         now: datetime) -> WebVisitor:
    """A new, unverified visitor with this token hash."""
    visitor = WebVisitor(token_hash=token_sha, language=language, created_at=now,
                         last_seen_at=now)
    session.add(visitor)
    await session.flush()
    return visitor


async def visitor_by_token(session: AsyncSession, token_sha: str) -> WebVisitor | None:
    """The visitor whose token has this hash, if any."""
    return (await session.exec(
        select(WebVisitor).where(WebVisitor.token_hash == token_sha))).first()


async def item_by_client_id(session: AsyncSession, *, visitor_id: int,
                            client_id: str) -> WebItem | None:
    """The visitor's `in` item stored under the widget's id, if any."""
    return (await session.exec(select(WebItem).where(
        WebItem.visitor_id == visitor_id, WebItem.client_id == client_id))).first()


async def store_in_item(session: AsyncSession, *, visitor: WebVisitor, client_id: str, kind: str,
                        text: str, action: str = "", value: str = "", raw: bytes,
                        now: datetime) -> tuple[WebItem, bool]:
    """Insert the visitor's `in` item and its pipeline message (channel web, pending), linked,
    in the caller's transaction; (item, True), or (the stored item, False) for a known client id.
    """
    assert visitor.id is not None
    # ON CONFLICT DO NOTHING: a resend racing the first send on another socket waits for that
    # transaction and then finds the row, instead of failing on the unique constraint.
    statement = (
        _insert(session)(WebItem)
        .values(visitor_id=visitor.id, direction="in", kind=kind, client_id=client_id,
                text=text, choices="", action=action, value=value, created_at=now)
        .on_conflict_do_nothing()
        .returning(col(WebItem.id))
    )
    row = (await session.exec(statement)).first()
    if row is None:
        stored = await item_by_client_id(session, visitor_id=visitor.id, client_id=client_id)
        assert stored is not None, "conflict without a row"
        return stored, False
    item_id = int(row[0])
    verified = bool(visitor.verified_by) and bool(visitor.email)
    message = Message(
        direction="in", channel=WEB, external_id=f"web:{visitor.id}:{client_id}", digest="",
        raw=raw, sender=visitor.email if verified else f"web:{visitor.id}",
        recipient=f"web:{visitor.id}", text=text, subject="", disposition="pending",
        attempts=0, created_at=now)
    session.add(message)
    item = await session.get(WebItem, item_id)
    assert item is not None
    await session.flush()  # the message's id
    item.message_id = message.id
    session.add(item)
    await session.flush()
    return item, True


async def ins_since(session: AsyncSession, *, visitor_id: int, since: datetime) -> int:
    """How many messages and choices the visitor sent since `since` (the per-minute limit)."""
    count = (await session.exec(select(func.count()).select_from(WebItem).where(
        WebItem.visitor_id == visitor_id, WebItem.direction == "in",
        col(WebItem.created_at) >= since))).one()
    return int(count)


async def history(session: AsyncSession, *, visitor_id: int, limit: int = HISTORY) -> list[WebItem]:
    """The visitor's last `limit` items, oldest first."""
    rows = (await session.exec(
        select(WebItem).where(WebItem.visitor_id == visitor_id)
        .order_by(col(WebItem.id).desc()).limit(limit))).all()
    return list(reversed(rows))


async def items_after(session: AsyncSession, *, after_id: int, limit: int = 500,
                      visitor_ids: list[int] | None = None) -> list[WebItem]:
    """`out` items with an id above `after_id`, by id (the push loop's work)."""
    query = select(WebItem).where(WebItem.direction == "out", col(WebItem.id) > after_id)
    if visitor_ids is not None:
        query = query.where(col(WebItem.visitor_id).in_(visitor_ids))
    return list((await session.exec(query.order_by(col(WebItem.id)).limit(limit))).all())


async def last_item_id(session: AsyncSession) -> int:
    """The highest item id so far (0 for none)."""
    highest = (await session.exec(select(func.max(WebItem.id)))).one()
    return int(highest or 0)


async def mark_seen(session: AsyncSession, *, visitor_id: int, upto: int, now: datetime) -> int:
    """Set seen_at on the visitor's unseen `out` items up to `upto`; how many."""
    result = await session.exec(
        update(WebItem).where(col(WebItem.visitor_id) == visitor_id,
                              col(WebItem.direction) == "out",
                              col(WebItem.id) <= upto, col(WebItem.seen_at).is_(None))
        .values(seen_at=now))
    return int(result.rowcount)


async def touch_visitor(session: AsyncSession, *, visitor_id: int, language: str,
                        now: datetime) -> None:
    """Note that the visitor is here now, speaking `language` (its code mails' language)."""
    await session.exec(update(WebVisitor).where(col(WebVisitor.id) == visitor_id)
                       .values(last_seen_at=now, language=language))


async def bind_jti(session: AsyncSession, *, jti: str, visitor_id: int, expires_at: datetime,
                   now: datetime) -> bool:
    """Bind an identity's jti to the first visitor that shows it; False when another visitor
    showed it first (a replay)."""
    await session.exec(
        _insert(session)(WebIdentityUse)
        .values(jti=jti, visitor_id=visitor_id, expires_at=expires_at, seen_at=now)
        .on_conflict_do_nothing())
    owner = (await session.exec(
        select(WebIdentityUse.visitor_id).where(WebIdentityUse.jti == jti))).one()
    return owner == visitor_id


async def codes_since(session: AsyncSession, *, visitor_id: int, email: str,
                      since: datetime) -> tuple[int, int]:
    """How many codes were asked since `since`: (for this visitor, for this address)."""
    rows = (await session.exec(
        select(WebCode.visitor_id, WebCode.email).where(
            col(WebCode.created_at) >= since,
            or_(col(WebCode.visitor_id) == visitor_id, col(WebCode.email) == email)))).all()
    return (sum(1 for v, _ in rows if v == visitor_id), sum(1 for _, e in rows if e == email))


async def open_code(session: AsyncSession, *, visitor_id: int) -> WebCode | None:
    """The visitor's newest unused code, locked against a concurrent try."""
    return (await session.exec(
        select(WebCode).where(WebCode.visitor_id == visitor_id, col(WebCode.used_at).is_(None))
        .order_by(col(WebCode.id).desc()).limit(1).with_for_update())).first()


async def close_codes(session: AsyncSession, *, visitor_id: int, now: datetime) -> None:
    """End the visitor's open codes (a new address replaces them)."""
    await session.exec(update(WebCode).where(col(WebCode.visitor_id) == visitor_id,
                                             col(WebCode.used_at).is_(None))
                       .values(used_at=now, tries_left=0))
