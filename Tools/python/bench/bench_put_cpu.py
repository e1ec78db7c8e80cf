"""The CPU a put costs the session's thread (docs/PERFORMANCE.md 10, third round): REPS sessions of COUNT
float64 arrays of SIZE bytes in one ``write()`` block each, in new stores (durability ``group``, ``pack_max``
65536), timed with ``time.thread_time()`` (the background flushes and seals not counted); prints the min
and the median a put. CLIENT is the ``Tools/python`` folder of the client to time (another tree's, to
compare).

    .venv/bin/python Tools/python/bench/bench_put_cpu.py [CLIENT] [COUNT] [SIZE] [REPS]
"""
import os
import shutil
import sys
import tempfile
import time

client = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, client)
import numpy as np  # noqa: E402

import casket  # noqa: E402

count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
size = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
reps = int(sys.argv[4]) if len(sys.argv) > 4 else 9
costs = []
for r in range(reps):
    arrays = [np.random.default_rng(r * count + i).random(size // 8) for i in range(count)]
    folder = tempfile.mkdtemp(dir="/var/tmp")
    root = os.path.join(folder, "s")
    casket.init_store(root, durability="group", pack_max=65536)
    cd = casket.CacheDict(folder=root)
    t0 = time.thread_time()
    with cd.write():
        for i, a in enumerate(arrays):
            cd[f"k{i}"] = a
    costs.append((time.thread_time() - t0) / count * 1e6)
    shutil.rmtree(folder)
costs.sort()
print(f"{casket.__file__}: {count} x {size} B, session thread CPU a put: min {costs[0]:.1f} us, "
      f"median {costs[len(costs) // 2]:.1f} us")
