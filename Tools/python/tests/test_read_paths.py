"""The read fast path of a packed raw array (``values.row_array``, ``PackShelf.read_raw``) against the general
path (the entry decoded, ``Store._array``, ``PackShelf.read_aligned``): the same arrays, of the same type and
flags, and on damaged records (a flipped payload byte, a wrong header, a truncated pack, a pack removed or
lost under the reader) the same answer or the same error, the fast path never answering on its own."""

import errno
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import casket
from casket import cachedict as cachedict_mod
from casket import packs

VALUES = {
    "f64": np.arange(512, dtype=np.float64),
    "i32-2d": np.arange(600, dtype=np.int32).reshape(20, 30),
    "c128": (np.arange(100) * 1j).astype(np.complex128),
    "u8": np.arange(300, dtype=np.uint8),
    "be-u2": np.arange(70, dtype=">u2"),
    "0d": np.array(2.5),
    "empty": np.zeros((3, 0)),
}


def fill(root: Path, values: dict, seal: bool = True) -> None:
    cd = casket.CacheDict(root)
    with cd.write():
        for key, value in values.items():
            cd[key] = value
    if seal:
        cd.close()  # the pack sealed now, not once its writer has been idle (casket.kept): these are about indexes


def outcome(cd: casket.CacheDict, key: str):
    """What a read gives: the array with everything a caller can see of it, or the error's type and message."""
    try:
        a = cd[key]
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return ("error", type(e), str(e))
    return ("array", type(a), a.dtype, a.shape, a.tobytes(), a.flags.writeable, a.flags.aligned, a.flags.c_contiguous,
            a.offset, a.mode, a.filename, type(a._mmap))


@pytest.fixture
def fast_answers(monkeypatch):
    """The answers read_raw gave (True: it read the payload; False: it sent the read to the general path)."""
    answers = []
    real = packs.PackShelf.read_raw

    def counting(self, digest, out, size):
        got = real(self, digest, out, size)
        answers.append(got)
        return got

    monkeypatch.setattr(packs.PackShelf, "read_raw", counting)
    return answers


def general(monkeypatch) -> None:
    """Every read through the general path: the fast path declines."""
    monkeypatch.setattr(cachedict_mod, "row_array", lambda store, row: None)


def test_fast_path_gives_the_arrays_of_the_general_path(grouped, fast_answers, monkeypatch):
    fill(grouped, VALUES)
    reader = casket.CacheDict(grouped)
    assert all(key in reader for key in VALUES), "asked first, as exca's callers do: the fast path stays"
    fast = {key: outcome(reader, key) for key in [*VALUES, *VALUES]}  # twice
    # the first read fills the pack's table through the general path (and makes its key's entry: that key
    # then keeps that path); every other non-empty array is read by the fast path, each time
    assert fast_answers == [True] * 5 * 2, fast_answers
    general(monkeypatch)
    slow = {key: outcome(casket.CacheDict(grouped), key) for key in VALUES}
    assert fast == slow
    for key, value in VALUES.items():
        kind, typ, dtype, shape, data, writeable, aligned = fast[key][:7]
        assert (kind, typ, dtype, shape, data) == ("array", np.memmap, value.dtype, value.shape, value.tobytes())
        assert not writeable and aligned, key


def test_keep_in_ram_and_exca_views_behave_alike_on_the_fast_path(grouped):
    fill(grouped, {"k": VALUES["f64"]})
    reader = casket.CacheDict(grouped, keep_in_ram=True)
    first = reader["k"]
    assert reader["k"] is first and reader._ram_data["k"] is first


def damage_flip_payload(root, record, pack):
    with open(pack, "r+b") as f:
        f.seek(record.offset + packs.HEADER_SIZE + 17)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x40]))


def damage_header(root, record, pack):
    with open(pack, "r+b") as f:
        f.seek(record.offset + 30)  # a byte of the stored length: the header no longer matches its entry
        f.write(b"\x01")


def damage_magic(root, record, pack):
    with open(pack, "r+b") as f:
        f.seek(record.offset)
        f.write(b"XPK1")


def damage_truncate(root, record, pack):
    os.truncate(pack, record.offset + packs.HEADER_SIZE + 100)


def damage_remove(root, record, pack):
    """GC's repack, in effect: the same records in a new pack, published, then the old one removed."""
    ident = pack.name[: -len(".pack")]
    for suffix in (".pack", ".idx"):
        shutil.copyfile(root / "packs" / (ident + suffix), root / "packs" / (ident + "-r" + suffix))
        os.unlink(root / "packs" / (ident + suffix))


