"""record where each event came from

Revision ID: 0004
Revises: 0003
Create Date: 2024-04-02 14:25:10.448019

"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET lock_timeout = '3s'")
    op.execute("SET statement_timeout = '10min'")
    op.execute("ALTER TABLE events ADD COLUMN source text")
    op.execute(
        """
        UPDATE events
        SET source = CASE WHEN properties ? 'web' THEN 'web' ELSE 'app' END
        """
    )


def downgrade() -> None:
    op.drop_column("events", "source")
