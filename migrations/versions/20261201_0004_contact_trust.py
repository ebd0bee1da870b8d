"""contact trust: e-mail confirmed by staff, identity maintained by staff

Existing contacts keep matching their whitelists only by id and phone until staff confirm their
e-mail on Contacten: before this revision any typed e-mail counted, which is the hole it closes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 17:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_confirmed', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('staff_maintained', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_column('staff_maintained')
        batch_op.drop_column('email_confirmed')
