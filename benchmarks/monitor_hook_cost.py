"""What monitoring adds to one sync cycle of ``duru serve`` (a push and a pull), in-process.

Run: /work/main/.venv/bin/python benchmarks/monitor_hook_cost.py [--cycles 20000] [--repeats 9]

Times, in CPU seconds of this process, the metrics middleware around a do-nothing ASGI app
for ``/v1/push`` and ``/v1/changes`` plus ``count_push`` and ``count_pull``, against the same
app unwrapped; the best of ``--repeats`` runs of each, so other work on the machine can only
make a run slower, never faster. Prints microseconds per cycle, and a JSON line last
(``bench_metrics.py`` reads it). Measured in prometheus-client's multiprocess mode (what
``duru serve --workers 2`` runs) unless ``PROMETHEUS_MULTIPROC_DIR`` is set to "" by the
caller: the mode is chosen when prometheus-client is first imported, so this sets it first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from typing import Any

_folder = None
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    _folder = tempfile.mkdtemp(prefix="duru-hook-cost-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _folder

from duru.server.metrics import ServerMetrics  # noqa: E402 (after the mode is set)

PATHS = ["/v1/push", "/v1/changes", "/metrics"]
SCOPES = [
    {"type": "http", "path": "/v1/push", "method": "POST"},
    {"type": "http", "path": "/v1/changes", "method": "GET"},
]


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _send(message: dict[str, Any]) -> None:
    pass


async def _receive() -> dict[str, Any]:
    return {}


async def _cycles(app: Any, metrics: ServerMetrics | None, cycles: int) -> float:
    """CPU seconds per cycle: both requests through ``app``, and the counting when given."""
    push, pull = SCOPES
    began = time.process_time()
    for _ in range(cycles):
        await app(push, _receive, _send)
        if metrics is not None:
            metrics.count_push(("applied",))
        await app(pull, _receive, _send)
        if metrics is not None:
            metrics.count_pull(1)
    return (time.process_time() - began) / cycles


async def measure(cycles: int, repeats: int) -> dict[str, float]:
    metrics = ServerMetrics(lambda: None)
    if not metrics.enabled:
        raise SystemExit("DURU_SERVER_METRICS is off here: nothing to measure")
    wrapped = metrics.middleware(PATHS)(_app)
    bare = timed = float("inf")
    for _ in range(repeats):  # interleaved, so both see the same machine
        bare = min(bare, await _cycles(_app, None, cycles))
        timed = min(timed, await _cycles(wrapped, metrics, cycles))
    return {"bare_us": bare * 1e6, "on_us": timed * 1e6, "cost_us": (timed - bare) * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    try:
        found = asyncio.run(measure(args.cycles, args.repeats))
    finally:
        if _folder is not None:
            shutil.rmtree(_folder, ignore_errors=True)
    mode = "multiprocess" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "single process"
    print(
        f"monitoring per sync cycle ({mode}): {found['cost_us']:.2f} us"
        f" (wrapped {found['on_us']:.2f} us, bare {found['bare_us']:.2f} us)"
    )
    print(json.dumps(found))


if __name__ == "__main__":
    main()
