"""lesson series: weekly series booked at once, their lessons and their one payment

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 21:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'lessonseries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.String(), nullable=False),
        sa.Column('contact_id', sa.String(), nullable=False),
        sa.Column('profile_name', sa.String(), nullable=False),
        sa.Column('start', sa.DateTime(), nullable=False),
        sa.Column('weeks', sa.Integer(), nullable=False),
        sa.Column('lessons', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
        sa.ForeignKeyConstraint(['profile_name'], ['planningprofile.name'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('lessonseries', schema=None) as batch_op:
        batch_op.create_index('ix_lessonseries_conversation_start', ['conversation_id', 'start'], unique=False)
    for table in ('lesson', 'payment'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('series_id', sa.Integer(), nullable=True))
            batch_op.create_index(batch_op.f(f'ix_{table}_series_id'), ['series_id'], unique=False)
            batch_op.create_foreign_key(f'fk_{table}_series_id_lessonseries', 'lessonseries', ['series_id'], ['id'])


def downgrade() -> None:
    for table in ('payment', 'lesson'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'fk_{table}_series_id_lessonseries', type_='foreignkey')
            batch_op.drop_index(batch_op.f(f'ix_{table}_series_id'))
            batch_op.drop_column('series_id')
    with op.batch_alter_table('lessonseries', schema=None) as batch_op:
        batch_op.drop_index('ix_lessonseries_conversation_start')
    op.drop_table('lessonseries')
