"""The Python client's hot path for small values (issue 12, docs/PERFORMANCE.md 10): a packed array's node
and line come from templates, pack records are written in runs, full batches are written behind the
session, readers look in the packs first, pack indexes are checked with numpy, and folders a process has
seen are not looked at again. Each test checks that the shortcut gives what the long way gives, or that
it recovers when the store changed under it."""

import json
import os
import shutil
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import xxhash

import casket
from casket import index as index_mod
from casket import packs
from conftest import count_index_writes, fail_fdatasync

BIN = os.environ.get("CASKET_BIN")
HAS_BIN = bool(BIN) and os.access(BIN, os.X_OK)


def set_lines(root: Path) -> list:
    return [line for p in sorted((root / "index").glob("*.jsonl")) for line in p.read_bytes().splitlines(True)
            if b'"key"' in line]


ARRAYS = {
    "f8": np.arange(512, dtype=np.float64),
    "i1-2d": np.arange(24, dtype=np.int8).reshape(4, 6),
    "strided": np.arange(100, dtype=np.int32)[::3],  # not contiguous: stored as its C-order copy
    "0-d": np.array(7.5),
    "bool": np.array([True, False, True]),
    "big-endian": np.arange(5, dtype=">f4"),
    "complex": np.arange(4, dtype=np.complex128) * 1j,
    "unicode": np.array(["a", "bcd"]),
    "datetime": np.array(["2024-01-01", "2025-06-30"], dtype="datetime64[D]"),
    'key "quoted" \u00e9\u2028': np.ones(3),
}


def test_packed_array_lines_are_the_bytes_json_dumps_writes(grouped):
    cd = casket.CacheDict(grouped)
    with cd.write():
        for key, arr in ARRAYS.items():
            cd[key] = arr
    lines = set_lines(grouped)
    assert len(lines) == len(ARRAYS)
    for line in lines:
        obj = json.loads(line)
        assert line == json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n", line
        node = obj["value"]
        assert list(node) == ["#type", "blob", "size", "dtype", "shape"], node
        assert obj["blobs"] == [[node["blob"], node["size"]]]
    reader = casket.CacheDict(grouped)
    for key, arr in ARRAYS.items():
        got = reader[key]
        assert got.dtype == arr.dtype and got.shape == arr.shape and np.array_equal(got, arr), key
    assert len(packs.PackShelf(str(grouped / "packs")).pack_ids()) == 1, "every payload went to the pack"


def test_the_fast_path_writes_what_the_encoder_writes(tmp_path):
    """The same arrays through the general encoder (a store without packs never takes the shortcut) give
    the same value trees, hashes and sizes."""
    loose = tmp_path / "loose"
    casket.init_store(loose, pack_max=0)
    packed = tmp_path / "packed"
    casket.init_store(packed, durability="group", pack_max=65536)
    for root in (loose, packed):
        cd = casket.CacheDict(root)
        with cd.write():
            for key, arr in ARRAYS.items():
                cd[key] = arr
    mine = {json.loads(x)["key"]: json.loads(x)["value"] for x in set_lines(packed)}
    theirs = {json.loads(x)["key"]: json.loads(x)["value"] for x in set_lines(loose)}
    assert mine == theirs


def test_a_session_reads_payloads_still_in_its_pack_buffer(grouped):
    """Records wait in memory until a flush; a read of a key just set, from the session's thread or another
    thread of the process, finds its payload all the same (the buffer is written first)."""
    cd = casket.CacheDict(grouped)
    with cd.write():
        cd["a"] = np.full(100, 3.0)
        writer = cd.store.session_pack_writer()
        assert writer is not None and writer._open.buffer, "the record is still in memory"
        seen = {}
        thread = threading.Thread(target=lambda: seen.update(a=np.array(cd["a"])))
        thread.start()
        thread.join()
        assert np.array_equal(seen["a"], np.full(100, 3.0)), "another thread reads it"
        cd["b"] = np.full(100, 4.0)
        assert np.array_equal(cd["b"], np.full(100, 4.0)), "the session's thread reads it"
    assert np.array_equal(casket.CacheDict(grouped)["b"], np.full(100, 4.0))


