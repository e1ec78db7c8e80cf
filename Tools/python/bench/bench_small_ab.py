"""Writes then reads back N small float64 arrays through casket.CacheDict of the client tree given (A/B runs).

    python3 bench_small_ab.py CLIENT_TREE COUNT SIZE [DURABILITY] [PACK_MAX]    (a line to $PYBENCH_OUT or stdout)
"""
import os, shutil, sys, tempfile, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import casket
from roundtrip import write_then_read  # this script's folder, not the client tree's
n = int(sys.argv[2]); size = int(sys.argv[3])
d = tempfile.mkdtemp(dir="/var/tmp")
root = os.path.join(d, "s")
casket.init_store(root, durability=sys.argv[4] if len(sys.argv) > 4 else "fsync",
                  pack_max=int(sys.argv[5]) if len(sys.argv) > 5 else 0)
arrays = [np.random.default_rng(i).random(size // 8) for i in range(n)]
w, r = write_then_read(casket.CacheDict, root, arrays)
with open(os.environ.get("PYBENCH_OUT", "/dev/stdout"), "a") as f:
    f.write(f"{sys.argv[1]} write {w:.0f}/s read {r:.0f}/s\n")
shutil.rmtree(d)
