"""`/metrics` on a real `duru serve`: latency per endpoint, rows pushed and pulled, pool."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_sync import Server, sync_all, two_devices

from duru import sync
from duru.local import DeviceStore
from duru.server.metrics import SWITCH_VAR, ServerMetrics


def scrape(url: str, raw: bool = False) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` by name and labels (the pid label left out unless raw)."""
    answer = httpx.get(f"{url}/metrics", headers={"connection": "close"}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(answer.text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if raw or k != "pid"))
            out[(s.name, labels)] = s.value
    return out


def requests(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], path: str) -> float:
    """Requests answered on ``path``, every status and method."""
    return sum(
        v
        for (name, labels), v in samples.items()
        if name == "duru_request_seconds_count" and ("endpoint", path) in labels
    )


def test_metrics_count_requests_rows_conflicts_and_show_the_pool(
    tmp_path: Path, pg_url: str
) -> None:
    server = Server(pg_url, tmp_path / "home")
    server.start()
    try:
        a, b = two_devices(tmp_path, server)
        with DeviceStore.open(a) as s:
            note = s.notes.create("original", body="one\n")
            for i in range(4):
                s.notes.create(f"note {i}")
        sync_all(a, b)
        with DeviceStore.open(a) as s:
            s.notes.edit(note["id"], title="from a")
        with DeviceStore.open(b) as s:
            s.notes.edit(note["id"], title="from b")
        sync.sync(a)
        assert sync.sync(b).conflicts == 1
        assert httpx.get(f"{server.url}/no/such/path", timeout=10).status_code == 404
        m = scrape(server.url)
    finally:
        server.stop()
    assert requests(m, "/v1/push") >= 2 and requests(m, "/v1/changes") >= 2
    assert (
        m[
            (
                "duru_request_seconds_count",
                (("endpoint", "other"), ("method", "GET"), ("status", "404")),
            )
        ]
        == 1
    )
    assert m[("duru_pushed_rows_total", (("outcome", "applied"),))] >= 6
    assert m[("duru_pushed_rows_total", (("outcome", "conflict"),))] == 1
    assert m[("duru_conflicts_total", ())] == 1
    assert m[("duru_pulled_rows_total", ())] >= 6  # b pulled a's five notes and the edit
    assert m[("duru_pool_connections", ())] >= 1
    assert m[("duru_pool_requests_total", ())] >= 1
    assert ("duru_pool_waiting", ()) in m


def test_with_two_workers_each_answer_sums_both(tmp_path: Path, pg_url: str) -> None:
    server = Server(pg_url, tmp_path / "home", "--workers", "2")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(40):  # new connections, so both workers take some
                assert client.get("/v1/health", headers={"connection": "close"}).status_code == 200
        answers = [scrape(server.url, raw=True) for _ in range(12)]
    finally:
        server.stop()
    # Requests the announcer made count too; every scrape must see the same total.
    counts = {requests(a, "/v1/health") for a in answers}
    assert len(counts) == 1 and counts.pop() >= 40
    pids = {dict(labels)["pid"] for a in answers for (n, labels) in a if n == "duru_pool_idle"}
    assert len(pids) == 2  # both workers answered a scrape, each with its own pool


def test_metrics_off_leaves_the_app_unwrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH_VAR, "off")
    metrics = ServerMetrics(lambda: None)

    async def app(scope: object, receive: object, send: object) -> None:
        pass

    assert metrics.middleware(["/v1/push"])(app) is app
    metrics.count_push(["applied", "conflict"])
    metrics.count_pull(3)
    assert metrics.pulled._value.get() == 0  # noqa: SLF001


def test_unknown_paths_and_methods_share_one_series_each(monkeypatch: pytest.MonkeyPatch) -> None:
    # A method is any token a client sends: as its own label value, each would be kept forever.
    monkeypatch.delenv(SWITCH_VAR, raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = ServerMetrics(lambda: None)

    async def app(scope: dict[str, str], receive: object, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: object) -> None:
        pass

    async def receive() -> None:
        pass

    timed = metrics.middleware(["/v1/push"])(app)
    asked = [("POST", "/v1/push")] * 3 + [("BREW", "/v1/push"), ("GET", "/nope"), ("X1", "/y")]
    for method, path in asked:
        asyncio.run(timed({"type": "http", "method": method, "path": path}, receive, send))
    counts = {
        (s.labels["endpoint"], s.labels["method"]): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "duru_request_seconds_count"
    }
    assert counts == {
        ("/v1/push", "POST"): 3,
        ("/v1/push", "other"): 1,
        ("other", "GET"): 1,
        ("other", "other"): 1,
    }
