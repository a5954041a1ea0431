"""`duru reminder`: reminders of notes, at a time, at a place, or recurring."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from duru.cli.app import DbOption, app
from duru.cli.device import (
    JsonOption,
    device,
    for_table,
    friendly,
    parse_when,
    report_written,
    resolve,
)
from duru.cli.output import format_value, print_fields, print_rows, visible
from duru.errors import UsageError

if TYPE_CHECKING:
    from duru.model import Row

reminder_app = typer.Typer(
    help="Reminders of notes: at a time, at a place, or recurring; snooze, pause and remove.",
    no_args_is_help=True,
)
app.add_typer(reminder_app, name="reminder")

ReminderArg = typer.Argument(
    ..., help="Reminder id: the full uuid or a unique prefix (4+ characters)."
)
WHEN_HELP = (
    "YYYY-MM-DD, YYYY-MM-DDTHH:MM (UTC unless a zone is given), or from now: 10m, 2h, 3d, 1w"
)
REMINDER_COLUMNS = ("id", "title", "type", "remind_at", "is_active", "note_id")
# The model's names written out, so that building the help does not import the model
# (tests/test_cli_startup.py checks them against RECURRENCE).
RECURRENCES = "none, daily, weekly, monthly, yearly"
_FROM_NOW = re.compile(r"\+?(\d{1,6})\s*(m|min|h|d|w)", re.IGNORECASE)
_UNIT = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, what: str) -> datetime:
    """A moment typed as an ISO date (UTC unless zoned) or as a span from now (``10m``)."""
    span = _FROM_NOW.fullmatch(text.strip())
    if span is None:
        try:
            return parse_when(text, what)
        except UsageError:
            raise UsageError(f"{what}: {text!r} is not a time (use {WHEN_HELP})") from None
    amount, unit = int(span.group(1)), _UNIT[span.group(2).lower()]
    try:
        return datetime.now(UTC) + timedelta(**{unit: amount})
    except OverflowError:
        raise UsageError(f"{what}: {text!r} is beyond any calendar") from None


@reminder_app.command("add")
def add(
    note: str = typer.Argument(..., help="The note (id or unique prefix) to remind of."),
    when: str | None = typer.Argument(
        None, help=f"When it fires: {WHEN_HELP}. Leave out for a place-only reminder."
    ),
    title: str = typer.Option("", "--title", help="What the notification says."),
    body: str = typer.Option("", "--body", "-b", help="More text for the notification."),
    every: str | None = typer.Option(
        None, "--every", help=f"Repeat: one of {RECURRENCES} (makes it recurring)."
    ),
    interval: int = typer.Option(
        1, "--interval", help="With --every: fire every N days, weeks, ... (default 1)."
    ),
    until: str | None = typer.Option(
        None, "--until", help="With --every: the last date it may fire (YYYY-MM-DD, UTC)."
    ),
    place: str | None = typer.Option(None, "--place", help="With --lat/--lon: the place's name."),
    lat: float | None = typer.Option(None, "--lat", help="Latitude of a place reminder."),
    lon: float | None = typer.Option(None, "--lon", help="Longitude of a place reminder."),
    radius: float | None = typer.Option(None, "--radius", help="Metres around the place."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Add a reminder to a live note: at a time, every day/week/..., or at a place."""
    from duru.model import NOTE, REMINDER

    with device(db, writes=True) as store:
        kind = (
            "recurring"
            if every is not None
            else "location"
            if lat is not None or lon is not None
            else "time"
        )
        fields: Row = {"title": title, "body": body}
        if every is not None:
            fields |= {"recurrence_pattern": every, "recurrence_interval": interval}
            if until is not None:
                fields["recurrence_end_date"] = parse_when(until, "--until")
        elif until is not None or interval != 1:
            raise UsageError("--until and --interval go with --every")
        if lat is not None or lon is not None or place is not None or radius is not None:
            fields |= {"latitude": lat, "longitude": lon, "radius": radius, "location_name": place}
        at = None if when is None else parse_time(when, "when")
        row = store.reminders.create(resolve(store, NOTE, note), remind_at=at, type=kind, **fields)
        report_written(REMINDER, row, "added", _label(row), as_json)


