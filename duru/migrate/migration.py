"""Migrations, migration sets, and the plan of a run: which steps, in which phase, how many rows.

A :class:`Migration` moves a file from one schema version to the next with a
list of operations. A :class:`MigrationSet` holds a chain of them and knows
how to read a file's version. The :class:`Plan` is what a run will do, step
by step; ``render()`` prints it and ``to_json()`` gives it to tools.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duru.errors import MigrationError
from duru.migrate.ops import Operation, Phase
from duru.migrate.sqlite.steps import Step


@dataclass(frozen=True)
class Migration:
    """One version step of a schema: ``source`` -> ``target`` through ``ops``.

    ``fingerprint`` is the model fingerprint stamped into ``duru_meta`` with
    the new version (None leaves it as it is).
    """

    id: str
    source: str
    target: str
    ops: tuple[Operation, ...]
    description: str = ""
    fingerprint: str | None = None

    @property
    def quarantine_source(self) -> str:
        """What rejected rows are recorded under, unless an operation says otherwise."""
        return f"migration {self.id}"


@dataclass(frozen=True)
class MigrationSet:
    """A chain of migrations ending at ``current``, and how to read a file's version."""

    migrations: tuple[Migration, ...]
    current: str
    detect: Callable[[sqlite3.Connection], str]
    name: str = "device"

    def __post_init__(self) -> None:
        ids = [m.id for m in self.migrations]
        if len(set(ids)) != len(ids):
            raise ValueError("migration ids repeat")
        sources = [m.source for m in self.migrations]
        if len(set(sources)) != len(sources):
            raise ValueError("two migrations start from the same version")

    def by_id(self, migration_id: str) -> Migration:
        for m in self.migrations:
            if m.id == migration_id:
                return m
        raise MigrationError(f"unknown migration {migration_id!r} (this duru does not have it)")

    def path(self, version: str) -> list[Migration]:
        """Migrations that take a file at ``version`` to ``current``, in order.

        Raises MigrationError when no chain leads from ``version`` to ``current``.
        """
        out: list[Migration] = []
        step = {m.source: m for m in self.migrations}
        at = version
        while at != self.current:
            m = step.get(at)
            if m is None or len(out) > len(self.migrations):
                known = ", ".join(sorted({m.source for m in self.migrations} | {self.current}))
                raise MigrationError(
                    f"no migration path from schema version {version} to {self.current}"
                    f" (this duru knows {known})"
                )
            out.append(m)
            at = m.target
        return out


@dataclass(frozen=True)
class Plan:
    """What a run will do: the versions, the migrations and every step in order.

    ``run_id`` and ``done`` are set when the plan continues an unfinished run:
    the steps it has already done are skipped.
    """

    db_path: Path
    source_version: str
    target_version: str
    migrations: tuple[str, ...]
    steps: tuple[Step, ...]
    run_id: str | None = None
    done: frozenset[str] = field(default_factory=frozenset)

    @property
    def up_to_date(self) -> bool:
        return not self.migrations

    @property
    def pending(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.key not in self.done)

    def render(self) -> str:
        """The plan as text: one block per phase, one line per step with its row estimate."""
        head = f"{self.db_path}: device schema {self.source_version}"
        if self.up_to_date:
            return head + " is up to date; nothing to do"
        lines = [f"{head} -> {self.target_version} ({', '.join(self.migrations)})"]
        if self.run_id:
            lines.append(f"continues run {self.run_id} ({len(self.done)} steps already done)")
        phase: Phase | None = None
        width = max(len(s.key) for s in self.steps)
        for s in self.steps:
            if s.phase != phase:
                phase = s.phase
                lines.append(f"  phase {int(phase)} {phase.label}")
            rows = "" if s.estimate is None else f"  ~{s.estimate:,} rows"
            mark = "  (done)" if s.key in self.done else ""
            lines.append(f"    {s.key:<{width}}  {s.title}{rows}{mark}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "database": str(self.db_path),
            "source_version": self.source_version,
            "target_version": self.target_version,
            "migrations": list(self.migrations),
            "run_id": self.run_id,
            "steps": [
                {
                    "key": s.key,
                    "phase": s.phase.label,
                    "title": s.title,
                    "kind": s.kind,
                    "estimate": s.estimate,
                    "sql": list(s.sql),
                    "done": s.key in self.done,
                }
                for s in self.steps
            ],
        }


def order_steps(steps: Sequence[tuple[tuple[int, ...], Step]]) -> list[Step]:
    """Steps sorted by phase first, then by their position (operation, sub-step)."""
    return [s for _, s in sorted(steps, key=lambda pair: (int(pair[1].phase), pair[0]))]
