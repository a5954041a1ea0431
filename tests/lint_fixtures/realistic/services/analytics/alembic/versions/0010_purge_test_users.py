"""remove events of deleted accounts

Revision ID: 0010
Revises: 0009
Create Date: 2024-09-03 09:17:38.665150

"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET statement_timeout = '15min'")
    op.execute(
        """
        DELETE FROM events e
        WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = e.user_id)
        """
    )


def downgrade() -> None:
    pass
