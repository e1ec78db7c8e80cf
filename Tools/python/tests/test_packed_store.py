"""Stores of version 2 with ``pack_max`` (docs/FORMAT.md 3.7): CacheDict write sessions pack small payloads,
large ones stay blob files, and both languages read what the other packed; a writer killed with SIGKILL
loses no key it reported."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xxhash

import casket
from casket import packs

BIN = os.environ.get("CASKET_BIN")
HAS_BIN = bool(BIN) and os.access(BIN, os.X_OK)
PKG = str(Path(__file__).resolve().parents[1])


def blob_files(root: Path) -> list:
    return [p for p in (root / "blobs").rglob("*") if p.is_file()]


def records(root: Path) -> list:
    shelf = packs.PackShelf(str(root / "packs"))
    out = []
    for ident, _ in shelf.pack_ids():
        fd = os.open(root / "packs" / (ident + ".pack"), os.O_RDONLY)
        try:
            out += packs.scan_records(fd, os.fstat(fd).st_size)[0]
        finally:
            os.close(fd)
    return out


@pytest.fixture
def packed(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    casket.init_store(root, durability="fsync", compression="lz4", pack_max=65536, pack_size=1 << 20)
    return root


@pytest.mark.usefixtures("seal_each_session")
def test_session_packs_small_values_and_seals_at_the_end(packed):
    arrays = {f"k{i}": np.arange(1000, dtype=np.float32) + i for i in range(300)}
    cd = casket.CacheDict(packed)
    with cd.write():
        for key, value in arrays.items():
            cd[key] = value
        cd["same"] = arrays["k5"]
        cd["large"] = np.arange(20000, dtype=np.float64)
        names = os.listdir(packed / "packs")
        assert any(n.endswith(".lease") for n in names), "the open pack's writer holds its lease"
        assert casket.CacheDict(packed)["k7"].tolist() == arrays["k7"].tolist(), "read from the open pack"
    names = sorted(os.listdir(packed / "packs"))
    assert not any(n.endswith(".lease") for n in names)
    assert {n.rsplit(".", 1)[0] for n in names if n.endswith(".pack")} == {
        n.rsplit(".", 1)[0] for n in names if n.endswith(".idx")}, "every pack is sealed"
    assert len([n for n in names if n.endswith(".pack")]) == 2, "4 KiB records: the 1 MiB pack_size is passed once"
    assert len(blob_files(packed)) == 1, "only the 160 KB array is a blob file"
    assert len(records(packed)) == 300, "'same' is a dedup against the session's own pack"
    fresh = casket.CacheDict(packed)
    for key, value in arrays.items():
        assert np.array_equal(fresh[key], value)
    assert np.array_equal(fresh["same"], arrays["k5"])
    with fresh.write():  # a second session dedups against the sealed packs: nothing appended
        for i in range(10):
            fresh[f"again{i}"] = arrays[f"k{i}"]
    assert len(records(packed)) == 300


@pytest.mark.skipif(not HAS_BIN, reason="CASKET_BIN is not set to the casket binary")
def test_swift_reads_python_packs_and_python_reads_swift_packs(packed, tmp_path):
    cd = casket.CacheDict(packed)
    with cd.write():
        cd["py"] = b"written by python" * 10
    out = subprocess.run([BIN, "get", "--store", str(packed), "py"], capture_output=True)
    assert out.returncode == 0 and out.stdout == b"written by python" * 10, out
    src = tmp_path / "swift.bin"
    src.write_bytes(b"written by swift" * 100)
    assert subprocess.run([BIN, "set", "--store", str(packed), "sw", str(src)], capture_output=True).returncode == 0
    assert not [p for p in blob_files(packed) if p.stat().st_size == 1600]
    fresh = casket.CacheDict(packed)
    assert fresh["sw"] == b"written by swift" * 100
    h = xxhash.xxh3_128_hexdigest(b"written by swift" * 100)
    assert fresh.store.get_bytes(h) == b"written by swift" * 100 and fresh.store.has_blob(h, 1600)
    fsck = subprocess.run([BIN, "fsck", "--store", str(packed)], capture_output=True, text=True)
    assert fsck.returncode == 0 and "2 pack records in 2 packs" in fsck.stdout, fsck


KILLED_WRITER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {pkg!r})
    import numpy as np, casket
    cd = casket.CacheDict(sys.argv[1])
    with cd.write():
        i = 0
        while True:
            cd[f"w{{i}}"] = np.full(500 + i % 300, i, dtype=np.int64)
            os.write(1, f"w{{i}}\\n".encode())  # reported only once the line is written and flushed
            i += 1
""")


