"""Benchmark: what monitoring costs ``duru serve``, with it on and off in one run.

Run: /work/main/.venv/bin/python benchmarks/bench_metrics.py [--clients 40] [--seconds 3]
     [--pairs 10] [--rounds 3] [--design together|alternate] [--workers 2] [--poll 5]
     [--control]
     (servers run the duru importable here: PYTHONPATH=<a `git archive HEAD` copy> keeps a
     long run safe from a shared checkout changing under it)

The concurrent-clients load of ``bench_sync.py`` (each client: push one edited note, pull
its changes) against two ``duru serve`` over one database, started side by side: one with
``DURU_SERVER_METRICS=off``, one with metrics on and the dashboard open, where ``/metrics``
and ``/dashboard/data`` are also read every ``--poll`` seconds while it is loaded (a
scraper and an open dashboard). ``--pairs`` fresh pairs of servers, one after the other
(which of the two starts first alternates), each loaded for ``--rounds`` rounds of legs of
``--seconds``:

- ``together`` (default): both servers loaded at once, half the clients each, the halves
  swapped after the first of two legs: both sides meet the same machine at each moment;
- ``alternate``: one server at a time, off-on-off then on-off-on (every leg follows a leg
  on the other server, and each round is symmetric in time, so a linear drift cancels).

Per round: the ratio on/off of cycles per second and of the servers' CPU time per cycle
(user + system of ``duru serve`` and its workers, not PostgreSQL), which other load on a
shared machine disturbs far less than wall time. Prints each round, then per side
p50/p95/p99 of push, pull and cycle latency, and for both ratios the median over rounds
with two 95% intervals: distribution-free (the sign test's order statistics) and a
bootstrap of the median, over pairs (the verdict: a server's own quirks, such as which
worker takes which connection, move its figures by a few percent, so rounds on one pair are
not independent) and over rounds (for reference). The cost is proven below 2% only when
the upper end of the sign-test interval over pairs is. Last, the monitoring code's own CPU
time per cycle measured in-process (``monitor_hook_cost.py``, best of several runs) as a
share of the server's (scrapes not included). In the ``alternate`` design a server loaded
twice in a row runs its second leg warm (5-10% faster here): hence every leg switches.
``--control`` starts both servers with monitoring off (an A/A run): whatever "cost" it
shows is the setup's own bias and noise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import dataclass, field
from math import comb
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
from bench_sync import (
    Client,
    LoadStats,
    Serve,
    client_loop,
    drive,
    duru_serve,
    fresh_database,
    make_clients,
    percentiles,
)

from duru.remote import EmbeddedPostgres
from duru.server.config import OPERATOR_TOKEN_VAR
from duru.server.metrics import SWITCH_VAR

TOKEN = "bench-operator-token-0001"
TARGET = 0.02  # monitoring may cost at most this share of throughput


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


@dataclass
class Side:
    """What one side (monitoring on or off) did over the whole run."""

    load: LoadStats = field(default_factory=LoadStats)
    seconds: float = 0.0
    cpu: float = 0.0

    def add(self, stats: LoadStats, seconds: float, cpu: float) -> None:
        self.load.push += stats.push
        self.load.pull += stats.pull
        self.load.cycles += stats.cycles
        self.seconds += seconds
        self.cpu += cpu

    @property
    def rate(self) -> float:
        return len(self.load.cycles) / self.seconds

    @property
    def cpu_ms(self) -> float:
        """Server CPU milliseconds per cycle."""
        return 1000 * self.cpu / max(1, len(self.load.cycles))


def leg(served: Serve, clients: list[Client], seconds: float, watcher: Watcher | None) -> Side:
    """The load for ``seconds`` (with ``watcher`` reading if any): what it did, CPU used."""
    cpu, began = server_cpu(served), time.perf_counter()
    stats = asyncio.run(drive_and_watch(served.url, clients, seconds, watcher))
    took, cpu = time.perf_counter() - began, server_cpu(served) - cpu
    if stats.errors:
        raise SystemExit(f"errors under load: {dict(stats.errors)}")
    side = Side()
    side.add(stats, took, cpu)
    return side


def round_alternate(
    served: dict[bool, Serve], clients: list[Client], seconds: float, watcher: Watcher, i: int
) -> dict[bool, Side]:
    """Three legs, one server at a time: off-on-off, then on-off-on in the next round."""
    first = i % 2 == 1
    sides = {True: Side(), False: Side()}
    for on in (first, not first, first):
        got = leg(served[on], clients, seconds, watcher if on else None)
        sides[on].add(got.load, got.seconds, got.cpu)
    return sides


def round_together(
    served: dict[bool, Serve], clients: list[Client], seconds: float, watcher: Watcher, i: int
) -> dict[bool, Side]:
    """Two legs, both servers loaded at once by half the clients each, halves swapped after one.

    Both sides meet the same machine at the same moment; the swap cancels what differs
    between the halves of the clients.
    """
    half = len(clients) // 2
    sides = {True: Side(), False: Side()}
    for swap in (False, True):
        first, second = clients[:half], clients[half:]
        halves = {swap: first, not swap: second}
        for on, got in leg_together(served, halves, seconds, watcher, swap).items():
            sides[on].add(got.load, got.seconds, got.cpu)
    return sides


def leg_together(
    served: dict[bool, Serve],
    halves: dict[bool, list[Client]],
    seconds: float,
    watcher: Watcher,
    on_first: bool,
) -> dict[bool, Side]:
    cpu = {on: server_cpu(s) for on, s in served.items()}
    began = time.perf_counter()
    stats = asyncio.run(_drive_both(served, halves, seconds, watcher, on_first))
    took = time.perf_counter() - began
    sides = {}
    for on, got in stats.items():
        if got.errors:
            raise SystemExit(f"errors under load: {dict(got.errors)}")
        sides[on] = Side()
        sides[on].add(got, took, server_cpu(served[on]) - cpu[on])
    return sides


async def _drive_both(
    served: dict[bool, Serve],
    halves: dict[bool, list[Client]],
    seconds: float,
    watcher: Watcher,
    on_first: bool,
) -> dict[bool, LoadStats]:
    """Both loads at once, to one deadline; ``on_first``: the on side's clients start first.

    One deadline for both: a side whose clients stopped later would have the machine to
    itself for a moment and look faster.
    """
    stats = {False: LoadStats(), True: LoadStats()}
    sides = (True, False) if on_first else (False, True)
    async with AsyncExitStack() as stack:
        http = {
            on: await stack.enter_async_context(_http(served[on].url, halves[on])) for on in sides
        }
        deadline = time.monotonic() + seconds
        loads = [
            client_loop(http[on], c, deadline, int(seconds * 1_000), stats[on])
            for on in sides
            for c in halves[on]
        ]
        await asyncio.gather(*loads, watcher.watch(served[True].url, seconds))
    return stats


def _http(url: str, clients: list[Client]) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=len(clients) + 8, max_keepalive_connections=None)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0)


Design = Callable[[dict[bool, Serve], list[Client], float, Watcher, int], dict[bool, Side]]
DESIGNS: dict[str, Design] = {"together": round_together, "alternate": round_alternate}


def sign_test_interval(values: list[float], alpha: float = 0.05) -> tuple[float, float, float]:
    """A distribution-free interval for the median: (low, high, its confidence).

    The k-th smallest and k-th largest values, k as large as keeps P(Binomial(n, 1/2) < k)
    at most alpha/2. Needs at least 6 values for 95%.
    """
    ordered, n = sorted(values), len(values)
    below, k = 0.0, 0
    while below + comb(n, k) / 2**n <= alpha / 2:
        below += comb(n, k) / 2**n
        k += 1
    if k == 0:
        return float("-inf"), float("inf"), 1.0
    return ordered[k - 1], ordered[n - k], 1 - 2 * below


def bootstrap_interval(
    values: list[float], alpha: float = 0.05, draws: int = 10_000
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median (fixed seed: the same data, the same answer)."""
    rng = random.Random(13)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(alpha / 2 * draws)], medians[int((1 - alpha / 2) * draws) - 1]


