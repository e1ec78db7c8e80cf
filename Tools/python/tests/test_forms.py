"""Blob forms judged by soundness (FORMAT 3.4) and the one form rule (FORMAT 3.2), with real files;
the cross-language checks run the Swift CLI when CASKET_BIN is set."""

import json
import os
import subprocess

import numpy as np
import pytest
import xxhash

import casket
from casket.store import hash_bytes

BIN = os.environ.get("CASKET_BIN")
needs_bin = pytest.mark.skipif(not BIN or not os.access(BIN, os.X_OK), reason="set CASKET_BIN to run")


def compressible(n, salt=0):
    line = b"casket stores every payload once, under its XXH3-128 hash. "
    return bytes((line[i % len(line)] + (i // 4096 + salt) % 3) & 0xFF for i in range(n))


def rand(n, seed):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


PAYLOAD = compressible(3 << 20)


@pytest.fixture
def lz4store(tmp_path):
    s = casket.init_store(tmp_path / "z", compression="lz4", durability="none")
    h = s.put_bytes(PAYLOAD)
    raw, frame = s.blob_path(h), s.blob_path(h, True)
    assert frame.exists() and not raw.exists()
    return s, h, raw, frame


def test_wrong_size_raw_beside_sound_frame_reads_the_frame(lz4store):
    s, h, raw, frame = lz4store
    raw.write_bytes(PAYLOAD[:-1])
    assert s.get_bytes(h) == PAYLOAD
    assert s.get_bytes(h, expected_size=len(PAYLOAD)) == PAYLOAD
    assert s.find_blob(h) == (frame, True) and s.has_blob(h, len(PAYLOAD))
    arr = s.read_array(h, "uint8", [len(PAYLOAD)])
    assert arr.tobytes() == PAYLOAD
    assert "holds 3145727 bytes" in s.judge(h, False, len(PAYLOAD)).reason
    # a dedup hit on the frame removes the unsound raw file
    assert s.put_bytes(PAYLOAD) == h and not raw.exists() and frame.exists()


def test_corrupt_raw_of_right_size_falls_back_to_the_frame(lz4store):
    s, h, raw, frame = lz4store
    bad = bytearray(PAYLOAD)
    bad[12345] ^= 0xFF
    raw.write_bytes(bytes(bad))
    assert s.get_bytes(h) == PAYLOAD
    assert s.read_array(h, "uint8", [len(PAYLOAD)]).tobytes() == PAYLOAD
    with pytest.raises(casket.BlobCorruptError, match=f"its other form {frame} is sound"):
        s.verify_blob(h)


@pytest.mark.parametrize("cut", [4, 100, None])
def test_truncated_frame_is_replaced_by_the_next_writer(lz4store, cut):
    s, h, raw, frame = lz4store
    size = frame.stat().st_size
    os.truncate(frame, 15 if cut is None else size - cut)
    assert not s.has_blob(h, len(PAYLOAD)) and not s.has_blob(h)
    with pytest.raises(casket.BlobCorruptError, match="truncated"):
        s.get_bytes(h)
    cd = casket.CacheDict(s.root)
    with cd.write():
        cd["k"] = PAYLOAD
    assert frame.stat().st_size == size
    assert casket.CacheDict(s.root)["k"] == PAYLOAD


def test_frame_with_trailing_bytes_is_unsound(lz4store):
    s, h, raw, frame = lz4store
    size = frame.stat().st_size
    with open(frame, "ab") as f:
        f.write(b"\x04\x22\x4d\x18\0\0\0\0")
    j = s.judge(h, True, len(PAYLOAD))
    assert not j.sound and "8 bytes follow the end of its LZ4 frame" in j.reason
    f = s.root.parent / "payload"
    f.write_bytes(PAYLOAD)
    assert s.put_file(f) == h and frame.stat().st_size == size
    assert s.get_bytes(h) == PAYLOAD


def test_raw_symlink_is_not_a_form(tmp_path):
    s = casket.init_store(tmp_path / "s", durability="none")
    data = rand(100_000, 1)
    h = hash_bytes(data)
    foreign = tmp_path / "foreign"
    foreign.write_bytes(data)
    raw = s.blob_path(h)
    raw.parent.mkdir(exist_ok=True)
    os.symlink(foreign, raw)
    assert not s.has_blob(h) and s.judge(h, False, None).reason == "it is a symbolic link, not a regular file"
    with pytest.raises(casket.BlobCorruptError, match="symbolic link"):
        s.get_bytes(h)
    assert s.put_stream(iter([data])) == h
    assert not os.path.islink(raw) and raw.read_bytes() == data and foreign.read_bytes() == data


# ---------------------------------------------------------------- one form rule, both languages

FORM_CASES = {
    "compressible-only-after-1MiB": (rand(1 << 20, 2) + compressible(3 << 20), False),
    "compressible-after-256KiB": (rand(256 << 10, 3) + compressible(3 << 20), True),
    "compressible-first-MiB-only": (compressible(1 << 20) + rand(3 << 20, 4), True),
    "incompressible": (rand(2 << 20, 5), False),
    "tiny": (b"casket casket casket", False),
    "small-compressible": (compressible(5000), True),
}


@pytest.mark.parametrize("name", sorted(FORM_CASES))
def test_python_writers_pick_the_form_from_the_first_mib(tmp_path, name):
    data, compressed = FORM_CASES[name]
    h = hash_bytes(data)
    for i, put in enumerate(("bytes", "stream", "file")):
        s = casket.init_store(tmp_path / f"{put}", compression="lz4", durability="none")
        if put == "bytes":
            s.put_bytes(data)
        elif put == "stream":
            s.put_stream(iter([data[:100_000], data[100_000:]]))
        else:
            (tmp_path / "in").write_bytes(data)
            s.put_file(tmp_path / "in")
        assert s.find_blob(h)[1] is compressed, put


@needs_bin
def test_swift_and_python_pick_the_same_form(tmp_path):
    py = casket.init_store(tmp_path / "py", compression="lz4", durability="none")
    subprocess.run([BIN, "init", "--compression", "lz4", "--durability", "none", str(tmp_path / "sw")], check=True)
    sw = casket.Store(tmp_path / "sw")
    for name, (data, compressed) in sorted(FORM_CASES.items()):
        f = tmp_path / name
        f.write_bytes(data)
        h = py.put_file(f)
        out = subprocess.run(
            [BIN, "blob", "put", "--json", "--store", str(sw.root), str(f)], capture_output=True, check=True
        )
        assert json.loads(out.stdout)[0]["compressed"] is compressed, name
        assert py.find_blob(h)[1] is compressed, name
        assert sw.get_bytes(h) == data


@needs_bin
def test_swift_reads_past_a_wrong_size_raw_written_beside_a_python_frame(lz4store, tmp_path):
    s, h, raw, frame = lz4store
    raw.write_bytes(b"x" * 10)
    out = subprocess.run([BIN, "blob", "get", "--store", str(s.root), h], capture_output=True)
    assert out.returncode == 0 and out.stdout == PAYLOAD, out.stderr


@needs_bin
def test_wrong_size_raw_beside_a_swift_stream_frame_without_content_size(tmp_path):
    root = tmp_path / "sw"
    subprocess.run([BIN, "init", "--compression", "lz4", "--durability", "none", str(root)], check=True)
    (tmp_path / "in").write_bytes(PAYLOAD)
    with open(tmp_path / "in", "rb") as f:
        subprocess.run([BIN, "blob", "put", "--store", str(root), "-"], stdin=f, check=True, capture_output=True)
    s = casket.Store(root)
    h = hash_bytes(PAYLOAD)
    frame = s.blob_path(h, True)
    assert not frame.read_bytes()[4] & 0x08, "no content size in a stream's frame"
    s.blob_path(h).write_bytes(PAYLOAD[:1000])
    assert s.find_blob(h) == (frame, True)
    assert s.get_bytes(h) == PAYLOAD


def test_raw_fifo_is_not_a_form_and_never_blocks(lz4store):
    s, h, raw, frame = lz4store
    os.mkfifo(raw)
    assert s.get_bytes(h) == PAYLOAD
    assert s.read_array(h, "uint8", [len(PAYLOAD)]).tobytes() == PAYLOAD
    assert s.judge(h, False, None).reason == "it is a FIFO, not a regular file"
    os.unlink(frame)
    assert not s.has_blob(h)
    assert s.put_bytes(PAYLOAD) == h and s.get_bytes(h) == PAYLOAD


def test_frame_that_needs_a_dictionary_is_unsound(lz4store):
    s, h, raw, frame = lz4store
    b = bytearray(frame.read_bytes())
    b[4] |= 0x01  # dictionary id flag, and 4 bytes of id after the content size
    b[14:14] = b"\x01\x00\x00\x00"
    b[18] = (xxhash.xxh32_intdigest(bytes(b[4:18])) >> 8) & 0xFF
    os.chmod(frame, 0o644)
    frame.write_bytes(bytes(b))
    assert "needs a dictionary" in s.judge(h, True, len(PAYLOAD)).reason
    assert s.put_bytes(PAYLOAD) == h and s.get_bytes(h) == PAYLOAD