def test_writer_killed_mid_session_loses_no_reported_key(packed):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER.format(pkg=PKG), str(packed)],
                            stdout=subprocess.PIPE)
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    keys = out.decode().split()
    assert len(keys) > 20
    assert not blob_files(packed), "every payload was packed"
    reader = casket.CacheDict(packed)
    for key in keys:
        i = int(key[1:])
        assert np.array_equal(reader[key], np.full(500 + i % 300, i, dtype=np.int64)), key
    shelf = packs.PackShelf(str(packed / "packs"))
    unsealed = [ident for ident, sealed in shelf.pack_ids() if not sealed]
    assert len(unsealed) == 1
    assert isinstance(shelf.seal(unsealed[0], durable=True), int), "its writer is dead: anyone may seal it"
    if HAS_BIN:
        fsck = subprocess.run([BIN, "fsck", "--store", str(packed)], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck


def test_version_1_store_never_packs(tmp_path):
    root = tmp_path / "v1"
    store = casket.init_store(root, durability="none", pack_max=0)
    assert store.config["version"] == 1 and store.pack_max == 0
    cd = casket.CacheDict(root)
    with cd.write():
        cd["k"] = b"small"
    assert os.listdir(root / "packs") == [] and len(blob_files(root)) == 1
    assert casket.init_store(tmp_path / "v2", pack_max=4096).config["version"] == 2


def test_damaged_record_is_an_error_unless_a_blob_file_holds_the_payload(packed):
    value = np.arange(300, dtype=np.float64)
    cd = casket.CacheDict(packed)
    with cd.write():
        cd["k"] = value
    (record,) = [r for r, _ in records(packed)]
    (pack,) = (packed / "packs").glob("*.pack")
    os.chmod(pack, 0o644)
    with open(pack, "r+b") as f:
        f.seek(record.offset + packs.HEADER_SIZE + 5)
        f.write(b"\xff")
    with pytest.raises(casket.BlobCorruptError, match=f"pack '{pack}' is damaged at offset 0"):
        casket.CacheDict(packed)["k"]
    with pytest.raises(casket.BlobCorruptError, match="is damaged at offset 0"):
        casket.Store(packed).get_bytes(record.digest, record.size)
    casket.Store(packed).put_bytes(value)  # outside a session: a blob file
    assert np.array_equal(casket.CacheDict(packed)["k"], value), "a sound blob file serves the read"
    assert casket.Store(packed).get_bytes(record.digest, record.size) == value.tobytes()


@pytest.mark.usefixtures("seal_each_session")
def test_a_forked_child_never_appends_to_its_parents_pack(packed):
    cd = casket.CacheDict(packed)
    with cd.write():
        cd["parent/0"] = np.full(400, -1, dtype=np.int64)
        pid = os.fork()
        if pid == 0:  # the child writes in the session it inherited, then dies without ending it
            try:
                for i in range(30):
                    cd[f"child/{i}"] = np.full(400, i, dtype=np.int64)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        for i in range(1, 30):
            cd[f"parent/{i}"] = np.full(400, -1 - i, dtype=np.int64)
    reader = casket.CacheDict(packed)
    for i in range(30):
        assert np.array_equal(reader[f"parent/{i}"], np.full(400, -1 - i, dtype=np.int64))
        assert np.array_equal(reader[f"child/{i}"], np.full(400, i, dtype=np.int64))
    shelf = packs.PackShelf(str(packed / "packs"))
    assert [sealed for _, sealed in shelf.pack_ids()].count(False) == 1, "the child's pack, its writer dead"
    if HAS_BIN:
        fsck = subprocess.run([BIN, "fsck", "--store", str(packed)], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck


def test_every_read_of_a_packed_payload_finds_it(packed, tmp_path):
    data = b"hello packs " * 30
    cd = casket.CacheDict(packed)
    with cd.write():
        cd["k"] = data
    h = xxhash.xxh3_128_hexdigest(data)
    store = casket.Store(packed)
    assert not blob_files(packed)
    assert store.has_blob(h, len(data)) and not store.has_blob(h, len(data) + 1)
    assert store.get_bytes(h) == data and store.get_bytes(h, len(data)) == data
    assert b"".join(store.iter_blob(h, len(data))) == data
    store.verify_blob(h)
    store.materialize(h, len(data), tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == data
    assert store.read_array(h, "uint8", [len(data)]).tobytes() == data
    with pytest.raises(casket.BlobMissingError):
        store.get_bytes(xxhash.xxh3_128_hexdigest(b"absent"))


READ_ALL_UNDER_A_LOW_LIMIT = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (40, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    sys.path.insert(0, {pkg!r})
    import numpy as np, casket
    cd = casket.CacheDict(sys.argv[1])
    assert all(np.array_equal(cd[f"k{{i}}"], np.full(5000, i)) for i in range(160))
    print("read", len(cd), resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 40)
""")


def test_a_reader_of_more_packs_than_its_soft_descriptor_limit_reads_them_all(tmp_path):
    root = tmp_path / "store"
    casket.init_store(root, durability="none", pack_max=65536, pack_size=65536)  # 40 KB values: 2 a pack
    cd = casket.CacheDict(root)
    with cd.write():
        for i in range(160):
            cd[f"k{i}"] = np.full(5000, i)
    assert len(packs.PackShelf(str(root / "packs")).pack_ids()) >= 80
    out = subprocess.run([sys.executable, "-c", READ_ALL_UNDER_A_LOW_LIMIT.format(pkg=PKG), str(root)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ["read", "160", "True"], out


@pytest.mark.parametrize("dtype", ["float64", "int32", "complex128", "uint8"])
def test_a_packed_array_reads_back_aligned_and_read_only(grouped, dtype):
    """A packed array is read into memory of its own, aligned for its dtype (a view at the record's offset
    in the read buffer would not be) and read-only, as every read gives it; from a new reader, each time."""
    values = {f"k{i}": (np.arange(300) * (i + 1)).astype(dtype) for i in range(5)}
    cd = casket.CacheDict(grouped)
    with cd.write():
        for key, value in values.items():
            cd[key] = value
    reader = casket.CacheDict(grouped)
    for _ in range(2):
        for key, value in values.items():
            got = reader[key]
            assert got.flags.aligned and not got.flags.writeable, key
            assert got.dtype == value.dtype and np.array_equal(got, value)
            with pytest.raises(ValueError, match="read-only"):
                got[0] = 1
