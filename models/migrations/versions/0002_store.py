"""message identity: Message-ID plus a content digest; per-message flags

A duplicate is the same Message-ID with the same content. The old unique key
(channel, direction, external_id) dropped a different mail that reused a Message-ID, so the
key now includes `digest`. Rows stored before this revision keep an empty digest.

Revision ID: 0002_store
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_store"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite's unique key from 0001 has no name; batch mode names it by this convention to drop it.
UNNAMED = {"uq": "%(table_name)s_%(column_0_N_name)s_key"}
OLD_KEY = "message_channel_direction_external_id_key"  # PostgreSQL's default name, too


def upgrade() -> None:
    with op.batch_alter_table("message", naming_convention=UNNAMED) as batch_op:
        batch_op.add_column(sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=False, server_default=""))
        batch_op.add_column(sa.Column("flags", sqlmodel.sql.sqltypes.AutoString(length=200),
                                      nullable=False, server_default=""))
        batch_op.drop_constraint(OLD_KEY, type_="unique")
        batch_op.create_unique_constraint(
            "uq_message_identity", ["channel", "direction", "external_id", "digest"]
        )


def downgrade() -> None:
    with op.batch_alter_table("message", naming_convention=UNNAMED) as batch_op:
        batch_op.drop_constraint("uq_message_identity", type_="unique")
        batch_op.create_unique_constraint(OLD_KEY, ["channel", "direction", "external_id"])
        batch_op.drop_column("flags")
        batch_op.drop_column("digest")
