"""Indexes: retention (closed tickets by closing time, messages still holding raw bytes), and
the hot-path queries that scanned whole tables (threading by Message-ID, the auto-answer cap
per address, the flood check per sender, the digest's tickets by creation and confirmation
time)

Revision ID: 0011_retention
Revises: 0010_slack_delivery
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_retention"
down_revision: str | None = "0010_slack_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RAW_KEPT = sa.text("raw IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_ticket_closed_at", "ticket", ["closed_at"])
    op.create_index("ix_ticket_created_at", "ticket", ["created_at"])
    op.create_index("ix_ticket_confirmed_at", "ticket", ["confirmed_at"])
    op.create_index("ix_message_external_id", "message", ["external_id"])
    op.create_index("ix_message_recipient_created_at", "message", ["recipient", "created_at"])
    op.create_index("ix_message_sender_created_at", "message", ["sender", "created_at"])
    # only the messages whose raw bytes are still kept: the daily job's work stays the size of
    # the last RETENTION_RAW_DAYS, not of the whole history
    op.create_index("ix_message_raw_kept", "message", ["ticket_number", "created_at"],
                    sqlite_where=RAW_KEPT, postgresql_where=RAW_KEPT)


def downgrade() -> None:
    op.drop_index("ix_message_raw_kept", table_name="message")
    op.drop_index("ix_message_sender_created_at", table_name="message")
    op.drop_index("ix_message_recipient_created_at", table_name="message")
    op.drop_index("ix_message_external_id", table_name="message")
    op.drop_index("ix_ticket_confirmed_at", table_name="ticket")
    op.drop_index("ix_ticket_created_at", table_name="ticket")
    op.drop_index("ix_ticket_closed_at", table_name="ticket")
