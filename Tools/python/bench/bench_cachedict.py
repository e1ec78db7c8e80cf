#!/usr/bin/env python3
"""Benchmark casket.CacheDict against exca's CacheDict: same data (generated from a seed), same run.

    .venv/bin/python Tools/python/bench/bench_cachedict.py --compare            # everything, one table
    .venv/bin/python Tools/python/bench/bench_cachedict.py --impl casket --durability none
    $(Tools/exca-fixtures/venv.sh 0.6.0) Tools/python/bench/bench_cachedict.py --impl exca
    .venv/bin/python Tools/python/bench/bench_cachedict.py --first-read-100k    # casket only
    .venv/bin/python Tools/python/bench/bench_cachedict.py --compare --client OLD/Tools/python  # another client

Phases (``--impl`` prints one JSON object):

- **write**: ``--count`` (1,000) float32 arrays of ``--mb`` (4) MB, each different (array ``i`` is
  drawn from ``default_rng(seed + i)``, outside the timed region), written one by one inside one
  ``with cd.write()`` block. Per-array latency (median, p90) and throughput over the whole block
  (including the close of the write session).
- **read**: a new CacheDict instance on the same folder, keys in a shuffled order: ``cd[key]`` alone
  (``get``; for casket this includes verifying the XXH3-128 of the whole array, unless
  ``--no-verify``) and ``cd[key]`` plus touching every page of the array (``get+touch``); then a second
  new instance, keys in the reverse order, ``cd[key]`` plus a sum of every element (``get+sum``: what a
  pipeline that uses the whole array pays, since a touch reads one value a page and skips the rest). The first
  ``cd[key]`` of the new instance (index load) is reported separately as ``first_get``. The page
  cache is warm (the data was just written), for every implementation alike.
- **first read in a store of 100,000 entries** (``--first-read-100k``): 100,000 index lines in 16
  writer files referencing 8 shared blobs (lines written directly, as ``IndexWriter`` formats them),
  then, in a fresh interpreter each time, ``CacheDict(folder)[key]``: median of ``--repeat`` runs
  (interpreter start and imports excluded).

Durability: casket is measured with ``durability: none`` (no fsync, like exca, which never fsyncs)
and ``durability: fsync`` (every blob, its directory and every index line flushed before
``cd[key] = v`` returns).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
# The client measured: this tree's, or with --client another tree's Tools/python (an older commit's, to
# compare clients in turn with the same script and data). Read before argparse so that children inherit it.
PKG = Path(os.environ.get("CASKET_BENCH_CLIENT") or HERE.parent)


def make_array(seed: int, i: int, nbytes: int) -> np.ndarray:
    n = nbytes // 4
    return np.random.default_rng(seed + i).integers(0, 1 << 23, n, dtype=np.uint32).astype(np.float32).reshape(-1, 1024)


def stats(samples: list[float]) -> dict:
    s = sorted(samples)
    return {
        "n": len(s),
        "median_ms": round(statistics.median(s) * 1e3, 3),
        "p90_ms": round(s[int(0.9 * (len(s) - 1))] * 1e3, 3),
        "total_s": round(sum(s), 3),
    }


def open_cd(impl: str, folder: Path, verify: bool = True) -> tp.Any:
    if impl == "casket":
        sys.path.insert(0, str(PKG))
        import casket

        return casket.CacheDict(folder, verify=verify)
    from exca.cachedict import CacheDict

    return CacheDict(folder, cache_type="MemmapArray")


def bench_rw(impl: str, folder: Path, count: int, mb: float, seed: int, durability: str, verify: bool) -> dict:
    nbytes = int(mb * 1_000_000) // 4096 * 4096
    if impl == "casket":
        sys.path.insert(0, str(PKG))
        import casket

        casket.init_store(folder, compression="none", durability=durability)
    else:
        folder.mkdir(parents=True)
    keys = [f"rec/{i:05d}" for i in range(count)]
    cd = open_cd(impl, folder, verify)
    write_times: list[float] = []
    gc.disable()
    block = 0.0
    with cd.write():
        for i, k in enumerate(keys):
            arr = make_array(seed, i, nbytes)  # untimed
            t0 = time.perf_counter()
            cd[k] = arr
            dt = time.perf_counter() - t0
            write_times.append(dt)
            block += dt
            del arr
        t_close = time.perf_counter()
    block += time.perf_counter() - t_close  # closing the write session (casket: seal line)
    gc.enable()
    del cd
    order = list(range(count))
    np.random.default_rng(seed).shuffle(order)
    cd = open_cd(impl, folder, verify)
    t0 = time.perf_counter()
    first = cd[keys[order[0]]]
    first_get = time.perf_counter() - t0
    del first
    get_times, touch_times = [], []
    checksum = 0.0
    for j in order:
        t0 = time.perf_counter()
        v = cd[keys[j]]
        t1 = time.perf_counter()
        checksum += float(np.asarray(v).reshape(-1)[::1024].sum(dtype=np.float64))  # every 4 KiB page
        t2 = time.perf_counter()
        get_times.append(t1 - t0)
        touch_times.append(t2 - t0)
        del v
    # a second new instance, another order: cd[key] and a use of every byte (a sum), what a pipeline that
    # reads a whole array pays; the touch above reads one value per page and so skips the data itself
    del cd
    cd = open_cd(impl, folder, verify)
    cd[keys[order[-1]]]
    sum_times = []
    for j in reversed(order):
        t0 = time.perf_counter()
        v = cd[keys[j]]
        float(np.asarray(v).sum(dtype=np.float64))
        sum_times.append(time.perf_counter() - t0)
        del v
    # correctness of a few values (untimed)
    for j in (0, count // 2, count - 1):
        assert np.array_equal(np.asarray(cd[keys[j]]), make_array(seed, j, nbytes)), keys[j]
    disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    total = count * nbytes
    return {
        "impl": impl,
        "durability": durability if impl == "casket" else "(no fsync)",
        "verify": verify if impl == "casket" else None,
        "count": count,
        "array_bytes": nbytes,
        "write": {**stats(write_times), "block_s": round(block, 3), "MB_per_s": round(total / block / 1e6, 1)},
        "first_get_ms": round(first_get * 1e3, 3),
        "get": {**stats(get_times), "MB_per_s": None},
        "get_touch": {**stats(touch_times), "MB_per_s": round(total / sum(touch_times) / 1e6, 1)},
        "get_sum": {**stats(sum_times), "MB_per_s": round(total / sum(sum_times) / 1e6, 1)},
        "disk_bytes": disk,
        "checksum": checksum,
    }


# --------------------------------------------------------------------------- 100k entries


def build_100k(folder: Path, entries: int = 100_000, writers: int = 16, blobs: int = 8, seed: int = 0) -> dict:
    sys.path.insert(0, str(PKG))
    import casket
    from casket.index import entry_line, seal_line

    casket.init_store(folder, durability="none")
    store = casket.Store(folder)
    rng = np.random.default_rng(seed)
    nodes = []
    for b in range(blobs):
        arr = rng.standard_normal((16, 256)).astype("float32")
        h = store.put_bytes(arr)
        nodes.append(({"#type": "MemmapArray", "blob": h, "size": arr.nbytes, "dtype": "float32", "shape": [16, 256]}, [(h, arr.nbytes)]))
    (folder / "index").mkdir(exist_ok=True)
    t0 = time.perf_counter()
    ts = time.time_ns()
    per = entries // writers
    for w in range(writers):
        lines = []
        for i in range(w * per, (w + 1) * per if w < writers - 1 else entries):
            node, bl = nodes[i % blobs]
            ts += 1
            lines.append(entry_line(f"rec/{i:06d}", ts, node, bl))
        lines.append(seal_line(ts + 1))
        (folder / "index" / f"bench-{w}-{w:08x}.jsonl").write_bytes(b"".join(lines))
    index_bytes = sum(f.stat().st_size for f in (folder / "index").iterdir())
    return {"entries": entries, "index_files": writers, "index_bytes": index_bytes, "build_s": round(time.perf_counter() - t0, 3)}


FIRST_READ = r"""
import sys, time, json
sys.path.insert(0, sys.argv[2])
import numpy as np, casket
t0 = time.perf_counter()
cd = casket.CacheDict(sys.argv[1])
v = cd[sys.argv[3]]
s = float(np.asarray(v).sum())
t1 = time.perf_counter()
print(json.dumps({"first_read_s": t1 - t0, "keys": len(cd._reader.keys())}))
"""


def bench_first_read(folder: Path, repeat: int) -> dict:
    times = []
    for r in range(repeat):
        key = f"rec/{(r * 37_013) % 100_000:06d}"
        out = subprocess.run([sys.executable, "-c", FIRST_READ, str(folder), str(PKG), key], capture_output=True, text=True, check=True)
        res = json.loads(out.stdout)
        assert res["keys"] == 100_000, res
        times.append(res["first_read_s"])
    return {"repeat": repeat, "median_ms": round(statistics.median(times) * 1e3, 1), "min_ms": round(min(times) * 1e3, 1),
            "max_ms": round(max(times) * 1e3, 1)}


# --------------------------------------------------------------------------- driver


def exca_python(version: str) -> str:
    out = subprocess.run([str(REPO / "Tools/exca-fixtures/venv.sh"), version], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def run_child(python: str, args: list[str]) -> dict:
    r = subprocess.run([python, __file__, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl", choices=["casket", "exca"])
    ap.add_argument("--durability", choices=["none", "fsync"], default="none")
    ap.add_argument("--no-verify", action="store_true", help="casket: CacheDict(verify=False)")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp folder, removed afterwards)")
    ap.add_argument("--first-read-100k", action="store_true")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--compare", action="store_true", help="casket none/fsync and exca, then the 100k first read")
    ap.add_argument("--exca-version", default="0.6.0")
    ap.add_argument("--client", default=None, help="the Tools/python folder whose casket package is measured")
    args = ap.parse_args()
    if args.client:
        global PKG
        PKG = Path(args.client).resolve()
        if not (PKG / "casket" / "__init__.py").is_file():
            ap.error(f"--client {args.client}: no casket package in {PKG}")
        os.environ["CASKET_BENCH_CLIENT"] = str(PKG)  # for the child processes of --compare
    base = Path(args.dir or tempfile.mkdtemp(prefix="casket-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        if args.compare:
            common = ["--count", str(args.count), "--mb", str(args.mb), "--seed", str(args.seed), "--dir", str(base)]
            runs = [
                run_child(exca_python(args.exca_version), ["--impl", "exca", *common]),
                run_child(sys.executable, ["--impl", "casket", "--durability", "none", *common]),
                run_child(sys.executable, ["--impl", "casket", "--durability", "fsync", *common]),
                run_child(sys.executable, ["--impl", "casket", "--durability", "none", "--no-verify", *common]),
            ]
            fr = run_child(sys.executable, ["--first-read-100k", "--repeat", str(args.repeat), "--dir", str(base)])
            for r in runs:
                print(json.dumps(r))
            print(json.dumps(fr))
            ex = runs[0]
            assert all(r["checksum"] == ex["checksum"] for r in runs), "implementations read different data"
            print(f"\n{args.count} arrays of {ex['array_bytes'] / 1e6:.2f} MB, seed {args.seed}; medians per array; "
                  f"ratio = exca / casket (> 1: casket faster)")
            print(f"{'':28}{'write':>10}{'write MB/s':>12}{'get':>10}{'get+touch':>11}{'get+sum':>10}"
                  f"{'first get':>11}")
            for r in runs:
                name = r["impl"] if r["impl"] == "exca" else f"casket {r['durability']}{'' if r['verify'] else ' no-verify'}"
                print(f"{name:28}{r['write']['median_ms']:>8.2f}ms{r['write']['MB_per_s']:>12.0f}"
                      f"{r['get']['median_ms']:>8.3f}ms{r['get_touch']['median_ms']:>9.3f}ms"
                      f"{r['get_sum']['median_ms']:>8.3f}ms{r['first_get_ms']:>9.1f}ms")
            for r in runs[1:]:
                name = f"exca/casket {r['durability']}{'' if r['verify'] else ' no-verify'}"
                print(f"{name:28}{ex['write']['median_ms'] / r['write']['median_ms']:>9.2f}x"
                      f"{r['write']['MB_per_s'] / ex['write']['MB_per_s']:>11.2f}x"
                      f"{ex['get']['median_ms'] / r['get']['median_ms']:>9.2f}x"
                      f"{ex['get_touch']['median_ms'] / r['get_touch']['median_ms']:>10.2f}x"
                      f"{ex['get_sum']['median_ms'] / r['get_sum']['median_ms']:>9.2f}x"
                      f"{ex['first_get_ms'] / r['first_get_ms']:>10.2f}x")
            print(f"first read in a store of {fr['entries']} entries ({fr['index_bytes'] / 1e6:.1f} MB of index in "
                  f"{fr['index_files']} files): median {fr['first_read']['median_ms']} ms over {fr['first_read']['repeat']} fresh processes")
            return 0
        if args.first_read_100k:
            folder = base / "store-100k"
            shutil.rmtree(folder, ignore_errors=True)
            info = build_100k(folder)
            info["first_read"] = bench_first_read(folder, args.repeat)
            shutil.rmtree(folder, ignore_errors=True)
            print(json.dumps(info))
            return 0
        if not args.impl:
            ap.error("give --impl, --first-read-100k or --compare")
        folder = base / f"{args.impl}-{args.durability}"
        shutil.rmtree(folder, ignore_errors=True)
        try:
            print(json.dumps(bench_rw(args.impl, folder, args.count, args.mb, args.seed, args.durability, not args.no_verify)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        if args.dir is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
