"""Reminders of notes: at a time, at a place, or recurring.

``remind_at`` is always the next time a reminder fires: snoozing moves it
(and records ``snoozed_until`` and ``snooze_count``), so :meth:`upcoming`
stays one walk of the partial index ix_reminders_remind_at.
"""

from __future__ import annotations

from datetime import UTC, datetime

from duru.errors import InvalidValue
from duru.local.db import Database
from duru.local.rows import (
    allow_only,
    change,
    check_limit,
    live_note,
    require_live_note,
    require_note,
    select,
)
from duru.local.schema import where_sql
from duru.model import (
    REMINDER,
    REMINDER_TYPE,
    TASK,
    Row,
    complete_row,
    encode_changes,
    new_id,
    now_ms,
    to_local,
)

_ACTIVE = where_sql(REMINDER, {"is_active": True}, "x.")
_TIME, _LOCATION, _RECURRING = (REMINDER_TYPE.code(n) for n in ("time", "location", "recurring"))
# What a caller may set; id, note, stamps and version belong to the store.
_SETTABLE = frozenset(REMINDER.field_names) - {
    "id",
    "note_id",
    "remind_at",
    "type",
    "created_at",
    "updated_at",
    "version",
}
_NO_RECURRENCE = REMINDER.field("recurrence_pattern").enum.code("none")
# Times a person sets on a reminder lie between these. Outside them is a mistake, not a
# plan: seconds given as milliseconds (a date in 1970), a negative number, year 50000.
_EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00Z
_LATEST_MS = 32_503_680_000_000  # 3000-01-01T00:00Z
_TIMES = ("remind_at", "snoozed_until", "recurrence_end_date", "last_triggered")


def check_times(values: Row) -> None:
    """InvalidValue for a reminder time (stored form) outside 2000..3000, saying why.

    Checks the times a caller gives, never stored ones: an imported reminder
    with an odd old time stays editable.
    """
    for name in _TIMES:
        value = values.get(name)
        if value is not None and not _EARLIEST_MS <= value < _LATEST_MS:
            raise InvalidValue(_bad_time(name, value))


def _bad_time(name: str, ms: int) -> str:
    if _EARLIEST_MS // 1000 <= ms < _LATEST_MS // 1000:
        return (
            f"{name} {ms} looks like seconds since 1970 ({_iso(ms * 1000)}): reminder times"
            f" are epoch milliseconds ({ms * 1000}) or datetimes"
        )
    when = "before 1970" if ms < 0 else _iso(ms)
    return f"{name} {ms} ms is {when}: a reminder time must lie between 2000 and 3000"


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (OverflowError, OSError, ValueError):
        return "beyond any calendar"


def check_reminder(row: Row) -> None:
    """InvalidValue unless a complete stored reminder row is coherent for its type."""
    kind = row["type"]
    if kind in (_TIME, _RECURRING) and row["remind_at"] is None:
        raise InvalidValue(f"a {REMINDER_TYPE.name_of(kind)} reminder needs remind_at")
    if kind == _LOCATION and (row["latitude"] is None or row["longitude"] is None):
        raise InvalidValue("a location reminder needs latitude and longitude")
    if kind == _RECURRING and row["recurrence_pattern"] == _NO_RECURRENCE:
        raise InvalidValue("a recurring reminder needs a recurrence_pattern other than none")
    if row["recurrence_interval"] < 1:
        raise InvalidValue("recurrence_interval must be at least 1")
    lat, lon, radius = row["latitude"], row["longitude"], row["radius"]
    if lat is not None and not -90 <= lat <= 90:
        raise InvalidValue(f"latitude {lat} is outside -90..90")
    if lon is not None and not -180 <= lon <= 180:
        raise InvalidValue(f"longitude {lon} is outside -180..180")
    if radius is not None and radius <= 0:
        raise InvalidValue(f"radius {radius} must be positive")


def unlink_tasks(db: Database, reminder_id: str) -> int:
    """Clear ``reminder_id`` on tasks pointing at it, each with its outbox row.

    Done explicitly before the reminder goes, instead of letting ON DELETE SET
    NULL change the tasks behind the outbox's back.
    """
    with db.transaction():
        linked = db.conn.execute(
            "SELECT id FROM tasks WHERE reminder_id = ? ORDER BY id", (reminder_id,)
        ).fetchall()
        for (task_id,) in linked:
            db.update(TASK, task_id, {"reminder_id": None})
    return len(linked)


