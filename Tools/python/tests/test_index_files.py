"""Which entries of index/ are index files (FORMAT 5.1): one rule, the same as the Swift CLI's.

Debris (a hidden name, a symlink, a folder, a FIFO) is reported once and never read. With CASKET_BIN
set, the same store is checked through the Swift CLI too: GC never sweeps a blob Python serves.
"""

import json
import os
import subprocess
import sys
import time
import warnings

import pytest

import casket
from casket.index import IndexDebrisWarning, IndexReader

BIN = os.environ.get("CASKET_BIN")
needs_bin = pytest.mark.skipif(not BIN or not os.access(BIN, os.X_OK), reason="set CASKET_BIN to run")


def line(obj):
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def tombstone(key, ts):
    return line({"key": key, "ts": ts, "deleted": True})


def setv(key, ts, tag):
    return line({"key": key, "ts": ts, "value": {"#type": "Json", "content": tag}, "blobs": []})


def store_with_value(root):
    cd = casket.CacheDict(root)
    with cd.write():
        cd["k"] = b"python serves this value " * 20
    return cd


def debris_of(root):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = IndexReader(casket.Store(root))
        r.refresh()
        r.refresh()  # a second refresh does not warn again
    return r, [str(w.message) for w in caught if issubclass(w.category, IndexDebrisWarning)]


def test_hidden_index_file_with_a_tombstone_is_not_read(root):
    store_with_value(root)
    (root / "index" / ".k-1-00000000.jsonl").write_bytes(tombstone("k", time.time_ns() + 10**12))
    r, warned = debris_of(root)
    assert r.keys() == ["k"]
    assert len(warned) == 1 and ".k-1-00000000.jsonl' is a hidden file" in warned[0]


def test_dangling_symlink_is_debris(root):
    store_with_value(root)
    os.symlink("/nonexistent/x.jsonl", root / "index" / "x.jsonl")
    r, warned = debris_of(root)
    assert r.keys() == ["k"]
    assert warned == [f"'{root / 'index' / 'x.jsonl'}' is a symbolic link: not an index file, skipped"]


def test_symlink_to_a_real_index_file_elsewhere_is_not_followed(root, tmp_path):
    store_with_value(root)
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(tombstone("k", time.time_ns() + 10**12) + setv("foreign", 1, "x"))
    os.symlink(outside, root / "index" / "y.jsonl")
    r, warned = debris_of(root)
    assert sorted(r.keys()) == ["k"]
    assert len(warned) == 1 and "is a symbolic link" in warned[0]


def test_folder_named_jsonl_is_debris_not_an_error(root):
    store_with_value(root)
    (root / "index" / "x.jsonl").mkdir()
    (root / "index" / "z.jsonl.folding").mkdir()
    r, warned = debris_of(root)
    assert r.keys() == ["k"]
    assert sorted(w.split("'")[1].rsplit("/", 1)[1] for w in warned) == ["x.jsonl", "z.jsonl.folding"]
    assert all("is a directory" in w for w in warned)
    assert casket.CacheDict(root)["k"] == b"python serves this value " * 20


def test_fifo_named_jsonl_never_blocks(root):
    store_with_value(root)
    os.mkfifo(root / "index" / "x.jsonl")
    # In a child with a deadline: a reader that opens the FIFO blocks for ever.
    code = (
        "import sys, casket; cd = casket.CacheDict(sys.argv[1]); "
        "assert list(cd.keys()) == ['k'], list(cd.keys()); print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-W", "always", "-c", code, str(root)], capture_output=True, timeout=60, text=True,
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(casket.__file__))},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert "x.jsonl' is a FIFO: not an index file, skipped" in out.stderr


def test_fifo_opened_after_listing_is_refused(root):
    """A file replaced by a FIFO between listing and opening is never read (O_NONBLOCK + fstat)."""
    from casket.index import open_index_file

    os.mkfifo(root / "index" / "f.jsonl")
    assert open_index_file(root / "index" / "f.jsonl") is None
    os.symlink(root / "casket.json", root / "index" / "l.jsonl")
    assert open_index_file(root / "index" / "l.jsonl") is None


@needs_bin
def test_swift_gc_keeps_the_blob_python_serves_despite_a_hidden_tombstone(root):
    cd = store_with_value(root)
    blob = cd.entry("k").value["blob"]
    (root / "index" / ".hidden.jsonl").write_bytes(tombstone("k", time.time_ns() + 10**12))
    for dirpath, _dirs, files in os.walk(root / "blobs"):
        for f in files:
            os.utime(os.path.join(dirpath, f), (time.time() - 7200, time.time() - 7200))
    gc = subprocess.run([BIN, "gc", "--store", str(root), "--grace", "1h", "--json"], capture_output=True, text=True)
    assert gc.returncode == 0, gc.stderr
    report = json.loads(gc.stdout.strip().splitlines()[-1])
    assert report["swept"] == 0 and report["keys"] == 1
    assert any(".hidden.jsonl' is a hidden file" in d for d in report["index_debris"])
    got = subprocess.run([BIN, "get", "--store", str(root), "k"], capture_output=True)
    assert got.returncode == 0 and got.stdout == b"python serves this value " * 20
    assert casket.Store(root).has_blob(blob, len(b"python serves this value " * 20))
    assert casket.CacheDict(root)["k"] == b"python serves this value " * 20


NAMES = [
    "a.jsonl", ".a.jsonl", "b.jsonl.folding", ".b.jsonl.folding", "c.jsonl.tmp", "compact-1-a.jsonl.tmp",
    "d.JSONL", "e.jsonl~", ".nfs0001.jsonl", "f.jsonl.folding.bak", "g.json", "..jsonl", ".jsonl", "jsonl",
    "h .jsonl", "\u00fcn\u00ef.jsonl", "x.jsonl.jsonl",
]


@needs_bin
def test_swift_and_python_agree_on_which_files_are_index_files(root):
    for i, name in enumerate(NAMES):
        (root / "index" / name).write_bytes(setv(name, 100 + i, "v"))
    os.symlink(root / "index" / "a.jsonl", root / "index" / "link.jsonl")
    os.mkdir(root / "index" / "dir.jsonl")
    expected = sorted(["a.jsonl", "b.jsonl.folding", "h .jsonl", "\u00fcn\u00ef.jsonl", "x.jsonl.jsonl"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sorted(casket.CacheDict(root).keys()) == expected
    ls = subprocess.run([BIN, "ls", "--store", str(root), "--json"], capture_output=True, text=True)
    assert ls.returncode == 0, ls.stderr
    assert sorted(e["key"] for e in json.loads(ls.stdout)) == expected
    # Both name the same debris (Swift on stderr, Python in IndexReader.debris).
    r, _ = debris_of(root)
    for msg in r.debris:
        assert f"casket: warning: {msg}" in ls.stderr
    # Every other name but compaction's temp file and the .nfs file, plus the symlink and the folder.
    assert len(r.debris) == len(NAMES) - len(expected) - 2 + 2
    assert ls.stderr.count("not an index file, skipped") == len(r.debris)
