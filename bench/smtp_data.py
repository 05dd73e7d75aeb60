"""Benchmark reading DATA: seconds and MB/s for a large message in short lines and in one
long line, through IntakeSMTP (no line-length limit) and, for short lines, aiosmtpd's own
SMTP class as the baseline. The handler only counts bytes: this measures the protocol layer.

Run: `.venv/bin/python bench/smtp_data.py [--megabytes 20] [--rounds 3]`. Not part of the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

from bot.intake.mail.smtp_server import IntakeSMTP, SessionLimits


class Counting:
    """Accepts every message and remembers its size."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.sizes.append(len(envelope.original_content or b""))
        return "250 OK"


def message(megabytes: int, line: int) -> bytes:
    """A message of about this size whose body lines are `line` bytes long."""
    head = b"From: a@example.org\r\nTo: support@nettask.de\r\nSubject: bench\r\n\r\n"
    body_line = b"x" * line + b"\r\n"
    return head + body_line * max(1, megabytes * 1024 * 1024 // len(body_line))


async def measure(factory: Any, raw: bytes, rounds: int) -> float:
    """Median seconds to send `raw` over SMTP on 127.0.0.1."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    times = []
    try:
        for _ in range(rounds):
            began = time.perf_counter()
            await aiosmtplib.send(raw, sender="a@example.org", recipients=["support@nettask.de"],
                                  hostname="127.0.0.1", port=port, timeout=300)
            times.append(time.perf_counter() - began)
    finally:
        server.close()
        await server.wait_closed()
    return statistics.median(times)


async def main(megabytes: int, rounds: int) -> None:
    handler = Counting()
    limits = SessionLimits(per_address=50, total=200)
    size_limit = (megabytes + 1) * 1024 * 1024

    def ours() -> SMTP:
        return IntakeSMTP(handler, limits=limits, data_max_seconds=3600, offer_auth=False,
                          data_size_limit=size_limit, hostname="bench.test")

    def library() -> SMTP:
        return SMTP(handler, data_size_limit=size_limit, hostname="bench.test")

    cases = [("IntakeSMTP", "76-byte lines", ours, 76),
             ("IntakeSMTP", "one long line", ours, megabytes * 1024 * 1024),
             ("aiosmtpd SMTP", "76-byte lines", library, 76)]
    print(f"{'server':<14} {'body':<14} {'MB':>5} {'seconds':>8} {'MB/s':>7}")
    for name, shape, factory, line in cases:
        raw = message(megabytes, line)
        seconds = await measure(factory, raw, rounds)
        assert handler.sizes[-1] == len(raw), "the message arrived incomplete"
        mb = len(raw) / 1024 / 1024
        print(f"{name:<14} {shape:<14} {mb:>5.1f} {seconds:>8.2f} {mb / seconds:>7.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.megabytes, arguments.rounds))
