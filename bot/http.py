"""The service's HTTP endpoint: health, and Slack's events, interactivity and slash commands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import text

from bot import __version__
from bot.config import Settings
from bot.intake.web.pages import DemoIdentity, add_chat_pages
from models.db import Database
from models.migrate import current_revision, head_revision

DB_KEY = web.AppKey("db", Database)
ModelState = Callable[[], dict[str, object]]
MODEL_KEY: web.AppKey[ModelState] = web.AppKey("model_state")
SlackState = Callable[[], dict[str, object]]
SLACK_KEY: web.AppKey[SlackState] = web.AppKey("slack_state")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# the outboxes' state for /health, and whether they are healthy
OutboxState = Callable[[], Awaitable[tuple[dict[str, object], bool]]]
OUTBOX_KEY: web.AppKey[OutboxState] = web.AppKey("outbox_state")


# The service's pages run only our own files: no inline script or style, no other origin, no
# framing; the chat's socket is the one connection they open.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every response gets the Content-Security-Policy and X-Content-Type-Options nosniff."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # 404, 405, …: raised, and still a response
        _secure(exc)
        raise
    if not response.prepared:  # a WebSocket (or a stream) has sent its headers already
        _secure(response)
    return response


def _secure(response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"


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
    if SLACK_KEY in request.app:
        body["slack"] = request.app[SLACK_KEY]()
    if OUTBOX_KEY in request.app and state["ok"]:
        body["outboxes"], outboxes_ok = await request.app[OUTBOX_KEY]()
        if not outboxes_ok:
            ok = False
            body["status"] = "degraded"
    return web.json_response(body, status=200 if ok else 503)


def make_http_app(db: Database, *, max_request_bytes: int = 1024 * 1024,
                  model_state: ModelState | None = None, slack_events: Handler | None = None,
                  slack_state: SlackState | None = None,
                  outbox_state: OutboxState | None = None,
                  chat_socket: Handler | None = None,
                  chat_identity: DemoIdentity | None = None) -> web.Application:
    """The aiohttp application with every route of the service."""
    app = web.Application(client_max_size=max_request_bytes, middlewares=[security_headers])
    if outbox_state is not None:
        app[OUTBOX_KEY] = outbox_state
    app[DB_KEY] = db
    app[MODEL_KEY] = model_state or (lambda: {"loaded": True})
    app.router.add_get("/health", health)
    if slack_state is not None:
        app[SLACK_KEY] = slack_state
    if slack_events is not None:
        app.router.add_post("/slack/events", slack_events)
    if chat_socket is not None:
        app.router.add_get("/chat/ws", chat_socket)  # the web chat (docs/webchat-protocol.md)
    add_chat_pages(app, chat_identity)
    return app


def http_runner(settings: Settings, db: Database, *, model_state: ModelState | None = None,
                slack_events: Handler | None = None,
                slack_state: SlackState | None = None,
                outbox_state: OutboxState | None = None,
                chat_socket: Handler | None = None,
                chat_identity: DemoIdentity | None = None) -> web.AppRunner:
    """The runner with the server's limits: a client that has not sent a whole request head
    within HTTP_HEADER_TIMEOUT_SECONDS of connecting (or of its last response) is dropped."""
    # aiohttp's keep-alive timer runs from the connection's start and closes a connection that
    # is still waiting for a complete request: exactly a header-read timeout.
    return web.AppRunner(
        make_http_app(db, max_request_bytes=settings.http_max_request_bytes,
                      model_state=model_state, slack_events=slack_events,
                      slack_state=slack_state, outbox_state=outbox_state,
                      chat_socket=chat_socket,
                      chat_identity=chat_identity),
        access_log=None, keepalive_timeout=settings.http_header_timeout_seconds,
    )
