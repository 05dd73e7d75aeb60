"""deadline reminders: claim, audience, cancel, late; the ticket's pause; callback bookings
with a per-slot capacity counter (callback_booking is recreated: no code wrote to it before,
and its unique slot_start allowed one booking per slot whatever the number of agents)

Revision ID: 0005_sla
Revises: 0004_slack
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.types


revision: str = '0005_sla'
down_revision: str | None = '0004_slack'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _old_callback_booking() -> None:
    op.create_table('callback_booking',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_number', sa.Integer(), nullable=False),
    sa.Column('slot_start', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('slot_end', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_number'], ['ticket.number'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('slot_start')
    )
    with op.batch_alter_table('callback_booking', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callback_booking_ticket_number'), ['ticket_number'], unique=False)


def upgrade() -> None:
    with op.batch_alter_table('callback_booking', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callback_booking_ticket_number'))
    op.drop_table('callback_booking')
    op.create_table('callback_booking',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_number', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('product', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('usage_month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('slot_start', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('slot_end', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', models.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], ),
    sa.ForeignKeyConstraint(['ticket_number'], ['ticket.number'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('callback_booking', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callback_booking_ticket_number'), ['ticket_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_booking_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_callback_booking_slot_start'), ['slot_start'], unique=False)
    op.create_table('digest_sent',
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('sent_at', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('day')
    )
    op.create_table('callback_slot',
    sa.Column('slot_start', models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('booked', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('slot_start')
    )
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
        batch_op.add_column(sa.Column('booking_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_reminder_booking_id'), ['booking_id'], unique=False)
        batch_op.create_foreign_key('fk_reminder_booking_id', 'callback_booking',
                                    ['booking_id'], ['id'])
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
        batch_op.drop_constraint('fk_reminder_booking_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_reminder_booking_id'))
        batch_op.drop_column('booking_id')
        batch_op.drop_index('ix_reminder_pending')
        batch_op.drop_column('reason')
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('late')
        batch_op.drop_column('attempts')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('audience')
    op.drop_table('callback_slot')
    op.drop_table('digest_sent')
    with op.batch_alter_table('callback_booking', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callback_booking_slot_start'))
        batch_op.drop_index(batch_op.f('ix_callback_booking_customer_id'))
        batch_op.drop_index(batch_op.f('ix_callback_booking_ticket_number'))
    op.drop_table('callback_booking')
    _old_callback_booking()
