"""The chunk loop of every chunked step, on both databases: sizes, progress, automatic stops.

:class:`ChunkLoop` drives a chunked step: it asks the dialect's runner to
commit one chunk of the size it chose, then reports progress and judges the
chunk. Chunks start small (``RunConfig.first_chunk``) and are resized after
every chunk toward a target duration: at most doubled when fast, at most
halved when slow, so a database under load gets shorter transactions. The
latency guard compares the time per row of each chunk with a baseline (the
median of the first chunks); the error budget compares failed rows with rows
processed. Either one stops the run with :class:`~duru.migrate.steps.StopRun`.
A stream (a step that drives its own loop) calls :meth:`ChunkLoop.after` at
each checkpoint, so it is judged the same way.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from duru.migrate.config import RunConfig
from duru.migrate.progress import ProgressEvent, rate_and_eta
from duru.migrate.steps import Chunk, ChunkState, Position, StopRun, reached


@dataclass
class ChunkSizer:
    """The size of the next chunk, adapted to how long the last one took."""

    config: RunConfig
    size: int = 0

    def __post_init__(self) -> None:
        self.size = self.config.first_chunk

    def observe(self, rows: int, seconds: float) -> int:
        """Record a chunk of ``rows`` that took ``seconds``; returns the next size."""
        if rows <= 0:
            return self.size
        per_row = max(seconds, 1e-6) / rows
        ideal = self.config.target_chunk_seconds / per_row
        # A short last chunk says little about speed: never grow from it.
        upper = self.size * 2 if rows >= self.size else self.size
        bounded = min(max(ideal, self.size / 2), upper)
        self.size = int(min(max(bounded, self.config.min_chunk), self.config.max_chunk))
        return self.size


@dataclass
class LatencyGuard:
    """Trips when the time per row stays above ``factor`` times its baseline.

    The baseline is the median time per row of the first ``baseline_chunks``
    chunks; ``patience`` chunks in a row must be slow before it trips, so one
    hiccup (a checkpoint, a GC pause) does not stop a run.
    """

    config: RunConfig
    samples: list[float] = field(default_factory=list)
    strikes: int = 0
    last_ratio: float = 0.0

    @property
    def baseline(self) -> float | None:
        if len(self.samples) < self.config.baseline_chunks:
            return None
        return statistics.median(self.samples[: self.config.baseline_chunks])

    def observe(self, rows: int, seconds: float) -> bool:
        """Record a chunk; True when latency has degraded past the limit."""
        # Tiny chunks (a step's tail) are all fixed cost: they say nothing about load.
        if rows < self.config.min_chunk // 2 or rows <= 0:
            return False
        per_row = max(seconds, 1e-9) / rows
        base = self.baseline
        if base is None:
            self.samples.append(per_row)
            return False
        self.last_ratio = per_row / base
        self.strikes = self.strikes + 1 if self.last_ratio > self.config.latency_factor else 0
        return self.strikes >= self.config.degraded_patience

    def describe(self) -> str:
        base = self.baseline or 0.0
        return (
            f"chunk latency {self.last_ratio:.1f}x its baseline ({base * 1e6:.0f} us/row) for"
            f" {self.strikes} chunks in a row (limit {self.config.latency_factor:g}x)"
        )


@dataclass(frozen=True)
class ErrorBudget:
    """Failed rows allowed: ``max_failed_ratio`` of the rows processed."""

    config: RunConfig

    def exceeded(self, failed: int, processed: int, total: int) -> bool:
        """True once failures pass the ratio (judged when the sample is big enough)."""
        if failed == 0:
            return False
        limit = self.config.max_failed_ratio
        certain = failed > limit * max(total, processed)
        judged = processed >= self.config.min_rows_for_ratio and failed > limit * processed
        return certain or judged

    def describe(self, failed: int, processed: int) -> str:
        ratio = failed / processed if processed else 1.0
        return (
            f"{failed} of {processed} rows failed ({ratio:.2%}), more than the"
            f" {self.config.max_failed_ratio:.2%} allowed"
        )


@dataclass(frozen=True)
class StepLabel:
    """What progress events say about the step: its key, title and phase."""

    key: str
    title: str
    phase: str


CommitChunk = Callable[[ChunkState, int], tuple[Chunk | None, ChunkState]]
"""Commit one chunk of at most ``limit`` rows after the state's high-water mark.

Returns the chunk and the state after it, or (None, final state) once the
step is done; each call is one transaction of the dialect's runner.
"""


@dataclass
class ChunkLoop:
    """Sizes a step's chunks, reports its progress, and stops the run when a guard trips.

    ``limits`` off: no automatic stops (a replay re-does rows the original run
    already judged). ``emit`` gets one ``advance`` event per chunk.
    """

    config: RunConfig
    step: StepLabel
    total: int | None
    emit: Callable[[ProgressEvent], None]
    limits: bool = True
    sizer: ChunkSizer = field(init=False)
    guard: LatencyGuard = field(init=False)
    budget: ErrorBudget = field(init=False)
    _rows_here: int = field(init=False, default=0)
    _t0: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.sizer = ChunkSizer(self.config)
        self.guard = LatencyGuard(self.config)
        self.budget = ErrorBudget(self.config)
        self._t0 = time.perf_counter()

    @property
    def size(self) -> int:
        """Rows the next chunk may take."""
        return self.sizer.size

    def drive(
        self, state: ChunkState, commit: CommitChunk, until: Position | None = None
    ) -> tuple[bool, ChunkState]:
        """Commit chunks until the step is done or reaches ``until``.

        Returns (True when it stopped at ``until``, the state). Raises StopRun
        when a guard trips (after that chunk committed), and whatever
        ``commit`` raises.
        """
        while True:
            if until is not None and state.hwm is not None and reached(state.hwm, until):
                return True, state
            t0 = time.perf_counter()
            chunk, state = commit(state, self.size)
            if chunk is None:
                return False, state
            self.after(chunk.rows, time.perf_counter() - t0, state)

    def after(self, rows: int, seconds: float, state: ChunkState, *, judge: bool = True) -> None:
        """Judge a committed chunk of ``rows`` that took ``seconds``; ``state`` includes it.

        Resizes the next chunk, emits progress, and (``judge``) raises StopRun
        when failed rows pass the budget or latency degraded.
        """
        self.sizer.observe(rows, seconds)
        self._rows_here += rows
        here = time.perf_counter() - self._t0
        rate, eta = rate_and_eta(self._rows_here, here, state.rows, self.total)
        s = self.step
        self.emit(
            ProgressEvent(
                "advance", s.key, s.title, s.phase, state.rows, self.total, rate, eta, self.size
            )
        )
        if not (self.limits and judge):
            return
        if self.budget.exceeded(state.failed, state.rows, self.total or state.rows):
            raise StopRun("rollback", self.budget.describe(state.failed, state.rows), s.key)
        if self.guard.observe(rows, seconds):
            raise StopRun(self.config.on_degraded, self.guard.describe(), s.key)
