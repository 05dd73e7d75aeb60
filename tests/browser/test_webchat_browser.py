"""The web chat in a real browser, as a person uses it: /chat/demo in Debian's Chromium against the
running service (WebSocket, store, pipeline, fake Slack), on SQLite and PostgreSQL."""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, Route, expect
from sqlmodel import col, select

from models.slack import list_calls
from models.tables import AuditEvent, Ticket, WebItem
from tests.browser.conftest import Chat, StartChat
from tests.integration.conftest import AGENT

pytestmark = pytest.mark.browser

XSS = "<img src=x onerror=alert(1)>"


async def open_chat(page: Page) -> None:
    """Open the panel and wait until the socket said welcome."""
    await page.get_by_role("button", name="Chat mit dem Support").click()
    await expect(page.get_by_role("dialog", name="NetTask Support")).to_be_visible()
    await expect(page.locator(".ntw-status")).to_have_text("Verbunden")


async def write(page: Page, text: str) -> None:
    await page.get_by_label("Ihre Nachricht").fill(text)
    await page.get_by_label("Ihre Nachricht").press("Enter")


def mine(page: Page, text: str) -> Locator:
    return page.locator(".ntw-in .ntw-body", has_text=text)


async def stored(page: Page, text: str) -> None:
    """The visitor's message is acknowledged: no longer shown as sending."""
    bubble = page.locator(".ntw-in", has=page.locator(".ntw-body", has_text=text))
    await expect(bubble).to_have_count(1)
    await expect(bubble).not_to_have_class("ntw-pending")
    await expect(bubble).to_have_attribute("data-id", re.compile(r"^\d+$"))


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


async def test_messages_typed_while_offline_arrive_once_when_the_network_returns(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, "vor dem Schnitt")
    await stored(page, "vor dem Schnitt")
    await context.set_offline(True)
    await expect(page.locator(".ntw-status")).to_contain_text("Keine Verbindung")
    await write(page, "im Tunnel 1")
    await write(page, "im Tunnel 2")
    await expect(page.locator(".ntw-pending")).to_have_count(2)
    await context.set_offline(False)
    await expect(page.locator(".ntw-status")).to_have_text("Verbunden", timeout=40_000)
    await stored(page, "im Tunnel 1")
    await stored(page, "im Tunnel 2")
    texts = [item.text for item in await chat.in_items()]
    assert texts == ["vor dem Schnitt", "im Tunnel 1", "im Tunnel 2"]


