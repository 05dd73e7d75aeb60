"""The web chat's pages over HTTP on 127.0.0.1: the widget's files with caching headers, the demo
page with its identity, and the security headers (CSP, nosniff) on the service's responses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import bot
from bot.cases.customers_csv import parse_customer_csv
from bot.config import Settings, load_policy
from bot.http import http_runner
from bot.intake.web.pages import DEMO_PERSON, STATIC, DemoIdentity, demo_identity
from models.customers import upsert_customers
from models.db import Database

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SECRET = "demo-identity-secret-for-tests"
Serve = Callable[[DemoIdentity | None], Coroutine[Any, Any, str]]


@pytest.fixture
async def serve(db: Database) -> AsyncIterator[Serve]:
    """Start the HTTP app on port 0 with a given demo identity; its base URL."""
    runners: list[web.AppRunner] = []

    async def start(identity: DemoIdentity | None) -> str:
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        runner = http_runner(settings, db, chat_identity=identity)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def load_demo_customers(db: Database) -> None:
    demo = (Path(bot.__file__).parent / "demo_customers.csv").read_text(encoding="utf-8")
    records = parse_customer_csv(demo, load_policy(Settings(_env_file=None).policy_file))  # type: ignore[call-arg]
    async with db.session() as session:
        await upsert_customers(session, records, now=NOW)


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    async with aiohttp.ClientSession() as client, client.get(url, headers=headers) as response:
        return response.status, response.headers, await response.read()


class Page(HTMLParser):
    """What the tests look at in a page: scripts, inline styles, the widget's tag."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_script = ""
        self.style_attributes = 0
        self.style_elements = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        if tag == "style":
            self.style_elements += 1
        self.style_attributes += sum(1 for name, _ in attrs if name == "style")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_script += data


def parsed(body: bytes) -> Page:
    page = Page()
    page.feed(body.decode("utf-8"))
    return page


def verify(identity: str, secret: str) -> dict[str, Any]:
    """The payload of a signed identity, checked as docs/webchat-protocol.md says."""
    body, _, mac = identity.partition(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
    assert hmac.compare_digest(expected, given), "the identity's signature does not verify"
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return payload


async def test_the_widget_script_is_served_as_javascript_with_caching_headers(
        serve: Serve) -> None:
    base = await serve(None)
    status, headers, body = await get(f"{base}/chat/widget.js")
    assert status == 200
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=300"
    assert headers["ETag"] != ""
    assert body == (STATIC / "widget.js").read_bytes()


async def test_the_widget_style_is_served_as_css_with_caching_headers(serve: Serve) -> None:
    base = await serve(None)
    status, headers, body = await get(f"{base}/chat/widget.css")
    assert status == 200
    assert headers["Content-Type"] == "text/css; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=300"
    assert body == (STATIC / "widget.css").read_bytes()


async def test_a_request_with_the_current_etag_gets_304_without_a_body(serve: Serve) -> None:
    base = await serve(None)
    _, headers, _ = await get(f"{base}/chat/widget.js")
    status, again, body = await get(f"{base}/chat/widget.js",
                                    {"If-None-Match": headers["ETag"]})
    assert status == 304
    assert body == b""
    assert again["ETag"] == headers["ETag"]


async def test_a_request_with_an_old_etag_gets_the_script(serve: Serve) -> None:
    base = await serve(None)
    status, _, body = await get(f"{base}/chat/widget.js", {"If-None-Match": '"0123abcd"'})
    assert status == 200
    assert body == (STATIC / "widget.js").read_bytes()


@pytest.mark.parametrize("path", ["/chat/demo", "/chat/widget.js", "/chat/widget.css",
                                  "/health"])
async def test_responses_carry_the_content_security_policy(serve: Serve, path: str) -> None:
    base = await serve(None)
    _, headers, _ = await get(base + path)
    policy = dict(part.strip().split(" ", 1) for part in
                  headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self' ws: wss:"
    assert policy["frame-ancestors"] == "'none'"


@pytest.mark.parametrize("path", ["/chat/demo", "/chat/widget.js", "/health", "/no-such-page"])
async def test_responses_forbid_content_sniffing(serve: Serve, path: str) -> None:
    base = await serve(None)
    _, headers, _ = await get(base + path)
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_the_demo_page_is_html_that_no_cache_keeps(serve: Serve) -> None:
    base = await serve(None)
    status, headers, _ = await get(f"{base}/chat/demo")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"


async def test_the_demo_page_has_no_inline_script_or_style(serve: Serve) -> None:
    base = await serve(None)
    _, _, body = await get(f"{base}/chat/demo")
    page = parsed(body)
    assert page.inline_script.strip() == ""
    assert page.style_attributes == 0
    assert page.style_elements == 0


async def test_the_demo_page_loads_the_widget_with_one_deferred_tag(serve: Serve) -> None:
    base = await serve(None)
    _, _, body = await get(f"{base}/chat/demo")
    assert parsed(body).scripts == [{"src": "/chat/widget.js", "data-identity": "",
                                     "data-lang": "de", "defer": None}]


async def test_without_a_secret_the_demo_page_carries_no_identity(db: Database,
                                                                  serve: Serve) -> None:
    await load_demo_customers(db)
    base = await serve(demo_identity(secret="", db=db, clock=lambda: NOW))
    _, _, body = await get(f"{base}/chat/demo")
    assert parsed(body).scripts[0]["data-identity"] == ""


async def test_with_a_secret_and_the_demo_customers_the_page_signs_the_demo_person(
        db: Database, serve: Serve) -> None:
    await load_demo_customers(db)
    base = await serve(demo_identity(secret=SECRET, db=db, clock=lambda: NOW))
    _, _, body = await get(f"{base}/chat/demo")
    payload = verify(str(parsed(body).scripts[0]["data-identity"]), SECRET)
    assert {k: payload[k] for k in ("customer", "email", "name", "exp")} == {
        "customer": "D-1001", "email": "petra.krume@baeckerei-krume.de",
        "name": "Petra Krume", "exp": int(NOW.timestamp()) + 3600}


async def test_each_demo_page_gets_an_identity_of_its_own(db: Database, serve: Serve) -> None:
    await load_demo_customers(db)
    base = await serve(demo_identity(secret=SECRET, db=db, clock=lambda: NOW))
    first = verify(str(parsed((await get(f"{base}/chat/demo"))[2]).scripts[0]["data-identity"]),
                   SECRET)
    second = verify(str(parsed((await get(f"{base}/chat/demo"))[2]).scripts[0]["data-identity"]),
                    SECRET)
    assert first["jti"] != second["jti"]  # a replayed jti proves nothing (protocol)


async def test_with_a_secret_but_without_the_demo_customers_the_page_signs_nothing(
        db: Database, serve: Serve) -> None:
    base = await serve(demo_identity(secret=SECRET, db=db, clock=lambda: NOW))
    _, _, body = await get(f"{base}/chat/demo")
    assert parsed(body).scripts[0]["data-identity"] == ""


async def test_the_demo_page_names_the_demo_person(serve: Serve) -> None:
    base = await serve(None)
    _, _, body = await get(f"{base}/chat/demo")
    assert DEMO_PERSON.name in body.decode()
