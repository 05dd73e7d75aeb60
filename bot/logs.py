"""Structured logs: one event per line, key=value."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str) -> None:
    """Log to stderr as `ts=... level=... logger=... event=...`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # alembic announces its dialect on every revision check (each /health); keep its warnings
    logging.getLogger("alembic").setLevel(logging.WARNING)
