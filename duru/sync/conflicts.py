"""Conflict records on a device: list them, show one, resolve it.

A record is a version that lost: a stale write the server kept aside (a revision, on
every device), or a clash this device's merge kept as a conflicted copy. Its status:

    open      nothing done with it yet        copied    kept as a conflicted copy
    revived   a delete lost to an edit        merged    merged cleanly (not shown)
    resolved  the user chose (not shown)

``resolve(db, id, keep=...)``: ``mine`` puts the version kept aside back into the row
(or deletes the row again, for a delete; on the device whose merge found the clash,
only its clashing side: the other edits that merged cleanly stay), ``theirs`` keeps
the row as it is, ``both`` keeps the row and the aside version as a conflicted copy
note (notes only: refused for the other rows). Either way the copy made earlier goes
unless ``both`` (to the trash, if someone wrote in it since), and the record becomes
``resolved`` on every device at the next sync. A copy id is believed only of a note
whose own title and link say it is that copy (the server sets the id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid5

from duru.errors import NotFound, UsageError
from duru.local.db import Database
from duru.local.notes import Notes
from duru.model import NOTE, entity, from_local, new_id

from .merge import keep_side
from .outbox import resolve_later
from .reconcile import conflicted_copy, copy_title

Keep = Literal["mine", "theirs", "both"]
OPEN = ("open", "copied", "revived")
_FIELDS = "id, entity, row_id, kind, status, copy_id, device_id, created_at, row_json, seq"
_SKIP = frozenset({"version", "created_at"})
_COPIES = UUID("6f1d2b1e-3c1a-4f5e-9a57-2f8c0d4e7b10")  # namespace of copy ids


@dataclass(frozen=True)
class Conflict:
    """One conflict record; ``row`` is the version kept aside (None for a delete)."""

    id: str
    entity: str
    row_id: str
    kind: str
    status: str
    copy_id: str | None
    device_id: str
    created_at: str
    row: dict[str, Any] | None
    shared: bool  # a server revision (on every device), not this device's own record
    notice: str | None = None  # what resolving did that the user must hear of

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity": self.entity,
            "row_id": self.row_id,
            "kind": self.kind,
            "status": self.status,
            "copy_id": self.copy_id,
            "device_id": self.device_id,
            "created_at": self.created_at,
            "row": self.row,
        }


def list_conflicts(db: Database, *, every: bool = False) -> list[Conflict]:
    """Open records, oldest first (``every``: merged and resolved ones too)."""
    if not db.table_exists("sync_conflicts"):
        return []
    where = "" if every else f"WHERE status IN ({', '.join('?' * len(OPEN))})"
    rows = db.rows(
        f"SELECT {_FIELDS} FROM sync_conflicts {where} ORDER BY created_at, id",
        () if every else OPEN,
    )
    return [_conflict(r) for r in rows]


def find_conflict(db: Database, prefix: str) -> Conflict:
    """The record whose id is, or starts with, ``prefix`` (4 characters at least)."""
    wanted = prefix.strip().lower()
    if len(wanted) < 4:
        raise UsageError("give at least 4 characters of the conflict id")
    if not db.table_exists("sync_conflicts"):
        raise NotFound(f"no conflict {prefix!r}: this device has never synced")
    rows = db.rows(
        f"SELECT {_FIELDS} FROM sync_conflicts WHERE id >= ? AND id < ? ORDER BY id LIMIT 3",
        (wanted, wanted + "\uffff"),
    )
    if not rows:
        raise NotFound(f"no conflict {prefix!r}")
    if len(rows) > 1:
        raise UsageError(f"{prefix!r} names several conflicts: {', '.join(r['id'] for r in rows)}")
    return _conflict(rows[0])


def resolve(db: Database, prefix: str, keep: Keep) -> Conflict:
    """Resolve one record (see the module docstring); the record as it now is."""
    if keep not in ("mine", "theirs", "both"):
        raise UsageError(f"--keep is mine, theirs or both, not {keep!r}")
    c = find_conflict(db, prefix)
    e = entity(c.entity)
    if keep == "both" and e is not NOTE and c.row is not None:
        # Only a note has a conflicted copy; a second task, folder or tag is no copy.
        raise UsageError(
            f"--keep both keeps a conflicted copy, which only a note has:"
            f" keep mine or theirs of this {c.entity}"
        )
    with db.transaction():
        current = db.find(e, c.row_id)
        # None too for a copy deleted since (by hand, or elsewhere): none to keep or purge.
        copy = _checked_copy(db, c)
        if keep == "mine":
            _put_back(db, c, current)
        if keep == "both" and copy is None and c.row is not None and current is not None:
            copy = conflicted_copy(db, e, c.row, current, ids=_copy_ids(db, c), made=_made(c))
        notice = _unchecked(db, c, copy)
        if keep != "both" and copy is not None:
            if _as_made(db, c, copy):
                Notes(db).purge(copy, force=True)
            else:  # written in since it was made: that text must not go for good
                Notes(db).trash(copy)
                notice = f"conflicted copy {copy} was edited since it was made: moved to the trash"
            copy = None
        db.conn.execute(
            "UPDATE sync_conflicts SET status = 'resolved', copy_id = ? WHERE id = ?",
            (copy, c.id),
        )
        if c.shared:
            resolve_later(db, c.id, "resolved", copy)
    return replace(find_conflict(db, c.id), notice=notice)


def _copy_ids(db: Database, c: Conflict) -> tuple[str, str]:
    """Ids (copy, link) that every device derives alike from the record, so two devices
    keeping both of one record make one copy (unless a note once had the id here)."""
    tombstones = db.table_exists("sync_tombstones")
    for n in range(100):
        ids = (str(uuid5(_COPIES, f"{c.id}/{n}")), str(uuid5(_COPIES, f"{c.id}/{n}/link")))
        used = db.find(NOTE, ids[0]) is not None or (
            tombstones
            and db.scalar(
                "SELECT count(*) FROM sync_tombstones WHERE entity = 'note' AND row_id = ?",
                (ids[0],),
            )
        )
        if not used:
            return ids
    return new_id(), new_id()


def _made(c: Conflict) -> tuple[str, datetime]:
    """(device, when) of the record, as the copy's title names them on every device."""
    device = c.device_id[:8] if c.device_id[:8].replace("-", "").isalnum() else "?"
    try:
        when = datetime.fromisoformat(c.created_at)
    except ValueError:  # no date any device writes: the server's say-so, not shown
        when = datetime(1970, 1, 1, tzinfo=UTC)
    return device or "?", when


