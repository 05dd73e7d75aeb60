"""`intake-bot outbox list` and `outbox retry ID…|--failed`: what waits in the mail and Slack
outboxes and what failed, and queueing failed ones again. IDs name the outbox: `slack:12`,
`mail:34`."""

from __future__ import annotations

import json
from typing import Any

from bot.cli.db import CommandError, _require_schema, _when
from bot.config import Settings
from models.db import Database
from models.outboxes import list_outbox, requeue_mail, requeue_slack

OUTBOXES = ("slack", "mail")


def parse_ids(ids: list[str]) -> dict[str, list[int]]:
    """`slack:12 mail:34` by outbox; CommandError naming the first id that is not one."""
    parsed: dict[str, list[int]] = {name: [] for name in OUTBOXES}
    for item in ids:
        name, _, number = item.partition(":")
        if name not in parsed or not number.isdigit():
            raise CommandError(f"{item!r} is not an outbox id: write slack:N or mail:N "
                               "(as `intake-bot outbox list` shows them)")
        parsed[name].append(int(number))
    return parsed


async def outbox_list(db: Database, settings: Settings, as_json: bool, everything: bool) -> str:
    """Slack calls and outbound mail that wait or failed (with --all: also those sent)."""
    await _require_schema(db)
    async with db.reader() as session:
        calls, mails = await list_outbox(session, include_sent=everything)
    items: list[dict[str, Any]] = [
        {"id": f"slack:{c.id}", "status": c.status, "ticket": c.ticket_number,
         "what": f"{c.method} {json.loads(c.payload).get('channel') or ''}".strip(),
         "queued": _when(c.created_at, settings), "attempts": c.attempts, "reason": c.reason}
        for c in calls]
    items += [
        {"id": f"mail:{m.id}", "status": m.disposition, "ticket": m.ticket_number,
         "what": f"mail to {m.recipient}", "queued": _when(m.created_at, settings),
         "attempts": m.attempts, "reason": m.reason}
        for m in mails]
    if as_json:
        return "\n".join(json.dumps(item, ensure_ascii=False) for item in items)
    if not items:
        return "nothing waits and nothing failed in either outbox"
    lines = [f"{'id':<12} {'status':<7} {'ticket':<8} {'attempts':>8} {'queued':<25} what"]
    for item in items:
        ticket = f"NT#{item['ticket']}" if item["ticket"] else "-"
        lines.append(f"{item['id']:<12} {item['status']:<7} {ticket:<8} {item['attempts']:>8} "
                     f"{item['queued']:<25} {item['what']}"
                     + (f"\n{'':<13}reason: {item['reason']}" if item["reason"] else ""))
    return "\n".join(lines)


async def outbox_retry(db: Database, settings: Settings, ids: list[str], failed: bool) -> str:
    """Queue failed calls and mails again; the running service sends them within a second."""
    if bool(ids) == failed:
        raise CommandError("name the outbox ids to retry (slack:N mail:N), or --failed for all")
    await _require_schema(db)
    wanted = parse_ids(ids) if ids else None
    async with db.session() as session:
        slack = await requeue_slack(session, ids=wanted["slack"] if wanted else None)
        mail = await requeue_mail(session, ids=wanted["mail"] if wanted else None)
    done = [f"slack:{n}" for n in slack] + [f"mail:{n}" for n in mail]
    if wanted is not None:
        missing = [f"{name}:{n}" for name, numbers in wanted.items() for n in numbers
                   if n not in (slack if name == "slack" else mail)]
        if missing:
            raise CommandError(f"not a failed call or mail: {', '.join(missing)}"
                               + (f" (queued again: {', '.join(done)})" if done else ""))
    return f"queued again: {', '.join(done)}" if done else "nothing had failed"
