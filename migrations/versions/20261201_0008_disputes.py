"""payments: the dispute's status and evidence due date

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 19:15:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispute_status', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('dispute_due_by', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_column('dispute_due_by')
        batch_op.drop_column('dispute_status')
