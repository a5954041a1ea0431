"""Chunk sizing, the latency guard and the error budget, on chosen timings."""

from __future__ import annotations

import pytest

from duru.migrate.chunking import ChunkSizer, ErrorBudget, LatencyGuard
from duru.migrate.config import RunConfig


def test_chunks_start_at_50_and_at_most_double_while_fast() -> None:
    sizer = ChunkSizer(RunConfig(target_chunk_seconds=1.0, max_chunk=1000))
    sizes = [sizer.size]
    for _ in range(8):
        sizer.observe(sizer.size, 0.001)  # far under the target
        sizes.append(sizer.size)
    assert sizes == [50, 100, 200, 400, 800, 1000, 1000, 1000, 1000]


def test_chunks_at_most_halve_under_load_and_settle_on_the_target() -> None:
    sizer = ChunkSizer(RunConfig(first_chunk=800, target_chunk_seconds=0.1, max_chunk=1000))
    sizer.observe(800, 8.0)  # 10 ms a row: the target wants 10 rows, halving gives 400
    assert sizer.size == 400
    for _ in range(5):
        sizer.observe(sizer.size, sizer.size * 0.001)  # 1 ms a row: 100 rows hit the target
    assert sizer.size == 100


def test_a_short_last_chunk_does_not_grow_the_size_and_the_floor_holds() -> None:
    sizer = ChunkSizer(RunConfig(target_chunk_seconds=1.0))
    sizer.observe(3, 0.0001)
    assert sizer.size == 50
    sizer.observe(50, 100.0)
    assert sizer.size == 50  # never below min_chunk


def test_latency_guard_needs_a_baseline_and_patience() -> None:
    guard = LatencyGuard(RunConfig(latency_factor=10, baseline_chunks=3, degraded_patience=2))
    assert not any(guard.observe(100, 0.01) for _ in range(3))  # baseline: 0.1 ms a row
    assert guard.baseline == pytest.approx(1e-4)
    assert not guard.observe(100, 0.5)  # 50x, first strike
    assert not guard.observe(100, 0.02)  # back to 2x: strikes reset
    assert not guard.observe(100, 0.5)
    assert guard.observe(100, 0.5)  # two in a row: trips
    assert "50.0x its baseline" in guard.describe()


def test_latency_guard_ignores_tiny_chunks() -> None:
    guard = LatencyGuard(RunConfig(baseline_chunks=1, degraded_patience=1))
    guard.observe(100, 0.01)
    assert not guard.observe(5, 10.0)


def test_error_budget_judges_the_ratio_once_the_sample_is_big_enough() -> None:
    budget = ErrorBudget(RunConfig())  # 0.1%, judged from 1000 rows
    assert not budget.exceeded(0, 10_000, 10_000)
    assert not budget.exceeded(1, 100, 1_000_000)  # 1% of a tiny sample: not judged yet
    assert budget.exceeded(2, 1_000, 1_000_000)  # 0.2% of 1000 rows
    assert not budget.exceeded(1, 1_000, 1_000_000)  # exactly 0.1% is allowed
    assert budget.exceeded(6, 100, 5_000)  # certain: more than 0.1% of all 5000 rows
    assert "6 of 100 rows failed (6.00%)" in budget.describe(6, 100)


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RunConfig(first_chunk=10)
    with pytest.raises(ValueError):
        RunConfig(latency_factor=1.0)
    with pytest.raises(ValueError, match="mmap_mb"):
        RunConfig(mmap_mb=-1)
    with pytest.raises(ValueError, match="cache_mb"):
        RunConfig(cache_mb=0)
    assert RunConfig.from_json(RunConfig(mmap_mb=0).to_json()).mmap_mb == 0
    assert RunConfig.from_json(RunConfig(max_chunk=77).to_json()).max_chunk == 77
