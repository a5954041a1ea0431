"""sessions table and a foreign key from events

Revision ID: 0008
Revises: 0007
Create Date: 2024-07-01 10:05:27.310962

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SET lock_timeout = '3s'")
    op.execute("SET statement_timeout = '30s'")
    op.create_table(
        "sessions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device", sa.Text()),
    )
    op.execute("ALTER TABLE events ADD COLUMN session_id uuid REFERENCES sessions (id)")


def downgrade() -> None:
    op.execute("ALTER TABLE events DROP COLUMN session_id")
    op.drop_table("sessions")
