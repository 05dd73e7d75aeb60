"""Slack's text format in and out (pure): event text decoded once when stored, long text split.

Slack sends `&`, `<` and `>` as entities and marks up mentions (`<@U…>`), channels
(`<#C…|name>`), links (`<url|label>`) and special mentions (`<!channel>`); what we store, mail,
classify and show is what the person read on screen. Output escapes once, in its own medium.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_MARKUP = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_SPECIAL = frozenset({"channel", "here", "everyone"})
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")


def unescape(text: str) -> str:
    """Slack's three entities back to characters, in one pass (`&amp;lt;` is the text `&lt;`)."""
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def mentioned_users(text: str) -> list[str]:
    """The user ids mentioned in event text (`<@U…>`), in order, each once."""
    return list(dict.fromkeys(_MENTION.findall(text)))


def decode(text: str, names: Mapping[str, str] | None = None) -> str:
    """Event text as the person saw it; a mentioned user is shown by `names[id]`, else by the
    name the markup carries, else by the id."""
    known = names or {}
    # A literal < or > is sent as an entity, so every <...> is Slack's own markup; split keeps
    # the text between markups at even places and each markup's inside at odd ones.
    parts = _MARKUP.split(text)
    return "".join(unescape(part) if n % 2 == 0 else _readable(part, known)
                   for n, part in enumerate(parts))


def _readable(inner: str, names: Mapping[str, str]) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@") and names.get(target[1:]):
        return "@" + names[target[1:]]  # a name from users.info is plain text, not markup
    return unescape(_markup(target, label))


def _markup(target: str, label: str) -> str:
    if target.startswith("@"):
        return "@" + (label or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        # <!channel>, <!here>, <!everyone>; <!subteam^S…|@team> and <!date^…|fallback> carry
        # the text Slack shows as their label
        word = target[1:].partition("^")[0]
        return f"@{word}" if word in _SPECIAL or not label else label
    if not label or label in (target, _bare(target)):
        return label or target
    return f"{label} ({target})"


def _bare(url: str) -> str:
    """What a person typed when Slack linked it for them: example.com, a@b.de."""
    for prefix in ("mailto:", "https://", "http://", "tel:"):
        if url.startswith(prefix):
            return url[len(prefix):]
    return url


# Slack's limits (api.slack.com/reference/block-kit/blocks): 3,000 characters in a section's
# text, 4,000 recommended in a message's `text`, 50 blocks a message.
SECTION_LIMIT = 3000
TEXT_LIMIT = 4000
BLOCKS_LIMIT = 50


def split(text: str, limit: int, *, size: Callable[[str], int] = len) -> list[str]:
    """`text` in consecutive parts of at most `limit` by `size` (e.g. the length once escaped),
    cut after a paragraph, else a line, else a space where one is near the end; joined, the
    parts are `text` exactly. Never an empty list."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    parts: list[str] = []
    rest = text
    while size(rest) > limit:
        cut = _cut(rest, limit, size)
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest or not parts:
        parts.append(rest)
    return parts


def _cut(text: str, limit: int, size: Callable[[str], int]) -> int:
    # the longest prefix that fits (size grows with the prefix), then the last good break in it
    low, high = 1, min(len(text), limit)
    while low < high:
        middle = (low + high + 1) // 2
        if size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    fits = text[:low]
    for separator in ("\n\n", "\n", " "):
        at = fits.rfind(separator)
        if at >= low * 4 // 5:  # a break in the last fifth only: few messages, none tiny
            return at + len(separator)
    return low
