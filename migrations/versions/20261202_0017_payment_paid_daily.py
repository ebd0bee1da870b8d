"""insights reads: PaymentPaidDaily (payments paid, their amount and what was refunded, per local
day of payment and currency, backfilled), and two lesson indexes that answer Insights' lesson
counts from the index alone (ix_lesson_start is replaced by the first, which starts with it);
ix_payment_search, so that the console's text search matches ids in an index, and on PostgreSQL
a pg_trgm index for the same search (left out, with a warning, where the extension cannot be made)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 07:00:00
"""
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

# core/payments/queries.py SEARCH_TEXT_SQL: the search's expression must equal the index's.
SEARCH_TEXT_SQL = (
    "lower(checkout_session_id || chr(31) || order_id || chr(31) || coalesce(payment_intent_id, '')"
    " || chr(31) || coalesce(contact_id, ''))"
)

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'paymentpaiddaily',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('currency', sa.String(length=10), nullable=False),
        sa.Column('shard', sa.Integer(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('refunded_amount', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'currency', 'shard'),
    )
    _backfill()
    op.create_index('ix_lesson_start_status_outcome', 'lesson', ['start', 'status', 'outcome'])
    op.create_index(
        'ix_lesson_conversation_created_status_outcome',
        'lesson',
        ['conversation_id', 'created_at', 'status', 'outcome'],
    )
    op.drop_index('ix_lesson_start', table_name='lesson')
    op.create_index(
        'ix_payment_search',
        'payment',
        ['created_at', 'checkout_session_id', 'order_id', 'payment_intent_id', 'contact_id'],
    )
    _trigram_index()


def _trigram_index() -> None:
    """PostgreSQL: a trigram GIN index over the ids, so that a substring search need not read
    every payment of the period. pg_trgm ships with PostgreSQL (contrib) and is a trusted
    extension (the database owner may create it); where it cannot be made, the search still
    works, by reading the rows, and the upgrade goes on."""
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    except sa.exc.DBAPIError as error:
        print(f'pg_trgm is not available ({error.orig}); the payment search reads the rows instead')
        return
    op.execute(f'CREATE INDEX ix_payment_search_trgm ON payment USING gin (({SEARCH_TEXT_SQL}) gin_trgm_ops)')


def _backfill() -> None:
    """The paid payments, grouped by UTC hour of paid_at in SQL and folded into local days of the
    business zone (migrations/env.py passes TIMEZONE) — what core.payments.rollup.rebuild does."""
    bind = op.get_bind()
    tz = ZoneInfo(op.get_context().config.attributes.get('timezone') or 'Europe/Amsterdam')
    if bind.dialect.name == 'sqlite':
        bucket = "strftime('%Y-%m-%d %H', paid_at)"
    else:
        bucket = "to_char(date_trunc('hour', paid_at), 'YYYY-MM-DD HH24')"
    rows = bind.execute(
        sa.text(
            f'SELECT {bucket} AS bucket, currency, count(*), coalesce(sum(amount), 0),'
            ' coalesce(sum(refunded_amount), 0) FROM payment WHERE paid_at IS NOT NULL'
            ' GROUP BY bucket, currency'
        )
    ).all()
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    for hour, currency, count, amount, refunded in rows:
        day = datetime.strptime(hour, '%Y-%m-%d %H').replace(tzinfo=UTC).astimezone(tz).date()
        entry = totals[(day, (currency or 'eur').lower())]
        entry[0] += count
        entry[1] += int(amount or 0)
        entry[2] += int(refunded or 0)
    if totals:
        table = sa.table(
            'paymentpaiddaily',
            sa.column('day', sa.Date()),
            sa.column('currency', sa.String()),
            sa.column('shard', sa.Integer()),
            sa.column('count', sa.Integer()),
            sa.column('amount', sa.Integer()),
            sa.column('refunded_amount', sa.Integer()),
        )
        op.bulk_insert(
            table,
            [
                {'day': d, 'currency': c, 'shard': 0, 'count': n, 'amount': a, 'refunded_amount': r}
                for (d, c), (n, a, r) in sorted(totals.items())
            ],
        )


def downgrade() -> None:
    op.execute('DROP INDEX IF EXISTS ix_payment_search_trgm')
    op.drop_index('ix_payment_search', table_name='payment')
    op.create_index('ix_lesson_start', 'lesson', ['start'])
    op.drop_index('ix_lesson_conversation_created_status_outcome', table_name='lesson')
    op.drop_index('ix_lesson_start_status_outcome', table_name='lesson')
    op.drop_table('paymentpaiddaily')
