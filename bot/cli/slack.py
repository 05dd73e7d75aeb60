"""`intake-bot slack send-test`: a signed sample event from a demo customer's mapped channel to
the running service, then the ticket it became and the Slack calls it queued ("posted": without
a bot token they are the JSON lines in SLACK_OUTBOX_FILE)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid

from bot.config import Settings
from models.db import Database
from models.messages import find
from models.slack import list_calls

# Used only by `serve --demo` when SLACK_SIGNING_SECRET is empty, and by send-test then: it is
# public (it is in the repository), so a service started with it accepts anyone's events.
DEMO_SIGNING_SECRET = "nettask-demo-only-signing-secret"
DEMO_TRIAGE_CHANNEL = "C0DEMOTRIAGE"
DEMO_CHANNEL, DEMO_TEAM = "C0LOGNORD", "T0LOGNORD"  # Logistik Nord AG in bot/demo_customers.csv
DEMO_TEXT = "Unser Mailserver ist seit heute früh nicht erreichbar, niemand kann Mails senden."


def sample_event(now: float) -> tuple[bytes, str]:
    """A message event from the demo customer's channel; the body and the message's ts."""
    ts = f"{now:.6f}"
    body = {"type": "event_callback", "team_id": DEMO_TEAM, "api_app_id": "A0DEMO",
            "event_id": f"EvDEMO{uuid.uuid4().hex[:12]}", "event_time": int(now),
            "event": {"type": "message", "channel": DEMO_CHANNEL, "user": "U0DEMOKUNDE",
                      "text": DEMO_TEXT, "ts": ts, "event_ts": ts, "team": DEMO_TEAM,
                      "channel_type": "channel"}}
    return json.dumps(body, ensure_ascii=False).encode("utf-8"), ts


def signed_headers(secret: str, body: bytes, now: float) -> dict[str, str]:
    """Slack's v0 signature headers for `body`."""
    stamp = str(int(now))
    digest = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body,
                      hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest}"}


def post_event(settings: Settings, body: bytes, now: float) -> int:
    """POST the signed event to the running service; the HTTP status (OSError if unreachable)."""
    secret = settings.slack_signing_secret.get_secret_value() or DEMO_SIGNING_SECRET
    request = urllib.request.Request(
        f"http://{settings.http_host}:{settings.http_port}/slack/events", data=body,
        headers=signed_headers(secret, body, now), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def describe(db: Database, settings: Settings, external_id: str, seconds: float) -> str:
    """Wait for the stored event to be processed and its calls made; what became of it."""
    deadline = time.monotonic() + seconds
    while True:
        async with db.reader() as session:
            row = await find(session, "in", external_id)
            calls = (await list_calls(session, ticket_number=row.ticket_number)
                     if row is not None and row.ticket_number else [])
        processed = row is not None and row.disposition != "pending"
        if processed and all(c.status != "queued" for c in calls):
            break
        if time.monotonic() > deadline:
            return f"sent {external_id}; not processed after {seconds:.0f} s (see the log)"
        await asyncio.sleep(0.1)
    assert row is not None
    lines = [f"sent {external_id}: {row.disposition}, "
             + (f"ticket NT#{row.ticket_number}" if row.ticket_number else "no ticket")]
    where = (f"(written to {settings.slack_outbox_file})" if settings.slack_mode == "outbox-file"
             else f"(via {settings.slack_api_url})")
    lines.append(f"Slack calls {where}:")
    for call in calls:
        args = json.loads(call.payload)
        first = str(args.get("text", "")).splitlines()[0] if args.get("text") else ""
        lines.append(f"  {call.method} channel={args.get('channel')} "
                     f"thread={args.get('thread_ts') or '-'} {call.status}: {first}")
    return "\n".join(lines)
