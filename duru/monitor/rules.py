"""Alert rules: a report's figures against thresholds from configuration.

Thresholds come from ``[tool.duru.monitor]`` in ``pyproject.toml`` or ``[monitor]`` in
``duru.toml`` (the first found in the current folder, or the file given), else defaults:

    [tool.duru.monitor]
    slow_query_mean_ms = 250     # pg_stat_statements keeps mean and max, not p95
    bloat_ratio = 0.5

pg_stat_statements keeps no percentiles, so the slow-query rule is on the mean; the pool
wait rule lives in ``/metrics`` (the pool is in the server process, not here).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from duru.errors import UsageError

Alert = dict[str, Any]


@dataclass(frozen=True)
class Thresholds:
    """When a figure becomes an alert. Sizes in bytes, times in seconds unless named."""

    slow_query_mean_ms: float = 100.0
    min_table_bytes: int = 1 << 20
    bloat_ratio: float = 0.5
    unused_index_bytes: int = 1 << 20
    long_transaction_seconds: float = 300.0
    blocked_seconds: float = 30.0
    open_conflict_days: float = 7.0
    tombstone_days: float = 91.0  # the purger removes them after 90 days by default
    migration_error_rate: float = 0.01
    outbox_rows: int = 1_000
    outbox_age_seconds: float = 24 * 3600.0
    free_ratio: float = 0.25
    wal_bytes: int = 64 << 20
    search_segments: int = 64

    @classmethod
    def from_mapping(cls, values: dict[str, Any], source: str = "the configuration") -> Thresholds:
        known = {f.name: f.type for f in fields(cls)}
        for key, value in values.items():
            if key not in known:
                raise UsageError(f"{source}: unknown monitor setting {key!r}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise UsageError(f"{source}: {key} must be a number of 0 or more, not {value!r}")
        return cls(**values)


def load_thresholds(path: Path | None = None, folder: Path | None = None) -> Thresholds:
    """Thresholds from ``path``, else from pyproject.toml or duru.toml in ``folder`` (cwd)."""
    candidates = [path] if path is not None else _candidates(folder or Path.cwd())
    for file in candidates:
        if not file.is_file():
            if path is not None:
                raise UsageError(f"no configuration file {file}")
            continue
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{file} is not valid TOML: {exc}") from None
        table = data.get("tool", {}).get("duru", {}).get("monitor") or data.get("monitor")
        if table is not None or path is not None:
            return Thresholds.from_mapping(dict(table or {}), str(file))
    return Thresholds()


def _candidates(folder: Path) -> list[Path]:
    return [folder / "pyproject.toml", folder / "duru.toml"]


def alerts(report: dict[str, Any], limits: Thresholds) -> list[Alert]:
    """Every alert the report's figures raise, server ones first."""
    out: list[Alert] = []
    if report.get("server") is not None:
        out += list(_server_alerts(report["server"], limits))
    if report.get("device") is not None:
        out += list(_device_alerts(report["device"], limits))
    return out


def _alert(rule: str, subject: str, value: Any, limit: Any, message: str) -> Alert:
    return {
        "rule": rule,
        "subject": subject,
        "value": value,
        "threshold": limit,
        "message": message,
    }


def _server_alerts(s: dict[str, Any], t: Thresholds) -> Iterator[Alert]:
    for q in s["queries"]["by_mean"]:
        if q["mean_ms"] > t.slow_query_mean_ms:
            yield _alert(
                "slow_query",
                q["query"],
                q["mean_ms"],
                t.slow_query_mean_ms,
                f"{q['calls']} calls, {q['mean_ms']} ms on average",
            )
    for b in s["bloat"]:
        if b["bytes"] >= t.min_table_bytes and b["ratio"] > t.bloat_ratio:
            yield _alert(
                "bloat",
                b["name"],
                b["ratio"],
                t.bloat_ratio,
                f"{b['ratio']:.0%} of {b['bytes']} bytes is dead or free ({b['source']})",
            )
    for i in s["unused_indexes"]:
        if i["bytes"] >= t.unused_index_bytes:
            yield _alert(
                "unused_index",
                i["name"],
                i["bytes"],
                t.unused_index_bytes,
                f"never scanned since the stats reset, on {i['table_name']}",
            )
    yield from _session_alerts(s, t)
    yield from _sync_alerts(s["sync"]["users"], t)
    yield from _migration_alerts(s["migrations"], t)


