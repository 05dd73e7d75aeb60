"""ticket.stated_severity: the severity the customer stated, beside the model's

Revision ID: 0003_triage
Revises: 0002_store
Create Date: 2026-11-23 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003_triage"
down_revision: str | None = "0002_store"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("stated_severity", sqlmodel.sql.sqltypes.AutoString(length=1),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.drop_column("stated_severity")