def test_a_failed_write_of_buffered_records_fails_the_commit(grouped, monkeypatch):
    """When the run of records cannot be written, the batch naming them is not committed: its error is
    raised, and no line names a record that is not in a pack."""
    cd = casket.CacheDict(grouped)
    real_write = os.write

    def failing_write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".pack"):
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    with pytest.raises(OSError, match="No space left"):
        with cd.write():
            cd["a"] = np.full(100, 1.0)
            monkeypatch.setattr(os, "write", failing_write)
            cd.flush()
    monkeypatch.setattr(os, "write", real_write)
    assert set_lines(grouped) == [], "no line of the failed batch"
    assert "a" not in casket.CacheDict(grouped)


def test_a_batch_written_behind_that_fails_is_raised_to_the_session(grouped, monkeypatch):
    monkeypatch.setattr(index_mod, "GROUP_COUNT", 10)
    monkeypatch.setattr(index_mod, "GROUP_SECONDS", 3600.0)
    cd = casket.CacheDict(grouped)
    with pytest.raises(casket.CasketError, match="group commit .* failed: .*Input/output error"):
        with cd.write():
            real_sync = fail_fdatasync(monkeypatch, ".jsonl", "Input/output error")
            for i in range(10):
                cd[f"k{i}"] = np.full(10, i)  # the tenth hands the batch to the thread that writes it
            cd.flush()  # waits for that thread, and raises what it met
    monkeypatch.setattr(os, "fdatasync", real_sync)


def _index_of(records: list, covered: int) -> bytearray:
    return bytearray(packs.encode_index(records, covered))


def _reseal(data: bytearray) -> bytes:
    body = bytes(data[:-8])
    return body + struct.pack("<Q", xxhash.xxh3_64_intdigest(body))


def _entry_at(data: bytearray, i: int) -> int:
    return packs.INDEX_HEADER + i * packs.ENTRY_SIZE


@pytest.mark.parametrize("damage, message", [
    ("order", "entry 2 is out of order"),
    ("range", "entry 1 is outside its fan-out range"),
    ("covered", "entry 3 lies outside the 41000 bytes it covers"),
    ("overflow", "entry 0 lies outside the 41000 bytes it covers"),
    ("form", "entry 2 lies outside the 41000 bytes it covers"),
    ("size", "entry 1 lies outside the 41000 bytes it covers"),
])
def test_a_damaged_index_entry_is_named_with_the_check_it_fails(tmp_path, damage, message):
    digests = ["10" + "00" * 15, "10" + "11" * 15, "10" + "22" * 15, "40" + "ab" * 15, "50" + "ab" * 15]
    records = [packs.PackRecord(d, packs.RAW, 100, 100, i * 141) for i, d in enumerate(digests)]
    data = _index_of(records, 41000)
    if damage == "order":  # below entry 1, in the same fan-out slot
        data[_entry_at(data, 2) + 1:_entry_at(data, 2) + 16] = bytes([0x05] * 15)
    elif damage == "range":
        data[_entry_at(data, 1)] = 0x11  # its first byte now belongs to another fan-out slot
    elif damage == "covered":
        struct.pack_into("<Q", data, _entry_at(data, 3) + 16, 40950)
    elif damage == "overflow":  # offset + 41 + stored wraps around 2**64: still outside
        struct.pack_into("<QQ", data, _entry_at(data, 0) + 16, (1 << 64) - 20, 10)
    elif damage == "form":
        data[_entry_at(data, 2) + 40] = 2
    elif damage == "size":
        struct.pack_into("<Q", data, _entry_at(data, 1) + 32, packs.MAXIMUM_SIZE + 1)
    path = tmp_path / "x.idx"
    path.write_bytes(_reseal(data))
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(casket.BlobCorruptError, match=f"pack index '{path}' is damaged: {message}$"):
            packs.PackIndex(fd, str(path))
    finally:
        os.close(fd)
    path.write_bytes(bytes(packs.encode_index(records, 41000)))
    fd = os.open(path, os.O_RDONLY)
    try:
        index = packs.PackIndex(fd, str(path))
        assert [index.lookup(d) for d in digests] == records, "the undamaged index is accepted and searched"
        index.close()
    finally:
        os.close(fd)


