"""The timed round trip the small-value benchmarks share: N arrays written in one ``write()`` block, then
read back (each summed) by a new instance. The class is given, so a benchmark can time another client
tree's ``CacheDict`` (bench_small_ab.py) or exca's."""
import time

import numpy as np


def write_then_read(cache_dict: type, root: str, arrays: list) -> tuple[float, float]:
    """Items per second written, then read back from a new ``cache_dict(folder=root)``."""
    cd = cache_dict(folder=root)
    t0 = time.perf_counter()
    with cd.write():
        for i, a in enumerate(arrays):
            cd[f"k{i}"] = a
    t1 = time.perf_counter()
    reader = cache_dict(folder=root)
    for i in range(len(arrays)):
        np.asarray(reader[f"k{i}"]).sum()
    t2 = time.perf_counter()
    return len(arrays) / (t1 - t0), len(arrays) / (t2 - t1)
