"""Benchmark the mail channel against the encoder's own speed, in one run.

Prints: the encoder's own batched rate on the bench's texts at batch sizes 4 to 32, measured in
this process before the server starts (the ratio is taken against the best of them); start-up
time (SMTP accepting, model loaded) and RSS of the serving process(es); then a burst of
real-length mails from N SMTP clients (answered mails/s and its ratio to the encoder's best
rate, CPU time per mail of each serving process, 250 latency while the classifier is
saturated); then a paced run at 80 % of the burst's
answered rate (p50/p99 of the 250 and of 250-to-answer, the answer being the reply file in the
Maildir outbox, so delivery is included).

Run (SQLite in a temporary folder, or --database-url postgresql://...):
    .venv/bin/python bench/email_intake.py [--messages 240] [--clients 8] [--seconds 15]
        [--batch 8] [--quantize] [--workers 2] [--database-url URL] [--classifier keywords]
`--classifier keywords` leaves the model out: what the pipeline itself can do on this machine.
Not part of the tests. The figures are noisy on a shared machine: compare runs made together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiosmtplib

from bot.classify.corpus import load

ENCODER = os.environ.get("ENCODER", "var/models/multilingual-e5-small")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def texts(count: int) -> list[tuple[str, str]]:
    """Real-length mails (mean about 600 characters): four corpus bodies of one topic each."""
    examples = sorted(load(), key=lambda e: e.id)
    mails = []
    for n in range(count):
        first = (n * 4) % (len(examples) - 4)
        parts = [e.body for e in examples[first:first + 4]]
        greeting = "Hallo," if examples[first].language.value == "de" else "Hello,"
        mails.append((examples[first].subject,
                      f"{greeting}\n\n" + "\n\n".join(parts) + "\n\n-- \nIT, Logistik Nord"))
    return mails


def mail(run: str, n: int, subject: str, body: str) -> bytes:
    return (f"From: user{n}@logistik-nord.de\r\nTo: support@nettask.de\r\n"
            f"Subject: {subject}\r\nMessage-ID: <bench-{run}-{n}@logistik-nord.de>\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n").replace("\n", "\r\n").replace(
                "\r\r\n", "\r\n").encode()


def encoder_rate(mails: list[tuple[str, str]], batch: int, threads: int,
                 quantize: bool, max_tokens: int) -> float:
    """The encoder alone: texts/s in batches sorted by length, as the classifier sees them."""
    from bot.classify.encoder import Encoder

    encoder = Encoder(ENCODER, max_tokens=max_tokens, threads=threads, quantize=quantize)
    items = sorted((f"{s}\n{b}".strip() for s, b in mails), key=len)
    encoder.embed(items[:8])  # warm up
    began = time.perf_counter()
    for start in range(0, len(items), batch):
        encoder.embed(items[start:start + batch])
    rate = len(items) / (time.perf_counter() - began)
    del encoder
    gc.collect()
    return rate


class OutboxWatcher(threading.Thread):
    """Notes when each reply file appears, by its In-Reply-To. The folder is checked every
    2 ms and listed when its mtime changed, or 10 ms after the last listing (the mtime ticks
    coarsely, so two new files may share one). Listing it every 2 ms took CPU and the GIL
    from the clients whose 250s this process measures."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.folder = folder
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        known: set[str] = set()
        changed, listed = -1, 0.0
        while not self.stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                mtime = self.folder.stat().st_mtime_ns
                if mtime == changed and time.monotonic() - listed < 0.01:
                    time.sleep(0.002)
                    continue
                changed, listed = mtime, time.monotonic()
                for name in os.listdir(self.folder):
                    if name not in known:
                        known.add(name)
                        now = time.monotonic()
                        head = (self.folder / name).read_bytes().split(b"\r\n\r\n", 1)[0]
                        found = re.search(rb"(?im)^in-reply-to:\s*(<[^>]+>)", head)
                        if found:
                            self.seen[found.group(1).decode()] = now
            time.sleep(0.002)


