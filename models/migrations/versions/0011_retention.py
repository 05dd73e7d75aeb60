"""Indexes for retention: closed tickets by closing time, messages still holding raw bytes

Revision ID: 0011_retention
Revises: 0009_seen_signatures
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_retention"
down_revision: str | None = "0009_seen_signatures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RAW_KEPT = sa.text("raw IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_ticket_closed_at", "ticket", ["closed_at"])
    # only the messages whose raw bytes are still kept: the daily job's work stays the size of
    # the last RETENTION_RAW_DAYS, not of the whole history
    op.create_index("ix_message_raw_kept", "message", ["ticket_number", "created_at"],
                    sqlite_where=RAW_KEPT, postgresql_where=RAW_KEPT)


def downgrade() -> None:
    op.drop_index("ix_message_raw_kept", table_name="message")
    op.drop_index("ix_ticket_closed_at", table_name="ticket")
