"""Benchmark Slack delivery against the Slack stand-in (tests/fakes/slack_api.py), which keeps
Slack's documented limits: one chat.postMessage a second per channel, then 429 + Retry-After.

Scenarios (each on its own temporary SQLite database, the service in this process):
- burst:  N tickets in S seconds from 5 customer channels (signed events through
  POST /slack/events): triage posts and answers delivered, failed, 429s, order per channel,
  and the time taken against the least Slack's rate allows.
- outage: Slack down for O seconds while M tickets come in and their reminders come due (the
  demo policy: windows of seconds): everything delivered after it, none lost, none twice.
- token:  the token revoked for T seconds while tickets come in (/health sampled), then a
  restart with a new token: the backlog delivered.
- kill:   `intake-bot serve` in a subprocess, SIGKILLed K times at random points of an
  E-event burst and restarted: every post delivered exactly once (the stand-in's messages
  compared with the outbox by their metadata).

Run: `.venv/bin/python bench/slack_delivery.py [--only burst|outage|token] [--tickets 200]
[--seconds 10] [--outage-seconds 900] [--outage-tickets 50] [--token-seconds 120]
[--kill-events 300] [--kills 5] [--seed 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from sqlmodel import col, func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import Service, build  # noqa: E402
from bot.cases.customers_csv import parse_customer_csv  # noqa: E402
from bot.classify.keywords import KeywordClassifier  # noqa: E402
from bot.config import Settings, load_policy  # noqa: E402
from models import migrate  # noqa: E402
from models.customers import upsert_customers  # noqa: E402
from models.db import Database  # noqa: E402
from models.tables import Reminder, SlackCall, Ticket  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.fakes.slack_events import SlackSender  # noqa: E402

SECRET = "bench-signing-secret"
TRIAGE = "C0BENCHTRIAGE"
CHANNELS = [(f"T0BENCH{n}", f"C0BENCH{n}") for n in range(5)]
BODIES = [
    "Hallo, unser Mailserver ist seit heute früh nicht erreichbar, alle Mitarbeiter betroffen.",
    "Hi, how do I fetch our invoices through the API? We want to automate the booking.",
    "Guten Tag, auf der Rechnung für Oktober ist eine Lizenz zu viel berechnet.",
    "Our website returns error 500 since the update last night, customers cannot order.",
]


def customers_csv() -> str:
    rows = ["number,name,emails,slack,contact_24_7,dehosted,m365"]
    rows += [f"B-{n},Bench {n} GmbH,@bench{n}.example,{team}/{channel},,professional,"
             for n, (team, channel) in enumerate(CHANNELS)]
    return "\n".join(rows) + "\n"


def settings_for(tmp: Path, fake: FakeSlack, *, token: str = "xoxb-bench",
                 policy: Path | None = None) -> Settings:
    values: dict[str, Any] = dict(
        database_url=f"sqlite:///{tmp}/intake.db", http_port=0, smtp_port=0,
        outbox_dir=tmp / "outbox", slack_outbox_file=tmp / "slack.jsonl",
        support_addresses="support@nettask.de", classifier="keywords", dkim_dns=False,
        slack_signing_secret=SECRET, slack_bot_token=token, slack_api_url=fake.base_url,
        slack_triage_channel=TRIAGE, slack_agents="U0AGENT", managers_email="leitung@nettask.de",
        flood_max_per_sender=100000, flood_max_per_customer=100000, duplicate_window_minutes=0,
        auto_reply_limit_per_day=100000,
    )
    if policy is not None:
        values["policy_file"] = policy
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def start(settings: Settings, *, seed: bool = True) -> Service:
    service = build(settings, classifier=KeywordClassifier())
    if seed:
        await migrate.upgrade(service.db)
        records = parse_customer_csv(customers_csv(), load_policy(settings.policy_file))
        async with service.db.session() as session:
            await upsert_customers(session, records, now=service.clock())
    await service.start()
    return service


def event(n: int, run: str) -> str:
    team, channel = CHANNELS[n % len(CHANNELS)]
    import json

    ts = f"{int(time.time())}.{n:06d}"
    body = {"type": "event_callback", "team_id": team, "api_app_id": "A0BENCH",
            "event_id": f"Ev{run}{n:06d}", "event_time": int(time.time()),
            "event": {"type": "message", "channel": channel, "user": f"U{team[-1]}{n:06d}",
                      "team": team, "text": f"{BODIES[n % len(BODIES)]} (#{n} {run})",
                      "ts": ts, "event_ts": ts, "channel_type": "channel"}}
    return json.dumps(body)


async def send(port: int, count: int, seconds: float, run: str) -> None:
    """`count` signed events, evenly over `seconds`."""
    sender = SlackSender(port, secret=SECRET)
    began = time.monotonic()
    for n in range(count):
        delay = began + n * seconds / count - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        answer = await sender.event(event(n, run))
        assert answer.status == 200, answer


async def figures(service: Service) -> dict[str, int]:
    async with service.db.reader() as session:
        rows = (await session.exec(select(SlackCall.status, func.count())
                                   .group_by(col(SlackCall.status)))).all()
        tickets = (await session.exec(select(func.count()).select_from(Ticket))).one()
    return {"tickets": int(tickets), **{str(s): int(c) for s, c in rows}}


async def drained(service: Service, tickets: int, timeout: float) -> float:
    """Seconds until `tickets` exist and no Slack call waits (AssertionError on timeout)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        got = await figures(service)
        if got["tickets"] >= tickets and got.get("queued", 0) == 0:
            return time.monotonic() - began
        await asyncio.sleep(0.2)
    raise AssertionError(f"not drained after {timeout:.0f} s: {await figures(service)}")