async def send_all(port: int, run: str, mails: list[tuple[str, str]], clients: int,
                   rate: float | None) -> tuple[dict[str, float], list[float]]:
    """Send the mails; when each got its 250 (by Message-ID), and how long each 250 took."""
    queue: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
    accepted: dict[str, float] = {}
    took: list[float] = []
    start = time.monotonic()
    for n in range(len(mails)):
        queue.put_nowait((n, start + n / rate if rate else 0.0))

    async def client() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=120)
        await smtp.connect()
        try:
            while not queue.empty():
                n, at = queue.get_nowait()
                delay = at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                began = time.monotonic()
                await smtp.sendmail(f"user{n}@logistik-nord.de", ["support@nettask.de"],
                                    mail(run, n, *mails[n]))
                done = time.monotonic()
                took.append(done - began)
                accepted[f"<bench-{run}-{n}@logistik-nord.de>"] = done
        finally:
            await smtp.quit()

    await asyncio.gather(*[client() for _ in range(clients)])
    return accepted, took


async def answered(watcher: OutboxWatcher, accepted: dict[str, float],
                   timeout: float = 600) -> list[float]:
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


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
            return dict(json.loads(answer.read()))
    except OSError:
        return None


def smtp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(64).startswith(b"220")
    except OSError:
        return False


def wait_ready(server: subprocess.Popen[bytes], smtp_port: int, http_port: int,
               began: float, timeout: float = 300) -> tuple[float, float]:
    """Seconds until SMTP answers 220, and until the model is loaded (polled, not fixed)."""
    smtp_at = model_at = 0.0
    while time.monotonic() - began < timeout:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}")
        if not smtp_at and smtp_accepts(smtp_port):
            smtp_at = time.monotonic() - began
        state = health(http_port)
        if smtp_at and state is not None:
            # Before issue 11 the service only listened once the model was loaded.
            if state.get("model", {"loaded": True}).get("loaded"):
                model_at = time.monotonic() - began
                return smtp_at, model_at
        time.sleep(0.02)
    raise SystemExit(f"not ready after {timeout} s")


