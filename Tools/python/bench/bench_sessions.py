"""One value per ``write()`` session, the loop exca users write (``for k in keys: with cd.write(): cd[k] =
f(k)``): COUNT float64 arrays of SIZE bytes, each set in a session of its own, then all read back by a new
instance (each summed). One side per process, for paired whole-process runs (docs/PERFORMANCE.md 10):

    .venv/bin/python Tools/python/bench/bench_sessions.py casket [COUNT] [SIZE] [DURABILITY]
    $(Tools/exca-fixtures/venv.sh 0.6.0) Tools/python/bench/bench_sessions.py exca [COUNT] [SIZE]
    python3 Tools/python/bench/bench_sessions.py floor [COUNT] [SIZE]

Each prints ``<side> write W/s read R/s files F`` (F: the files the store holds at the end). ``floor`` is
what a durable session cannot go below: per value, one ``write`` + ``fdatasync`` of SIZE bytes to a data
file, then one of a 200-byte line to a second file (the payload is durable before the line that names
it, FORMAT 5.5), in plain Python; it reads nothing back. casket's store: ``init_store`` defaults (packs,
durability ``group``) unless DURABILITY is given.
"""
import os
import shutil
import sys
import tempfile
import time

side = sys.argv[1] if len(sys.argv) > 1 else "casket"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
size = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
d = tempfile.mkdtemp(dir="/var/tmp")
try:
    if side == "floor":
        a = os.open(os.path.join(d, "data"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        b = os.open(os.path.join(d, "lines"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        payload, line = os.urandom(size), b"x" * 199 + b"\n"
        t0 = time.perf_counter()
        for _ in range(n):
            os.write(a, payload)
            os.fdatasync(a)
            os.write(b, line)
            os.fdatasync(b)
        print(f"floor write {n / (time.perf_counter() - t0):.0f}/s")
        sys.exit(0)
    import numpy as np

    arrays = [np.random.default_rng(i).random(size // 8) for i in range(n)]
    root = os.path.join(d, "s")
    if side == "exca":
        from exca.cachedict import CacheDict

        def make(folder: str):
            return CacheDict(folder=folder, cache_type="MemmapArray")
    else:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        import casket

        casket.init_store(root, **({"durability": sys.argv[4]} if len(sys.argv) > 4 else {}))

        def make(folder: str):
            return casket.CacheDict(folder=folder)
    cd = make(root)
    t0 = time.perf_counter()
    for i, a in enumerate(arrays):
        with cd.write():
            cd[f"k{i}"] = a
    t1 = time.perf_counter()
    reader = make(root)
    for i in range(n):
        np.asarray(reader[f"k{i}"]).sum()
    t2 = time.perf_counter()
    if hasattr(cd, "close"):  # a client that keeps its writers between sessions: sealed now, not at exit
        cd.close()
    count = sum(len(f) for _, _, f in os.walk(root))
    print(f"{side} write {n / (t1 - t0):.0f}/s read {n / (t2 - t1):.0f}/s files {count}")
finally:
    shutil.rmtree(d)
