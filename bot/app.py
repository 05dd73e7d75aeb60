"""Composition root: build the adapters from Settings, start and stop the service."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from aiohttp import web

from bot import __version__
from bot.config import Settings, load_policy
from bot.http import make_http_app
from bot.sla.engine import Engine
from models.db import Database
from models.migrate import current_revision, head_revision

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The service cannot start; the message says why in one sentence."""


@dataclass
class Service:
    """The running parts of the service."""

    settings: Settings
    engine: Engine
    db: Database
    runner: web.AppRunner | None = None

    @property
    def http_port(self) -> int:
        """The port the HTTP server listens on (useful when configured as 0)."""
        assert self.runner is not None
        return int(self.runner.addresses[0][1])

    async def start(self) -> None:
        """Check the database schema, then open the HTTP endpoint."""
        revision = await current_revision(self.db)
        if revision != head_revision():
            raise StartupError(
                f"the database schema is at revision {revision or 'none'}, the code needs "
                f"{head_revision()}: run `intake-bot db upgrade` first"
            )
        self.runner = web.AppRunner(make_http_app(self.db), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.settings.http_host, self.settings.http_port)
        await site.start()
        log.info(
            "event=started version=%s http=%s:%s database=%s",
            __version__, self.settings.http_host, self.http_port, self.db.backend,
        )

    async def stop(self) -> None:
        """Close the endpoint and the database pool."""
        if self.runner is not None:
            await self.runner.cleanup()
        await self.db.dispose()
        log.info("event=stopped")


def build(settings: Settings) -> Service:
    """Load the policy and connect the store; PolicyError or DatabaseUrlError on bad input."""
    engine = Engine(load_policy(settings.policy_file))
    db = Database(settings.database_url.get_secret_value())
    return Service(settings=settings, engine=engine, db=db)


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM."""
    service = build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
        await stop.wait()
    finally:
        await service.stop()
