"""SQLite table rebuild, after https://www.sqlite.org/lang_altertable.html#otheralter.

SQLite cannot change a column's type or add a constraint in place; the
documented way is: foreign keys off, BEGIN, create the new table under a
temporary name, copy with explicit column lists, drop the old table, rename
the new one, re-create indexes and triggers, ``PRAGMA foreign_key_check``,
COMMIT, foreign keys on. We keep every step and the order of the final swap,
but move the copy out of the swap's transaction into chunks, so that a large
table moves in short transactions, each one a rollback point:

- bridge (one transaction): the shadow table ``_duru_new_<table>`` and a write
  fence (triggers that refuse writes to the old table, so it cannot change
  under the copy), and the copy tried on a sample and rolled back;
- copy (one transaction per chunk): rows in rowid order with their rowids
  kept, or in key order for a STRICT table keyed by a text id (see
  :class:`TableRebuild`), so a chunk of the shadow lines up with a range of
  the old table. A chunk the new constraints reject is split in halves until
  the rejected rows are found; each goes to quarantine with SQLite's reason.
  Every chunk's counts are checked in its transaction, and every chunk is
  compared with its source row by row (each copied column with ``IS``, which
  is stricter than a checksum). With a :class:`ChunkVerifier` that compare
  runs on a second connection while the next chunk copies (see there);
- swap (one transaction, foreign keys off): count(old) = count(new) +
  quarantined, the whole table compared once more, drop old, rename new,
  indexes, FTS tables and triggers, FTS refilled, ``foreign_key_check`` on the
  table and its children (a violation rolls the swap back).

The statements themselves (names, fences, the SQL of each step) are in
:mod:`duru.migrate.sqlite.rebuild_sql`; this module runs them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from duru.errors import ValidationFailed
from duru.migrate.ops import quote
from duru.migrate.sqlite.rebuild_sql import RebuildStatements
from duru.migrate.sqlite.steps import RowPosition, StepContext, row_position
from duru.migrate.sqlite.tables import (
    check_foreign_keys,
    child_tables,
    count,
    foreign_keys,
    quarantined,
)
from duru.migrate.steps import Chunk, ChunkState, StepResult, reached
from duru.model import Row

if TYPE_CHECKING:
    from duru.migrate.sqlite.verify import ChunkVerifier


@dataclass(frozen=True)
class Rejection:
    """A source row the new table refused, and SQLite's reason."""

    position: RowPosition
    reason: str


