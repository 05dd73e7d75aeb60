"""A users.info profile as the DM identity check reads it: only a literal true confirms."""

from __future__ import annotations

from bot.intake.slack.directory import SlackUser, parse_user


def test_email_team_and_confirmation_are_read() -> None:
    user = parse_user({"id": "U1", "team_id": "T1", "is_email_confirmed": True,
                       "profile": {"email": " Anna@Acme.DE "}})
    assert user == SlackUser(id="U1", team="T1", email="anna@acme.de", email_confirmed=True)


def test_a_profile_without_email_or_confirmation_proves_nothing() -> None:
    user = parse_user({"id": "U1", "team_id": "T1", "is_email_confirmed": "true"})
    assert (user.email, user.email_confirmed) == ("", False)
