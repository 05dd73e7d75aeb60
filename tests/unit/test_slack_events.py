"""Slack event parsing: which messages may open a ticket, and what is recorded of them."""

from __future__ import annotations

from typing import Any

import pytest

from bot.intake.slack.events import MalformedEvent, SlackFile, load_envelope, parse_message


def envelope(**event: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "message", "channel": "C0CUST", "user": "U0ANNA",
                            "text": "Der Mailserver ist down", "ts": "1763900000.000100",
                            "team": "T0ACME", "channel_type": "channel"}
    base.update(event)
    return {"type": "event_callback", "team_id": "T0ACME", "event_id": "Ev1", "event": base}


def test_a_top_level_message_may_open_a_ticket() -> None:
    message = parse_message(envelope())
    assert message.may_open_ticket is True


def test_the_external_id_is_channel_and_ts() -> None:
    assert parse_message(envelope()).external_id == "C0CUST:1763900000.000100"


def test_team_user_and_text_are_kept() -> None:
    message = parse_message(envelope())
    assert (message.team, message.user, message.text) == (
        "T0ACME", "U0ANNA", "Der Mailserver ist down")


def test_the_authors_team_is_user_team_in_slack_connect() -> None:
    message = parse_message(envelope(team="T0ACME", user_team="T0OTHER"))
    assert message.team == "T0OTHER"


def test_an_event_without_a_team_names_none_not_the_receiving_workspace() -> None:
    message = parse_message(envelope(team=""))
    assert message.team == ""


def test_a_thread_reply_is_a_follow_up_not_a_new_ticket() -> None:
    message = parse_message(envelope(ts="1763900050.000200", thread_ts="1763900000.000100"))
    assert message.is_reply is True
    assert message.may_open_ticket is False
    assert message.thread_ts == "1763900000.000100"


def test_a_thread_parent_counts_as_top_level() -> None:
    message = parse_message(envelope(thread_ts="1763900000.000100"))
    assert message.may_open_ticket is True


def test_files_are_recorded_by_name_and_link() -> None:
    files = [{"id": "F1", "name": "error.png", "permalink": "https://acme.slack.com/files/F1"},
             {"id": "F2", "title": "log", "url_private": "https://files.slack.com/F2"}]
    message = parse_message(envelope(subtype="file_share", files=files))
    assert message.files == (SlackFile("error.png", "https://acme.slack.com/files/F1"),
                             SlackFile("log", "https://files.slack.com/F2"))
    assert message.may_open_ticket is True


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"bot_id": "B0OTHER", "subtype": "bot_message", "user": ""}, "bot message"),
        ({"bot_id": "B0OTHER"}, "bot message"),
        ({"bot_id": "B0US"}, "own message"),
        ({"user": "U0BOT"}, "own message"),
        ({"subtype": "message_changed", "message": {"user": "U0ANNA", "text": "edited"}},
         "edit"),
        ({"subtype": "message_deleted"}, "deletion"),
        ({"subtype": "channel_join", "text": "<@U0ANNA> has joined"}, "subtype channel_join"),
        ({"subtype": "channel_topic"}, "subtype channel_topic"),
        ({"user": ""}, "no author"),
    ],
)
def test_bots_edits_deletions_and_joins_never_open_a_ticket(event: dict[str, Any],
                                                             reason: str) -> None:
    message = parse_message(envelope(**event), own_user_id="U0BOT", own_bot_id="B0US")
    assert message.ignore_reason == reason
    assert message.may_open_ticket is False


def test_an_edit_carries_the_edited_text() -> None:
    message = parse_message(envelope(subtype="message_changed",
                                     message={"user": "U0ANNA", "text": "new text"}))
    assert message.text == "new text"


def test_a_direct_message_is_recognised() -> None:
    assert parse_message(envelope(channel="D0DM", channel_type="im")).is_direct is True


def test_an_app_mention_is_a_message_too() -> None:
    message = parse_message(envelope(type="app_mention"))
    assert message.external_id == "C0CUST:1763900000.000100"


def test_other_events_are_not_messages() -> None:
    with pytest.raises(MalformedEvent, match="not a message event"):
        parse_message(envelope(type="reaction_added"))


def test_a_message_without_ts_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match="without channel or ts"):
        parse_message(envelope(ts=""))


def test_a_body_that_is_not_json_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match="not JSON"):
        load_envelope(b"{broken")


def test_a_body_that_is_a_list_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match="not a JSON object"):
        load_envelope(b"[1, 2]")
