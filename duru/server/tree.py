"""A user's rows on the server as trees: numbering, re-stamping, reviving, cascading.

Every change a push makes to a user's rows takes the next numbers of the user's change
sequence, handed out while the user's ``accounts`` row is locked (``lock_sequence``),
so pulls can trust ``change_seq > cursor`` (see ``pull``). The walks here follow the
model's foreign keys: ON DELETE CASCADE and SET NULL as the device's SQLite applies them,
RESTRICT as a refusal, and the dead rows above a write that points at a tombstone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, sql

from duru.errors import UsageError
from duru.model import ENTITIES, Entity, entity
from duru.model.values import CANONICAL_UUID
from duru.remote.layout import ACCOUNTS, CHANGE_SEQ, DELETED_AT, USER_ID
from duru.sync.protocol import Tombstone
from duru.sync.server_account import set_user


@dataclass
class Seq:
    """The user's change sequence numbers, handed out while the account row is locked."""

    last: int

    def take(self) -> int:
        self.last += 1
        return self.last


Dead = dict[str, tuple[Tombstone, ...]]


@dataclass
class Current:
    version: int
    dead: bool


def lock_sequence(conn: Connection[Any], user_id: str) -> Seq:
    """Scope the open transaction to ``user_id`` and lock its change sequence until commit.

    Every writer of a user's rows takes this lock before numbering anything: see ``pull``.
    """
    set_user(conn, user_id)
    found = conn.execute(
        f"SELECT last_change_seq FROM {ACCOUNTS} WHERE {USER_ID} = %s FOR UPDATE", (user_id,)
    ).fetchone()
    if found is None:
        raise UsageError("the account of this session no longer exists")
    return Seq(int(found[0]))


def store_sequence(conn: Connection[Any], user_id: str, seq: Seq) -> None:
    conn.execute(
        f"UPDATE {ACCOUNTS} SET last_change_seq = %s WHERE {USER_ID} = %s", (seq.last, user_id)
    )