DAMAGES = [damage_flip_payload, damage_header, damage_magic, damage_truncate, damage_remove]


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
def test_a_damaged_record_gets_the_same_answer_on_both_paths(grouped, fast_answers, monkeypatch, damage):
    """Readers that have read the pack already (its table filled) meet the damage; the fast one sends the read
    to the general path, so both give the error that names the pack and the offset, or the same array."""
    values = {f"k{i}": np.full(400, i, dtype=np.float64) for i in range(4)}
    fill(grouped, values)
    (pack,) = (grouped / "packs").glob("*.pack")
    fd = os.open(pack, os.O_RDONLY)
    try:
        by_hash = {r.digest: r for r, _ in packs.scan_records(fd, os.fstat(fd).st_size)[0]}
    finally:
        os.close(fd)
    target = by_hash[casket.CacheDict(grouped).entry("k2").blobs[0][0]]
    fast_reader = casket.CacheDict(grouped)
    assert np.array_equal(fast_reader["k0"], values["k0"]) and np.array_equal(fast_reader["k1"], values["k1"])
    assert fast_answers == [True], "k1 was read by the fast path"
    with monkeypatch.context() as m:
        general(m)
        slow_reader = casket.CacheDict(grouped)
        assert np.array_equal(slow_reader["k0"], values["k0"])
    os.chmod(pack, 0o644)
    damage(grouped, target, pack)
    got_fast = outcome(fast_reader, "k2")
    with monkeypatch.context() as m:
        general(m)
        got_slow = outcome(slow_reader, "k2")
        got_new = outcome(casket.CacheDict(grouped), "k2")  # a reader that never saw the pack sound
    assert got_fast == got_slow
    if damage is damage_remove:
        assert got_fast[0] == "array" and got_fast[4] == values["k2"].tobytes()
        assert got_new == got_fast
    else:
        assert fast_answers[-1] is False, "the fast path declined: the general path named the damage"
        assert got_fast[:2] == ("error", casket.BlobCorruptError)
        assert f"pack '{pack}' is damaged at offset {target.offset} (blob {target.digest})" in got_fast[2], got_fast
        if damage is not damage_truncate:
            assert got_new == got_fast
    later_fast = outcome(fast_reader, "k3")
    with monkeypatch.context() as m:
        general(m)
        assert later_fast == outcome(slow_reader, "k3")
    if damage is damage_truncate:
        assert later_fast[:2] == ("error", casket.BlobCorruptError), "past the end of the pack"
    else:
        assert later_fast[4] == values["k3"].tobytes(), "the other records still read"


def one_pack_read(root: Path, count: int):
    """``count`` arrays in one pack, and a reader that has read the first (the pack's table filled)."""
    values = {f"k{i}": np.full(300, i, dtype=np.int64) for i in range(count)}
    fill(root, values)
    reader = casket.CacheDict(root)
    assert np.array_equal(reader["k0"], values["k0"])
    shelf = reader.store._shelf
    (old,) = shelf._packs.values()
    assert old.hashes and all(shelf._raw[h][0] is old for h in old.hashes)
    (pack,) = (root / "packs").glob("*.pack")
    return values, reader, shelf, old, pack


def test_a_pack_lost_under_the_reader_is_relisted_and_its_table_rows_dropped(grouped, fast_answers, monkeypatch):
    """A pack whose reads fail (ESTALE on NFS once GC removed it, FORMAT 3.9) is dropped, with its rows of the
    fast path's table, and the folder listed again: the repacked copy serves the read, and then the fast path."""
    values, reader, shelf, old, pack = one_pack_read(grouped, 5)
    damage_remove(grouped, None, pack)
    lost_inode = os.fstat(old.fd).st_ino  # the removed pack's (its number may be given to the copy's descriptor)
    real_preadv, real_pread = os.preadv, os.pread

    def stale(fd, *args, real):
        if os.fstat(fd).st_ino == lost_inode:
            raise OSError(errno.ESTALE, "Stale file handle")
        return real(fd, *args)

    monkeypatch.setattr(os, "preadv", lambda fd, *a: stale(fd, *a, real=real_preadv))
    monkeypatch.setattr(os, "pread", lambda fd, *a: stale(fd, *a, real=real_pread))
    assert np.array_equal(reader["k1"], values["k1"])
    assert fast_answers[-1] is False, "the fast path declined the lost pack's read"
    assert old.id not in shelf._packs and old.hashes is None
    assert not any(hit[0] is old for hit in shelf._raw.values()), "no row of the lost pack is left"
    assert np.array_equal(reader["k2"], values["k2"]), "the general path, which fills the copy's table"
    assert np.array_equal(reader["k3"], values["k3"]) and np.array_equal(reader["k4"], values["k4"])
    assert fast_answers[-2:] == [True, True], "the repacked copy's table serves the fast path"
    assert {hit[0].id for hit in shelf._raw.values()} == {old.id + "-r"}