def twice(fake: FakeSlack) -> int:
    """Posts whose outbox row (by metadata) Slack received more than once."""
    ids = Counter(m["metadata"]["event_payload"]["call"] for m in fake.posted()
                  if m.get("metadata"))
    return sum(n - 1 for n in ids.values() if n > 1)


async def lost(service: Service, fake: FakeSlack) -> int:
    """Posts the outbox holds as sent that Slack never received."""
    async with service.db.reader() as session:
        sent = set((await session.exec(select(SlackCall.id).where(
            SlackCall.status == "sent", SlackCall.method == "chat.postMessage"))).all())
    posted = {m["metadata"]["event_payload"]["call"] for m in fake.posted() if m.get("metadata")}
    return len(sent - posted)


def in_order(fake: FakeSlack) -> bool:
    """Per conversation (a channel's top level, a thread), Slack received the posts in the order
    the outbox queued them (by the row id in their metadata)."""
    seen: dict[tuple[str, str], list[int]] = {}
    for message in fake.posted():  # in the order Slack took them
        if message.get("metadata"):
            conversation = (message["channel"], message["thread_ts"] or "")
            seen.setdefault(conversation, []).append(message["metadata"]["event_payload"]["call"])
    return all(ids == sorted(ids) for ids in seen.values())


async def burst(tickets: int, seconds: float) -> None:
    fake = FakeSlack()
    await fake.start()
    with tempfile.TemporaryDirectory() as tmp:
        service = await start(settings_for(Path(tmp), fake))
        try:
            began = time.monotonic()
            await send(service.http_port, tickets, seconds, "burst")
            await drained(service, tickets, timeout=tickets * 3 + 60)
            took = time.monotonic() - began
            got = await figures(service)
            async with service.db.reader() as session:
                keys = (await session.exec(select(SlackCall.key).where(
                    SlackCall.status == "sent"))).all()
        finally:
            await service.stop()
            await fake.stop()
    per_channel = Counter(m["channel"] for m in fake.posted())
    busiest = max(per_channel.values())
    allowed = busiest - 1  # seconds: one post a second in the busiest channel, first at once
    refused = sum(1 for c in fake.calls if not c.args["_ok"])
    print(f"burst: {tickets} tickets in {seconds:.0f} s from {len(CHANNELS)} channels")
    print(f"  triage posts sent {sum(k.startswith('triage:') for k in keys)}, answers sent "
          f"{sum('answer:' in k for k in keys)} (quotes among them "
          f"{sum(k.startswith('quote:') for k in keys)}), calls failed {got.get('failed', 0)}, "
          f"429s {refused}, posted twice {twice(fake)}, in order per channel {in_order(fake)}")
    print(f"  posts per channel {dict(sorted(per_channel.items()))}")
    print(f"  all delivered after {took:.1f} s; Slack's rate allows {allowed} s in the busiest "
          f"channel ({busiest} posts): {100 * (took / allowed - 1):+.1f} %")


