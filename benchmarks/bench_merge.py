"""Benchmark the three-way text merge on long notes, the cases that once stalled a sync.

    .venv/bin/python benchmarks/bench_merge.py [--runs 5]

Each case is a base text and two edited sides; prints the wall time of ``merge_text``
(p50 and max over the runs) and whether it merged cleanly. The pull holds the device's
write lock while it merges, so each should stay well under a second.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from duru.sync.merge import merge_text


def _cases() -> dict[str, tuple[str, str, str]]:
    ha = " ".join(["ha"] * 9_900)
    distinct = " ".join(f"w{i}" for i in range(9_000))
    rng = random.Random(1)
    few = [rng.choice(["the", "a", "cat", "sat", "on", "mat", "dog"]) for _ in range(9_000)]
    mine, theirs = list(few), list(few)
    mine[100], mine[8_000], theirs[4_000] = "EDIT", "EDIT", "THEIRS"
    spread = ha.split(" ")
    many = [("X" if i % 100 == 30 else w) for i, w in enumerate(spread)]
    other = [("Y" if i % 100 == 80 else w) for i, w in enumerate(spread)]
    lines = "\n".join(f"line {i % 50}" for i in range(15_000))
    return {
        "one word 9,900 times, edited at each end": (ha, "START " + ha, ha + " END"),
        "9,000 distinct words, ends vs middle": (
            distinct,
            "START " + distinct + " END",
            distinct.replace("w4500", "MID"),
        ),
        "7-word vocabulary, 9,000 words": (" ".join(few), " ".join(mine), " ".join(theirs)),
        "one word, 99 edits a side": (ha, " ".join(many), " ".join(other)),
        "15,000 lines of 50 kinds": (
            lines,
            "x\n" + lines + "\ny",
            lines.replace("line 7\n", "line 7!\n", 1),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for name, (base, mine, theirs) in _cases().items():
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            _, clean = merge_text(base, mine, theirs)
            times.append(time.perf_counter() - started)
        print(
            f"{name:45} p50 {statistics.median(times) * 1000:7.1f} ms"
            f"  max {max(times) * 1000:7.1f} ms  {'clean' if clean else 'clash'}"
        )


if __name__ == "__main__":
    main()
