"""Real concurrent processes writing the same content: exactly the unique bytes stay on disk (I2)."""

import json
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import casket

from conftest import blob_files

N_PROC = 8


def arrays():
    rng = np.random.default_rng(0)
    out = {f"rec/{i:04d}": rng.standard_normal((16, 1024)).astype("float32") for i in range(6)}
    out["rec/dup"] = out["rec/0000"].copy()  # same content under another key: one blob
    out["nested"] = {"emg": out["rec/0001"].copy(), "fs": 2000}
    return out


def _writer(root, barrier, queue):
    try:
        cd = casket.CacheDict(root)
        _ = set(cd.keys())  # like exca's _call_and_store: read keys, then compute
        barrier.wait(timeout=60)
        with cd.write():
            for k, v in arrays().items():
                cd[k] = v
        queue.put(None)
    except BaseException as e:  # pragma: no cover - reported to the parent
        queue.put(repr(e))


def _unique_payload_bytes():
    seen = {}
    for v in arrays().values():
        arr = v["emg"] if isinstance(v, dict) else v
        seen[casket.hash_bytes(arr)] = arr.nbytes
    return sum(seen.values()), len(seen)


@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_8_processes_same_arrays_leave_unique_bytes(tmp_path, compression):
    root = tmp_path / "store"
    casket.init_store(root, compression=compression, durability="fsync")
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(N_PROC)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(root), barrier, queue)) for _ in range(N_PROC)]
    for p in procs:
        p.start()
    errors = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert errors == [None] * N_PROC
    unique_bytes, unique_count = _unique_payload_bytes()
    files = blob_files(root)
    assert len(files) == unique_count
    assert os.listdir(root / "tmp") == []
    if compression == "none":
        on_disk = sum(f.stat().st_size for f in files)
        assert on_disk == unique_bytes  # inflation 1.00x
    # every writer left one sealed index file; every key reads back equal
    index_files = sorted(os.listdir(root / "index"))
    assert len(index_files) == N_PROC
    for name in index_files:
        lines = (root / "index" / name).read_bytes().split(b"\n")
        assert lines[-1] == b"" and json.loads(lines[-2])["sealed"] is True
        assert len(lines) - 2 == len(arrays())
    cd = casket.CacheDict(root)
    expected = arrays()
    assert sorted(cd.keys()) == sorted(expected)
    for k, v in expected.items():
        got = cd[k]
        if isinstance(v, dict):
            np.testing.assert_array_equal(got["emg"], v["emg"])
            assert got["fs"] == 2000
        else:
            np.testing.assert_array_equal(got, v)


def test_subprocesses_streaming_same_blob(tmp_path):
    """Separate interpreters publish the same 3 MiB stream at once: one blob, no temp files."""
    root = tmp_path / "store"
    casket.init_store(root)
    script = textwrap.dedent(
        """
        import sys, casket
        s = casket.Store(sys.argv[1])
        chunks = (bytes([i % 251]) * 65536 for i in range(48))
        print(s.put_stream(chunks))
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(casket.__file__)), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, env=env) for _ in range(6)]
    outs = [p.communicate(timeout=120)[0].decode().strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(outs)) == 1
    files = blob_files(root)
    assert [f.name for f in files] == [outs[0]] and files[0].stat().st_size == 48 * 65536
    assert os.listdir(root / "tmp") == []
    casket.Store(root).verify_blob(outs[0])
