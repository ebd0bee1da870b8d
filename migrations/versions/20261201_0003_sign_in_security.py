"""console sign-in security: failure counters in the database, session versions

`signinattempt` holds failed (and in-flight) console password checks per account digest and
client address, so every console process shares them and a restart forgets nothing.
`user.session_version` is bumped by a password reset, a role change and a (de)activation; open
console sessions end when theirs differs. Existing accounts start at 0.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'signinattempt',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('account', sa.String(length=64), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('signinattempt', schema=None) as batch_op:
        batch_op.create_index('ix_signinattempt_account_at', ['account', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_signinattempt_at'), ['at'], unique=False)

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('session_version')
    with op.batch_alter_table('signinattempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signinattempt_at'))
        batch_op.drop_index('ix_signinattempt_account_at')
    op.drop_table('signinattempt')
