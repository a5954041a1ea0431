"""`/dashboard` of `duru serve`: behind the operator token, and live in headless chromium."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from chromium import Chromium, find_chromium
from test_sync import Server, sync_all, two_devices

from duru.errors import UsageError
from duru.local import DeviceStore
from duru.server import ServerConfig, create_app
from duru.server.config import OPERATOR_TOKEN_VAR

TOKEN = "operator-token-ü-42"  # not ASCII: the comparison works on bytes


def basic(password: str, user: str = "operator") -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {pair}"}


class Unpooled:
    """The app without its lifespan (no pool): enough for routes that need no database."""

    def __init__(self, token: str = TOKEN) -> None:
        def no_pool() -> Any:
            raise AssertionError("no pool here")

        self.app = create_app(no_pool, ServerConfig(operator_token=token))

    def get(self, path: str, headers: dict[str, Any] | None = None) -> httpx.Response:
        async def get() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.get(path, headers=headers)

        return asyncio.run(get())


def test_the_dashboard_wants_the_operator_token() -> None:
    client = Unpooled()
    for path in ("/dashboard", "/dashboard/data"):
        for headers in ({}, basic("wrong"), {"authorization": "Bearer wrong"}, basic("")):
            answer = client.get(path, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert answer.headers["www-authenticate"].startswith('Basic realm="duru dashboard"')
        assert client.get(path, headers=basic(TOKEN)).status_code == 200
        bearer = {"authorization": f"Bearer {TOKEN}".encode()}  # UTF-8 bytes, as curl sends
        assert client.get(path, headers=bearer).status_code == 200
    page = client.get("/dashboard", headers=basic(TOKEN))
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert not re.search(r"""(?:src|href)=["'](?!data:)""", page.text)  # nothing fetched
    data = client.get("/dashboard/data", headers=basic(TOKEN)).json()
    assert data["enabled"] is True and data["pushed"] == {} and data["pulled"] == 0
    assert len(data["bounds"]) >= 10
    page_row = data["endpoints"]["/dashboard"]  # the requests above, timed by the middleware
    assert page_row["count"] >= 1 and len(page_row["buckets"]) == len(data["bounds"]) + 1


def test_without_an_operator_token_there_is_no_dashboard() -> None:
    client = Unpooled("")
    assert client.get("/dashboard", headers=basic("")).status_code == 404
    assert client.get("/dashboard/data").status_code == 404
    assert ServerConfig.from_env({}).operator_token == ""
    assert ServerConfig.from_env({OPERATOR_TOKEN_VAR: f" {TOKEN} "}).operator_token == TOKEN
    assert "operator_token" not in repr(ServerConfig(operator_token=TOKEN))


def test_a_short_operator_token_is_refused() -> None:
    """/dashboard counts no wrong tries: a token of a few characters would be guessed."""
    with pytest.raises(UsageError, match="at least 16 characters"):
        ServerConfig.from_env({OPERATOR_TOKEN_VAR: "hunter2"})
    assert ServerConfig(operator_token="x" * 16).operator_token == "x" * 16


def tiles(browser: Chromium) -> dict[str, str]:
    found: dict[str, str] = browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('[data-metric]')]"
        ".map((e) => [e.dataset.metric, e.textContent]))"
    )
    return found


def polls(browser: Chromium) -> int:
    return int(browser.evaluate("Number(document.body.dataset.polls || 0)"))


def endpoint_rows(browser: Chromium) -> dict[str, list[str]]:
    rows: list[list[str]] = browser.evaluate(
        "[...document.querySelectorAll('#endpoints tr')]"
        ".map((r) => [...r.cells].map((c) => c.textContent))"
    )
    return {r[0]: r[1:] for r in rows}


@pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed (see .ci/run)")
def test_the_dashboard_in_headless_chromium_shows_a_sync(tmp_path: Path, pg_url: str) -> None:
    # Two workers: the page must show what both saw, so it reads the summed registry.
    server = Server(pg_url, tmp_path / "home", "--workers", "2", env={OPERATOR_TOKEN_VAR: TOKEN})
    server.start()
    browser = None
    try:
        a, b = two_devices(tmp_path, server)
        with DeviceStore.open(a) as s:
            for i in range(5):
                s.notes.create(f"note {i}", body="x" * 100)
        host = server.url.removeprefix("http://")
        # Credentials in the URL: chromium answers the Basic challenge with them, as an
        # operator would in the prompt, and reuses them for the page's own requests.
        page = f"http://operator:{TOKEN}@{host}/dashboard?every=1"
        browser = Chromium(tmp_path / "chromium.log")
        browser.open(page)
        browser.wait(lambda: polls(browser) >= 1)
        before = tiles(browser)
        assert before["pushed-total"] == "0" and before["pulled-total"] == "0", before

        sync_all(a, b)  # a pushes five notes, b pulls them

        browser.open(page)
        browser.wait(lambda: polls(browser) >= 3)  # two samples at least: rates and charts
        after = tiles(browser)
        assert int(after["pushed-total"]) >= 5 and int(after["pulled-total"]) >= 5, after
        assert int(after["requests-total"].replace(",", "")) > int(before["requests-total"])
        rows = endpoint_rows(browser)
        assert int(rows["/v1/push"][0]) >= 1 and int(rows["/v1/changes"][0]) >= 2, rows

        # More traffic while the page watches: the rates and the charts move.
        for i in range(4):
            with DeviceStore.open(a) as s:
                s.notes.create(f"later {i}")
            sync_all(a, b)
        seen = polls(browser)
        browser.wait(lambda: polls(browser) >= seen + 2)
        live = tiles(browser)
        assert live["request-rate"] not in ("–", "0.00"), live
        assert live["p95"].endswith("ms") or live["p95"].endswith(" s"), live
        assert browser.evaluate("document.querySelectorAll('#latency path').length") >= 2
        assert browser.evaluate("document.getElementById('status').className") == ""

        # Every worker answers with the same sums (fresh connections reach both).
        sums = set()
        for _ in range(8):
            data = httpx.get(
                f"{server.url}/dashboard/data",
                headers={**basic(TOKEN), "connection": "close"},
                timeout=10,
            ).json()
            sums.add((data["endpoints"]["/v1/push"]["count"], data["pulled"]))
        assert len(sums) == 1, sums

        assert browser.errors() == []
        shot = browser.screenshot(tmp_path / "dashboard.png")
        print(f"dashboard screenshot: {shot}")
        assert shot.stat().st_size > 10_000
    finally:
        if browser is not None:
            browser.close()
        server.stop()
