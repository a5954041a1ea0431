"""What a device refuses of a pulled page: older versions of rows it holds (replays)
and rows it saw deleted brought back (revivals); and which rows it already holds.

Each check reads the device's versions set-based, one indexed lookup per entity and
500 rows of a page (``versions``, ``deleted_versions``); only a row that looks replayed
is read on its own (``last_seen``).
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from duru.crypto.row_mac import mac_base
from duru.errors import ReplayedRow
from duru.local.db import Database
from duru.local.schema import keyed_rows, quote
from duru.local.sync_tables import deleted_versions
from duru.model import BY_NAME, Entity, entity
from duru.remote.layout import ROW_MAC

from .outbox import has_ops
from .protocol import Change


def held(db: Database, changes: list[Change]) -> set[tuple[str, str, int]]:
    """(entity, row id, version) of the upserts this device holds at that version."""
    wanted: dict[str, list[str]] = defaultdict(list)
    for c in changes:
        if c.kind == "upsert" and c.entity in BY_NAME:  # the others are refused on opening
            wanted[c.entity].append(c.row_id)
    return {
        (name, key, version)
        for name, ids in wanted.items()
        for key, version in versions(db, name, ids)
    }


def versions(db: Database, name: str, ids: list[str]) -> Iterator[tuple[str, int]]:
    """(row id, version) of the rows of entity ``name`` among ``ids`` that this device has."""
    e = entity(name)
    for key, version in keyed_rows(db.conn, f"{quote(e.key)}, version", e.table, e.key, ids):
        yield key, int(version)


def mac_bases(opened: list[tuple[Change, dict[str, Any] | None]]) -> dict[str, dict[str, int]]:
    """Entity -> row id -> the base version its MAC vouches for, of the page's upserts
    (read once for both checks below; the MACs were checked on opening)."""
    bases: dict[str, dict[str, int]] = defaultdict(dict)
    for c, _row in opened:
        if c.kind == "upsert" and c.row is not None:
            bases[c.entity][c.row_id] = mac_base(base64.b64decode(c.row[ROW_MAC]))
    return bases


def refuse_replays(
    db: Database,
    opened: list[tuple[Change, dict[str, Any] | None]],
    bases: dict[str, dict[str, int]],
) -> tuple[list[tuple[Change, dict[str, Any] | None]], list[tuple[Change, str]]]:
    """Leave out upserts that are older versions of rows this device already saw.

    The server applies a write only on top of its current version, so a newer write is
    always based on a version at least as new as any this device holds. A row whose MAC
    vouches for an older base than the version held here, with other content than this
    device last saw from the server, is therefore an older version sent again (a
    restamped row, with the same content at a new version, is not; nor is one whose
    only change is a SET NULL link the server cleared). What this device
    last saw is the merge base of a row with unpushed changes, else the row itself; a
    row with unpushed changes and no merge base (an edit kept over a delete) has
    nothing to compare with and goes on to the merge.
    """
    if not bases:
        return opened, []
    suspects = {
        (name, key)
        for name, found in bases.items()
        for key, version in versions(db, name, list(found))
        if found[key] < version
    }
    if not suspects:
        return opened, []
    kept, replayed = [], []
    for c, row in opened:
        # A conflict revision of a suspect row is not the row: only upserts can be replays.
        if c.kind == "upsert" and (c.entity, c.row_id) in suspects and row is not None:
            seen = last_seen(db, entity(c.entity), c.row_id)
            fields = vouched_fields(entity(c.entity))
            if seen is not None and any(seen[f] != row[f] for f in fields):
                held = seen["version"]
                why = ReplayedRow(
                    f"the server sent a version written on version {bases[c.entity][c.row_id]}"
                    f" after this device saw version {held}: an older version replayed"
                )
                replayed.append((c, f"{type(why).__name__}: {why.message}"))
                continue
        kept.append((c, row))
    return kept, replayed


def refuse_revivals(
    db: Database,
    opened: list[tuple[Change, dict[str, Any] | None]],
    bases: dict[str, dict[str, int]],
) -> tuple[list[tuple[Change, dict[str, Any] | None]], list[tuple[Change, str]]]:
    """Leave out upserts of rows this device saw deleted, in a version from before that.

    ``sync_tombstones`` keeps, per deleted row, the version this device deleted or the
    version of the tombstone it pulled. A genuine write that brings the row back is
    based on a version at least that new: the server applies a write on top of its
    current version only (a tombstone's, for a dead row), an edit that raced the delete
    was based on the version deleted, and a parent a child needs is written again on
    top of its tombstone by the device that wrote the child (``duru.server.push``). A
    live row whose MAC vouches for an older base is the row as it was before the
    delete, sent again. The rows taken leave ``sync_tombstones``: from then on the
    replay check against the version held applies (``refuse_replays``). A row deleted
    here whose delete waits in the outbox, sent at the version deleted or older, is left
    out without a word: the server sent it again (a new change number) while the pull
    raced the delete, and the delete goes next.

    One indexed lookup per entity and 500 rows of the page.
    """
    deleted = {
        (name, key): version
        for name, found in bases.items()
        for key, version in deleted_versions(db.conn, name, list(found))
    }
    if not deleted:
        return opened, []
    kept, revived = [], []
    for c, row in opened:
        version = deleted.get((c.entity, c.row_id))
        if c.kind == "upsert" and version is not None:
            base = bases[c.entity][c.row_id]
            if c.version <= version and has_ops(db, c.entity, c.row_id):
                # Deleted here at that version while this pull was under way, the delete
                # not pushed yet: the server sent the row again as it was (a new change
                # number, a conflict on its parent), no replay. The delete goes next.
                continue
            if base < version:
                why = ReplayedRow(
                    f"the server sent a version written on version {base} after this"
                    f" device saw the row deleted at version {version}: a deleted row"
                    " brought back"
                )
                revived.append((c, f"{type(why).__name__}: {why.message}"))
                continue
        kept.append((c, row))
    taken = {(c.entity, c.row_id) for c, _ in kept if (c.entity, c.row_id) in deleted}
    db.conn.executemany(
        "DELETE FROM sync_tombstones WHERE entity = ? AND row_id = ?", sorted(taken)
    )
    return kept, revived


def vouched_fields(e: Entity) -> list[str]:
    """The fields a row's MAC vouches for, so a difference in them tells a replay.

    Not ``version``, and not the ON DELETE SET NULL links: the server clears those (at a
    new version, under the row's old MAC) when their target is deleted, and a device
    that still holds the link must take that, not call it a replay.
    """
    return [
        f.name
        for f in e.fields
        if f.name != "version" and not (f.references and f.on_delete == "SET NULL")
    ]


def last_seen(db: Database, e: Entity, key: str) -> dict[str, Any] | None:
    """The row as this device last had it from the server (see ``refuse_replays``)."""
    pending = db.conn.execute(
        "SELECT 1 FROM outbox WHERE entity = ? AND row_id = ? LIMIT 1", (e.name, key)
    ).fetchone()
    if pending is None:
        return db.find(e, key)
    base = db.conn.execute(
        "SELECT row_json FROM sync_base WHERE entity = ? AND row_id = ?", (e.name, key)
    ).fetchone()
    return None if base is None else dict(json.loads(base[0]))
