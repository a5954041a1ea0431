"""Chunk sizing and the two automatic stops: error budget and latency.

Chunks start small (50 rows) and are resized after every chunk toward a
target duration: at most doubled when fast, at most halved when slow, so a
device under load gets shorter transactions. The latency guard compares the
time per row of each chunk with a baseline (the median of the first chunks);
the error budget compares failed rows with rows processed.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from duru.migrate.config import RunConfig


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
