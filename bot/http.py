"""The service's HTTP endpoint: health now; the Slack events endpoint joins it later."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from sqlalchemy import text

from bot import __version__
from models.db import Database
from models.migrate import current_revision, head_revision

DB_KEY = web.AppKey("db", Database)
ModelState = Callable[[], dict[str, object]]
MODEL_KEY: web.AppKey[ModelState] = web.AppKey("model_state")


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
    model = request.app[MODEL_KEY]()  # loading is not degraded (mail is accepted); failing is
    ok = bool(state["ok"]) and "error" not in model
    body = {"status": "ok" if ok else "degraded", "version": __version__,
            "database": state, "model": model}
    return web.json_response(body, status=200 if ok else 503)


def make_http_app(db: Database, *,
                  model_state: ModelState | None = None) -> web.Application:
    """The aiohttp application with every route of the service."""
    app = web.Application(client_max_size=1024 * 1024)
    app[DB_KEY] = db
    app[MODEL_KEY] = model_state or (lambda: {"loaded": True})
    app.router.add_get("/health", health)
    return app
