"""initial schema

Revision ID: 0001
Revises:
Create Date: 2024-02-02 10:14:07.120553

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    )
    op.create_index("ix_events_user_occurred", "events", ["user_id", "occurred_at"])
    op.create_table(
        "daily_active",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("users", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("daily_active")
    op.drop_index("ix_events_user_occurred", table_name="events")
    op.drop_table("events")
