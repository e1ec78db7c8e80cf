"""The fused write path of a small array (issue 12, docs/PERFORMANCE.md 10, third round): a plain
C-contiguous array packed in a group-commit session skips the general encoder, the probe answers from the
records of the packs its writer sealed, full packs are sealed by a thread. Each test checks that the
shortcut gives what the long way gives, keeps exca's errors, or keeps the durability rules."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xxhash

import casket
from casket import cachedict as cachedict_mod
from casket import packs
from test_group_commit import KILLED
from test_small_values import ARRAYS as SMALL_ARRAYS

BIN = os.environ.get("CASKET_BIN")
HAS_BIN = bool(BIN) and os.access(BIN, os.X_OK)
PKG = str(Path(__file__).resolve().parents[1])

ARRAYS = {
    **SMALL_ARRAYS,  # "strided" is not contiguous: the general path
    "f2": np.arange(9, dtype=np.float16),
    "again": np.arange(512, dtype=np.float64),  # the payload of "f8": deduplicated in the open pack
    "big": np.zeros(70000, dtype=np.uint8),  # above pack_max: a blob file, the general path
}


def lines_without_ts(root: Path) -> list[bytes]:
    return [re.sub(rb'"ts":\d+', b'"ts":0', line) for p in sorted((root / "index").glob("*.jsonl"))
            for line in p.read_bytes().splitlines(True)]


def pack_files(root: Path, suffix: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((root / "packs").glob("*" + suffix))]


def records(root: Path) -> list[packs.PackRecord]:
    found = []
    for p in sorted((root / "packs").glob("*.pack")):
        fd = os.open(p, os.O_RDONLY)
        try:
            found += [r for r, _ in packs.scan_records(fd, os.fstat(fd).st_size)[0]]
        finally:
            os.close(fd)
    return found


def count_fast_puts(monkeypatch) -> list:
    calls = []
    real = casket.Store.put_small_array

    def counting(self, data, size):
        calls.append(size)
        return real(self, data, size)

    monkeypatch.setattr(casket.Store, "put_small_array", counting)
    return calls


def test_the_fast_and_the_general_path_write_the_same_lines_and_records(tmp_path, monkeypatch):
    """The same arrays through the fused path and through the general one (``_FAST_PUTS`` off) give the same
    index lines (but for ts), the same pack records byte for byte, the same pack index, and read back."""
    calls = count_fast_puts(monkeypatch)
    roots = {}
    for fast in (True, False):
        monkeypatch.setattr(cachedict_mod, "_FAST_PUTS", fast)
        root = roots[fast] = tmp_path / f"fast-{fast}"
        casket.init_store(root, durability="group", pack_max=65536)
        cd = casket.CacheDict(root)
        with cd.write():
            for key, arr in ARRAYS.items():
                cd[key] = arr
        if fast:
            # the first put opens the session's writers; then every packed contiguous array but the
            # strided one (and the large one) takes the fused path
            assert len(calls) == len(ARRAYS) - 3, calls
            calls.clear()
    assert calls == [], "the general path never asks put_small_array"
    assert lines_without_ts(roots[True]) == lines_without_ts(roots[False])
    assert pack_files(roots[True], ".pack") == pack_files(roots[False], ".pack")
    assert pack_files(roots[True], ".idx") == pack_files(roots[False], ".idx")
    assert len(records(roots[True])) == len(ARRAYS) - 2, "one record per payload: 'again' deduplicated"
    reader = casket.CacheDict(roots[True])
    for key, arr in ARRAYS.items():
        got = reader[key]
        assert got.dtype == arr.dtype and got.shape == arr.shape and np.array_equal(got, arr), key


def test_the_fast_path_keeps_excas_errors(grouped):
    """With the session's writer open (the fused path is the one asked), the key checks, the overwrite
    check and the dtype check raise what exca raises, and write nothing."""
    cd = casket.CacheDict(grouped)
    with cd.write():
        cd["first"] = np.zeros(100)
        cd["taken"] = np.ones(100)
        with pytest.raises(ValueError, match=r"Overwriting a key is currently not implemented \(key='taken'\)"):
            cd["taken"] = np.full(100, 2.0)
        with pytest.raises(TypeError, match=r"MemmapArray cannot store dtype object \(use Pickle\)"):
            cd["obj"] = np.array([1, "a", None], dtype=object)
        with pytest.raises(TypeError, match=r"MemmapArray cannot store dtype \[\('a', '<f8'\), \('b', '<i4'\)\]"):
            cd["struct"] = np.zeros(100, dtype=[("a", "f8"), ("b", "i4")])
        with pytest.raises(TypeError, match="Non-string keys are not allowed"):
            cd[3] = np.zeros(100)  # type: ignore[index]
        with pytest.raises(ValueError, match="keys must be non-empty strings"):
            cd[""] = np.zeros(100)
        with pytest.raises(ValueError, match="is not valid Unicode text"):
            cd["bad\udc80"] = np.zeros(100)
    reader = casket.CacheDict(grouped)
    assert sorted(reader.keys()) == ["first", "taken"]
    assert np.array_equal(reader["taken"], np.ones(100)), "the first value stays"
    assert len(records(grouped)) == 2, "no record of a refused value"


def count_index_searches(monkeypatch) -> list:
    searched: list = []
    real_position = packs.PackIndex.position
    monkeypatch.setattr(packs.PackIndex, "position", lambda self, key: searched.append(key) or real_position(self, key))
    return searched


def small_packs(tmp_path: Path) -> tuple:
    """A store of 64 KiB packs (15 records of 4 KiB), a CacheDict on it, and the first value to write."""
    root = tmp_path / "s"
    casket.init_store(root, durability="group", pack_max=65536, pack_size=65536)
    return root, casket.CacheDict(root), np.full(512, -1.0)


def fill_packs(cd, first: np.ndarray, count: int):
    """Writes ``first``, then ``count`` other 4 KiB arrays, in the open session; its pack writer once the
    packs sealed behind are sealed."""
    cd["first"] = first
    for i in range(count):
        cd[f"k{i}"] = np.full(512, float(i))
    cd.flush()
    return cd.store.session_pack_writer()


def test_a_writer_dedups_against_the_packs_it_sealed_without_searching_them(tmp_path, monkeypatch):
    """A payload put again after its pack was sealed (full) is found in the records its writer kept: no
    second record, and no search of a pack index. A pack of another writer is still searched."""
    searched = count_index_searches(monkeypatch)
    root, cd, first = small_packs(tmp_path)
    with cd.write():
        writer = fill_packs(cd, first, 60)
        assert len(writer.sealed) >= 3, "several packs sealed in the session"
        searched.clear()
        cd["first-again"] = first
        cd["k7-again"] = np.full(512, 7.0)
        assert searched == [], "the sealed packs' records were looked up, not searched"
    digest = xxhash.xxh3_128_hexdigest(first)
    assert sum(r.digest == digest for r in records(root)) == 1
    assert len(records(root)) == 61
    cd.store.pack_shelf()._probed = -1e9  # the probe looks at packs/ again (every 0.5 s)
    with cd.write():  # a new writer: the packs above are another writer's now, and are searched
        cd["first-third"] = first
    assert searched, "another writer's sealed packs are searched"
    assert sum(r.digest == digest for r in records(root)) == 1
    reader = casket.CacheDict(root)
    assert np.array_equal(reader["first-third"], first) and np.array_equal(reader["k7-again"], np.full(512, 7.0))
    assert len(list((root / "packs").glob("*.idx"))) == len(list((root / "packs").glob("*.pack")))


def test_a_retired_own_pack_is_not_deduplicated_against(tmp_path):
    """GC's notice on a pack this writer sealed is seen within the probe interval (FORMAT 3.9): the payload
    is written again instead of named in a pack that may go."""
    root, cd, first = small_packs(tmp_path)
    with cd.write():
        writer = fill_packs(cd, first, 20)
        ident = writer.sealed[-1][0]  # the first pack, holding "first"
        assert xxhash.xxh3_128_hexdigest(first) in writer.sealed[-1][1]
        (root / "packs" / f"{ident}.retired").write_bytes(b"")
        cd.store.pack_shelf()._probed = -1e9  # the probe interval has passed
        cd["first-again"] = first
    digest = xxhash.xxh3_128_hexdigest(first)
    assert sum(r.digest == digest for r in records(root)) == 2, "a copy outside the retired pack"


def test_a_failed_seal_behind_fails_the_batch_naming_its_records(tmp_path, monkeypatch):
    """A full pack is sealed by a thread; when its index cannot be published the next batch's flush raises
    that error, and none of that batch's lines is written."""
    root = tmp_path / "s"
    casket.init_store(root, durability="group", pack_max=65536, pack_size=65536)
    real_publish = packs._publish_index

    def failing_publish(*args, **kwargs):
        raise OSError(28, "No space left on device (injected into the seal)")

    cd = casket.CacheDict(root)
    with pytest.raises(OSError, match="injected into the seal"):
        with cd.write():
            cd["k0"] = np.zeros(512)
            monkeypatch.setattr(packs, "_publish_index", failing_publish)
            for i in range(1, 20):  # the first pack fills and is sealed behind
                cd[f"k{i}"] = np.full(512, float(i))
            cd.flush()
    monkeypatch.setattr(packs, "_publish_index", real_publish)
    assert [x for x in lines_without_ts(root) if b'"key"' in x] == [], "no line of the failed batch"
    assert len(casket.CacheDict(root)) == 0


