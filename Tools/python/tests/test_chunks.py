"""Chunk digests and verified window reads (docs/FORMAT.md 3.6, issue 13).

Real stores on disk; the Swift CLI (CASKET_BIN) writes and reads the same stores where it matters.
"""

import json
import os
import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import casket
from casket import verified
from casket.chunks import CHUNK_SIZE, ChunkDigester, parse_sidecar, sidecar_bytes
from casket.verified import ChunkCorruptError, ChunkedArray, SidecarMismatchWarning

BIN = os.environ.get("CASKET_BIN")
needs_cli = pytest.mark.skipif(not BIN or not os.access(BIN, os.X_OK), reason="set CASKET_BIN to run")
VECTORS = Path(__file__).resolve().parents[1] / "conformance" / "chunks.json"
MIN = 1 << 20  # chunks_min of the test stores: arrays of 1 MiB and more get a sidecar


def cli(*args, check=True):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, check=check)


@pytest.fixture
def chunked(tmp_path):
    return casket.init_store(tmp_path / "s", durability="none", chunks_min=MIN)


def fresh_read(store, h, dtype, shape):
    """A read as a new process makes it: no mapping, no chunk verified yet."""
    verified._MAPPINGS.clear()
    return casket.Store(store.root).read_array(h, dtype, shape)


def recording(rows=8, cols=70_000, seed=0):
    return np.random.default_rng(seed).random((rows, cols), dtype=np.float32)  # 2.24 MB, rows of 280 KB


def flip(path, offset):
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x40]))


# ------------------------------------------------------------------ the sidecar format


def payload(spec):
    """The conformance payloads: byte i is (i * 131 + 7) mod 251, of the given size."""
    return (np.arange(spec["size"], dtype=np.int64) * 131 + 7).astype(np.int64) % 251


def test_conformance_vectors_match_the_python_writer():
    """conformance/chunks.json holds the sidecar of each payload (sizes around the chunk boundary, one
    chunk, many): the Python digester and encoder produce those bytes exactly (Swift checks the same file)."""
    vectors = json.loads(VECTORS.read_text())
    assert vectors["chunk_size"] == CHUNK_SIZE
    sizes = [v["size"] for v in vectors["payloads"]]
    assert {1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5 * CHUNK_SIZE + 3} <= set(sizes)
    for v in vectors["payloads"]:
        data = payload(v).astype(np.uint8).tobytes()
        d = ChunkDigester()
        for i in range(0, len(data), 100_003):  # fed in pieces that do not line up with chunks
            d.update(data[i : i + 100_003])
        h = casket.hash_bytes(data)
        assert h == v["hash"]
        assert sidecar_bytes(h, len(data), d.finish()).hex() == v["sidecar"], v["size"]


def test_sidecar_refuses_damage_and_another_blob():
    data = bytes(range(256)) * 4096
    h = casket.hash_bytes(data)
    d = ChunkDigester()
    d.update(data)
    good = sidecar_bytes(h, len(data), d.finish())
    assert parse_sidecar(good, h, len(data)).digests.tolist() == d.digests
    with pytest.raises(casket.chunks.SidecarFlaw, match="truncated|holds"):
        parse_sidecar(good[:-9], h, len(data))
    with pytest.raises(casket.chunks.SidecarFlaw, match="belongs to blob"):
        parse_sidecar(good, "0" * 32, len(data))
    with pytest.raises(casket.chunks.SidecarFlaw, match="checksum"):
        parse_sidecar(good[:50] + bytes([good[50] ^ 1]) + good[51:], h, len(data))
    with pytest.raises(casket.chunks.SidecarFlaw, match="payload bytes"):
        parse_sidecar(good, h, len(data) + 1)


# ------------------------------------------------------------------ writers


