"""The device side of a push: the outbox as push entries, and the server's answers applied.

Every local change left an outbox op in the same transaction (``Database.insert`` and
friends). A push sends one entry per changed row: the row as it is now (sealed), or a
delete when it is gone, with the server version the row was based on and the row's op
ids. Deletes go first (children before parents), then upserts (parents before children,
a folder before its subfolders), so a chunk never names a parent the server lacks and a
tag removed and added again is removed first.

An answer is applied in one local transaction: the ops the entry covered leave the
outbox (ops made since stay, for the next push), an applied row takes its new version,
and a row another one superseded (the same tag added on two devices) is dropped here.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from duru.bridge import codec_for
from duru.crypto import AccountKeys
from duru.errors import BridgeError, DuruError
from duru.local.db import Database
from duru.local.rows import columns
from duru.local.schema import keyed_rows, quote
from duru.local.sync_tables import deleted_versions, remember_deletes
from duru.model import ENTITIES, Entity, Row, entity, new_id, now_ms
from duru.remote.layout import server_table

from .device_rows import self_reference
from .protocol import MAX_OP_IDS, PushEntry, PushResult, Tombstone
from .wire import encode_row

_ORDER = {e.name: i for i, e in enumerate(ENTITIES)}


@dataclass(frozen=True)
class Pending:
    """One row's ops in the outbox: what a push entry is made from."""

    entity: str
    row_id: str
    op_ids: tuple[str, ...]
    last_seq: int


def pending(db: Database) -> list[Pending]:
    """Every row with ops in the outbox, in push order (see the module docstring)."""
    groups: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for seq, op_id, ent, row_id in db.conn.execute(
        "SELECT seq, op_id, entity, row_id FROM outbox ORDER BY seq"
    ):
        groups[(ent, row_id)].append((seq, op_id))
    sent = (
        {str(op) for (op,) in db.conn.execute("SELECT op_id FROM sync_sent")}
        if _marks(db)
        else set()
    )
    rows = [
        Pending(ent, row_id, _op_ids([op for _, op in ops], sent), ops[-1][0])
        for (ent, row_id), ops in groups.items()
    ]
    live = _live_keys(db, rows)
    deletes = [p for p in rows if (p.entity, p.row_id) not in live]
    upserts = [p for p in rows if (p.entity, p.row_id) in live]
    deletes.sort(key=lambda p: (-_ORDER[p.entity], p.last_seq))
    return deletes + _parents_first(db, upserts)


def _op_ids(ops: list[str], sent: set[str]) -> tuple[str, ...]:
    """The op ids a row's push entry carries, oldest first, the newest last, at most
    ``MAX_OP_IDS``: each one an earlier push sent whose answer never came (``sent``), so
    the server takes the row as based on the write it applied then, then the newest.
    The newest alone would leave those out once the row was edited more often than
    that since (an editor saving as the user types): the device's own write came back as
    a conflict, and its newest edit went aside as a conflicted copy."""
    if len(ops) <= MAX_OP_IDS:
        return tuple(ops)
    keep = [i for i, op in enumerate(ops[:-1]) if op in sent][-(MAX_OP_IDS - 1) :]
    at = len(ops) - 1
    while len(keep) < MAX_OP_IDS:
        if at not in keep:
            keep.append(at)
        at -= 1
    return tuple(ops[i] for i in sorted(keep))


