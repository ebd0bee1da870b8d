"""lesson.series_week: the week of its series a lesson belongs to, kept when it is moved

A repeated series request answers with the series as booked; a lesson moved to another day was
matched to its week by its start and so shown as "skipped". Lessons booked before this revision
keep a null week and are still found by their start.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 13:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('lesson') as batch_op:
        batch_op.add_column(sa.Column('series_week', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('lesson') as batch_op:
        batch_op.drop_column('series_week')
