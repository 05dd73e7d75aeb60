"""Who wrote a direct message: the author's Slack profile (users.info), cached per user.

A failure to ask Slack (5xx, ratelimited, network) raises, so that the message stays pending
and is retried like any other processing failure; only "no such user" is an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

UNKNOWN_USER_ERRORS = frozenset({"user_not_found", "user_not_visible"})


@dataclass(frozen=True)
class SlackUser:
    """The part of a Slack profile that tells which customer a user may be."""

    id: str
    team: str  # the user's own workspace
    email: str  # lower-case, "" when the profile shows none
    email_confirmed: bool
    name: str = ""  # how Slack shows the user: display name, else real name, else handle


def parse_user(user: Mapping[str, Any]) -> SlackUser:
    """A users.info `user` object as a SlackUser."""
    profile = user.get("profile")
    profile = profile if isinstance(profile, Mapping) else {}
    email = profile.get("email")
    name = next((value for value in (profile.get("display_name"), profile.get("real_name"),
                                     user.get("real_name"), user.get("name"))
                 if isinstance(value, str) and value.strip()), "")
    return SlackUser(id=str(user.get("id") or ""), team=str(user.get("team_id") or ""),
                     email=email.strip().lower() if isinstance(email, str) else "",
                     email_confirmed=user.get("is_email_confirmed") is True, name=name.strip())


class SlackDirectory:
    """users.info with a per-user cache of `ttl`; unknown users are cached as None too."""

    def __init__(self, client: AsyncWebClient, ttl: timedelta) -> None:
        self.client = client
        self.ttl = ttl
        self._cache: dict[str, tuple[datetime, SlackUser | None]] = {}
        self._asking: dict[str, asyncio.Task[SlackUser | None]] = {}

    async def user(self, user_id: str, now: datetime) -> SlackUser | None:
        """The user's profile, or None when Slack knows no such user; SlackApiError or a
        network error when Slack could not be asked."""
        cached = self._cache.get(user_id)
        if cached is not None and now < cached[0]:
            return cached[1]
        # a burst of messages from one user asks Slack once: later ones wait for that answer
        task = self._asking.get(user_id)
        if task is None:
            task = asyncio.create_task(self._ask(user_id))
            self._asking[user_id] = task
            task.add_done_callback(lambda _: self._asking.pop(user_id, None))
        found = await asyncio.shield(task)  # one waiter cancelled must not cancel the others'
        self._cache = {key: value for key, value in self._cache.items() if now < value[0]}
        self._cache[user_id] = (now + self.ttl, found)
        return found

    async def _ask(self, user_id: str) -> SlackUser | None:
        try:
            answer = await self.client.users_info(user=user_id)
        except SlackApiError as exc:
            if exc.response.get("error") not in UNKNOWN_USER_ERRORS:
                raise
            return None
        user = answer.get("user")
        return parse_user(user) if isinstance(user, Mapping) else None
