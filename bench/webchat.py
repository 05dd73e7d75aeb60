"""Benchmark the web chat: N concurrent visitors on /chat/ws of `intake-bot serve`, each
sending M messages and waiting for each ack.

Every ack is checked against the database at once, through a connection of the benchmark's own
(the item must be there when its ack arrives: stored before acked), and at the end every acked
client id must be stored exactly once. Prints p50/p99 ack time, lost and duplicated counts, and
the server's resident memory (VmRSS and its peak VmHWM, from /proc/PID/status). Exits 1 when a
message is lost, stored twice or acked before it was visible.

Run: `nice -n 19 .venv/bin/python bench/webchat.py [--visitors 200] [--messages 3]
[--database-url postgresql://...]`. It starts its own server on a free port with a temporary
SQLite database (or --database-url, which must be migrated or empty) and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
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
from collections import Counter
from pathlib import Path

import aiohttp
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.db import Database  # noqa: E402
from models.tables import Message, WebItem  # noqa: E402

TEXTS = ["Der Drucker im Empfang druckt nicht mehr.", "Our VPN drops every ten minutes.",
         "Bitte ein Angebot für zwei weitere Lizenzen.", "Outlook fragt ständig nach dem Passwort."]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory(pid: int) -> dict[str, str]:
    """VmRSS and VmHWM of a process, as /proc says them."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = " ".join(value.split())
    return found


class Tally:
    """What the visitors saw."""

    def __init__(self) -> None:
        self.ack_seconds: list[float] = []
        self.acked: dict[tuple[str, str], int] = {}  # (visitor token, client id) -> item id
        self.not_visible: list[int] = []
        self.refused: list[str] = []
        self.pushed = 0  # our answers that arrived while a visitor waited for an ack


async def visitor(n: int, url: str, origin: str, messages: int, http: aiohttp.ClientSession,
                  checker: Database, tally: Tally, start: asyncio.Event) -> None:
    """One visitor: hello, then each message and its ack, checked in the database at once."""
    await start.wait()
    async with http.ws_connect(url, origin=origin) as ws:
        await ws.send_json({"type": "hello", "visitor": None, "identity": None, "lang": "de"})
        welcome = json.loads((await ws.receive(timeout=60)).data)
        token = welcome["visitor"]
        for m in range(messages):
            client_id = f"v{n}-m{m}"
            began = time.monotonic()
            await ws.send_str(json.dumps({"type": "message", "client_id": client_id,
                                          "text": f"{TEXTS[(n + m) % len(TEXTS)]} ({n}/{m})"},
                                         ensure_ascii=False))
            answer = json.loads((await ws.receive(timeout=60)).data)
            while answer.get("type") == "item":  # our answer to an earlier message, pushed
                tally.pushed += 1
                answer = json.loads((await ws.receive(timeout=60)).data)
            if answer.get("type") != "ack" or answer.get("client_id") != client_id:
                tally.refused.append(f"{client_id}: {answer}")
                continue
            tally.ack_seconds.append(time.monotonic() - began)
            tally.acked[(token, client_id)] = int(answer["id"])
            async with checker.reader() as session:
                if await session.get(WebItem, int(answer["id"])) is None:
                    tally.not_visible.append(int(answer["id"]))


async def run(port: int, url: str, visitors: int, messages: int) -> tuple[Tally, float]:
    tally = Tally()
    checker = Database(url)
    start = asyncio.Event()
    origin = f"http://127.0.0.1:{port}"
    connector = aiohttp.TCPConnector(limit=0)  # one connection per visitor, all at once
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = [asyncio.create_task(visitor(n, f"{origin}/chat/ws", origin, messages, http,
                                             checker, tally, start)) for n in range(visitors)]
        began = time.monotonic()
        start.set()
        await asyncio.gather(*tasks)
        wall = time.monotonic() - began
    await checker.dispose()
    return tally, wall


