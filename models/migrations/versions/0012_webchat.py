"""The web chat: visitors, the lines of their conversations, mailed codes, identity uses

Revision ID: 0012_webchat
Revises: 0011_retention
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.types import UTCDateTime

revision: str = "0012_webchat"
down_revision: str | None = "0011_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webchat_visitor",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customer.id"), nullable=True),
        sa.Column("verified_by", sa.String(length=16), nullable=False),
        sa.Column("verified_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_webchat_visitor_customer_id", "webchat_visitor", ["customer_id"])
    op.create_table(
        "webchat_item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("visitor_id", sa.Integer(), sa.ForeignKey("webchat_visitor.id"),
                  nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("message.id"), nullable=True),
        sa.Column("ticket_number", sa.Integer(), sa.ForeignKey("ticket.number"), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("choices", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("mailed_at", UTCDateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("visitor_id", "client_id", name="uq_webchat_item_client"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_webchat_item_visitor_id", "webchat_item", ["visitor_id"])
    op.create_index("ix_webchat_item_message_id", "webchat_item", ["message_id"])
    op.create_index("ix_webchat_item_ticket_number", "webchat_item", ["ticket_number"])
    op.create_index("ix_webchat_item_direction_id", "webchat_item", ["direction", "id"])
    op.create_table(
        "webchat_code",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("visitor_id", sa.Integer(), sa.ForeignKey("webchat_visitor.id"),
                  nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("tries_left", sa.Integer(), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webchat_code_visitor_id", "webchat_code", ["visitor_id"])
    op.create_table(
        "webchat_identity",
        sa.Column("jti", sa.String(length=64), primary_key=True),
        sa.Column("visitor_id", sa.Integer(), sa.ForeignKey("webchat_visitor.id"),
                  nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webchat_identity")
    op.drop_table("webchat_code")
    op.drop_table("webchat_item")
    op.drop_table("webchat_visitor")
