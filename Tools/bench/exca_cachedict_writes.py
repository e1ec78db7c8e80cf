"""Times exca's CacheDict writing N small arrays, the baseline of the keyed-cache benchmark.

Run inside a venv with exca installed (Tools/exca-fixtures/venv.sh 0.6.0 prints its python):

    python exca_cachedict_writes.py --count 20000 --size 4096 --folder /tmp/x

Prints one JSON line: {"tool": "exca", "count": N, "seconds": S, "items_per_second": R}.
"""

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from exca.cachedict import CacheDict


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--folder", required=True)
    args = parser.parse_args()
    folder = Path(args.folder)
    shutil.rmtree(folder, ignore_errors=True)
    rng = np.random.default_rng(7)
    values = [rng.integers(0, 256, size=args.size, dtype=np.uint8) for _ in range(args.count)]
    cache = CacheDict(folder=folder, keep_in_ram=False)
    start = time.perf_counter()
    with cache.write():
        for i, value in enumerate(values):
            cache[f"key{i}"] = value
    seconds = time.perf_counter() - start
    print(json.dumps({"tool": "exca", "count": args.count, "seconds": seconds,
                      "items_per_second": args.count / seconds}))


if __name__ == "__main__":
    main()
