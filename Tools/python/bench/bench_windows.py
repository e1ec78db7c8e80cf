#!/usr/bin/env python3
"""Window reads out of large arrays, cold page cache: exca against casket, in the same run (issue 13).

    .venv/bin/python Tools/python/bench/bench_windows.py --compare            # docs/PERFORMANCE.md 9
    .venv/bin/python Tools/python/bench/bench_windows.py --compare --mb 64 --chunk-sizes 65536,262144,1048576

Each array is float32 with 64 channels, ``--mb`` MiB, C order. A window is 512 samples of the 64 channels,
128 KiB, copied out (``np.array``), so that every
page it needs is read. ``--layout time`` (the default) stores shape (N, 64) and reads ``[t:t + 512]``, one
contiguous 128 KiB; ``--layout channels`` stores (64, N) and reads ``[:, t:t + 512]``, 2 KiB of each row.
Each window lies in its own slot of ``--spacing`` bytes of the time axis, at a random place in it, so that
no two windows share a chunk, and the page cache of every file of the store is dropped
(``posix_fadvise(DONTNEED)``) before each child starts: windows are read cold (exca's fault read-around
may still bring a later window's pages in early: see the mean).

Each measurement is one child process (a fresh interpreter, nothing mapped yet), run in turn for exca
and casket (A B A B ...), ``--rounds`` times: per-window latency (median, p90), the first ``cd[key]``
(index load), the peak RSS of the child, and a whole-array read (``np.asarray(cd[key]).sum()``, cold)
per array. casket uses the store's default settings (chunk digests for blobs of 4 MiB and more);
``--chunk-sizes`` writes one casket store per chunk size to compare them (writers use one fixed size,
FORMAT 3.6: this option exists for this measurement only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
PKG = HERE.parent
REPO = HERE.parents[2]
ROWS = 64
WIDTH = 512  # 64 rows x 512 float32 = 128 KiB


def make_array(mb: int, seed: int, layout: str) -> np.ndarray:
    n = (mb << 20) // 4 // ROWS
    shape = (n, ROWS) if layout == "time" else (ROWS, n)
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def drop_cache(folder: Path) -> None:
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                fd = os.open(os.path.join(dirpath, name), os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def open_cd(impl: str, folder: Path) -> tp.Any:
    if impl == "casket":
        sys.path.insert(0, str(PKG))
        import casket

        return casket.CacheDict(folder)
    from exca.cachedict import CacheDict

    return CacheDict(folder, cache_type="MemmapArray")


def write(impl: str, folder: Path, mbs: list[int], chunk: int, layout: str) -> None:
    if impl == "casket" and chunk:
        sys.path.insert(0, str(PKG))
        import casket.chunks

        casket.chunks.CHUNK_SIZE = chunk
    cd = open_cd(impl, folder)
    with cd.write():
        for mb in mbs:
            cd[f"a{mb}"] = make_array(mb, mb, layout)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def windows(impl: str, folder: Path, mb: int, count: int, seed: int, layout: str, spacing: int) -> dict:
    t0 = time.perf_counter()
    cd = open_cd(impl, folder)
    key = f"a{mb}"
    arr = cd[key]
    first = time.perf_counter() - t0
    # fresh pages for every window: each in its own slot of ``spacing`` bytes of the time axis, at a random
    # place inside it, so that no two windows share a chunk or a page read around a fault
    step = spacing // (ROWS * 4) if layout == "time" else spacing // 4
    n = arr.shape[0] if layout == "time" else arr.shape[1]
    rng = np.random.default_rng(seed)
    slots = rng.choice(n // step, size=min(count, n // step), replace=False)
    rss0 = rss_mb()
    lat = []
    for slot in slots.tolist():
        t = int(slot) * step + int(rng.integers(0, step - WIDTH))
        t1 = time.perf_counter()
        w = np.array(cd[key][t : t + WIDTH] if layout == "time" else cd[key][:, t : t + WIDTH])
        lat.append(time.perf_counter() - t1)
        assert w.size == ROWS * WIDTH
    rss1 = rss_mb()
    return {"first_get_ms": first * 1e3, "lat": lat, "rss_before_mb": rss0, "rss_after_mb": rss1,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def whole(impl: str, folder: Path, mb: int) -> dict:
    cd = open_cd(impl, folder)
    t1 = time.perf_counter()
    total = float(np.asarray(cd[f"a{mb}"]).sum())
    return {"whole_s": time.perf_counter() - t1, "sum": total}


def exca_python(version: str) -> str:
    out = subprocess.run([str(REPO / "Tools/exca-fixtures/venv.sh"), version], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def child(python: str, args: list[str]) -> dict:
    out = subprocess.run([python, __file__, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"child {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def q(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[int(p * (len(s) - 1))]


def compare(args: argparse.Namespace) -> None:
    mbs = [int(m) for m in args.mb.split(",")]
    sizes = [int(c) for c in args.chunk_sizes.split(",")] if args.chunk_sizes else [0]
    exca = exca_python(args.exca_version)
    base = Path(tempfile.mkdtemp(prefix="casket-windows-", dir=args.dir))
    impls: list[tuple[str, str, Path, int]] = [("exca", exca, base / "exca", 0)]
    for c in sizes:
        impls.append((f"casket{'' if not c else f' chunk {c >> 10} KiB'}", sys.executable, base / f"casket-{c}", c))
    try:
        for name, python, folder, c in impls:
            child(python, ["--impl", name.split()[0], "--phase", "write", "--folder", str(folder), "--mb", args.mb,
                           "--chunk", str(c), "--layout", args.layout])
        results: dict[tuple[str, int], dict] = {}
        for mb in mbs:
            for r in range(args.rounds):
                for name, python, folder, _ in impls:
                    drop_cache(folder)
                    got = child(python, ["--impl", name.split()[0], "--phase", "windows", "--folder", str(folder),
                                         "--mb", str(mb), "--count", str(args.count), "--seed", str(r),
                                         "--layout", args.layout, "--spacing", str(args.spacing)])
                    drop_cache(folder)
                    got.update(child(python, ["--impl", name.split()[0], "--phase", "whole", "--folder", str(folder),
                                              "--mb", str(mb)]))
                    acc = results.setdefault((name, mb), {"lat": [], "first": [], "peak": [], "grow": [], "whole": []})
                    acc["lat"] += got["lat"]
                    acc["first"].append(got["first_get_ms"])
                    acc["peak"].append(got["peak_rss_mb"])
                    acc["grow"].append(got["rss_after_mb"] - got["rss_before_mb"])
                    acc["whole"].append(got["whole_s"])
        print(f"| array | reader | window median | window p90 | window mean | vs exca (median) | first cd[k] | "
              f"RSS growth over {args.count} windows | peak RSS | whole array cold |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for mb in mbs:
            ref = statistics.median(results[("exca", mb)]["lat"])
            for name, *_ in impls:
                a = results[(name, mb)]
                med = statistics.median(a["lat"])
                print(f"| {mb} MiB | {name} | {med * 1e3:.2f} ms | {q(a['lat'], 0.9) * 1e3:.2f} ms | "
                      f"{statistics.mean(a['lat']) * 1e3:.2f} ms | "
                      f"{med / ref:.2f}x | {statistics.median(a['first']):.1f} ms | "
                      f"{statistics.median(a['grow']):.1f} MB | {max(a['peak']):.0f} MB | "
                      f"{statistics.median(a['whole']) * 1e3:.0f} ms |")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--impl", choices=["casket", "exca"])
    ap.add_argument("--phase", choices=["write", "windows", "whole"])
    ap.add_argument("--folder", type=Path)
    ap.add_argument("--mb", default="64,256")
    ap.add_argument("--count", type=int, default=40, help="windows per child")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=0)
    ap.add_argument("--layout", choices=["time", "channels"], default="time",
                    help="time: shape (N, 64), window [t:t+512] (contiguous); channels: (64, N), window [:, t:t+512]")
    ap.add_argument("--spacing", type=int, default=4 << 20, help="bytes of time axis between two windows' slots")
    ap.add_argument("--chunk-sizes", default="", help="casket: one store per chunk size (bytes, comma-separated)")
    ap.add_argument("--exca-version", default="0.6.0")
    ap.add_argument("--dir", default=None, help="where the stores are written (default: the temp folder)")
    args = ap.parse_args()
    if args.compare:
        return compare(args)
    if args.phase == "write":
        write(args.impl, args.folder, [int(m) for m in args.mb.split(",")], args.chunk, args.layout)
        print("{}")
    elif args.phase == "windows":
        print(json.dumps(windows(args.impl, args.folder, int(args.mb), args.count, args.seed, args.layout,
                                 args.spacing)))
    else:
        print(json.dumps(whole(args.impl, args.folder, int(args.mb))))


if __name__ == "__main__":
    main()
