"""The web chat in a real browser, as a person uses it: /chat/demo in Debian's Chromium against the
running service (WebSocket, store, pipeline, fake Slack), on SQLite and PostgreSQL. The page:
writing, text never HTML, history, keyboard, layout, prompts, language."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, BrowserContext, expect

from tests.browser.conftest import StartChat
from tests.browser.kit import (
    XSS,
    mine,
    open_chat,
    portal_page,
    stored,
    write,
)

pytestmark = pytest.mark.browser


async def test_a_message_written_on_the_demo_page_shows_its_ticket_number(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, "Unser Drucker im Büro druckt nicht mehr.")
    await stored(page, "Unser Drucker im Büro druckt nicht mehr.")
    [ticket] = await chat.until(chat.tickets)
    await expect(page.locator(".ntw-out .ntw-meta").first).to_contain_text(f"NT#{ticket.number}")


async def test_html_in_a_message_is_shown_as_text_and_never_runs(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await open_chat(page)
    await write(page, XSS)
    await stored(page, XSS)
    await page.reload()
    await open_chat(page)  # the history from the server, rendered again
    await expect(page.locator(".ntw-in .ntw-body")).to_have_text([f"Sie: {XSS}"])
    assert await page.locator("img").count() == 0
    assert dialogs == []


async def test_the_stored_message_is_the_typed_text(start_chat: StartChat,
                                                    context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, XSS)
    await stored(page, XSS)
    assert [item.text for item in await chat.in_items()] == [XSS]


async def test_a_reload_keeps_the_history(start_chat: StartChat,
                                          context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, "Erste Nachricht")
    await stored(page, "Erste Nachricht")
    await expect(page.locator(".ntw-out")).not_to_have_count(0)  # our answer with the number
    before = await page.locator(".ntw-item .ntw-body").all_text_contents()
    await page.reload()
    await open_chat(page)
    await expect(page.locator(".ntw-item .ntw-body")).to_have_text(before)


async def test_a_new_tab_shows_the_same_history(start_chat: StartChat,
                                                context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, "Aus dem ersten Tab")
    await stored(page, "Aus dem ersten Tab")
    other = await chat.page(context)
    await open_chat(other)
    await expect(mine(other, "Aus dem ersten Tab")).to_have_count(1)


async def test_the_launcher_is_hidden_while_the_panel_is_open(start_chat: StartChat,
                                                              context: BrowserContext) -> None:
    """The open panel has its own close button; the launcher does not peek out under it."""
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await expect(page.locator(".ntw-launcher")).to_be_hidden()


async def test_the_open_panel_sits_where_the_launcher_was(start_chat: StartChat,
                                                          context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    closed = await page.locator(".ntw-launcher").bounding_box()
    await open_chat(page)
    panel = await page.get_by_role("dialog", name="NetTask Support").bounding_box()
    assert closed is not None and panel is not None
    assert round(panel["y"] + panel["height"]) == round(closed["y"] + closed["height"])


async def test_the_close_button_shows_the_launcher_again_with_the_focus(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await page.get_by_role("button", name="Chat schließen").click()
    launcher = page.get_by_role("button", name="Chat mit dem Support")
    await expect(launcher).to_be_visible()
    await expect(launcher).to_be_focused()


async def test_keyboard_only_opens_writes_and_closes(start_chat: StartChat,
                                                     context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    launcher = page.get_by_role("button", name="Chat mit dem Support")
    for _ in range(40):  # Tab through the portal's links to the launcher
        await page.keyboard.press("Tab")
        if await launcher.evaluate("node => node === document.activeElement"):
            break
    await expect(launcher).to_be_focused()
    outline = await launcher.evaluate("node => getComputedStyle(node).outlineStyle")
    assert outline != "none"  # the focus is visible
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog", name="NetTask Support")).to_be_visible()
    await expect(page.get_by_label("Ihre Nachricht")).to_be_focused()
    await expect(page.locator(".ntw-status")).to_have_text("Verbunden")
    await page.keyboard.type("Nur mit der Tastatur geschrieben")
    await page.keyboard.press("Enter")
    await stored(page, "Nur mit der Tastatur geschrieben")
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog", name="NetTask Support")).to_be_hidden()
    await expect(launcher).to_be_focused()
    await expect(launcher).to_have_attribute("aria-expanded", "false")


async def test_shift_enter_starts_a_new_line_and_enter_sends_both(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await page.keyboard.type("Zeile eins")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("Zeile zwei")
    await page.keyboard.press("Enter")
    await stored(page, "Zeile eins")
    assert [item.text for item in await chat.in_items()] == ["Zeile eins\nZeile zwei"]


async def test_the_panel_fills_a_phone_screen(start_chat: StartChat,
                                              context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await page.set_viewport_size({"width": 360, "height": 740})
    await open_chat(page)
    box = await page.get_by_role("dialog", name="NetTask Support").bounding_box()
    assert box == {"x": 0, "y": 0, "width": 360, "height": 740}


async def test_the_panel_is_380_pixels_wide_at_the_bottom_right_on_a_desktop(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    box = await page.get_by_role("dialog", name="NetTask Support").bounding_box()
    assert box is not None
    assert box["width"] == 380
    assert box["x"] + box["width"] == 1280 - 24
    assert box["y"] + box["height"] < 800


async def test_the_log_is_a_polite_live_region(start_chat: StartChat,
                                               context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    log = page.get_by_role("log", name="Nachrichten")
    await expect(log).to_have_attribute("aria-live", "polite")


async def test_the_greeting_goes_once_the_first_message_is_written(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await expect(page.locator(".ntw-note")).to_have_text(
        ["Wie können wir helfen? Schreiben Sie uns, wir antworten hier."])
    await write(page, "Hallo")
    await expect(page.locator(".ntw-note")).to_have_count(0)


async def test_an_unsigned_visitor_is_asked_for_an_address(start_chat: StartChat,
                                                           context: BrowserContext) -> None:
    chat = await start_chat(secret=False)
    page = await chat.page(context)
    await open_chat(page)
    await expect(page.get_by_label("Ihre E-Mail-Adresse, damit wir Sie zuordnen können")
                 ).to_be_visible()


async def test_a_signed_visitor_is_not_asked_for_an_address(start_chat: StartChat,
                                                            context: BrowserContext) -> None:
    chat = await start_chat(secret=True)
    page = await chat.page(context)
    await open_chat(page)
    await expect(page.get_by_label("Ihre E-Mail-Adresse, damit wir Sie zuordnen können")
                 ).to_be_hidden()


@pytest.mark.parametrize(("html_lang", "data_lang", "locale", "launcher"), [
    ("en", "", "de-DE", "Chat with support"),      # the page's lang before the browser's
    ("", "", "en-US", "Chat with support"),        # the browser's, when the page names none
    ("", "", "de-DE", "Chat mit dem Support"),
    ("en", "de", "en-US", "Chat mit dem Support"),  # data-lang before both
    ("fr", "", "fr-FR", "Chat with support"),      # neither German nor English: English
])
async def test_the_widget_speaks_the_language_it_is_told_or_finds(
        start_chat: StartChat, browser: Browser, html_lang: str, data_lang: str, locale: str,
        launcher: str) -> None:
    chat = await start_chat()
    context = await browser.new_context(locale=locale)
    try:
        lang = f' lang="{html_lang}"' if html_lang else ""
        tag_lang = f' data-lang="{data_lang}"' if data_lang else ""
        page = await portal_page(chat, context, f"<!doctype html><html{lang}><body><p>Portal</p>"
                                 f'<script src="/chat/widget.js"{tag_lang} defer></script>'
                                 "</body></html>")
        await expect(page.locator(".ntw-launcher")).to_have_text(launcher)
    finally:
        await context.close()
