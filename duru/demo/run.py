"""`duru demo` as a library call: a fresh device database, the steps in order, each timed."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from duru.demo.context import DemoContext, Shown, Step
from duru.demo.server_steps import SERVER_STEPS
from duru.demo.steps import STEPS
from duru.demo.sync_steps import SYNC_STEPS
from duru.errors import UsageError
from duru.local import DeviceStore

DATABASE_NAME = "duru-demo.sqlite"
DEFAULT_EXTRA_NOTES = 200
ALL_STEPS = STEPS + SERVER_STEPS + SYNC_STEPS


@dataclass(frozen=True)
class StepResult:
    """One step done: its name, what it showed and how long it took."""

    name: str
    shown: Shown
    ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ms": round(self.ms, 3), **asdict(self.shown)}


@dataclass(frozen=True)
class DemoResult:
    """Everything a demo run showed, step by step, and where its database is."""

    database: Path
    steps: list[StepResult]

    @property
    def total_ms(self) -> float:
        return sum(s.ms for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": str(self.database),
            "total_ms": round(self.total_ms, 3),
            "steps": [s.to_dict() for s in self.steps],
        }


def run_demo(
    folder: Path | None = None,
    *,
    extra_notes: int = DEFAULT_EXTRA_NOTES,
    steps: Sequence[tuple[str, Step]] = ALL_STEPS,
    on_step: Callable[[StepResult], None] | None = None,
) -> DemoResult:
    """Make a device database in ``folder`` (default: a new temporary folder) and run ``steps``.

    The database and the files steps write stay, for exploring with `duru
    --db`. ``on_step`` sees each result as soon as its step ends. Raises
    UsageError for a negative ``extra_notes`` or when ``folder`` already holds
    a demo database.
    """
    if extra_notes < 0:
        raise UsageError(f"the number of extra notes must not be negative (got {extra_notes})")
    path = _database_path(folder)
    done: list[StepResult] = []
    with DeviceStore.open(path) as store, ExitStack() as cleanup:
        ctx = DemoContext(store, path.parent, extra_notes, cleanup)
        for name, step in steps:
            started = time.perf_counter()
            shown = step(ctx)
            result = StepResult(name, shown, (time.perf_counter() - started) * 1000)
            done.append(result)
            if on_step is not None:
                on_step(result)
    return DemoResult(path, done)


def _database_path(folder: Path | None) -> Path:
    if folder is None:
        return Path(tempfile.mkdtemp(prefix="duru-demo-")) / DATABASE_NAME
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DATABASE_NAME
    if path.exists():
        raise UsageError(f"{path} already exists: give the demo an empty --dir")
    return path
