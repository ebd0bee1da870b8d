"""jobs and the lesson lifecycle: the Job table, lesson calendar_sync and outcome

Existing confirmed lessons with a calendar event are marked synced; confirmed ones without one
are pending, so the worker creates their events.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 14:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'job',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('subject', sa.String(length=120), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('run_after', sa.DateTime(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(), nullable=True),
        sa.Column('result', sa.String(), nullable=True),
        sa.Column('lease_owner', sa.String(length=80), nullable=True),
        sa.Column('lease_until', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('done_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index('ix_job_status_run_after', ['status', 'run_after'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_subject'), ['subject'], unique=False)

    with op.batch_alter_table('lesson', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar_sync', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.String(length=20), nullable=True))
        batch_op.create_index(batch_op.f('ix_lesson_calendar_sync'), ['calendar_sync'], unique=False)

    op.execute("UPDATE lesson SET calendar_sync = 'synced' "
               "WHERE status = 'confirmed' AND calendar_event_id IS NOT NULL")
    op.execute("UPDATE lesson SET calendar_sync = 'pending' "
               "WHERE status = 'confirmed' AND calendar_event_id IS NULL")


def downgrade() -> None:
    with op.batch_alter_table('lesson', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lesson_calendar_sync'))
        batch_op.drop_column('outcome')
        batch_op.drop_column('calendar_sync')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_subject'))
        batch_op.drop_index(batch_op.f('ix_job_kind'))
        batch_op.drop_index('ix_job_status_run_after')
    op.drop_table('job')
