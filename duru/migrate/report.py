"""What a run reports, on either database: one :class:`StepReport` per step it ran."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepReport:
    """What one step did in this process: rows, rows quarantined, and how long it took."""

    key: str
    phase: str
    title: str
    rows: int
    quarantined: int
    seconds: float