def mark_sent(db: Database, sent: list[Pending], pushed: dict[tuple[str, str], Row]) -> None:
    """Record the newest op id of each of ``sent``, about to be pushed, in one
    transaction: if its answer never comes, the next push of the row carries it
    (``_op_ids``). Once the ops they stand for have left the outbox (their answers
    recorded), ``forget_sent`` drops them, at the next push.

    Of the upserted rows that have a merge base, the row as sent (``pushed``, see
    ``entries``) is kept with its op id: the merge base once the server answers
    ``rebase`` naming it. Rows new here have no base to replace, and are most of a
    first push: their copies would double what it writes.
    """
    with db.transaction():
        db.conn.executemany(
            "INSERT OR IGNORE INTO sync_sent (entity, row_id, op_id) VALUES (?, ?, ?)",
            [(p.entity, p.row_id, p.op_ids[-1]) for p in sent],
        )
        if not pushed:
            return
        upserts = [(p.entity, p.row_id) for p in sent if (p.entity, p.row_id) in pushed]
        with_base = _present(db, "sync_base", upserts)
        based = [p for p in sent if (p.entity, p.row_id) in with_base]
        db.conn.executemany(
            "INSERT OR IGNORE INTO sync_sent_rows (entity, row_id, op_id, row_json)"
            " VALUES (?, ?, ?, ?)",
            [
                (p.entity, p.row_id, p.op_ids[-1], json.dumps(pushed[(p.entity, p.row_id)]))
                for p in based
            ],
        )


def forget_sent(db: Database) -> None:
    """Drop the records of sent op ids no longer in the outbox (their answers recorded,
    or their rows' ops gone another way: a resync, a resolved conflict), with the rows
    as sent. A read when there are none."""
    if db.scalar("SELECT 1 FROM sync_sent WHERE op_id NOT IN (SELECT op_id FROM outbox) LIMIT 1"):
        with db.transaction():
            for table in ("sync_sent", "sync_sent_rows"):
                db.conn.execute(
                    f"DELETE FROM {table} WHERE op_id NOT IN (SELECT op_id FROM outbox)"
                )


def _marks(db: Database) -> bool:
    """Whether the device has ``sync_sent`` (made with the other sync tables, at the
    first sync: the library's outbox functions also serve devices that never synced)."""
    return bool(
        db.scalar("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sync_sent'")
    )


def count_pending(db: Database) -> int:
    return int(db.scalar("SELECT count(DISTINCT entity || ':' || row_id) FROM outbox"))


def entries(
    db: Database,
    chunk: list[Pending],
    keys: AccountKeys,
    pushed: dict[tuple[str, str], Row] | None = None,
    refused: list[tuple[Pending, str]] | None = None,
) -> Iterator[tuple[Pending, PushEntry]]:
    """The push entry of each pending row, sealed with ``keys``.

    ``pushed``, when given, collects each upserted row as sent (the merge base once the
    server applies it while the row changed again here). ``refused``, when given, takes
    each row that cannot cross to the server (BridgeError: a date the device store takes
    but the server side cannot carry, say), with the reason, instead of raising: it gets
    no entry, and is added to ``refused`` before the next entry is yielded.
    """
    for window in _windows(chunk):
        found = _current_rows(db, window)
        deleted = _deleted_before(db, window)
        for p in window:
            e = entity(p.entity)
            row = found.get((p.entity, p.row_id))
            if row is None:
                yield p, PushEntry(p.entity, p.row_id, "delete", _base(db, p), p.op_ids, None)
                continue
            if pushed is not None:
                pushed[(p.entity, p.row_id)] = row
            base = int(row["version"]) or _new_row_base(db, e, deleted.get((p.entity, p.row_id)))
            sent = {**row, "version": base}
            codec = codec_for(e)
            try:
                wire = codec.to_wire(sent, keys, keys.user_id)  # one pass, for stored form
                if wire is None:
                    wire = encode_row(server_table(e), codec.to_remote(sent, keys, keys.user_id))
            except BridgeError as exc:
                if refused is None:
                    raise
                refused.append((p, exc.message))
                if pushed is not None:
                    pushed.pop((p.entity, p.row_id), None)
                continue
            yield p, PushEntry(p.entity, p.row_id, "upsert", base, p.op_ids, wire)


def _windows(chunk: list[Pending]) -> Iterator[list[Pending]]:
    """``chunk`` in runs of 16, 32, ... up to 500 rows, each read when the one before is
    sealed: a chunk cut short by its bytes (``MAX_CHUNK_BYTES``, big notes) has read and
    held at most about twice the rows it sends, not every row handed to it."""
    size, at = 16, 0
    while at < len(chunk):
        yield chunk[at : at + size]
        at += size
        size = min(2 * size, 500)


