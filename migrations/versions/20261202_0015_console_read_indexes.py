"""console reads at 500k payments: lesson(updated_at, status); payment(lesson_id, status) replaces
payment(lesson_id)

"Paid but cancelled" walks the lessons newest change first, their status read from the index
(ix_lesson_updated_at_status), and finds a paid payment of each cancelled or expired one from
ix_payment_lesson_id_status alone (whose prefix serves every lookup of a lesson's payments that
ix_payment_lesson_id served).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 12:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_lesson_updated_at_status', 'lesson', ['updated_at', 'status'], unique=False)
    op.create_index('ix_payment_lesson_id_status', 'payment', ['lesson_id', 'status'], unique=False)
    op.drop_index('ix_payment_lesson_id', table_name='payment')


def downgrade() -> None:
    op.create_index('ix_payment_lesson_id', 'payment', ['lesson_id'], unique=False)
    op.drop_index('ix_payment_lesson_id_status', table_name='payment')
    op.drop_index('ix_lesson_updated_at_status', table_name='lesson')
