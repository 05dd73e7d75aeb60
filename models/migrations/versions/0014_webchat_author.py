"""The web chat's items name who wrote them: an agent's name, or NetTask Support

Revision ID: 0014_webchat_author
Revises: 0013_scale
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_webchat_author"
down_revision: str | None = "0013_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # existing rows are our automatic answers or the visitors' own: "" reads as ours
    op.add_column("webchat_item", sa.Column("author", sa.String(length=200), nullable=False,
                                            server_default=""))


def downgrade() -> None:
    op.drop_column("webchat_item", "author")  # SQLite 3.35+ drops a column in place
