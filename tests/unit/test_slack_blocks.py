"""Customer text shown in Slack cannot ping anyone or disguise a link."""

from __future__ import annotations

import pytest

from bot.intake.slack.blocks import escape, excerpt, quote, section


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<!channel> help", "&lt;!channel&gt; help"),
        ("<!here>", "&lt;!here&gt;"),
        ("ask <@U0BOSS>", "ask &lt;@U0BOSS&gt;"),
        ("<https://evil.example|https://bank.example>",
         "&lt;https://evil.example|https://bank.example&gt;"),
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("Tom & Jerry", "Tom &amp; Jerry"),
        ("already &lt; escaped", "already &amp;lt; escaped"),
        ("plain *bold* text", "plain *bold* text"),
    ],
)
def test_escape(text: str, shown: str) -> None:
    assert escape(text) == shown


def test_excerpt_keeps_the_first_lines_escaped() -> None:
    text = "line 1 <!channel>\n\nline 2\nline 3\nline 4\nline 5\nline 6"
    assert excerpt(text, lines=3) == "line 1 &lt;!channel&gt;\nline 2\nline 3"


def test_excerpt_shortens_long_text() -> None:
    assert len(excerpt("x" * 5000, limit=100)) == 100


def test_quote_escapes_before_quoting() -> None:
    assert quote("a <!here>\nb") == ">a &lt;!here&gt;\n>b"


def test_section_stays_within_slacks_limit() -> None:
    assert len(section("y" * 4000)["text"]["text"]) == 3000