def delete_reminder(db: Database, reminder_id: str) -> Row:
    """Delete a reminder for good, unlinking its tasks first (one transaction)."""
    with db.transaction():
        unlink_tasks(db, reminder_id)
        return db.delete(REMINDER, reminder_id)


class Reminders:
    """Reminders of notes. Every write goes through the outbox in one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        note_id: str,
        *,
        remind_at: int | datetime | None = None,
        type: str = "time",
        **fields: object,
    ) -> Row:
        """A new reminder on a live note.

        ``fields`` are any other reminder fields (``title``, ``latitude``,
        ``recurrence_pattern``, ...). A time or recurring reminder needs
        ``remind_at``; a location one needs ``latitude`` and ``longitude``.
        Raises NotFound for an unknown or trashed note, InvalidValue otherwise.
        """
        allow_only("a new reminder", fields, _SETTABLE)
        values = {"note_id": note_id, "remind_at": remind_at, "type": type, **fields}
        row = complete_row(REMINDER, {"id": new_id(), **values}, now_ms())
        check_times(row)
        check_reminder(row)
        with self.db.transaction():
            require_live_note(self.db, note_id)
            return self.db.insert(REMINDER, values)

    def get(self, reminder_id: str) -> Row:
        """The reminder ``reminder_id``; NotFound when there is none."""
        return self.db.get(REMINDER, reminder_id)

    def edit(self, reminder_id: str, **changes: object) -> Row:
        """Change some fields; the result must still be coherent for its type."""
        allow_only("a reminder edit", changes, _SETTABLE | {"remind_at", "type"})
        with self.db.transaction():
            current = self.db.get(REMINDER, reminder_id)
            encoded = encode_changes(REMINDER, changes)
            check_times(encoded)
            check_reminder({**current, **encoded})
            return change(self.db, REMINDER, reminder_id, changes)

    def snooze(self, reminder_id: str, until: int | datetime) -> Row:
        """Fire again at ``until``: moves remind_at there, counts the snooze."""
        with self.db.transaction():
            current = self.db.get(REMINDER, reminder_id)
            check_times({"snoozed_until": to_local(REMINDER.field("snoozed_until"), until)})
            return self.db.update(
                REMINDER,
                reminder_id,
                {
                    "remind_at": until,
                    "snoozed_until": until,
                    "snooze_count": current["snooze_count"] + 1,
                    "is_active": True,
                },
            )

    def deactivate(self, reminder_id: str) -> Row:
        """Stop a reminder from firing (it stays on its note)."""
        return change(self.db, REMINDER, reminder_id, {"is_active": False})

    def activate(self, reminder_id: str) -> Row:
        """Let a deactivated reminder fire again."""
        return change(self.db, REMINDER, reminder_id, {"is_active": True})

    def delete(self, reminder_id: str) -> Row:
        """Delete a reminder for good; tasks that pointed at it keep going without one."""
        return delete_reminder(self.db, reminder_id)

    def list_for_note(self, note_id: str) -> list[Row]:
        """The note's reminders, soonest first (place-only ones, without a time, last)."""
        require_note(self.db, note_id)
        return select(
            self.db,
            REMINDER,
            "WHERE x.note_id = ? ORDER BY x.remind_at IS NULL, x.remind_at, x.rowid",
            (note_id,),
        )

    def upcoming(self, limit: int = 20, *, since: int | datetime | None = None) -> list[Row]:
        """Active reminders of live notes firing at or after ``since`` (default: now).

        Soonest first; one walk of ix_reminders_remind_at that stops at ``limit``.
        """
        check_limit(limit)
        start = now_ms() if since is None else to_local(REMINDER.field("remind_at"), since)
        return select(
            self.db,
            REMINDER,
            f"WHERE {_ACTIVE} AND x.remind_at >= ?"
            f" AND EXISTS (SELECT 1 FROM notes n WHERE n.id = x.note_id AND {live_note('n')})"
            " ORDER BY x.remind_at LIMIT ?",
            (start, limit),
        )