async def test_a_message_queued_offline_survives_a_reload_and_arrives_once(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await context.set_offline(True)
    await expect(page.locator(".ntw-status")).to_contain_text("Keine Verbindung")
    await write(page, "offline geschrieben, dann neu geladen")
    await expect(page.locator(".ntw-pending")).to_have_count(1)
    await context.set_offline(False)
    await page.reload()  # the queue is in localStorage: the reloaded page sends it
    await open_chat(page)
    await stored(page, "offline geschrieben, dann neu geladen")
    texts = [item.text for item in await chat.in_items()]
    assert texts == ["offline geschrieben, dann neu geladen"]


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


# ---- with the conversation: an agent's answer, and the quote's buttons -------------------------

OUTAGE = "Unser Mailserver ist seit heute früh nicht erreichbar"
ADVICE = "Wir brauchen eine Beratung zur Architektur unserer Server-Umgebung"
TRIAGE = {"channel": "C0TRIAGE", "team": "T0NETTASK"}


async def triage_post_ts(chat: Chat, number: int | None) -> str:
    """The ts Slack gave the ticket's triage post, once the outbox made it."""
    async def made() -> str:
        async with chat.db.reader() as session:
            calls = await list_calls(session, ticket_number=number)
        return next((c.result_ts for c in calls
                     if c.key == f"triage:NT#{number}" and c.result_ts), "")

    found: str = await chat.until(made)
    return found


async def audit_actions(chat: Chat, number: int | None) -> list[str]:
    async with chat.db.reader() as session:
        rows = await session.exec(select(AuditEvent.action)
                                  .where(AuditEvent.ticket_number == number))
        return list(rows.all())


async def ticket_asking_consent(chat: Chat, page: Page) -> Ticket:
    """Ask for what costs money in the open chat; the ticket once its quote's buttons show."""
    await write(page, ADVICE)
    await stored(page, ADVICE)
    await expect(page.get_by_role("button", name="Ja, einverstanden")).to_be_visible()
    [ticket] = await chat.tickets()
    return ticket


async def test_an_agents_answer_in_the_triage_thread_appears_without_a_reload(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, OUTAGE)
    await stored(page, OUTAGE)
    [ticket] = await chat.until(chat.tickets)
    thread = await triage_post_ts(chat, ticket.number)
    await chat.sender.event(chat.sender.message(
        "Wir haben den Dienst neu gestartet.", ts="1763900500.000100", thread_ts=thread,
        user=AGENT, user_profile={"real_name": "Anna Agentin", "display_name": "anna"},
        **TRIAGE))
    answer = page.locator(".ntw-out .ntw-body", has_text="Wir haben den Dienst neu gestartet.")
    await expect(answer).to_have_count(1)


async def test_a_verified_visitors_yes_on_the_quote_records_the_consent(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat(secret=True)  # the demo page signs the demo person's identity
    page = await chat.page(context)
    await open_chat(page)
    ticket = await ticket_asking_consent(chat, page)
    assert ticket.status == "awaiting_consent"
    await page.get_by_role("button", name="Ja, einverstanden").click()

    async def accepted() -> Ticket | None:
        [now] = await chat.tickets()
        return now if now.status == "open" else None

    after = await chat.until(accepted)
    assert after.accepted_at == chat.running.clock()
    assert "consent" in await audit_actions(chat, ticket.number)


async def test_an_unverified_visitors_yes_on_the_quote_records_no_consent(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat(secret=False)  # no identity on the page: an unknown visitor
    page = await chat.page(context)
    await open_chat(page)
    ticket = await ticket_asking_consent(chat, page)
    await page.get_by_role("button", name="Ja, einverstanden").click()
    await expect(page.locator(".ntw-kind-note .ntw-body")).to_contain_text(
        "bestätigte Identität")
    [after] = await chat.tickets()
    assert (after.status, after.accepted_at) == ("awaiting_consent", None)
    assert "consent" not in await audit_actions(chat, ticket.number)


async def test_after_a_reload_the_clicked_choice_shows_its_label_and_no_second_click(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat(secret=True)
    page = await chat.page(context)
    await open_chat(page)
    await ticket_asking_consent(chat, page)
    await page.get_by_role("button", name="Ja, einverstanden").click()
    await expect(page.locator(".ntw-in[data-id] .ntw-body", has_text="Ja, einverstanden")
                 ).to_have_count(1)
    await page.reload()
    await open_chat(page)
    await expect(page.locator(".ntw-in .ntw-body")).to_have_text(
        [f"Sie: {ADVICE}", "Sie: Ja, einverstanden"])
    await expect(page.get_by_role("button", name="Ja, einverstanden")).to_be_disabled()


async def seen_at(chat: Chat, text: str) -> object:
    async with chat.db.reader() as session:
        [item] = (await session.exec(select(WebItem).where(
            WebItem.direction == "out", col(WebItem.text).startswith(text)))).all()
        return item.seen_at


async def test_an_answer_shown_in_the_open_panel_is_marked_seen(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, OUTAGE)
    await expect(page.locator(".ntw-out")).to_have_count(1)
    [answer] = await page.locator(".ntw-out .ntw-body").all_text_contents()
    shown = answer.removeprefix("Support: ")[:30]
    assert await chat.until(lambda: seen_at(chat, shown)) == chat.running.clock()


async def test_an_answer_that_arrives_while_the_panel_is_closed_is_seen_only_once_opened(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, OUTAGE)
    await stored(page, OUTAGE)
    [ticket] = await chat.until(chat.tickets)
    thread = await triage_post_ts(chat, ticket.number)
    await page.keyboard.press("Escape")
    await chat.sender.event(chat.sender.message(
        "Bitte starten Sie den Router neu.", ts="1763900500.000100", thread_ts=thread,
        user=AGENT, user_profile={"real_name": "Anna Agentin", "display_name": "anna"},
        **TRIAGE))
    await expect(page.locator(".ntw-out .ntw-body", has_text="Bitte starten Sie den Router neu.")
                 ).to_have_count(1)  # in the closed panel's log
    assert await seen_at(chat, "Bitte starten Sie den Router neu.") is None
    await page.get_by_role("button", name="Chat mit dem Support").click()
    assert await chat.until(lambda: seen_at(chat, "Bitte starten Sie den Router neu.")) is not None


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


# ---- without a portal login: the address, the mailed code ------------------------------------

PETRA = "petra.krume@baeckerei-krume.de"  # an address of D-1001 (the demo customers)


async def mailed_code(chat: Chat, to: str) -> str:
    """The six digits in the code mail the mail outbox delivered to `to`."""
    def code() -> str:
        folder = chat.running.outbox / "new"
        for path in sorted(folder.iterdir()) if folder.exists() else []:
            mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if mail["To"] == to:
                body = mail.get_body()
                assert body is not None
                found = re.search(r"\b(\d{6})\b", body.get_content())
                if found:
                    return found.group(1)
        return ""

    async def ask() -> str:
        return code()

    found: str = await chat.until(ask)
    return found


async def give_address(page: Page, address: str) -> None:
    field = page.get_by_label("Ihre E-Mail-Adresse, damit wir Sie zuordnen können")
    await field.fill(address)
    await field.press("Enter")
    await expect(page.locator(".ntw-note", has_text="sechsstelligen Code")).to_have_count(1)
    await expect(page.get_by_label("Code aus der E-Mail")).to_be_focused()


async def test_the_mailed_code_typed_in_the_chat_verifies_the_visitor_for_the_quote(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat(secret=False)
    page = await chat.page(context)
    await open_chat(page)
    await give_address(page, PETRA)
    await page.keyboard.type(await mailed_code(chat, PETRA))
    await page.keyboard.press("Enter")
    await expect(page.locator(".ntw-note", has_text="Bestätigt")).to_have_count(1)
    ticket = await ticket_asking_consent(chat, page)
    await page.get_by_role("button", name="Ja, einverstanden").click()

    async def accepted() -> Ticket | None:
        [now] = await chat.tickets()
        return now if now.status == "open" else None

    await chat.until(accepted)
    assert "consent" in await audit_actions(chat, ticket.number)


async def test_a_wrong_code_says_how_many_tries_are_left(start_chat: StartChat,
                                                         context: BrowserContext) -> None:
    chat = await start_chat(secret=False)
    page = await chat.page(context)
    await open_chat(page)
    await give_address(page, PETRA)
    right = await mailed_code(chat, PETRA)
    await page.keyboard.type(f"{(int(right) + 1) % 1_000_000:06d}")
    await page.keyboard.press("Enter")
    await expect(page.locator(".ntw-note", has_text="Der Code stimmt nicht")).to_have_text(
        ["Der Code stimmt nicht. Noch 4 Versuche."])


async def test_messages_written_while_the_service_restarts_arrive_once(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await chat.page(context)
    await open_chat(page)
    await write(page, "vor dem Neustart")
    await stored(page, "vor dem Neustart")
    await chat.stop()  # the server closes the socket; the widget retries with its backoff
    await expect(page.locator(".ntw-status")).to_contain_text("Keine Verbindung")
    await write(page, "während des Neustarts")
    await expect(page.locator(".ntw-pending")).to_have_count(1)
    await chat.restart()
    await stored(page, "während des Neustarts")
    texts = [item.text for item in await chat.in_items()]
    assert texts == ["vor dem Neustart", "während des Neustarts"]


# ---- the language: data-lang, then the page's lang, then the browser's ----------------------

async def portal_page(chat: Chat, context: BrowserContext, html: str) -> Page:
    """A portal page of our own at the service's origin, with the widget's tag on it."""
    page = await context.new_page()

    async def serve(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

    await page.route(f"{chat.base}/portal", serve)
    await page.goto(f"{chat.base}/portal")
    return page


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


async def test_a_message_the_service_refuses_is_marked_not_sent_and_not_resent(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat(webchat_max_chars=20)
    page = await chat.page(context)
    await open_chat(page)
    await write(page, "Diese Nachricht ist länger als zwanzig Zeichen.")
    failed = page.locator(".ntw-failed")
    await expect(failed.locator(".ntw-meta")).to_have_text(
        "nicht gesendet · Die Nachricht ist zu lang.")
    await page.reload()  # the refused message left the queue: nothing to send again
    await open_chat(page)
    await expect(page.locator(".ntw-in")).to_have_count(0)
    assert await chat.in_items() == []


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
