"""The shape of a signed Slack body, checked before bolt reads it.

Bolt builds a listener's arguments by indexing the body (`body["actions"][0]`,
`body["user"]["id"]`) and answers 500 with a traceback when a field has another type. Slack never
sends such a body, but whoever holds the signing secret can: it gets a 400 and one log line.
"""

from __future__ import annotations

from typing import Any

# interactive payloads whose `actions` bolt reads as a list of objects
WITH_ACTIONS = frozenset({"block_actions", "interactive_message", "attachment_actions"})
# the objects bolt and our listeners read ids from, when present
OBJECTS = ("user", "channel", "team", "container", "view", "message", "enterprise")
# an event's fields that we store and read as text
EVENT_STRINGS = ("type", "subtype", "channel", "user", "text", "ts", "thread_ts", "team",
                 "bot_id", "channel_type", "event_ts")


def shape_problem(body: dict[str, Any]) -> str | None:
    """Why bolt could not read this body, or None when its fields have the types Slack sends."""
    for name in OBJECTS:
        if name in body and body[name] is not None and not isinstance(body[name], dict):
            return f"{name} is not an object"
    for name in ("user", "channel", "team"):
        value = body.get(name)
        if isinstance(value, dict) and "id" in value and not isinstance(value["id"], str):
            return f"{name}.id is not a string"
    kind = body.get("type")
    if kind in WITH_ACTIONS:
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "actions is not a list of actions"
        for action in actions:
            if not isinstance(action, dict):
                return "an action is not an object"
            if not isinstance(action.get("action_id", action.get("name", "")), str):
                return "an action's id is not a string"
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict):
            return "event is not an object"
        for name in EVENT_STRINGS:
            if name in event and event[name] is not None and not isinstance(event[name], str):
                return f"event.{name} is not a string"
    return None
