"""cancel policy per planning profile: notice hours and what an on-time cancel gives back

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 18:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('planningprofile', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_notice_hours', sa.Integer(), server_default='24', nullable=False))
        batch_op.add_column(sa.Column('on_time_cancel', sa.String(length=20), server_default='refund',
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('planningprofile', schema=None) as batch_op:
        batch_op.drop_column('on_time_cancel')
        batch_op.drop_column('cancel_notice_hours')
