"""Plays Slack's side of the Events API: signed HTTP requests to our /slack/events."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

SECRET = "test-signing-secret"
CUSTOMER_CHANNEL = "C0CUSTOMER"
CUSTOMER_TEAM = "T0CUSTOMER"


# A URL a person types, which Slack turns into a link: at the start or after a space or bracket.
TYPED_URL = re.compile(r"(?<![^\s(])(https?://[^\s<>|]+)")


def entities(text: str) -> str:
    """`&`, `<` and `>` as Slack sends them in event text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def as_slack_sends(typed: str) -> str:
    """What a person typed, as the event text Slack delivers: entities, typed URLs as `<url>`."""
    out, last = [], 0
    for match in TYPED_URL.finditer(typed):
        out.append(entities(typed[last:match.start()]))
        out.append(f"<{entities(match.group(1))}>")
        last = match.end()
    out.append(entities(typed[last:]))
    return "".join(out)


@dataclass
class Answer:
    status: int
    text: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class SlackSender:
    """Sends events, clicks and commands to one service, signed with `secret`."""

    port: int
    secret: str = SECRET
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def post(self, body: str | bytes, *, content_type: str = "application/json",
                   timestamp: int | None = None, secret: str | None = None,
                   headers: dict[str, str] | None = None) -> Answer:
        """POST a body signed with the secret (or another one) at a timestamp (default: now)."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        raw = body.encode("utf-8") if isinstance(body, str) else body
        base = b"v0:" + stamp.encode() + b":" + raw
        key = (secret or self.secret).encode()
        signature = "v0=" + hmac.new(key, base, hashlib.sha256).hexdigest()
        sent = {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature, **(headers or {})}
        began = time.monotonic()
        async with aiohttp.ClientSession() as http:
            async with http.post(self.url, data=raw, headers=sent) as response:
                text = await response.text()
                return Answer(response.status, text, time.monotonic() - began)

    def message(self, text: str = "Unser Mailserver ist seit heute früh nicht erreichbar",
                *, event_id: str | None = None, ts: str = "1763900000.000100",
                event_type: str = "message", markup: str | None = None, **extra: Any) -> str:
        """An event_callback envelope carrying one message event: `text` is what the person
        typed, sent encoded as Slack does (`as_slack_sends`); `markup`, when given, is sent
        as it is instead (Slack's own markup: mentions, links, <!channel>)."""
        sent = as_slack_sends(text) if markup is None else markup
        event: dict[str, Any] = {"type": event_type, "channel": CUSTOMER_CHANNEL,
                                 "user": "U0ANNA", "text": sent, "ts": ts,
                                 "team": CUSTOMER_TEAM, "channel_type": "channel",
                                 "event_ts": ts}
        event.update(extra)
        return json.dumps({"type": "event_callback", "team_id": CUSTOMER_TEAM,
                           "api_app_id": "A0NETTASK",
                           "event_id": event_id or f"Ev{next(self._ids):08d}",
                           "event_time": int(time.time()), "event": event})

    async def event(self, body: str, retry: int = 0) -> Answer:
        """Deliver an event body, as Slack's nth retry when `retry` > 0."""
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(body, headers=headers if retry else None)

    async def click(self, user: str, action_id: str = "confirm",
                    channel: str = "C0TRIAGE") -> Answer:
        """A block_actions payload: `user` clicked a button on one of our posts."""
        payload = {"type": "block_actions", "team": {"id": "T0NETTASK"},
                   "user": {"id": user}, "channel": {"id": channel},
                   "trigger_id": f"trigger-{next(self._ids)}", "api_app_id": "A0NETTASK",
                   "container": {"type": "message", "message_ts": "1763900000.000001",
                                 "channel_id": channel},
                   "actions": [{"action_id": action_id, "type": "button", "value": "1",
                                "block_id": "b1", "action_ts": "1763900001.0"}],
                   "response_url": "http://127.0.0.1:1/unused"}
        return await self.post(urlencode({"payload": json.dumps(payload)}),
                               content_type="application/x-www-form-urlencoded")

    async def choose(self, user: str, action_id: str, value: str, *, select: bool = False,
                     channel: str = "C0TRIAGE", message_ts: str = "1763900000.000001",
                     user_team: str | None = None) -> Answer:
        """A block_actions payload: `user` pressed a button (or picked an option) on a post;
        `user_team` is the clicker's own workspace (Slack sends it as user.team_id)."""
        action: dict[str, Any] = {"action_id": action_id, "block_id": "b1",
                                  "action_ts": "1763900001.0"}
        if select:
            action.update(type="static_select",
                          selected_option={"value": value,
                                           "text": {"type": "plain_text", "text": value}})
        else:
            action.update(type="button", value=value)
        payload = {"type": "block_actions", "team": {"id": "T0NETTASK"},
                   "user": {"id": user, **({"team_id": user_team} if user_team else {})},
                   "channel": {"id": channel},
                   "trigger_id": f"trigger-{next(self._ids)}", "api_app_id": "A0NETTASK",
                   "container": {"type": "message", "message_ts": message_ts,
                                 "channel_id": channel},
                   "actions": [action], "response_url": "http://127.0.0.1:1/unused"}
        return await self.post(urlencode({"payload": json.dumps(payload)}),
                               content_type="application/x-www-form-urlencoded")

    async def press(self, action_id: str, value: str, *, channel: str, message_ts: str,
                    user: str = "U0ANNA", user_team: str | None = CUSTOMER_TEAM,
                    team: str = "T0NETTASK") -> Answer:
        """A block_actions payload: a user of `user_team` pressed a button on one of our
        messages in a customer's channel (a shared channel: `team` is the app's workspace)."""
        who: dict[str, Any] = {"id": user}
        if user_team is not None:
            who["team_id"] = user_team
        payload = {"type": "block_actions", "team": {"id": team}, "user": who,
                   "channel": {"id": channel}, "trigger_id": f"trigger-{next(self._ids)}",
                   "api_app_id": "A0NETTASK",
                   "container": {"type": "message", "message_ts": message_ts,
                                 "channel_id": channel, "is_ephemeral": False},
                   "actions": [{"action_id": action_id, "block_id": "b1", "type": "button",
                                "value": value, "action_ts": "1763900001.0"}],
                   "response_url": "http://127.0.0.1:1/unused"}
        return await self.post(urlencode({"payload": json.dumps(payload)}),
                               content_type="application/x-www-form-urlencoded")

    async def command(self, text: str, user: str = "U0ANNA") -> Answer:
        """A slash command /nettask with `text`."""
        form = {"command": "/nettask", "text": text, "user_id": user, "team_id": "T0NETTASK",
                "channel_id": "C0TRIAGE", "trigger_id": f"trigger-{next(self._ids)}",
                "response_url": "http://127.0.0.1:1/unused"}
        return await self.post(urlencode(form),
                               content_type="application/x-www-form-urlencoded")
