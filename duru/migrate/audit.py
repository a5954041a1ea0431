"""The audit trail: every step of every run, in the database it changes (either dialect).

Each row records one step (or one chunk, or an event such as a resume or a
rollback): run, migration, phase, step key, start and end (epoch ms), rows,
status, error and JSON ``details``, in ``duru_migration_audit`` on the device
file and on the server alike, so one reader shows both. A transaction step's row is
written in the step's own transaction, so the two commit together or not at
all. A step that spans transactions first commits a ``running`` row; if the
process dies, the next resume marks that row ``interrupted`` and points it at
the row that carried on (``details.resumed_by``), so the trail never has a
start without an end.

Rows whose ``details.point`` is set are rollback points. :class:`Audit` holds
what both dialects do; ``sqlite.audit`` and ``postgres.audit`` supply the SQL.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from duru.model import now_ms

Status = Literal["running", "ok", "failed", "interrupted"]
Kind = Literal["step", "chunk", "event"]

AUDIT_TABLE = "duru_migration_audit"
COLUMNS = (
    "id, run_id, migration, phase, step, kind, started_at, ended_at, rows, status, error, details"
)


@dataclass(frozen=True)
class Where:
    """Which migration, phase and step an audit row is about."""

    migration: str
    phase: str
    step: str


@dataclass(frozen=True)
class AuditRow:
    """One row of the audit trail."""

    id: int
    run_id: str
    migration: str
    phase: str
    step: str
    kind: str
    started_at: int
    ended_at: int | None
    rows: int
    status: str
    error: str | None
    details: Mapping[str, Any]

    @property
    def point(self) -> Mapping[str, Any] | None:
        found = self.details.get("point")
        return found if isinstance(found, dict) else None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS.split(", ")}


def row_from(r: tuple[Any, ...], details: Mapping[str, Any]) -> AuditRow:
    """An AuditRow from a row of :data:`COLUMNS` (``details`` already decoded)."""
    return AuditRow(
        id=int(r[0]),
        run_id=r[1],
        migration=r[2],
        phase=r[3],
        step=r[4],
        kind=r[5],
        started_at=int(r[6]),
        ended_at=None if r[7] is None else int(r[7]),
        rows=int(r[8]),
        status=r[9],
        error=r[10],
        details=details,
    )


class Audit(ABC):
    """Writes the audit rows of one run; every call runs in the caller's transaction."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    @abstractmethod
    def _insert(self, values: tuple[Any, ...], details: Mapping[str, Any]) -> int:
        """Insert ``(run_id, migration, phase, step, kind, started_at, ended_at, rows,
        status, error)`` and ``details``; the new row's id."""

    @abstractmethod
    def _end(
        self, audit_id: int, values: tuple[int, str, str | None], details: Mapping[str, Any]
    ) -> None:
        """Set ``ended_at`` now, ``(rows, status, error)``, and merge ``details`` in."""

    @abstractmethod
    def read(self, audit_id: int) -> AuditRow:
        """One row; KeyError when there is none."""

    def record(
        self,
        where: Where,
        *,
        started_at: int,
        kind: Kind = "step",
        rows: int = 0,
        status: Status = "ok",
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Insert a row (ended now unless ``running``); its id."""
        ended = None if status == "running" else now_ms()
        values = (
            self.run_id,
            where.migration,
            where.phase,
            where.step,
            kind,
            started_at,
            ended,
            rows,
            status,
            error,
        )
        return self._insert(values, dict(details or {}))

    def open(self, where: Where, details: Mapping[str, Any]) -> int:
        """A ``running`` row for a step that spans transactions; commit it before the work."""
        return self.record(where, started_at=now_ms(), status="running", details=details)

    def close(
        self,
        audit_id: int,
        *,
        rows: int,
        status: Status,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """End a ``running`` row, merging ``details`` into what it already says."""
        self._end(audit_id, (rows, status, error), dict(details or {}))

    def interrupt(self, audit_id: int, resumed_by: int | None, why: str) -> None:
        """Mark a ``running`` row a dead process left behind as interrupted."""
        extra: dict[str, Any] = {"interrupted": why}
        if resumed_by is not None:
            extra["resumed_by"] = resumed_by
        row = self.read(audit_id)
        self.close(audit_id, rows=row.rows, status="interrupted", details=extra)