def _current_rows(db: Database, chunk: list[Pending]) -> dict[tuple[str, str], Row]:
    """The rows of ``chunk`` as they are now, one query per entity (a query per row was
    a fifth of sealing a chunk); a row deleted since is absent."""
    wanted: dict[str, list[str]] = defaultdict(list)
    for p in chunk:
        wanted[p.entity].append(p.row_id)
    out: dict[tuple[str, str], Row] = {}
    for name, keys in wanted.items():
        e = entity(name)
        names = e.field_names
        at = names.index(e.key)
        for values in keyed_rows(db.conn, columns(e), e.table, e.key, keys):
            out[(name, values[at])] = dict(zip(names, values, strict=True))
    return out


def _new_row_base(db: Database, e: Entity, deleted: int | None) -> int:
    """The base of a row new here, whose key may have been a row's before.

    Its MAC must vouch for a base no older than that row's delete, or every device that
    saw the delete refuses it as the deleted row brought back (``inbox``): the version
    deleted here (or the tombstone pulled), else, for a key another row lends it (a
    note's filing is keyed by the note), this device's pull cursor, which is past any
    tombstone the server has purged. A row keyed by a fresh id: 0. The server applies an
    upsert of a row it has not got whatever its base, and one on a tombstone at that
    tombstone's version only.
    """
    if deleted is not None:
        return deleted
    if e.field(e.key).references is not None:
        return int(db.meta("sync_cursor") or 0)  # inbox.CURSOR_KEY (inbox imports this)
    return 0


def _deleted_before(db: Database, chunk: list[Pending]) -> dict[tuple[str, str], int]:
    """(entity, row id) -> the version of its delete this device knows, for ``chunk``."""
    if not db.table_exists("sync_tombstones"):
        return {}
    by_entity: dict[str, list[str]] = defaultdict(list)
    for p in chunk:
        by_entity[p.entity].append(p.row_id)
    return {
        (name, key): version
        for name, ids in by_entity.items()
        for key, version in deleted_versions(db.conn, name, ids)
    }