def test_a_writer_killed_while_packs_are_sealed_behind_loses_no_committed_key(tmp_path):
    """SIGKILL of a writer whose packs (64 KiB) fill and are sealed behind every 15 records, with payloads it
    deduplicates against its sealed packs: every committed key reads back verified, fsck finds nothing."""
    root = tmp_path / "s"
    casket.init_store(root, durability="group", pack_max=65536, pack_size=65536)
    # 512 values repeated (deduplicated in sealed packs), committed every 25
    proc = subprocess.Popen([sys.executable, "-c", KILLED.format(pkg=PKG, value="np.full(512, i % 300, dtype=np.int64)"),
                             str(root)], stdout=subprocess.PIPE)
    seen = [proc.stdout.readline() for _ in range(14)]  # past 300 values: the repeats have begun
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    committed = [int(x) for x in (b"".join(seen) + out).decode().split()]
    assert committed and committed[-1] >= 300, committed
    reader = casket.CacheDict(root)
    for i in range(committed[-1] + 1):
        assert np.array_equal(reader[f"k{i}"], np.full(512, i % 300, dtype=np.int64)), i
    assert len({r.digest for r in records(root)}) == 300
    if HAS_BIN:
        fsck = subprocess.run([BIN, "fsck", "--store", str(root)], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck


@pytest.mark.usefixtures("seal_each_session")  # a writer a session: packs of other writers
def test_a_probe_of_many_sealed_packs_searches_one_table(tmp_path, monkeypatch):
    """Past PROBE_MERGE sealed packs of other writers, a probe's miss searches no pack index (one sorted
    table of their hashes says none holds it), a hit searches the one pack that does; a retired pack is
    still not answered from, and a pack GC removed is dropped from the table."""
    root = tmp_path / "s"
    casket.init_store(root, durability="group", pack_max=65536, pack_size=65536)
    cd = casket.CacheDict(root)
    count = packs.PROBE_MERGE + 4
    for s in range(count):  # one writer (and one sealed pack) a session
        with cd.write():
            for i in range(10):
                cd[f"s{s}-{i}"] = np.full(512, s * 100.0 + i)
    assert len(list((root / "packs").glob("*.idx"))) == count
    searched = count_index_searches(monkeypatch)
    shelf = cd.store.pack_shelf()
    shelf._probed = -1e9
    with cd.write():
        cd["first"] = np.zeros(3)
        searched.clear()
        cd["new"] = np.full(512, -5.0)
        assert searched == [], "a miss searched no pack index"
        assert shelf._probe_table is not None and len(shelf._probe_table.packs) == count
        cd["dup"] = np.full(512, 503.0)  # session 5's
        assert len(searched) == 1, "a hit searched the one pack that holds it"
    dup = xxhash.xxh3_128_hexdigest(np.full(512, 503.0))
    assert sum(r.digest == dup for r in records(root)) == 1
    holder = next(p for p in shelf._probe_table.packs if p.index.lookup(dup) is not None)
    (root / "packs" / f"{holder.id}.retired").write_bytes(b"")
    gone = next(p for p in shelf._probe_table.packs if p.index.lookup(xxhash.xxh3_128_hexdigest(np.full(512, 702.0))))
    for suffix in (".pack", ".idx"):  # as GC removes a pack whose every record is held elsewhere
        os.unlink(root / "packs" / f"{gone.id}{suffix}")
    shelf._probed = -1e9
    with cd.write():
        cd["dup-again"] = np.full(512, 503.0)
        cd["gone-again"] = np.full(512, 702.0)
    assert sum(r.digest == dup for r in records(root)) == 2, "a copy outside the retired pack"
    assert all(p.id != gone.id for p in shelf._probe_table.packs), "the table was made again without it"
    reader = casket.CacheDict(root)
    assert np.array_equal(reader["gone-again"], np.full(512, 702.0))
    assert np.array_equal(reader["dup-again"], np.full(512, 503.0))