@reminder_app.command("list")
def list_reminders(
    note: str | None = typer.Option(
        None, "--note", help="This note's reminders (all of them, paused ones too) instead."
    ),
    since: str | None = typer.Option(
        None, "--since", help=f"Upcoming from this moment on ({WHEN_HELP}); default: now."
    ),
    limit: int = typer.Option(20, "--limit", "-n", help="Show at most this many reminders."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """List active reminders of live notes that fire from now on, soonest first."""
    from duru.model import NOTE

    with device(db) as store:
        if note is not None:
            if since is not None:
                raise UsageError("--since lists upcoming reminders; it does not go with --note")
            rows = store.reminders.list_for_note(resolve(store, NOTE, note))
        else:
            start = None if since is None else parse_time(since, "--since")
            rows = store.reminders.upcoming(limit, since=start)
    _print_reminders(rows, as_json)


@reminder_app.command("show")
def show(
    reminder: str = ReminderArg, as_json: bool = JsonOption, db: Path | None = DbOption
) -> None:
    """Show every field of one reminder."""
    from duru.model import REMINDER

    with device(db) as store:
        row = friendly(REMINDER, store.reminders.get(resolve(store, REMINDER, reminder)))
    print_fields(row, as_json)


@reminder_app.command("snooze")
def snooze(
    reminder: str = ReminderArg,
    until: str = typer.Argument(..., help=f"When it fires again: {WHEN_HELP}."),
    as_json: bool = JsonOption,
    db: Path | None = DbOption,
) -> None:
    """Make a reminder fire again later (it becomes active if it was paused)."""
    from duru.model import REMINDER

    with device(db, writes=True) as store:
        when = parse_time(until, "until")
        row = store.reminders.snooze(resolve(store, REMINDER, reminder), when)
        report_written(REMINDER, row, "snoozed", _label(row), as_json)


def _switch(name: str, verb: str, doc: str) -> None:
    """Register `duru reminder <name> REMINDER`: one call of ``store.reminders.<method>``."""
    method = {"off": "deactivate", "on": "activate"}[name]

    def command(
        reminder: str = ReminderArg, as_json: bool = JsonOption, db: Path | None = DbOption
    ) -> None:
        from duru.model import REMINDER

        with device(db, writes=True) as store:
            row = getattr(store.reminders, method)(resolve(store, REMINDER, reminder))
            report_written(REMINDER, row, verb, _label(row), as_json)

    command.__doc__ = doc
    reminder_app.command(name)(command)


_switch("off", "paused", "Pause a reminder: it stays on its note but does not fire.")
_switch("on", "resumed", "Let a paused reminder fire again.")


@reminder_app.command("rm")
def remove(
    reminder: str = ReminderArg, as_json: bool = JsonOption, db: Path | None = DbOption
) -> None:
    """Delete a reminder for good (tasks that pointed at it keep going without one)."""
    from duru.model import REMINDER

    with device(db, writes=True) as store:
        row = store.reminders.delete(resolve(store, REMINDER, reminder))
        report_written(REMINDER, row, "deleted", _label(row), as_json)


def _label(row: Row) -> str:
    at, place = row["remind_at"], row["location_name"]
    when = "" if at is None else "at " + format_value("remind_at", at) + " UTC"
    where = "" if place is None else f"at {place}"
    return visible(" ".join(p for p in (row["title"], when, where) if p))


def _print_reminders(rows: list[Row], as_json: bool) -> None:
    from duru.model import REMINDER

    if as_json:
        print_rows([friendly(REMINDER, r) for r in rows], REMINDER_COLUMNS, as_json=True)
        return
    shown = for_table(REMINDER, rows)
    for row in shown:
        row["is_active"] = "yes" if row["is_active"] else "paused"
    print_rows(shown, REMINDER_COLUMNS, title="Reminders")
