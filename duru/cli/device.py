"""What the device-store commands share: opening the store, typed ids, dates and rows.

The store (duru.local) is imported when a command opens it, not when its module is
imported: `duru --help` and the commands that need no device start without it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from duru.cli.app import reported, resolve_db
from duru.cli.output import print_json
from duru.errors import NotFound, StoreError, UsageError

if TYPE_CHECKING:
    from duru.local import Database, DeviceStore
    from duru.model import Entity, EnumType, Row

JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")
SHORT_ID = 8  # characters of an id shown in tables; any unique prefix of 4+ is accepted


@contextmanager
def device(db: Path | None, *, create: bool = False, writes: bool = False) -> Iterator[DeviceStore]:
    """The device store a command works on; duru's errors become one line and an exit code.

    Only ``create`` makes a missing database (and its folder). With ``writes``
    the store's housekeeping (index merges, WAL checkpoint) runs before it closes,
    as a process without a background maintainer must. SQLite failures of the file
    (a damaged page found by a read, a full disk, a lock) become duru's errors.
    """
    from duru.local.failures import sqlite_failures
    from duru.local.maintenance import configure_writer

    path = resolve_db(db)
    with reported(), sqlite_failures(path):
        store = _open(path, create)
        try:
            if writes:
                configure_writer(store.db)
            yield store
            if writes:
                housekeeping(store.db, path)
        finally:
            store.close()


def housekeeping(db: Database, path: Path, *, done: str = "saved") -> None:
    """Index merges and a checkpoint after a write that is already committed.

    Failing here (a full disk, a lock) must not fail the command: the change is
    saved, and a retry by the user would make it twice. Say so and carry on.
    """
    import sqlite3

    from duru.local.failures import store_failure

    try:
        maintain(db)
    except StoreError as exc:
        typer.echo(f"duru: {done}; housekeeping postponed: {exc.message}", err=True)
    except sqlite3.Error as exc:
        failure = store_failure(exc, path)
        if failure is None:
            raise
        typer.echo(f"duru: {done}; housekeeping postponed: {failure.message}", err=True)


def maintain(db: Database) -> None:
    """The store's housekeeping after a write (a module-level seam: tests make it fail)."""
    from duru.local.maintenance import maintain as run

    run(db)


def _open(path: Path, create: bool) -> DeviceStore:
    from duru.local import DeviceStore
    from duru.local.staging import unfinished

    # A killed `duru import` or `duru restore` leaves no database, only its partial
    # build: say so, rather than "no database" or (with create) a new empty one.
    why = unfinished(path)
    if why is not None:
        raise StoreError(why)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        return DeviceStore.open(path)
    try:
        return DeviceStore.open(path, create=False)
    except NotFound as exc:
        raise NotFound(f"{exc.message} (make one with `duru init` or `--db PATH`)") from None


def resolve(store: DeviceStore, ent: Entity, typed: str) -> str:
    """The full id of the ``ent`` row a person typed as a full uuid or unique prefix."""
    return store.db.resolve_prefix(ent, typed)


def short(key: object) -> str:
    """An id cut to the length tables show."""
    return str(key)[:SHORT_ID]


def friendly(e: Entity, row: Row) -> Row:
    """A stored row in its readable form: enum names, true/false, parsed JSON."""
    from duru.model import from_local

    names = set(e.field_names)
    return {k: from_local(e.field(k), v) if k in names else v for k, v in row.items()}


def for_table(e: Entity, rows: Iterable[Row]) -> list[Row]:
    """Rows made readable for a table, ids shortened."""
    out = []
    for row in rows:
        shown = friendly(e, row)
        for name in ("id", "note_id", "parent_id", "parent_task_id", "folder_id"):
            if shown.get(name) is not None:
                shown[name] = short(shown[name])
        out.append(shown)
    return out


def report_written(e: Entity, row: Row, verb: str, label: str, as_json: bool) -> None:
    """Say what a write did: one line for people, the row for machines."""
    if as_json:
        print_json(friendly(e, row))
        return
    typer.echo(f"{verb} {e.name.replace('_', ' ')} {short(row[e.key])} {label}".rstrip())


def parse_when(text: str, what: str) -> datetime:
    """A date or date-time typed as ISO 8601; without a zone it is UTC."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{what}: {text!r} is not a date (use YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def read_text(value: str) -> str:
    """``value`` itself, or standard input when it is ``-`` (UsageError unless UTF-8)."""
    if value != "-":
        return value
    raw = sys.stdin.buffer.read()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"standard input is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})"
        ) from None


def choices(enum: EnumType) -> str:
    """The names an enum option accepts, for its help text."""
    return ", ".join(enum.names)
