"""payment rollup: PaymentDaily (count and amount per local day, status, currency), backfilled

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 09:00:00
"""
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'paymentdaily',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('currency', sa.String(length=10), nullable=False),
        sa.Column('shard', sa.Integer(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'status', 'currency', 'shard'),
    )
    _backfill()


def _backfill() -> None:
    """The existing payments, grouped by UTC hour in SQL and folded into local days of the
    business zone (migrations/env.py passes TIMEZONE) — what core.payments.rollup.rebuild does."""
    bind = op.get_bind()
    tz = ZoneInfo(op.get_context().config.attributes.get('timezone') or 'Europe/Amsterdam')
    if bind.dialect.name == 'sqlite':
        bucket = "strftime('%Y-%m-%d %H', created_at)"
    else:
        bucket = "to_char(date_trunc('hour', created_at), 'YYYY-MM-DD HH24')"
    rows = bind.execute(
        sa.text(
            f'SELECT {bucket} AS bucket, status, currency, count(*), coalesce(sum(amount), 0) '
            'FROM payment GROUP BY bucket, status, currency'
        )
    ).all()
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for hour, status, currency, count, amount in rows:
        day = datetime.strptime(hour, '%Y-%m-%d %H').replace(tzinfo=UTC).astimezone(tz).date()
        entry = totals[(day, status, (currency or 'eur').lower())]
        entry[0] += count
        entry[1] += int(amount or 0)
    if totals:
        table = sa.table(
            'paymentdaily',
            sa.column('day', sa.Date()),
            sa.column('status', sa.String()),
            sa.column('currency', sa.String()),
            sa.column('shard', sa.Integer()),
            sa.column('count', sa.Integer()),
            sa.column('amount', sa.Integer()),
        )
        op.bulk_insert(
            table,
            [
                {'day': d, 'status': s, 'currency': c, 'shard': 0, 'count': n, 'amount': a}
                for (d, s, c), (n, a) in sorted(totals.items())
            ],
        )


def downgrade() -> None:
    op.drop_table('paymentdaily')
