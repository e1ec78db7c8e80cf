#!/usr/bin/env python3
"""Per-chunk hashing speed, XXH3-64 against XXH3-128, for the chunk sizes considered (docs/PERFORMANCE.md 9).

    .venv/bin/python Tools/python/bench/bench_chunk_hash.py

64 MiB of random bytes, warm in memory, hashed chunk by chunk through python-xxhash (what the Python reader
does for every chunk it verifies); best of 7 passes, in GB/s.
"""

import os
import time

import xxhash


def main() -> None:
    data = memoryview(os.urandom(64 << 20))
    print("| chunk | XXH3-64 | XXH3-128 |")
    print("| --- | --- | --- |")
    for chunk in (64 << 10, 256 << 10, 1 << 20, 4 << 20):
        row = []
        for f in (xxhash.xxh3_64_intdigest, xxhash.xxh3_128_intdigest):
            best = float("inf")
            for _ in range(7):
                t = time.perf_counter()
                for a in range(0, len(data), chunk):
                    f(data[a : a + chunk])
                best = min(best, time.perf_counter() - t)
            row.append(f"{len(data) / best / 1e9:.1f} GB/s")
        print(f"| {chunk >> 10} KiB | {row[0]} | {row[1]} |")


if __name__ == "__main__":
    main()
