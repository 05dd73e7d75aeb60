"""Slash commands: `/nettask NT#12` shows a ticket's state to whoever asks, only to them."""

from __future__ import annotations

import re

from sqlmodel.ext.asyncio.session import AsyncSession

from models.tickets import get_ticket

NUMBER = re.compile(r"^\s*(?:NT#)?(\d+)\s*$", re.I)
USAGE = "Usage: /nettask NT#<number> shows a ticket's status, department, severity and deadline."


async def command_answer(session: AsyncSession, text: str) -> str:
    """The ephemeral answer to a slash command's text."""
    match = NUMBER.match(text)
    if match is None:
        return USAGE
    ticket = await get_ticket(session, int(match.group(1)))
    if ticket is None:
        return f"There is no ticket NT#{match.group(1)}."
    due = ticket.due_at.strftime("%Y-%m-%d %H:%M UTC") if ticket.due_at else "not running"
    return (f"NT#{ticket.number}: {ticket.status}, {ticket.department}, severity "
            f"{ticket.severity}, deadline {due}.")
