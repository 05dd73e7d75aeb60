"""The shape check a signed body passes before bolt reads it (bot/intake/slack/shape.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.intake.slack.shape import shape_problem


def click(**changes: Any) -> dict[str, Any]:
    """A block_actions payload as Slack sends it, with `changes` applied."""
    payload: dict[str, Any] = {
        "type": "block_actions", "team": {"id": "T0NETTASK"},
        "user": {"id": "U0ANNA", "team_id": "T0CUSTOMER"}, "channel": {"id": "C0TRIAGE"},
        "trigger_id": "1.2.3", "container": {"type": "message", "message_ts": "1.0"},
        "actions": [{"action_id": "confirm", "type": "button", "value": "1"}]}
    payload.update(changes)
    return payload


def test_a_click_as_slack_sends_it_passes() -> None:
    assert shape_problem(click()) is None


def test_an_event_as_slack_sends_it_passes() -> None:
    body = {"type": "event_callback", "event": {"type": "message", "channel": "C1"}}
    assert shape_problem(body) is None


def test_a_url_verification_passes() -> None:
    assert shape_problem({"type": "url_verification", "challenge": "x"}) is None


@pytest.mark.parametrize(("changes", "problem"), [
    ({"actions": 5}, "actions is not a list of actions"),
    ({"actions": []}, "actions is not a list of actions"),
    ({"actions": [5]}, "an action is not an object"),
    ({"actions": [{"action_id": 7}]}, "an action's id is not a string"),
    ({"user": "U0ANNA"}, "user is not an object"),
    ({"user": {"id": 42}}, "user.id is not a string"),
    ({"channel": ["C1"]}, "channel is not an object"),
    ({"container": "message"}, "container is not an object"),
])
def test_a_click_of_another_shape_is_named(changes: dict[str, Any], problem: str) -> None:
    assert shape_problem(click(**changes)) == problem


def test_an_event_callback_without_an_event_object_is_named() -> None:
    assert shape_problem({"type": "event_callback", "event": "hi"}) == "event is not an object"


def test_an_event_whose_ts_is_no_string_is_named() -> None:
    body = {"type": "event_callback", "event": {"type": "message", "ts": [1]}}
    assert shape_problem(body) == "event.ts is not a string"
