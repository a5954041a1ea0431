"""index events by kind

Revision ID: 0003
Revises: 0002
Create Date: 2024-03-19 09:02:33.771201

"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # CONCURRENTLY cannot run in the migration's transaction: alembic commits it,
    # runs the block in autocommit mode, and opens a new transaction afterwards.
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_events_kind_occurred "
            "ON events (kind, occurred_at)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_events_kind_occurred")
