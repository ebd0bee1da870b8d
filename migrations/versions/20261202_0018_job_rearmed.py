"""job.rearmed: a job asked for again while it ran runs once more after that run

A lesson cancelled while its calendar job was making the event asked for that job again; the
running job had read the lesson as confirmed, ended with "a newer job brings the calendar in
line", and no newer job came: the event stayed in the tutor's calendar.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 08:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('job') as batch_op:
        batch_op.add_column(sa.Column('rearmed', sa.Boolean(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('job') as batch_op:
        batch_op.drop_column('rearmed')
