"""payments: the refunded amount (partial refunds)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refunded_amount', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE payment SET refunded_amount = amount WHERE status = 'refunded' AND amount IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_column('refunded_amount')
