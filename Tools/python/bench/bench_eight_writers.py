"""N processes write the same V small arrays (each under its own keys) at once into a store with packs, then one
``casket gc`` runs: prints the bytes of ``blobs/`` + ``packs/`` against the unique payload bytes, before and
after the collection (the goal of issue 12: at most 1.05x after one GC; docs/PERFORMANCE.md 10).

    CASKET_BIN=.build/debug/casket .venv/bin/python Tools/python/bench/bench_eight_writers.py \
        [WRITERS] [VALUES] [SIZE] [PACK_MAX]

Each writer is its own Python process (one ``CacheDict.write()`` block, durability ``group``); they meet
through files before they write, and each keeps its session open until all have written. ``run()`` is what the test suite calls too.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

WRITER = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, casket
root, count, size, sync, me, writers = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], int(sys.argv[7])

def meet(stage):  # a rendezvous of every writer through files: "at once" however slow the machine
    open(os.path.join(sync, stage + "-" + me), "w").close()
    while sum(n.startswith(stage + "-") for n in os.listdir(sync)) < writers:
        time.sleep(0.005)

arrays = [np.random.default_rng(i).random(size // 8) for i in range(count)]
cd = casket.CacheDict(root)
meet("ready")
with cd.write():
    for i, a in enumerate(arrays):
        cd[f"{me}-k{i}"] = a
    meet("written")  # the session (and its open pack) lasts until every writer has written
"""
PKG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def disk_bytes(root: str) -> int:
    """Bytes of every regular file under ``blobs/`` and ``packs/``."""
    total = 0
    for folder in ("blobs", "packs"):
        for base, _, names in os.walk(os.path.join(root, folder)):
            for name in names:
                st = os.lstat(os.path.join(base, name))
                total += st.st_size if os.path.isfile(os.path.join(base, name)) else 0
    return total


def unique_payload_bytes(root: str) -> int:
    """The size of each distinct payload the store holds, packed or loose, counted once."""
    sys.path.insert(0, PKG)
    from casket import packs

    sizes: dict = {}
    folder = os.path.join(root, "packs")
    for name in os.listdir(folder):
        if name.endswith(".pack"):
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                for record, _ in packs.scan_records(fd, os.fstat(fd).st_size)[0]:
                    sizes[record.digest] = record.size
            finally:
                os.close(fd)
    for base, _, names in os.walk(os.path.join(root, "blobs")):
        for name in names:
            if len(name) == 32:
                sizes[name] = os.lstat(os.path.join(base, name)).st_size
    return sum(sizes.values())


def run(root: str, casket_bin: str, writers: int = 8, values: int = 2000, size: int = 4096,
        pack_max: int = 65536) -> dict:
    sys.path.insert(0, PKG)
    import casket

    casket.init_store(root, durability="group", pack_max=pack_max)
    sync = tempfile.mkdtemp(prefix="sync-", dir=os.path.dirname(os.path.abspath(root)))
    # none of the writers sees another's open pack: each packs every value itself, and GC makes one copy
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, PKG, root, str(values), str(size), sync, f"w{n}",
                               str(writers)]) for n in range(writers)]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError(f"a writer exited with {p.returncode}")
    unique = unique_payload_bytes(root)
    before = disk_bytes(root)
    t0 = time.perf_counter()
    out = subprocess.run([casket_bin, "gc", "--store", root, "--json"], capture_output=True, text=True)
    gc_seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"casket gc exited with {out.returncode}: {out.stderr}")
    after = disk_bytes(root)
    return {"writers": writers, "values": values, "size": size, "unique_bytes": unique,
            "before_bytes": before, "after_bytes": after, "before_ratio": before / unique,
            "after_ratio": after / unique, "gc_seconds": gc_seconds, "gc": json.loads(out.stdout)}


def main() -> None:
    args = [int(a) for a in sys.argv[1:5]]
    binary = os.environ.get("CASKET_BIN", ".build/debug/casket")
    with tempfile.TemporaryDirectory(dir="/var/tmp") as d:
        r = run(os.path.join(d, "store"), binary, *args)
    gc = r["gc"]
    print(f"{r['writers']} writers x {r['values']} values of {r['size']} B: unique payload {r['unique_bytes']} B")
    print(f"before gc: {r['before_bytes']} B on disk = {r['before_ratio']:.3f}x")
    print(f"after one gc: {r['after_bytes']} B on disk = {r['after_ratio']:.3f}x "
          f"(gc {r['gc_seconds']:.2f} s: {gc['packs_removed']} packs removed, {gc['packs_retired']} retired, "
          f"{gc['records_copied']} records copied into {gc['packs_written']} new packs)")


if __name__ == "__main__":
    main()
