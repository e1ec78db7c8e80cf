"""Writes then reads back N small float64 arrays through casket.CacheDict, in stores without and with packs,
each durability, in one run (so the ratios are taken on one machine state): docs/PERFORMANCE.md.

    .venv/bin/python Tools/python/bench/bench_packs.py [COUNT] [SIZE] [PACK_MAX]
"""
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import casket  # noqa: E402

n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
size = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
pack_max = int(sys.argv[3]) if len(sys.argv) > 3 else 65536
arrays = [np.random.default_rng(i).random(size // 8) for i in range(n)]
rows = {}
for durability in ("fsync", "none"):
    for packs in (0, pack_max):
        d = tempfile.mkdtemp(dir="/var/tmp")
        root = os.path.join(d, "s")
        casket.init_store(root, durability=durability, pack_max=packs)
        cd = casket.CacheDict(folder=root)
        t0 = time.perf_counter()
        with cd.write():
            for i, a in enumerate(arrays):
                cd[f"k{i}"] = a
        t1 = time.perf_counter()
        cd2 = casket.CacheDict(folder=root)
        for i in range(n):
            np.asarray(cd2[f"k{i}"]).sum()
        t2 = time.perf_counter()
        rows[(durability, packs)] = (n / (t1 - t0), n / (t2 - t1))
        shutil.rmtree(d)
for durability in ("fsync", "none"):
    (lw, lr), (pw, pr) = rows[(durability, 0)], rows[(durability, pack_max)]
    print(f"{durability:5} loose write {lw:7.0f}/s read {lr:7.0f}/s | packed write {pw:7.0f}/s read {pr:7.0f}/s"
          f" | packed/loose write {pw / lw:.2f}x read {pr / lr:.2f}x")
