"""Pushes acknowledged once stored, merged after: ``segments.merged_ms`` (None while a
segment waits for the merger, tokline/server/merger.py) and an index of the waiting
ones.  The segments stored before were merged as they were pushed.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("segments", sa.Column("merged_ms", sa.BigInteger, nullable=True))
    op.execute("UPDATE segments SET merged_ms = received_ms")
    op.create_index("segments_unmerged", "segments", ["received_ms"],
                    postgresql_where=sa.text("merged_ms IS NULL"),
                    sqlite_where=sa.text("merged_ms IS NULL"))


def downgrade() -> None:
    op.drop_index("segments_unmerged", table_name="segments")
    with op.batch_alter_table("segments") as batch:
        batch.drop_column("merged_ms")
