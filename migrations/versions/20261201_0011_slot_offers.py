"""insights: every slot answer the bot API gave (the funnel's "offered")

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 20:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'slotoffer',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('conversation_id', sa.String(length=120), nullable=False),
        sa.Column('contact_id', sa.String(length=255), nullable=False),
        sa.Column('profile_name', sa.String(length=80), nullable=False),
        sa.Column('segment', sa.String(length=40), nullable=True),
        sa.Column('slots', sa.Integer(), nullable=False),
        sa.Column('offered_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('slotoffer', schema=None) as batch_op:
        batch_op.create_index('ix_slotoffer_conversation_at', ['conversation_id', 'offered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_slotoffer_offered_at'), ['offered_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('slotoffer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slotoffer_offered_at'))
        batch_op.drop_index('ix_slotoffer_conversation_at')
    op.drop_table('slotoffer')