def apply_results(
    db: Database,
    sent: list[Pending],
    results: list[PushResult],
    pushed: dict[tuple[str, str], Row] | None = None,
) -> None:
    """Record the server's answers to ``sent`` in one local transaction.

    A stale upsert (``conflict``) keeps its ops: the pull that follows brings the
    server's row and merges it with this device's (``inbox``), and the merged row is
    pushed on top of it. So does one answered ``revive``, and the dead rows it points at
    are queued before it (``write_again``), and so does a ``rebase``, on the version the
    server names (sealed again on it). Every other answer takes the ops it covered
    out of the outbox; a delete applied (or answered ``duplicate``) keeps its
    tombstone's version (``inbox``).
    A few statements per entity, whatever the number of rows.
    """
    with db.transaction():
        done: list[tuple[Pending, PushResult]] = []
        versions: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for p, r in zip(sent, results, strict=True):
            e = entity(p.entity)
            if r.outcome == "conflict":
                here = db.find(e, p.row_id) is not None
                if here and r.version and r.kept:
                    _remember_merge(db, r.kept, p)
                    continue
                if r.kept and not here:  # our delete lost to an edit: the row comes back
                    resolve_later(db, r.kept, "revived")
            elif r.outcome in ("applied", "duplicate") and r.version:
                versions[p.entity].append((r.version, p.row_id))
            elif r.outcome == "adjusted":
                _move_back(db, e, p.row_id, r.version)
            elif r.outcome == "revive":
                write_again(db, r.revive)  # its ops stay: pushed again after them
                continue
            elif r.outcome == "rebase":
                # An earlier push of it was applied at r.version (its answer lost): its
                # ops stay, and it is sealed again on that version (``entries``).
                db.conn.execute(
                    f"UPDATE {quote(e.table)} SET version = ? WHERE {quote(e.key)} = ?",
                    (r.version, p.row_id),
                )
                _rebase_base(db, p, r)
                continue
            done.append((p, r))
        # A delete applied: its tombstone's version is the one to refuse older rows by,
        # and to base the row on should it be made again here. Also when answered
        # "duplicate" (applied by a push whose answer was lost: the same version): the
        # version deleted here is older, and a pull cut short would leave only that.
        landed = [(p, r) for p, r in done if r.outcome in ("applied", "duplicate")]
        upserted = set(pushed) if pushed is not None else _live_keys(db, [p for p, _ in landed])
        remember_deletes(
            db.conn,
            [
                (p.entity, p.row_id, r.version)
                for p, r in landed
                if (p.entity, p.row_id) not in upserted
            ],
        )
        for name, pairs in versions.items():
            e = entity(name)
            db.conn.executemany(
                f"UPDATE {quote(e.table)} SET version = ? WHERE {quote(e.key)} = ?", pairs
            )
        db.conn.executemany(
            "DELETE FROM outbox WHERE entity = ? AND row_id = ? AND seq <= ?",
            [(p.entity, p.row_id, p.last_seq) for p, _ in done],
        )
        # The sent marks of these rows (sync_sent, sync_sent_rows) name ops just taken
        # out: nothing reads them any more, and ``forget_sent`` drops them all at the
        # next push in one statement (a delete per row here was a tenth of this).
        left = _still_queued(db, [(p.entity, p.row_id) for p, _ in done])
        for p, r in done:
            newer = (p.entity, p.row_id) in left
            if r.outcome == "superseded" and not newer:
                e = entity(p.entity)
                if db.find(e, p.row_id) is not None:
                    db.delete(e, p.row_id, outbox=False)
        db.conn.executemany(
            "DELETE FROM sync_base WHERE entity = ? AND row_id = ?",
            [(p.entity, p.row_id) for p, _ in done if (p.entity, p.row_id) not in left],
        )
        for p, r in done:
            if (p.entity, p.row_id) in left:
                _update_base(db, p, r, (pushed or {}).get((p.entity, p.row_id)))


