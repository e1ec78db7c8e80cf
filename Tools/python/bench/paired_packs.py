"""Paired whole-process runs of bench_packs.py (docs/PERFORMANCE.md 10): this tree's client, exca 0.6.0 and
another client tree (main's), started in turn N times, one side per process; prints the medians of each
side's rates and of the per-triple ratios (with their range).

    .venv/bin/python Tools/python/bench/paired_packs.py N COUNT SIZE EXCA_PYTHON OTHER_TREE

EXCA_PYTHON: ``$(Tools/exca-fixtures/venv.sh 0.6.0)``; OTHER_TREE: a folder holding another ``Tools/python``
(``git archive main Tools/python | tar -x -C DIR``). Casket's sides use durability ``group`` and ``pack_max``
65536, the defaults.
"""
import os
import re
import statistics
import subprocess
import sys

n, count, size, exca_python, other = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
here = os.path.dirname(os.path.abspath(__file__))
sides = {
    "this": [sys.executable, os.path.join(here, "bench_packs.py"), "--side", "casket", count, size, "65536", "group"],
    "exca": [exca_python, os.path.join(here, "bench_packs.py"), "--side", "exca", count, size],
    "other": [sys.executable, os.path.join(other, "Tools/python/bench/bench_packs.py"), "--side", "casket", count, size,
              "65536", "group"],
}
rates: dict = {k: [] for k in sides}
for _ in range(n):
    for k, cmd in sides.items():
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rates[k].append(tuple(map(float, re.search(r"write (\d+)/s read (\d+)/s", out).groups())))
with open("/proc/loadavg") as f:
    load = " ".join(f.read().split()[:3])
print(f"{count} arrays of {size} bytes, {n} triples, load average at the end {load}")
for k in sides:
    print(f"  {k:5} write {statistics.median(w for w, _ in rates[k]):8.0f}/s  "
          f"read {statistics.median(r for _, r in rates[k]):8.0f}/s")
for a, b in (("this", "exca"), ("other", "exca"), ("this", "other")):
    for what, i in (("read", 1), ("write", 0)):
        ratios = [x[i] / y[i] for x, y in zip(rates[a], rates[b])]
        print(f"  {a}/{b} {what}: {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
