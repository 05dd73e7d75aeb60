"""The web chat in a real browser with the conversation: an agent's answer from the Slack triage
thread, the quote's buttons and who may press them, seen marks, the mailed code (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from playwright.async_api import Browser, BrowserContext, expect

from tests.browser.conftest import StartChat
from tests.browser.kit import (
    ADVICE,
    OUTAGE,
    PETRA,
    accepted_ticket,
    agent_answered_outage,
    agent_answers,
    audit_actions,
    give_address,
    mailed_code,
    open_chat,
    opened_chat,
    outage_thread,
    seen_at,
    ticket_asking_consent,
    write,
    yes_to_the_quote,
)

pytestmark = pytest.mark.browser


async def test_an_agents_answer_in_the_triage_thread_appears_without_a_reload(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await agent_answered_outage(chat, context, "Wir haben den Dienst neu gestartet.")
    answer = page.locator(".ntw-out .ntw-body", has_text="Wir haben den Dienst neu gestartet.")
    await expect(answer).to_have_count(1)


async def test_an_agents_answer_shows_the_agents_name_above_it_and_no_signature(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await agent_answered_outage(chat, context, "Wir haben den Dienst neu gestartet.")
    answer = page.locator(".ntw-out", has=page.locator(
        ".ntw-body", has_text="Wir haben den Dienst neu gestartet."))
    await expect(answer.locator(".ntw-author")).to_have_text("Anna Agentin")
    # the body is the screen reader's "<author>: " and the agent's text, nothing under it
    await expect(answer.locator(".ntw-body")).to_have_text(
        "Anna Agentin: Wir haben den Dienst neu gestartet.")


async def test_a_verified_visitors_yes_on_the_quote_records_the_consent(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat(secret=True)  # the demo page signs the demo person's identity
    page = await opened_chat(chat, context)
    ticket = await ticket_asking_consent(chat, page)
    assert ticket.status == "awaiting_consent"
    await page.get_by_role("button", name="Ja, einverstanden").click()
    after = await accepted_ticket(chat)
    assert after.accepted_at == chat.running.clock()
    assert "consent" in await audit_actions(chat, ticket.number)


async def test_an_unverified_visitors_yes_on_the_quote_records_no_consent(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat(secret=False)  # no identity on the page: an unknown visitor
    page = await opened_chat(chat, context)
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
    page = await yes_to_the_quote(chat, context)
    await page.reload()
    await open_chat(page)
    await expect(page.locator(".ntw-in .ntw-body")).to_have_text(
        [f"Sie: {ADVICE}", "Sie: Ja, einverstanden"])
    await expect(page.get_by_role("button", name="Ja, einverstanden")).to_be_disabled()


async def test_another_device_with_the_visitors_token_shows_the_clicked_label(
        start_chat: StartChat, context: BrowserContext, browser: Browser) -> None:
    """A fresh browser profile (no localStorage but the token) reads the label from the
    history the service keeps, not from anything the first browser remembered."""
    chat = await start_chat(secret=True)
    page = await yes_to_the_quote(chat, context)
    token = await page.evaluate("() => JSON.parse(window.localStorage.getItem('ntw.visitor'))")
    other = await browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 800})
    try:
        await other.add_init_script(
            f"window.localStorage.setItem('ntw.visitor', {json.dumps(json.dumps(token))});")
        device = await chat.page(other)
        await open_chat(device)
        await expect(device.locator(".ntw-in .ntw-body")).to_have_text(
            [f"Sie: {ADVICE}", "Sie: Ja, einverstanden"])
        await expect(device.get_by_role("button", name="Ja, einverstanden")).to_be_disabled()
    finally:
        await other.close()


async def test_an_answer_shown_in_the_open_panel_is_marked_seen(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await opened_chat(chat, context)
    await write(page, OUTAGE)
    await expect(page.locator(".ntw-out")).to_have_count(1)
    [answer] = await page.locator(".ntw-out .ntw-body").all_text_contents()
    shown = answer.removeprefix("NetTask Support: ")[:30]
    assert await chat.until(lambda: seen_at(chat, shown)) == chat.running.clock()


async def test_an_answer_that_arrives_while_the_panel_is_closed_is_seen_only_once_opened(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat()
    page = await opened_chat(chat, context)
    thread = await outage_thread(chat, page)
    await page.keyboard.press("Escape")
    await agent_answers(chat, thread, "Bitte starten Sie den Router neu.")
    await expect(page.locator(".ntw-out .ntw-body", has_text="Bitte starten Sie den Router neu.")
                 ).to_have_count(1)  # in the closed panel's log
    assert await seen_at(chat, "Bitte starten Sie den Router neu.") is None
    await page.get_by_role("button", name="Chat mit dem Support").click()
    assert await chat.until(lambda: seen_at(chat, "Bitte starten Sie den Router neu.")) is not None


async def test_the_mailed_code_typed_in_the_chat_verifies_the_visitor_for_the_quote(
        start_chat: StartChat, context: BrowserContext) -> None:
    chat = await start_chat(secret=False)
    page = await opened_chat(chat, context)
    await give_address(page, PETRA)
    await page.keyboard.type(await mailed_code(chat, PETRA))
    await page.keyboard.press("Enter")
    await expect(page.locator(".ntw-note", has_text="Bestätigt")).to_have_count(1)
    ticket = await ticket_asking_consent(chat, page)
    await page.get_by_role("button", name="Ja, einverstanden").click()
    await accepted_ticket(chat)
    assert "consent" in await audit_actions(chat, ticket.number)


async def test_a_wrong_code_says_how_many_tries_are_left(start_chat: StartChat,
                                                         context: BrowserContext) -> None:
    chat = await start_chat(secret=False)
    page = await opened_chat(chat, context)
    await give_address(page, PETRA)
    right = await mailed_code(chat, PETRA)
    await page.keyboard.type(f"{(int(right) + 1) % 1_000_000:06d}")
    await page.keyboard.press("Enter")
    await expect(page.locator(".ntw-note", has_text="Der Code stimmt nicht")).to_have_text(
        ["Der Code stimmt nicht. Noch 4 Versuche."])
