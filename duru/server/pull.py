"""Read one page of a user's changes after a cursor.

Why no row is ever skipped: every writer of a user's rows (push, bulk upload) first locks
the user's ``accounts`` row and only then takes change sequence numbers from it, keeping
the lock until it commits. So the transaction holding numbers n..m commits before any
transaction can take a number above m: at any instant the committed numbers of a user
are a prefix of the sequence, never a set with a hole that fills in later. A page is read
in one REPEATABLE READ snapshot, so it sees such a prefix, and returning the rows with the
smallest numbers above the cursor, up to the page size, then moving the cursor to the
last number returned, can never pass over a number that commits later. (Timestamps, or
a plain sequence whose numbers are taken before the lock, would have exactly that hole.)
Every row changed in a transaction gets its own number, so a page never splits a number.
"""

from __future__ import annotations

import heapq
import json
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from psycopg import Connection, sql
from psycopg.rows import dict_row

from duru.bridge import codec_for
from duru.errors import NotFound, ResyncNeeded
from duru.model import BY_NAME, ENTITIES, Entity
from duru.remote.layout import (
    ACCOUNTS,
    CHANGE_SEQ,
    CONFLICTS,
    DELETED_AT,
    USER_ID,
    conflicts_table,
    server_table,
)
from duru.sync.protocol import Change
from duru.sync.server_account import set_user
from duru.sync.wire import encode_row

MAX_PAGE = 5_000


@dataclass(frozen=True)
class Page:
    changes: list[Change]
    cursor: int  # the cursor to ask from next
    head: int  # the user's last change sequence number in this snapshot

    @property
    def more(self) -> bool:
        return self.cursor < self.head


def read_page(conn: Connection[Any], user_id: str, after: int, limit: int) -> Page:
    """The first ``limit`` changes of ``user_id`` numbered above ``after``.

    Raises ResyncNeeded when ``after`` is below the tombstone horizon (and not 0: a
    device that has nothing needs no deletes), NotFound when the account is gone.
    """
    user = uuid.UUID(user_id)
    with conn.transaction():
        head = _begin(conn, user_id, user, after)
        if after == head:  # nothing new: the common case of a device that polls
            return Page([], after, head)
        streams = [_entity_changes(conn, e, user, after, limit) for e in ENTITIES]
        streams.append(_conflict_changes(conn, user, after, limit))
    # Rows are encoded only once they made the page: each table gave up to ``limit``.
    kept = list(heapq.merge(*streams, key=lambda c: c[0]))[:limit]
    changes = [_encoded(*raw) for raw in kept]
    cursor = changes[-1].seq if len(changes) == limit else max(after, head)
    return Page(changes, cursor, head)


def read_page_json(
    conn: Connection[Any], user_id: str, after: int, limit: int
) -> tuple[bytes, int]:
    """``read_page`` as the JSON body of ``GET /v1/changes``, and how many changes it holds.

    The same rows and wire values (see ``duru.sync.wire``), but PostgreSQL writes each
    change's JSON (``json_build_object``): uuids and times as text, bytea in base64. That
    is a few microseconds a row where reading the values into Python objects and
    encoding them again took about thirty, the server's whole cost of a first pull.
    """
    user = uuid.UUID(user_id)
    with conn.transaction():
        head = _begin(conn, user_id, user, after)
        streams: list[list[tuple[int, str]]] = []
        if after < head:
            streams = [_entities_json(conn, user, after, limit)]
            conflicts = _conflict_changes(conn, user, after, limit)
            streams.append([(raw[0], _dumps(_encoded(*raw).to_json())) for raw in conflicts])
    kept = list(heapq.merge(*streams, key=lambda c: c[0]))[:limit]
    cursor = kept[-1][0] if len(kept) == limit else max(after, head)
    more = "true" if cursor < head else "false"
    body = ",".join(text for _, text in kept)
    tail = f'],"cursor":{cursor},"head":{head},"more":{more}}}'
    return ('{"changes":[' + body + tail).encode("utf-8"), len(kept)