class UserRows:
    """The rows of one user, changed inside one transaction that holds their lock."""

    def __init__(self, conn: Connection[Any], user: uuid.UUID, seq: Seq) -> None:
        self.conn = conn
        self.user = user
        self.seq = seq
        # Upserted rows of the chunk by entity name and row id (a move seen by RESTRICT).
        self.rows: dict[str, dict[str, dict[str, Any]]] = {}

    def _dead(self, ent: Entity, ids: set[Any], seen: set[tuple[str, Any]]) -> Dead:
        """The tombstones among ``ids``: row id -> that tombstone, then those of its
        parents that are dead too (up to the first live one), each once."""
        ids = {as_uuid(i) for i in ids} - {k for n, k in seen if n == ent.name}
        if not ids:
            return {}
        seen.update((ent.name, i) for i in ids)
        links = ent.foreign_keys
        query = sql.SQL(
            "SELECT {key}, version{links} FROM {t} WHERE {user} = %s AND {key} = ANY(%s)"
            " AND {dead} IS NOT NULL"
        ).format(
            key=sql.Identifier(ent.key),
            links=sql.SQL("").join(sql.SQL(", {}").format(sql.Identifier(f.name)) for f in links),
            t=sql.Identifier(ent.table),
            user=sql.Identifier(USER_ID),
            dead=sql.Identifier(DELETED_AT),
        )
        found = self.conn.execute(query, (self.user, list(ids))).fetchall()
        out: Dead = {str(r[0]): (Tombstone(ent.name, str(r[0]), int(r[1])),) for r in found}
        for i, f in enumerate(links):
            above = self._dead(
                entity(f.references or ""), {r[2 + i] for r in found if r[2 + i] is not None}, seen
            )
            for r in found:
                if r[2 + i] is not None and str(r[2 + i]) in above:
                    out[str(r[0])] += above[str(r[2 + i])]
        return out

    def _restricted(self, ent: Entity, ids: set[str]) -> set[str]:
        """Those of ``ids`` that live rows still point at by an ON DELETE RESTRICT key."""
        blocked: set[str] = set()
        while True:
            left = ids - blocked
            newly = set()
            for child, f in children(ent):
                if f.on_delete != "RESTRICT" or not left:
                    continue
                query = sql.SQL(
                    "SELECT DISTINCT {fk}, {key} FROM {t} WHERE {user} = %s AND {fk} = ANY(%s)"
                    " AND {dead} IS NULL"
                ).format(
                    fk=sql.Identifier(f.name),
                    key=sql.Identifier(child.key),
                    t=sql.Identifier(child.table),
                    user=sql.Identifier(USER_ID),
                    dead=sql.Identifier(DELETED_AT),
                )
                moving = self.rows.get(child.name, {})
                for parent, child_id in self.conn.execute(
                    query, (self.user, [uuid.UUID(i) for i in left])
                ):
                    # A subfolder deleted in this same chunk does not hold its parent,
                    # nor does one this chunk moves under another parent.
                    if child is ent and str(child_id) in left:
                        continue
                    moved = moving.get(str(child_id))
                    if moved is not None and moved[f.name] != parent:
                        continue
                    newly.add(str(parent))
            if not newly - blocked:
                return blocked
            blocked |= newly

    def _tombstone(self, ent: Entity, ids: list[str]) -> dict[str, int]:
        rows = self._numbered(
            ent,
            sql.SQL("{} = ANY(%(ids)s)").format(sql.Identifier(ent.key)),
            {"ids": [uuid.UUID(i) for i in ids]},
            version=True,
            sets=KILL,
            returning=["version"],
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def _cascade(self, ent: Entity, ids: list[Any]) -> None:
        """What the device's SQLite did below deleted rows, on the server's live rows."""
        for child, f in children(ent):
            where = sql.SQL("{} = ANY(%(ids)s) AND {} IS NULL").format(
                sql.Identifier(f.name), sql.Identifier(DELETED_AT)
            )
            params = {"ids": [as_uuid(i) for i in ids]}
            if f.on_delete == "CASCADE":
                gone = self._numbered(child, where, params, version=True, sets=KILL)
                if gone:
                    self._cascade(child, [r[0] for r in gone])
            elif f.on_delete == "SET NULL":
                unlink = sql.SQL("{} = NULL").format(sql.Identifier(f.name))
                self._numbered(child, where, params, version=True, sets=unlink)

    def _restamp(
        self,
        ent: Entity,
        ids: Sequence[Any],
        *,
        dead_too: bool = True,
        seen: set[tuple[str, Any]] | None = None,
    ) -> None:
        """New change sequence numbers for rows ``ids`` and the live rows below them.

        ``seen`` keeps a damaged tree (a parent cycle) from sending this round for ever.
        """
        seen = set() if seen is None else seen
        ids = [i for i in (as_uuid(i) for i in ids) if (ent.name, i) not in seen]
        if not ids:
            return
        seen.update((ent.name, i) for i in ids)
        cond = sql.SQL("{} = ANY(%(ids)s)").format(sql.Identifier(ent.key))
        if not dead_too:
            cond = sql.SQL("{} AND {} IS NULL").format(cond, sql.Identifier(DELETED_AT))
        stamped = self._numbered(ent, cond, {"ids": ids})
        below = [r[0] for r in stamped if r[0] is not None]
        for child, f in children(ent):
            if below:
                found = self.conn.execute(
                    sql.SQL(
                        "SELECT {key} FROM {t} WHERE {user} = %s AND {fk} = ANY(%s)"
                        " AND {dead} IS NULL"
                    ).format(
                        key=sql.Identifier(child.key),
                        t=sql.Identifier(child.table),
                        user=sql.Identifier(USER_ID),
                        fk=sql.Identifier(f.name),
                        dead=sql.Identifier(DELETED_AT),
                    ),
                    (self.user, below),
                ).fetchall()
                fresh = [r[0] for r in found if not (child is ent and r[0] in below)]
                if fresh:
                    self._restamp(child, fresh, dead_too=False, seen=seen)

    def _current(self, ent: Entity, ids: list[str]) -> dict[str, Current]:
        query = sql.SQL(
            "SELECT {key}, version, {dead} IS NOT NULL FROM {t} WHERE {user} = %s"
            " AND {key} = ANY(%s::uuid[])"
        ).format(
            key=sql.Identifier(ent.key),
            dead=sql.Identifier(DELETED_AT),
            t=sql.Identifier(ent.table),
            user=sql.Identifier(USER_ID),
        )
        rows = self.conn.execute(query, (self.user, uuid_array(ids)))
        return {str(r[0]): Current(int(r[1]), bool(r[2])) for r in rows}

    def _numbered(
        self,
        ent: Entity,
        where: sql.Composable,
        params: dict[str, Any],
        *,
        version: bool = False,
        sets: sql.Composable | None = None,
        returning: Sequence[str] = (),
    ) -> list[tuple[Any, ...]]:
        """UPDATE the rows ``where`` picks, each at its own next change sequence number.

        ``version``: the row's version becomes that number too (its content or state
        changed); ``sets``: more assignments, of constants. Returns (key, *returning)
        of each row changed, as they are after the update.
        """
        t, key = sql.Identifier(ent.table), sql.Identifier(ent.key)
        number = sql.SQL("%(base)s + picked.n - 1")
        assign: list[sql.Composable] = [
            sql.SQL("{} = {}").format(sql.Identifier(CHANGE_SEQ), number)
        ]
        if version:
            assign.append(sql.SQL("version = {}").format(number))
        if sets is not None:
            assign.append(sets)
        query = sql.SQL(
            "WITH picked AS (SELECT {key} AS k, row_number() OVER (ORDER BY {key}) AS n"
            " FROM {t} WHERE {user} = %(user)s AND {where})"
            " UPDATE {t} SET {assign} FROM picked"
            " WHERE {t}.{user} = %(user)s AND {t}.{key} = picked.k"
            " RETURNING {t}.{key}{more}"
        ).format(
            key=key,
            t=t,
            user=sql.Identifier(USER_ID),
            where=where,
            assign=sql.SQL(", ").join(assign),
            more=sql.SQL("").join(
                sql.SQL(", {}.{}").format(t, sql.Identifier(c)) for c in returning
            ),
        )
        args = {"user": self.user, "base": self.seq.last + 1, **params}
        rows = self.conn.execute(query, args).fetchall()
        self.seq.last += len(rows)
        return rows

    def _cycles(
        self, ent: Entity, rows: dict[str, dict[str, Any]], landing: set[str]
    ) -> dict[str, uuid.UUID | None]:
        """Rows whose new parent has the row itself above it: row id -> the parent the
        server has for it now (which the row keeps).

        ``landing`` are the rows of this chunk that will be written (not stale). Parents
        are followed through those first, then the server's rows (tombstones too: a
        device may write a dead parent again, and then its own parent). A move refused this way no
        longer counts for the others, so the check runs until nothing more is refused.
        """
        link = next((f for f in ent.foreign_keys if f.references == ent.name), None)
        if link is None or not any(rows[i][link.name] for i in landing):
            return {}
        stored = {
            str(k): None if p is None else str(p)
            for k, p in self.conn.execute(
                sql.SQL("SELECT {key}, {fk} FROM {t} WHERE {user} = %s").format(
                    key=sql.Identifier(ent.key),
                    fk=sql.Identifier(link.name),
                    t=sql.Identifier(ent.table),
                    user=sql.Identifier(USER_ID),
                ),
                (self.user,),
            )
        }
        out: dict[str, uuid.UUID | None] = {}
        while True:
            parent = dict(stored)
            for i in landing - set(out):
                value = rows[i][link.name]
                parent[i] = None if value is None else str(value)
            looped = {i for i in landing - set(out) if on_a_loop(i, parent)}
            if not looped:
                return out
            for i in looped:
                kept = stored.get(i)
                out[i] = None if kept is None else uuid.UUID(kept)


KILL = sql.SQL("{} = now()").format(sql.Identifier(DELETED_AT))


def on_a_loop(row_id: str, parent: dict[str, str | None]) -> bool:
    """True when following parents up from ``row_id`` comes back to it."""
    node = parent.get(row_id)
    for _ in range(len(parent) + 1):
        if node is None:
            return False
        if node == row_id:
            return True
        node = parent.get(node)
    return True  # a loop above it that does not pass through it: refuse to add to it


def children(ent: Entity) -> list[tuple[Entity, Any]]:
    """(child entity, foreign key field) for every key that points at ``ent``."""
    return [(c, f) for c in ENTITIES for f in c.foreign_keys if f.references == ent.name]


def as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def uuid_array(ids: Iterable[Any]) -> str:
    """``ids`` (uuids, or their canonical text) as one PostgreSQL array literal, for a
    ``%s::uuid[]`` parameter: one string to send instead of a list psycopg dumps item
    by item (a fifth of the server's Python work on a 10k-row push). Anything else
    raises ValueError, so nothing but uuids ever reaches the literal."""
    return _literal([str(i) for i in ids], CANONICAL_UUID.fullmatch)


def word_array(words: Iterable[str]) -> str:
    """Names of ours (entities, outcomes) as a ``%s::text[]`` literal, like ``uuid_array``."""
    return _literal(list(words), _WORD.fullmatch)


def int_array(numbers: Iterable[int]) -> str:
    """Integers as a ``%s::bigint[]`` literal, like ``uuid_array``."""
    return "{" + ",".join(str(int(n)) for n in numbers) + "}"


_WORD = re.compile(r"[a-z_]+")


def _literal(items: list[str], fits: Callable[[str], object]) -> str:
    for text in items:
        if not fits(text):
            raise ValueError(f"not fit for an array literal: {text[:60]!r}")
    return "{" + ",".join(items) + "}"
