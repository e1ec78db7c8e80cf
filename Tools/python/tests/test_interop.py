"""Optional: the Swift CLI and this client share one store. Set CASKET_BIN to the `casket` binary."""

import os
import subprocess

import numpy as np
import pytest

import casket

BIN = os.environ.get("CASKET_BIN")
pytestmark = pytest.mark.skipif(not BIN or not os.access(BIN, os.X_OK), reason="set CASKET_BIN to run")


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, check=True).stdout


def test_swift_init_python_reads_and_writes(tmp_path):
    root = tmp_path / "s"
    run("init", str(root), "--compression", "lz4")
    f = tmp_path / "f.bin"
    f.write_bytes(b"abc" * 100000)
    out = run("blob", "put", "--store", str(root), str(f)).decode().split()[0]
    s = casket.Store(root)
    assert s.get_bytes(out) == f.read_bytes() and s.put_file(f) == out
    cd = casket.CacheDict(root)
    with cd.write():
        cd["a"] = np.arange(50000.0)
    h = cd.entry("a").value["blob"]
    assert run("blob", "get", "--store", str(root), h) == np.arange(50000.0).tobytes()
    run("blob", "verify", "--store", str(root))


@pytest.mark.parametrize("size", [0, 1, 64, 65])
def test_both_writers_inline_by_one_rule(tmp_path, size):
    """FORMAT 6.3: with inline_max > 0, a payload of at most inline_max bytes (the empty one too) is inlined
    by the Swift CLI and by the Python client alike; a larger one becomes a blob."""
    root = tmp_path / "s"
    run("init", str(root), "--inline-max", "64", "--durability", "none")
    f = tmp_path / "f.bin"
    f.write_bytes(b"x" * size)
    run("set", "--store", str(root), "swift", str(f))
    cd = casket.CacheDict(root)
    with cd.write():
        cd["python"] = b"x" * size
    swift = casket.CacheDict(root).entry("swift").value
    python = casket.CacheDict(root).entry("python").value
    assert ("inline" in swift) == ("inline" in python) == (size <= 64), (swift, python)
    assert casket.CacheDict(root)["swift"] == b"x" * size
