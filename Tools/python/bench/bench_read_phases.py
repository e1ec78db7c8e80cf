"""The phases of a new reader's reads of COUNT packed float64 arrays of SIZE bytes, in one process (minimum of
ROUNDS): the index load a line, the first read (which opens the packs), then each read (no sum), so that one
client tree is compared with another piece by piece (docs/PERFORMANCE.md 10).

    .venv/bin/python Tools/python/bench/bench_read_phases.py TREE [COUNT] [SIZE] [ROUNDS]

TREE: a folder holding ``casket`` (``Tools/python`` of this or another checkout). The store is written once
(durability ``group``, ``pack_max`` 65536) under /var/tmp and removed at the end.
"""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, sys.argv[1])
import numpy as np  # noqa: E402

import casket  # noqa: E402

count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
size = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 9
folder = tempfile.mkdtemp(dir="/var/tmp")
root = os.path.join(folder, "s")
casket.init_store(root, durability="group", pack_max=65536)
cd = casket.CacheDict(folder=root)
with cd.write():
    for i in range(count):
        cd[f"k{i}"] = np.random.default_rng(i).random(size // 8)


def once() -> tuple:
    t0 = time.perf_counter()
    reader = casket.CacheDict(folder=root)
    reader._refresh()
    t1 = time.perf_counter()
    reader["k0"]
    t2 = time.perf_counter()
    for i in range(1, count):
        reader[f"k{i}"]
    t3 = time.perf_counter()
    return (t1 - t0) / count, t2 - t1, (t3 - t2) / (count - 1)


runs = [once() for _ in range(rounds)]
best = [min(x) for x in zip(*runs)]
first = runs[0]  # the round a fresh process pays (nothing cached yet), beside the minima
print(f"first round: index {first[0] * 1e6:.2f} us a line, first read {first[1] * 1e3:.2f} ms, "
      f"then {first[2] * 1e6:.2f} us a read")
print(f"{count} x {size} B: index {best[0] * 1e6:.2f} us a line, first read {best[1] * 1e3:.2f} ms, "
      f"then {best[2] * 1e6:.2f} us a read")
shutil.rmtree(folder)
