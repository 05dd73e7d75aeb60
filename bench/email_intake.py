"""Benchmark the mail channel: N concurrent SMTP clients against a running `intake-bot serve`.

Prints messages per second (accepted, and answered: until the last reply is in the outbox)
and latency p50/p99 from the client's 250 after DATA to the reply's file appearing in the
Maildir outbox (so delivery is included: an upper bound of "reply queued"), at full speed
and at a fixed rate. The classifier (--classifier model, the default, or keywords) is in the path.

Run: `.venv/bin/python bench/email_intake.py [--clients 8] [--messages 600] [--rate 20]`.
It starts its own server on a temporary SQLite database (or --database-url) and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import aiosmtplib

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


def mail(run: str, n: int) -> bytes:
    return (f"From: user{n}@logistik-nord.de\r\nTo: support@nettask.de\r\n"
            f"Subject: Anfrage {n}\r\nMessage-ID: <bench-{run}-{n}@logistik-nord.de>\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n\r\n{BODIES[n % len(BODIES)]}\r\n"
            ).encode()


class OutboxWatcher(threading.Thread):
    """Notes when each reply file appears (polled every 2 ms), by its In-Reply-To."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.folder = folder
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        known: set[str] = set()
        while not self.stop.is_set():
            if self.folder.exists():
                for name in os.listdir(self.folder):
                    if name not in known:
                        known.add(name)
                        now = time.monotonic()
                        head = (self.folder / name).read_bytes().split(b"\r\n\r\n", 1)[0]
                        found = re.search(rb"(?im)^in-reply-to:\s*(<[^>]+>)", head)
                        if found:
                            self.seen[found.group(1).decode()] = now
            time.sleep(0.002)


async def send_all(port: int, run: str, numbers: list[int], clients: int,
                   rate: float | None) -> dict[str, float]:
    """Send the mails; the monotonic time each got its 250, by Message-ID."""
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    accepted: dict[str, float] = {}
    start = time.monotonic()
    for i, n in enumerate(numbers):
        queue.put_nowait((n, start + i / rate if rate else 0.0))

    async def client() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await smtp.connect()
        try:
            while not queue.empty():
                n, at = queue.get_nowait()
                delay = at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await smtp.sendmail(f"user{n}@logistik-nord.de", ["support@nettask.de"],
                                    mail(run, n))
                accepted[f"<bench-{run}-{n}@logistik-nord.de>"] = time.monotonic()
        finally:
            await smtp.quit()

    await asyncio.gather(*[client() for _ in range(clients)])
    return accepted


async def latencies(watcher: OutboxWatcher, accepted: dict[str, float],
                    timeout: float = 300) -> list[float]:
    """Seconds from 250 to reply file, once every accepted mail has its reply."""
    deadline = time.monotonic() + timeout
    while not all(i in watcher.seen for i in accepted):
        if time.monotonic() > deadline:
            done = sum(i in watcher.seen for i in accepted)
            raise SystemExit(f"only {done} of {len(accepted)} replies after {timeout} s")
        await asyncio.sleep(0.01)
    return [watcher.seen[i] - at for i, at in accepted.items()]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--rate", type=float, default=20.0, help="messages/s of the paced run")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the paced run")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--classifier", default="model", choices=["model", "keywords"])
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    url = args.database_url or f"sqlite:///{work}/bench.db"
    smtp_port, http_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": url, "SMTP_PORT": str(smtp_port),
           "HTTP_PORT": str(http_port), "OUTBOX_DIR": str(work / "outbox"),
           "LOG_LEVEL": "WARNING", "CLASSIFIER": args.classifier}
    for command in (["db", "upgrade"], ["customers", "import", "--demo", "--if-empty"]):
        subprocess.run([sys.executable, "-m", "bot", *command], env=env, check=True,
                       capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env)
    if os.environ.get("BENCH_PROFILE"):
        subprocess.Popen(["py-spy", "record", "-p", str(server.pid), "-o",
                          os.environ["BENCH_PROFILE"], "-f", "raw", "-d", "25"])
    watcher = OutboxWatcher(work / "outbox" / "new")
    watcher.start()
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        began = time.monotonic()
        accepted = await send_all(smtp_port, "burst", list(range(args.messages)), args.clients,
                                  None)
        sent = time.monotonic() - began
        burst = await latencies(watcher, accepted)
        total = max(watcher.seen[i] for i in accepted) - began
        paced_count = int(args.rate * args.seconds)
        accepted = await send_all(smtp_port, "paced", list(range(paced_count)), args.clients,
                                  args.rate)
        paced = await latencies(watcher, accepted)
    finally:
        watcher.stop.set()
        server.terminate()
        server.wait(timeout=30)

    print(f"{'run':<34} {'value':>10}")
    print(f"{'clients':<34} {args.clients:>10}")
    print(f"{'burst: messages':<34} {args.messages:>10}")
    print(f"{'burst: accepted per second (250)':<34} {args.messages / sent:>10.1f}")
    print(f"{'burst: answered per second':<34} {args.messages / total:>10.1f}")
    print(f"{'burst: latency p50 (ms)':<34} {1000 * statistics.median(burst):>10.0f}")
    print(f"{'burst: latency p99 (ms)':<34} {1000 * pct(burst, 0.99):>10.0f}")
    label = f"paced {args.rate:g}/s:"
    print(f"{label + ' messages':<34} {paced_count:>10}")
    print(f"{label + ' latency p50 (ms)':<34} {1000 * statistics.median(paced):>10.0f}")
    print(f"{label + ' latency p99 (ms)':<34} {1000 * pct(paced, 0.99):>10.0f}")
    print(f"database: {url.split(':')[0]}, classifier: {args.classifier}")


if __name__ == "__main__":
    asyncio.run(main())
