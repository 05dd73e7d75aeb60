"""What a person does in the chat, and what the browser tests look up afterwards."""

from __future__ import annotations

import email
import email.policy
import re

from playwright.async_api import BrowserContext, Locator, Page, Route, expect
from sqlmodel import col, select

from models.slack import list_calls
from models.tables import AuditEvent, Ticket, WebItem
from tests.browser.conftest import Chat
from tests.integration.conftest import AGENT

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


async def opened_chat(chat: Chat, context: BrowserContext) -> Page:
    """A demo portal page with the chat panel open and connected."""
    page = await chat.page(context)
    await open_chat(page)
    return page


async def outage_thread(chat: Chat, page: Page) -> str:
    """Report OUTAGE in the open chat; the ts of its ticket's triage post, once made."""
    await write(page, OUTAGE)
    await stored(page, OUTAGE)
    [ticket] = await chat.until(chat.tickets)
    return await triage_post_ts(chat, ticket.number)


async def agent_answers(chat: Chat, thread: str, text: str) -> None:
    """Anna Agentin writes `text` in the triage thread `thread`, as Slack sends it to us."""
    await chat.sender.event(chat.sender.message(
        text, ts="1763900500.000100", thread_ts=thread,
        user=AGENT, user_profile={"real_name": "Anna Agentin", "display_name": "anna"},
        **TRIAGE))


async def agent_answered_outage(chat: Chat, context: BrowserContext, text: str) -> Page:
    """A new page whose visitor reports OUTAGE and an agent answers `text` in the triage
    thread; the page, with the chat open."""
    page = await opened_chat(chat, context)
    await agent_answers(chat, await outage_thread(chat, page), text)
    return page


async def accepted_ticket(chat: Chat) -> Ticket:
    """The chat's one ticket once a consent has opened it."""
    async def accepted() -> Ticket | None:
        [now] = await chat.tickets()
        return now if now.status == "open" else None

    found: Ticket = await chat.until(accepted)
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


async def yes_to_the_quote(chat: Chat, context: BrowserContext) -> Page:
    """A new page whose visitor asks for a quote and presses Yes; the page once the Yes is
    stored (shown with its id)."""
    page = await opened_chat(chat, context)
    await ticket_asking_consent(chat, page)
    await page.get_by_role("button", name="Ja, einverstanden").click()
    await expect(page.locator(".ntw-in[data-id] .ntw-body", has_text="Ja, einverstanden")
                 ).to_have_count(1)
    return page


async def seen_at(chat: Chat, text: str) -> object:
    async with chat.db.reader() as session:
        [item] = (await session.exec(select(WebItem).where(
            WebItem.direction == "out", col(WebItem.text).startswith(text)))).all()
        return item.seen_at


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


async def portal_page(chat: Chat, context: BrowserContext, html: str) -> Page:
    """A portal page of our own at the service's origin, with the widget's tag on it."""
    page = await context.new_page()

    async def serve(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

    await page.route(f"{chat.base}/portal", serve)
    await page.goto(f"{chat.base}/portal")
    return page
