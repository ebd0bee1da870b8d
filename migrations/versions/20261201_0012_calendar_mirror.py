"""calendar mirror: the sync state per tutor calendar and its busy events

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 21:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'calendarmirror',
        sa.Column('calendar_id', sa.String(length=255), nullable=False),
        sa.Column('sync_token', sa.String(), nullable=True),
        sa.Column('synced_at', sa.DateTime(), nullable=True),
        sa.Column('full_sync_at', sa.DateTime(), nullable=True),
        sa.Column('events', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(), nullable=True),
        sa.Column('last_error_at', sa.DateTime(), nullable=True),
        sa.Column('channel_id', sa.String(length=64), nullable=True),
        sa.Column('channel_token', sa.String(length=128), nullable=True),
        sa.Column('channel_resource_id', sa.String(length=255), nullable=True),
        sa.Column('channel_expires_at', sa.DateTime(), nullable=True),
        sa.Column('notified_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('calendar_id'),
    )
    with op.batch_alter_table('calendarmirror', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendarmirror_channel_id'), ['channel_id'], unique=False)
    op.create_table(
        'mirroredevent',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('calendar_id', sa.String(length=255), nullable=False),
        sa.Column('event_id', sa.String(length=1024), nullable=False),
        sa.Column('start', sa.DateTime(), nullable=False),
        sa.Column('end', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('calendar_id', 'event_id', name='uq_mirroredevent_calendar_event'),
    )
    with op.batch_alter_table('mirroredevent', schema=None) as batch_op:
        batch_op.create_index('ix_mirroredevent_calendar_start', ['calendar_id', 'start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mirroredevent', schema=None) as batch_op:
        batch_op.drop_index('ix_mirroredevent_calendar_start')
    op.drop_table('mirroredevent')
    with op.batch_alter_table('calendarmirror', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendarmirror_channel_id'))
    op.drop_table('calendarmirror')
