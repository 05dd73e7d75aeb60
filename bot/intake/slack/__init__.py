"""The Slack channel: events in (app.py, events.py), Block Kit (blocks.py), calls (outbox.py)."""
