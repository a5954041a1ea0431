"""Moving a plaintext server column into its sealed column, with the keys on the client side.

The server never holds a key: the runner (a client with the owner's keys)
reads plaintext rows in chunks, seals each value exactly as the bridge does
(UTF-8 text, bound to entity, field, user id and row id) and writes the
ciphertexts back through a COPY into a session staging table and one
``UPDATE ... FROM`` per chunk. A row is written only if nobody wrote it since
it was read (its ``xmin`` is unchanged; a client's change is picked up by the
next pass), and ``RETURNING`` shows what landed, compared byte for byte with
what was sent.

Between expand and contract a trigger keeps the two columns honest for
clients of both releases: a plaintext write (previous release) clears the
now stale ciphertext, to be sealed again by the runner; a ciphertext write
(new release) clears the plaintext, so no stale copy is left to read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Connection

from duru.crypto import AccountKeys, open_sealed, seal
from duru.errors import CryptoError, ValidationFailed
from duru.migrate.ops import quote
from duru.migrate.postgres.names import sync_function
from duru.migrate.postgres.ops import SealTarget
from duru.migrate.postgres.session import BACKFILL_SETTING, mark_backfill
from duru.migrate.postgres.state import Key
from duru.migrate.postgres.steps import PgContext
from duru.migrate.steps import Chunk, ChunkState, PauseRun

STAGE = "duru_seal_stage"
STAGE_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (user_id uuid NOT NULL, id uuid NOT NULL,"
    " seen bigint NOT NULL, sealed bytea NOT NULL) ON COMMIT DELETE ROWS"
)
# The row version a reader saw: xmin changes with every update of the row, so
# "xmin is still what I read" means "nobody wrote this row since" (4 bytes to
# compare instead of the plaintext and the old ciphertext).
VERSION = "xmin::text::bigint"
_SHOWN = 5


def seal_sync_sql(t: SealTarget) -> list[str]:
    """The trigger that keeps plaintext and ciphertext from contradicting each other."""
    fn = quote(sync_function(t.table, t.plain))
    plain, sealed = quote(t.plain), quote(t.sealed)
    body = f"""CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('{BACKFILL_SETTING}', true) = 'on' THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.{sealed} IS NOT NULL THEN
      NEW.{plain} := NULL;
    END IF;
  ELSIF NEW.{plain} IS DISTINCT FROM OLD.{plain}
        AND NEW.{sealed} IS NOT DISTINCT FROM OLD.{sealed} THEN
    NEW.{sealed} := NULL;
  ELSIF NEW.{sealed} IS DISTINCT FROM OLD.{sealed} AND NEW.{sealed} IS NOT NULL THEN
    NEW.{plain} := NULL;
  END IF;
  RETURN NEW;
END
$$"""
    trigger = (
        f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON {quote(t.table)}"
        f" FOR EACH ROW EXECUTE FUNCTION {fn}()"
    )
    return [body, trigger]


def expand_sql(t: SealTarget) -> list[str]:
    """Add the sealed column, let new clients leave the plaintext out, install the trigger."""
    table = quote(t.table)
    return [
        f"ALTER TABLE {table} ADD COLUMN {quote(t.sealed)} bytea",
        f"ALTER TABLE {table} ALTER COLUMN {quote(t.plain)} DROP NOT NULL",
        *seal_sync_sql(t),
    ]


def seal_text(t: SealTarget, keys: AccountKeys, user_id: str, row_id: str, text: str) -> bytes:
    """The envelope of ``text`` for this row, as the bridge would seal it."""
    return seal(
        text.encode("utf-8"),
        keys=keys.field_keys,
        entity=t.entity.name,
        field=t.field.name,
        user_id=user_id,
        row_id=row_id,
    )


def open_text(t: SealTarget, keys: AccountKeys, user_id: str, row_id: str, sealed: bytes) -> str:
    """The plaintext of this row's envelope; CryptoError when it does not open."""
    plain = open_sealed(
        sealed,
        keys=keys.field_keys,
        entity=t.entity.name,
        field=t.field.name,
        user_id=user_id,
        row_id=row_id,
    )
    return plain.decode("utf-8")


