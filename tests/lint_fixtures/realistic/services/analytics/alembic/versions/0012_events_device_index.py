"""index events by session

Revision ID: 0012
Revises: 0011
Create Date: 2024-11-05 10:30:00.000000

"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_events_session ON events (session_id)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_events_session")