@dataclass(frozen=True)
class TableRebuild(RebuildStatements):
    """One table's rebuild, run: bridge, chunked copy (split on rejects), checks and swap."""

    # -- bridge ---------------------------------------------------------------

    def bridge(self, ctx: StepContext, why: str) -> StepResult:
        """Create the shadow and the fence, and try the copy on a sample (undone)."""
        for stmt in self.bridge_sql(why):
            ctx.conn.execute(stmt)
        total = count(ctx.conn, self.table)
        sample = self._sample(ctx.conn, total, ctx.config.sample_rows)
        rejected: list[Rejection] = []
        ctx.conn.execute("SAVEPOINT duru_sample")
        try:
            for at in sample:
                rejected += self._copy_one(ctx.conn, at)
            equal = ctx.conn.execute(
                self.compare_sql(f"{self.pos} IN (SELECT value FROM json_each(?))"),
                (json.dumps(sample),),
            ).fetchone()[0]
        finally:
            ctx.conn.execute("ROLLBACK TO duru_sample")
            ctx.conn.execute("RELEASE duru_sample")
        if equal != len(sample) - len(rejected):
            raise ValidationFailed(
                f"{self.table}: the copy of a sample of {len(sample)} rows does not match its"
                f" source ({equal} equal, {len(rejected)} rejected)"
            )
        details = {
            "rows": total,
            "order": self.order,
            "sample": len(sample),
            "sample_rejected": len(rejected),
            "sample_reasons": sorted({r.reason for r in rejected})[:5],
        }
        return StepResult(rows=len(sample), details=details)

    def _sample(self, conn: sqlite3.Connection, total: int, want: int) -> list[RowPosition]:
        if total == 0 or want <= 0:
            return []
        stride = max(1, total // want)
        cur = conn.execute(
            f"SELECT p FROM (SELECT {self.pos} AS p, row_number() OVER (ORDER BY {self.pos}) AS n"
            f" FROM {quote(self.table)}) WHERE (n - 1) % ? = 0 LIMIT ?",
            (stride, want),
        )
        return [r[0] for r in cur.fetchall()]

    # -- copy -----------------------------------------------------------------

    def copy_chunk(
        self,
        ctx: StepContext,
        after: RowPosition | None,
        limit: int,
        until: RowPosition | None,
        verifier: ChunkVerifier | None = None,
    ) -> Chunk | None:
        """Copy the next ``limit`` rows after ``after``; verify them, quarantine rejects.

        Without ``verifier`` the chunk is compared with its source here, in its
        own transaction. With one, the compare of this chunk starts once it is
        committed (at the next call) and its verdict is awaited before the
        chunk after it commits; the last chunk's is awaited before None.
        """
        if verifier is None:
            return self._copy_chunk(ctx, after, limit, until, None)
        try:
            verifier.start(after)
            result = self._copy_chunk(ctx, after, limit, until, verifier)
        except BaseException:
            verifier.drop()
            raise
        if result is None:
            verifier.drop()
        return result

    def _copy_chunk(
        self,
        ctx: StepContext,
        after: RowPosition | None,
        limit: int,
        until: RowPosition | None,
        verifier: ChunkVerifier | None,
    ) -> Chunk | None:
        found = self._next_chunk(ctx.conn, after, limit, until)
        if found is None:
            if verifier is not None:
                verifier.wait()
            return None
        hi, src = found
        where, params = self.span(after, hi)
        dst, rejected = self._copy_range(ctx.conn, after, hi)
        for r in rejected:
            self._quarantine(ctx, r)
        if src != dst + len(rejected):
            raise ValidationFailed(
                f"{self.table}: rows ({after}, {hi}]: {src} read but {dst} copied and"
                f" {len(rejected)} quarantined"
            )
        details: dict[str, Any] = {"from": after, "hwm": hi}
        if verifier is None:
            equal = ctx.conn.execute(self.compare_sql(where), params).fetchone()[0]
            self.check_equal(after, hi, dst, equal)
            details["compared"] = equal
        else:
            verdict = verifier.wait()
            if verdict is not None:
                details["verified"] = verdict
            verifier.hold(after, hi, dst)
        failed = len(rejected) if self.rejects_are_failures else 0
        if rejected:
            details["reasons"] = sorted({r.reason for r in rejected})[:5]
        return Chunk(hi, src, dst, len(rejected), failed, details)

    def check_equal(self, lo: RowPosition | None, hi: RowPosition, copied: int, equal: int) -> None:
        """ValidationFailed unless all ``copied`` rows of ``(lo, hi]`` equal their source."""
        if equal != copied:
            raise ValidationFailed(
                f"{self.table}: rows ({lo}, {hi}]: {copied - equal} of {copied} copied rows"
                " differ from their source"
            )

    def _next_chunk(
        self,
        conn: sqlite3.Connection,
        lo: RowPosition | None,
        limit: int,
        until: RowPosition | None,
    ) -> tuple[RowPosition, int] | None:
        """The end of the next chunk and the rows in it (one index scan); None when done."""
        if until is not None and lo is not None and reached(lo, until):
            return None
        where, params = self.span(lo, until)
        hi, rows = conn.execute(
            f"SELECT max(p), count(*) FROM (SELECT {self.pos} AS p FROM {quote(self.table)}"
            f" WHERE {where} ORDER BY {self.pos} LIMIT ?)",
            (*params, limit),
        ).fetchone()
        return None if not rows else (hi, int(rows))

    def _copy_range(
        self, conn: sqlite3.Connection, lo: RowPosition | None, hi: RowPosition
    ) -> tuple[int, list[Rejection]]:
        """Copy the rows in ``(lo, hi]``: how many went in, and those refused, with why."""
        where, params = self.span(lo, hi)
        # A failed INSERT ... SELECT undoes itself (statement rollback), so halving is safe.
        try:
            return conn.execute(self.insert_sql(where), params).rowcount, []
        except sqlite3.IntegrityError as exc:
            found = [
                r[0]
                for r in conn.execute(
                    f"SELECT {self.pos} FROM {quote(self.table)} WHERE {where} ORDER BY {self.pos}",
                    params,
                )
            ]
            if len(found) == 1:
                return 0, [Rejection(found[0], self._reason(conn, found[0], exc))]
            mid = found[len(found) // 2 - 1]
            left, right = self._copy_range(conn, lo, mid), self._copy_range(conn, mid, hi)
            return left[0] + right[0], left[1] + right[1]

    def _copy_one(self, conn: sqlite3.Connection, at: RowPosition) -> list[Rejection]:
        try:
            conn.execute(self.insert_sql(f"{self.pos} = ?"), (at,))
            return []
        except sqlite3.IntegrityError as exc:
            return [Rejection(at, self._reason(conn, at, exc))]

    def _reason(
        self, conn: sqlite3.Connection, at: RowPosition, exc: sqlite3.IntegrityError
    ) -> str:
        text = str(exc).replace(self.shadow, self.table)
        if text.startswith("FOREIGN KEY constraint failed"):
            missing = self._missing_parents(conn, at)
            if missing:
                return f"{text}: {'; '.join(missing)}"
        return text

    def _missing_parents(self, conn: sqlite3.Connection, at: RowPosition) -> list[str]:
        values = dict(self.pairs())
        out = []
        for fk in foreign_keys(conn, self.shadow):
            expr = values.get(fk.column)
            if expr is None:
                continue
            value = conn.execute(
                f"SELECT {expr} FROM {quote(self.table)} WHERE {self.pos} = ?", (at,)
            ).fetchone()[0]
            if value is None:
                continue
            found = conn.execute(
                f"SELECT 1 FROM {quote(fk.parent)} WHERE {quote(fk.parent_column)} = ? LIMIT 1",
                (value,),
            ).fetchone()
            if found is None:
                out.append(f"{fk.column} {value} has no {fk.parent}.{fk.parent_column}")
        return out

    def _quarantine(self, ctx: StepContext, r: Rejection) -> None:
        row = self.source_row(ctx.conn, r.position)
        key = row.get(self.spec.key) if self.spec.key else None
        ctx.db.quarantine(
            ctx.quarantine_source,
            self.table,
            str(key if key is not None else r.position),
            r.reason,
            row,
        )

    def source_row(self, conn: sqlite3.Connection, at: RowPosition) -> Row:
        cols = ", ".join(quote(c) for c in self.source_columns)
        found = conn.execute(
            f"SELECT {cols} FROM {quote(self.table)} WHERE {self.pos} = ?", (at,)
        ).fetchone()
        return dict(zip(self.source_columns, found, strict=True))

    # -- resume and finish -----------------------------------------------------

    def check_resume(self, ctx: StepContext, state: ChunkState) -> None:
        """The rows copied so far must still equal their source (a VACUUM renumbers rowids)."""
        if state.hwm is None:
            return
        copied = count(ctx.conn, self.shadow)
        where, params = self.span(None, row_position(state.hwm))
        equal = ctx.conn.execute(self.compare_sql(where), params).fetchone()[0]
        if copied != state.placed or equal != copied:
            raise ValidationFailed(
                f"{self.table} changed since its copy started ({copied} rows copied,"
                f" {equal} still equal to their source, {state.placed} expected);"
                " roll the migration back and run it again"
            )

    def finish(self, ctx: StepContext, state: ChunkState) -> tuple[ChunkState, dict[str, Any]]:
        """Quarantine rows whose parent in the same table was quarantined, then check counts."""
        orphans = self._quarantine_orphaned_children(ctx)
        state = ChunkState(
            state.hwm,
            state.rows,
            state.placed - orphans,
            state.quarantined + orphans,
            state.failed + (orphans if self.rejects_are_failures else 0),
            state.chunks,
        )
        self.check_counts(ctx, state)
        return state, {"orphaned_children": orphans, "order": self.order}

    def _quarantine_orphaned_children(self, ctx: StepContext) -> int:
        total = 0
        selfrefs = [fk for fk in foreign_keys(ctx.conn, self.shadow) if fk.parent == self.table]
        while selfrefs:
            found = 0
            for fk in selfrefs:
                col, pcol = quote(fk.column), quote(fk.parent_column)
                shadow = quote(self.shadow)
                cur = ctx.conn.execute(
                    f"SELECT c.{self.pos}, c.rowid, c.{col} FROM {shadow} AS c WHERE {col} IS NOT"
                    f" NULL AND NOT EXISTS (SELECT 1 FROM {shadow} AS p WHERE p.{pcol} = c.{col})"
                )
                for at, rowid, value in cur.fetchall():
                    reason = f"its parent {fk.column} {value} was quarantined"
                    self._quarantine(ctx, Rejection(at, reason))
                    ctx.conn.execute(f"DELETE FROM {shadow} WHERE rowid = ?", (rowid,))
                    found += 1
            total += found
            if not found:
                break
        return total

    def check_counts(self, ctx: StepContext, state: ChunkState) -> None:
        """count(old) = count(new) + quarantined, and the quarantine holds them all."""
        old, new = count(ctx.conn, self.table), count(ctx.conn, self.shadow)
        kept = quarantined(ctx.conn, ctx.quarantine_source, self.table)
        if old != new + state.quarantined or kept != state.quarantined or new != state.placed:
            raise ValidationFailed(
                f"{self.table}: {old} rows before, {new} copied and {state.quarantined}"
                f" quarantined ({kept} in the quarantine table): the counts do not add up"
            )

    # -- swap -----------------------------------------------------------------

    def swap(self, ctx: StepContext, state: ChunkState) -> StepResult:
        """Replace the old table by the shadow; runs with foreign keys off."""
        self.check_counts(ctx, state)
        details: dict[str, Any] = {"rows": state.placed, "quarantined": state.quarantined}
        if ctx.config.final_compare:
            equal = ctx.conn.execute(self.compare_sql("1")).fetchone()[0]
            if equal != state.placed:
                raise ValidationFailed(
                    f"{self.table}: {state.placed - equal} copied rows differ from their source"
                )
            details["compared"] = equal
        for stmt in self.swap_sql():
            ctx.conn.execute(stmt)
        children = child_tables(ctx.conn, self.table)
        check_foreign_keys(ctx.conn, [self.table, *children])
        details["foreign_key_check"] = [self.table, *children]
        # The copy step already counted the quarantined rows; the swap only reports them.
        return StepResult(rows=state.placed, details=details)