def _begin(conn: Connection[Any], user_id: str, user: uuid.UUID, after: int) -> int:
    """Start the page's snapshot, scoped to the user; the user's head (see read_page)."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    set_user(conn, user_id)
    found = conn.execute(
        f"SELECT last_change_seq, horizon_seq FROM {ACCOUNTS} WHERE {USER_ID} = %s",
        (user,),
    ).fetchone()
    if found is None:
        raise NotFound("the account of this session no longer exists")
    head, horizon = int(found[0]), int(found[1])
    if after > head:
        raise ResyncNeeded(
            f"cursor {after} is ahead of the server's last change {head} (was the server"
            " database restored from a backup?): this device must resync in full"
        )
    if 0 < after < horizon:
        raise ResyncNeeded(
            f"cursor {after} is older than the tombstone horizon {horizon}: deletes "
            "before it were purged, so this device must resync in full"
        )
    return head


_Raw = tuple[int, str, str, str, int, Any]  # seq, entity, kind, row id, version, row


def _encoded(seq: int, name: str, kind: str, row_id: str, version: int, row: Any) -> Change:
    if row is None:
        return Change(seq, name, kind, row_id, version, None)  # type: ignore[arg-type]
    table = conflicts_table() if kind == "conflict" else server_table(BY_NAME[name])
    return Change(seq, name, kind, row_id, version, encode_row(table, row))  # type: ignore[arg-type]


def _entity_changes(
    conn: Connection[Any], e: Entity, user: uuid.UUID, after: int, limit: int
) -> list[_Raw]:
    cols = (*codec_for(e).columns, CHANGE_SEQ, DELETED_AT)
    query = sql.SQL(
        "SELECT {cols} FROM {t} WHERE {user} = %s AND {seq} > %s ORDER BY {seq} LIMIT %s"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
        t=sql.Identifier(e.table),
        user=sql.Identifier(USER_ID),
        seq=sql.Identifier(CHANGE_SEQ),
    )
    out: list[_Raw] = []
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(query, (user, after, limit)):
            seq, dead = row.pop(CHANGE_SEQ), row.pop(DELETED_AT)
            row_id, version = str(row[e.key]), int(row["version"])
            if dead is not None:
                out.append((seq, e.name, "delete", row_id, version, None))
            else:
                out.append((seq, e.name, "upsert", row_id, version, row))
    return out


def _conflict_changes(conn: Connection[Any], user: uuid.UUID, after: int, limit: int) -> list[_Raw]:
    query = (
        f"SELECT id, entity, row_id, kind, base_version, server_version, row, device_id,"
        f" created_at, status, copy_id, {CHANGE_SEQ} FROM {CONFLICTS}"
        f" WHERE {USER_ID} = %s AND {CHANGE_SEQ} > %s"
        f" ORDER BY {CHANGE_SEQ} LIMIT %s"
    )
    out: list[_Raw] = []
    with conn.cursor(row_factory=dict_row) as cur:
        for row in cur.execute(query, (user, after, limit)):
            seq = row.pop(CHANGE_SEQ)
            entity_name, row_id = str(row["entity"]), str(row["row_id"])
            out.append((seq, entity_name, "conflict", row_id, int(row["server_version"]), row))
    return out


def _entities_json(
    conn: Connection[Any], user: uuid.UUID, after: int, limit: int
) -> list[tuple[int, str]]:
    """(seq, change as JSON text) of the first ``limit`` changes of every entity, in
    order: one statement (a merge of each table's index scan), one round trip."""
    params = {"user": user, "after": after, "limit": limit}
    return conn.execute(_all_json_query(), params).fetchall()


@cache
def _all_json_query() -> str:
    """The page statement as text, composed once: composing it (a few hundred quoted
    names) took half a millisecond of every pull."""
    parts = [sql.SQL("({})").format(_json_query(e.name)) for e in ENTITIES]
    query = sql.SQL("{} ORDER BY 1 LIMIT %(limit)s").format(sql.SQL(" UNION ALL ").join(parts))
    return query.as_string(None)


@cache
def _json_query(name: str) -> sql.Composed:
    """The page query of entity ``name`` whose rows are (seq, the change as JSON text)."""
    e = BY_NAME[name]
    table = server_table(e)
    values = []
    for column in codec_for(e).columns:
        col = table.column(column)
        assert col is not None, column
        ident = sql.Identifier(column)
        # encode() breaks base64 into lines of 76; the wire has it on one line (replace()
        # is three times cheaper than translate() here).
        value = (
            sql.SQL("replace(encode({}, 'base64'), E'\\n', '')").format(ident)
            if col.type == "bytea"
            else ident
        )
        values.append(sql.SQL("{}, {}").format(sql.Literal(column), value))
    row = sql.SQL("json_build_object({})").format(sql.SQL(", ").join(values))
    dead = sql.Identifier(DELETED_AT)
    change = sql.SQL(
        "json_build_object('seq', {seq}, 'entity', {name}, 'kind',"
        " CASE WHEN {dead} IS NULL THEN 'upsert' ELSE 'delete' END, 'row_id', {key},"
        " 'version', version, 'row', CASE WHEN {dead} IS NULL THEN {row} END)::text"
    ).format(
        seq=sql.Identifier(CHANGE_SEQ),
        name=sql.Literal(e.name),
        dead=dead,
        key=sql.Identifier(e.key),
        row=row,
    )
    return sql.SQL(
        "SELECT {seq}, {change} FROM {t} WHERE {user} = %(user)s AND {seq} > %(after)s"
        " ORDER BY {seq} LIMIT %(limit)s"
    ).format(
        seq=sql.Identifier(CHANGE_SEQ),
        change=change,
        t=sql.Identifier(e.table),
        user=sql.Identifier(USER_ID),
    )


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_dumps = _ENCODER.encode
