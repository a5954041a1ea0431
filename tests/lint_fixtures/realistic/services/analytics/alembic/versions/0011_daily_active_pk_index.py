"""unique session start per user, built without blocking writes

Revision ID: 0011
Revises: 0010
Create Date: 2024-10-21 15:55:11.402398

"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ux_sessions_user_started "
            "ON sessions (user_id, started_at)"
        )
    op.execute("SET lock_timeout = '3s'")
    op.execute("SET statement_timeout = '30s'")
    op.execute(
        "ALTER TABLE sessions ADD CONSTRAINT sessions_user_started_key "
        "UNIQUE USING INDEX ux_sessions_user_started"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE sessions DROP CONSTRAINT sessions_user_started_key")
