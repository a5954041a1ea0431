"""Apply one push chunk: one transaction, a few set-based statements per entity.

Serialised per user: the chunk first locks the user's ``accounts`` row (``FOR UPDATE``)
and numbers every row it changes from ``last_change_seq``, writing the new last number
back before commit. Two pushes of one user therefore commit in the order of their
numbers, which is what lets a pull trust ``change_seq > cursor`` (see ``pull``).

Per entry (see ``duru.sync.protocol`` for the outcomes):
- the newest op id was applied before: ``duplicate``, the stored answer again (a write
  kept as a conflict revision is answered ``conflict`` again, with its revision);
- the effective base is the entry's ``base_version``, raised to the version an earlier
  op id of the same row was applied at (a push whose answer was lost, then edited on);
- an upsert whose base is the server's version (or of a row the server never had) is
  applied: the row is replaced whole at a new version and a tombstone is cleared;
- unless it points at a tombstone (a parent deleted on another device): then it is not
  applied but answered ``revive`` with the dead rows above it, which the device writes
  again on top of their tombstones before this row. The server never clears a tombstone
  itself: a row it brought back would carry its old row MAC, exactly as a deleted row
  the server replays, which devices refuse (``duru.sync.inbox``). No live row has a dead
  parent;
- a delete whose base is current becomes a tombstone, and so do the rows below it by
  ON DELETE CASCADE (those by SET NULL lose the link), as the device's SQLite did; a
  folder that still has live subfolders (RESTRICT) is not deleted: that is a conflict;
- a stale base never overwrites: the server's row stays, the entry is stored as a
  conflict revision, and the row (with the rows below it) gets new change sequence
  numbers so every device pulls it again, the pushing device included.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from psycopg import Connection, sql
from psycopg.types.json import Jsonb

from duru.bridge import codec_for
from duru.crypto import BLIND_INDEX_BYTES, ENVELOPE_VERSION, MIN_ENVELOPE_BYTES, binding_tag
from duru.crypto.row_mac import mac_bytes
from duru.errors import UsageError
from duru.model import ENTITIES, PROPS_COLUMN, Entity, entity
from duru.remote.layout import (
    APPLIED_OPS,
    CHANGE_SEQ,
    CONFLICTS,
    DELETED_AT,
    USER_ID,
    Role,
    cleared_column,
    server_column_of,
    server_table,
)
from duru.sync.copy import StagedUpsert
from duru.sync.protocol import Outcome, PushEntry, PushResult, Tombstone
from duru.sync.wire import decode_row

from .tree import (
    Current,
    Dead,
    Seq,
    UserRows,
    as_uuid,
    int_array,
    lock_sequence,
    store_sequence,
    uuid_array,
    word_array,
)


@dataclass(frozen=True)
class _Applied:
    entity: str
    row_id: str
    outcome: str
    version: int


@dataclass
class _Work:
    entries: list[tuple[int, PushEntry, int]] = field(default_factory=list)  # index, entry, base


def apply_push(
    conn: Connection[Any],
    user_id: str,
    device_id: str,
    entries: Sequence[PushEntry],
    *,
    rebase: bool = False,
) -> tuple[list[PushResult], int]:
    """Apply ``entries`` for ``user_id`` in one transaction; (results in order, head).

    ``head`` is the user's last change sequence number after the push. Raises UsageError
    for a chunk that names one row twice or reuses an op id for another row. ``rebase``:
    the client takes the ``rebase`` outcome (``duru.sync.protocol``).
    """
    _check_unique_rows(entries)
    with conn.transaction():
        seq = lock_sequence(conn, user_id)
        push = _Push(conn, user_id, device_id, seq, rebase=rebase)
        results = push.run(entries)
        store_sequence(conn, user_id, seq)
    return results, seq.last


class _Push(UserRows):
    def __init__(
        self, conn: Connection[Any], user_id: str, device_id: str, seq: Seq, *, rebase: bool
    ) -> None:
        super().__init__(conn, uuid.UUID(user_id), seq)
        self.user_text = str(self.user)  # what envelopes are bound to (canonical)
        self.device_id = device_id
        self.rebase = rebase
        self.results: dict[int, PushResult] = {}
        # Rows of this chunk answered "revive": rows below them wait as well.
        self.reviving: dict[tuple[str, str], tuple[Tombstone, ...]] = {}
        self.answered_before: set[int] = set()  # entries whose op id was recorded before

    def run(self, entries: Sequence[PushEntry]) -> list[PushResult]:
        applied = self._applied_ops(op for e in entries for op in e.op_ids)
        upserts: dict[str, _Work] = defaultdict(_Work)
        deletes: dict[str, _Work] = defaultdict(_Work)
        for index, e in enumerate(entries):
            base = self._effective_base(e, applied)
            if base is None:
                done = applied[e.op_id]
                self.answered_before.add(index)
                if done.outcome == "conflict":
                    # A stale write sent again (its answer was lost, or the pull that was
                    # to merge it refused the row): the same answer and revision. Never
                    # "duplicate": the device would take its write as applied.
                    self.results[index] = PushResult(
                        e.op_id,
                        e.entity,
                        e.row_id,
                        "conflict",
                        done.version,
                        kept=self._revision_of(e.op_id),
                    )
                    continue
                # An adjusted write says so again: the device must still pull the row.
                # A superseded one too: answered "duplicate", the device kept its copy of
                # a tag the server never took, and the kept row never landed beside it.
                again: Outcome = "duplicate"
                if done.outcome == "adjusted":
                    again = "adjusted"
                elif done.outcome == "superseded":
                    again = "superseded"
                self.results[index] = PushResult(e.op_id, e.entity, e.row_id, again, done.version)
                continue
            if self.rebase and e.kind == "upsert" and base > e.base_version:
                # Its row MAC vouches for the base it was sealed on: applied on ``base``
                # (an earlier op of it, whose answer was lost), devices that saw ``base``
                # refused it as a replay. Nothing written: the device seals it again.
                self.results[index] = PushResult(
                    e.op_id, e.entity, e.row_id, "rebase", base, kept=_applied_at(e, applied, base)
                )
                continue
            (upserts if e.kind == "upsert" else deletes)[e.entity].entries.append((index, e, base))
        # Rows are checked before anything is written, so a bad one refuses the chunk.
        self.rows = {
            name: {e.row_id: self._decode(entity(name), e) for _, e, _ in w.entries}
            for name, w in upserts.items()
        }
        # Deletes first, children before parents: a tag removed and added again in one
        # chunk must be gone before its new row claims the same (note, tag).
        for ent in reversed(ENTITIES):
            if ent.name in deletes:
                self._deletes(ent, deletes[ent.name].entries)
        for ent in ENTITIES:
            if ent.name in upserts:
                self._upserts(ent, upserts[ent.name].entries)
        self._record(entries)
        return [self.results[i] for i in range(len(entries))]

    # -- op ids ------------------------------------------------------------------

    def _applied_ops(self, op_ids: Iterable[str]) -> dict[str, _Applied]:
        rows = self.conn.execute(
            f"SELECT op_id, entity, row_id, outcome, version FROM {APPLIED_OPS}"
            f" WHERE {USER_ID} = %s AND op_id = ANY(%s::uuid[])",
            (self.user, uuid_array(set(op_ids))),
        ).fetchall()
        return {str(r[0]): _Applied(str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows}

    def _revision_of(self, op_id: str) -> str | None:
        """The conflict revision the write ``op_id`` was kept as."""
        found = self.conn.execute(
            f"SELECT id FROM {CONFLICTS} WHERE {USER_ID} = %s AND op_id = %s"
            f" ORDER BY {CHANGE_SEQ} DESC LIMIT 1",
            (self.user, uuid.UUID(op_id)),
        ).fetchone()
        return None if found is None else str(found[0])

    def _effective_base(self, e: PushEntry, applied: dict[str, _Applied]) -> int | None:
        """The base to compare with the server's version; None: the newest op is done."""
        base = e.base_version
        for op in e.op_ids:
            done = applied.get(op)
            if done is None:
                continue
            if (done.entity, done.row_id) != (e.entity, e.row_id):
                raise UsageError(f"op id {op} was used for another row")
            if op == e.op_id:
                return None
            if done.outcome == "applied":
                base = max(base, done.version)
        return base

    def _record(self, entries: Sequence[PushEntry]) -> None:
        # Not "revive" nor "rebase": nothing was written, and the same write sent again
        # (after its parents, or sealed again) must be judged again.
        fresh = [
            (entries[i].op_id, r)
            for i, r in self.results.items()
            if i not in self.answered_before and r.outcome not in ("revive", "rebase")
        ]
        if not fresh:
            return
        self.conn.execute(
            f"INSERT INTO {APPLIED_OPS} ({USER_ID}, op_id, entity, row_id, outcome, version)"
            " SELECT %s, * FROM unnest(%s::uuid[], %s::text[], %s::uuid[], %s::text[],"
            " %s::bigint[])",
            (
                self.user,
                uuid_array(op for op, _ in fresh),
                word_array(r.entity for _, r in fresh),
                uuid_array(r.row_id for _, r in fresh),
                word_array(r.outcome for _, r in fresh),
                int_array(r.version for _, r in fresh),
            ),
        )

    # -- upserts -----------------------------------------------------------------

    def _upserts(self, ent: Entity, work: list[tuple[int, PushEntry, int]]) -> None:
        table = server_table(ent)
        codec = codec_for(ent)
        rows = self.rows[ent.name]
        current = self._current(ent, list(rows))
        taken = self._unique_holders(ent, rows)
        orphans = self._orphans(ent, rows)
        fresh = {
            e.row_id
            for _, e, base in work
            if current.get(e.row_id) is None or current[e.row_id].version == base
        }
        waiting = self._waiting(ent, rows, fresh)
        landing = fresh - orphans - set(waiting)
        looped = self._cycles(ent, rows, landing)
        claimed: dict[tuple[Any, ...], str] = {}
        accepted: list[dict[str, Any]] = []
        for index, e, base in work:
            cur = current.get(e.row_id)
            if cur is not None and cur.version != base:
                self._conflict(ent, index, e, base, cur)
                continue
            if e.row_id in waiting:
                self.reviving[(ent.name, e.row_id)] = waiting[e.row_id]
                self.results[index] = PushResult(
                    e.op_id, e.entity, e.row_id, "revive", 0, revive=waiting[e.row_id]
                )
                continue
            if e.row_id in orphans:
                # Its parent is gone for good (purged): keep the write, fail nothing else.
                self._conflict(ent, index, e, base, cur or Current(0, False))
                continue
            holder = self._unique_holder(ent, rows[e.row_id], taken, claimed)
            if holder is not None and holder != e.row_id:
                self.results[index] = PushResult(
                    e.op_id, e.entity, e.row_id, "superseded", 0, kept=holder
                )
                self._restamp(ent, [holder])
                continue
            if e.row_id in looped:
                # A move that would close a loop (another device moved the parent under
                # this row meanwhile). The server cannot change the row itself (its MAC
                # is the device's), so the row stays as it is and the write is kept
                # aside as a revision; the device writes it again under the server's
                # parent (see ``duru.sync.outbox.apply_results``).
                kept = self._keep_aside(ent, e, base, cur or Current(0, False))
                self.results[index] = PushResult(
                    e.op_id, e.entity, e.row_id, "adjusted", base, kept=str(kept)
                )
                continue
            row = rows[e.row_id]
            version = self.seq.take()
            row["version"] = version
            row[CHANGE_SEQ] = version
            accepted.append(row)
            self.results[index] = PushResult(e.op_id, e.entity, e.row_id, "applied", version)
        if not accepted:
            return
        columns = (*codec.columns, CHANGE_SEQ)
        values = [tuple(r[c] for c in columns) for r in accepted]
        if len(values) <= SMALL_CHUNK:
            # A staging table costs a few ms of catalog work: not worth it for a few rows.
            self.conn.cursor().executemany(_upsert_sql(ent.name, columns), values)
        else:
            stage = StagedUpsert(self.conn, table, columns)
            stage.create()
            stage.write(values)

    def _waiting(self, ent: Entity, rows: dict[str, dict[str, Any]], ids: set[str]) -> Dead:
        """Those of ``ids`` that point at a tombstone, or at a row of this chunk that
        waits for one: row id -> the dead rows to write again first (see ``revive``)."""
        out: Dead = {}
        while True:
            live = ids - set(out)
            newly: dict[str, tuple[Tombstone, ...]] = {}
            for f in ent.foreign_keys:
                parent = entity(f.references or "")
                wanted = {rows[i][f.name] for i in live if rows[i][f.name] is not None}
                if parent is ent:
                    wanted -= {as_uuid(i) for i in live}  # written by this chunk
                dead = self._dead(parent, wanted, set())
                for i in live:
                    up = rows[i][f.name]
                    if up is None:
                        continue
                    above = dead.get(str(up)) or self.reviving.get((parent.name, str(up)))
                    if above is None and parent is ent:
                        above = out.get(str(up))
                    if above is not None:
                        newly[i] = tuple(dict.fromkeys((*newly.get(i, ()), *above)))
            if not newly:
                return out
            out.update(newly)

    def _orphans(self, ent: Entity, rows: dict[str, dict[str, Any]]) -> set[str]:
        """Ids of ``rows`` pointing at a parent the server has no row of (not even dead)."""
        out: set[str] = set()
        for f in ent.foreign_keys:
            parent = entity(f.references or "")
            wanted = {r[f.name] for r in rows.values() if r[f.name] is not None}
            if parent is ent:
                wanted -= {r[ent.key] for r in rows.values()}
            if not wanted:
                continue
            found = {
                r[0]
                for r in self.conn.execute(
                    sql.SQL("SELECT {key} FROM {t} WHERE {user} = %s AND {key} = ANY(%s)").format(
                        key=sql.Identifier(parent.key),
                        t=sql.Identifier(parent.table),
                        user=sql.Identifier(USER_ID),
                    ),
                    (self.user, list(wanted)),
                )
            }
            missing = wanted - found
            if missing:
                out |= {i for i, r in rows.items() if r[f.name] in missing}
        return out

    def _decode(self, ent: Entity, e: PushEntry) -> dict[str, Any]:
        row = decode_row(server_table(ent), e.row, codec_for(ent).columns)
        if row[USER_ID] != self.user:
            raise UsageError(f"{ent.name} {e.row_id}: the row belongs to another user")
        # The key as sent is the row id's canonical text (a device sends it so): then no
        # need to write the decoded one out again to compare.
        if e.row[ent.key] != e.row_id and str(row[ent.key]) != e.row_id:  # type: ignore[index]
            raise UsageError(f"{ent.name} {e.row_id}: the row's {ent.key} is {row[ent.key]}")
        for name, role, bound in _checked_columns(ent.name):
            value = row[name]
            if value is not None:
                _check_sealed(ent, name, role, bound, value, self.user_text, e.row_id)
        return row

    def _unique_holders(
        self, ent: Entity, rows: dict[str, dict[str, Any]]
    ) -> dict[tuple[Any, ...], str]:
        """Live rows holding any of ``rows``' unique keys: key values -> row id."""
        out: dict[tuple[Any, ...], str] = {}
        for names in ent.unique:
            cols = [server_column_of(ent.field(n)) for n in names]
            types = [server_table(ent).column(c).type for c in cols]  # type: ignore[union-attr]
            query = sql.SQL(
                "SELECT {key}, {cols} FROM {t} WHERE {user} = %s AND {dead} IS NULL"
                " AND ({cols}) IN (SELECT * FROM unnest({arrays}))"
            ).format(
                key=sql.Identifier(ent.key),
                cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
                t=sql.Identifier(ent.table),
                user=sql.Identifier(USER_ID),
                dead=sql.Identifier(DELETED_AT),
                arrays=sql.SQL(", ").join(sql.SQL(f"%s::{t}[]") for t in types),
            )
            params = [self.user, *([r[c] for r in rows.values()] for c in cols)]
            for found in self.conn.execute(query, params):
                out[(tuple(names), *found[1:])] = str(found[0])
        return out

    def _unique_holder(
        self,
        ent: Entity,
        row: dict[str, Any],
        taken: dict[tuple[Any, ...], str],
        claimed: dict[tuple[Any, ...], str],
    ) -> str | None:
        """The id of another live row with one of ``row``'s unique keys, else None."""
        row_id = str(row[ent.key])
        for names in ent.unique:
            cols = [server_column_of(ent.field(n)) for n in names]
            key = (tuple(names), *(row[c] for c in cols))
            holder = taken.get(key) or claimed.get(key)
            if holder is not None and holder != row_id:
                return holder
            claimed[key] = row_id
        return None

    # -- deletes -----------------------------------------------------------------

    def _deletes(self, ent: Entity, work: list[tuple[int, PushEntry, int]]) -> None:
        current = self._current(ent, [e.row_id for _, e, _ in work])
        doomed: dict[str, tuple[int, PushEntry, int]] = {}
        for index, e, base in work:
            cur = current.get(e.row_id)
            if cur is None or cur.dead:
                version = 0 if cur is None else cur.version
                self.results[index] = PushResult(e.op_id, e.entity, e.row_id, "applied", version)
            elif cur.version != base:
                self._conflict(ent, index, e, base, cur)
            else:
                doomed[e.row_id] = (index, e, base)
        for row_id in self._restricted(ent, set(doomed)):
            index, e, base = doomed.pop(row_id)
            self._conflict(ent, index, e, base, current[row_id])
        if not doomed:
            return
        versions = self._tombstone(ent, list(doomed))
        for row_id, (index, e, _) in doomed.items():
            self.results[index] = PushResult(
                e.op_id, e.entity, e.row_id, "applied", versions[row_id]
            )
        self._cascade(ent, list(doomed))

    # -- conflicts -----------------------------------------------------------------

    def _conflict(self, ent: Entity, index: int, e: PushEntry, base: int, cur: Current) -> None:
        revision = self._keep_aside(ent, e, base, cur)
        self.results[index] = PushResult(
            e.op_id, e.entity, e.row_id, "conflict", cur.version, kept=str(revision)
        )
        self._restamp(ent, [e.row_id])

    def _keep_aside(self, ent: Entity, e: PushEntry, base: int, cur: Current) -> uuid.UUID:
        """Store the entry as a conflict revision every device pulls; its id."""
        seq = self.seq.take()
        revision = uuid.uuid4()
        self.conn.execute(
            f"INSERT INTO {CONFLICTS} ({USER_ID}, id, entity, row_id, kind, base_version,"
            f" server_version, row, device_id, op_id, {CHANGE_SEQ})"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                self.user,
                revision,
                ent.name,
                uuid.UUID(e.row_id),
                e.kind,
                base,
                cur.version,
                None if e.row is None else Jsonb(e.row),
                self.device_id,
                uuid.UUID(e.op_id),
                seq,
            ),
        )
        return revision

    # -- shared --------------------------------------------------------------------


