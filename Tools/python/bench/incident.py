#!/usr/bin/env python3
"""The incident, replayed: N processes write the same arrays through a CacheDict at the same time.

Each process opens the CacheDict, lists its keys (as exca's ``_call_and_store`` does before
computing), waits at a barrier so that all start writing at the same instant, then writes the same
keys with the same arrays. Disk use is compared with the unique payload bytes.

    .venv/bin/python Tools/python/bench/incident.py --impl casket            # this client
    $(Tools/exca-fixtures/venv.sh 0.6.0) Tools/python/bench/incident.py --impl exca
    .venv/bin/python Tools/python/bench/incident.py --compare                # both, one table

Prints one JSON object per implementation: ``payload_bytes_on_disk`` (casket: the blob files;
exca: every file of the cache folder except its ``*.jsonl`` info files), ``unique_payload_bytes``,
``inflation`` (their ratio) and ``keys_readable``. The casket half is also the pytest test
tests/test_incident.py.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def make_arrays(seed: int = 0, count: int = 16, shape: tuple = (64, 1024)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"emg/{i:04d}": rng.standard_normal(shape).astype("float32") for i in range(count)}


def _open(impl: str, folder: str) -> tp.Any:
    if impl == "casket":
        sys.path.insert(0, str(HERE.parent))
        import casket

        return casket.CacheDict(folder)
    from exca.cachedict import CacheDict

    return CacheDict(folder, cache_type="MemmapArray")


def _writer(impl: str, folder: str, barrier: tp.Any, queue: tp.Any, seed: int, count: int, shape: tuple) -> None:
    try:
        arrays = make_arrays(seed, count, shape)
        cd = _open(impl, folder)
        missing = [k for k in arrays if k not in cd]  # every process sees an empty cache
        barrier.wait(timeout=120)
        t0 = time.perf_counter()
        with cd.write():
            for k in missing:
                cd[k] = arrays[k]
        queue.put(("ok", time.perf_counter() - t0))
    except BaseException as e:  # pragma: no cover - reported to the parent
        queue.put(("error", repr(e)))


def payload_bytes_on_disk(impl: str, folder: Path) -> tuple[int, int]:
    """(bytes, files) of payload files: casket's blobs; exca's data files (not its jsonl info files)."""
    total = files = 0
    base = folder / "blobs" if impl == "casket" else folder
    for dirpath, _dirs, names in os.walk(base):
        for n in names:
            if impl == "exca" and n.endswith(".jsonl"):
                continue
            total += os.stat(os.path.join(dirpath, n)).st_size
            files += 1
    return total, files


def replay(impl: str, folder: tp.Union[str, Path], procs: int = 8, seed: int = 0, count: int = 16,
           shape: tuple = (64, 1024), durability: str = "fsync") -> dict:
    folder = Path(folder)
    if impl == "casket":
        sys.path.insert(0, str(HERE.parent))
        import casket

        casket.init_store(folder, durability=durability)
    else:
        folder.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(procs)
    queue = ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(impl, str(folder), barrier, queue, seed, count, shape)) for _ in range(procs)]
    t0 = time.perf_counter()
    for p in workers:
        p.start()
    results = [queue.get(timeout=300) for _ in workers]
    for p in workers:
        p.join(timeout=60)
    wall = time.perf_counter() - t0
    errors = [r[1] for r in results if r[0] != "ok"]
    if errors:
        raise RuntimeError(f"{impl} writers failed: {errors}")
    arrays = make_arrays(seed, count, shape)
    unique = {}
    for a in arrays.values():
        unique[a.tobytes()] = a.nbytes
    unique_bytes = sum(unique.values())
    on_disk, files = payload_bytes_on_disk(impl, folder)
    cd = _open(impl, str(folder))
    readable = sum(1 for k, a in arrays.items() if k in cd and np.array_equal(np.asarray(cd[k]), a))
    return {
        "impl": impl,
        "processes": procs,
        "keys": count,
        "array_bytes": int(np.prod(shape)) * 4,
        "unique_payload_bytes": unique_bytes,
        "payload_bytes_on_disk": on_disk,
        "payload_files": files,
        "inflation": round(on_disk / unique_bytes, 3),
        "keys_readable": readable,
        "wall_s": round(wall, 3),
        "slowest_writer_s": round(max(r[1] for r in results), 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl", choices=["casket", "exca"], default="casket")
    ap.add_argument("--compare", action="store_true", help="run casket here and exca in its venv")
    ap.add_argument("--procs", type=int, default=8)
    ap.add_argument("--keys", type=int, default=16)
    ap.add_argument("--shape", default="64,1024", help="float32 array shape (default 256 KiB arrays)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exca-version", default="0.6.0")
    args = ap.parse_args()
    shape = tuple(int(x) for x in args.shape.split(","))
    if args.compare:
        rows = []
        for impl in ["casket", "exca"]:
            python = sys.executable
            if impl == "exca":
                out = subprocess.run([str(REPO / "Tools/exca-fixtures/venv.sh"), args.exca_version],
                                     capture_output=True, text=True, check=True)
                python = out.stdout.strip().splitlines()[-1]
            cmd = [python, __file__, "--impl", impl, "--procs", str(args.procs), "--keys", str(args.keys),
                   "--shape", args.shape, "--seed", str(args.seed)]
            rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
        for r in rows:
            print(json.dumps(r))
        print(f"inflation: casket {rows[0]['inflation']:.2f}x, exca {rows[1]['inflation']:.2f}x "
              f"({args.procs} processes, {args.keys} arrays of {rows[0]['array_bytes']} bytes)")
        return 0
    tmp = tempfile.mkdtemp(prefix=f"incident-{args.impl}-")
    try:
        print(json.dumps(replay(args.impl, Path(tmp) / "cache", args.procs, args.seed, args.keys, shape)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
