"""reminders: hours before a lesson per planning profile, and WhatsApp templates on outbox messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 18:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('planningprofile', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminder_hours', sa.JSON(), server_default='[24]', nullable=False))
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.add_column(sa.Column('template', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outboxmessage', schema=None) as batch_op:
        batch_op.drop_column('template')
    with op.batch_alter_table('planningprofile', schema=None) as batch_op:
        batch_op.drop_column('reminder_hours')