def hook_cost(cycles: int) -> dict[str, float]:
    """``monitor_hook_cost.py`` in its own process (prometheus-client picks its mode at import)."""
    script = Path(__file__).with_name("monitor_hook_cost.py")
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env[SWITCH_VAR] = "on"
    out = subprocess.run(
        [sys.executable, str(script), "--cycles", str(cycles)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--design", choices=sorted(DESIGNS), default="together")
    parser.add_argument("--seconds", type=float, default=3.0, help="one leg")
    parser.add_argument("--pairs", type=int, default=10, help="pairs of servers (at least 6)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per pair of servers")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between reads (0: none)")
    parser.add_argument("--hook-cycles", type=int, default=20_000)
    parser.add_argument("--control", action="store_true", help="both servers off (A/A)")
    args = parser.parse_args()
    if args.pairs < 6 or args.rounds < 1:
        parser.error("--pairs must be at least 6 (fewer give no 95% interval), --rounds 1 or more")
    work = Path(tempfile.mkdtemp(prefix="duru-bench-metrics-", dir="/tmp"))
    pg = EmbeddedPostgres(work / "pg", cleanup_mode="delete", durable=False)
    admin = pg.start()
    try:
        db_url, _ = fresh_database(admin)
        bench = Bench(args, db_url, work)
        pairs = bench.pairs(args.pairs)
        print(f"monitoring reads while loaded: {bench.watcher.reads} (every {args.poll:g} s)")
        if args.control:
            print("CONTROL RUN: both servers have monitoring off; 'on' names one of them")
        report(pairs)
        report_hook(hook_cost(args.hook_cycles), [r for pair in pairs for r in pair])
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


class Bench:
    """Pairs of servers over one database, started in turn, with the same clients."""

    def __init__(self, args: argparse.Namespace, db_url: str, work: Path) -> None:
        self.args, self.db_url, self.work = args, db_url, work
        self.clients: list[Client] = []
        self.watcher = Watcher(0.0 if args.control else args.poll)

    def pairs(self, count: int) -> list[list[dict[bool, Side]]]:
        """``count`` pairs; when one fails after six, the report covers those that ran."""
        done: list[list[dict[bool, Side]]] = []
        for p in range(count):
            try:
                done.append(self.pair(p))
            except SystemExit as exc:
                if len(done) < 6:
                    raise
                print(f"pair {p + 1} failed, reporting the {len(done)} before it: {exc}")
                break
        return done

    def pair(self, p: int) -> list[dict[bool, Side]]:
        """Start a fresh pair (which starts first alternates), load it ``--rounds`` times.

        A server's own quirks (which worker takes which connection, its pool's backends)
        move its figures by a few percent: a fresh pair each time turns that into noise
        that the interval over pairs includes, instead of a bias.
        """
        args, home = self.args, self.work / "home"
        with ExitStack() as stack:
            served: dict[bool, Serve] = {}
            for on in (False, True) if p % 2 == 0 else (True, False):
                with monitoring(on and not args.control):  # read when the server starts
                    log = self.work / f"serve-{p}-{'on' if on else 'off'}.log"
                    served[on] = stack.enter_context(
                        duru_serve(self.db_url, home, log, args.workers)
                    )
            if not self.clients:
                self.clients = make_clients(served[False].url, home, self.work, args.clients)
            for on, s in served.items():  # warm up pools and caches
                leg(s, self.clients, 1.0, Watcher(0.5) if on and not args.control else None)
            print(f"pair {p + 1} ({'off' if p % 2 == 0 else 'on'} started first)", flush=True)
            design = DESIGNS[args.design]
            return [
                run_round(design, served, self.clients, args.seconds, self.watcher, i)
                for i in range(args.rounds)
            ]


def run_round(
    design: Design,
    served: dict[bool, Serve],
    clients: list[Client],
    seconds: float,
    watcher: Watcher,
    i: int,
) -> dict[bool, Side]:
    sides = design(served, clients, seconds, watcher, i)
    off, on = sides[False], sides[True]
    print(
        f"  round {i + 1:3}:"
        f" off {off.rate:5,.0f}  on {on.rate:5,.0f} cycles/s ({on.rate / off.rate:.3f});"
        f" server CPU off {off.cpu_ms:.3f}  on {on.cpu_ms:.3f} ms/cycle"
        f" ({on.cpu_ms / off.cpu_ms:.3f})",
        flush=True,
    )
    return sides


def summed(rounds: list[dict[bool, Side]]) -> dict[bool, Side]:
    total = {on: Side() for on in (False, True)}
    for r in rounds:
        for on, side in r.items():
            total[on].add(side.load, side.seconds, side.cpu)
    return total


def report(pairs: list[list[dict[bool, Side]]]) -> None:
    rounds = [r for pair in pairs for r in pair]
    total = summed(rounds)
    for on in (False, True):
        t = total[on]
        print(
            f"monitoring {'on ' if on else 'off'}: {len(t.load.cycles):,} cycles,"
            f" {t.rate:,.1f}/s, server CPU {t.cpu_ms:.3f} ms/cycle"
        )
        for name, values in (("push", t.load.push), ("pull", t.load.pull)):
            print(f"    {name}  {percentiles(values)}")
        print(f"    cycle {percentiles(t.load.cycles)}")
    per_pair = [summed(pair) for pair in pairs]
    # The verdict is over pairs: rounds on one pair of servers share its quirks.
    for what, units in ((f"{len(pairs)} pairs", per_pair), (f"{len(rounds)} rounds", rounds)):
        decides = units is per_pair
        throughput = [1 - u[True].rate / u[False].rate for u in units]
        cpu = [u[True].cpu_ms / u[False].cpu_ms - 1 for u in units]
        verdict(f"throughput lost, over {what}", throughput, decides)
        verdict(f"server CPU per cycle added, over {what}", cpu, decides)


def verdict(what: str, costs: list[float], decides: bool) -> None:
    """Median cost, its intervals, and (if ``decides``) whether its upper end is below TARGET."""
    low, high, confidence = sign_test_interval(costs)
    b_low, b_high = bootstrap_interval(costs)
    ok = high < TARGET
    print(
        f"{what}: median {statistics.median(costs):+.2%};"
        f" {confidence:.1%} sign-test interval {low:+.2%} .. {high:+.2%};"
        f" 95% bootstrap {b_low:+.2%} .. {b_high:+.2%};"
        + (
            f" below {TARGET:.0%}: {'PROVEN' if ok else 'NOT proven'}"
            if decides
            else " (rounds on one pair are not independent: for reference)"
        )
    )


def report_hook(found: dict[str, float], rounds: list[dict[bool, Side]]) -> None:
    off_ms = statistics.median(r[False].cpu_ms for r in rounds)
    print(
        f"monitoring code per cycle, in-process: {found['cost_us']:.1f} us"
        f" = {found['cost_us'] / 1000 / off_ms:.2%} of the server's {off_ms:.3f} ms CPU per cycle"
        " (scrapes not included)"
    )


if __name__ == "__main__":
    main()
