"""Expand/contract for renames and type changes: SQL, the sync trigger, the chunked backfill.

Between expand and contract both columns exist. A BEFORE trigger copies each
client write into the other column: an old client that writes the old
column gets the new one computed (``up``), a new client that writes the new
column gets the old one computed (``down``), so both read what the other
wrote. The migration's own backfill marks its transactions
(:func:`~duru.migrate.postgres.session.mark_backfill`) and the trigger lets
them through untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from duru.errors import ValidationFailed
from duru.migrate.ops import quote
from duru.migrate.postgres.names import sync_function
from duru.migrate.postgres.ops import VALUE, ContractColumn, ExpandColumn
from duru.migrate.postgres.session import BACKFILL_SETTING, mark_backfill
from duru.migrate.postgres.snapshot import primary_key
from duru.migrate.postgres.state import Key
from duru.migrate.postgres.steps import PgContext
from duru.migrate.steps import Chunk, ChunkState

CONTRACT_REASON = (
    "-- duru: allow DURU207 because this is the contract step of an expand/contract change:"
    " the column is dropped only after every client moved to its replacement\n"
)


def convert(expression: str, value: str) -> str:
    """``expression`` with ``{value}`` replaced by the SQL ``value``."""
    return "(" + expression.replace(VALUE, value) + ")"


def sync_trigger_sql(op: ExpandColumn) -> list[str]:
    """The function and trigger keeping ``op.column`` and ``op.new_column`` in step."""
    fn = quote(sync_function(op.table, op.column))
    old, new = quote(op.column), quote(op.new_column)
    body = f"""CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('{BACKFILL_SETTING}', true) = 'on' THEN
    RETURN NEW;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.{new} IS NULL THEN
      NEW.{new} := {convert(op.up, f"NEW.{old}")};
    ELSIF NEW.{old} IS NULL THEN
      NEW.{old} := {convert(op.down, f"NEW.{new}")};
    END IF;
  ELSIF NEW.{old} IS DISTINCT FROM OLD.{old} AND NEW.{new} IS NOT DISTINCT FROM OLD.{new} THEN
    NEW.{new} := {convert(op.up, f"NEW.{old}")};
  ELSIF NEW.{new} IS DISTINCT FROM OLD.{new} AND NEW.{old} IS NOT DISTINCT FROM OLD.{old} THEN
    NEW.{old} := {convert(op.down, f"NEW.{new}")};
  END IF;
  RETURN NEW;
