"""Slack's documented rates kept before sending (bot/intake/slack/pacing.py)."""

from __future__ import annotations

import pytest

from bot.intake.slack.outbox import failure_of
from bot.intake.slack.pacing import Pacer


def test_one_post_a_second_per_channel() -> None:
    pacer = Pacer()
    assert pacer.wait("chat.postMessage", "C1", 100.0) == 0
    pacer.spend("chat.postMessage", "C1", 100.0)
    assert pacer.wait("chat.postMessage", "C1", 100.4) == pytest.approx(0.6)
    assert pacer.wait("chat.postMessage", "C2", 100.4) == 0  # another channel: its own rate
    assert pacer.wait("chat.postMessage", "C1", 101.0) == 0


def test_a_tiered_method_may_burst_a_minutes_worth_then_paces() -> None:
    pacer = Pacer()
    for _ in range(50):  # chat.update: Tier 3, 50 a minute
        assert pacer.wait("chat.update", "C1", 0.0) == 0
        pacer.spend("chat.update", "C1", 0.0)
    assert pacer.wait("chat.update", "C2", 0.0) == pytest.approx(1.2)  # workspace-wide


def test_retry_after_pauses_the_channel_for_posts_and_the_method_for_tiers() -> None:
    pacer = Pacer()
    pacer.pause("chat.postMessage", "C1", 30, 0.0)
    pacer.pause("chat.update", "C1", 10, 0.0)
    assert pacer.wait("chat.postMessage", "C1", 29.0) == pytest.approx(1.0)
    assert pacer.wait("chat.postMessage", "C2", 29.0) == 0
    assert pacer.wait("chat.update", "C9", 5.0) == pytest.approx(5.0)


@pytest.mark.parametrize(("status", "error", "kind"), [
    (429, "ratelimited", "rate"),
    (200, "token_revoked", "token"), (200, "invalid_auth", "token"),
    (200, "account_inactive", "token"), (200, "not_authed", "token"),
    (200, "missing_scope", "token"),
    (503, "service_unavailable", "transient"), (500, "HTTP 500", "transient"),
    (200, "internal_error", "transient"),
    (200, "channel_not_found", "call"), (200, "not_in_channel", "call"),
    (200, "is_archived", "call"), (200, "invalid_blocks", "call"),
    (200, "msg_too_long", "call"), (200, "restricted_action", "call"),
])
def test_each_slack_error_has_its_kind(status: int, error: str, kind: str) -> None:
    assert failure_of(status, error, "3").kind == kind