def _session_alerts(s: dict[str, Any], t: Thresholds) -> Iterator[Alert]:
    for x in s["long_transactions"]:
        if x["seconds"] > t.long_transaction_seconds:
            yield _alert(
                "long_transaction",
                f"pid {x['pid']}",
                x["seconds"],
                t.long_transaction_seconds,
                f"{x['state']} for {x['seconds']} s: {x['query']}",
            )
    for b in s["blocked"]:
        if b["seconds"] > t.blocked_seconds:
            yield _alert(
                "blocked",
                f"pid {b['pid']}",
                b["seconds"],
                t.blocked_seconds,
                f"waits on pid {b['blocked_by']}: {b['query']}",
            )


def _sync_alerts(users: list[dict[str, Any]], t: Thresholds) -> Iterator[Alert]:
    def days(stamp: str | None) -> float:
        if stamp is None:
            return 0.0
        return (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds() / 86400

    for u in users:
        who = u["name"] or u["user_id"]
        if days(u["oldest_open_conflict"]) > t.open_conflict_days:
            age = round(days(u["oldest_open_conflict"]), 1)
            yield _alert(
                "open_conflict", who, age, t.open_conflict_days, f"a conflict open {age} days"
            )
        if days(u["oldest_tombstone"]) > t.tombstone_days:
            age = round(days(u["oldest_tombstone"]), 1)
            yield _alert(
                "tombstones",
                who,
                age,
                t.tombstone_days,
                f"{u['tombstones']} tombstones, the oldest {age} days: is the purge running?",
            )


def _migration_alerts(runs: list[dict[str, Any]], t: Thresholds) -> Iterator[Alert]:
    for r in runs:
        if r["error_rate"] > t.migration_error_rate:
            yield _alert(
                "migration_errors",
                r["run_id"],
                r["error_rate"],
                t.migration_error_rate,
                f"{r['failed']} of {r['rows']} rows failed ({r['status']})",
            )


def _device_alerts(d: dict[str, Any], t: Thresholds) -> Iterator[Alert]:
    box = d["outbox"]
    path = d["path"]
    over: list[tuple[str, Callable[[], bool], Any, Any, str]] = [
        (
            "outbox_depth",
            lambda: box["depth"] > t.outbox_rows,
            box["depth"],
            t.outbox_rows,
            f"{box['depth']} changes wait to be pushed: sync is stuck or off",
        ),
        (
            "outbox_age",
            lambda: (box["oldest_age_seconds"] or 0) > t.outbox_age_seconds,
            box["oldest_age_seconds"],
            t.outbox_age_seconds,
            f"the oldest unpushed change is {box['oldest_age_seconds']} s old: sync is stuck",
        ),
        (
            "free_pages",
            lambda: d["pages"] > 256 and d["free_ratio"] > t.free_ratio,
            d["free_ratio"],
            t.free_ratio,
            f"{d['free_pages']} of {d['pages']} pages are free (VACUUM would return them)",
        ),
        (
            "wal_size",
            lambda: d["wal_bytes"] > t.wal_bytes,
            d["wal_bytes"],
            t.wal_bytes,
            "the WAL is not being checkpointed (a reader held open?)",
        ),
    ]
    for rule, hit, value, limit, message in over:
        if hit():
            yield _alert(rule, path, value, limit, message)
    for table, count in d["search_segments"].items():
        if count > t.search_segments:
            yield _alert("search_segments", table, count, t.search_segments, "search needs a merge")
    for p in d["unfinished_imports"]:
        if not p["running"]:
            yield _alert("unfinished_import", p["path"], p["kind"], None, "abandoned partial file")
    yield from _migration_alerts(d["unfinished_migrations"], t)
