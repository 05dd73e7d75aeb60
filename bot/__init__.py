"""NetTask Intake: support mail and chat in, triaged and priced tickets out."""

__version__ = "0.1.0"