_CHECKED_ROLES = frozenset({Role.BLIND_INDEX, Role.MAC, Role.SEALED, Role.PROPS})


@cache
def _checked_columns(name: str) -> tuple[tuple[str, Role, str], ...]:
    """The columns of entity ``name`` that ``_check_sealed`` checks: (column, its role,
    the field an envelope in it is bound to)."""
    return tuple(
        (col.name, col.role, PROPS_COLUMN if col.role is Role.PROPS else str(col.field))
        for col in server_table(entity(name)).columns
        if col.role in _CHECKED_ROLES
    )


def _check_sealed(
    ent: Entity, column: str, role: Role, bound: str, value: bytes, user: str, row_id: str
) -> None:
    """UsageError unless ``value`` looks like what a device seals for this place.

    The server cannot open an envelope, but it can check its shape and its binding tag
    (public: a hash of entity, field ``bound``, user and row), so a row that no device of
    this user could open never gets stored, where it would stop every other device's pull.
    """
    if role is Role.BLIND_INDEX:
        if len(value) != BLIND_INDEX_BYTES:
            raise UsageError(f"{ent.name} {row_id}: {column} is not a blind index")
        return
    if role is Role.MAC:
        if len(value) != _mac_length(ent.name):
            raise UsageError(f"{ent.name} {row_id}: {column} is not a row MAC")
        return
    ok = (
        len(value) >= MIN_ENVELOPE_BYTES
        and value[0] in (1, ENVELOPE_VERSION)
        and value[5:13] == binding_tag(ent.name, bound, user, row_id)
    )
    if not ok:
        raise UsageError(
            f"{ent.name} {row_id}: {column} is not an envelope sealed for this user, row and field"
        )


