"""Bad MIME structure gets a defined outcome: a ticket flagged for the agents (issue 21, 6).

Over real SMTP to the running service, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.integration.conftest import Running
from tests.unit.test_mime import nested


async def test_a_mail_of_three_thousand_nested_multiparts_is_a_flagged_ticket(
        running: Running) -> None:
    code, _ = await running.send(nested(3000), sender="anna@logistik-nord.de")
    await running.settle()
    [stored] = [m for m in await running.messages() if m.direction == "in"]
    [ticket] = await running.tickets()
    assert code == 250
    assert stored.disposition == "ticket"
    assert "mime_nesting_cut" in ticket.flags.split(",")
