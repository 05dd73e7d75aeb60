"""Adapters that turn the outside world (mail, Slack) into domain objects, and back."""
