"""Full disk and kill -9 during a write: clear errors, nothing committed is lost (I3, I6)."""

import multiprocessing as mp
import os
import signal
import time

import numpy as np

import casket

from conftest import blob_files


def _fsize_limited_writer(root, queue):
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # files of at most 1 MiB
    cd = casket.CacheDict(root)
    try:
        with cd.write():
            cd["big"] = np.ones(1 << 18, dtype="float64")  # 2 MiB: EFBIG while writing the blob
        queue.put("no error")
    except casket.BlobError as e:
        queue.put(f"BlobError: {e}")
    except BaseException as e:  # pragma: no cover
        queue.put(f"wrong error {e!r}")


def test_full_disk_clear_error_and_nothing_lost(root):
    cd = casket.CacheDict(root)
    with cd.write():
        cd["small"] = np.arange(10)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_fsize_limited_writer, args=(str(root), q))
    p.start()
    msg = q.get(timeout=60)
    p.join(timeout=60)
    assert msg.startswith("BlobError") and str(root) in msg, msg
    assert os.listdir(root / "tmp") == []  # temp file removed
    assert len(blob_files(root)) == 1
    fresh = casket.CacheDict(root)
    assert sorted(fresh.keys()) == ["small"]
    np.testing.assert_array_equal(fresh["small"], np.arange(10))


def _slow_stream_writer(root):
    s = casket.Store(root)

    def chunks():
        yield b"a" * 100000
        os.kill(os.getpid(), signal.SIGSTOP)  # parent kills us here, mid-write
        yield b"b"

    s.put_stream(chunks())


def test_kill_9_mid_blob_write(root):
    cd = casket.CacheDict(root)
    with cd.write():
        cd["kept"] = {"x": np.arange(3)}
    ctx = mp.get_context("fork")
    p = ctx.Process(target=_slow_stream_writer, args=(str(root),))
    p.start()
    for _ in range(500):
        if os.listdir(root / "tmp"):
            break
        time.sleep(0.01)
    time.sleep(0.1)
    os.kill(p.pid, signal.SIGKILL)
    p.join(timeout=30)
    assert len(os.listdir(root / "tmp")) == 1  # debris for GC, never published
    assert len(blob_files(root)) == 1
    fresh = casket.CacheDict(root)
    np.testing.assert_array_equal(fresh["kept"]["x"], np.arange(3))
    with fresh.write():  # the store stays writable
        fresh["after"] = b"ok"
    assert casket.CacheDict(root)["after"] == b"ok"
