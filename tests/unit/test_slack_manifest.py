"""The app manifest in the repository points Slack at the endpoint the service serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

MANIFEST = Path(__file__).resolve().parents[2] / "slack" / "manifest.json"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


def test_events_interactivity_and_commands_use_our_endpoint(manifest: dict[str, Any]) -> None:
    urls = {manifest["settings"]["event_subscriptions"]["request_url"],
            manifest["settings"]["interactivity"]["request_url"],
            *(c["url"] for c in manifest["features"]["slash_commands"])}
    assert {u.split("/", 3)[3] for u in urls} == {"slack/events"}


def test_every_subscribed_message_event_has_its_history_scope(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    needed = {f"{e.split('.')[1]}:history" for e in events if e.startswith("message.")}
    assert needed <= scopes


def test_the_app_can_post_and_read_profile_emails(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"chat:write", "users:read", "users:read.email", "commands"} <= scopes


def test_customers_can_write_to_the_app_directly(manifest: dict[str, Any]) -> None:
    home = manifest["features"]["app_home"]
    assert (home["messages_tab_enabled"], home["messages_tab_read_only_enabled"]) == (True, False)


# What the code uses: chat.postMessage / chat.update / chat.postEphemeral (chat:write),
# users.info with the profile email (users:read, users:read.email), /nettask (commands), and
# the events it subscribes to (app_mentions:read, the history scope of each message event).
USED = {"chat:write", "users:read", "users:read.email", "commands", "app_mentions:read",
        "channels:history", "groups:history", "im:history", "mpim:history"}


def test_only_scopes_the_code_uses_are_requested(manifest: dict[str, Any]) -> None:
    assert set(manifest["oauth_config"]["scopes"]["bot"]) - USED == set()
