"""The Python side of the scale benchmark (Tools/bench/scale.sh with WRITER=python, docs/PERFORMANCE.md 11).

    .venv/bin/python Tools/python/bench/bench_scale.py write STORE N    set s/0..s/{N-1} in one write() block
    .venv/bin/python Tools/python/bench/bench_scale.py read STORE N     read them all back, in a new process

Each value is a distinct uint8 array of 200 to 1,000 bytes (the index in its first 8 bytes), the sizes
of the Swift writer's values.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import casket  # noqa: E402


def size(i: int) -> int:
    return 200 + (i * 7919) % 801


def main() -> None:
    mode, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cd = casket.CacheDict(folder=root)
    if mode == "write":
        noise = np.random.default_rng(0).integers(0, 256, size=1 << 20, dtype=np.uint8)
        with cd.write():
            for i in range(n):
                start = (i * 4099) % ((1 << 20) - 1000)
                value = noise[start : start + size(i)].copy()
                value[:8] = np.frombuffer(i.to_bytes(8, "little"), dtype=np.uint8)
                cd[f"s/{i}"] = value
        print(f"wrote {n}")
    else:
        total = 0
        for i in range(n):
            value = np.asarray(cd[f"s/{i}"])
            if value.size != size(i) or int.from_bytes(value[:8].tobytes(), "little") != i:
                sys.exit(f"wrong value for s/{i}")
            total += value.size
        print(f"read {n} keys, {total} bytes")


if __name__ == "__main__":
    main()
