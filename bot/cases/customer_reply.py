"""The reply channel back to a ticket's customer, whatever channel the ticket came in on.

Each channel brings its own `AnswerRoute` (mail thread, Slack thread); the composition root
hands them to `CustomerReplies`, so that an agent's answer from the triage thread reaches a
mail customer without the Slack package importing the mail package."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cases.conversation import ReplyChannel
from bot.domain import Language
from models.tables import Ticket


class AnswerRoute(Protocol):
    """One channel's way back to a ticket's customer."""

    channel: str  # the channel's name, as the triage thread reports where an answer went
    signs_answers: bool  # whether the agent's name goes under the text (mail, Slack) or not

    async def reply_channel(self, session: AsyncSession, ticket: Ticket, *,
                            key: str) -> ReplyChannel | None:
        """The ticket's conversation on this channel; None if it cannot be reached."""
        ...

    async def queue_person_answer(self, session: AsyncSession, ticket: Ticket, text: str, *,
                                  key: str, agent_name: str, now: datetime) -> bool:
        """Queue a person's signed answer in the caller's transaction; False if unreachable."""
        ...


class CustomerReplies:
    """The route for each ticket channel; `fallback` for a channel without its own."""

    def __init__(self, routes: Mapping[str, AnswerRoute], *, fallback: AnswerRoute) -> None:
        self.routes = dict(routes)
        self.fallback = fallback

    def _route(self, ticket: Ticket) -> AnswerRoute:
        return self.routes.get(ticket.channel, self.fallback)

    async def customer_reply(self, session: AsyncSession, ticket: Ticket, *,
                             key: str) -> ReplyChannel | None:
        """A mail in the ticket's mail thread or a message in its Slack thread; None if neither."""
        assert ticket.number is not None
        return await self._route(ticket).reply_channel(session, ticket, key=key)

    async def queue_person_answer(self, session: AsyncSession, ticket: Ticket, body: str, *,
                                  key: str, agent_name: str, now: datetime) -> str | None:
        """Queue an agent's answer on the ticket's own channel; the channel, or None if
        unreachable."""
        assert ticket.number is not None
        route = self._route(ticket)
        text = (signed(body, agent_name, Language(ticket.language)) if route.signs_answers
                else body.strip())
        sent = await route.queue_person_answer(session, ticket, text, key=key,
                                               agent_name=agent_name, now=now)
        return route.channel if sent else None


def signed(body: str, agent_name: str, language: Language) -> str:
    """An agent's answer with their name under it."""
    regards = "Mit freundlichen Grüßen" if language is Language.DE else "Kind regards"
    return f"{body.strip()}\n\n{regards}\n{agent_name or 'NetTask Support'}\nNetTask Support"
