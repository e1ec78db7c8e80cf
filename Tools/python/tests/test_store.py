import errno
import io
import json
import os
import stat
import time

import lz4.frame
import numpy as np
import pytest

import casket
from casket.store import LZ4_MAGIC, hash_bytes

from conftest import blob_files


# ---------------------------------------------------------------- casket.json


def test_init_writes_format_section_2(root):
    cfg = json.loads((root / "casket.json").read_text())
    assert cfg["format"] == "casket" and cfg["version"] == 1 and cfg["hash"] == "xxh3-128"
    assert cfg["compression"] == "none" and cfg["durability"] == "none" and cfg["inline_max"] == 0
    for sub in ("blobs", "tmp", "index", "gc", "quarantine", "claims", "packs"):
        assert (root / sub).is_dir()
    assert os.listdir(root / "tmp") == []
    raw = (root / "casket.json").read_bytes()
    assert raw.startswith(b'{"format":"casket","version":1,"hash":"xxh3-128","compression":"none",'
                          b'"durability":"none","inline_max":0,"created":"') and raw.endswith(b'Z"}\n')
    with pytest.raises(casket.StoreError):
        casket.init_store(root)


def test_open_refuses_non_store(tmp_path):
    with pytest.raises(casket.StoreError, match=str(tmp_path)):
        casket.Store(tmp_path)
    (tmp_path / "casket.json").write_text('{"format":"other","version":1}')
    with pytest.raises(casket.StoreError, match=str(tmp_path)):
        casket.Store(tmp_path)
    (tmp_path / "casket.json").write_text("not json")
    with pytest.raises(casket.StoreError, match=str(tmp_path)):
        casket.Store(tmp_path)


def test_open_refuses_newer_version(tmp_path):
    (tmp_path / "casket.json").write_text('{"format":"casket","version":3,"hash":"xxh3-128"}')
    with pytest.raises(casket.StoreError, match=rf"{tmp_path}.*version 3"):
        casket.Store(tmp_path)
    with pytest.raises(casket.StoreError):
        casket.CacheDict(tmp_path)


@pytest.mark.parametrize("field", ['"compression":"zstd"', '"durability":"maybe"', '"hash":"sha256"'])
def test_open_refuses_unknown_settings(tmp_path, field):
    (tmp_path / "casket.json").write_text('{"format":"casket","version":1,' + field + "}")
    with pytest.raises(casket.StoreError, match=str(tmp_path)):
        casket.Store(tmp_path)


def test_unknown_fields_ignored(tmp_path):
    (tmp_path / "casket.json").write_text(
        '{"format":"casket","version":1,"hash":"xxh3-128","compression":"lz4","durability":"fsync",'
        '"inline_max":0,"created":"2026-01-01T00:00:00Z","future_field":{"x":1}}'
    )
    s = casket.Store(tmp_path)
    assert s.compression == "lz4" and s.fsync


# ---------------------------------------------------------------- publish protocol


def test_put_bytes_publishes_raw_0444_no_temp(tmp_path):
    s = casket.init_store(tmp_path / "s", durability="fsync")
    data = b"hello casket" * 100
    h = s.put_bytes(data)
    assert h == hash_bytes(data)
    p = s.root / "blobs" / h[:2] / h
    assert p.read_bytes() == data
    assert stat.S_IMODE(p.stat().st_mode) == 0o444
    assert os.listdir(s.root / "tmp") == []
    assert s.get_bytes(h) == data


def test_dedup_one_blob_and_freshen(store, root):
    data = os.urandom(4096)
    h = store.put_bytes(data)
    p = root / "blobs" / h[:2] / h
    ino = p.stat().st_ino
    old = time.time() - 10 * 86400
    os.utime(p, (old, old))
    assert store.put_bytes(data) == h
    assert store.put_bytes(bytearray(data)) == h
    assert blob_files(root) == [p]
    assert p.stat().st_ino == ino  # not rewritten
    assert p.stat().st_mtime > old + 86400  # freshened
    assert os.listdir(root / "tmp") == []


def test_freshen_failure_rewrites_blob(store, root, monkeypatch):
    data = os.urandom(1000)
    h = store.put_bytes(data)
    p = root / "blobs" / h[:2] / h
    ino = p.stat().st_ino
    real = os.utime

    def utime(path, *a, **k):
        if not a and not k:  # a freshen: utimensat(path, NULL)
            raise PermissionError(errno.EACCES, "read-only file of another user", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, "utime", utime)
    assert store.put_bytes(data) == h
    assert p.stat().st_ino != ino  # replaced with plain rename
    assert p.read_bytes() == data and stat.S_IMODE(p.stat().st_mode) == 0o444
    assert os.listdir(root / "tmp") == []


def test_unsound_existing_blob_replaced(store, root):
    data = b"x" * 100
    h = hash_bytes(data)
    p = root / "blobs" / h[:2] / h
    p.parent.mkdir()
    p.write_bytes(b"")  # debris: empty
    assert store.put_bytes(data) == h
    assert p.read_bytes() == data


def test_eexist_in_publish_with_sound_blob(store, root, monkeypatch):
    # a concurrent writer publishes between our dedup check and our link
    data = os.urandom(3000)
    h = hash_bytes(data)
    monkeypatch.setattr(store, "_freshen_existing", lambda *_: False)
    real_link = os.link

    def link(src, dst):
        if not os.path.exists(dst):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(data)
            os.chmod(dst, 0o444)
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    assert store.put_bytes(data) == h
    assert [p.name for p in blob_files(root)] == [h]
    assert os.listdir(root / "tmp") == []