async def outage(tickets: int, down: float) -> None:
    fake = FakeSlack()
    await fake.start()
    policy = ROOT / "bot" / "policy-demo.toml"
    with tempfile.TemporaryDirectory() as tmp:
        service = await start(settings_for(Path(tmp), fake, policy=policy))
        try:
            await fake.stop()
            began = time.monotonic()
            await send(service.http_port, tickets, min(10.0, down / 2), "outage")
            await asyncio.sleep(max(0.0, down - (time.monotonic() - began)))
            during = await figures(service)
            async with service.db.reader() as session:
                reminders = (await session.exec(select(func.count()).select_from(Reminder)
                                                .where(col(Reminder.sent_at).is_not(None)))).one()
            await fake.start()
            back = time.monotonic()
            await drained(service, tickets, timeout=3600)
            took = time.monotonic() - back
            got = await figures(service)
            missing = await lost(service, fake)
        finally:
            await service.stop()
            await fake.stop()
    print(f"outage: Slack down {down:.0f} s while {tickets} tickets came in (demo policy: "
          f"their reminders came due)")
    print(f"  at the end of the outage: {during.get('queued', 0)} calls queued, "
          f"{during.get('failed', 0)} failed, {reminders} reminders fired")
    print(f"  after it: {got.get('sent', 0)} calls sent, {got.get('failed', 0)} failed, "
          f"{got.get('queued', 0)} queued, lost {missing}, posted twice {twice(fake)}, "
          f"drained {took:.1f} s after Slack came back; in order per channel {in_order(fake)}")


async def health(port: int) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/health") as answer:
            return answer.status, await answer.json()


