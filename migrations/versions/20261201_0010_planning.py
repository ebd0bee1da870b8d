"""planning that matches real life: spread suggestions (max_per_day), closures, tutor hours

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The seed's profiles get the new default daily cap where it is still unset (null was the old
# default); profiles an admin created keep what the admin chose. See docs/DECISIONS.md.
SEED_CAPS = {"new": 2, "existing": 2, "weekend": 3, "premium": 2}


def upgrade() -> None:
    op.create_table(
        'closure',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('start_date', sa.Date(), nullable=False),
        sa.Column('end_date', sa.Date(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('region', sa.String(length=10), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_by', sa.String(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('closure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_closure_start_date'), ['start_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_closure_end_date'), ['end_date'], unique=False)
    op.create_table(
        'tutorhours',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tutor_id', sa.Integer(), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=False),
        sa.Column('start_minute', sa.Integer(), nullable=False),
        sa.Column('end_minute', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['tutor_id'], ['tutor.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('tutorhours', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tutorhours_tutor_id'), ['tutor_id'], unique=False)
    with op.batch_alter_table('planningprofile', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_holidays', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('school_holidays', sa.String(length=10), nullable=True))

    profile = sa.table("planningprofile", sa.column("name", sa.String), sa.column("max_per_day", sa.Integer))
    for name, cap in SEED_CAPS.items():
        op.execute(
            profile.update()
            .where(profile.c.name == name, profile.c.max_per_day.is_(None))
            .values(max_per_day=cap)
        )


def downgrade() -> None:
    # the seed profiles' caps stay: a cap is a valid setting on its own
    with op.batch_alter_table('planningprofile', schema=None) as batch_op:
        batch_op.drop_column('school_holidays')
        batch_op.drop_column('public_holidays')
    with op.batch_alter_table('tutorhours', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tutorhours_tutor_id'))
    op.drop_table('tutorhours')
    with op.batch_alter_table('closure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_closure_end_date'))
        batch_op.drop_index(batch_op.f('ix_closure_start_date'))
    op.drop_table('closure')
