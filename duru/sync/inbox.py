"""The device side of a pull: a page of changes applied in one local transaction.

Each page and the cursor after it commit together, so a device killed at any point
either has the whole page and the new cursor, or neither, and the next pull repeats it.

- A row with ops still in the outbox is left as it is: the device's change was not
  pushed yet, and its push (against the old base) will become a conflict revision on the
  server, which then sends the row again. Nothing local is overwritten unseen.
- Deletes go children first, upserts parents first. A row whose parent has not arrived
  (or that clashes with a local unique key still to be cleared) waits in
  ``sync_waiting`` and is placed as soon as it can be, so no page boundary loses a row.
- Conflict revisions are opened and kept in ``sync_conflicts`` on every device.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from duru.bridge import codec_for
from duru.crypto import AccountKeys
from duru.errors import BridgeError, CryptoError, TamperedRow, UsageError
from duru.local.db import Database
from duru.local.schema import keyed_rows, quote
from duru.local.search_fill import indexed_in_bulk
from duru.local.sync_tables import (
    SYNC_TABLES,
    create_sync_tables,
    remember_deletes,
)
from duru.model import BY_NAME, ENTITIES, Entity, entity
from duru.remote.layout import server_table

from . import refusals as checks
from .device_rows import insert_rows
from .outbox import has_ops
from .protocol import Change
from .reconcile import keep_over_delete, merge_pending
from .wire import decode_row

CURSOR_KEY = "sync_cursor"
RESYNC_KEY = "sync_resync"
# The user id of the account the device syncs with, kept after a logout (its cursor,
# versions and rows are that account's): another account is refused (``client``).
ACCOUNT_KEY = "sync_account"
_ORDER = {e.name: i for i, e in enumerate(ENTITIES)}


@dataclass
class Applied:
    """What pulling did on this device."""

    upserts: int = 0
    deletes: int = 0
    conflicts: int = 0
    kept_local: int = 0  # rows deleted there but edited here: kept, pushed again
    waiting: int = 0
    quarantined: int = 0  # rows that did not open, kept in the quarantine table
    merged: int = 0  # rows changed both here and there, merged cleanly
    copied: int = 0  # rows whose edits clashed: kept as a conflicted copy or record
    by_entity: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def ensure_tables(db: Database) -> None:
    """Make the sync tables a device lacks (a read when it has them all)."""
    marks = ", ".join("?" * len(SYNC_TABLES))
    found = db.scalar(
        f"SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ({marks})",
        list(SYNC_TABLES),
    )
    if found == len(SYNC_TABLES):  # one read on every sync, not one per table
        return
    with db.transaction():
        create_sync_tables(db.conn)


def cursor(db: Database) -> int | None:
    found = db.meta(CURSOR_KEY)
    return None if found is None else int(found)


def apply_page(
    db: Database,
    keys: AccountKeys,
    changes: list[Change],
    next_cursor: int,
    out: Applied,
) -> None:
    """Apply ``changes`` and move the cursor to ``next_cursor``, in one transaction."""
    # A row this device already holds at that version (its own push coming back) needs
    # neither opening nor writing: a version names one content.
    if db.meta(RESYNC_KEY) != "1":  # a resync must see (and mark) every row
        held = checks.held(db, changes)
        changes = [
            c for c in changes if c.kind != "upsert" or (c.entity, c.row_id, c.version) not in held
        ]
    opened, refused = _open_all(changes, keys)  # decrypt before taking the write lock
    with db.transaction():
        bases = checks.mac_bases(opened)
        opened, replayed = checks.refuse_replays(db, opened, bases)
        opened, revived = checks.refuse_revivals(db, opened, bases)
        refused = [*refused, *replayed, *revived]
        resync = db.meta(RESYNC_KEY) == "1"
        for c, reason in refused:
            # A row no key of ours opens (tampered, or sealed for another place) must not
            # stop every later sync: it is kept, with the reason, and reported. In a full
            # resync the copy here counts as seen: the server's bad row must not make
            # this device drop its good one.
            if resync:
                db.conn.execute(
                    "INSERT OR IGNORE INTO sync_seen (entity, row_id) VALUES (?, ?)",
                    (c.entity, c.row_id),
                )
            table = BY_NAME[c.entity].table if c.entity in BY_NAME else c.entity
            kept = c.row if isinstance(c.row, dict) else {"row": c.row}
            db.quarantine("sync", table, c.row_id, reason, kept)
            out.quarantined += 1
        pending = {(e, r) for e, r in db.conn.execute("SELECT entity, row_id FROM outbox")}
        copies = _kept_copies(db)
        deletes = [c for c, _ in opened if c.kind == "delete"]
        upserts = [(c, row) for c, row in opened if c.kind == "upsert"]
        for c, row in opened:
            if c.kind == "conflict":
                _keep_conflict(db, c, row)
                out.conflicts += 1
        held_back: list[Change] = []
        kept_here: set[tuple[str, str]] = set()
        for c in sorted(deletes, key=lambda c: -_ORDER[c.entity]):
            named = (c.entity, c.row_id) in copies
            if (c.entity, c.row_id) in pending or named or _edited_below(db, c, pending):
                mine = db.find(entity(c.entity), c.row_id)
                if mine is not None:
                    kept_here.add((c.entity, c.row_id))
                # At the tombstone's version already: written again on top of this very
                # delete (a parent the server asked for, see ``outbox``), nothing to keep.
                if mine is not None and mine["version"] != c.version:
                    keep_over_delete(db, entity(c.entity), c.row_id, c.version, say=not named)
                    out.kept_local += 1
            else:
                held_back.append(c)
        _remember_pulled_deletes(db, [c for c in deletes if (c.entity, c.row_id) not in kept_here])
        # An older version of a row the server deleted no longer waits to be placed: it
        # would be placed once its way was clear, a row deleted everywhere back here.
        db.conn.executemany(
            "DELETE FROM sync_waiting WHERE entity = ? AND row_id = ?",
            [(c.entity, c.row_id) for c in deletes],
        )
        # A folder's tombstone may come before its subfolder's: retry what a row still
        # below it refused, until nothing more goes.
        held_back = _delete_all(db, held_back, out)
        by_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
        clashing: list[tuple[Change, dict[str, Any]]] = []
        for c, row in upserts:
            if resync:
                db.conn.execute(
                    "INSERT OR IGNORE INTO sync_seen (entity, row_id) VALUES (?, ?)",
                    (c.entity, c.row_id),
                )
            assert row is not None
            if (c.entity, c.row_id) in pending:
                clashing.append((c, row))
            else:
                by_entity[c.entity].append(row)
        for e in ENTITIES:
            rows = by_entity.get(e.name)
            if rows:
                _upsert(db, e, rows, out)
        # After the plain rows: a merged row may point at a parent this page brought.
        for c, row in sorted(clashing, key=lambda cr: _ORDER[cr[0].entity]):
            done = merge_pending(db, entity(c.entity), row)
            if done == "deferred":
                # Merged, it points at a parent not here yet: it waits for it, and is
                # merged once placed. Dropped, no later page brought it again, and the
                # edit here went to the server on the old version (a conflict).
                _wait(db, entity(c.entity), row)
            out.merged += done in ("merged", "same", "restored")
            out.copied += done == "copied"
        _place_waiting(db, out)
        _delete_all(db, held_back, out)  # the rows holding them may have moved away
        db.set_meta(CURSOR_KEY, str(next_cursor))


def finish_resync(db: Database) -> int:
    """After a full pull: drop synced rows the server no longer has; the number dropped."""
    dropped = 0
    with db.transaction():
        for e in reversed(ENTITIES):
            k, t = quote(e.key), quote(e.table)
            gone = db.conn.execute(
                f"SELECT {k}, version FROM {t} WHERE version > 0 AND {k} NOT IN"
                " (SELECT row_id FROM sync_seen WHERE entity = ?)"
                f" AND {k} NOT IN (SELECT row_id FROM outbox WHERE entity = ?)",
                (e.name, e.name),
            ).fetchall()
            for key, version in gone:
                if _delete(db, e, key):
                    remember_deletes(db.conn, [(e.name, key, int(version))])
                    dropped += 1
        db.conn.execute("DELETE FROM sync_seen")
        db.set_meta(RESYNC_KEY, "0")
    return dropped


def start_resync(db: Database) -> None:
    with db.transaction():
        db.conn.execute("DELETE FROM sync_seen")
        db.set_meta(RESYNC_KEY, "1")
        db.set_meta(CURSOR_KEY, "0")


def _remember_pulled_deletes(db: Database, deletes: list[Change]) -> None:
    """Keep the version of each pulled tombstone (of rows this device held or not: a
    new device is protected against rows deleted before it came, while the server
    still sends their tombstones)."""
    remember_deletes(db.conn, [(c.entity, c.row_id, c.version) for c in deletes])


def _open_all(
    changes: list[Change], keys: AccountKeys
) -> tuple[list[tuple[Change, dict[str, Any] | None]], list[tuple[Change, str]]]:
    opened, refused = [], []
    for c in changes:
        try:
            opened.append((c, _open(c, keys)))
        except (CryptoError, BridgeError, UsageError) as exc:
            refused.append((c, f"{type(exc).__name__}: {exc.message}"))
    return opened, refused


def _open(c: Change, keys: AccountKeys) -> dict[str, Any] | None:
    """The device row of an upsert, or the revision (its losing row opened) of a conflict.

    UsageError for a change no server of this version writes (an unknown kind or entity,
    a conflict revision of another shape): refused and kept like a row that does not
    open, so it neither stops every later pull nor vanishes unseen.
    """
    if c.kind not in _KINDS:
        raise UsageError(f"unknown change kind {c.kind!r} (from a newer server? update duru)")
    if c.entity not in BY_NAME:
        raise UsageError(f"unknown entity {c.entity!r} (from a newer server? update duru)")
    if c.kind == "conflict":
        _check_revision(c.row)
    if c.kind == "delete" or c.row is None:
        return None
    e = entity(c.entity)
    codec = codec_for(e)
    if c.kind == "upsert":
        row = codec.from_wire(c.row, keys)  # the one-pass way, for rows as the server writes
        if row is None:
            row = codec.to_local(decode_row(server_table(e), c.row, codec.columns), keys)
        return _same_row(c, row)
    losing = c.row.get("row")
    opened = None
    if losing is not None:
        opened = codec.to_local(decode_row(server_table(e), losing, codec.columns), keys)
        _same_row(c, opened)
    return {**c.row, "row": opened}


_KINDS = frozenset({"upsert", "delete", "conflict"})
# What ``_keep_conflict`` reads of a revision, and the JSON types it must have.
_REVISION: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "kind": (str,),
    "base_version": (int,),
    "server_version": (int,),
    "device_id": (str,),
    "created_at": (str,),
    "status": (str, type(None)),
    "copy_id": (str, type(None)),
    "row": (dict, type(None)),
}


def _check_revision(revision: object) -> None:
    if not isinstance(revision, dict):
        raise UsageError("a conflict revision must be a JSON object")
    for name, types in _REVISION.items():
        value = revision.get(name)
        if not isinstance(value, types) or isinstance(value, bool):
            raise UsageError(f"conflict revision field {name!r} is missing or malformed")


def _same_row(c: Change, row: dict[str, Any]) -> dict[str, Any]:
    """``row``, which its MAC vouches for, unless it is another row than the change names
    (a genuine row of this user sent under another row's id)."""
    key = str(row[entity(c.entity).key])
    if key != c.row_id:
        raise TamperedRow(f"{c.entity} {c.row_id}: the server sent row {key} under this id")
    return row


def _keep_conflict(db: Database, c: Change, revision: dict[str, Any] | None) -> None:
    assert revision is not None
    row = revision.get("row")
    db.conn.execute(
        "INSERT INTO sync_conflicts (id, entity, row_id, kind, base_version,"
        " server_version, device_id, row_json, created_at, seq, status, copy_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
        " status = excluded.status, copy_id = excluded.copy_id, seq = excluded.seq",
        (
            str(revision["id"]),
            c.entity,
            c.row_id,
            str(revision["kind"]),
            int(revision["base_version"]),
            int(revision["server_version"]),
            str(revision["device_id"]),
            None if row is None else json.dumps(row, sort_keys=True, ensure_ascii=False),
            str(revision["created_at"]),
            c.seq,
            str(revision.get("status") or "open"),
            revision.get("copy_id"),
        ),
    )


# Per entity: (child entity, its field) of every link that ON DELETE CASCADE follows.
_CASCADES: dict[str, list[tuple[Entity, str]]] = {
    e.name: [
        (child, f.name)
        for child in ENTITIES
        for f in child.foreign_keys
        if f.references == e.name and f.on_delete == "CASCADE"
    ]
    for e in ENTITIES
}


def _kept_copies(db: Database) -> set[tuple[str, str]]:
    """The conflicted copies that a resolution not sent yet keeps, with the rows below them.

    Another device's resolution of the same conflict may have purged the copy (--keep
    mine there, --keep both here): this resolution goes to the server after the pull and
    is the later one, so the copy it names stays, as an edit stays over a delete.
    """
    found = db.conn.execute(
        "SELECT copy_id FROM sync_resolutions WHERE copy_id IS NOT NULL"
    ).fetchall()
    out: set[tuple[str, str]] = set()
    todo = [("note", str(copy)) for (copy,) in found]
    while todo:
        name, key = todo.pop()
        if (name, key) in out or db.find(entity(name), key) is None:
            continue
        out.add((name, key))
        for child, link in _CASCADES[name]:
            todo += [
                (child.name, str(below))
                for (below,) in db.conn.execute(
                    f"SELECT {quote(child.key)} FROM {quote(child.table)} WHERE {quote(link)} = ?",
                    (key,),
                )
            ]
    return out


def _edited_below(db: Database, c: Change, pending: set[tuple[str, str]]) -> bool:
    """Whether a row the delete ``c`` would take with it here (ON DELETE CASCADE: a
    note's tasks, tags and filings, a folder's filings, a task's subtasks) has changes
    not pushed yet. Then the delete loses to that edit, as against an edit of the row
    itself: the row is kept and written again, the child's edit goes on top of it (a
    "revived" record says so). One indexed read per link below a row this device holds,
    and none while nothing waits to be pushed."""
    if not pending or c.kind != "delete":
        return False
    todo, seen = [(c.entity, c.row_id)], set()
    while todo:
        name, key = todo.pop()
        for child, link in _CASCADES[name]:
            for (below,) in db.conn.execute(
                f"SELECT {quote(child.key)} FROM {quote(child.table)} WHERE {quote(link)} = ?",
                (key,),
            ):
                if (child.name, below) in pending:
                    return True
                if (child.name, below) not in seen:
                    seen.add((child.name, below))
                    todo.append((child.name, below))
    return False


def _delete_all(db: Database, todo: list[Change], out: Applied) -> list[Change]:
    """Delete what ``todo`` names, over and over while that makes progress; the rest."""
    while todo:
        left = []
        for c in todo:
            e = entity(c.entity)
            if db.find(e, c.row_id) is None:
                continue
            if _delete(db, e, c.row_id):
                out.deletes += 1
            else:
                left.append(c)
        if len(left) == len(todo):
            return left
        todo = left
    return []


def _delete(db: Database, e: Entity, key: str) -> bool:
    """Delete a row (SQLite cascades as the server did); False when absent or held."""
    try:
        with db.transaction():
            gone = db.conn.execute(
                f"DELETE FROM {quote(e.table)} WHERE {quote(e.key)} = ?", (key,)
            ).rowcount
    except sqlite3.IntegrityError:
        return False  # a local child with unpushed changes holds it (RESTRICT)
    return bool(gone)


def _upsert(db: Database, e: Entity, rows: list[dict[str, Any]], out: Applied) -> None:
    existing = _existing(db, e, [r[e.key] for r in rows])
    fresh = [r for r in rows if r[e.key] not in existing]
    for r in rows:
        if r[e.key] in existing:
            # A move under a parent this device has not got yet (revived elsewhere) waits.
            if _update_one(db, e, r):
                out.upserts += 1
            else:
                _wait(db, e, r)
    if not fresh:
        return
    try:
        # A first pull brings thousands of notes a page: one index statement for them.
        with db.transaction(), indexed_in_bulk(db, e, len(fresh)):
            insert_rows(db, e, [tuple(r.values()) for r in fresh])
        out.upserts += len(fresh)
        return
    except Exception:  # noqa: BLE001 - one row refused: place them one by one below
        pass
    for r in fresh:
        if _insert_one(db, e, r):
            out.upserts += 1
        else:
            _wait(db, e, r)


def _existing(db: Database, e: Entity, keys: list[str]) -> set[str]:
    return {k for (k,) in keyed_rows(db.conn, quote(e.key), e.table, e.key, keys)}


def _update(db: Database, e: Entity, row: dict[str, Any]) -> None:
    cols = [n for n in e.field_names if n != e.key]
    sets = ", ".join(f"{quote(c)} = ?" for c in cols)
    db.conn.execute(
        f"UPDATE {quote(e.table)} SET {sets} WHERE {quote(e.key)} = ?",
        [*(row[c] for c in cols), row[e.key]],
    )


def _update_one(db: Database, e: Entity, row: dict[str, Any]) -> bool:
    try:
        with db.transaction():
            _update(db, e, row)
    except Exception:  # noqa: BLE001 - a parent that has not arrived: the row waits
        return False
    return True


def _insert_one(db: Database, e: Entity, row: dict[str, Any]) -> bool:
    try:
        with db.transaction():
            insert_rows(db, e, [tuple(row.values())])
    except Exception:  # noqa: BLE001 - a missing parent or a unique key not yet cleared
        return False
    return True


def _wait(db: Database, e: Entity, row: dict[str, Any]) -> None:
    db.conn.execute(
        "INSERT INTO sync_waiting (entity, row_id, row_json) VALUES (?, ?, ?)"
        " ON CONFLICT (entity, row_id) DO UPDATE SET row_json = excluded.row_json",
        (e.name, row[e.key], json.dumps(row)),
    )


def _place_waiting(db: Database, out: Applied) -> None:
    """Place waiting rows whose parents have come, until no more can be placed."""
    while True:
        waiting = db.conn.execute("SELECT entity, row_id, row_json FROM sync_waiting").fetchall()
        placed = stale = 0
        for name, row_id, raw in sorted(waiting, key=lambda w: _ORDER[w[0]]):
            e = entity(name)
            row = json.loads(raw)
            done = False
            held = db.conn.execute(
                f"SELECT version FROM {quote(e.table)} WHERE {quote(e.key)} = ?", (row_id,)
            ).fetchone()
            if held is not None and int(held[0]) >= int(row["version"]):
                # Pulled again since, newer, and placed: this older version would undo it.
                db.conn.execute(
                    "DELETE FROM sync_waiting WHERE entity = ? AND row_id = ?", (name, row_id)
                )
                stale += 1
                continue
            if has_ops(db, name, row_id):
                # Edited here while it waited: merged, as a pulled row that meets an
                # edit here always is; written over, the edit was gone unseen.
                merged = merge_pending(db, e, row)
                done = merged != "deferred"
                out.merged += merged in ("merged", "same", "restored")
                out.copied += merged == "copied"
            elif held is not None:
                done = _update_one(db, e, row)
            else:
                done = _insert_one(db, e, row)
            if done:
                db.conn.execute(
                    "DELETE FROM sync_waiting WHERE entity = ? AND row_id = ?", (name, row_id)
                )
                placed += 1
                out.upserts += 1
        if not placed:
            out.waiting = len(waiting) - stale
            return
