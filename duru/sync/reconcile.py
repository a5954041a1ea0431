"""A pulled change meets a row this device changed and has not pushed yet.

- The server's newer row: merged three ways with this device's (``merge``) against the
  base the device last saw (``sync_base``); the merged row is written here at the
  server's version, and its ops stay queued, so the next push lands it on top. A hunk
  edited differently on both sides keeps the server's text in the row, and this
  device's whole row becomes a conflicted copy (a note titled so, linked to the
  original) with a conflict record. Nothing is dropped unseen.
- The server deleted the row: the edit here survives. The row takes the tombstone's
  version, so the next push brings it back, and a record says so.
- The row was deleted here, edited there: the edit survives; the row comes back here.

Revisions the server stored for this device's stale pushes (``sync_merges``) get their
outcome (merged, copied, revived) queued for the server (``sync_resolutions``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from duru.local.db import Database
from duru.local.schema import quote
from duru.model import NOTE, NOTE_LINK, Entity, new_id, now_ms
from duru.sync.merge import merge_row
from duru.sync.outbox import resolve_later


def merge_pending(db: Database, e: Entity, theirs: dict[str, Any]) -> str:
    """Reconcile the server's row ``theirs`` with this device's pending one.

    Returns what happened: "merged", "copied" (a clash kept as a copy or an open record),
    "restored" (deleted here, edited there), "same" (nothing left to push) or
    "deferred" (the merged row points at a parent this device has not got yet: the
    row and its ops stay, and the caller keeps ``theirs`` waiting in ``sync_waiting``,
    merged again when it can be placed).
    """
    key = str(theirs[e.key])
    mine = db.find(e, key)
    if mine is None:
        _drop_pending(db, e, key)
        try:
            with db.transaction():
                _write(db, e, theirs, insert=True)
        except Exception:  # noqa: BLE001 - its parent went here too: it waits for it
            db.conn.execute(
                "INSERT OR REPLACE INTO sync_waiting (entity, row_id, row_json) VALUES (?, ?, ?)",
                (e.name, key, json.dumps(theirs)),
            )
        _record(db, e, key, "delete", None, "revived")
        return "restored"
    base = _base(db, e, key)
    merged = merge_row(e, base, mine, theirs)
    try:
        with db.transaction():
            _write(db, e, merged.row, insert=False)
    except Exception:  # noqa: BLE001 - a parent not here yet: merge again next time
        return "deferred"
    outcome = "merged"
    copy: str | None = None
    if not merged.clean:
        copy = conflicted_copy(db, e, mine, theirs)
        outcome = "copied"
        status = "copied" if copy else "open"
        records = _resolve_merges(db, e, key, status, copy)
        if not records:
            records = [_record(db, e, key, "upsert", mine, status, copy)]
        if base is not None:  # for --keep mine: the side kept aside wins the clash only
            db.conn.executemany(
                "INSERT OR REPLACE INTO sync_conflict_bases (conflict_id, row_json) VALUES (?, ?)",
                [(r, json.dumps(base)) for r in records],
            )
    else:
        _resolve_merges(db, e, key, "merged", None)
    if all(merged.row.get(f) == theirs.get(f) for f in e.field_names):
        _drop_pending(db, e, key)
        return "same" if merged.clean else outcome
    db.conn.execute(
        "INSERT OR REPLACE INTO sync_base (entity, row_id, row_json) VALUES (?, ?, ?)",
        (e.name, key, json.dumps(theirs)),
    )
    _requeue(db, e, key, int(theirs["version"]))
    return outcome


def keep_over_delete(db: Database, e: Entity, key: str, version: int, *, say: bool = True) -> None:
    """The server deleted a row edited here: keep it, based on the tombstone's version.

    ``say``: record it ("revived"); not for a copy a resolution here keeps (it says so).
    """
    db.conn.execute(
        f"UPDATE {quote(e.table)} SET version = ? WHERE {quote(e.key)} = ?", (version, key)
    )
    db.conn.execute("DELETE FROM sync_base WHERE entity = ? AND row_id = ?", (e.name, key))
    _requeue(db, e, key, version)
    if say and not _resolve_merges(db, e, key, "revived", None):
        _record(db, e, key, "delete", None, "revived")


def _requeue(db: Database, e: Entity, key: str, version: int) -> None:
    """Queue the row as a new write on top of ``version``: a new op id, or the server
    would answer its push with what it said to the stale one (``duplicate``)."""
    db.conn.execute(
        "INSERT INTO outbox (op_id, entity, row_id, kind, base_version, created_at)"
        " VALUES (?, ?, ?, 'upsert', ?, ?)",
        (new_id(), e.name, key, version, now_ms()),
    )


def _base(db: Database, e: Entity, key: str) -> dict[str, Any] | None:
    found = db.conn.execute(
        "SELECT row_json FROM sync_base WHERE entity = ? AND row_id = ?", (e.name, key)
    ).fetchone()
    return None if found is None else dict(json.loads(found[0]))


def _write(db: Database, e: Entity, row: dict[str, Any], *, insert: bool) -> None:
    names = e.field_names
    if insert:
        marks = ", ".join("?" * len(names))
        db.conn.execute(
            f"INSERT INTO {quote(e.table)} ({', '.join(map(quote, names))}) VALUES ({marks})",
            [row[n] for n in names],
        )
        return
    cols = [n for n in names if n != e.key]
    db.conn.execute(
        f"UPDATE {quote(e.table)} SET {', '.join(f'{quote(c)} = ?' for c in cols)}"
        f" WHERE {quote(e.key)} = ?",
        [*(row[c] for c in cols), row[e.key]],
    )


def _drop_pending(db: Database, e: Entity, key: str) -> None:
    db.conn.execute("DELETE FROM outbox WHERE entity = ? AND row_id = ?", (e.name, key))
    db.conn.execute("DELETE FROM sync_base WHERE entity = ? AND row_id = ?", (e.name, key))


def copy_title(title: object) -> str:
    """How the title of a conflicted copy of a note titled ``title`` begins."""
    return f"{title} (conflicted copy, "


def conflicted_copy(
    db: Database,
    e: Entity,
    mine: dict[str, Any],
    theirs: dict[str, Any],
    *,
    ids: tuple[str, str] | None = None,
    made: tuple[str, datetime] | None = None,
) -> str | None:
    """For a note: a new note holding this device's text, linked to the original.

    ``ids`` (copy, link) and ``made`` (device, when) for a copy that every device must
    make alike; by default new ids, this device and now.
    """
    if e is not NOTE:
        return None
    device, when = made or ((db.meta("device_id") or "this device")[:8], datetime.now(UTC))
    copy = db.insert(
        NOTE,
        {
            **({} if ids is None else {"id": ids[0]}),
            "title": f"{copy_title(mine['title'])}{device}, {when:%Y-%m-%d %H:%M})",
            "body": mine["body"],
            "note_type": mine["note_type"],
            "metadata": mine["metadata"],
        },
    )
    db.insert(
        NOTE_LINK,
        {
            **({} if ids is None else {"id": ids[1]}),
            "source_id": copy["id"],
            "target_id": theirs["id"],
            "target_title": theirs["title"],
        },
    )
    return str(copy["id"])


def _resolve_merges(db: Database, e: Entity, key: str, status: str, copy: str | None) -> list[str]:
    """Give every revision of this row that a push of ours caused its outcome; their ids."""
    found = db.conn.execute(
        "SELECT revision_id FROM sync_merges WHERE entity = ? AND row_id = ?", (e.name, key)
    ).fetchall()
    for (revision,) in found:
        resolve_later(db, revision, status, copy)
        db.conn.execute(
            "UPDATE sync_conflicts SET status = ?, copy_id = ? WHERE id = ?",
            (status, copy, revision),
        )
    db.conn.execute("DELETE FROM sync_merges WHERE entity = ? AND row_id = ?", (e.name, key))
    return [str(r) for (r,) in found]


def _record(
    db: Database,
    e: Entity,
    key: str,
    kind: str,
    row: dict[str, Any] | None,
    status: str,
    copy: str | None = None,
) -> str:
    """A conflict record this device made itself (no server revision stands for it)."""
    record = new_id()
    db.conn.execute(
        "INSERT INTO sync_conflicts (id, entity, row_id, kind, base_version, server_version,"
        " device_id, row_json, created_at, seq, status, copy_id)"
        " VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, 0, ?, ?)",
        (
            record,
            e.name,
            key,
            kind,
            db.meta("device_id") or "",
            None if row is None else json.dumps(row, sort_keys=True, ensure_ascii=False),
            datetime.now(UTC).isoformat(),
            status,
            copy,
        ),
    )
    return record
