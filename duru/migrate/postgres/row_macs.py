"""Giving every server row its MAC (``duru.crypto.row_mac``), with the keys on the client side.

Rows written before row MACs have none, and only a holder of the user's keys can make
one. Expand (:class:`AddRowMacs`) adds the nullable ``row_mac`` column; the runner (a
client holding the users' keys) reads each user's rows in key order, makes each row's
MAC from the row as the server holds it (base = the row's ``version``) and writes it
back through a COPY into a session staging table and one ``UPDATE ... FROM`` per chunk,
only where the row was not written since it was read (its ``xmin``); then every MAC is
checked against its row, and one that does not match is made again and charged to the
error budget. The contract (:class:`RequireRowMacs`) waits until no user without keys in
the run has rows without a MAC, refuses new rows without one, gives one to what was
written meanwhile, and sets the column NOT NULL.

The run vouches for the rows as the server holds them when it runs: that is all a
MAC made afterwards can say. From then on, only a device can change a row unseen.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from duru.crypto import AccountKeys
from duru.crypto.row_mac import check_row_mac, encoder, make_row_mac, row_prefix
from duru.errors import PreflightFailed, TamperedRow, UsageError, ValidationFailed
from duru.migrate.ops import Operation, Phase, quote
from duru.migrate.postgres.builders import (
    At,
    Ordered,
    ddl,
    keyed_contract_steps,
    per_user_steps,
)
from duru.migrate.postgres.state import Key
from duru.migrate.postgres.steps import PgContext
from duru.migrate.steps import Chunk, ChunkState, PauseRun, StepResult
from duru.model import BY_TABLE, Entity
from duru.remote.layout import ROW_MAC, USER_ID, cleared_column, mac_columns, snapshot_tables

STAGE = "duru_mac_stage"
STAGE_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (user_id uuid NOT NULL, id uuid NOT NULL,"
    " seen bigint NOT NULL, mac bytea NOT NULL) ON COMMIT DELETE ROWS"
)
VERSION = "xmin::text::bigint"  # "nobody wrote the row since it was read" (see seal.py)
_SHOWN = 5


def mac_entity(table: str) -> Entity:
    """The model entity of server table ``table``; UsageError for any other table."""
    found = BY_TABLE.get(table)
    if found is None:
        raise UsageError(f"{table} is not a table of the model: it has no row MACs")
    return found


@dataclass(frozen=True)
class CheckBeforeMacs(Operation):
    """Refuse a server whose layout is not the one row MACs are added to (schema 1).

    A database stamped version 1 by a build from before sync lacks the sync tables;
    adding MACs to it and stamping it current would hide that. Only the differences
    migration 0002 removes (no ``row_mac`` yet, the fingerprint) are allowed.
    """

    phase: Phase = Phase.PREPARE

    def describe(self) -> str:
        return "check that the server's layout is schema 1 apart from row MACs"


@dataclass(frozen=True)
class AddRowMacs(Operation):
    """Expand and backfill: add ``row_mac`` to ``table`` and give every row its MAC,
    made on the client side with its user's keys. Contract with :class:`RequireRowMacs`."""

    table: str
    phase: Phase = Phase.BRIDGE

    def __post_init__(self) -> None:
        mac_entity(self.table)

    def describe(self) -> str:
        return f"add row MACs to {self.table} (made on the client side with each user's keys)"


@dataclass(frozen=True)
class RequireRowMacs(Operation):
    """The contract of :class:`AddRowMacs`: ``row_mac`` NOT NULL on ``table``.

    It pauses while rows of users whose keys the run does not hold have no MAC.
    """

    table: str
    phase: Phase = Phase.CLEANUP

    def __post_init__(self) -> None:
        mac_entity(self.table)

    def describe(self) -> str:
        return f"require a row MAC on every row of {self.table}"


def expand_sql(table: str) -> list[str]:
    return [f"ALTER TABLE {quote(table)} ADD COLUMN IF NOT EXISTS {ROW_MAC} bytea"]


def drop_sql(table: str) -> list[str]:
    return [f"ALTER TABLE {quote(table)} DROP COLUMN IF EXISTS {ROW_MAC}"]


