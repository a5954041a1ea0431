"""Helpers that turn an operation into ordered device steps (shared by the impl modules)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from duru.migrate.migration import Migration
from duru.migrate.ops import Operation, Phase
from duru.migrate.sqlite.steps import Step, StepContext, TransactionStep
from duru.migrate.sqlite.tables import count
from duru.migrate.steps import StepResult

# (operation index, sub-step): steps of one phase run in this order.
Ordered = tuple[tuple[int, ...], Step]


@dataclass(frozen=True)
class At:
    """Where an operation sits: the connection (for estimates), its migration and index."""

    conn: sqlite3.Connection
    migration: Migration
    index: int

    def key(self, slug: str) -> str:
        return f"{self.migration.id}/{self.index:02d}.{slug}"

    def count(self, table: str) -> int | None:
        try:
            return count(self.conn, table)
        except sqlite3.OperationalError:
            return None  # created by an earlier operation of this migration

    def step(self, cls: type[Step], slug: str, phase: Phase, title: str, **kw: Any) -> Ordered:
        sub = ("bridge", "apply", "copy", "swap").index(slug) if slug in _SUBS else 0
        return (self.index, sub), cls(self.key(slug), self.migration.id, phase, title, **kw)


_SUBS = frozenset({"bridge", "apply", "copy", "swap"})


def ddl(at: At, op: Operation, statements: list[str], **kw: Any) -> list[Ordered]:
    """One transaction step that executes ``statements`` (``kw``: more fields of the step)."""

    def run(ctx: StepContext) -> StepResult:
        for stmt in statements:
            ctx.conn.execute(stmt)
        return StepResult(details={"statements": len(statements)})

    return [
        at.step(
            TransactionStep,
            "apply",
            op.phase,
            op.describe(),
            sql=tuple(statements),
            action=run,
            **kw,
        )
    ]