def start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """`intake-bot work` processes, once each says on stdout that its model is loaded."""
    workers = [subprocess.Popen([sys.executable, "-m", "bot", "work"], env=env,
                                stdout=subprocess.PIPE) for _ in range(count)]
    for worker in workers:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        if b"ready" not in line:
            raise SystemExit(f"a worker did not start: {line!r}")
    return workers


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--messages", type=int, default=240)
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the paced run")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--quantize", action="store_true", help="CLASSIFIER_QUANTIZE=true")
    parser.add_argument("--classifier", choices=("model", "keywords"), default="model",
                        help="keywords: the pipeline's own capacity, without the model")
    parser.add_argument("--threads", type=int, default=2, help="TORCH_THREADS")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8,
                        help="CLASSIFIER_BATCH, and the batch of the encoder-alone rate")
    parser.add_argument("--workers", type=int, default=1,
                        help="classifying processes: serve plus N-1 `intake-bot work`")
    args = parser.parse_args()

    mails = texts(args.messages)
    # Every size, so that the ratio is taken against the encoder at its own best, not only at
    # the size the service uses.
    alone = {size: encoder_rate(mails, size, args.threads, args.quantize, args.max_tokens)
             for size in sorted({4, 8, 16, 32, args.batch})} if args.classifier == "model" else {}
    best = max(alone, key=lambda size: alone[size]) if alone else 0
    encoder = alone.get(best, float("nan"))

    work = Path(tempfile.mkdtemp(prefix="bench-mail-"))
    url = args.database_url or f"sqlite:///{work}/bench.db"
    smtp_port, http_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": url, "SMTP_PORT": str(smtp_port),
           "HTTP_PORT": str(http_port), "OUTBOX_DIR": str(work / "outbox"),
           "LOG_LEVEL": "WARNING", "CLASSIFIER": args.classifier,
           "ENCODER": str(Path(ENCODER).resolve()),
           "CLASSIFIER_QUANTIZE": str(args.quantize).lower(), "TORCH_THREADS": str(args.threads),
           "CLASSIFIER_MAX_TOKENS": str(args.max_tokens), "CLASSIFIER_BATCH": str(args.batch),
           # 160 different users of one customer within seconds: throughput, not flood control
           "FLOOD_MAX_PER_CUSTOMER": "1000000", "FLOOD_MAX_PER_SENDER": "1000000",
           "DUPLICATE_WINDOW_MINUTES": "0", "SLACK_OUTBOX_FILE": str(work / "slack.jsonl")}
    for command in (["db", "upgrade"], ["customers", "import", "--demo", "--if-empty"]):
        subprocess.run([sys.executable, "-m", "bot", *command], env=env, check=True,
                       capture_output=True)
    began = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env)
    workers: list[subprocess.Popen[bytes]] = []
    watcher = OutboxWatcher(work / "outbox" / "new")
    watcher.start()
    try:
        smtp_at, model_at = wait_ready(server, smtp_port, http_port, began)
        workers = start_workers(args.workers - 1, env)
        rss_loaded = rss_mib(server.pid)
        run = f"{os.getpid()}-{int(time.time())}"
        start = time.monotonic()
        cpu_before = [cpu_seconds(p.pid) for p in [server, *workers]]
        accepted, burst_250 = await send_all(smtp_port, f"burst-{run}", mails, args.clients,
                                             None)
        await answered(watcher, accepted)
        burst_cpu = [cpu_seconds(p.pid) - before
                     for p, before in zip([server, *workers], cpu_before, strict=True)]
        total = max(watcher.seen[i] for i in accepted) - start
        rate = len(mails) / total
        offered = 0.8 * rate
        paced_mails = [mails[n % len(mails)] for n in range(max(1, int(offered * args.seconds)))]
        accepted, paced_250 = await send_all(smtp_port, f"paced-{run}", paced_mails,
                                             args.clients, offered)
        paced = await answered(watcher, accepted)
        peak = [rss_mib(p.pid, "VmHWM") for p in [server, *workers]]
    finally:
        watcher.stop.set()
        for process in [*workers, server]:
            process.terminate()
        for process in [*workers, server]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)

    if not args.database_url:
        shutil.rmtree(work, ignore_errors=True)
    width = 44
    rows: list[tuple[str, str]] = [
        ("database", url.split(":")[0]),
        ("encoder", f"{'int8' if args.quantize else 'fp32'}, {args.threads} threads, "
                    f"{args.max_tokens} tokens" if args.classifier == "model" else "none"),
        ("classifying processes", str(args.workers)),
        ("mails (mean characters)",
         f"{len(mails)} ({statistics.mean(len(s) + len(b) for s, b in mails):.0f})"),
        ("encoder alone by batch size (texts/s)",
         " ".join(f"{size}:{rate:.1f}" for size, rate in alone.items())),
        (f"encoder alone, best (batch {best}) (texts/s)", f"{encoder:.1f}"),
        ("service batch (CLASSIFIER_BATCH)", str(args.batch)),
        ("start-up: SMTP accepts (s)", f"{smtp_at:.2f}"),
        ("start-up: model loaded (s)", f"{model_at:.2f}"),
        ("RSS with the model, serve (MiB)", f"{rss_loaded:.0f}"),
        ("peak RSS per process (MiB)", " ".join(f"{p:.0f}" for p in peak)),
        ("burst: answered mails/s", f"{rate:.1f}"),
        ("burst: ratio to the encoder alone (best)", f"{rate / encoder:.2f}"),
        ("burst: ratio to the encoder alone at 32", f"{rate / alone.get(32, float('nan')):.2f}"),
        ("burst: CPU per mail, per process (ms)",
         " ".join(f"{1000 * cpu / len(mails):.0f}" for cpu in burst_cpu)),
        ("burst: 250 p50 / p99 (ms)",
         f"{1000 * statistics.median(burst_250):.0f} / {1000 * pct(burst_250, 0.99):.0f}"),
        (f"paced {offered:.1f}/s (80 %): mails", str(len(paced_mails))),
        ("paced: 250 p50 / p99 (ms)",
         f"{1000 * statistics.median(paced_250):.0f} / {1000 * pct(paced_250, 0.99):.0f}"),
        ("paced: 250-to-answer p50 / p99 (ms)",
         f"{1000 * statistics.median(paced):.0f} / {1000 * pct(paced, 0.99):.0f}"),
    ]
    for label, value in rows:
        print(f"{label:<{width}} {value:>22}")


if __name__ == "__main__":
    asyncio.run(main())
