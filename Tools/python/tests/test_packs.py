"""Pack files (docs/FORMAT.md 3.7-3.8): records, the sealed index, the writer and the reader's listing,
with real files and real processes: a writer killed with SIGKILL mid-record (Python and the Swift
helper), whose pack another process reads and seals; conformance vectors written by each side."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import xxhash

from casket import packs
from casket.store import BlobCorruptError

VECTORS = Path(__file__).resolve().parents[1] / "conformance" / "packs"
BIN = os.environ.get("CASKET_BIN")
HELPER = str(Path(BIN).parent / "casket-testhelper") if BIN else None
HAS_HELPER = HELPER is not None and os.access(HELPER, os.X_OK)
PKG = str(Path(__file__).resolve().parents[1])


def h(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def pack_dir(tmp_path: Path) -> str:
    folder = tmp_path / "packs"
    folder.mkdir()
    return str(folder)


def vector_names():
    return sorted(p.name for p in VECTORS.iterdir() if (p / "expected.json").is_file())


def test_vectors_cover_both_writers_and_every_tail():
    assert {"swift-lz4", "python-lz4", "python-raw", "torn-tail", "torn-header", "zero-tail",
            "damaged-record"} <= set(vector_names())


@pytest.mark.parametrize("name", vector_names())
def test_vector_scans_seals_and_reads_identically(name, tmp_path):
    vector = VECTORS / name
    expected = json.loads((vector / "expected.json").read_text())
    pack = vector / (expected["pack"] + ".pack")
    fd = os.open(pack, os.O_RDONLY)
    try:
        found, covered = packs.scan_records(fd, os.fstat(fd).st_size, verify=True)
        got = [dict(r._asdict(), sound=flaw is None) for r, flaw in found]
        assert got == expected["records"]
        assert covered == expected["covered"]
        for r, flaw in found:
            if flaw is None:
                assert h(packs.read_payload(fd, str(pack), r)) == r.digest
            else:
                with pytest.raises(BlobCorruptError, match=f"offset {r.offset}.*hash to"):
                    packs.read_payload(fd, str(pack), r)
    finally:
        os.close(fd)
    # another process seals a copy (no index, no lease): byte-identical to the index of the vector
    folder = pack_dir(tmp_path)
    shutil.copy(pack, folder)
    assert packs.PackShelf(folder).seal(expected["pack"], durable=False) == len(
        {r["digest"] for r in expected["records"] if r["sound"]})
    assert Path(folder, expected["pack"] + ".idx").read_bytes() == (vector / "expected.idx").read_bytes()
    shelf = packs.PackShelf(folder)
    for r in expected["records"]:
        if r["sound"]:
            assert shelf.find(r["digest"])[1].offset == r["offset"]
            assert h(shelf.read(r["digest"])) == r["digest"]
        else:
            assert shelf.find(r["digest"]) is None


def test_writer_round_trip_raw_lz4_empty_and_no_duplicate(tmp_path):
    folder = pack_dir(tmp_path)
    writer = packs.PackWriter(folder, "t-1-00000000", compress=True, durable=False)
    values = [b"", b"x", os.urandom(3000), b"ab" * 4000, b"z" * 64, b"q" * 63]
    records = [writer.append(v, h(v))[1] for v in values]
    assert [r.form for r in records] == [packs.RAW, packs.RAW, packs.RAW, packs.LZ4, packs.LZ4, packs.RAW]
    size = os.path.getsize(os.path.join(folder, writer.open_pack_id + ".pack"))
    assert writer.append(values[3], h(values[3]))[1] == records[3]
    assert os.path.getsize(os.path.join(folder, writer.open_pack_id + ".pack")) == size, "a duplicate is not written"
    reader = packs.PackShelf(folder)
    assert [reader.read(h(v)) for v in values] == values, "found in the open pack by scanning"
    ident = writer.open_pack_id
    writer.seal()
    assert sorted(os.listdir(folder)) == [ident + ".idx", ident + ".pack"], "the lease is released"
    assert reader.pack_ids() == [(ident, True)]
    assert [packs.PackShelf(folder).read(h(v)) for v in values] == values, "found through the index"
    assert reader.read(h(b"absent")) is None


def test_reader_sees_a_pack_created_after_its_listing(tmp_path):
    folder = pack_dir(tmp_path)
    reader = packs.PackShelf(folder)
    assert reader.read(h(b"later")) is None
    writer = packs.PackWriter(folder, "t-2-00000000", durable=False)
    writer.append(b"later", h(b"later"))
    assert reader.read(h(b"later")) == b"later"
    writer.append(b"more", h(b"more"))
    assert reader.read(h(b"more")) == b"more", "an open pack is scanned on from where the last scan stopped"
    writer.seal()


def test_writer_seals_when_full_and_starts_the_next_pack(tmp_path):
    folder = pack_dir(tmp_path)
    writer = packs.PackWriter(folder, "t-3-00000000", target_size=10_000, durable=False)
    values = [os.urandom(3000) for _ in range(9)]
    ids = [writer.append(v, h(v))[0] for v in values]
    writer.seal()
    # 3041 bytes a record: the fourth reaches 10,000, so packs of four
    assert [ids.count(i) for i in sorted(set(ids))] == [4, 4, 1]
    assert sorted(n for n in os.listdir(folder) if n.endswith(".idx")) == sorted(i + ".idx" for i in set(ids))
    shelf = packs.PackShelf(folder)
    assert all(shelf.read(h(v)) == v for v in values)


def test_a_damaged_header_is_never_a_record():
    record, stored = packs.encode_record(b"payload" * 10, h(b"payload" * 10), False, 0)
    header = packs.encode_header(record)
    assert packs.parse_header(header, 0) == record
    for i in range(packs.HEADER_SIZE):
        for bit in (0x01, 0x80):
            damaged = bytearray(header)
            damaged[i] ^= bit
            assert packs.parse_header(bytes(damaged), 0) is None, (i, bit)
    assert packs.parse_header(bytes(41), 0) is None, "zeros (a power loss) are no record"


def test_damaged_index_is_refused_with_its_path(tmp_path):
    folder = pack_dir(tmp_path)
    writer = packs.PackWriter(folder, "t-4-00000000", durable=False)
    writer.append(b"v", h(b"v"))
    ident = writer.open_pack_id
    writer.seal()
    path = os.path.join(folder, ident + ".idx")
    data = bytearray(Path(path).read_bytes())
    os.chmod(path, 0o644)
    data[packs.INDEX_HEADER + 3] ^= 1
    Path(path).write_bytes(bytes(data))
    with pytest.raises(BlobCorruptError, match=f"pack index '{path}' is damaged: its checksum does not match"):
        packs.PackShelf(folder).read(h(b"v"))
    Path(path).write_bytes(bytes(data[:100]))
    with pytest.raises(BlobCorruptError, match="is 100 bytes long"):
        packs.PackShelf(folder).read(h(b"v"))


def test_damaged_record_read_names_pack_and_offset(tmp_path):
    folder = pack_dir(tmp_path)
    writer = packs.PackWriter(folder, "t-5-00000000", durable=False)
    writer.append(b"first", h(b"first"))
    ident, record = writer.append(b"second payload", h(b"second payload"))
    writer.seal()
    path = os.path.join(folder, ident + ".pack")
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(record.offset + packs.HEADER_SIZE + 2)
        f.write(b"X")
    with pytest.raises(BlobCorruptError, match=f"pack '{path}' is damaged at offset {record.offset}.*hash to"):
        packs.PackShelf(folder).read(h(b"second payload"))
    assert packs.PackShelf(folder).read(h(b"first")) == b"first"


def test_read_aligned_checks_each_record_against_its_index_entry_into_an_aligned_buffer(tmp_path):
    """A read for an array checks the record against its index entry (header and check) and its hash, and
    returns the payload read straight into an aligned array; a damaged header or payload is named."""
    folder = pack_dir(tmp_path)
    writer = packs.PackWriter(folder, "t-6-00000000", durable=False)
    data = [bytes([i + 1]) * 4096 for i in range(3)]
    records = [writer.append(d, h(d))[1] for d in data]
    writer.seal()
    shelf = packs.PackShelf(folder)
    buf = shelf.read_aligned(h(data[0]), 4096)
    assert buf.tobytes() == data[0] and buf.ctypes.data % 16 == 0, "aligned for any dtype"
    assert shelf.read_aligned(h(data[0]), 4095) is None, "another size is another payload"
    path = os.path.join(folder, "t-6-00000000-1.pack")
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(records[1].offset + packs.HEADER_SIZE + 100)
        f.write(b"X")
        f.seek(records[2].offset + 30)  # the stored length: the header no longer matches its entry
        f.write(b"\x01")
    with pytest.raises(BlobCorruptError, match=f"offset {records[1].offset} .*hash to"):
        shelf.read_aligned(h(data[1]), 4096)
    with pytest.raises(BlobCorruptError, match=f"offset {records[2].offset} .*header is not the record's"):
        shelf.read_aligned(h(data[2]), 4096)
    assert bytes(shelf.read_aligned(h(data[0]), 4096)) == data[0]


def test_each_run_of_records_is_handed_to_the_disk_as_it_is_written(tmp_path, monkeypatch):
    """A durable writer starts the writeback of every run it writes (so the batch's flush finds it mostly
    written); the runs cover the pack from 0, in order. A writer without durability starts none."""
    if sys.platform.startswith("linux"):
        assert packs._SYNC_FILE_RANGE is not None
    runs = []
    real = packs.start_writeback
    monkeypatch.setattr(packs, "start_writeback", lambda fd, at, n: (runs.append((at, n)), real(fd, at, n)))
    folder = pack_dir(tmp_path)
    for durable in (True, False):
        writer = packs.PackWriter(folder, f"t-{int(durable)}-00000000", durable=durable)
        for i in range(600):  # about 2.4 MiB: three runs
            data = i.to_bytes(4, "little") * 1024
            writer.append(data, h(data))
        writer.seal()
        if durable:
            size = os.path.getsize(os.path.join(folder, "t-1-00000000-1.pack"))
            assert len(runs) == 3 and runs[0][0] == 0, runs
            assert all(a + n == b for (a, n), (b, _) in zip(runs, runs[1:])) and runs[-1][0] + runs[-1][1] == size
    assert len(runs) == 3, "none for a writer without durability"


TORN_WRITER = textwrap.dedent("""
    import os, sys, time, xxhash
    sys.path.insert(0, {pkg!r})
    from casket import packs
    folder = sys.argv[1]
    writer = packs.PackWriter(folder, "pywriter-1-00000000", durable=False)
    for i in range(3):
        data = b"%d" % i * (3000 + i)
        ident, _ = writer.append(data, xxhash.xxh3_128_hexdigest(data))
    data = b"t3" * 2500
    record, stored = packs.encode_record(data, xxhash.xxh3_128_hexdigest(data), False, 0)
    writer.drain()  # the three records, kept in memory until now, reach the pack before the torn one
    os.write(writer._open.fd, packs.encode_header(record) + stored[: len(stored) // 2])
    print("torn", ident, flush=True)
    time.sleep(600)
""")


def _seal_after_kill(folder: str, proc: subprocess.Popen, ident: str) -> None:
    shelf = packs.PackShelf(folder)
    assert shelf.seal(ident, durable=False) == "writer_alive", "a live writer's pack is never sealed under it"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert shelf.seal(ident, durable=False) == 3, "the torn fourth record is left out"
    assert shelf.seal(ident, durable=False) == "already_sealed"


def test_python_writer_killed_mid_record_is_sealed_by_another_process(tmp_path):
    folder = pack_dir(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", TORN_WRITER.format(pkg=PKG), folder], stdout=subprocess.PIPE,
                            text=True)
    try:
        _, ident = proc.stdout.readline().split()
        reader = packs.PackShelf(folder)
        assert reader.read(h(b"1" * 3001)) == b"1" * 3001, "an open pack is read while its writer runs"
        assert reader.find(h(b"t3" * 2500)) is None, "a torn record is never found"
        _seal_after_kill(folder, proc, ident)
    finally:
        proc.kill()
    fd = os.open(os.path.join(folder, ident + ".pack"), os.O_RDONLY)
    _, covered = packs.scan_records(fd, os.fstat(fd).st_size)
    os.close(fd)
    index = packs.PackIndex(os.open(os.path.join(folder, ident + ".idx"), os.O_RDONLY), ident)
    assert (index.count, index.covered) == (3, covered)
    assert os.path.getsize(os.path.join(folder, ident + ".pack")) > covered
    assert not os.path.exists(os.path.join(folder, ident + ".lease"))
    shelf = packs.PackShelf(folder)
    assert [shelf.read(h(b"%d" % i * (3000 + i))) for i in range(3)] == [b"%d" % i * (3000 + i) for i in range(3)]


@pytest.mark.skipif(not HAS_HELPER, reason="CASKET_BIN unset or casket-testhelper not built beside it")
def test_swift_writer_killed_mid_record_is_sealed_by_python(tmp_path):
    root = tmp_path / "store"
    subprocess.run([BIN, "init", str(root), "--durability", "none"], check=True, capture_output=True)
    proc = subprocess.Popen([HELPER, "pack-torn", str(root)], stdout=subprocess.PIPE, text=True)
    try:
        word, ident = proc.stdout.readline().split()
        assert word == "torn"
        _seal_after_kill(str(root / "packs"), proc, ident)
    finally:
        proc.kill()
    assert len(packs.PackShelf(str(root / "packs")).pack_ids()) == 1


LOOP_WRITER = textwrap.dedent("""
    import os, sys, xxhash
    sys.path.insert(0, {pkg!r})
    from casket import packs
    writer = packs.PackWriter(sys.argv[1], "pyloop-1-00000000", target_size=1 << 20, durable=False)
    i = 0
    while True:
        data = xxhash.xxh3_128_digest(b"%d" % i) * (200 + i % 300)
        ident, record = writer.append(data, xxhash.xxh3_128_hexdigest(data))
        writer.drain()  # appends are kept in memory until a drain, a flush or a full buffer
        os.write(1, ("%s %s\\n" % (ident, record.digest)).encode())
        i += 1
""")


@pytest.mark.parametrize("writer", ["python", "swift"])
def test_writer_killed_at_a_random_instant_loses_no_appended_record(tmp_path, writer):
    if writer == "swift":
        if not HAS_HELPER:
            pytest.skip("CASKET_BIN unset or casket-testhelper not built beside it")
        root = tmp_path / "store"
        subprocess.run([BIN, "init", str(root), "--durability", "none"], check=True, capture_output=True)
        folder, cmd = str(root / "packs"), [HELPER, "pack-loop", str(root), "3000"]
    else:
        folder = pack_dir(tmp_path)
        cmd = [sys.executable, "-c", LOOP_WRITER.format(pkg=PKG), folder]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    acknowledged = [line.split() for line in out.decode().splitlines() if line.count(" ") == 1]
    assert len({p for p, _ in acknowledged}) >= 2, "the writer sealed at least one full pack"
    shelf = packs.PackShelf(folder)
    for ident, sealed in shelf.pack_ids():
        if not sealed:
            assert isinstance(shelf.seal(ident, durable=False), int)
    fresh = packs.PackShelf(folder)
    assert all(sealed for _, sealed in fresh.pack_ids())
    for ident, digest in acknowledged:
        assert fresh.find(digest)[0] == ident
        assert h(fresh.read(digest)) == digest


def test_links_and_fifos_in_packs_are_never_read(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    writer = packs.PackWriter(str(outside), "evil-1-00000000", durable=False)
    writer.append(b"secret", h(b"secret"))
    ident = writer.open_pack_id
    writer.seal()
    folder = pack_dir(tmp_path)
    os.symlink(outside / (ident + ".pack"), os.path.join(folder, ident + ".pack"))
    os.symlink(outside / (ident + ".idx"), os.path.join(folder, ident + ".idx"))
    os.mkfifo(os.path.join(folder, "fifo-1-00000000-1.pack"))
    shelf = packs.PackShelf(folder)
    assert shelf.pack_ids() == [] and shelf.read(h(b"secret")) is None, "a link is not a pack; a FIFO never blocks"


def test_a_link_in_the_place_of_packs_is_refused(tmp_path):
    import casket

    root = tmp_path / "store"
    casket.init_store(root, pack_max=4096, durability="none")
    os.rmdir(root / "packs")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "packs")
    cd = casket.CacheDict(root)
    with pytest.raises(casket.StoreError, match="symbolic link") as err:
        with cd.write():
            cd["k"] = b"small"
    assert err.value.code == "unsafe_path"
    assert os.listdir(tmp_path / "elsewhere") == [], "nothing was written through the link"


def test_a_lease_lost_before_the_records_were_flushed_fails_the_next_sync(tmp_path, monkeypatch):
    """A writer that stalled past its lease's TTL (another may be sealing its pack) must not let a line
    name records of that pack it has not flushed: the next sync raises, naming the pack, once."""
    monkeypatch.setattr(packs, "LEASE_TTL", 0.2)
    folder = str(tmp_path)
    writer = packs.PackWriter(folder, "t-9-00000000", durable=True)
    first = b"a" * 4096
    ident, _ = writer.append(first, xxhash.xxh3_128_hexdigest(first))
    os.unlink(os.path.join(folder, ident + packs.LEASE_SUFFIX))  # taken over: the heartbeat finds it gone
    time.sleep(0.6)  # past the TTL: lost even if no beat ran meanwhile
    second = b"b" * 4096
    moved, _ = writer.append(second, xxhash.xxh3_128_hexdigest(second))
    assert moved != ident, "the next record goes to a new pack"
    with pytest.raises(OSError, match=rf"the lease of pack '.*{ident}\.pack' was lost before its records were"):
        writer.sync()
    writer.sync()  # reported once; the new pack's record is flushed
    writer.seal()