@cache
def _mac_length(name: str) -> int:
    """The bytes of a row MAC of entity ``name`` (per entity, not per row pushed)."""
    return mac_bytes(cleared_column(entity(name)))


SMALL_CHUNK = 64


@cache
def _upsert_sql(name: str, columns: tuple[str, ...]) -> str:
    """INSERT one row of entity ``name``, or replace the row with its key whole (clearing
    a tombstone). Text composed once per entity: a small push runs it every time."""
    table = server_table(entity(name))
    key = table.primary_key.columns
    query = sql.SQL(
        "INSERT INTO {t} ({cols}) VALUES ({marks}) ON CONFLICT ({key}) DO UPDATE SET {sets}"
    ).format(
        t=sql.Identifier(table.name),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        marks=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        key=sql.SQL(", ").join(map(sql.Identifier, key)),
        sets=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c.name))
            for c in table.columns
            if c.name not in key
        ),
    )
    return query.as_string(None)


def _applied_at(e: PushEntry, applied: dict[str, _Applied], version: int) -> str | None:
    """The op id of ``e`` applied at ``version``: the write a ``rebase`` answer names, so
    the device takes it, as it sent it, as its merge base."""
    for op in e.op_ids:
        done = applied.get(op)
        if done is not None and done.outcome == "applied" and done.version == version:
            return op
    return None


def _check_unique_rows(entries: Sequence[PushEntry]) -> None:
    seen: set[tuple[str, str]] = set()
    ops: dict[str, tuple[str, str]] = {}
    for e in entries:
        key = (e.entity, e.row_id)
        if key in seen:
            raise UsageError(f"{e.entity} {e.row_id} appears twice in one push")
        seen.add(key)
        for op in e.op_ids:
            if ops.setdefault(op, key) != key:
                raise UsageError(f"op id {op} was used for another row")
