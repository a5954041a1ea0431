"""``/dashboard`` of ``duru serve``: live request latency and throughput for the operator.

    GET /dashboard        the page (``dashboard.html``: inline SVG charts, plain JavaScript);
                          ``?every=N`` polls every N seconds (1 to 60, default 5)
    GET /dashboard/data   the metrics registry now, as JSON (``snapshot``)

Both want the operator token (``DURU_SERVER_OPERATOR_TOKEN``) as the password of HTTP Basic
auth (a browser asks for it; any user name) or as a Bearer token; without that setting
neither route exists. The server keeps no history: with several workers no process sees
every request, so the page polls the data, which sums every worker as ``/metrics`` does,
and keeps the last hour of samples itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from functools import cache
from importlib.resources import files
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .metrics import ServerMetrics

# Any name: the token is the password. A browser shows the realm in its prompt.
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="duru dashboard", charset="UTF-8"'}
_PRIVATE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_POOL = {
    "duru_pool_connections": "connections",
    "duru_pool_idle": "idle",
    "duru_pool_waiting": "waiting",
    "duru_pool_max": "max",
    "duru_pool_timeouts_total": "timeouts",
}


def dashboard_routes(token: str, metrics: ServerMetrics) -> list[Route]:
    """The two routes, both behind ``token``."""

    async def page(request: Request) -> Response:
        if not authorized(request, token):
            return _unauthorized()
        text, policy = _page()
        return HTMLResponse(text, headers={**_PRIVATE, "Content-Security-Policy": policy})

    async def data(request: Request) -> Response:
        if not authorized(request, token):
            return _unauthorized()
        return JSONResponse(snapshot(metrics.registry, metrics.enabled), headers=_PRIVATE)

    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/data", data, methods=["GET"]),
    ]


def authorized(request: Request, token: str) -> bool:
    """Whether the request carries ``token`` (Basic password or Bearer), in constant time."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = value.strip().encode("latin-1")  # Starlette decodes headers as latin-1: the bytes sent
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given, validate=True).partition(b":")[2]
        except binascii.Error:
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given, token.encode())  # only the length can leak


def snapshot(registry: CollectorRegistry, enabled: bool = True) -> dict[str, Any]:
    """The counters now: latency buckets per endpoint, rows pushed and pulled, the pool.

    Every figure counts since the server started (the page takes differences); the pool is
    that of the worker that answered (``pid``). ``buckets`` are cumulative, one per bound of
    ``bounds`` and a last one for +Inf.
    """
    endpoints: dict[str, dict[str, Any]] = {}
    pushed: dict[str, float] = {}
    out: dict[str, Any] = {"pulled": 0.0, "conflicts": 0.0, "pool": {}}
    for family in registry.collect():
        for s in family.samples:
            labels = s.labels
            if s.name.startswith("duru_request_seconds_"):
                _add_latency(endpoints, s.name, labels, s.value)
            elif s.name == "duru_pushed_rows_total":
                pushed[labels["outcome"]] = pushed.get(labels["outcome"], 0.0) + s.value
            elif s.name == "duru_pulled_rows_total":
                out["pulled"] += s.value
            elif s.name == "duru_conflicts_total":
                out["conflicts"] += s.value
            elif s.name in _POOL:
                out["pool"][_POOL[s.name]] = s.value
                out["pool"]["pid"] = int(labels.get("pid", "0"))
    bounds = sorted({le for e in endpoints.values() for le in e["buckets"]})
    for e in endpoints.values():
        e["buckets"] = [e["buckets"].get(le, 0.0) for le in bounds]
    return {
        "time": time.time(),
        "enabled": enabled,
        "bounds": bounds[:-1],  # the last is +Inf, which JSON cannot carry
        "endpoints": endpoints,
        "pushed": pushed,
        **out,
    }


def _add_latency(
    endpoints: dict[str, dict[str, Any]], name: str, labels: dict[str, str], value: float
) -> None:
    """Sum one histogram sample into its endpoint, over methods and statuses."""
    e = endpoints.setdefault(
        labels["endpoint"], {"count": 0.0, "sum": 0.0, "errors": 0.0, "buckets": {}}
    )
    if name.endswith("_bucket"):
        le = float(labels["le"])
        e["buckets"][le] = e["buckets"].get(le, 0.0) + value
    elif name.endswith("_count"):
        e["count"] += value
        if labels.get("status", "").startswith("5"):
            e["errors"] += value
    elif name.endswith("_sum"):
        e["sum"] += value


def _unauthorized() -> Response:
    return JSONResponse(
        {"error": {"code": "unauthorized", "message": "the dashboard wants the operator token"}},
        status_code=401,
        headers={**_CHALLENGE, **_PRIVATE},
    )


@cache
def _page() -> tuple[str, str]:
    """The page and its Content-Security-Policy: its own inline script and style, nothing else."""
    text = files("duru.server").joinpath("dashboard.html").read_text(encoding="utf-8")
    hashes = {
        tag: " ".join(
            f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
            for body in re.findall(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL)
        )
        for tag in ("script", "style")
    }
    policy = (
        f"default-src 'none'; script-src {hashes['script']}; style-src {hashes['style']};"
        " connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none';"
        " frame-ancestors 'none'"
    )
    return text, policy
