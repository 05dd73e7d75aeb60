"""The web chat's pages: the widget's script and style, and the demo portal page `/chat/demo`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from string import Template

from aiohttp import web

from models.customers import find_by_email
from models.db import Database

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
# The widget may change with a release: browsers ask again after five minutes, and the ETag
# makes that question cheap (304).
ASSET_CACHE = "public, max-age=300"


@dataclass(frozen=True)
class DemoPerson:
    """Who is "logged in" on the demo portal page: a person of a demo customer."""

    customer: str
    company: str
    name: str
    email: str


# A person of the first demo customer in bot/demo_customers.csv (D-1001, @baeckerei-krume.de).
DEMO_PERSON = DemoPerson(customer="D-1001", company="Bäckerei Krume GmbH", name="Petra Krume",
                         email="petra.krume@baeckerei-krume.de")
DEMO_IDENTITY_SECONDS = 3600


@dataclass(frozen=True)
class DemoPage:
    """What the demo page shows: the person, and the signed identity ("" for none)."""

    person: DemoPerson
    identity: str


DemoIdentity = Callable[[], Awaitable[DemoPage]]


def sign_identity(payload: dict[str, object], secret: str) -> str:
    """The portal's signed identity (docs/webchat-protocol.md): payload "." HMAC-SHA256."""
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def demo_identity(*, secret: str, db: Database,
                  clock: Callable[[], datetime]) -> DemoIdentity:
    """The demo page's identity: signed for DEMO_PERSON when a secret is set and the database
    holds the demo customers; otherwise none, and the widget asks for an address."""

    async def identity() -> DemoPage:
        unsigned = DemoPage(DEMO_PERSON, "")
        if not secret:
            return unsigned
        async with db.reader() as session:
            customer = await find_by_email(session, DEMO_PERSON.email)
        if customer is None or customer.number != DEMO_PERSON.customer:
            # a real customer base: never hand out a signed identity to whoever opens the page
            log.info("event=webchat_demo_unsigned reason=no_demo_customer customer=%s",
                     DEMO_PERSON.customer)
            return unsigned
        now = clock()
        payload: dict[str, object] = {
            "customer": DEMO_PERSON.customer, "email": DEMO_PERSON.email,
            "name": DEMO_PERSON.name,
            "exp": int((now + timedelta(seconds=DEMO_IDENTITY_SECONDS)).timestamp()),
            "jti": secrets.token_urlsafe(18),
        }
        return DemoPage(DEMO_PERSON, sign_identity(payload, secret))

    return identity


async def unsigned_demo() -> DemoPage:
    """The demo page without an identity (no secret configured)."""
    return DemoPage(DEMO_PERSON, "")


def _asset(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = (STATIC / name).read_bytes()
    etag = hashlib.sha256(body).hexdigest()[:20]

    async def serve(request: web.Request) -> web.Response:
        headers = {"Cache-Control": ASSET_CACHE}
        if etag in request.headers.get("If-None-Match", ""):
            response = web.Response(status=304, headers=headers)
        else:
            response = web.Response(body=body, content_type=content_type, charset="utf-8",
                                    headers=headers)
        response.etag = etag
        return response

    return serve


def demo_page(identity: DemoIdentity) -> Callable[[web.Request], Awaitable[web.Response]]:
    """GET /chat/demo: the portal page with the widget, the identity in a data- attribute."""
    template = Template((STATIC / "demo.html").read_text(encoding="utf-8"))

    async def serve(request: web.Request) -> web.Response:
        page = await identity()
        mode = ("Der Chat kennt Sie: das Portal hat Ihre Anmeldung signiert."
                if page.identity else
                "Ohne signierte Anmeldung (WEBCHAT_IDENTITY_SECRET ist nicht gesetzt): "
                "der Chat fragt nach Ihrer E-Mail-Adresse.")
        person = page.person
        text = template.substitute(
            name=html.escape(person.name), company=html.escape(person.company),
            number=html.escape(person.customer), identity=html.escape(page.identity),
            mode=html.escape(mode))
        # the page carries a fresh signed identity: no cache may keep it
        return web.Response(text=text, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    return serve


def add_chat_pages(app: web.Application, identity: DemoIdentity | None = None) -> None:
    """GET /chat/widget.js, /chat/widget.css, /chat/demo.css and /chat/demo."""
    app.router.add_get("/chat/widget.js", _asset("widget.js", "text/javascript"))
    app.router.add_get("/chat/widget.css", _asset("widget.css", "text/css"))
    app.router.add_get("/chat/demo.css", _asset("demo.css", "text/css"))
    app.router.add_get("/chat/demo", demo_page(identity or unsigned_demo))
