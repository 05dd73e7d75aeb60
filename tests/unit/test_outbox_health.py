"""/health's outboxes: each one's figures, and 503 on an old backlog or a refused token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.app import outbox_report
from models.outboxes import Backlog

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)


def test_an_empty_outbox_is_healthy() -> None:
    report, healthy = outbox_report({"mail": Backlog(0, None, 0)}, {}, now=NOW, max_age=600)
    assert healthy is True
    assert report == {"mail": {"waiting": 0, "oldest_age_seconds": 0.0, "failed": 0}}


def test_a_mail_backlog_older_than_the_limit_is_unhealthy() -> None:
    backlog = Backlog(3, NOW - timedelta(seconds=601), 1)
    report, healthy = outbox_report({"mail": backlog}, {"mail": {"paused": True}}, now=NOW,
                                    max_age=600)
    assert healthy is False
    assert report["mail"] == {"waiting": 3, "oldest_age_seconds": 601.0, "failed": 1,
                              "paused": True,
                              "problem": "oldest undelivered is 601 s old (limit 600 s)"}


def test_a_young_backlog_is_healthy() -> None:
    backlog = Backlog(3, NOW - timedelta(seconds=599), 0)
    assert outbox_report({"mail": backlog}, {}, now=NOW, max_age=600)[1] is True


def test_a_refused_token_is_unhealthy_even_without_a_backlog() -> None:
    report, healthy = outbox_report({"slack": Backlog(0, None, 0)},
                                    {"slack": {"paused": True, "token_error": "invalid_auth"}},
                                    now=NOW, max_age=600)
    assert healthy is False
    assert report["slack"]["problem"] == "Slack refuses the token: invalid_auth"  # type: ignore[index]
