"""The leaderboard's rollups of ``daily``: per user, month and model, and per user and
model for all time (tokline/server/db.py), filled from what ``daily`` holds.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SUMS = ("input", "output", "cache_5m", "cache_1h", "cache_read", "web_search")


def _sums() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, sa.BigInteger, nullable=False) for name in SUMS] + [
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("unpriced", sa.BigInteger, nullable=False)]


def _user_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                     nullable=False, primary_key=True)


def upgrade() -> None:
    op.create_table("monthly", _user_fk(), sa.Column("month", sa.Integer, primary_key=True),
                    sa.Column("model", sa.String(1024), primary_key=True), *_sums())
    op.create_index("monthly_month", "monthly", ["month", "user_id"])
    op.create_table("totals", _user_fk(), sa.Column("model", sa.String(1024), primary_key=True),
                    *_sums())
    # what daily holds already: its days' month in SQL (days since 1970-01-01, UTC)
    columns = ", ".join(SUMS) + ", cost_usd, requests, unpriced"
    sums = ", ".join(f"sum({name})" for name in (*SUMS, "cost_usd", "requests", "unpriced"))
    if op.get_bind().dialect.name == "postgresql":
        month = ("(EXTRACT(EPOCH FROM date_trunc('month', DATE '1970-01-01' + day))"
                 " / 86400)::integer")
    else:
        month = ("CAST(julianday(date('1970-01-01', day || ' days', 'start of month'))"
                 " - julianday('1970-01-01') AS INTEGER)")
    op.execute(f"INSERT INTO monthly (user_id, month, model, {columns}) SELECT user_id,"
               f" {month}, model, {sums} FROM daily GROUP BY user_id, {month}, model")
    op.execute(f"INSERT INTO totals (user_id, model, {columns}) SELECT user_id, model, {sums}"
               " FROM monthly GROUP BY user_id, model")


def downgrade() -> None:
    op.drop_table("totals")
    op.drop_table("monthly")
