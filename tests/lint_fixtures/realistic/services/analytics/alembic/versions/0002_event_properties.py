"""add properties to events

Revision ID: 0002
Revises: 0001
Create Date: 2024-03-11 16:40:51.003112

"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET lock_timeout = '3s'")
    op.execute("SET statement_timeout = '60s'")
    op.execute("ALTER TABLE events ADD COLUMN properties jsonb NOT NULL DEFAULT '{}'::jsonb")
    op.execute("ALTER TABLE events ADD COLUMN app_version text")


def downgrade() -> None:
    op.execute("ALTER TABLE events DROP COLUMN app_version")
    op.execute("ALTER TABLE events DROP COLUMN properties")
