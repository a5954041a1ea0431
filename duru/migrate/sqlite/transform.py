"""Chunked data transformation on SQLite: source rows -> Python mapper -> target table.

The bridge fences the source (it cannot change under the copy) and tries the
mapper on a sample inside a savepoint that is rolled back. Each chunk then
reads source rows in rowid order by column name, maps them, writes what the
mapper placed (halving on a constraint error until the rejected rows are
found), quarantines every rejected row with its reason, reads the written
rows back by key and compares their checksum with the checksum of what the
mapper produced. The target must be empty when the copy starts, so that at
the end count(target) = rows placed and count(source) = placed + quarantined.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from duru.errors import MigrationError, ValidationFailed
from duru.migrate.ops import Rejected, TransformData, quote
from duru.migrate.sqlite.rebuild_sql import fence_sql
from duru.migrate.sqlite.steps import StepContext
from duru.migrate.sqlite.tables import count, live_columns, max_rowid, quarantined
from duru.migrate.steps import Chunk, ChunkState, StepResult
from duru.model import Row


@dataclass(frozen=True)
class SourceRow:
    rowid: int
    values: Row


def checksum(rows: Sequence[Sequence[object]]) -> int:
    """An order-independent checksum of rows (sum of CRC-32s of each pickled row, mod 2^64)."""
    return sum(zlib.crc32(pickle.dumps(tuple(r), protocol=5)) for r in rows) % (1 << 64)


@dataclass(frozen=True)
class DataTransform:
    """One TransformData operation, bound to the live columns of its tables."""

    op: TransformData
    source_columns: tuple[str, ...]
    target_columns: tuple[str, ...]

    @classmethod
    def bind(cls, conn: sqlite3.Connection, op: TransformData) -> DataTransform:
        return cls(op, live_columns(conn, op.source), live_columns(conn, op.target))

    def select_sql(self, bounded: bool) -> str:
        cols = ", ".join(quote(c) for c in self.source_columns)
        until = " AND rowid <= ?" if bounded else ""
        return (
            f"SELECT rowid, {cols} FROM {quote(self.op.source)}"
            f" WHERE rowid > ?{until} ORDER BY rowid LIMIT ?"
        )

    # -- bridge ---------------------------------------------------------------

    def bridge(self, ctx: StepContext, why: str) -> StepResult:
        """Fence the source and try the mapper on a sample (written, checked, undone)."""
        for stmt in fence_sql(self.op.source, why):
            ctx.conn.execute(stmt)
        total = count(ctx.conn, self.op.source)
        stride = max(1, total // max(ctx.config.sample_rows, 1))
        sample = self._read(
            ctx.conn,
            f"SELECT rowid, {', '.join(quote(c) for c in self.source_columns)} FROM"
            f" {quote(self.op.source)} WHERE rowid % ? = 0 ORDER BY rowid LIMIT ?",
            (stride, ctx.config.sample_rows),
        )
        ctx.conn.execute("SAVEPOINT duru_sample")
        try:
            placed, rejected = self._place(ctx, sample, quarantine=False)
        finally:
            ctx.conn.execute("ROLLBACK TO duru_sample")
            ctx.conn.execute("RELEASE duru_sample")
        details = {
            "rows": total,
            "max_rowid": max_rowid(ctx.conn, self.op.source),
            "sample": len(sample),
            "sample_placed": placed,
            "sample_rejected": len(rejected),
            "sample_reasons": sorted({r.reason for r in rejected})[:5],
        }
        return StepResult(rows=len(sample), details=details)

    # -- chunks ---------------------------------------------------------------

    def chunk(
        self, ctx: StepContext, after: int | None, limit: int, until: int | None
    ) -> Chunk | None:
        """Map, write, quarantine and verify the next ``limit`` source rows."""
        if after is None and count(ctx.conn, self.op.target) != 0:
            raise MigrationError(
                f"{self.op.target} must be empty before {self.op.describe()} starts"
            )
        lo = after if after is not None else -(2**63)
        if until is not None and lo >= until:
            return None
        params: tuple[object, ...] = (lo, until, limit) if until is not None else (lo, limit)
        rows = self._read(ctx.conn, self.select_sql(until is not None), params)
        if not rows:
            return None
        placed, rejected = self._place(ctx, rows, quarantine=True)
        failed = len(rejected) if self.op.rejects_are_failures else 0
        details: dict[str, Any] = {"from": after, "hwm": rows[-1].rowid}
        if rejected:
            details["reasons"] = sorted({r.reason for r in rejected})[:5]
        details["checksum"] = f"{placed.checksum:016x}"
        return Chunk(rows[-1].rowid, len(rows), placed.count, len(rejected), failed, details)

    def _read(
        self, conn: sqlite3.Connection, sql: str, params: tuple[object, ...]
    ) -> list[SourceRow]:
        out = []
        for r in conn.execute(sql, params).fetchall():
            out.append(SourceRow(int(r[0]), dict(zip(self.source_columns, r[1:], strict=True))))
        return out

    def _place(
        self, ctx: StepContext, rows: list[SourceRow], *, quarantine: bool
    ) -> tuple[_Placed, list[Rejected]]:
        outcomes = self.op.mapper.map_rows(ctx.conn, [r.values for r in rows])
        if len(outcomes) != len(rows):
            raise MigrationError(
                f"mapper {self.op.mapper.name} gave {len(outcomes)} outcomes for {len(rows)} rows"
            )
        to_write = [o for o in outcomes if not isinstance(o, Rejected)]
        rejected = [o for o in outcomes if isinstance(o, Rejected)]
        written, refused = self._write(ctx.conn, to_write, rows, outcomes)
        rejected += refused
        if quarantine:
            for r in rejected:
                ctx.db.quarantine(self._qsource(ctx), self.op.source, r.key, r.reason, r.row)
        placed = self._verify(ctx.conn, written)
        return placed, rejected

    def _qsource(self, ctx: StepContext) -> str:
        return self.op.quarantine_source or ctx.quarantine_source

    def _write(
        self,
        conn: sqlite3.Connection,
        to_write: list[Row],
        rows: list[SourceRow],
        outcomes: Sequence[Row | Rejected],
    ) -> tuple[list[Row], list[Rejected]]:
        source_of = {
            id(o): r.values
            for r, o in zip(rows, outcomes, strict=True)
            if not isinstance(o, Rejected)
        }
        written: list[Row] = []
        refused: list[Rejected] = []
        for group in _groups(to_write):
            ok, bad = self._insert(conn, group)
            written += ok
            refused += [
                Rejected(_text(row.get(self.op.key)), reason, source_of[id(row)])
                for row, reason in bad
            ]
        return written, refused

    def _insert(
        self, conn: sqlite3.Connection, group: list[Row]
    ) -> tuple[list[Row], list[tuple[Row, str]]]:
        cols = list(group[0])
        unknown = sorted(set(cols) - set(self.target_columns))
        if unknown:
            raise MigrationError(f"mapper {self.op.mapper.name} wrote unknown columns {unknown}")
        sql = (
            f"INSERT INTO {quote(self.op.target)} ({', '.join(quote(c) for c in cols)})"
            f" VALUES ({', '.join('?' for _ in cols)})"
        )
        return _insert_halving(conn, sql, cols, group)

    def _verify(self, conn: sqlite3.Connection, written: list[Row]) -> _Placed:
        if not written:
            return _Placed(0, 0)
        cols = list(written[0])
        key = self.op.key
        keys = [row[key] for row in written]
        found = conn.execute(
            f"SELECT {', '.join(quote(c) for c in cols)} FROM {quote(self.op.target)}"
            f" WHERE {quote(key)} IN (SELECT value FROM json_each(?))",
            (_json_array(keys),),
        ).fetchall()
        expected = checksum([[row.get(c) for c in cols] for row in written])
        actual = checksum([tuple(r) for r in found])
        if len(found) != len(written) or actual != expected:
            raise ValidationFailed(
                f"{self.op.target}: {len(written)} rows written but {len(found)} read back"
                f" (checksum {actual:016x}, expected {expected:016x})"
            )
        return _Placed(len(written), expected)

    # -- resume and finish -------------------------------------------------------

    def check_resume(self, ctx: StepContext, state: ChunkState) -> None:
        kept = quarantined(ctx.conn, self._qsource(ctx), self.op.source)
        if count(ctx.conn, self.op.target) != state.placed or kept != state.quarantined:
            raise ValidationFailed(
                f"{self.op.target} changed since the transform started; roll the migration"
                " back and run it again"
            )

    def finish(self, ctx: StepContext, state: ChunkState) -> tuple[ChunkState, dict[str, Any]]:
        """count(source) = placed + quarantined = rows read, and the target holds the placed."""
        source, target = count(ctx.conn, self.op.source), count(ctx.conn, self.op.target)
        kept = quarantined(ctx.conn, self._qsource(ctx), self.op.source)
        if not (
            source == state.rows == state.placed + state.quarantined
            and target == state.placed
            and kept == state.quarantined
        ):
            raise ValidationFailed(
                f"{self.op.describe()}: {source} source rows, {state.rows} read, {target} in"
                f" {self.op.target}, {state.quarantined} quarantined ({kept} in the quarantine"
                " table): the counts do not add up"
            )
        return state, {"source_rows": source, "target_rows": target}


@dataclass(frozen=True)
class _Placed:
    count: int
    checksum: int


def _groups(rows: list[Row]) -> list[list[Row]]:
    """Rows grouped by their column set, in first-seen order (one INSERT per shape)."""
    out: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        out.setdefault(tuple(row), []).append(row)
    return list(out.values())


def _insert_halving(
    conn: sqlite3.Connection, sql: str, cols: list[str], rows: list[Row]
) -> tuple[list[Row], list[tuple[Row, str]]]:
    """Insert ``rows``; on a constraint error, halve until the refused rows are found."""
    if not rows:
        return [], []
    conn.execute("SAVEPOINT duru_rows")
    try:
        conn.executemany(sql, [[row[c] for c in cols] for row in rows])
    except sqlite3.IntegrityError as exc:
        # executemany stops at the bad row; undo the rows before it too.
        conn.execute("ROLLBACK TO duru_rows")
        conn.execute("RELEASE duru_rows")
        if len(rows) == 1:
            return [], [(rows[0], str(exc))]
        mid = len(rows) // 2
        ok1, bad1 = _insert_halving(conn, sql, cols, rows[:mid])
        ok2, bad2 = _insert_halving(conn, sql, cols, rows[mid:])
        return ok1 + ok2, bad1 + bad2
    conn.execute("RELEASE duru_rows")
    return rows, []


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _json_array(values: list[object]) -> str:
    return json.dumps(values)
