"""event kinds as an enum

Revision ID: 0006
Revises: 0005
Create Date: 2024-05-07 11:31:45.918334

"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KINDS = ("note_created", "note_edited", "note_deleted", "sync", "share")


def upgrade() -> None:
    op.execute("SET lock_timeout = '3s'")
    op.execute("SET statement_timeout = '30s'")
    values = ", ".join(f"'{kind}'" for kind in KINDS)
    op.execute(f"CREATE TYPE event_kind AS ENUM ({values})")
    op.execute("ALTER TABLE events ALTER COLUMN kind TYPE event_kind USING kind::event_kind")


def downgrade() -> None:
    op.execute("ALTER TABLE events ALTER COLUMN kind TYPE text USING kind::text")
    op.execute("DROP TYPE event_kind")
