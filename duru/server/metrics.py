"""Prometheus metrics of ``duru serve``: request latency, rows pushed and pulled, conflicts, pool.

One ``ServerMetrics`` per app, with its own registry (so several apps in one process, as in
tests, do not collide). With several workers (``duru serve --workers N``) each worker is a
process: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``duru serve`` sets it for N > 1) the
counters and histograms of every worker are summed in each answer, while the pool figures
are those of the worker that answered (label ``pid``): each worker has its own pool.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from duru.remote import Pool

MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"
SWITCH_VAR = "DURU_SERVER_METRICS"  # "off": no timing, no counting (to measure their cost)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Sync requests range from a millisecond (a pull with nothing new) to seconds (a big push).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# psycopg_pool's get_stats() key, our metric name, what it counts.
_POOL_GAUGES = (
    ("pool_size", "connections", "connections open"),
    ("pool_available", "idle", "connections idle in the pool"),
    ("requests_waiting", "waiting", "requests waiting for a connection now"),
    ("pool_max", "max", "the most connections the pool may open"),
)
_POOL_COUNTERS = (
    ("requests_num", "requests", "connections asked for"),
    ("requests_queued", "queued", "requests that had to wait for a connection"),
    ("requests_wait_ms", "wait_ms", "milliseconds requests waited for a connection"),
    ("requests_errors", "timeouts", "requests that got no connection in time"),
    ("connections_lost", "connections_lost", "connections found broken"),
)

# Any other method a client sends is counted as "other": each label value is a series kept forever.
_METHODS = frozenset(("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"))

ASGIApp = Callable[..., Any]


class ServerMetrics:
    """The app's metrics; ``endpoint`` answers ``GET /metrics``."""

    def __init__(self, pool: Callable[[], Pool | None]) -> None:
        self.enabled = os.environ.get(SWITCH_VAR, "on").strip().lower() != "off"
        self.multiprocess = bool(os.environ.get(MULTIPROC_VAR))
        self.registry = CollectorRegistry()
        # In multiprocess mode the values live in files summed at scrape time, not here.
        own = None if self.multiprocess else self.registry
        if self.multiprocess:
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        self.registry.register(_PoolCollector(pool))
        self.latency = Histogram(
            "duru_request_seconds",
            "Time to answer a request, per endpoint",
            ("endpoint", "method", "status"),
            buckets=_BUCKETS,
            registry=own,
        )
        self.pushed = Counter(
            "duru_pushed_rows", "Rows pushed, per outcome", ("outcome",), registry=own
        )
        self.pulled = Counter("duru_pulled_rows", "Changes sent to devices", registry=own)
        self.conflicts = Counter(
            "duru_conflicts", "Pushed writes kept aside as conflict revisions", registry=own
        )
        self.snapshot_bytes = Counter(
            "duru_snapshot_bytes",
            "Bytes of encrypted snapshots received (up) and sent (down)",
            ("direction",),
            registry=own,
        )
        # Each series once: .labels() validates and locks, a third of the cost per request.
        self._timers: dict[tuple[str, str, int], Histogram] = {}
        self._outcomes: dict[str, Counter] = {}
        self._paths: frozenset[str] = frozenset()

    def count_push(self, outcomes: Iterable[str]) -> None:
        """Count one push's results by outcome (``conflict`` also counts a conflict)."""
        if not self.enabled:
            return
        for outcome in outcomes:
            counter = self._outcomes.get(outcome)
            if counter is None:
                counter = self._outcomes[outcome] = self.pushed.labels(outcome)
            counter.inc()
            if outcome == "conflict":
                self.conflicts.inc()

    def count_pull(self, changes: int) -> None:
        if self.enabled:
            self.pulled.inc(changes)

    def count_snapshot(self, direction: str, size: int) -> None:
        """Count ``size`` bytes of a snapshot, ``up`` (received) or ``down`` (sent)."""
        if self.enabled and size:
            self.snapshot_bytes.labels(direction).inc(size)

    async def endpoint(self, request: Request) -> Response:
        if not self.enabled:
            return Response(f"metrics are off ({SWITCH_VAR}=off)\n", status_code=404)
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE)

    def middleware(self, paths: Sequence[str]) -> Callable[[ASGIApp], ASGIApp]:
        """ASGI middleware timing each request under its route (``other`` for unknown paths)."""
        self._paths = frozenset(paths)

        def wrap(app: ASGIApp) -> ASGIApp:
            if not self.enabled:
                return app

            async def timed(scope: dict[str, Any], receive: Any, send: Any) -> None:
                if scope["type"] != "http":
                    await app(scope, receive, send)
                    return
                status = 500  # what the client gets when the app fails before answering

                async def record_status(message: dict[str, Any]) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = message["status"]
                    await send(message)

                start = time.perf_counter()
                try:
                    await app(scope, receive, record_status)
                finally:
                    took = time.perf_counter() - start
                    self._timer(scope["path"], scope["method"], status).observe(took)

            return timed

        return wrap

    def _timer(self, path: str, method: str, status: int) -> Histogram:
        """The latency series of a request (``other``: a path or a method we do not serve)."""
        key = (
            path if path in self._paths else "other",
            method if method in _METHODS else "other",
            status,
        )
        series = self._timers.get(key)
        if series is None:
            series = self._timers[key] = self.latency.labels(key[0], key[1], str(status))
        return series


class _PoolCollector(Collector):
    """psycopg_pool's own figures, read when scraped (``get_stats`` does not reset them)."""

    def __init__(self, pool: Callable[[], Pool | None]) -> None:
        self.pool = pool

    def collect(self) -> Iterator[Metric]:
        pool = self.pool()
        if pool is None:
            return
        stats = pool.get_stats()
        pid = str(os.getpid())
        for key, name, text in _POOL_GAUGES:
            gauge = GaugeMetricFamily(f"duru_pool_{name}", f"Pool: {text}", labels=("pid",))
            gauge.add_metric((pid,), stats.get(key, 0))
            yield gauge
        for key, name, text in _POOL_COUNTERS:
            counter = CounterMetricFamily(f"duru_pool_{name}", f"Pool: {text}", labels=("pid",))
            counter.add_metric((pid,), stats.get(key, 0))
            yield counter


def share_between_workers(workers: int) -> Callable[[], None]:
    """With several workers, sum their metrics through a fresh folder; the cleanup to call.

    Must run before the workers start: prometheus-client picks its storage at import. A
    folder the operator set in ``PROMETHEUS_MULTIPROC_DIR`` is used as it is and kept.
    """
    if workers < 2 or os.environ.get(MULTIPROC_VAR):
        return lambda: None
    folder = tempfile.mkdtemp(prefix="duru-metrics-")
    os.environ[MULTIPROC_VAR] = folder

    def cleanup() -> None:
        os.environ.pop(MULTIPROC_VAR, None)
        shutil.rmtree(folder, ignore_errors=True)

    return cleanup
