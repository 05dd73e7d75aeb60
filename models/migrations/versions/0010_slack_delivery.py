"""slack_call.conversation (calls are made in order per conversation) and sending_at (a call
whose outcome is unknown after a crash is looked up in Slack before it is made again)

Revision ID: 0010_slack_delivery
Revises: 0009_seen_signatures
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types

revision: str = "0010_slack_delivery"
down_revision: str | None = "0009_seen_signatures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("slack_call") as batch:
        batch.add_column(sa.Column("conversation", sqlmodel.sql.sqltypes.AutoString(length=200),
                                   nullable=True))
        batch.add_column(sa.Column("sending_at", models.types.UTCDateTime(timezone=True),
                                   nullable=True))
        batch.create_index("ix_slack_call_conversation", ["conversation"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("slack_call") as batch:
        batch.drop_index("ix_slack_call_conversation")
        batch.drop_column("sending_at")
        batch.drop_column("conversation")
