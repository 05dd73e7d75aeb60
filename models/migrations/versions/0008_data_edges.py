"""Data edges (issue 21): a ticket keeps the plan terms it was opened under;
an import deactivates customers missing from the file;
a callback's calendar invitation keeps its UID and counts its SEQUENCE

Revision ID: 0008_data_edges
Revises: 0006_assignee
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.types

revision: str = "0008_data_edges"
down_revision: str | None = "0006_assignee"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        # the plan's rule (JSON) as the policy gave it when the ticket was opened
        batch.add_column(sa.Column("plan_terms", sa.Text(), nullable=True))
    with op.batch_alter_table("customer") as batch:
        # set when an import deactivated the customer: no address, channel or plan is left
        batch.add_column(sa.Column("deactivated_at", models.types.UTCDateTime(timezone=True),
                                   nullable=True))
    with op.batch_alter_table("callback_booking") as batch:
        # the customer's calendar entry (RFC 5546): one UID across moves, SEQUENCE per update
        batch.add_column(sa.Column("calendar_uid", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("calendar_sequence", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callback_booking") as batch:
        batch.drop_column("calendar_sequence")
        batch.drop_column("calendar_uid")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("deactivated_at")
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("plan_terms")
