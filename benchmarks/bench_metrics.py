"""Benchmark: what monitoring costs ``duru serve``, with it on and off in one run.

Run: /work/main/.venv/bin/python benchmarks/bench_metrics.py [--clients 40] [--seconds 3]
     [--rounds 30] [--workers 2] [--poll 5]

The concurrent-clients load of ``bench_sync.py`` (each client: push one edited note, pull
its changes) against two ``duru serve`` over one database, started side by side: one with
``DURU_SERVER_METRICS=off``, one with metrics on and the dashboard open, where ``/metrics``
and ``/dashboard/data`` are also read every ``--poll`` seconds while it is loaded (a
scraper and an open dashboard). Only one server is loaded at a time, in many short rounds
of one leg each, off-on then on-off, so a shared machine's drift falls on both alike.
Prints each round's on/off ratio of cycles/s, then their median with its spread
(quartiles, extremes): the cost of monitoring is 1 - median (target < 2%). Also the CPU
time of the server processes per cycle, on/off: steadier when other work shares the
machine (and when the load generator, not the server, is what limits throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
from bench_sync import Client, LoadStats, Serve, drive, duru_serve, fresh_database, make_clients

from duru.remote import EmbeddedPostgres
from duru.server.config import OPERATOR_TOKEN_VAR
from duru.server.metrics import SWITCH_VAR

TOKEN = "bench-operator"


@contextmanager
def monitoring(on: bool) -> Iterator[None]:
    """The environment of a ``duru serve`` started inside: metrics and dashboard on or off."""
    saved = {k: os.environ.get(k) for k in (SWITCH_VAR, OPERATOR_TOKEN_VAR)}
    os.environ[SWITCH_VAR] = "on" if on else "off"
    os.environ[OPERATOR_TOKEN_VAR] = TOKEN if on else ""
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Watcher:
    """Reads ``/metrics`` and ``/dashboard/data`` every ``every`` seconds of load.

    Its clock runs only while its server is loaded, so legs shorter than ``every`` still
    see one read per ``every`` seconds on average, not one per leg.
    """

    def __init__(self, every: float) -> None:
        self.every, self.clock, self.due, self.reads = every, 0.0, every, 0

    async def watch(self, url: str, seconds: float) -> None:
        began = time.monotonic()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            while self.every > 0 and self.due - self.clock < seconds:
                await asyncio.sleep(max(0.0, began + self.due - self.clock - time.monotonic()))
                for path in ("/metrics", "/dashboard/data"):
                    (await http.get(path, headers=auth)).raise_for_status()
                    self.reads += 1
                self.due += self.every
        self.clock += seconds


def server_cpu(served: Serve) -> float:
    """CPU seconds used so far by ``duru serve`` and its workers (not PostgreSQL)."""
    root = psutil.Process(served.process.pid)
    total = 0.0
    for p in (root, *root.children(recursive=True)):
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


async def drive_and_watch(
    url: str, clients: list[Client], seconds: float, watcher: Watcher | None
) -> LoadStats:
    if watcher is None:
        return await drive(url, clients, seconds)
    stats, _ = await asyncio.gather(drive(url, clients, seconds), watcher.watch(url, seconds))
    return stats


def leg(
    served: Serve, clients: list[Client], seconds: float, watcher: Watcher | None
) -> tuple[float, float]:
    """Cycles/s of the load for ``seconds`` (read by ``watcher`` if any), server CPU ms/cycle."""
    cpu, began = server_cpu(served), time.perf_counter()
    stats = asyncio.run(drive_and_watch(served.url, clients, seconds, watcher))
    took, cpu = time.perf_counter() - began, server_cpu(served) - cpu
    if stats.errors:
        raise SystemExit(f"errors under load: {dict(stats.errors)}")
    return len(stats.cycles) / took, 1000 * cpu / max(1, len(stats.cycles))


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=3.0, help="one leg (one side)")
    parser.add_argument("--rounds", type=int, default=30, help="off+on pairs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between reads (0: none)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="duru-bench-metrics-", dir="/tmp"))
    pg = EmbeddedPostgres(work / "pg", cleanup_mode="delete", durable=False)
    admin = pg.start()
    try:
        db_url, _ = fresh_database(admin)
        home = work / "home"
        with ExitStack() as stack:
            served: dict[bool, Serve] = {}
            for on in (False, True):
                with monitoring(on):  # read once, when the server starts
                    log = work / f"serve-{'on' if on else 'off'}.log"
                    served[on] = stack.enter_context(duru_serve(db_url, home, log, args.workers))
            clients = make_clients(served[False].url, home, work, args.clients)
            watcher = Watcher(args.poll)
            for on, s in served.items():  # warm up pools and caches
                leg(s, clients, 2.0, Watcher(1.0) if on else None)
            rates: dict[bool, list[float]] = {True: [], False: []}
            cpu: dict[bool, list[float]] = {True: [], False: []}
            for i in range(args.rounds):
                for on in (False, True) if i % 2 == 0 else (True, False):
                    rate, ms = leg(served[on], clients, args.seconds, watcher if on else None)
                    rates[on].append(rate)
                    cpu[on].append(ms)
                print(
                    f"  round {i + 1:3}: off {rates[False][-1]:5,.0f}  on {rates[True][-1]:5,.0f}"
                    f" cycles/s ({rates[True][-1] / rates[False][-1]:.3f});"
                    f" server CPU off {cpu[False][-1]:.2f}  on {cpu[True][-1]:.2f} ms/cycle"
                    f" ({cpu[True][-1] / cpu[False][-1]:.3f})",
                    flush=True,
                )
        print(f"monitoring reads while loaded: {watcher.reads} (every {args.poll:g} s of load)")
        report(rates, cpu)
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(rates: dict[bool, list[float]], cpu: dict[bool, list[float]]) -> None:
    throughput = [on / off for on, off in zip(rates[True], rates[False], strict=True)]
    q1, median, q3 = quartiles(throughput)
    off, on = statistics.median(rates[False]), statistics.median(rates[True])
    print(f"{len(throughput)} rounds; cycles/s median: off {off:,.0f}, on {on:,.0f}")
    print(
        f"throughput on/off per round: median {median:.4f}, quartiles {q1:.4f} .. {q3:.4f},"
        f" extremes {min(throughput):.4f} .. {max(throughput):.4f}"
    )
    print(
        f"cost of monitoring: {1 - median:+.2%} of throughput (quartiles {1 - q3:+.2%} .."
        f" {1 - q1:+.2%}); target < 2%: {'met' if 1 - median < 0.02 else 'NOT met'}"
    )
    # CPU per cycle is steadier than throughput when other work shares the machine.
    work = [on / off for on, off in zip(cpu[True], cpu[False], strict=True)]
    q1, median, q3 = quartiles(work)
    print(
        f"server CPU per cycle on/off: median {median:.4f}, quartiles {q1:.4f} .. {q3:.4f}"
        f" (off {statistics.median(cpu[False]):.2f} ms, on {statistics.median(cpu[True]):.2f} ms):"
        f" monitoring costs {median - 1:+.2%} of the server's CPU"
    )


if __name__ == "__main__":
    main()
