"""Slack text in and out: event text decoded once, a person's long text split, never cut."""

from __future__ import annotations

from typing import Any

import pytest

from bot.intake.slack.blocks import escape, message_parts, quoted_parts
from bot.intake.slack.events import parse_message
from bot.intake.slack.text import SECTION_LIMIT, decode, mentioned_users, split, unescape
from tests.fakes.slack_events import as_slack_sends


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("VPN &lt; 5 users &amp; R&amp;D", "VPN < 5 users & R&D"),
        ("a &gt; b", "a > b"),
        ("typed &amp;lt; literally", "typed &lt; literally"),  # the person typed "&lt;"
        ("ask <@U0BOSS>", "ask @Bernd Boss"),  # named by users.info
        ("ask <@U0NOBODY>", "ask @U0NOBODY"),  # nobody to name them: the id
        ("ask <@U0AMP>", "ask @R&amp;D"),  # a name is shown as users.info spells it
        ("ask <@U0OLD|bob>", "ask @bob"),  # the older form carries a name
        ("in <#C0NET|netz>", "in #netz"),
        ("in <#C0NET>", "in #C0NET"),
        ("see <https://portal.example.com|portal>", "see portal (https://portal.example.com)"),
        ("see <https://portal.example.com>", "see https://portal.example.com"),
        ("<https://x.example/a?b=1&amp;c=2|R&amp;D>", "R&D (https://x.example/a?b=1&c=2)"),
        ("<http://example.com|example.com>", "example.com"),  # Slack linked a typed domain
        ("<mailto:anna@example.com|anna@example.com>", "anna@example.com"),
        ("<!channel> down", "@channel down"),
        ("<!here> down", "@here down"),
        ("<!everyone> down", "@everyone down"),
        ("<!here|here> down", "@here down"),
        ("<!subteam^S0NET|@netz-team> bitte", "@netz-team bitte"),
        ("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"),
        ("no markup at all", "no markup at all"),
        ("", ""),
    ],
)
def test_event_text_is_decoded_to_what_the_person_saw(sent: str, stored: str) -> None:
    assert decode(sent, {"U0BOSS": "Bernd Boss", "U0AMP": "R&amp;D"}) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "VPN < 5 users & R&D",
        "<!channel> Mailserver down <script>alert(1)</script> <https://evil.example|bank>",
        "see https://portal.example.com/a?b=1&c=2 now",
        "already &lt; escaped & <b>",
        "Umlaute äöü ß und Emoji 🙂 <>",
    ],
)
def test_what_a_person_typed_survives_slacks_encoding(typed: str) -> None:
    assert decode(as_slack_sends(typed)) == typed


def test_mentioned_users_are_listed_once_in_order() -> None:
    text = "<@U0B> and <@U0A|anna> and <@U0B> in <#C0NET|netz> <!here>"
    assert mentioned_users(text) == ["U0B", "U0A"]


def test_unescape_decodes_each_entity_once() -> None:
    assert unescape("&amp;amp; &amp;lt; &lt;&gt;") == "&amp; &lt; <>"


def test_parse_message_stores_decoded_text() -> None:
    envelope: dict[str, Any] = {
        "type": "event_callback", "event_id": "Ev1",
        "event": {"type": "message", "channel": "C0CUST", "user": "U0ANNA", "ts": "1.2",
                  "text": "VPN &lt; 5 users &amp; R&amp;D, cc <@U0BOSS>"}}
    message = parse_message(envelope, names={"U0BOSS": "Bernd Boss"})
    assert message.text == "VPN < 5 users & R&D, cc @Bernd Boss"


def test_a_me_message_is_the_persons_message() -> None:
    envelope: dict[str, Any] = {
        "type": "event_callback", "event_id": "Ev1",
        "event": {"type": "message", "subtype": "me_message", "channel": "C0CUST",
                  "user": "U0ANNA", "ts": "1.2", "text": "is waiting for the VPN"}}
    assert parse_message(envelope).may_open_ticket is True


@pytest.mark.parametrize(
    ("text", "limit", "parts"),
    [
        ("short", 10, ["short"]),
        ("", 10, [""]),
        ("exactly10!", 10, ["exactly10!"]),
        ("aaaa bbbb cccc", 10, ["aaaa bbbb ", "cccc"]),  # after a space
        ("a" * 17 + "\nb cdefgh", 20, ["a" * 17 + "\n", "b cdefgh"]),  # a line beats a space
        ("a" * 16 + "\n\nb\ncdefgh", 20, ["a" * 16 + "\n\n", "b\ncdefgh"]),  # a paragraph
        ("abcdefghijklmnop", 10, ["abcdefghij", "klmnop"]),  # no break at all: at the limit
        ("a bcdefghijklmnop", 10, ["a bcdefghi", "jklmnop"]),  # a break too early is no break
    ],
)
def test_split_cuts_at_a_break_near_the_limit(text: str, limit: int, parts: list[str]) -> None:
    assert split(text, limit) == parts


def test_split_measures_the_escaped_size() -> None:
    parts = split("&&&&&&", 10, size=lambda t: len(escape(t)))
    assert parts == ["&&", "&&", "&&"]


def long_answer(size: int = 10_000) -> str:
    """A long answer with characters that need escaping and breaks of every kind."""
    lines, n = [], 0
    while sum(len(line) + 1 for line in lines) < size:
        n += 1
        lines.append(f"Schritt {n}: VPN < 5 users & R&D, siehe https://portal.example.com/{n}"
                     + ("\n" if n % 7 == 0 else ""))
    return "\n".join(lines)[:size].rstrip()


def test_a_10000_character_text_is_split_whole_into_sections() -> None:
    text = long_answer()
    parts = message_parts(text)
    assert unescape("".join(parts)) == text


def test_every_part_of_a_long_text_fits_a_section() -> None:
    assert max(len(part) for part in message_parts(long_answer())) <= SECTION_LIMIT


def test_every_part_but_the_last_fills_most_of_a_section() -> None:
    parts = message_parts(long_answer())
    assert min(len(part) for part in parts[:-1]) >= SECTION_LIMIT * 4 // 5



def test_quoted_parts_quote_a_long_text_whole() -> None:
    text = long_answer(7000)
    lines = [line for part in quoted_parts(text) for line in part.splitlines()]
    assert unescape("\n".join(line.removeprefix(">") for line in lines)) == text


def test_every_quoted_part_fits_a_section() -> None:
    assert max(len(part) for part in quoted_parts(long_answer(7000))) <= SECTION_LIMIT
