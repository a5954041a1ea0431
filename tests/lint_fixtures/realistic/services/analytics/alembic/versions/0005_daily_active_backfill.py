"""backfill daily_active from events, in batches

Revision ID: 0005
Revises: 0004
Create Date: 2024-04-20 08:00:00.000000

"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FIRST_DAY = dt.date(2024, 2, 1)

FILL_DAY = sa.text(
    """
    INSERT INTO daily_active (day, users)
    SELECT :day, count(DISTINCT user_id)
    FROM events
    WHERE occurred_at >= :day AND occurred_at < :day + 1
    ON CONFLICT (day) DO UPDATE SET users = excluded.users
    """
)


def upgrade() -> None:
    bind = op.get_bind()
    day = FIRST_DAY
    while day < dt.date.today():
        bind.execute(FILL_DAY, {"day": day})
        day += dt.timedelta(days=1)


def downgrade() -> None:
    op.execute("DELETE FROM daily_active WHERE day >= '2024-02-01'")