async def token(tickets: int, revoked_for: float) -> None:
    fake = FakeSlack()
    await fake.start()
    fake.revoke("xoxb-old")
    with tempfile.TemporaryDirectory() as tmp:
        service = await start(settings_for(Path(tmp), fake, token="xoxb-old"))
        statuses: Counter[int] = Counter()
        try:
            began = time.monotonic()
            sending = asyncio.create_task(send(service.http_port, tickets, 10, "token"))
            await asyncio.sleep(1)
            while time.monotonic() - began < revoked_for:
                status, body = await health(service.http_port)
                statuses[status] += 1
                await asyncio.sleep(2)
            await sending
            during = await figures(service)
            reason = body["outboxes"]["slack"].get("token_error")
        finally:
            await service.stop()
        service = await start(settings_for(Path(tmp), fake, token="xoxb-new"), seed=False)
        try:
            back = time.monotonic()
            await drained(service, tickets, timeout=600)
            took = time.monotonic() - back
            got = await figures(service)
            after, _ = await health(service.http_port)
        finally:
            await service.stop()
            await fake.stop()
    print(f"token: token_revoked for {revoked_for:.0f} s while {tickets} tickets came in, "
          "then a restart with a new token")
    print(f"  during: /health {dict(statuses)} (sampled every 2 s, reason {reason!r}); "
          f"{during.get('queued', 0)} calls queued, {during.get('failed', 0)} failed")
    print(f"  after the restart: {got.get('sent', 0)} sent, {got.get('failed', 0)} failed in "
          f"{took:.1f} s, /health {after}, posted twice {twice(fake)}, "
          f"in order per channel {in_order(fake)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def serving(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, aiohttp.ClientError):
            await health(port)
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the service did not come up")


async def send_through_kills(port: int, count: int, rate: float, run: str) -> None:
    """Send every event, again after a refused connection (as Slack retries), until a 200."""
    sender = SlackSender(port, secret=SECRET)
    began = time.monotonic()
    for n in range(count):
        await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
        body = event(n, run)
        while True:
            with contextlib.suppress(OSError, aiohttp.ClientError):
                if (await sender.event(body)).status == 200:
                    break
            await asyncio.sleep(0.2)


async def kills(count: int, times: int, seed: int) -> None:
    """`intake-bot serve` SIGKILLed at random points of a burst, restarted each time."""
    fake = FakeSlack()
    # Slack answers a post in 0.3 s: a kill often falls between the call and its record
    fake.latency["chat.postMessage"] = 0.3
    await fake.start()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "customers.csv").write_text(customers_csv(), encoding="utf-8")
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{tmp}/i.db",
               "HTTP_PORT": str(port), "SMTP_PORT": str(free_port()),
               "POLICY_FILE": str(ROOT / "bot" / "policy.toml"), "CLASSIFIER": "keywords",
               "OUTBOX_DIR": str(tmp / "outbox"), "SLACK_OUTBOX_FILE": str(tmp / "s.jsonl"),
               "SUPPORT_ADDRESSES": "support@nettask.de", "DKIM_DNS": "false",
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "xoxb-bench",
               "SLACK_API_URL": fake.base_url, "SLACK_TRIAGE_CHANNEL": TRIAGE,
               "SLACK_AGENTS": "U0AGENT", "FLOOD_MAX_PER_SENDER": "100000",
               "FLOOD_MAX_PER_CUSTOMER": "100000", "DUPLICATE_WINDOW_MINUTES": "0",
               "AUTO_REPLY_LIMIT_PER_DAY": "100000", "LOG_LEVEL": "ERROR"}
        python = [sys.executable, "-m", "bot"]
        subprocess.run([*python, "db", "upgrade"], env=env, cwd=tmp, check=True,
                       capture_output=True)
        subprocess.run([*python, "customers", "import", str(tmp / "customers.csv")], env=env,
                       cwd=tmp, check=True, capture_output=True)

        def launch() -> subprocess.Popen[bytes]:
            return subprocess.Popen([*python, "serve"], env=env, cwd=tmp,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        server = launch()
        await serving(port)
        began = time.monotonic()
        sending = asyncio.create_task(send_through_kills(port, count, 30, "kill"))
        # the triage channel takes one post a second: the burst's posts take ~`count` seconds
        moments = sorted(rng.uniform(1, count * 0.8) for _ in range(times))
        for moment in moments:
            await asyncio.sleep(max(0.0, began + moment - time.monotonic()))
            server.send_signal(signal.SIGKILL)
            server.wait()
            server = launch()
            await serving(port)
        await sending
        db = Database(env["DATABASE_URL"])
        try:
            for _ in range(count * 4):
                async with db.reader() as session:
                    waiting = (await session.exec(select(func.count()).select_from(SlackCall)
                                                  .where(SlackCall.status == "queued"))).one()
                    tickets = (await session.exec(select(func.count())
                                                  .select_from(Ticket))).one()
                if waiting == 0 and tickets >= count:
                    break
                await asyncio.sleep(1)
            async with db.reader() as session:
                posts = (await session.exec(select(SlackCall.id, SlackCall.status).where(
                    SlackCall.method == "chat.postMessage"))).all()
        finally:
            await db.dispose()
            server.send_signal(signal.SIGTERM)
            server.wait()
            await fake.stop()
    received = Counter(m["metadata"]["event_payload"]["call"] for m in fake.posted()
                       if m.get("metadata"))
    rows = {i: status for i, status in posts}
    print(f"kill: `serve` SIGKILLed {times} times at random points (seed {seed}, at "
          f"{', '.join(f'{m:.0f}' for m in moments)} s) of a {count}-event burst")
    print(f"  tickets {tickets}, posts in the outbox {len(rows)} "
          f"({Counter(rows.values())}), received by Slack {sum(received.values())}")
    never = sum(1 for i in rows if not received[i])
    lookups = sum(1 for c in fake.calls if c.method.startswith("conversations."))
    print(f"  delivered exactly once {sum(1 for i in rows if received[i] == 1)}, twice or more "
          f"{sum(1 for n in received.values() if n > 1)}, never {never}, "
          f"received but not in the outbox {len(set(received) - set(rows))}; posts in doubt "
          f"looked up {lookups}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["burst", "outage", "token", "kill"])
    parser.add_argument("--kill-events", type=int, default=300)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--outage-seconds", type=float, default=900)
    parser.add_argument("--outage-tickets", type=int, default=50)
    parser.add_argument("--token-seconds", type=float, default=120)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.only in (None, "burst"):
        await burst(args.tickets, args.seconds)
    if args.only in (None, "outage"):
        await outage(args.outage_tickets, args.outage_seconds)
    if args.only in (None, "token"):
        await token(20, args.token_seconds)
    if args.only in (None, "kill"):
        await kills(args.kill_events, args.kills, args.seed)


if __name__ == "__main__":
    asyncio.run(main())
