"""Writes then reads back N small float64 arrays through casket.CacheDict in stores without and with packs,
for each durability, and through exca's CacheDict when an exca interpreter is given, in one run, so the
ratios are taken on one machine state (docs/PERFORMANCE.md 10).

    .venv/bin/python Tools/python/bench/bench_packs.py [COUNT] [SIZE] [PACK_MAX] [EXCA_PYTHON]

EXCA_PYTHON: the python of a venv with exca (``$(Tools/exca-fixtures/venv.sh 0.6.0)``). Writes are one
``write()`` block; reads are every key from a new instance, each array summed.

One side per process, for paired whole-process runs (the two commands started in turn, start-up included):

    .venv/bin/python Tools/python/bench/bench_packs.py --side casket [COUNT] [SIZE] [PACK_MAX] [DURABILITY]
    $(Tools/exca-fixtures/venv.sh 0.6.0) Tools/python/bench/bench_packs.py --side exca [COUNT] [SIZE]

each print ``<side> write W/s read R/s`` (casket: durability ``group`` and ``pack_max`` 65536 unless given).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

EXCA = """
import shutil, sys, tempfile, time
import numpy as np
from exca.cachedict import CacheDict
n, size = int(sys.argv[1]), int(sys.argv[2])
arrays = [np.random.default_rng(i).random(size // 8) for i in range(n)]
d = tempfile.mkdtemp(dir="/var/tmp")
cd = CacheDict(folder=d, cache_type="MemmapArray")
t0 = time.perf_counter()
with cd.write():
    for i, a in enumerate(arrays):
        cd[f"k{i}"] = a
t1 = time.perf_counter()
cd2 = CacheDict(folder=d, cache_type="MemmapArray")
for i in range(n):
    np.asarray(cd2[f"k{i}"]).sum()
t2 = time.perf_counter()
print(n / (t1 - t0), n / (t2 - t1))
shutil.rmtree(d)
"""

if sys.argv[1:2] == ["--side"]:
    side, args = sys.argv[2], sys.argv[3:]
    if side == "exca":
        sys.argv = ["exca", *(args + ["2000", "4096"][len(args):])]
        exec(EXCA.replace("print(n / (t1 - t0), n / (t2 - t1))",
                          'print(f"exca write {n / (t1 - t0):.0f}/s read {n / (t2 - t1):.0f}/s")'))
        sys.exit(0)
    sys.argv = [sys.argv[0], *args[:3]]
    side_durability = args[3] if len(args) > 3 else "group"
else:
    side = None

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import casket  # noqa: E402
from roundtrip import write_then_read  # noqa: E402

n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
size = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
pack_max = int(sys.argv[3]) if len(sys.argv) > 3 else 65536
exca_python = sys.argv[4] if len(sys.argv) > 4 else None
arrays = [np.random.default_rng(i).random(size // 8) for i in range(n)]


def casket_run(durability: str, packs: int) -> tuple[float, float]:
    d = tempfile.mkdtemp(dir="/var/tmp")
    root = os.path.join(d, "s")
    casket.init_store(root, durability=durability, pack_max=packs)
    rates = write_then_read(casket.CacheDict, root, arrays)
    shutil.rmtree(d)
    return rates


if side == "casket":
    w, r = casket_run(side_durability, pack_max)
    print(f"casket write {w:.0f}/s read {r:.0f}/s")
    sys.exit(0)
rows = []
for durability, packs in (("fsync", 0), ("fsync", pack_max), ("group", pack_max), ("none", 0), ("none", pack_max)):
    rows.append((f"casket {durability:5} {'packs' if packs else 'loose'}", *casket_run(durability, packs)))
if exca_python:
    out = subprocess.run([exca_python, "-c", EXCA, str(n), str(size)], capture_output=True, text=True, check=True)
    w, r = (float(x) for x in out.stdout.split())
    rows.append(("exca", w, r))
base = rows[0]
print(f"{n} arrays of {size} bytes; ratios against {base[0].strip()}" + (" and exca" if exca_python else ""))
for name, w, r in rows:
    extra = f"  vs exca: write {w / rows[-1][1]:.2f}x read {r / rows[-1][2]:.2f}x" if exca_python else ""
    print(f"{name:22} write {w:7.0f}/s ({w / base[1]:5.2f}x)  read {r:7.0f}/s ({r / base[2]:5.2f}x){extra}")
