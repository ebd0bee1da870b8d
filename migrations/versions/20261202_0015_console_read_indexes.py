"""console reads at 500k payments: lesson(status, updated_at); payment(lesson_id, status) replaces
payment(lesson_id)

"Paid but cancelled" and "needs reschedule" walk a status's lessons by last change
(ix_lesson_status_updated_at); paid-but-cancelled then checks each lesson's payments for a paid
one from the index alone (ix_payment_lesson_id_status, whose prefix serves every lookup of a
lesson's payments that ix_payment_lesson_id served).

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
    op.create_index('ix_lesson_status_updated_at', 'lesson', ['status', 'updated_at'], unique=False)
    op.create_index('ix_payment_lesson_id_status', 'payment', ['lesson_id', 'status'], unique=False)
    op.drop_index('ix_payment_lesson_id', table_name='payment')


def downgrade() -> None:
    op.create_index('ix_payment_lesson_id', 'payment', ['lesson_id'], unique=False)
    op.drop_index('ix_payment_lesson_id_status', table_name='payment')
    op.drop_index('ix_lesson_status_updated_at', table_name='lesson')