def _payloads_sharing_a_fanout(count: int) -> list:
    by_fan: dict = {}
    i = 0
    while True:
        data = b"payload %d " % i * 20
        fan = xxhash.xxh3_128_hexdigest(data)[:2]
        by_fan.setdefault(fan, []).append(data)
        if len(by_fan[fan]) == count:
            return by_fan[fan]
        i += 1


@pytest.mark.skipif(not HAS_BIN, reason="CASKET_BIN unset")
def test_a_fanout_folder_removed_after_gc_is_made_again(tmp_path):
    """A process does not make a fan-out folder it has seen again for each put; when the folder is gone
    (its blob collected by a real `casket gc`, then the folder removed) the next put makes it again."""
    root = tmp_path / "store"
    casket.init_store(root, durability="none", pack_max=0)  # loose blobs: a v1 store
    first, second = _payloads_sharing_a_fanout(2)
    fan = root / "blobs" / xxhash.xxh3_128_hexdigest(first)[:2]
    cd = casket.CacheDict(root)
    with cd.write():
        cd["a"] = first
    with cd.write():
        del cd["a"]
    gc = subprocess.run([BIN, "gc", "--store", str(root), "--grace", "0s", "--offline", "--json"],
                        capture_output=True, text=True)
    assert gc.returncode == 0, gc.stderr
    assert json.loads(gc.stdout)["swept"] == 1 and not any(fan.iterdir()), "the blob was collected"
    shutil.rmtree(fan)
    with cd.write():
        cd["b"] = second  # the same fan-out folder, gone: made again
        cd["c"] = first  # collected: written again, not taken for a dedup hit
    reader = casket.CacheDict(root)
    assert reader["b"] == second and reader["c"] == first
    assert sorted(p.name for p in fan.iterdir()) == sorted(xxhash.xxh3_128_hexdigest(x) for x in (first, second))


@pytest.mark.skipif(not HAS_BIN, reason="CASKET_BIN unset")
def test_a_packed_put_is_not_taken_for_a_loose_blob_gc_collected(tmp_path):
    """The dedup check of small puts keeps the listing of blobs/ for a moment: a loose blob it saw and that
    a real `casket gc` collected since is packed again, never taken as still there."""
    root = tmp_path / "store"
    casket.init_store(root, durability="group", pack_max=65536)
    payload = b"small payload " * 30
    store = casket.Store(root)
    h = store.put_bytes(payload)  # outside a session: a loose blob file
    cd = casket.CacheDict(root)
    with cd.write():
        cd["a"] = payload  # a dedup hit on the loose blob (freshened), not packed
    assert packs.PackShelf(str(root / "packs")).find(h) is None
    with cd.write():
        del cd["a"]
    gc = subprocess.run([BIN, "gc", "--store", str(root), "--grace", "0s", "--offline", "--json"],
                        capture_output=True, text=True)
    assert gc.returncode == 0, gc.stderr
    assert not (root / "blobs" / h[:2] / h).exists()
    with cd.write():
        cd["b"] = payload
    assert packs.PackShelf(str(root / "packs")).find(h) is not None, "packed again"
    assert casket.CacheDict(root)["b"] == payload


def test_a_batch_is_committed_by_the_payload_bytes_it_keeps(grouped, monkeypatch):
    """A batch keeps each line's payload for republishing (FORMAT 5.5 step 4): the bytes bound counts them,
    so two batches (one written behind, one filling) bound the memory, whatever the count of lines."""
    monkeypatch.setattr(index_mod, "GROUP_BYTES", 100_000)
    monkeypatch.setattr(index_mod, "GROUP_SECONDS", 3600.0)
    cd = casket.CacheDict(grouped)
    with cd.write():
        writes = count_index_writes(monkeypatch)
        for i in range(7):
            cd[f"k{i}"] = np.full(5000, i, dtype=np.float64)  # 40,000 bytes a payload: three reach the bound
    monkeypatch.undo()
    assert writes == [3, 3, 1], writes  # two batches by bytes, then the last line (the seal line comes later)
    reader = casket.CacheDict(grouped)
    assert all(np.array_equal(reader[f"k{i}"], np.full(5000, i, dtype=np.float64)) for i in range(7))