def test_put_writes_the_sidecar_only_above_chunks_min(chunked):
    big, small = recording(), np.zeros(1000, np.float32)
    hb, hs = chunked.put_bytes(big), chunked.put_bytes(small)
    assert chunked.sidecar_path(hb).is_file() and not chunked.sidecar_path(hs).exists()
    assert oct(chunked.sidecar_path(hb).stat().st_mode & 0o777) == "0o444"
    table, why = chunked.load_chunks(hb, big.nbytes)
    assert why == "" and len(table.digests) == -(-big.nbytes // CHUNK_SIZE)


def test_stream_and_file_puts_write_the_same_sidecar(chunked, tmp_path):
    data = recording().tobytes()
    f = tmp_path / "f.bin"
    f.write_bytes(data)
    h = chunked.put_stream(iter([data[:12345], data[12345:]]))
    first = chunked.sidecar_path(h).read_bytes()
    os.unlink(chunked.sidecar_path(h))
    assert chunked.put_file(f) == h  # a dedup hit gives the blob its missing sidecar
    assert chunked.sidecar_path(h).read_bytes() == first


def test_lz4_blob_gets_digests_of_the_payload(tmp_path):
    s = casket.init_store(tmp_path / "z", compression="lz4", durability="none", chunks_min=MIN)
    data = np.zeros(3 << 20, np.uint8)
    h = s.put_bytes(data)
    assert s.find_blob(h)[1] is True  # stored compressed
    d = ChunkDigester()
    d.update(data)
    assert s.sidecar_path(h).read_bytes() == sidecar_bytes(h, data.nbytes, d.finish())
    arr = fresh_read(s, h, "uint8", [data.nbytes])
    assert isinstance(arr, np.ndarray) and not arr.any()  # a frame is read whole, into memory


# ------------------------------------------------------------------ readers


def test_small_arrays_stay_ndarrays_large_ones_are_proxies(chunked):
    small = np.arange(1000, dtype=np.float32)
    h = chunked.put_bytes(small)
    arr = fresh_read(chunked, h, small.dtype, small.shape)
    assert isinstance(arr, np.memmap) and np.array_equal(arr, small)
    big = recording()
    hb = chunked.put_bytes(big)
    proxy = fresh_read(chunked, hb, big.dtype, big.shape)
    assert isinstance(proxy, ChunkedArray) and not isinstance(proxy, np.ndarray)
    assert proxy.shape == big.shape and proxy.dtype == big.dtype and len(proxy) == 8
    assert proxy._blob.verified.count(1) == 0  # cd[k] read nothing


def test_window_verifies_only_its_chunks_once(chunked):
    big = np.random.default_rng(1).random((40_000, 16), dtype=np.float32)  # 2.56 MB, time-major
    h = chunked.put_bytes(big)
    arr = fresh_read(chunked, h, big.dtype, big.shape)
    w = arr[12_000:14_000]  # 128,000 bytes from byte 768,000
    assert isinstance(w, np.ndarray) and np.array_equal(w, big[12_000:14_000])
    assert [i for i, v in enumerate(arr._blob.verified) if v] == list(range(768_000 // CHUNK_SIZE, 896_000 // CHUNK_SIZE + 1))
    os.unlink(chunked.blob_path(h).with_name(h + ".chunks"))  # the record is per process: no re-read
    assert np.array_equal(arr[12_500:13_000], big[12_500:13_000])


def test_a_blob_changed_in_place_is_verified_again_in_the_same_process(chunked):
    big = np.random.default_rng(1).random((40_000, 16), dtype=np.float32)
    h = chunked.put_bytes(big)
    store = casket.Store(chunked.root)
    assert np.array_equal(store.read_array(h, big.dtype, big.shape)[12_000:14_000], big[12_000:14_000])
    time.sleep(0.05)  # past the file system's timestamp tick, so the change gets a new ctime
    flip(chunked.blob_path(h), 800_000)  # inside a chunk this process has verified
    with pytest.raises(ChunkCorruptError, match=f"chunk {800_000 // CHUNK_SIZE}"):
        store.read_array(h, big.dtype, big.shape)[12_000:14_000]


def test_channel_window_touches_one_chunk_per_row_not_the_rows_between(chunked):
    big = np.random.default_rng(2).random((4, 300_000), dtype=np.float32)  # rows of 1.2 MB
    h = chunked.put_bytes(big)
    arr = fresh_read(chunked, h, big.dtype, big.shape)
    assert np.array_equal(arr[:, 1000:1512], big[:, 1000:1512])
    touched = [i for i, v in enumerate(arr._blob.verified) if v]
    rows = [(r * 1_200_000 + 4000, r * 1_200_000 + 6048) for r in range(4)]  # the bytes of the window
    assert touched == sorted({c for a, b in rows for c in range(a // CHUNK_SIZE, (b - 1) // CHUNK_SIZE + 1)})
    assert len(touched) <= 8 < len(arr._blob.verified) == 74


def test_every_whole_read_path_verifies_everything(chunked):
    big = recording()
    h = chunked.put_bytes(big)
    for read in (np.asarray, lambda a: a.mean(), lambda a: a + 1, np.sum, lambda a: pickle.loads(pickle.dumps(a)),
                 lambda a: np.array(a, dtype=np.float64), lambda a: list(a)[-1], lambda a: a[[0, 7]]):
        arr = fresh_read(chunked, h, big.dtype, big.shape)
        out = read(arr)
        assert arr._blob.whole or all(arr._blob.verified), read
        assert np.allclose(np.asarray(out), np.asarray(read(big))), read
    assert type(pickle.loads(pickle.dumps(fresh_read(chunked, h, big.dtype, big.shape)))) is np.ndarray


def test_flipped_byte_inside_window_raises_outside_does_not(chunked):
    big = np.random.default_rng(3).random((40_000, 16), dtype=np.float32)
    h = chunked.put_bytes(big)
    flip(chunked.blob_path(h), 5 * CHUNK_SIZE + 17)  # chunk 5, in row 5,120
    arr = fresh_read(chunked, h, big.dtype, big.shape)
    assert np.array_equal(arr[:1000], big[:1000])  # chunk 0 only
    with pytest.raises(ChunkCorruptError) as err:
        arr[5000:5200]  # bytes 320,000 to 332,800: chunks 4 and 5
    e = err.value
    assert e.blob == h and e.chunk == 5 and e.expected != e.actual
    assert f"chunk 5" in str(e) and f"{e.expected:016x}" in str(e) and f"{e.actual:016x}" in str(e) and h in str(e)
    with pytest.raises(casket.BlobCorruptError):
        np.asarray(fresh_read(chunked, h, big.dtype, big.shape))
    with pytest.raises(casket.BlobCorruptError):
        fresh_read(chunked, h, big.dtype, big.shape).mean()


def test_wrong_sidecar_never_makes_a_sound_blob_unreadable(chunked):
    big = recording()
    h = chunked.put_bytes(big)
    side = chunked.sidecar_path(h)
    raw = bytearray(side.read_bytes())
    raw[40] ^= 1  # the first digest: the checksum now fails, the sidecar is unusable, the blob verified whole
    os.chmod(side, 0o644)
    side.write_bytes(raw)
    arr = fresh_read(chunked, h, big.dtype, big.shape)
    assert arr._blob.table is None and "checksum" in arr._blob.flaw
    assert np.array_equal(arr[:, :10], big[:, :10]) and arr._blob.whole
    # a self-consistent sidecar with a wrong digest: the chunk fails, the whole blob decides, a warning
    d = ChunkDigester()
    d.update(big.tobytes())
    digests = d.finish()
    digests[0] ^= 1
    side.write_bytes(sidecar_bytes(h, big.nbytes, digests))
    arr = fresh_read(chunked, h, big.dtype, big.shape)
    with pytest.warns(SidecarMismatchWarning, match="fsck replaces the sidecar"):
        assert np.array_equal(arr[0, :10], big[0, :10])


def test_truncated_sidecar_and_sidecar_of_another_blob_fall_back_to_whole(chunked):
    a, b = recording(seed=4), recording(seed=5)
    ha, hb = chunked.put_bytes(a), chunked.put_bytes(b)
    os.chmod(chunked.sidecar_path(ha), 0o644)
    chunked.sidecar_path(ha).write_bytes(chunked.sidecar_path(ha).read_bytes()[:100])
    os.unlink(chunked.sidecar_path(hb))
    os.link(chunked.sidecar_path(ha).with_name(ha + ".chunks"), chunked.sidecar_path(hb))
    for h, want in ((ha, a), (hb, b)):
        arr = fresh_read(chunked, h, want.dtype, want.shape)
        assert arr._blob.table is None
        assert np.array_equal(arr[1, 5:9], want[1, 5:9])
    flip(chunked.blob_path(ha), 1000)
    with pytest.raises(casket.BlobCorruptError, match="expected hash"):
        fresh_read(chunked, ha, a.dtype, a.shape)[0, 0]


def test_sidecar_symlink_is_not_followed(chunked, tmp_path):
    big = recording()
    h = chunked.put_bytes(big)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(chunked.sidecar_path(h).read_bytes())
    os.unlink(chunked.sidecar_path(h))
    os.symlink(elsewhere, chunked.sidecar_path(h))
    table, why = chunked.load_chunks(h, big.nbytes)
    assert table is None and "symbolic link" in why
    # the next put replaces the link itself, never writes through it
    chunked.put_bytes(big)
    assert chunked.sidecar_path(h).is_file() and not chunked.sidecar_path(h).is_symlink()
    assert elsewhere.read_bytes() == chunked.sidecar_path(h).read_bytes()


def test_window_does_not_fault_the_array_in(tmp_path):
    """RSS, in a fresh process: 5 windows of 128 KiB out of a 64 MiB array map a few MB, not 64 (each
    window maps the page-cache folios under it, about 2 MB here, as exca's reads do)."""
    s = casket.init_store(tmp_path / "s", durability="none")  # default settings
    cd = casket.CacheDict(s.root)
    with cd.write():
        cd["rec"] = np.random.default_rng(6).random((1 << 18, 64), dtype=np.float32)
    code = f"""
import sys; sys.path.insert(0, {str(Path(casket.__file__).parents[1])!r})
import casket, numpy as np
def rss():
    return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]) // 1024
cd = casket.CacheDict({str(s.root)!r}); a = cd["rec"]; before = rss()
for i in range(5):
    np.array(cd["rec"][i * 50000 : i * 50000 + 512])
print(type(a).__name__, rss() - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "ChunkedArray" and int(out[1]) < 16, out  # 64 if the array were faulted in


def test_old_blob_without_sidecar_is_verified_whole_then_fsck_adds_it(tmp_path):
    root = tmp_path / "s"
    s = casket.init_store(root, durability="none", chunks_min=MIN)
    big = recording()
    h = s.put_bytes(big)
    os.unlink(s.sidecar_path(h))  # as written before chunk digests existed
    arr = fresh_read(s, h, big.dtype, big.shape)
    assert arr._blob.table is None and np.array_equal(arr[2, :5], big[2, :5]) and arr._blob.whole
    if not BIN:
        pytest.skip("set CASKET_BIN to run fsck")
    out = json.loads(cli("fsck", "--store", root, "--add-chunks", "--json").stdout)
    assert out["clean"] and out["sidecars_added"] == 1
    assert fresh_read(s, h, big.dtype, big.shape)._blob.table is not None


# ------------------------------------------------------------------ Swift and Python on one store


@needs_cli
def test_swift_and_python_write_identical_sidecars_and_read_each_other(tmp_path):
    for size in (MIN, MIN + 1, 20 * CHUNK_SIZE + CHUNK_SIZE // 2, 32 * CHUNK_SIZE):
        data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
        f = tmp_path / f"p{size}"
        f.write_bytes(data)
        py = casket.init_store(tmp_path / f"py{size}", durability="none", chunks_min=MIN)
        sw = tmp_path / f"sw{size}"
        cli("init", sw, "--durability", "none", "--chunks-min", MIN)
        h = py.put_bytes(data)
        assert cli("blob", "put", "--store", sw, f).stdout.decode().split()[0] == h
        swift_store = casket.Store(sw)
        assert swift_store.sidecar_path(h).read_bytes() == py.sidecar_path(h).read_bytes()
        # each reads the other's store by window
        got = cli("blob", "get", "--store", py.root, h, "--range", f"{CHUNK_SIZE - 5}:{CHUNK_SIZE + 7}").stdout
        assert got == data[CHUNK_SIZE - 5 : CHUNK_SIZE + 7]
        arr = fresh_read(swift_store, h, "uint8", [size])
        assert isinstance(arr, ChunkedArray) and arr[size - 3 :].tobytes() == data[-3:]


@needs_cli
def test_cli_range_flipped_byte_inside_and_outside(tmp_path, chunked):
    data = np.random.default_rng(7).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    h = chunked.put_bytes(data)
    flip(chunked.blob_path(h), 9 * CHUNK_SIZE + 1)
    ok = cli("blob", "get", "--store", chunked.root, h, "--range", f"0:{CHUNK_SIZE}")
    assert ok.stdout == data[:CHUNK_SIZE]
    bad = cli("blob", "get", "--store", chunked.root, h, "--range", f"{9 * CHUNK_SIZE}:{9 * CHUNK_SIZE + 10}",
              "--json", check=False)
    assert bad.returncode == 1
    err = json.loads(bad.stdout)["error"]
    assert err["code"] == "corrupt" and "chunk 9" in err["message"] and h in err["message"]
    assert bad.stdout.count(b"XXH3-64") == 1 and b"its digest in" in bad.stdout
    whole = cli("blob", "get", "--store", chunked.root, h, check=False)
    assert whole.returncode == 1


@needs_cli
def test_cli_key_range_and_bad_ranges(tmp_path, chunked):
    cd = casket.CacheDict(chunked.root)
    big = recording()
    with cd.write():
        cd["rec"] = big
    raw = big.tobytes()
    assert cli("get", "--store", chunked.root, "rec", "--range", "100:200").stdout == raw[100:200]
    assert cli("get", "--store", chunked.root, "rec", "--range", f"{len(raw) - 4}:").stdout == raw[-4:]
    assert cli("get", "--store", chunked.root, "rec", "--range", ":3").stdout == raw[:3]
    out = tmp_path / "w.bin"
    cli("get", "--store", chunked.root, "rec", "--range", "5:9", "-o", out)
    assert out.read_bytes() == raw[5:9]
    for bad, why in (("9:5", b"invalid for '--range"), ("a:b", b"invalid for '--range"), ("5", b"invalid"),
                     ("-1:4", b"invalid"), (f"0:{len(raw) + 1}", b"beyond the end")):
        r = cli("get", "--store", chunked.root, "rec", f"--range={bad}", check=False)
        assert r.returncode == 2 and why in r.stderr, (bad, r.stderr)


@needs_cli
def test_gc_removes_sidecars_with_their_blobs_never_a_live_one(tmp_path):
    root = tmp_path / "s"
    s = casket.init_store(root, durability="none", chunks_min=MIN)
    cd = casket.CacheDict(root)
    with cd.write():
        cd["live"] = recording(seed=8)
        cd["dead"] = recording(seed=9)
    live, dead = cd.entry("live").value["blob"], cd.entry("dead").value["blob"]
    with cd.write():
        del cd["dead"]
    orphan = "ab" + "c" * 30
    (root / "blobs" / "ab").mkdir(exist_ok=True)
    (root / "blobs" / "ab" / (orphan + ".chunks")).write_bytes(b"left by a killed collector")
    young = "cd" + "e" * 30
    (root / "blobs" / "cd").mkdir(exist_ok=True)
    (root / "blobs" / "cd" / (young + ".chunks")).write_bytes(b"young")
    old = 1_000_000_000
    for p in (s.blob_path(dead), s.sidecar_path(dead), s.blob_path(live), s.sidecar_path(live),
              root / "blobs" / "ab" / (orphan + ".chunks")):
        os.utime(p, (old, old), follow_symlinks=False)
    dry = json.loads(cli("gc", "--store", root, "--grace", "1h", "--dry-run", "--json").stdout)
    assert dry["sidecars_removed"] == 2 and s.sidecar_path(dead).exists()
    rep = json.loads(cli("gc", "--store", root, "--grace", "1h", "--json").stdout)
    assert rep["swept"] == 1 and rep["sidecars_removed"] == 2 and rep["stray_files_removed"] == 0
    assert not s.sidecar_path(dead).exists() and not s.blob_path(dead).exists()
    assert s.sidecar_path(live).exists() and (root / "blobs" / "cd" / (young + ".chunks")).exists()
    assert not (root / "blobs" / "ab" / (orphan + ".chunks")).exists()
    assert json.loads(cli("fsck", "--store", root, "--json").stdout)["clean"]


@needs_cli
def test_fsck_quarantines_a_wrong_sidecar_and_replaces_it(tmp_path):
    root = tmp_path / "s"
    s = casket.init_store(root, durability="none", chunks_min=MIN)
    big = recording(seed=10)
    h = s.put_bytes(big)
    good = s.sidecar_path(h).read_bytes()
    d = ChunkDigester()
    d.update(big.tobytes())
    digests = d.finish()
    digests[3] ^= 0xFF
    os.chmod(s.sidecar_path(h), 0o644)
    s.sidecar_path(h).write_bytes(sidecar_bytes(h, big.nbytes, digests))
    r = cli("fsck", "--store", root, "--json", check=False)
    assert r.returncode == 5
    bad = json.loads(r.stdout)["bad_sidecars"]
    assert len(bad) == 1 and "do not match" in bad[0]["reason"] and bad[0]["quarantined_as"].startswith(str(root))
    assert not s.sidecar_path(h).exists()  # readers now verify the blob whole
    assert np.array_equal(fresh_read(s, h, big.dtype, big.shape)[0, :3], big[0, :3])
    r = cli("fsck", "--store", root, "--add-chunks", "--json")
    assert json.loads(r.stdout)["sidecars_added"] == 1 and s.sidecar_path(h).read_bytes() == good


def test_random_indexes_never_return_a_flipped_byte(chunked):
    """Random shapes, dtypes, basic indexes (negative steps, integers, reversed axes) over a blob with one
    flipped byte: a read whose selection holds the byte raises; any read that returns gives true values."""
    rng = np.random.default_rng(11)
    for trial in range(30):
        dtype = np.dtype(["<f4", ">i8", "<u2", "<c16"][trial % 4])
        dims = [int(x) for x in rng.integers(1, 40, size=rng.integers(1, 4))]
        dims[-1] = max(1, (2 << 20) // dtype.itemsize // int(np.prod(dims[:-1])))
        a = rng.random(dims).astype(dtype)
        h = chunked.put_bytes(a)
        off = int(rng.integers(0, a.nbytes))
        flip(chunked.blob_path(h), off)
        for _ in range(5):
            index = []
            for n in a.shape:
                kind = rng.integers(0, 4)
                if kind == 0:
                    index.append(int(rng.integers(-n, n)))
                elif kind == 1:
                    lo, hi = sorted(int(v) for v in rng.integers(-n, n + 1, 2))
                    index.append(slice(lo, hi, int(rng.choice([1, 2, 3, -1, -2]))))
                else:
                    index.append(slice(None, None, 1 if kind == 2 else -1))
            index = tuple(index)
            holds = (np.arange(a.size).reshape(a.shape)[index] == off // a.itemsize).any()
            arr = fresh_read(chunked, h, a.dtype, a.shape)
            assert isinstance(arr, ChunkedArray)
            try:
                got = np.asarray(arr[index])
            except casket.BlobCorruptError:
                continue
            assert not holds and np.array_equal(got, a[index]), (a.shape, a.dtype, index, off)
        os.unlink(chunked.sidecar_path(h))
        os.unlink(chunked.blob_path(h))


def test_corrupt_raw_form_gives_way_to_a_sound_lz4_twin(chunked, tmp_path):
    """FORMAT 3.5: an array read falls back to the other form when it is sound; the proxy too."""
    big = np.tile(np.arange(1024, dtype=np.float32), (8, 128))  # 4 MiB, compressible
    h = chunked.put_bytes(big)
    framed = casket.init_store(tmp_path / "z", compression="lz4", durability="none", chunks_min=MIN)
    assert framed.put_bytes(big) == h and framed.find_blob(h)[1]
    os.link(framed.blob_path(h, True), chunked.blob_path(h, True))
    flip(chunked.blob_path(h), 3 * CHUNK_SIZE + 5)
    arr = fresh_read(chunked, h, big.dtype, big.shape)
    assert isinstance(arr, ChunkedArray)
    assert np.array_equal(arr[:, 49_000:50_000], big[:, 49_000:50_000]) and np.array_equal(np.asarray(arr), big)
    os.unlink(chunked.blob_path(h, True))  # without the twin, the same read raises
    with pytest.raises(ChunkCorruptError, match="chunk 3 "):
        fresh_read(chunked, h, big.dtype, big.shape)[:, 49_000:50_000]  # holds byte 3 * 65536 + 5
