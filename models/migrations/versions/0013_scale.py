"""Indexes for the operations that grew with the history (bench/scale.py, 10,000 to 1,000,000
tickets): the tickets still without their plan terms, which every start looks for (empty once
kept: the start read the whole ticket table); one customer's tickets since a time (the flood
check per customer read all of the customer's tickets); the callbacks booked on a day (the
digest read every booking)

Revision ID: 0013_scale
Revises: 0012_webchat
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_scale"
down_revision: str | None = "0012_webchat"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TERMS_MISSING = sa.text("plan IS NOT NULL AND plan_terms IS NULL")


def upgrade() -> None:
    op.create_index("ix_ticket_terms_missing", "ticket", ["number"],
                    sqlite_where=TERMS_MISSING, postgresql_where=TERMS_MISSING)
    op.create_index("ix_ticket_customer_created_at", "ticket", ["customer_id", "created_at"])
    op.create_index("ix_callback_booking_created_at", "callback_booking", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_callback_booking_created_at", table_name="callback_booking")
    op.drop_index("ix_ticket_customer_created_at", table_name="ticket")
    op.drop_index("ix_ticket_terms_missing", table_name="ticket")
