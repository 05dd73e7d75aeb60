"""What proves who a visitor is, in the store: a portal identity's customer and jti."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.intake.web.identity import Claims
from models.customers import find_by_email
from models.tables import Customer, WebVisitor
from models.webchat import bind_jti


async def accept_identity(session: AsyncSession, *, visitor: WebVisitor, claims: Claims,
                          now: datetime) -> str | None:
    """Verify the visitor by a well-signed identity; why not, or None when verified.

    The signature proves only what the portal wrote; the store decides the rest: the customer
    number exists and is active, the address belongs to it, and the jti was not shown first by
    another visitor (a copied identity is a replay).
    """
    assert visitor.id is not None
    customer = (await session.exec(
        select(Customer).where(Customer.number == claims.customer))).first()
    if customer is None:
        return "unknown customer"
    if customer.deactivated_at is not None:
        return "customer deactivated"
    owner = await find_by_email(session, claims.email)
    if owner is None or owner.id != customer.id:
        return "address not of this customer"
    if not await bind_jti(session, jti=claims.jti, visitor_id=visitor.id,
                          expires_at=claims.expires_at, now=now):
        return "jti shown before by another visitor"
    visitor.verified_by, visitor.verified_at = "identity", now
    visitor.customer_id, visitor.email, visitor.name = customer.id, claims.email, claims.name
    session.add(visitor)
    return None