async def stored(url: str) -> tuple[Counter[str], Counter[str]]:
    """Every in item's client id (per visitor) and every web message's external id, counted."""
    db = Database(url)
    try:
        async with db.reader() as session:
            items = (await session.exec(select(WebItem.visitor_id, WebItem.client_id).where(
                WebItem.direction == "in"))).all()
            rows = (await session.exec(select(Message.external_id).where(
                col(Message.channel) == "web"))).all()
    finally:
        await db.dispose()
    return Counter(f"{v}:{c}" for v, c in items), Counter(rows)


def pct(values: list[float], q: int) -> float:
    """The q-th percentile in milliseconds."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def main() -> int:
    args = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    args.add_argument("--visitors", type=int, default=200)
    args.add_argument("--messages", type=int, default=3)
    args.add_argument("--database-url", default="")
    opts = args.parse_args()
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    with tempfile.TemporaryDirectory() as tmp:
        url = opts.database_url or f"sqlite:///{tmp}/bench.db"
        port = free_port()
        keep = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
        env = {**keep, "PYTHONPATH": str(ROOT), "DATABASE_URL": url, "HTTP_PORT": str(port),
               "SMTP_PORT": str(free_port()), "OUTBOX_DIR": f"{tmp}/outbox",
               "SLACK_OUTBOX_FILE": f"{tmp}/slack.jsonl", "CLASSIFIER": "keywords",
               "WEBCHAT_ORIGINS": f"http://127.0.0.1:{port}", "LOG_LEVEL": "WARNING",
               "REMINDERS_ENABLED": "false",
               # every simulated visitor comes from 127.0.0.1: one address, all of them new
               "WEBCHAT_NEW_VISITORS_PER_HOUR": str(max(opts.visitors, 1))}
        python = [sys.executable, "-m", "bot"]
        # cwd: an empty folder, so no developer's .env is read
        subprocess.run([*python, "db", "upgrade"], env=env, cwd=tmp, check=True,
                       capture_output=True)
        server = subprocess.Popen([*python, "serve"], env=env, cwd=tmp)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.1)
            idle, cpu = memory(server.pid), cpu_seconds(server.pid)
            tally, wall = asyncio.run(run(port, url, opts.visitors, opts.messages))
            loaded, cpu = memory(server.pid), cpu_seconds(server.pid) - cpu
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        items, rows = asyncio.run(stored(url))
    sent = opts.visitors * opts.messages
    lost = sent - len(items)
    twice = sum(n - 1 for n in items.values() if n > 1) + sum(n - 1 for n in rows.values() if n > 1)
    print(f"database {url.split(':')[0]}, {os.cpu_count()} CPUs, {opts.visitors} concurrent "
          f"visitors x {opts.messages} messages = {sent}")
    print(f"acked {len(tally.acked)} of {sent} in {wall:.2f} s ({len(tally.acked) / wall:.0f}/s), "
          f"refused {len(tally.refused)}, answers pushed meanwhile {tally.pushed}")
    print(f"ack time p50 {pct(tally.ack_seconds, 50):.1f} ms, p99 {pct(tally.ack_seconds, 99):.1f} "
          f"ms, max {max(tally.ack_seconds) * 1000:.1f} ms")
    print(f"server CPU {cpu:.2f} s for the run ({cpu / sent * 1000:.1f} ms a message, hellos "
          f"included); load average before the run {load}")
    print(f"stored items {len(items)}, web messages {len(rows)}: lost {lost}, twice {twice}, "
          f"acked but not yet visible {len(tally.not_visible)}")
    print(f"server memory: idle VmRSS {idle['VmRSS']}; after the run VmRSS {loaded['VmRSS']}, "
          f"peak VmHWM {loaded['VmHWM']}")
    for line in tally.refused[:5]:
        print("refused:", line)
    return 1 if lost or twice or tally.not_visible or tally.refused else 0


if __name__ == "__main__":
    raise SystemExit(main())
