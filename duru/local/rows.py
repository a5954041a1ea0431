"""Small row helpers shared by the notes API modules.

Select lists are derived from the model, so a query never names an entity's
columns by hand and never leaks storage-only columns such as ``doc_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from duru.errors import InvalidValue, NotFound
from duru.local.db import Database
from duru.local.schema import quote, where_sql
from duru.model import NOTE, Entity, Row, encode_changes


def columns(e: Entity, alias: str = "") -> str:
    """The select list of ``e``'s model fields, optionally prefixed by ``alias``."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{quote(n)}" for n in e.field_names)


def select(
    db: Database,
    e: Entity,
    tail: str,
    params: Sequence[object] | Mapping[str, object] = (),
    alias: str = "x",
) -> list[Row]:
    """Rows of ``e`` (model fields only) from ``FROM <table> <alias> <tail>``."""
    sql = f"SELECT {columns(e, alias)} FROM {quote(e.table)} {alias} {tail}"
    return db.rows(sql, params)


def live_note(alias: str) -> str:
    """``<alias>."deleted" = 0``, spelt as the partial indexes spell it so SQLite uses them."""
    return where_sql(NOTE, {"deleted": False}, f"{alias}.")


def change(db: Database, e: Entity, key: str, changes: Row) -> Row:
    """Update only the fields whose stored value differs; no write when none does.

    A no-op therefore writes no outbox row. Raises NotFound for an unknown key
    and InvalidValue for a value that does not fit its field.
    """
    with db.transaction():
        current = db.get(e, key)
        encoded = encode_changes(e, changes)
        # Pass the caller's values on: update encodes them, and JSON does not encode twice.
        different = {k: changes[k] for k, v in encoded.items() if current[k] != v}
        if not different:
            return current
        return db.update(e, key, different)


def require_live_note(db: Database, note_id: str) -> Row:
    """The note ``note_id``; NotFound when it does not exist or is in the trash.

    Trashed notes are read-only: restore one before changing what hangs off it.
    """
    note = db.get(NOTE, note_id)
    if note["deleted"]:
        raise NotFound(f"note {note_id} is in the trash")
    return note


def require_note(db: Database, note_id: str) -> None:
    """NotFound unless the note exists (live or trashed): listing an unknown note is an error."""
    db.get(NOTE, note_id)


def allow_only(what: str, fields: Mapping[str, object], allowed: frozenset[str]) -> None:
    """InvalidValue naming any of ``fields`` a call does not let its caller set."""
    refused = sorted(set(fields) - allowed)
    if refused:
        raise InvalidValue(f"{what} cannot set {', '.join(refused)} here")


def check_limit(limit: int, offset: int = 0) -> None:
    """InvalidValue unless ``limit`` is positive and ``offset`` is not negative."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidValue(f"limit must be a positive integer, not {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidValue(f"offset must be a non-negative integer, not {offset!r}")
