"""Pure parsing of Slack events: an event envelope becomes a SlackMessage, or a reason to ignore.

No I/O and no framework: the HTTP endpoint stores the raw envelope first, the worker parses it
here later (and again after a restart), so parsing must give the same answer every time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.intake.slack.text import decode

# Message subtypes that are still a person writing something new; every other subtype (edits,
# deletions, joins, topic changes, bot messages, ...) never opens a ticket.
PERSON_SUBTYPES = frozenset({"", "file_share", "thread_broadcast", "me_message"})
MESSAGE_EVENTS = frozenset({"message", "app_mention"})


class MalformedEvent(ValueError):
    """The payload is not a Slack event envelope we can read; the text says what is missing."""


@dataclass(frozen=True)
class SlackFile:
    """A file attached to a message, recorded by name and link (never downloaded)."""

    name: str
    link: str


@dataclass(frozen=True)
class SlackMessage:
    """One Slack message as the conversation pipeline needs it."""

    channel: str  # channel id (C..., G..., D... for a direct message)
    ts: str
    thread_ts: str | None  # the thread's parent ts for a reply, else None
    team: str  # the author's own team (Slack Connect: not ours), "" when the event does not say
    user: str  # the author's user id, or the bot id for bot messages
    text: str
    files: tuple[SlackFile, ...]
    channel_type: str  # channel, group, im, mpim ("" when Slack does not say)
    ignore_reason: str | None  # why this message is not a person's new message, or None
    author_name: str = ""  # the author's real or display name, when the event carries it

    @property
    def external_id(self) -> str:
        """The message's id across the service: `channel:ts` (one message, whatever event)."""
        return message_key(self.channel, self.ts)

    @property
    def is_reply(self) -> bool:
        """A reply in a thread (a follow-up), not a top-level message."""
        return self.thread_ts is not None

    @property
    def may_open_ticket(self) -> bool:
        """Only a person's top-level message may open a ticket."""
        return self.ignore_reason is None and not self.is_reply

    @property
    def is_direct(self) -> bool:
        """A direct message to the app."""
        return self.channel_type == "im" or self.channel.startswith("D")


def message_key(channel: str, ts: str) -> str:
    """The stored external id of a Slack message."""
    return f"{channel}:{ts}"


def load_envelope(raw: bytes) -> dict[str, Any]:
    """The JSON envelope of an Events API request body."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise MalformedEvent("the body is not a JSON object")
    return body


def message_event(envelope: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The message (or app_mention) event inside an event_callback, or None for other events."""
    if envelope.get("type") != "event_callback":
        return None
    event = envelope.get("event")
    if not isinstance(event, Mapping):
        raise MalformedEvent("event_callback without an event object")
    if event.get("type") not in MESSAGE_EVENTS:
        return None
    return event


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _files(event: Mapping[str, Any]) -> tuple[SlackFile, ...]:
    files = event.get("files")
    if not isinstance(files, list):
        return ()
    found = []
    for item in files:
        if isinstance(item, Mapping):
            name = _text(item.get("name")) or _text(item.get("title")) or _text(item.get("id"))
            link = _text(item.get("permalink")) or _text(item.get("url_private"))
            found.append(SlackFile(name=name, link=link))
    return tuple(found)


def _ignore_reason(event: Mapping[str, Any], own_user_id: str | None,
                   own_bot_id: str | None) -> str | None:
    subtype = _text(event.get("subtype"))
    if subtype == "message_changed":
        return "edit"
    if subtype == "message_deleted":
        return "deletion"
    bot_id = _text(event.get("bot_id"))
    if subtype == "bot_message" or bot_id:
        return "own message" if bot_id and bot_id == own_bot_id else "bot message"
    if own_user_id and event.get("user") == own_user_id:
        return "own message"
    if subtype not in PERSON_SUBTYPES:
        return f"subtype {subtype}"
    if not _text(event.get("user")):
        return "no author"
    return None


def event_text(envelope: Mapping[str, Any]) -> str:
    """A message event's text as Slack sent it (entities, markup); "" for other events."""
    event = message_event(envelope)
    if event is None:
        return ""
    inner = event.get("message")
    return _text((inner if isinstance(inner, Mapping) else event).get("text"))


def parse_message(envelope: Mapping[str, Any], *, own_user_id: str | None = None,
                  own_bot_id: str | None = None,
                  names: Mapping[str, str] | None = None) -> SlackMessage:
    """The message an event_callback envelope carries, its text decoded (mentioned users shown
    by `names`, else by id); MalformedEvent when it carries none."""
    event = message_event(envelope)
    if event is None:
        raise MalformedEvent("not a message event")
    channel, ts = _text(event.get("channel")), _text(event.get("ts"))
    if not channel or not ts:
        raise MalformedEvent("a message event without channel or ts")
    thread_ts = _text(event.get("thread_ts")) or None
    if thread_ts == ts:
        thread_ts = None  # the parent of a thread is itself a top-level message
    # Edits and deletions carry the person's text in the nested message; the author is there too.
    inner = event.get("message")
    source = inner if isinstance(inner, Mapping) else event
    return SlackMessage(
        channel=channel,
        ts=ts,
        thread_ts=thread_ts,
        team=_author_team(source),
        user=_text(source.get("user")) or _text(source.get("bot_id")),
        text=decode(_text(source.get("text")), names),
        files=_files(source),
        channel_type=_text(event.get("channel_type")),
        ignore_reason=_ignore_reason(event, own_user_id, own_bot_id),
        author_name=_author_name(source),
    )


def _author_team(source: Mapping[str, Any]) -> str:
    # `user_team` is the author's team in Slack Connect channels; `team` otherwise. The
    # envelope's team_id is the workspace the event was delivered to, not the author's: never
    # used, so an event without a team (file_share events may carry none) proves no team.
    return _text(source.get("user_team")) or _text(source.get("team"))


def _author_name(source: Mapping[str, Any]) -> str:
    profile = source.get("user_profile")
    if not isinstance(profile, Mapping):
        return ""
    return _text(profile.get("real_name")) or _text(profile.get("display_name"))