def _unchecked(db: Database, c: Conflict, copy: str | None) -> str | None:
    """What to say of a copy id that names a note other than the conflicted copy."""
    if c.copy_id is None or copy is not None or db.find(NOTE, c.copy_id) is None:
        return None
    return f"note {c.copy_id} is named as the copy but is no copy of this conflict: left as it is"


def _as_made(db: Database, c: Conflict, copy: str) -> bool:
    """Whether the copy still holds just the version kept aside (nobody wrote in it)."""
    note = db.find(NOTE, copy)
    if note is None or c.row is None:
        return False
    if not str(note["title"]).startswith(copy_title(c.row.get("title"))):
        return False
    return all(note[k] == c.row.get(k) for k in ("body", "note_type", "metadata"))


def _checked_copy(db: Database, c: Conflict) -> str | None:
    """The record's copy, if that note really is a conflicted copy of the version aside.

    A shared record's copy id comes through the server and no MAC covers it: it could
    name any note of the user. The copy's own title and link (both MAC'd) must say so.
    """
    if c.copy_id is None:
        return None
    note = db.find(NOTE, c.copy_id)
    if note is None:
        return None
    if not c.shared:  # made and recorded by this device itself
        return c.copy_id
    if c.entity != NOTE.name or c.row is None:
        return None  # only a note's edit is ever kept as a copy
    if not str(note["title"]).startswith(copy_title(c.row.get("title"))):
        return None
    # The target is cleared when the original is purged; the link itself stays.
    linked = db.scalar(
        "SELECT count(*) FROM note_links WHERE source_id = ?"
        " AND (target_id = ? OR target_id IS NULL)",
        (c.copy_id, c.row_id),
    )
    return c.copy_id if linked else None


def _put_back(db: Database, c: Conflict, current: dict[str, Any] | None) -> None:
    e = entity(c.entity)
    if c.row is None:  # the version kept aside is a delete: delete again
        if current is not None:
            if e is NOTE:
                Notes(db).purge(c.row_id, force=True)
            else:
                db.delete(e, c.row_id)
        return
    row = c.row
    base = _merge_base(db, c)
    if base is not None and current is not None:
        row = keep_side(e, base, current, c.row)  # edits that merged cleanly stay
    values = {
        k: from_local(e.field(k), v)
        for k, v in row.items()
        if k not in _SKIP and k != e.key and k in e.field_names
    }
    if current is None:
        db.insert(e, {e.key: c.row_id, **values})
    else:
        changed = {k: v for k, v in values.items() if current.get(k) != v}
        if changed:
            db.update(e, c.row_id, changed)


def _merge_base(db: Database, c: Conflict) -> dict[str, Any] | None:
    """The base this device's merge found the clash against (None: none kept here)."""
    if not db.table_exists("sync_conflict_bases"):
        return None
    found = db.scalar("SELECT row_json FROM sync_conflict_bases WHERE conflict_id = ?", (c.id,))
    return None if found is None else dict(json.loads(found))


def _conflict(r: dict[str, Any]) -> Conflict:
    return Conflict(
        str(r["id"]),
        str(r["entity"]),
        str(r["row_id"]),
        str(r["kind"]),
        str(r["status"]),
        r["copy_id"],
        str(r["device_id"]),
        str(r["created_at"]),
        None if r["row_json"] is None else dict(json.loads(r["row_json"])),
        int(r["seq"]) > 0,
    )
