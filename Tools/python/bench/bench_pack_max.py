"""Measures where packing stops paying, to choose the default ``pack_max`` (docs/PERFORMANCE.md 10).

For each payload size, writes COUNT distinct values in one write session and reads them all back from a new
reader, in a store without packs (``pack_max`` 0, loose blob files) and one with packs (``pack_max`` 1 MiB,
the greatest), both with durability ``group``; through the Python ``CacheDict`` (float64 arrays) and, when
the helper is given, through the Swift ``WriteSession`` (``casket-testhelper session-bench``). The two
stores are measured in turn, ROUNDS times, so that a drift of the machine favours neither; it prints the
median rates and the packed / loose ratios.

    .venv/bin/python Tools/python/bench/bench_pack_max.py [--helper .build/release/casket-testhelper]
        [--sizes 1024,4096,16384,65536,262144,1048576] [--rounds 3] [--bytes 67108864] [--count 2000]

COUNT is at most ``--count`` and at most ``--bytes`` / size. A payload must be below ``pack_max`` to be packed
and ``pack_max`` is at most 1 MiB, so the 1 MiB row writes payloads of 1 MiB - 8 bytes.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import casket  # noqa: E402
from roundtrip import write_then_read  # noqa: E402

PACKED = 1 << 20


def swift_run(helper: str, root: str, count: int, size: int) -> tuple[float, float]:
    out = subprocess.run([helper, "session-bench", root, str(count), str(size)], capture_output=True, text=True,
                         check=True)
    rates = json.loads(out.stdout.strip().splitlines()[-1])
    return float(rates["write_per_s"]), float(rates["read_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--helper")
    parser.add_argument("--sizes", default="1024,4096,16384,65536,262144,1048576")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bytes", type=int, default=64 << 20)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--dir", default="/var/tmp")
    args = parser.parse_args()
    print("side   size      count  loose write/s  packed write/s  ratio   loose read/s  packed read/s  ratio")
    for size in (int(s) for s in args.sizes.split(",")):
        size = min(size, PACKED - 8)
        count = max(1, min(args.count, args.bytes // size))
        arrays = [np.random.default_rng(i).random(size // 8) for i in range(count)]
        sides = ["python"] + (["swift"] if args.helper else [])
        rates: dict = {(side, packs): [] for side in sides for packs in (0, PACKED)}
        for _ in range(args.rounds):
            for side in sides:
                for packs in (0, PACKED):
                    d = tempfile.mkdtemp(dir=args.dir)
                    root = os.path.join(d, "s")
                    casket.init_store(root, durability="group", pack_max=packs)
                    if side == "python":
                        rates[(side, packs)].append(write_then_read(casket.CacheDict, root, arrays))
                    else:
                        rates[(side, packs)].append(swift_run(args.helper, root, count, size))
                    shutil.rmtree(d)
        for side in sides:
            lw, pw, lr, pr = (statistics.median(r[i] for r in rates[(side, packs)])
                              for i, packs in ((0, 0), (0, PACKED), (1, 0), (1, PACKED)))
            print(f"{side:6} {size:8} {count:6} {lw:13.0f} {pw:15.0f} {pw / lw:6.2f}x {lr:13.0f} {pr:14.0f} "
                  f"{pr / lr:6.2f}x", flush=True)


main()
