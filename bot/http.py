"""The service's HTTP endpoint: health, and Slack's events, interactivity and slash commands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import text

from bot import __version__
from models.db import Database
from models.migrate import current_revision, head_revision

DB_KEY = web.AppKey("db", Database)
SLACK_KEY = web.AppKey("slack", dict[str, object])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def database_state(db: Database) -> dict[str, object]:
    """Whether the database answers, and whether its schema is current."""
    try:
        async with db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        revision = await current_revision(db)
    except Exception as exc:  # any driver error means "not reachable", and is reported
        return {"ok": False, "backend": db.backend, "error": f"{type(exc).__name__}: {exc}"}
    head = head_revision()
    return {
        "ok": revision == head,
        "backend": db.backend,
        "revision": revision,
        "expected_revision": head,
    }


async def health(request: web.Request) -> web.Response:
    """200 with the version and database state when all is well, else 503."""
    state = await database_state(request.app[DB_KEY])
    body = {"status": "ok" if state["ok"] else "degraded", "version": __version__,
            "database": state}
    if SLACK_KEY in request.app:
        body["slack"] = request.app[SLACK_KEY]
    return web.json_response(body, status=200 if state["ok"] else 503)


def make_http_app(db: Database, *, slack_events: Handler | None = None,
                  slack_state: dict[str, object] | None = None) -> web.Application:
    """The aiohttp application with every route of the service."""
    app = web.Application(client_max_size=1024 * 1024)
    app[DB_KEY] = db
    app.router.add_get("/health", health)
    if slack_state is not None:
        app[SLACK_KEY] = slack_state
    if slack_events is not None:
        app.router.add_post("/slack/events", slack_events)
    return app
