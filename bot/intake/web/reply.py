"""The web chat's way back to the visitor: every answer, quote, slot offer, status note and agent
reply is an `out` item in the caller's transaction; the push loop (hub.py) sends it to the open
tabs, and an agent's unseen one goes by mail later (bot/jobs/webchat_mail.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import Channel, Choice, Language
from models.tables import Ticket
from models.tickets import audit
from models.webchat_out import AGENT, add_out_item, visitor_of

CONSENT_YES, CONSENT_NO = "consent_yes", "consent_no"  # a quote's two choices
LABELS = {Language.DE: ("Ja, einverstanden", "Nein"), Language.EN: ("Yes, I agree", "No")}


def consent_choices(ticket: Ticket) -> list[Choice]:
    """Yes / No on a quote; both name the ticket and the price they answer."""
    assert ticket.number is not None
    value = f"{ticket.number}:{ticket.price_cents}"
    yes, no = LABELS[Language(ticket.language)]
    return [Choice(action=CONSENT_YES, value=value, label=yes),
            Choice(action=CONSENT_NO, value=value, label=no)]


class WebReplyChannel:
    """The web chat's ReplyChannel: an `out` item for the visitor, once per key."""

    def __init__(self, *, visitor_id: int, key: str, kind: str = "text") -> None:
        self.visitor_id = visitor_id
        self.key = key
        self.kind = kind

    async def queue_answer(self, session: AsyncSession, ticket: Ticket, body: str, *,
                           now: datetime, essential: bool = False,
                           asks_consent: bool = False, choices: Sequence[Choice] = ()) -> bool:
        """Add the answer with its choices (a quote: Yes / No first); no cap, as in Slack: the
        chat is the visitor's own conversation, and floods are held by the flood rules."""
        assert ticket.number is not None
        shown = [*consent_choices(ticket), *choices] if asks_consent else list(choices)
        added = await add_out_item(session, visitor_id=self.visitor_id, key=self.key,
                                   text=body.strip(), now=now, ticket_number=ticket.number,
                                   kind=self.kind, choices=shown)
        if added:
            await audit(session, ticket_number=ticket.number, actor=Channel.WEB.value,
                        action="auto_reply_queued", now=now, item=self.key)
        return True


class WebAnswerRoute:
    """A web ticket's way back: its visitor's chat (the requester is `web:<visitor id>`)."""

    channel = Channel.WEB.value
    signs_answers = False  # the item names its author; a chat line carries no signature

    async def reply_channel(self, session: AsyncSession, ticket: Ticket, *,
                            key: str) -> WebReplyChannel | None:
        """The visitor's chat; None when the requester names no visitor."""
        visitor = visitor_of(ticket.requester)
        return None if visitor is None else WebReplyChannel(visitor_id=visitor, key=key)

    async def queue_person_answer(self, session: AsyncSession, ticket: Ticket, text: str, *,
                                  key: str, agent_name: str, now: datetime) -> bool:
        """An agent's answer as an `out` text item keyed `agent:…` (mailed if left unseen), with
        the agent's name as its author."""
        visitor = visitor_of(ticket.requester)
        if visitor is None:
            return False
        await add_out_item(session, visitor_id=visitor, key=f"{AGENT}{key}", text=text.strip(),
                           now=now, ticket_number=ticket.number, author=agent_name)
        return True
