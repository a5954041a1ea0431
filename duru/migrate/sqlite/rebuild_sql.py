"""A SQLite table rebuild as statements: shadow and fence names, and the SQL of each step.

What :class:`~duru.migrate.sqlite.rebuild.TableRebuild` runs, and what the
plan shows before a run (no connection needed past :meth:`RebuildStatements.bind`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from duru.migrate.ops import IndexSpec, TableSpec, quote
from duru.migrate.sqlite.steps import RowPosition
from duru.migrate.sqlite.tables import live_columns, strict_table, unique_not_null

SHADOW_PREFIX = "_duru_new_"
FENCE_PREFIX = "_duru_fence_"
_POS = "_duru_pos"


def shadow_name(table: str) -> str:
    return SHADOW_PREFIX + table


def fence_sql(table: str, why: str) -> list[str]:
    """Triggers that refuse every write to ``table`` while a run copies it."""
    message = f"duru: {table} is being migrated ({why}); resume or roll back the migration"
    text = message.replace("'", "''")
    return [
        f"CREATE TRIGGER {quote(f'{FENCE_PREFIX}{table}_{event}')} BEFORE {event.upper()}"
        f" ON {quote(table)} BEGIN SELECT RAISE(ABORT, '{text}'); END"
        for event in ("insert", "update", "delete")
    ]


@dataclass(frozen=True)
class RebuildStatements:
    """One table's rebuild as statements: the names and SQL of its bridge, copy and swap.

    The copy walks the old table in ``order``: by ``rowid`` (kept in the new
    table, as an INTEGER PRIMARY KEY must be: the FTS index points at it), or,
    for a STRICT table keyed by a unique NOT NULL column, by that key, the new
    rows taking fresh rowids in key order. Key order appends to both the table
    and its key index, so a chunk's commit writes few pages; in rowid order a
    random text key would scatter every chunk over the whole key index.
    """

    spec: TableSpec
    source_columns: tuple[str, ...]
    select: Mapping[str, str]
    rejects_are_failures: bool = True
    order: str = "rowid"

    @classmethod
    def bind(
        cls,
        conn: sqlite3.Connection,
        spec: TableSpec,
        select: Mapping[str, str],
        rejects_are_failures: bool = True,
    ) -> Self:
        """The rebuild of ``spec`` over the live old table (its columns and copy order)."""
        cols = live_columns(conn, spec.name)
        order = "rowid"
        key = spec.key
        if (
            spec.rowid_alias is None
            and key is not None
            and key in cols
            and select.get(key, quote(key)) == quote(key)
            and strict_table(conn, spec.name)
            and unique_not_null(conn, spec.name, key)
        ):
            order = key
        return cls(spec, cols, select, rejects_are_failures, order)

    @property
    def table(self) -> str:
        return self.spec.name

    @property
    def shadow(self) -> str:
        return shadow_name(self.spec.name)

    @property
    def by_rowid(self) -> bool:
        return self.order == "rowid"

    @property
    def pos(self) -> str:
        """The SQL expression of a row's position."""
        return "rowid" if self.by_rowid else quote(self.order)

    # -- statements -----------------------------------------------------------

    def pairs(self) -> list[tuple[str, str]]:
        """(new column, expression over the old row) for every column copied.

        In rowid order the rowids are copied too (through the INTEGER PRIMARY
        KEY when the new table has one), so old and new line up by rowid.
        """
        out = [("rowid", "rowid")] if self.by_rowid and not self.spec.rowid_alias else []
        for col in self.spec.columns:
            if col in self.select:
                out.append((col, self.select[col]))
            elif col == self.spec.rowid_alias and col not in self.source_columns:
                out.append((col, "rowid"))
            elif col in self.source_columns:
                out.append((col, quote(col)))
        return out

    def span(
        self, lo: RowPosition | None, hi: RowPosition | None
    ) -> tuple[str, tuple[RowPosition, ...]]:
        """The predicate (and parameters) of positions in ``(lo, hi]`` (None: unbounded)."""
        terms, params = [], []
        if lo is not None:
            terms.append(f"{self.pos} > ?")
            params.append(lo)
        if hi is not None:
            terms.append(f"{self.pos} <= ?")
            params.append(hi)
        return " AND ".join(terms) or "1", tuple(params)

    def insert_sql(self, where: str | None = None) -> str:
        where = where or self.span(0, 0)[0]
        pairs = self.pairs()
        cols = ", ".join(c if c == "rowid" else quote(c) for c, _ in pairs)
        exprs = ", ".join(e for _, e in pairs)
        return (
            f"INSERT INTO {quote(self.shadow)} ({cols}) SELECT {exprs}"
            f" FROM {quote(self.table)} WHERE {where} ORDER BY {self.pos}"
        )

    def compare_sql(self, where: str | None = None) -> str:
        """Counts the new rows equal, column by column, to their source row.

        Both sides are compared without affinity (``+x``): ``n.c IS s.c`` would
        apply the new column's affinity to the source value and call the text
        ``'7'`` equal to the integer ``7`` SQLite made of it. Without affinity,
        values of different storage classes differ, except integers and reals,
        which SQLite compares exactly by value (``5`` equals ``5.0``, the
        conversion a REAL column makes).
        """
        where = where or self.span(0, 0)[0]
        pairs = [(c, e) for c, e in self.pairs() if c != "rowid"]
        exprs = ", ".join(f"{e} AS _c{i}" for i, (_, e) in enumerate(pairs))
        same = " AND ".join(_same(f"n.{quote(c)}", f"s._c{i}") for i, (c, _) in enumerate(pairs))
        match = "n.rowid" if self.by_rowid else f"n.{self.pos}"
        return (
            f"SELECT count(*) FROM (SELECT {self.pos} AS {_POS}, {exprs} FROM {quote(self.table)}"
            f" WHERE {where}) AS s JOIN {quote(self.shadow)} AS n ON {match} = s.{_POS}"
            f" WHERE {same or '1'}"
        )

    def temp_index(self, ix: IndexSpec) -> str:
        return SHADOW_PREFIX + ix.name

    def bridge_sql(self, why: str) -> list[str]:
        out = [
            f"DROP TABLE IF EXISTS {quote(self.shadow)}",
            self.spec.create_as(self.shadow),
        ]
        # Unique indexes must hold during the copy, so duplicates are caught row by row.
        out += [
            ix.sql(name=self.temp_index(ix), table=self.shadow)
            for ix in self.spec.indexes
            if ix.unique
        ]
        return out + fence_sql(self.table, why)

    def swap_sql(self) -> list[str]:
        out = [f"DROP TABLE IF EXISTS {quote(fts)}" for fts in self.spec.fts]
        out += [
            f"DROP TABLE {quote(self.table)}",
            f"ALTER TABLE {quote(self.shadow)} RENAME TO {quote(self.table)}",
        ]
        out += [
            f"DROP INDEX IF EXISTS {quote(self.temp_index(ix))}"
            for ix in self.spec.indexes
            if ix.unique
        ]
        out += [ix.sql() for ix in self.spec.indexes]
        out += list(self.spec.after)
        return out + list(self.spec.fill)


def _same(new: str, old: str) -> str:
    """SQL: ``new`` holds ``old`` (compared without affinity: see ``compare_sql``)."""
    return f"+{new} IS +{old}"