def test_link_unsupported_falls_back_to_rename(store, root, monkeypatch):
    def link(src, dst):
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(os, "link", link)
    data = os.urandom(500)
    h = store.put_bytes(data)
    assert (root / "blobs" / h[:2] / h).read_bytes() == data
    assert os.listdir(root / "tmp") == []


def test_temp_file_name(store, monkeypatch):
    names = []
    real_open = os.open

    def spy(path, flags, *a):
        if "/tmp/" in str(path) and str(path).endswith(".tmp"):
            names.append((os.path.basename(str(path)), flags))
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", spy)
    store.put_bytes(b"abc")
    (name, flags), = names
    host, pid, rnd, ext = name.rsplit(".", 3)
    assert pid == str(os.getpid()) and len(rnd) == 16 and ext == "tmp"
    assert all(c.isalnum() or c in "_-" for c in host)
    assert flags & os.O_CREAT and flags & os.O_EXCL


# ---------------------------------------------------------------- lz4


def _lz4_store(tmp_path):
    return casket.init_store(tmp_path / "z", compression="lz4", durability="none")


def test_lz4_form_when_it_saves_10_percent(tmp_path):
    s = _lz4_store(tmp_path)
    data = b"abcdefgh" * 10000
    h = s.put_bytes(data)
    p = s.root / "blobs" / h[:2] / (h + ".lz4")
    raw = p.read_bytes()
    assert raw[:4] == LZ4_MAGIC
    flg = raw[4]
    assert flg & 0x04, "content checksum flag"
    assert flg & 0x08 and int.from_bytes(raw[6:14], "little") == len(data), "content size"
    assert lz4.frame.decompress(raw) == data
    assert not (s.root / "blobs" / h[:2] / h).exists()
    assert s.get_bytes(h) == data
    assert s.has_blob(h, len(data)) and not s.has_blob(h, len(data) + 1)


def test_lz4_incompressible_stays_raw(tmp_path):
    s = _lz4_store(tmp_path)
    data = os.urandom(50000)
    h = s.put_bytes(data)
    assert (s.root / "blobs" / h[:2] / h).read_bytes() == data


def test_raw_and_lz4_writers_deduplicate(tmp_path):
    s = _lz4_store(tmp_path)
    data = b"0123" * 5000
    h = s.put_bytes(data)
    raw_store = casket.Store(s.root)
    raw_store.compression = "none"
    assert raw_store.put_bytes(data) == h
    assert len(blob_files(s.root)) == 1


def test_put_stream_and_file_lz4(tmp_path):
    s = _lz4_store(tmp_path)
    data = (b"stream!" * 300000)[: 2 * 1024 * 1024 + 17]
    h = s.put_stream(io.BytesIO(data))
    assert h == hash_bytes(data)
    p = s.root / "blobs" / h[:2] / (h + ".lz4")
    assert p.exists() and int.from_bytes(p.read_bytes()[6:14], "little") == len(data)
    f = tmp_path / "payload"
    f.write_bytes(data)
    assert s.put_file(f) == h
    assert len(blob_files(s.root)) == 1
    assert s.get_bytes(h) == data
    assert os.listdir(s.root / "tmp") == []


def test_put_stream_chunks_raw(store, root):
    chunks = [os.urandom(1 << 20) for _ in range(3)]
    h = store.put_stream(iter(chunks))
    assert h == hash_bytes(b"".join(chunks))
    assert store.put_stream(iter(chunks)) == h  # dedup after learning the hash
    assert len(blob_files(root)) == 1 and os.listdir(root / "tmp") == []
    out = io.BytesIO()
    assert store.copy_blob(h, out) == 3 << 20 and out.getvalue() == b"".join(chunks)


# ---------------------------------------------------------------- verification


def _flip(p, pos):
    os.chmod(p, 0o644)
    b = bytearray(p.read_bytes())
    b[pos] ^= 0x01
    p.write_bytes(bytes(b))


def test_flipped_byte_raw_names_file(store, root):
    data = os.urandom(10000)
    h = store.put_bytes(data)
    p = root / "blobs" / h[:2] / h
    _flip(p, 1234)
    with pytest.raises(casket.BlobCorruptError) as ei:
        store.get_bytes(h)
    msg = str(ei.value)
    assert str(p) in msg and h in msg and "actual" in msg
    with pytest.raises(casket.BlobCorruptError, match=str(p)):
        store.read_array(h, "uint8", [10000])


def test_flipped_byte_lz4_names_file(tmp_path):
    s = _lz4_store(tmp_path)
    data = b"abc" * 10000
    h = s.put_bytes(data)
    p = s.root / "blobs" / h[:2] / (h + ".lz4")
    _flip(p, 20)
    with pytest.raises(casket.BlobCorruptError, match=str(p)):
        s.get_bytes(h)


def test_missing_blob(store):
    with pytest.raises(casket.BlobMissingError):
        store.get_bytes("0" * 32)


def test_read_array_memmap_no_copy(store, root):
    a = np.arange(24, dtype=">f4").reshape(2, 3, 4)
    h = store.put_bytes(a)
    m = store.read_array(h, ">f4", [2, 3, 4])
    assert isinstance(m, np.memmap) and not m.flags.writeable
    assert str(m.filename) == str(root / "blobs" / h[:2] / h)
    np.testing.assert_array_equal(m, a)
    assert m.dtype == np.dtype(">f4")