def test_the_fast_path_declines_what_the_general_path_must_judge(grouped, fast_answers, monkeypatch):
    """A node whose dtype or size the decoder refuses, and a payload in no sealed pack's table (an open pack's
    record, a blob file), take the general path: the same errors, the same arrays."""
    fill(grouped, {"ok": VALUES["f64"]})
    h, size = casket.CacheDict(grouped).entry("ok").blobs[0]
    line = ('{"key":"%s","ts":%d,"value":{"#type":"MemmapArray","blob":"%s","size":%d,"dtype":"%s","shape":[%s]},'
            '"blobs":[["%s",%d]]}\n')
    with open(grouped / "index" / "hand-1-00000000.jsonl", "w") as f:
        f.write(line % ("bad-size", 5, h, size, "float64", "511", h, size))
        f.write(line % ("bad-dtype", 6, h, size, "O", "512", h, size))
        f.write(line % ("no-dtype", 7, h, size, "q9", "512", h, size))
        f.write(line % ("other-view", 8, h, size, "<i8", "8,64", h, size))
    casket.Store(grouped).put_bytes(np.arange(10.0).tobytes())  # a blob file, below pack_max
    loose_h = casket.Store(grouped).put_bytes(np.arange(10.0).tobytes())
    with open(grouped / "index" / "hand-1-00000000.jsonl", "a") as f:
        f.write(line % ("loose", 9, loose_h, 80, "float64", "10", loose_h, 80))
    keys = ["ok", "bad-size", "bad-dtype", "no-dtype", "other-view", "loose"]
    fast_reader = casket.CacheDict(grouped)
    fast = [outcome(fast_reader, k) for k in keys]
    assert fast_answers == [True, False], "asked only for other-view (fast) and loose (in no pack's table)"
    general(monkeypatch)
    assert fast == [outcome(casket.CacheDict(grouped), k) for k in keys]
    assert [o[0] for o in fast] == ["array", "error", "error", "error", "array", "array"]
    assert "array of dtype float64 and shape [511] needs 4088 bytes, payload 'size' is 4096" in fast[1][2]
    assert "cannot be loaded from raw bytes" in fast[2][2] and "unsupported dtype 'q9'" in fast[3][2]
    assert np.frombuffer(fast[4][4], dtype="<i8").tolist() == VALUES["f64"].view("<i8").tolist()


def test_a_pack_gone_from_the_listing_takes_its_table_rows_with_it(grouped, fast_answers):
    """A listing that no longer holds a pack (GC removed it after publishing its copy) drops it and its rows
    of the fast path's table, whose descriptor is closed: later reads find the copy."""
    values, reader, shelf, old, pack = one_pack_read(grouped, 4)
    damage_remove(grouped, None, pack)
    shelf.pack_ids()  # lists the folder again, as a miss does
    assert old.id not in shelf._packs and old.hashes is None
    assert not any(hit[0] is old for hit in shelf._raw.values())
    for key in ("k1", "k2", "k3"):
        assert np.array_equal(reader[key], values[key])
    assert fast_answers == [False, True, True], "k1 fills the copy's table, then the fast path"


def test_the_fast_path_reads_a_pack_its_writer_keeps_open(grouped, fast_answers, monkeypatch):
    """A writer keeps its pack open between sessions (casket.kept): a reader finds its records by scanning,
    and reads them through the fast path too, with the same answers as the general path."""
    fill(grouped, VALUES, seal=False)
    assert not list((grouped / "packs").glob("*.idx")), "the writer's pack is still open"
    reader = casket.CacheDict(grouped)
    assert all(key in reader for key in VALUES)
    fast = {key: outcome(reader, key) for key in [*VALUES, *VALUES]}
    assert fast_answers == [True] * 5 * 2, fast_answers  # as for a sealed pack: the first read scans it
    general(monkeypatch)
    slow = {key: outcome(casket.CacheDict(grouped), key) for key in VALUES}
    assert fast == slow
    casket.kept.end_kept()  # sealed now: the reader's rows of the scan give way to the index's
    assert {key: outcome(reader, key) for key in VALUES} == slow
