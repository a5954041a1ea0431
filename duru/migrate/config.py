"""The knobs of a run, with the defaults the Duru plan asked for."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class RunConfig:
    """How a run chunks its work, when it stops itself, and where backups go.

    Chunks start at ``first_chunk`` rows and grow or shrink so that one chunk
    takes about ``target_chunk_seconds``. The run stops itself when failed rows
    pass ``max_failed_ratio`` of the rows processed (judged once
    ``min_rows_for_ratio`` rows are in, or as soon as the failures are certain
    to pass it over the whole step), or when the time per row of
    ``degraded_patience`` chunks in a row passes ``latency_factor`` times its
    baseline (the median of the first ``baseline_chunks``). Then it rolls back
    to the start of the run (``on_failure``) or, for latency only, may just
    pause at its last rollback point (``on_degraded``).

    The run's connections keep a page cache of ``cache_mb`` and read the file
    memory-mapped, up to ``mmap_mb`` of it (0: with read calls): a rebuild's
    copy in key order, and the compare beside it, read the old table at random,
    and through read calls that cost a key-ordered copy about a fifth more and
    slowed the copy beside the compare by a third (bench_migrate, 1M rows).
    SQLite maps for reading only; writes still go through write calls.
    """

    first_chunk: int = 50
    min_chunk: int = 50
    max_chunk: int = 50_000
    target_chunk_seconds: float = 0.25
    max_failed_ratio: float = 0.001
    min_rows_for_ratio: int = 1_000
    latency_factor: float = 10.0
    baseline_chunks: int = 5
    degraded_patience: int = 3
    on_degraded: Literal["rollback", "pause"] = "rollback"
    sample_rows: int = 200
    min_free_factor: float = 2.0
    backup_dir: Path | None = None
    final_compare: bool = True
    cache_mb: int = 64
    mmap_mb: int = 1024

    def __post_init__(self) -> None:
        if self.cache_mb < 1 or self.mmap_mb < 0:
            raise ValueError("need cache_mb >= 1 and mmap_mb >= 0")
        if not 0 < self.min_chunk <= self.first_chunk <= self.max_chunk:
            raise ValueError("need 0 < min_chunk <= first_chunk <= max_chunk")
        if self.target_chunk_seconds <= 0 or self.latency_factor <= 1:
            raise ValueError("target_chunk_seconds must be > 0 and latency_factor > 1")
        if not 0 <= self.max_failed_ratio < 1:
            raise ValueError("max_failed_ratio must be in [0, 1)")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["backup_dir"] = None if self.backup_dir is None else str(self.backup_dir)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if known.get("backup_dir") is not None:
            known["backup_dir"] = Path(known["backup_dir"])
        return cls(**known)