# A ciphertext to write: (user id, row id, the row version (xmin) it was made from,
# the envelope). A plain tuple: one is made per row on the hot path.
Sealed = tuple[uuid.UUID, uuid.UUID, int, bytes]


def write_sealed(conn: Connection[Any], t: SealTarget, items: Sequence[Sealed]) -> int:
    """Write ``items`` (in key order); how many rows took them.

    Rows changed since they were read are left alone. Raises ValidationFailed
    when a written row does not hold the exact bytes sent.
    """
    if not items:
        return 0
    conn.execute(STAGE_DDL)
    with conn.cursor().copy(
        f"COPY {STAGE} (user_id, id, seen, sealed) FROM STDIN (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["uuid", "uuid", "int8", "bytea"])
        for item in items:
            copy.write_row(item)
    mark_backfill(conn)
    written: list[tuple[Any, Any]] = []
    for user, lo, hi in _spans(items):
        written += conn.execute(
            _WRITE.format(table=quote(t.table), sealed=quote(t.sealed)), (user, lo, hi), binary=True
        ).fetchall()
    sent = {item[1]: item[3] for item in items}
    wrong = [str(i) for i, got in written if sent.get(i) != bytes(got)]
    if wrong:
        raise ValidationFailed(
            f"{t.table}.{t.sealed}: rows {wrong[:_SHOWN]} do not hold the ciphertext just written"
        )
    return len(written)


# One user's id range: plain column bounds let the planner estimate the range from
# its statistics and read just the chunk's rows from the primary key (a row-value
# comparison would be a guess, and the guess is a sequential scan per chunk).
_WRITE = (
    "UPDATE {table} n SET {sealed} = s.sealed FROM " + STAGE + " s"
    " WHERE n.user_id = %s AND n.id >= %s AND n.id <= %s"
    " AND s.user_id = n.user_id AND s.id = n.id AND n." + VERSION + " = s.seen"
    " RETURNING n.id, n.{sealed}"
)


def _spans(items: Sequence[Sealed]) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
    """(user, first id, last id) of each user's run of ``items`` (which are in key order)."""
    out: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []
    start = 0
    for n in range(1, len(items) + 1):
        if n == len(items) or items[n][0] != items[start][0]:
            out.append((items[start][0], items[start][1], items[n - 1][1]))
            start = n
    return out


def _keys(ctx: PgContext, user: str, t: SealTarget) -> AccountKeys:
    found = ctx.keys.get(user)
    if found is None:
        raise PauseRun(
            f"{t.table}.{t.plain} of user {user} must be sealed with that user's keys; run"
            " again with them (their device, or their passphrase)"
        )
    return found


def _after(column: str, after: Key | None) -> tuple[str, tuple[str, ...]]:
    return ("", ()) if after is None else (f" AND {column} > %s", after)


# One user's rows of a target, a page at a time in id order; ``only`` narrows them
# ("" for all, else " AND ..."). The backfill and the validation differ only in that.


def _unsealed(t: SealTarget) -> str:
    return f" AND {quote(t.sealed)} IS NULL AND {quote(t.plain)} IS NOT NULL"


def _user_count(ctx: PgContext, t: SealTarget, user: str, only: str) -> int | None:
    found = ctx.conn.execute(
        f"SELECT count(*) FROM {quote(t.table)} WHERE user_id = %s{only}", (user,)
    ).fetchone()
    return int(found[0]) if found else None


def _user_rows(
    ctx: PgContext,
    t: SealTarget,
    user: str,
    columns: str,
    only: str,
    after: Key | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    cond, params = _after("id", after)
    return ctx.conn.execute(
        f"SELECT {columns} FROM {quote(t.table)} WHERE user_id = %s{cond}{only}"
        " ORDER BY id LIMIT %s",
        (user, *params, limit),
        binary=True,
    ).fetchall()


def _page_sql(t: SealTarget, columns: str, only: str) -> str:
    """The page query as ``sql()`` shows it (numbered parameters)."""
    return (
        f"SELECT {columns} FROM {quote(t.table)} WHERE user_id = $1 AND id > $2{only}"
        " ORDER BY id LIMIT $3"
    )


@dataclass
class SealBackfill:
    """Seal one user's plaintext rows that have no ciphertext yet, chunk by chunk in id order."""

    target: SealTarget
    user_id: str

    def total(self, ctx: PgContext) -> int | None:
        return _user_count(ctx, self.target, self.user_id, _unsealed(self.target))

    def chunk(self, ctx: PgContext, after: Key | None, limit: int) -> Chunk | None:
        t, user = self.target, self.user_id
        keys = _keys(ctx, user, t)
        rows = _user_rows(ctx, t, user, self._columns(), _unsealed(t), after, limit)
        if not rows:
            return None
        owner = uuid.UUID(user)
        items = [
            (owner, rid, seen, seal_text(t, keys, user, str(rid), text)) for rid, text, seen in rows
        ]
        placed = write_sealed(ctx.conn, t, items)
        return Chunk((str(rows[-1][0]),), len(rows), placed, skipped=len(rows) - placed)

    def finish(self, ctx: PgContext, totals: ChunkState) -> Mapping[str, Any]:
        return {"sealed": totals.placed, "changed_meanwhile": totals.skipped}

    def sql(self) -> tuple[str, ...]:
        t = self.target
        return (_page_sql(t, self._columns(), _unsealed(t)), _write_sql(t))

    def _columns(self) -> str:
        return f"id, {quote(self.target.plain)}, {VERSION}"


@dataclass
class SealValidation:
    """Open every ciphertext of one user and compare it with the plaintext, chunk by chunk.

    A row still without ciphertext is sealed now; a ciphertext that does not
    open, or opens to something else than the plaintext, is sealed again from
    the plaintext and charged to the error budget. A row with neither, or
    whose ciphertext does not open and has no plaintext to redo it from,
    stops the run (ValidationFailed): nothing could restore it.
    """

    target: SealTarget
    user_id: str

    def total(self, ctx: PgContext) -> int | None:
        return _user_count(ctx, self.target, self.user_id, "")

    def chunk(self, ctx: PgContext, after: Key | None, limit: int) -> Chunk | None:
        t, user = self.target, self.user_id
        keys = _keys(ctx, user, t)
        rows = _user_rows(ctx, t, user, self._columns(), "", after, limit)
        if not rows:
            return None
        owner = uuid.UUID(user)
        redo: list[Sealed] = []
        bad: dict[str, list[str]] = {"mismatched": [], "unopened": []}
        for rid, plain, sealed, version in rows:
            verdict = _judge(t, keys, user, str(rid), plain, sealed)
            if verdict == "ok":
                continue
            if verdict in bad:
                bad[verdict].append(str(rid))
            assert plain is not None  # _judge only asks to redo rows that have plaintext
            redo.append((owner, rid, version, seal_text(t, keys, user, str(rid), plain)))
        placed = write_sealed(ctx.conn, t, redo)
        failed = len(bad["mismatched"]) + len(bad["unopened"])
        details: dict[str, Any] = {k: v[:_SHOWN] for k, v in bad.items() if v}
        details["resealed"] = placed
        return Chunk(
            (str(rows[-1][0]),),
            len(rows),
            placed,
            failed=failed,
            details=details,
            skipped=len(redo) - placed,
        )

    def finish(self, ctx: PgContext, totals: ChunkState) -> Mapping[str, Any]:
        return {"checked": totals.rows, "resealed": totals.placed, "failed": totals.failed}

    def sql(self) -> tuple[str, ...]:
        return (_page_sql(self.target, self._columns(), ""), _write_sql(self.target))

    def _columns(self) -> str:
        t = self.target
        return f"id, {quote(t.plain)}, {quote(t.sealed)}, {VERSION}"


def _judge(
    t: SealTarget, keys: AccountKeys, user: str, rid: str, plain: str | None, sealed: Any
) -> str:
    """ok, pending (no ciphertext yet), mismatched or unopened; ValidationFailed if lost."""
    where = f"{t.table} row {rid} of user {user}"
    if sealed is None:
        if plain is None:
            raise ValidationFailed(f"{where} has neither {t.plain} nor {t.sealed}")
        return "pending"
    try:
        opened = open_text(t, keys, user, rid, bytes(sealed))
    except CryptoError as exc:
        if plain is None:
            raise ValidationFailed(
                f"{where}: {t.sealed} does not open ({exc.message}) and there is no plaintext"
                " to seal again"
            ) from exc
        return "unopened"
    if plain is None or opened == plain:
        return "ok"
    return "mismatched"


@dataclass
class Reseal:
    """Seal every row still without ciphertext, of any user, in (user_id, id) order.

    Runs once new plaintext writes are refused, so afterwards no row is left.
    """

    target: SealTarget

    def total(self, ctx: PgContext) -> int | None:
        t = self.target
        found = ctx.conn.execute(
            f"SELECT count(*) FROM {quote(t.table)} WHERE {quote(t.sealed)} IS NULL"
        ).fetchone()
        return int(found[0]) if found else None

    def chunk(self, ctx: PgContext, after: Key | None, limit: int) -> Chunk | None:
        t = self.target
        cond, params = ("", ()) if after is None else (" AND (user_id, id) > (%s, %s)", after)
        rows = ctx.conn.execute(
            f"SELECT user_id, id, {quote(t.plain)}, {VERSION} FROM {quote(t.table)}"
            f" WHERE {quote(t.sealed)} IS NULL{cond} ORDER BY user_id, id LIMIT %s",
            (*params, limit),
            binary=True,
        ).fetchall()
        if not rows:
            return None
        items = []
        for owner, rid, plain, seen in rows:
            user = str(owner)
            if plain is None:
                raise ValidationFailed(f"{t.table} row {rid} of user {user} has no value at all")
            keys = _keys(ctx, user, t)
            items.append((owner, rid, seen, seal_text(t, keys, user, str(rid), plain)))
        placed = write_sealed(ctx.conn, t, items)
        hwm = (str(rows[-1][0]), str(rows[-1][1]))
        return Chunk(hwm, len(rows), placed, skipped=len(rows) - placed)

    def finish(self, ctx: PgContext, totals: ChunkState) -> Mapping[str, Any]:
        return {"resealed": totals.placed}

    def sql(self) -> tuple[str, ...]:
        t = self.target
        return (
            f"SELECT user_id, id, {quote(t.plain)}, {VERSION} FROM {quote(t.table)}"
            f" WHERE {quote(t.sealed)} IS NULL AND (user_id, id) > ($1, $2)"
            " ORDER BY user_id, id LIMIT $3",
            _write_sql(t),
        )


def unsealed_by_user(conn: Connection[Any], t: SealTarget) -> dict[str, int]:
    """Rows still without ciphertext, per user id."""
    rows = conn.execute(
        f"SELECT user_id, count(*) FROM {quote(t.table)} WHERE {quote(t.sealed)} IS NULL"
        " GROUP BY user_id ORDER BY user_id"
    ).fetchall()
    return {str(u): int(n) for u, n in rows}


def _write_sql(t: SealTarget) -> str:
    shown = _WRITE.format(table=quote(t.table), sealed=quote(t.sealed))
    return shown.replace("%s", "$1", 1).replace("%s", "$2", 1).replace("%s", "$3", 1)
