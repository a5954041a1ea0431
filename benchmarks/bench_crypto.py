"""Benchmark: seal / open_sealed of 1 KB fields against bare PyNaCl XChaCha20-Poly1305.

Run: /work/.venv/bin/python benchmarks/bench_crypto.py [--calls 20000] [--size 1024]

Per-call latency, single thread. duru's calls and the bare reference run in
interleaved rounds in the same process, so drift and neighbours' load hit both
alike. Each seal/open uses its own row id (no cache can help), and the bare
reference is only the libsodium binding with pre-drawn nonces and a fixed
associated data of the same length: the cheapest a caller could possibly do.
Target: duru within 1.5x of the bare call at p50.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import uuid
from collections.abc import Callable

from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)

from duru.crypto import FieldKey, KeyRing, open_sealed, seal
from duru.crypto.envelope import HEADER_BYTES
from duru.crypto.framing import frame_place

ROUNDS = 20
WARMUP = 2000


def percentile(sorted_ns: list[int], q: float) -> float:
    """The q-quantile (0..1) in microseconds, nearest rank."""
    index = min(len(sorted_ns) - 1, max(0, round(q * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1000


def timed(call: Callable[[int], object], indices: range, out: list[int]) -> None:
    clock = time.perf_counter_ns
    for i in indices:
        start = clock()
        call(i)
        out.append(clock() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    calls, size = args.calls, args.size

    ring = KeyRing([FieldKey.generate(1)])
    secret = ring.current.secret
    user = str(uuid.uuid4())
    rows = [str(uuid.uuid4()) for _ in range(calls)]
    plain = [os.urandom(size) for _ in range(calls)]
    nonces = [os.urandom(24) for _ in range(calls)]
    # Same associated-data length as duru's (header + framed place) for a fair reference.
    ad = os.urandom(HEADER_BYTES + len(frame_place("note", "title", user, rows[0])))

    def duru_seal(i: int) -> bytes:
        return seal(plain[i], keys=ring, entity="note", field="title", user_id=user, row_id=rows[i])

    def bare_seal(i: int) -> bytes:
        return crypto_aead_xchacha20poly1305_ietf_encrypt(plain[i], ad, nonces[i], secret)

    sealed = [duru_seal(i) for i in range(calls)]
    boxed = [bare_seal(i) for i in range(calls)]

    def duru_open(i: int) -> bytes:
        return open_sealed(
            sealed[i], keys=ring, entity="note", field="title", user_id=user, row_id=rows[i]
        )

    def bare_open(i: int) -> bytes:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(boxed[i], ad, nonces[i], secret)

    assert all(duru_open(i) == plain[i] for i in range(calls))
    assert all(bare_open(i) == plain[i] for i in range(calls))

    ops = {"seal": (duru_seal, bare_seal), "open": (duru_open, bare_open)}
    results: dict[str, list[int]] = {}
    for op, (duru_call, bare_call) in ops.items():
        for name, call in ((f"duru {op}", duru_call), (f"bare {op}", bare_call)):
            timed(call, range(WARMUP), [])
            results[name] = []
    gc.disable()
    try:
        step = max(1, calls // ROUNDS)
        for start in range(0, calls, step):
            chunk = range(start, min(calls, start + step))
            for op, (duru_call, bare_call) in ops.items():
                timed(duru_call, chunk, results[f"duru {op}"])
                timed(bare_call, chunk, results[f"bare {op}"])
    finally:
        gc.enable()
    report(results, calls, size)


def report(results: dict[str, list[int]], calls: int, size: int) -> None:
    print(f"{calls} calls each, {size}-byte plaintexts, per-call latency in microseconds")
    print(f"{'':12}{'p50':>9}{'p95':>9}{'p99':>9}{'mean':>9}")
    stats: dict[str, tuple[float, float, float]] = {}
    for name, samples in results.items():
        samples.sort()
        p50, p95, p99 = (percentile(samples, q) for q in (0.50, 0.95, 0.99))
        stats[name] = (p50, p95, p99)
        mean = statistics.fmean(samples) / 1000
        print(f"{name:12}{p50:9.2f}{p95:9.2f}{p99:9.2f}{mean:9.2f}")
    for op in ("seal", "open"):
        d, b = stats[f"duru {op}"], stats[f"bare {op}"]
        ratios = "  ".join(
            f"{q} {x / y:.2f}x" for q, x, y in zip(("p50", "p95", "p99"), d, b, strict=True)
        )
        verdict = "meets" if d[0] / b[0] <= 1.5 else "MISSES"
        print(f"ratio {op}: {ratios}  ({verdict} the 1.5x target at p50)")


if __name__ == "__main__":
    main()
