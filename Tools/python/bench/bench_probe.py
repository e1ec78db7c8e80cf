"""A writer's dedup probe of many sealed packs (docs/PERFORMANCE.md 10, third round): PACKS sessions of 200
values of 64 B in one store (a sealed pack each), then 20,000 probes of absent hashes and 20,000 of present
ones through one ``PackShelf``, searched one pack at a time (``PROBE_MERGE`` past the pack count) and
through the one table of their hashes (as shipped). Prints the best of 3 per probe.

    .venv/bin/python Tools/python/bench/bench_probe.py [PACKS]
"""
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import xxhash

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import casket  # noqa: E402
from casket import packs  # noqa: E402

count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
folder = tempfile.mkdtemp(dir="/var/tmp")
root = os.path.join(folder, "s")
casket.init_store(root, durability="none", pack_max=65536)
for s in range(count):
    cd = casket.CacheDict(root)
    with cd.write():
        for i in range(200):
            cd[f"s{s}-{i}"] = np.full(8, s * 1000.0 + i)
absent = [xxhash.xxh3_128_hexdigest(np.full(8, -1.0 - i)) for i in range(20000)]
present = [xxhash.xxh3_128_hexdigest(np.full(8, (i % count) * 1000.0 + i % 200)) for i in range(20000)]
shipped = packs.PROBE_MERGE
for merge in (1 << 30, shipped):
    packs.PROBE_MERGE = merge
    shelf = packs.PackShelf(os.path.join(root, "packs"))
    shelf.probe(absent[0])
    rates = []
    for digests in (absent, present):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for h in digests:
                shelf.probe(h, None, shelf._probed)  # within the probe interval: the search alone
            best = min(best, (time.perf_counter() - t0) / len(digests) * 1e6)
        rates.append(best)
    how = "one pack at a time" if merge > count else "one table"
    print(f"{count} sealed packs, {how}: miss {rates[0]:.1f} us, hit {rates[1]:.1f} us")
shutil.rmtree(folder)