@dataclass
class MacFill:
    """Make the MACs of ``table``'s rows, in (user id, key) order, chunk by chunk.

    ``user_id``: only that user's rows (else every user's, each with its keys).
    ``check``: every row, its MAC checked and made again when missing or wrong (a wrong
    one is charged to the error budget); else only rows without a MAC.
    """

    table: str
    user_id: str | None = None
    check: bool = False

    def total(self, ctx: PgContext) -> int | None:
        where, params = self._where(None)
        found = ctx.conn.execute(
            f"SELECT count(*) FROM {quote(self.table)} WHERE {where}", params
        ).fetchone()
        return int(found[0]) if found else None

    def chunk(self, ctx: PgContext, after: Key | None, limit: int) -> Chunk | None:
        e = mac_entity(self.table)
        where, params = self._where(after)
        rows = ctx.conn.execute(
            f"SELECT {self._columns(e)} FROM {quote(self.table)} WHERE {where}"
            f" ORDER BY {USER_ID}, {quote(e.key)} LIMIT %s",
            (*params, limit),
        ).fetchall()
        if not rows:
            return None
        covered = mac_columns(e)
        names = tuple(c.name for c in covered)
        link = cleared_column(e)
        cleared = None if link is None else names.index(link)
        encoders = [encoder(c.type) for c in covered]
        items: list[tuple[uuid.UUID, uuid.UUID, int, bytes]] = []
        wrong: list[str] = []
        for owner, key, seen, version, found, *values in rows:
            user, row_id = str(owner), str(key)
            keys = _keys(ctx, user, self.table)
            encoded = [enc(v) for enc, v in zip(encoders, values, strict=True)]
            prefix = row_prefix(e.name, user, row_id, names)
            if found is not None:
                try:
                    check_row_mac(keys.row_mac_key, prefix, found, encoded, row_id, cleared)
                    continue
                except TamperedRow:
                    wrong.append(row_id)
            items.append(
                (
                    owner,
                    key,
                    seen,
                    make_row_mac(keys.row_mac_key, prefix, version, encoded, cleared),
                )
            )
        placed = write_macs(ctx.conn, e, items)
        details: dict[str, Any] = {"made": placed}
        if wrong:
            details["mismatched"] = wrong[:_SHOWN]
        hwm = (str(rows[-1][0]), str(rows[-1][1]))
        return Chunk(
            hwm, len(rows), placed, failed=len(wrong), details=details, skipped=len(items) - placed
        )

    def finish(self, ctx: PgContext, totals: ChunkState) -> Mapping[str, Any]:
        return {
            "checked" if self.check else "made": totals.rows,
            "written": totals.placed,
            "mismatched": totals.failed,
        }

    def sql(self) -> tuple[str, ...]:
        e = mac_entity(self.table)
        where = "user_id = $1 AND " if self.user_id is not None else ""
        only = "" if self.check else f" AND {ROW_MAC} IS NULL"
        return (
            f"SELECT {self._columns(e)} FROM {quote(self.table)} WHERE {where}"
            f"({USER_ID}, {quote(e.key)}) > ($2, $3){only} ORDER BY {USER_ID}, {quote(e.key)}"
            " LIMIT $4",
            _write_sql(e).replace("%s", "$1", 1).replace("%s", "$2", 1).replace("%s", "$3", 1),
        )

    def _where(self, after: Key | None) -> tuple[str, tuple[Any, ...]]:
        e = mac_entity(self.table)
        parts, params = ["true"], []
        if self.user_id is not None:
            parts.append(f"{USER_ID} = %s")
            params.append(self.user_id)
        if not self.check:
            parts.append(f"{ROW_MAC} IS NULL")
        if after is not None:
            parts.append(f"({USER_ID}, {quote(e.key)}) > (%s, %s)")
            params += list(after)
        return " AND ".join(parts), tuple(params)

    def _columns(self, e: Entity) -> str:
        covered = ", ".join(quote(c.name) for c in mac_columns(e))
        return f"{USER_ID}, {quote(e.key)}, {VERSION}, version, {ROW_MAC}, {covered}"


def missing_by_user(conn: Connection[Any], table: str) -> dict[str, int]:
    """Rows without a MAC, per user id."""
    rows = conn.execute(
        f"SELECT {USER_ID}, count(*) FROM {quote(table)} WHERE {ROW_MAC} IS NULL"
        f" GROUP BY {USER_ID} ORDER BY {USER_ID}"
    ).fetchall()
    return {str(u): int(n) for u, n in rows}


