"""The plan of a device run: the file, its versions, the migrations and every step in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duru.migrate.migration import render_plan, step_json
from duru.migrate.sqlite.steps import Step


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
        return render_plan(
            head, self.target_version, self.migrations, self.steps, self.run_id, self.done
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "database": str(self.db_path),
            "source_version": self.source_version,
            "target_version": self.target_version,
            "migrations": list(self.migrations),
            "run_id": self.run_id,
            "steps": [{**step_json(s), "done": s.key in self.done} for s in self.steps],
        }
