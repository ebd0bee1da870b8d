"""credits: the prepaid-lesson ledger; payments know what they buy (a bundle of N) and their receipt

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 20:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'creditentry',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('contact_id', sa.String(), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('delta', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=True),
        sa.Column('lesson_id', sa.Integer(), nullable=True),
        sa.Column('payment_id', sa.Integer(), nullable=True),
        sa.Column('actor', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ),
        sa.ForeignKeyConstraint(['lesson_id'], ['lesson.id'], ),
        sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    with op.batch_alter_table('creditentry', schema=None) as batch_op:
        batch_op.create_index('ix_creditentry_contact_minutes', ['contact_id', 'minutes'], unique=False)
        batch_op.create_index(batch_op.f('ix_creditentry_lesson_id'), ['lesson_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_creditentry_payment_id'), ['payment_id'], unique=False)
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), server_default='lesson', nullable=False))
        batch_op.add_column(sa.Column('quantity', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('invoice_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('invoice_url', sa.String(), nullable=True))
        batch_op.create_index(batch_op.f('ix_payment_invoice_id'), ['invoice_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_invoice_id'))
        batch_op.drop_column('invoice_url')
        batch_op.drop_column('invoice_id')
        batch_op.drop_column('quantity')
        batch_op.drop_column('kind')
    with op.batch_alter_table('creditentry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_creditentry_payment_id'))
        batch_op.drop_index(batch_op.f('ix_creditentry_lesson_id'))
        batch_op.drop_index('ix_creditentry_contact_minutes')
    op.drop_table('creditentry')
