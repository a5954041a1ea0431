"""raw client payload for debugging

Revision ID: 0009
Revises: 0008
Create Date: 2024-08-12 13:44:02.084417

"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET lock_timeout = '3s'")
    op.execute("SET statement_timeout = '30s'")
    op.execute("ALTER TABLE events ADD COLUMN raw_payload json")
    op.execute("COMMENT ON COLUMN events.raw_payload IS 'request body as received, for debugging'")


def downgrade() -> None:
    op.execute("ALTER TABLE events DROP COLUMN raw_payload")