def write_macs(
    conn: Connection[Any], e: Entity, items: Sequence[tuple[uuid.UUID, uuid.UUID, int, bytes]]
) -> int:
    """Write ``items`` (user, key, the xmin read, MAC); how many rows took them.

    Rows changed since they were read are left alone (the next pass makes theirs).
    Raises ValidationFailed when a written row does not hold the exact bytes sent.
    """
    if not items:
        return 0
    conn.execute(STAGE_DDL)
    with conn.cursor().copy(
        f"COPY {STAGE} (user_id, id, seen, mac) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["uuid", "uuid", "int8", "bytea"])
        for item in items:
            copy.write_row(item)
    written = conn.execute(_write_sql(e)).fetchall()
    sent = {(item[0], item[1]): item[3] for item in items}
    wrong = [str(k) for u, k, got in written if sent.get((u, k)) != bytes(got)]
    if wrong:
        raise ValidationFailed(
            f"{e.table}.{ROW_MAC}: rows {wrong[:_SHOWN]} do not hold the MAC just written"
        )
    conn.execute(f"DELETE FROM {STAGE}")
    return len(written)


def _write_sql(e: Entity) -> str:
    key = quote(e.key)
    return (
        f"UPDATE {quote(e.table)} t SET {ROW_MAC} = s.mac FROM {STAGE} s"
        f" WHERE t.{USER_ID} = s.user_id AND t.{key} = s.id AND t.{VERSION} = s.seen"
        f" RETURNING t.{USER_ID}, t.{key}, t.{ROW_MAC}"
    )


def _keys(ctx: PgContext, user: str, table: str) -> AccountKeys:
    found = ctx.keys.get(user)
    if found is None:
        raise PauseRun(
            f"rows of {table} of user {user} need a MAC made with that user's keys; run again"
            " with them (their device, or their passphrase)"
        )
    return found


# -- steps ---------------------------------------------------------------------------


def check_before_macs(at: At, op: CheckBeforeMacs) -> list[Ordered]:
    def check(ctx: PgContext) -> StepResult:
        from duru.schemacheck.check import check_server_connection
        from duru.schemacheck.report import MismatchKind

        later = {t.name for t in snapshot_tables()}
        found = [
            m
            for m in check_server_connection(ctx.conn)
            if m.severity == "error"
            and m.kind is not MismatchKind.FINGERPRINT
            and m.column != ROW_MAC
            and m.table not in later  # schema 3 made them (migration 0003 runs next)
        ]
        if found:
            shown = "; ".join(m.message for m in found[:_SHOWN])
            raise PreflightFailed(
                f"this server database is not schema 1 apart from row MACs ({len(found)}"
                f" difference(s): {shown}). It was made by an earlier build or changed by"
                " hand; no migration leads from it: make a new server database (`duru serve`"
                " makes one) and push each device to it"
            )
        return StepResult(details={"checked": "layout"})

    return [
        at.step(
            0,
            "check-layout",
            op.phase,
            op.describe(),
            kind="transaction",
            sql=("-- compare the live schema with the model (as `duru schema check` does)",),
            action=check,
        )
    ]


def add_row_macs(at: At, op: AddRowMacs) -> list[Ordered]:
    """Expand, then per user of the run: make the missing MACs, then check every one."""
    table = op.table
    steps = [
        ddl(
            at,
            0,
            "expand",
            op.phase,
            op.describe() + ": add the nullable column",
            expand_sql(table),
            undo=drop_sql(table),
        )
    ]
    steps += per_user_steps(
        at,
        Phase.MIGRATE,
        lambda user: [
            (
                f"mac[{user}]",
                f"make the MACs of {table} rows of user {user} on this client, in chunks",
                MacFill(table, user),
            ),
            (
                f"verify-mac[{user}]",
                f"check every MAC of {table} rows of user {user}",
                MacFill(table, user, check=True),
            ),
        ],
    )
    return steps


def require_row_macs(at: At, op: RequireRowMacs) -> list[Ordered]:
    """Gate on keys, refuse rows without a MAC, MAC what came meanwhile, then NOT NULL."""
    return keyed_contract_steps(
        at,
        op.table,
        ROW_MAC,
        op.phase,
        missing="have no MAC",
        waiting=lambda conn: missing_by_user(conn, op.table),
        fill=MacFill(op.table),
        fill_title="make the MACs of rows written without one since they were checked",
        slug="mac-rest",
    )
