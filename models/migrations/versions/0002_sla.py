"""deadline reminders: claim, audience, cancel, late; the ticket's pause

Revision ID: 0002_sla
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types


revision: str = '0002_sla'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audience', sqlmodel.sql.sqltypes.AutoString(length=16),
                                      nullable=False, server_default='agents'))
        batch_op.add_column(sa.Column('next_attempt_at', models.types.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('claimed_at', models.types.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('late', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('cancelled_at', models.types.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('reason', sa.Text(), nullable=True))
        batch_op.create_index('ix_reminder_pending', ['sent_at', 'cancelled_at', 'due_at'],
                              unique=False)
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        # the defaults only fill existing rows; the model sets the values
        batch_op.alter_column('audience', server_default=None)
        batch_op.alter_column('attempts', server_default=None)
        batch_op.alter_column('late', server_default=None)
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_at', models.types.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('paused_seconds', sa.Float(), nullable=False,
                                      server_default='0'))
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.alter_column('paused_seconds', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('paused_seconds')
        batch_op.drop_column('paused_at')
    with op.batch_alter_table('reminder', schema=None) as batch_op:
        batch_op.drop_index('ix_reminder_pending')
        batch_op.drop_column('reason')
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('late')
        batch_op.drop_column('attempts')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('audience')
