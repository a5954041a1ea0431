"""What the server engine's entry points return: a run's report and a server's status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from duru.migrate.postgres.plan import ServerPlan
from duru.migrate.report import StepReport
from duru.migrate.state import RunRecord

RunStatus = Literal["done", "paused", "up_to_date"]


@dataclass(frozen=True)
class ServerRunReport:
    """What a server run did: versions, steps, rows; why it paused, if it did."""

    status: RunStatus
    plan: ServerPlan
    run_id: str | None = None
    steps: tuple[StepReport, ...] = ()
    seconds: float = 0.0
    reason: str | None = None

    def render(self) -> str:
        if self.status == "up_to_date":
            return self.plan.render()
        lines = [
            f"run {self.run_id}: server schema {self.plan.source_version} ->"
            f" {self.plan.target_version} {self.status} in {self.seconds:.1f}s"
        ]
        if self.reason:
            lines.append(f"  paused: {self.reason}")
        for s in self.steps:
            lines.append(f"    {s.key}  {s.rows:,} rows  {s.seconds:.2f}s")
        lines += [f"  note: {n}" for n in self.notices]
        return "\n".join(lines)

    @property
    def notices(self) -> tuple[str, ...]:
        """The plan's notices, once the run is done (before, they have not happened yet)."""
        return self.plan.notices if self.status == "done" else ()

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "run_id": self.run_id,
            "source_version": self.plan.source_version,
            "target_version": self.plan.target_version,
            "migrations": list(self.plan.migrations),
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "notices": list(self.notices),
            "steps": [
                {"key": s.key, "phase": s.phase, "rows": s.rows, "seconds": round(s.seconds, 3)}
                for s in self.steps
            ],
        }


@dataclass(frozen=True)
class ServerStatus:
    """Where a server stands: its version, what is pending, its runs and snapshots."""

    database: str
    version: str
    target_version: str
    pending: tuple[str, ...]
    active: RunRecord | None
    last_run: RunRecord | None
    snapshots: tuple[str, ...]
    audit_rows: int
    drift: tuple[str, ...] = ()

    @property
    def up_to_date(self) -> bool:
        """At this duru's version with nothing pending, and matching the model."""
        return not self.pending and not self.drift and self.version == self.target_version

    def render(self) -> str:
        lines = [
            f"{self.database}: server schema {self.version} (this duru: {self.target_version})"
        ]
        if self.pending:
            lines.append(f"  pending: {', '.join(self.pending)}")
        if self.drift:
            lines.append(
                f"  NOT up to date: the live schema differs from the model in {len(self.drift)}"
                f" place(s), e.g. {self.drift[0]}; see `duru schema check --remote URL`"
            )
        elif self.up_to_date:
            lines.append("  up to date")
        run = self.active or self.last_run
        if run is not None:
            lines.append(
                f"  {'unfinished' if self.active else 'last'} run {run.run_id}: {run.status}"
                + (f" ({run.error})" if run.error else "")
                + f", {self.audit_rows} audit rows"
            )
        if self.snapshots:
            lines.append(f"  snapshots: {', '.join(self.snapshots)}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        run = self.active or self.last_run
        return {
            "database": self.database,
            "version": self.version,
            "target_version": self.target_version,
            "pending": list(self.pending),
            "active_run": None if self.active is None else self.active.run_id,
            "run": None if run is None else _run_json(run),
            "snapshots": list(self.snapshots),
            "audit_rows": self.audit_rows,
            "up_to_date": self.up_to_date,
            "drift": list(self.drift),
        }


def _run_json(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "source_version": run.source_version,
        "target_version": run.target_version,
        "migrations": list(run.migrations),
        "status": run.status,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "error": run.error,
    }
