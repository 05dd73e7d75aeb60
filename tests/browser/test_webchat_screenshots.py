"""Screenshots of the widget open on /chat/demo with a short conversation, at phone and desktop
width, written to var/screenshots/ (the README shows copies from docs/screenshots/)."""

from __future__ import annotations

import struct

import pytest
from playwright.async_api import Browser, Page, expect
from sqlmodel import select

from models.tables import WebItem
from tests.browser.conftest import ROOT_DIR, Chat, StartChat
from tests.browser.kit import TRIAGE, open_chat, stored, triage_post_ts, write
from tests.integration.conftest import AGENT

pytestmark = pytest.mark.browser

SHOTS = ROOT_DIR / "var" / "screenshots"
QUESTION = "Guten Morgen, unser Kassensystem druckt seit heute früh keine Bons mehr."
THANKS = "Danke, bis gleich!"
ANSWER = "Wir schauen uns das gleich per Fernwartung an und melden uns in 30 Minuten."


async def settled(chat: Chat, page: Page) -> None:
    """Every web message processed and every answer it gave shown: a still picture."""
    async def done() -> bool:
        messages = await chat.web_messages()
        if any(m.disposition == "pending" for m in messages):
            return False
        async with chat.db.reader() as session:
            out = len((await session.exec(select(WebItem.id).where(
                WebItem.direction == "out"))).all())
        return await page.locator(".ntw-out").count() == out

    await chat.until(done)


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's width and height, from its IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize(("name", "width", "height"),
                         [("phone", 360, 740), ("desktop", 1280, 800)])
async def test_a_screenshot_of_the_open_widget_with_a_conversation(
        start_chat: StartChat, browser: Browser, name: str, width: int, height: int) -> None:
    chat = await start_chat(secret=True)
    context = await browser.new_context(locale="de-DE", timezone_id="Europe/Berlin",
                                        viewport={"width": width, "height": height})
    try:
        # the browser's clock shows the service's (a fixed Monday morning), as in real life
        await context.clock.set_fixed_time(chat.running.clock())
        page = await chat.page(context)
        await open_chat(page)
        await write(page, QUESTION)
        await stored(page, QUESTION)
        [ticket] = await chat.until(chat.tickets)
        await page.get_by_role("button", name="Ja, einverstanden").click()
        await expect(page.locator(".ntw-in[data-id] .ntw-body", has_text="Ja, einverstanden")
                     ).to_have_count(1)
        thread = await triage_post_ts(chat, ticket.number)
        await chat.sender.event(chat.sender.message(
            ANSWER, ts="1763900500.000100", thread_ts=thread, user=AGENT,
            user_profile={"real_name": "Anna Agentin", "display_name": "anna"}, **TRIAGE))
        await expect(page.locator(".ntw-out .ntw-body", has_text=ANSWER)).to_have_count(1)
        await write(page, THANKS)
        await stored(page, THANKS)
        await settled(chat, page)
        await page.get_by_label("Ihre Nachricht").blur()  # no caret blinking in the picture
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"webchat-{name}.png"
        await page.screenshot(path=str(path))
    finally:
        await context.close()
    assert png_size(path.read_bytes()) == (width, height)
