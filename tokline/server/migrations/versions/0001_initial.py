"""The first schema of the team server.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG = sa.BigInteger


def _tokens() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, BIG, nullable=False) for name in
            ("input", "output", "cache_5m", "cache_1h", "cache_read", "web_search")]


def _user_fk(primary: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
                     nullable=False, primary_key=primary)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False),
        sa.Column("show_projects", sa.Boolean, nullable=False),
        sa.Column("created_ms", BIG, nullable=False))
    op.create_table(
        "invites", sa.Column("token_hash", sa.String(64), primary_key=True), _user_fk(),
        sa.Column("expires_ms", BIG, nullable=False), sa.Column("used_ms", BIG))
    op.create_table(
        "api_tokens", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _user_fk(), sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("created_ms", BIG, nullable=False), sa.Column("last_used_ms", BIG))
    op.create_table(
        "web_sessions", sa.Column("id_hash", sa.String(64), primary_key=True), _user_fk(),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("expires_ms", BIG, nullable=False))
    op.create_table(
        "device_codes", sa.Column("device_hash", sa.String(64), primary_key=True),
        sa.Column("user_code", sa.String(16), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("expires_ms", BIG, nullable=False),
        sa.Column("interval_s", sa.Integer, nullable=False), sa.Column("last_poll_ms", BIG))
    op.create_table(
        "devices", _user_fk(primary=True), sa.Column("device", BIG, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False), sa.Column("last_push_ms", BIG))
    op.create_table(
        "usage", _user_fk(primary=True),
        sa.Column("key", BIG, primary_key=True, autoincrement=False),
        sa.Column("ts_ms", BIG, nullable=False), sa.Column("day", sa.Integer, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("session", sa.String(1024), nullable=False),
        sa.Column("project", sa.String(1024), nullable=False),
        sa.Column("model", sa.String(1024), nullable=False), *_tokens(),
        sa.Column("cost_usd", sa.Float), sa.Column("cost_calc", sa.Float),
        sa.Column("flags", sa.Integer, nullable=False),
        sa.Column("device", BIG, nullable=False))
    op.create_index("usage_user_day", "usage", ["user_id", "day"])
    op.create_table(
        "segments", _user_fk(primary=True), sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("device", BIG, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("received_ms", BIG, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False))
    op.create_table(
        "daily", _user_fk(primary=True), sa.Column("day", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(1024), primary_key=True),
        sa.Column("source", sa.String(32), primary_key=True),
        sa.Column("device", BIG, primary_key=True), *_tokens(),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("unpriced", sa.Integer, nullable=False))
    op.create_index("daily_day", "daily", ["day", "user_id"])


def downgrade() -> None:
    for table in ("daily", "segments", "usage", "devices", "device_codes", "web_sessions",
                  "api_tokens", "invites", "users"):
        op.drop_table(table)