END
$$"""
    trigger = (
        f"CREATE TRIGGER {fn} BEFORE INSERT OR UPDATE ON {quote(op.table)}"
        f" FOR EACH ROW EXECUTE FUNCTION {fn}()"
    )
    return [body, trigger]


def expand_sql(op: ExpandColumn) -> list[str]:
    """Add the new column (nullable: the backfill fills it) and the sync trigger."""
    add = f"ALTER TABLE {quote(op.table)} ADD COLUMN {quote(op.new_column)} {op.new_type}"
    return [add, *sync_trigger_sql(op)]


def drop_sync_sql(table: str, column: str) -> list[str]:
    fn = quote(sync_function(table, column))
    return [f"DROP TRIGGER IF EXISTS {fn} ON {quote(table)}", f"DROP FUNCTION IF EXISTS {fn}()"]


def contract_sql(op: ContractColumn) -> list[str]:
    """Drop the trigger and the column not kept (the DROP carries its lint suppression)."""
    e = op.expansion
    drop = f"{CONTRACT_REASON}ALTER TABLE {quote(e.table)} DROP COLUMN {quote(op.dropped)}"
    return [*drop_sync_sql(e.table, e.column), drop]


def key_after(key: tuple[str, ...], alias: str = "") -> str:
    """``(k1, k2) > (%s, %s)``: the keyset condition for rows after a high-water mark."""
    cols = ", ".join(alias + quote(k) for k in key)
    marks = ", ".join("%s" for _ in key)
    return f"({cols}) > ({marks})"


def key_through(key: tuple[str, ...], alias: str = "") -> str:
    cols = ", ".join(alias + quote(k) for k in key)
    marks = ", ".join("%s" for _ in key)
    return f"({cols}) <= ({marks})"


@dataclass
class ExpandBackfill:
    """Fill the new column from the old one, chunk by chunk in primary key order.

    Each chunk updates only rows whose new value differs from ``up(old)``
    (clients already wrote the others) and then checks that no row of the
    chunk still differs.
    """

    op: ExpandColumn

    def _key(self, ctx: PgContext) -> tuple[str, ...]:
        return primary_key(ctx.conn, self.op.table)

    def _differs(self) -> str:
        op = self.op
        return f"{quote(op.new_column)} IS DISTINCT FROM {convert(op.up, quote(op.column))}"

    def total(self, ctx: PgContext) -> int | None:
        found = ctx.conn.execute(f"SELECT count(*) FROM {quote(self.op.table)}").fetchone()
        return int(found[0]) if found else None

    def chunk(self, ctx: PgContext, after: Key | None, limit: int) -> Chunk | None:
        key = self._key(ctx)
        table = quote(self.op.table)
        cols = ", ".join(quote(k) for k in key)
        where, params = ("", ()) if after is None else (f" WHERE {key_after(key)}", after)
        rows = ctx.conn.execute(
            f"SELECT {cols} FROM {table}{where} ORDER BY {cols} LIMIT %s", (*params, limit)
        ).fetchall()
        if not rows:
            return None
        last = tuple(str(v) for v in rows[-1])
        # The leading column's plain range lets the planner estimate the chunk from its
        # statistics (a row-value comparison alone is a guess that can mean a full scan).
        lead = quote(key[0])
        span = f"{lead} >= %s AND {lead} <= %s AND " + key_through(key)
        span += "" if after is None else f" AND {key_after(key)}"
        bounds = (str(rows[0][0]), last[0], *last, *(after or ()))
        mark_backfill(ctx.conn)
        op = self.op
        cur = ctx.conn.execute(
            f"UPDATE {table} SET {quote(op.new_column)} = {convert(op.up, quote(op.column))}"
            f" WHERE {span} AND {self._differs()}",
            bounds,
        )
        left = ctx.conn.execute(
            f"SELECT count(*) FROM {table} WHERE {span} AND {self._differs()}", bounds
        ).fetchone()
        if left and left[0]:
            raise ValidationFailed(
                f"{op.describe()}: {left[0]} rows of the chunk ending at {last} still differ"
                " after the backfill"
            )
        return Chunk(last, len(rows), cur.rowcount, skipped=len(rows) - cur.rowcount)

    def finish(self, ctx: PgContext, totals: ChunkState) -> Mapping[str, Any]:
        table = quote(self.op.table)
        left = ctx.conn.execute(f"SELECT count(*) FROM {table} WHERE {self._differs()}").fetchone()
        if left and left[0]:
            raise ValidationFailed(
                f"{self.op.describe()}: {left[0]} rows differ after the backfill"
                " (is the sync trigger missing?)"
            )
        return {"rows": totals.rows, "updated": totals.placed}

    def sql(self, key: tuple[str, ...]) -> tuple[str, ...]:
        """The per-chunk statements, with $n for the chunk's bounds (for plans and the linter)."""
        op = self.op
        cols = ", ".join(quote(k) for k in key)
        lo = ", ".join(f"${i + 1}" for i in range(len(key)))
        hi = ", ".join(f"${i + 1 + len(key)}" for i in range(len(key)))
        span = f"({cols}) > ({lo}) AND ({cols}) <= ({hi})"
        return (
            f"SELECT {cols} FROM {quote(op.table)} WHERE ({cols}) > ({lo})"
            f" ORDER BY {cols} LIMIT ${len(key) + 1}",
            f"UPDATE {quote(op.table)} SET {quote(op.new_column)} ="
            f" {convert(op.up, quote(op.column))} WHERE {span} AND {self._differs()}",
        )
