"""Progress events for whoever draws a progress bar (the CLI uses Rich; the engine does not).

The runner calls ``progress(event)`` when a step starts, after every chunk,
and when a step ends. An event carries the rows done and (for chunked steps)
the total, the rate and an estimate of the time left, so a caller can show
them without keeping its own clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

EventKind = Literal["start", "advance", "end"]


@dataclass(frozen=True)
class ProgressEvent:
    """Where a step is: rows done of ``total`` (None when it has no row count)."""

    kind: EventKind
    step: str
    title: str
    phase: str
    done: int = 0
    total: int | None = None
    rows_per_second: float | None = None
    eta_seconds: float | None = None
    chunk_size: int | None = None


Progress = Callable[[ProgressEvent], None]


def rate_and_eta(
    done_here: int, seconds: float, done: int, total: int | None
) -> tuple[float | None, float | None]:
    """Rows per second over this process's work, and seconds left at that rate."""
    if done_here <= 0 or seconds <= 0:
        return None, None
    rate = done_here / seconds
    if total is None:
        return rate, None
    return rate, max(total - done, 0) / rate
