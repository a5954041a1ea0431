"""Migrations, migration sets, and the plan of a run: which steps, in which phase, how many rows.

A :class:`Migration` moves a file from one schema version to the next with a
list of operations. A :class:`MigrationSet` holds a chain of them and knows
how to read a file's version. Each side's plan (:class:`~duru.migrate.sqlite.plan.Plan`,
:class:`~duru.migrate.postgres.plan.ServerPlan`) renders its steps with
:func:`render_plan` and :func:`step_json`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass
from typing import Any, TypeVar

from duru.errors import MigrationError
from duru.migrate.ops import Operation, Phase
from duru.migrate.steps import PlanStep

S = TypeVar("S", bound=PlanStep)


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


def render_plan(
    head: str,
    target: str,
    migrations: Sequence[str],
    steps: Sequence[PlanStep],
    run_id: str | None,
    done: Set[str],
    extra: Sequence[str] = (),
) -> str:
    """A plan as text: ``head`` (where, and its version) -> ``target``, then one block
    per phase and one line per step with its row estimate; ``extra`` lines go
    before the steps. With no migrations: ``head`` is up to date."""
    if not migrations:
        return head + " is up to date; nothing to do"
    lines = [f"{head} -> {target} ({', '.join(migrations)})"]
    if run_id:
        lines.append(f"continues run {run_id} ({len(done)} steps already done)")
    lines += extra
    phase: Phase | None = None
    width = max(len(s.key) for s in steps)
    for s in steps:
        if s.phase != phase:
            phase = s.phase
            lines.append(f"  phase {int(phase)} {phase.label}")
        rows = "" if s.estimate is None else f"  ~{s.estimate:,} rows"
        mark = "  (done)" if s.key in done else ""
        lines.append(f"    {s.key:<{width}}  {s.title}{rows}{mark}")
    return "\n".join(lines)


def step_json(s: PlanStep) -> dict[str, Any]:
    """A step as a plan's JSON shows it (each side adds what it has more)."""
    return {
        "key": s.key,
        "phase": s.phase.label,
        "title": s.title,
        "kind": s.kind,
        "estimate": s.estimate,
        "sql": list(s.sql),
    }


def order_steps(steps: Sequence[tuple[tuple[int, ...], S]]) -> list[S]:
    """Steps sorted by phase first, then by their position (operation, sub-step)."""
    return [s for _, s in sorted(steps, key=lambda pair: (int(pair[1].phase), pair[0]))]
