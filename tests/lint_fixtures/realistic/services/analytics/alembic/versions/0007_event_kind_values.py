"""new event kinds for reminders

Revision ID: 0007
Revises: 0006
Create Date: 2024-06-18 17:12:09.551870

"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A value added in a transaction cannot be used before that transaction commits.
    with op.get_context().autocommit_block():
        op.execute("ALTER TYPE event_kind ADD VALUE IF NOT EXISTS 'reminder_set'")
        op.execute("ALTER TYPE event_kind ADD VALUE IF NOT EXISTS 'reminder_done'")


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value; the extra values are harmless.
    pass
