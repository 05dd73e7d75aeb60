"""Benchmark the Slack channel: signed events through POST /slack/events of `intake-bot serve`.

Each event is a demo customer's message (one user each) in its mapped channel: stored (200), a
ticket (classified, priced) and its answer is posted into the thread (the outbox writes it to
the JSON-lines file: no workspace needed). Prints events per second (acked; answered) and
latency p50/p99 from sending to the 200 and from sending to the answer's delivery (`done_at`
of its outbox row), at full speed with N concurrent senders and at a fixed rate (10/s).

Run: `.venv/bin/python bench/slack_intake.py [--clients 8] [--events 600] [--rate 10]
[--classifier model|keywords]`. It starts its own server on a temporary SQLite database (or
--database-url), with the flood limits lifted (every event is a new ticket), and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.db import Database  # noqa: E402
from models.tables import SlackCall  # noqa: E402

SECRET = "bench-signing-secret"
BODIES = [
    "Hallo, unser Mailserver ist seit heute früh nicht erreichbar, alle Mitarbeiter betroffen.",
    "Hi, how do I fetch our invoices through the API? We want to automate the booking.",
    "Guten Tag, auf der Rechnung für Oktober ist eine Lizenz zu viel berechnet.",
    "Our website returns error 500 since the update last night, customers cannot order.",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def envelope(run: str, n: int) -> bytes:
    event = {"type": "message", "channel": "C0LOGNORD", "user": f"U{n:07d}", "team": "T0LOGNORD",
             "text": f"{BODIES[n % len(BODIES)]} ({n})", "ts": f"{run}.{n:06d}",
             "channel_type": "channel"}
    return json.dumps({"type": "event_callback", "team_id": "T0LOGNORD", "event_id": f"Ev{run}{n}",
                       "event": event}).encode()


def headers(raw: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256)
    return {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": "v0=" + mac.hexdigest()}


async def send_all(port: int, run: str, numbers: list[int], clients: int,
                   rate: float | None) -> tuple[dict[str, float], list[float]]:
    """Send the events; the wall time each was sent (by channel:ts) and the 200 latencies."""
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    sent: dict[str, float] = {}
    acked: list[float] = []
    start = time.monotonic()
    for i, n in enumerate(numbers):
        queue.put_nowait((n, start + i / rate if rate else start))
    url = f"http://127.0.0.1:{port}/slack/events"

    async def client(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n, at = queue.get_nowait()
            if rate:
                await asyncio.sleep(max(0.0, at - time.monotonic()))
            raw = envelope(run, n)
            began, wall = time.monotonic(), time.time()
            async with http.post(url, data=raw, headers=headers(raw)) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"event {n}: HTTP {response.status}")
            acked.append(time.monotonic() - began)
            sent[f"C0LOGNORD:{run}.{n:06d}"] = wall

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(client(http) for _ in range(clients if not rate else 32)))
    return sent, acked


async def processed(url: str, keys: set[str], timeout: float = 600) -> dict[str, float]:
    """Wait until every event's answer was delivered; when, by the event's channel:ts."""
    db = Database(url)
    deadline = time.monotonic() + timeout
    done: dict[str, float] = {}
    try:
        while time.monotonic() < deadline:
            async with db.reader() as session:
                rows = (await session.exec(select(SlackCall.key, SlackCall.done_at).where(
                    col(SlackCall.key).contains("answer:"), SlackCall.status == "sent"))).all()
            # a quote's answer is keyed quote:answer:<channel:ts>
            done = {key: d.timestamp() for k, d in rows
                    if (key := k.removeprefix("quote:").removeprefix("answer:")) in keys
                    and d is not None}
            if len(done) == len(keys):
                return done
            await asyncio.sleep(0.05)
    finally:
        await db.dispose()
    raise SystemExit(f"only {len(done)} of {len(keys)} events answered in {timeout} s")


def pct(values: list[float], q: int) -> float:
    """The q-th percentile in milliseconds."""
    if len(values) < 2:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


async def measure(port: int, url: str, label: str, count: int, clients: int,
                  rate: float | None) -> None:
    run = f"{int(time.time() * 1000) % 10**9}"
    began = time.monotonic()
    sent, acked = await send_all(port, run, list(range(count)), clients, rate)
    acked_at = time.monotonic()
    done = await processed(url, set(sent))
    finished = time.monotonic()
    latency = [done[k] - sent[k] for k in sent]
    print(f"{label:>22}: {count} events, {count / (acked_at - began):7.1f} acked/s, "
          f"{count / (finished - began):7.1f} answered/s | 200 p50 {pct(acked, 50):6.1f} ms "
          f"p99 {pct(acked, 99):6.1f} ms | answered p50 {pct(latency, 50):6.1f} ms "
          f"p99 {pct(latency, 99):6.1f} ms")


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--clients", type=int, default=8)
    args.add_argument("--events", type=int, default=600)
    args.add_argument("--rate", type=float, default=10.0)
    args.add_argument("--rate-events", type=int, default=200)
    args.add_argument("--database-url", default="")
    args.add_argument("--classifier", default="model", choices=["model", "keywords"])
    opts = args.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = opts.database_url or f"sqlite:///{tmp}/bench.db"
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "HTTP_PORT": str(port),
               "SMTP_PORT": str(free_port()), "OUTBOX_DIR": f"{tmp}/outbox",
               "SLACK_SIGNING_SECRET": SECRET, "SLACK_BOT_TOKEN": "",
               "SLACK_OUTBOX_FILE": f"{tmp}/slack.jsonl", "CLASSIFIER": opts.classifier,
               "FLOOD_MAX_PER_SENDER": "1000000", "FLOOD_MAX_PER_CUSTOMER": "1000000",
               "DUPLICATE_WINDOW_MINUTES": "0", "LOG_LEVEL": "WARNING"}
        python = [sys.executable, "-m", "bot"]
        subprocess.run([*python, "db", "upgrade"], env=env, cwd=ROOT, check=True)
        subprocess.run([*python, "customers", "import", "--demo"], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        server = subprocess.Popen([*python, "serve"], env=env, cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            print(f"database {url.split(':')[0]}, classifier {opts.classifier}, "
                  f"{os.cpu_count()} CPUs")
            asyncio.run(measure(port, url, f"full speed, {opts.clients} clients", opts.events,
                                opts.clients, None))
            asyncio.run(measure(port, url, f"{opts.rate:g} events/s", opts.rate_events,
                                opts.clients, opts.rate))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