def _still_queued(db: Database, rows: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of ``rows`` still have ops in the outbox (made while their push was under
    way). Asks about these rows only, by index: a first push's outbox holds every row."""
    return _present(db, "outbox", rows)


def _present(db: Database, table: str, rows: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of ``rows`` (entity, row id) ``table`` of ours, indexed on (entity, row_id),
    has a row of, asked 500 at a time by that index."""
    by_entity: dict[str, list[str]] = defaultdict(list)
    for name, key in rows:
        by_entity[name].append(key)
    out: set[tuple[str, str]] = set()
    for name, keys in by_entity.items():
        for i in range(0, len(keys), 500):
            part = keys[i : i + 500]
            out.update(
                (name, str(k))
                for (k,) in db.conn.execute(
                    f"SELECT DISTINCT row_id FROM {table} WHERE entity = ?"
                    f" AND row_id IN ({', '.join('?' * len(part))})",
                    [name, *part],
                )
            )
    return out


def _update_base(db: Database, p: Pending, r: PushResult, sent: Row | None) -> None:
    """A row changed again while its push was under way: its merge base is now what the
    server applied (the row as sent, at the new version)."""
    if r.outcome == "applied" and sent is not None:
        db.conn.execute(
            "INSERT OR REPLACE INTO sync_base (entity, row_id, row_json) VALUES (?, ?, ?)",
            (p.entity, p.row_id, json.dumps({**sent, "version": r.version})),
        )


def _rebase_base(db: Database, p: Pending, r: PushResult) -> None:
    """After a ``rebase`` answer: the write the server applied at ``r.version`` (the op
    id it names in ``kept``), as this device sent it, is the merge base; the base kept
    before was the row as it was before that write, and a row pulled later, made on
    top of it, merged against the older base as if both sides had made that write's
    changes (a conflicted copy for edits that never clashed). Left as it was when no
    copy was kept (a row new here) or the server names no op."""
    if r.kept is None:
        return
    found = db.conn.execute(
        "SELECT row_json FROM sync_sent_rows WHERE entity = ? AND row_id = ? AND op_id = ?",
        (p.entity, p.row_id, r.kept),
    ).fetchone()
    if found is not None:
        db.conn.execute(
            "INSERT OR REPLACE INTO sync_base (entity, row_id, row_json) VALUES (?, ?, ?)",
            (p.entity, p.row_id, json.dumps({**json.loads(found[0]), "version": r.version})),
        )


def _move_back(db: Database, e: Entity, key: str, version: int) -> None:
    """The server kept its row (the move made here would have closed a loop in its tree,
    and kept the move as a revision): write the row again under the parent the server
    has (the merge base's), with the rest of this device's change, as a new op on top
    of ``version``. Under the root if the base is unknown or that parent would loop here.
    """
    parent = self_reference(e)
    found = db.conn.execute(
        "SELECT row_json FROM sync_base WHERE entity = ? AND row_id = ?", (e.name, key)
    ).fetchone()
    if parent is not None:
        value = None if found is None else json.loads(found[0]).get(parent.name)
        update = f"UPDATE {quote(e.table)} SET {quote(parent.name)} = ? WHERE {quote(e.key)} = ?"
        try:
            with db.transaction():
                db.conn.execute(update, (value, key))
        except (sqlite3.Error, DuruError):
            db.conn.execute(update, (None, key))
    db.conn.execute(
        "INSERT INTO outbox (op_id, entity, row_id, kind, base_version, created_at)"
        " VALUES (?, ?, ?, 'upsert', ?, ?)",
        (new_id(), e.name, key, version, now_ms()),
    )


def write_again(db: Database, dead: tuple[Tombstone, ...]) -> int:
    """Queue rows the server holds as tombstones, as this device has them, on top of
    their tombstones' versions; the number queued.

    The server asks for this (``revive``) when a row pushed from here points at a row
    deleted on another device: the delete loses to the write that needs the row, as an
    edit wins over a delete, and the row comes back with this device's MAC based on the
    tombstone, which every device takes (a row the server brought back itself would
    carry its old MAC, as a replayed deleted row does). Its content is this device's
    copy: an edit made to it elsewhere before the delete and not pulled here is not in
    it. Rows with ops of their own are left alone (their push meets the tombstone and
    is kept over it, ``reconcile.keep_over_delete``), and rows not here are skipped.
    """
    queued = 0
    for t in dict.fromkeys(dead):
        e = entity(t.entity)
        row = db.find(e, t.row_id)
        if row is None or has_ops(db, t.entity, t.row_id):
            continue
        # The row as last pulled is the merge base, should another device write it
        # again first: this copy is then no change of ours, and theirs is taken whole.
        db.conn.execute(
            "INSERT OR REPLACE INTO sync_base (entity, row_id, row_json) VALUES (?, ?, ?)",
            (t.entity, t.row_id, json.dumps(row)),
        )
        db.conn.execute(
            f"UPDATE {quote(e.table)} SET version = ? WHERE {quote(e.key)} = ?",
            (t.version, t.row_id),
        )
        db.conn.execute(
            "INSERT INTO outbox (op_id, entity, row_id, kind, base_version, created_at)"
            " VALUES (?, ?, ?, 'upsert', ?, ?)",
            (new_id(), t.entity, t.row_id, t.version, now_ms()),
        )
        queued += 1
    return queued


def has_ops(db: Database, name: str, key: str) -> bool:
    """Whether this device has ops of row ``key`` of entity ``name`` not pushed yet."""
    found = db.conn.execute(
        "SELECT 1 FROM outbox WHERE entity = ? AND row_id = ? LIMIT 1", (name, key)
    ).fetchone()
    return found is not None


def _remember_merge(db: Database, revision: str, p: Pending) -> None:
    db.conn.execute(
        "INSERT OR IGNORE INTO sync_merges (revision_id, entity, row_id) VALUES (?, ?, ?)",
        (revision, p.entity, p.row_id),
    )


def resolve_later(db: Database, revision: str, status: str, copy: str | None = None) -> None:
    """Queue a revision's new status for the server (sent at the next sync)."""
    db.conn.execute(
        "INSERT OR REPLACE INTO sync_resolutions (revision_id, status, copy_id) VALUES (?, ?, ?)",
        (revision, status, copy),
    )


def seed(db: Database) -> int:
    """Queue every row the server may not have (version 0, no op yet); the number queued.

    For a device that has data from before it synced (an import, a bulk download): its
    rows would otherwise never be pushed.
    """
    queued = 0
    now = now_ms()
    with db.transaction():
        for e in ENTITIES:
            keys = [
                k
                for (k,) in db.conn.execute(
                    f"SELECT t.{quote(e.key)} FROM {quote(e.table)} t WHERE t.version = 0"
                    " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.entity = ?"
                    f" AND o.row_id = t.{quote(e.key)})",
                    (e.name,),
                )
            ]
            db.conn.executemany(
                "INSERT INTO outbox (op_id, entity, row_id, kind, base_version, created_at)"
                " VALUES (?, ?, ?, 'upsert', 0, ?)",
                [(new_id(), e.name, k, now) for k in keys],
            )
            queued += len(keys)
    return queued


def _base(db: Database, p: Pending) -> int:
    """The base version of a deleted row: the one its first outbox op recorded."""
    found = db.conn.execute(
        "SELECT base_version FROM outbox WHERE entity = ? AND row_id = ? AND kind = 'delete'"
        " ORDER BY seq DESC LIMIT 1",
        (p.entity, p.row_id),
    ).fetchone()
    return int(found[0]) if found else 0


def _live_keys(db: Database, rows: list[Pending]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    by_entity: dict[str, list[str]] = defaultdict(list)
    for p in rows:
        by_entity[p.entity].append(p.row_id)
    for name, ids in by_entity.items():
        e = entity(name)
        out.update((name, key) for (key,) in keyed_rows(db.conn, quote(e.key), e.table, e.key, ids))
    return out


def _parents_first(db: Database, upserts: list[Pending]) -> list[Pending]:
    """Entity order, then (for trees) every pending parent before its pending children."""
    out: list[Pending] = []
    by_entity: dict[str, list[Pending]] = defaultdict(list)
    for p in upserts:
        by_entity[p.entity].append(p)
    for e in ENTITIES:
        group = sorted(by_entity.get(e.name, []), key=lambda p: p.last_seq)
        parent = self_reference(e)
        if parent is None or len(group) < 2:
            out += group
            continue
        ids = {p.row_id for p in group}
        parents = dict(_parent_ids(db, e.table, e.key, parent.name, list(ids)))
        out += _tree_order(group, {k: v for k, v in parents.items() if v in ids})
    return out


def _tree_order(group: list[Pending], parent_of: dict[str, str]) -> list[Pending]:
    """``group`` with every row after the row it points at (breadth first), else in order.

    ``parent_of`` maps a row id to its parent's, for parents that are in ``group``.
    """
    children: dict[str, list[Pending]] = defaultdict(list)
    roots = []
    for p in group:
        parent = parent_of.get(p.row_id)
        if parent is None:
            roots.append(p)
        else:
            children[parent].append(p)
    out, queue = [], roots
    while queue:
        out += queue
        queue = [c for p in queue for c in children.pop(p.row_id, [])]
    # Rows on a cycle (which SQLite's checks should never let in) still go, in seq order.
    placed = {p.row_id for p in out}
    return out + [p for p in group if p.row_id not in placed]


def _parent_ids(
    db: Database, table: str, key: str, parent: str, ids: list[str]
) -> Iterator[tuple[str, str | None]]:
    try:
        yield from keyed_rows(db.conn, f"{quote(key)}, {quote(parent)}", table, key, ids)
    except sqlite3.Error:
        return
