"""planning that matches real life: the seed profiles spread suggestions (max_per_day)

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The seed's profiles get the new default daily cap where it is still unset (null was the old
# default); profiles an admin created keep what the admin chose. See docs/DECISIONS.md.
SEED_CAPS = {"new": 2, "existing": 2, "weekend": 3, "premium": 2}


def upgrade() -> None:
    profile = sa.table("planningprofile", sa.column("name", sa.String), sa.column("max_per_day", sa.Integer))
    for name, cap in SEED_CAPS.items():
        op.execute(
            profile.update()
            .where(profile.c.name == name, profile.c.max_per_day.is_(None))
            .values(max_per_day=cap)
        )


def downgrade() -> None:
    pass  # a cap is a valid setting on its own; nothing to undo
