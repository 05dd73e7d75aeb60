"""The service as a user starts it: `intake-bot` commands and the HTTP health endpoint."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot import __version__
from bot.app import StartupError, build
from bot.config import Settings
from bot.http import make_http_app
from models.db import Database
from tests.conftest import child_cwd, child_env

pytestmark = pytest.mark.slow  # `intake-bot` child processes

BIN = [sys.executable, "-m", "bot"]


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BIN, *args], env=child_env(env), cwd=child_cwd(), input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


# Ports for child processes, which bind them a moment after they are chosen: below the kernel's
# ephemeral range, so that no port-0 server and no outgoing connection of a parallel test takes
# one meanwhile (or while a killed server restarts on it); a block of 500 per xdist worker,
# each port handed out once per run, from a random start.
PORT_BLOCK = 500
_next_port = itertools.count(random.randrange(PORT_BLOCK))


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for a child process to listen on."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = 20000 + (int(worker) if worker.isdigit() else 0) * PORT_BLOCK
    if base + PORT_BLOCK <= _ephemeral_low():
        for _ in range(PORT_BLOCK):
            port = base + next(_next_port) % PORT_BLOCK
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue  # someone else's: try the next
                return port
    with socket.socket() as sock:  # no room below the ephemeral range: any port
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_health_reports_version_and_database(db: Database, database_url: str) -> None:
    await db.dispose()
    service = build(Settings(database_url=database_url, http_port=0, smtp_port=0,  # type: ignore[arg-type]
                             classifier="keywords", _env_file=None))
    await service.start()
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{service.http_port}/health"
            async with http.get(url) as response:
                body = await response.json()
                assert response.status == 200
    finally:
        await service.stop()
    assert body["version"] == __version__
    assert body["database"]["ok"] is True
    assert body["database"]["backend"] == service.db.backend


async def test_health_is_503_when_the_database_is_unreachable() -> None:
    # nothing listens on port 1 of the loopback: every connection attempt is refused
    db = Database("postgresql://nobody@127.0.0.1:1/none")
    runner = web.AppRunner(make_http_app(db))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/health") as response:
                body = await response.json()
                assert response.status == 503
    finally:
        await runner.cleanup()
        await db.dispose()
    assert body["status"] == "degraded" and body["database"]["ok"] is False
    assert "error" in body["database"]


async def test_start_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    service = build(Settings(database_url=f"sqlite:///{tmp_path}/x.db",  # type: ignore[arg-type]
                             http_port=0, classifier="keywords", _env_file=None))
    with pytest.raises(StartupError, match="intake-bot db upgrade"):
        await service.start()
    await service.stop()


@pytest.mark.alone  # the CLI answers within 5 s, start-up included
def test_serve_end_to_end(tmp_path: Path) -> None:
    """db upgrade, demo customers, serve, /health, SIGTERM: the README's run command's steps."""
    port, smtp = free_port(), free_port()
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/intake.db", "HTTP_PORT": str(port),
           "SMTP_PORT": str(smtp), "OUTBOX_DIR": str(tmp_path / "outbox"),
           "CLASSIFIER": "keywords"}
    assert cli(env, "db", "upgrade").returncode == 0
    imported = cli(env, "customers", "import", "--demo", "--if-empty")
    assert imported.returncode == 0 and "9 new" in imported.stdout
    again = cli(env, "customers", "import", "--demo", "--if-empty")
    assert "nothing imported" in again.stdout
    listed = cli(env, "customers", "list", "--json")
    assert len(listed.stdout.splitlines()) == 9
    server = subprocess.Popen([*BIN, "serve", "--demo"], env=child_env(env), cwd=child_cwd(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    body = json.load(r)
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        assert body is not None and body["status"] == "ok"
        began = time.monotonic()
        sent = cli(env, "mail", "send-test")
        took = time.monotonic() - began
        assert sent.returncode == 0, sent.stderr
        assert ": ticket, NT#1, reply <nt1." in sent.stdout and "(sent)" in sent.stdout
        assert took < 5  # includes the CLI's own start-up; the service answers within a second
        [reply] = list((tmp_path / "outbox" / "new").iterdir())
        assert b"[NT#1] Re: Mailserver nicht erreichbar" in reply.read_bytes()
        listed = cli(env, "mail", "list", "--json")
        [row] = [json.loads(line) for line in listed.stdout.splitlines()]
        assert row["disposition"] == "ticket" and row["ticket"] == "NT#1"
        assert row["from"] == "anna.schmidt@logistik-nord.de"
        shown = cli(env, "tickets", "show", "1", "--json")
        thread = json.loads(shown.stdout)["messages"]
        assert [m["direction"] for m in thread] == ["in", "out"]
        demo = json.loads(shown.stdout)
        assert demo["status"] == "open"  # the demo signature verified the sender
        assert demo["included"] is True
        forged = cli(env, "mail", "send-test", "--unsigned")
        assert forged.returncode == 0, forged.stderr
        second = json.loads(cli(env, "tickets", "show", "2", "--json").stdout)
        assert second["status"] == "unverified"
        assert second["included"] is False
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert "event=started" in err and "event=stopped" in err


def test_serve_with_a_broken_policy_exits_2_naming_the_key(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    shipped = (Path(__file__).parents[2] / "bot" / "policy.toml").read_text(encoding="utf-8")
    policy.write_text(shipped.replace('slot_minutes = 30', 'slot_minutes = "half an hour"'))
    result = cli({"POLICY_FILE": str(policy), "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
                 "serve")
    assert result.returncode == 2
    assert "callbacks.slot_minutes" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_database_url_and_bad_csv_are_clear(tmp_path: Path) -> None:
    bad_url = cli({"DATABASE_URL": "mysql://x@y/z"}, "tickets", "list")
    assert bad_url.returncode == 2 and "sqlite:///path or postgresql://" in bad_url.stderr
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    not_migrated = cli(env, "tickets", "list")
    assert not_migrated.returncode == 1 and "intake-bot db upgrade" in not_migrated.stderr
    csv = tmp_path / "c.csv"
    csv.write_text("number,name,dehosted\nK-1,Acme,gold\n")
    cli(env, "db", "upgrade")
    bad_csv = cli(env, "customers", "import", str(csv))
    assert bad_csv.returncode == 1 and "line 2: dehosted plan 'gold'" in bad_csv.stderr
    missing = cli(env, "tickets", "show", "42")
    assert missing.returncode == 1 and "no ticket NT#42" in missing.stderr
