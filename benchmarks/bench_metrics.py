"""Benchmark: what ``/metrics`` costs ``duru serve``, with it on and off in one run.

Run: /work/main/.venv/bin/python benchmarks/bench_metrics.py [--clients 40] [--seconds 15]
     [--rounds 3] [--workers 2]

The concurrent-clients load of ``bench_sync.py`` (each client: push one edited note, pull
its changes), against one database, with ``duru serve`` restarted between runs alternately
with ``DURU_SERVER_METRICS=off`` and on, ``--rounds`` times each, so drift of a shared
machine falls on both. Prints cycles/s per run, the median of each side and the cost of
metrics as a share of the throughput without them (target < 2%).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench_sync import Client, drive, duru_serve, fresh_database, make_clients

from duru.remote import EmbeddedPostgres
from duru.server.metrics import SWITCH_VAR


def run(
    db_url: str,
    home: Path,
    work: Path,
    clients: list[Client],
    on: bool,
    seconds: float,
    workers: int,
) -> float:  # type: ignore[type-arg]
    os.environ[SWITCH_VAR] = "on" if on else "off"
    with duru_serve(db_url, home, work / "serve.log", workers=workers) as served:
        asyncio.run(drive(served.url, clients, 2.0))  # warm up pools and caches
        began = time.perf_counter()
        stats = asyncio.run(drive(served.url, clients, seconds))
        took = time.perf_counter() - began
    errors = sum(stats.errors.values())
    rate = len(stats.cycles) / took
    print(f"  metrics {'on ' if on else 'off'}: {rate:,.0f} cycles/s, errors {errors}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="duru-bench-metrics-", dir="/tmp"))
    pg = EmbeddedPostgres(work / "pg", cleanup_mode="delete", durable=False)
    admin = pg.start()
    try:
        db_url, _ = fresh_database(admin)
        home = work / "home"
        with duru_serve(db_url, home, work / "serve.log") as served:
            clients = make_clients(served.url, home, work, args.clients)
        rates: dict[bool, list[float]] = {True: [], False: []}
        for i in range(args.rounds):
            for on in (False, True) if i % 2 == 0 else (True, False):
                rates[on].append(run(db_url, home, work, clients, on, args.seconds, args.workers))
        on, off = statistics.median(rates[True]), statistics.median(rates[False])
        print(
            f"median: off {off:,.0f} cycles/s, on {on:,.0f} cycles/s:"
            f" metrics cost {(off - on) / off:+.1%} of throughput (target < 2%)"
        )
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
