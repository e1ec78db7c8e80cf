#!/usr/bin/env python3
"""Rebuild the conformance vectors in ``vectors/`` (docs/FORMAT.md, both implementations).

    CASKET_BIN=.build/debug/casket .venv/bin/python Tools/python/conformance/make_vectors.py [--only NAME]

Each vector is a folder ``vectors/<name>/`` holding

- ``store/``: a small Casket store (a few KB), committed as plain files;
- ``expected.json``: what every reader must resolve from it, written from the *writer's own record*
  of what it wrote (the Swift CLI's ``set --json`` answers and the tombstone lines its ``rm`` wrote,
  the Python writer's entries, or the hand-written lines of the crafted vector), never from a reader.

Vectors written by the Swift CLI (``casket init/set/blob put/rm/compact``):

- ``swift-cli``: lz4 store; raw and lz4 blobs, the empty payload, one blob under two keys, a blob
  stored with ``blob put`` and no key, a tombstone, a re-add after ``rm``, an overwrite, a key with
  non-ASCII characters, tab, space and backslash; one index file per CLI call.
- ``swift-inline``: ``--inline-max 64``: inline payloads beside blobs.
- ``swift-packed``: ``--pack-max 1024`` (format version 2): payloads below it in packs (raw and LZ4
  records, the empty payload, one below the limit), one of exactly 1024 bytes as a blob file, a dedup
  against the pack, a tombstone.
- ``swift-compacted``: entries folded by ``casket compact`` (origins ``w``/``n``, a dropped
  tombstone), then new writes and a tombstone after the compaction.

Vectors written by the Python client (``casket.CacheDict``):

- ``python-values``: MemmapArray of many dtypes (incl. ``>f4``, ``>i8``, 0-d, a zero dimension,
  Fortran-ordered input), Auto trees (dicts, lists, tuples, floats), Json inline and as a blob,
  Pickle, Bytes, String, NumpyArray, a tombstone and a re-add; several write sessions.
- ``python-lz4-inline``: lz4 store with ``inline_max`` 64: LZ4 frames written by Python, inline
  arrays and bytes, raw blobs where lz4 does not pay.
- ``python-packed``: ``pack_max`` 4096, lz4: arrays, bytes and an Auto tree packed by two write
  sessions; the first session's pack has no index (removed, as a writer killed before sealing would leave
  it: readers scan it), the second is sealed; a large array as a blob file; a dedup, a tombstone.
- ``python-handlers``: values written through exca's own handlers (``ExcaHandler`` nodes of exca's
  ``AutoPickle``, with a shared ``.data`` file and a ``.pkl`` file), ``MneRawFif`` and
  ``MneRawBrainVision`` written from an mne ``RawArray``, a ``ContiguousMemmapArray``. Written in the
  exca 0.6.0 venv (``--only python-handlers`` with that venv's python); a reader without exca or mne
  cannot rebuild those values, so its ``canonical`` is checked where they are installed.

Hand-written lines (blobs through the Python store):

- ``crafted-winners``: equal timestamps decided by writer id bytes and line numbers, ``w``/``n``
  origins, a tombstone winning and losing a tie, a ``.jsonl.folding`` file, a ``.jsonl.tmp`` file that
  is not an index file, and malformed lines (float ``ts``, 2**63, bad hash, negative size, missing
  ``blobs``, not an object, invalid JSON, ``NaN``) that both readers must skip and report by line; a
  blank line and an unterminated last line that they must skip silently. Keys in NFC and NFD that
  are two keys (one of them deleted), and lines with a lone surrogate escape, which are malformed.

``expected.json``::

    {"vector": name, "writer": "swift-cli" | "python" | "crafted",
     "live": {key: {"ts", "origin": {"writer", "line"}, "blobs", "value", "size", "type",
                    "canonical", "get": {"size", "xxh3"} | null}},
     "tombstones": {key: {"ts", "origin"}},   # keys whose winner is a tombstone
     "absent": [key, ...],                    # keys that must not be found at all
     "problems": [[index file name, line], ...],
     "blob_files": {relative path: size on disk}}

``canonical`` is ``canon()`` of Tools/exca-fixtures/canon.py applied to the value written (what
``CacheDict[key]`` must return); ``get`` is the single payload that ``casket get`` must print (null
when the value has no payload or several). Timestamps and writer ids change with every generation;
that is fine because ``expected.json`` is generated with its store. The script then checks that the
Python reader and the Swift CLI both agree with what it wrote, and refuses to keep vectors otherwise.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import typing as tp
from pathlib import Path

HERE = Path(__file__).resolve().parent
PKG = HERE.parent
REPO = PKG.parent.parent
VECTORS = HERE / "vectors"
sys.path.insert(0, str(PKG))
sys.path.insert(0, str(REPO / "Tools" / "exca-fixtures"))

import numpy as np  # noqa: E402

import casket  # noqa: E402
from canon import canon  # noqa: E402


# --------------------------------------------------------------------------- shared helpers


def payload_nodes(tree: tp.Any) -> list[dict]:
    """Nodes carrying a payload (``blob`` or ``inline``), outside Json ``content``, tree order."""
    out: list[dict] = []

    def walk(v: tp.Any, in_json: bool) -> None:
        if isinstance(v, dict):
            if not in_json and ("blob" in v or "inline" in v) and "size" in v:
                out.append(v)
            is_json = v.get("#type") == "Json"
            for k, x in v.items():
                walk(x, in_json or (is_json and k == "content"))
        elif isinstance(v, list):
            for x in v:
                walk(x, in_json)

    walk(tree, False)
    return out


def value_size(tree: tp.Any, blobs: list) -> int:
    """A value's size (``casket ls``, ``show``): its blobs plus its inline payloads (FORMAT 6.3)."""
    inline = sum(n["size"] for n in payload_nodes(tree) if "blob" not in n and isinstance(n.get("inline"), str))
    return sum(s for _h, s in blobs) + inline


def expected_get(tree: tp.Any) -> tp.Optional[dict]:
    """What ``casket get`` prints: the single payload of the value (None: no payload or several)."""
    nodes = payload_nodes(tree)
    if len(nodes) != 1:
        return None
    n = nodes[0]
    if "blob" in n:
        return {"size": n["size"], "xxh3": n["blob"]}
    data = base64.b64decode(n["inline"])
    return {"size": len(data), "xxh3": casket.hash_bytes(data)}


def live_record(ts: int, writer: str, line: int, value: dict, blobs: list, canonical: tp.Any) -> dict:
    blobs = [[h, s] for h, s in blobs]
    return {
        "ts": ts,
        "origin": {"writer": writer, "line": line},
        "blobs": blobs,
        "value": value,
        "size": value_size(value, blobs),
        "type": value.get("#type", ""),
        "canonical": canonical,
        "get": expected_get(value),
    }


def blob_files(store: Path) -> dict[str, int]:
    out = {}
    for dirpath, _dirs, files in os.walk(store / "blobs"):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(store))] = p.stat().st_size
    return dict(sorted(out.items()))


def tidy(store: Path) -> None:
    """Leave what a git checkout has: no empty folders (tmp/, unused fan-out folders)."""
    for dirpath, dirs, files in os.walk(store, topdown=False):
        p = Path(dirpath)
        if p != store and not any(p.iterdir()):
            p.rmdir()
    assert not (store / "tmp").exists() or not any((store / "tmp").iterdir()), "temp files left behind"


class Cli:
    def __init__(self, binary: str, store: Path) -> None:
        self.bin = binary
        self.store = store

    def run(self, *args: str, stdin: tp.Optional[bytes] = None) -> bytes:
        r = subprocess.run([self.bin, *args], input=stdin, capture_output=True)
        if r.returncode != 0:
            raise SystemExit(f"casket {' '.join(args)} failed ({r.returncode}): {r.stderr.decode()}")
        return r.stdout

    def index_names(self) -> set[str]:
        d = self.store / "index"
        return set(os.listdir(d)) if d.exists() else set()

    def set(self, key: str, data: bytes) -> dict:
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            out = json.loads(self.run("set", "--store", str(self.store), "--json", key, f.name))
        assert out["key"] == key
        return out

    def rm(self, key: str) -> dict:
        """Delete; returns the tombstone the CLI wrote (ts and origin), read from its new index file."""
        before = self.index_names()
        out = json.loads(self.run("rm", "--store", str(self.store), "--json", key))
        assert out["deleted"] == [key], out
        (new,) = self.index_names() - before
        lines = (self.store / "index" / new).read_bytes().split(b"\n")
        for n, raw in enumerate(lines, 1):
            obj = json.loads(raw) if raw.strip() else {}
            if obj.get("deleted") is True and obj.get("key") == key:
                return {"ts": obj["ts"], "origin": {"writer": new[: -len(".jsonl")], "line": n}}
        raise SystemExit(f"no tombstone for {key!r} in {new}")

    def blob_put(self, data: bytes) -> str:
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            return self.run("blob", "put", "--store", str(self.store), f.name).split()[0].decode()


class Ops:
    """The generator's own record of what was written, in write order (one clock, one machine)."""

    def __init__(self) -> None:
        self.live: dict[str, dict] = {}
        self.tombstones: dict[str, dict] = {}
        self.absent: set[str] = set()
        self.last_ts = 0

    def _ts(self, ts: int) -> None:
        assert ts > self.last_ts, "timestamps must increase in write order for the record to hold"
        self.last_ts = ts

    def set(self, key: str, rec: dict) -> None:
        self._ts(rec["ts"])
        self.live[key] = rec
        self.tombstones.pop(key, None)
        self.absent.discard(key)

    def delete(self, key: str, tomb: dict) -> None:
        self._ts(tomb["ts"])
        self.live.pop(key, None)
        self.tombstones[key] = tomb

    def expected(self, name: str, writer: str, store: Path, problems: tp.Sequence = ()) -> dict:
        return {
            "vector": name,
            "writer": writer,
            "live": dict(sorted(self.live.items())),
            "tombstones": dict(sorted(self.tombstones.items())),
            "absent": sorted(self.absent),
            "problems": [list(p) for p in problems],
            "blob_files": blob_files(store),
        }


def swift_set(cli: Cli, ops: Ops, key: str, data: bytes) -> None:
    out = cli.set(key, data)
    ops.set(
        key,
        live_record(out["ts"], out["origin"]["writer"], out["origin"]["line"], out["value"], out["blobs"], canon(data)),
    )


def rnd(seed: int, n: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# --------------------------------------------------------------------------- Swift-written vectors


def make_swift_cli(out: Path, binary: str) -> dict:
    store = out / "store"
    cli = Cli(binary, store)
    cli.run("init", str(store), "--compression", "lz4", "--durability", "none")
    ops = Ops()
    text = b"casket conformance vector: a text that lz4 compresses well. " * 40
    swift_set(cli, ops, "text/hello", b"hello casket\n")  # small: lz4 does not pay, raw
    swift_set(cli, ops, "zeros/4k", bytes(4096))  # lz4
    swift_set(cli, ops, "random/3k", rnd(1, 3000))  # incompressible: raw
    swift_set(cli, ops, "dup/zeros", bytes(4096))  # same blob as zeros/4k
    swift_set(cli, ops, "text/long", text)  # lz4
    swift_set(cli, ops, "empty", b"")  # the empty payload, raw
    swift_set(cli, ops, "ключ/with space\tand\\back-slash 漢字", "données €".encode())
    cli.blob_put(rnd(2, 700))  # a blob no key references
    cli.blob_put(text)  # already stored: dedup hit
    ops.delete("text/hello", cli.rm("text/hello"))
    swift_set(cli, ops, "text/hello", b"hello again, casket\n")  # re-add after the tombstone
    ops.delete("random/3k", cli.rm("random/3k"))  # stays deleted
    swift_set(cli, ops, "over", b"first value")
    swift_set(cli, ops, "over", b"second value: the newest entry wins")
    ops.absent.add("never-written")
    return ops.expected("swift-cli", "swift-cli", store)


def make_swift_inline(out: Path, binary: str) -> dict:
    store = out / "store"
    cli = Cli(binary, store)
    cli.run("init", str(store), "--compression", "none", "--durability", "none", "--inline-max", "64")
    ops = Ops()
    swift_set(cli, ops, "small", b"inline payload")
    swift_set(cli, ops, "edge/64", rnd(3, 64))  # exactly inline_max: inline
    swift_set(cli, ops, "edge/65", rnd(4, 65))  # one more: a blob
    swift_set(cli, ops, "big", rnd(5, 2000))
    swift_set(cli, ops, "empty", b"")
    ops.delete("small", cli.rm("small"))
    ops.absent.add("never-written")
    return ops.expected("swift-inline", "swift-cli", store)


def make_swift_packed(out: Path, binary: str) -> dict:
    store = out / "store"
    cli = Cli(binary, store)
    cli.run("init", str(store), "--compression", "lz4", "--durability", "none", "--pack-max", "1024")
    ops = Ops()
    swift_set(cli, ops, "small", b"packed payload")
    swift_set(cli, ops, "text", b"compressible text " * 50)  # 900 bytes: an LZ4 record
    swift_set(cli, ops, "edge/1023", rnd(6, 1023))  # one below pack_max: packed
    swift_set(cli, ops, "edge/1024", rnd(7, 1024))  # pack_max itself: a blob file
    swift_set(cli, ops, "empty", b"")  # the empty payload, packed
    swift_set(cli, ops, "again", b"packed payload")  # found in the first pack: no record
    ops.delete("text", cli.rm("text"))
    ops.absent.add("never-written")
    return ops.expected("swift-packed", "swift-cli", store)


def make_swift_compacted(out: Path, binary: str) -> dict:
    store = out / "store"
    cli = Cli(binary, store)
    cli.run("init", str(store), "--compression", "none", "--durability", "none")
    ops = Ops()
    swift_set(cli, ops, "a", b"a: first")
    swift_set(cli, ops, "b", b"b: will be deleted before compaction")
    swift_set(cli, ops, "c", b"c: will be deleted after compaction")
    cli.rm("b")  # folded with every other line of b: compaction drops the tombstone
    ops.live.pop("b")
    ops.absent.add("b")
    swift_set(cli, ops, "a", b"a: second, the winner kept by compaction")
    swift_set(cli, ops, "z", rnd(6, 500))
    res = json.loads(cli.run("compact", "--store", str(store), "--idle", "0", "--json"))
    assert res["files_folded"] >= 5 and res["entries_written"] == 3, res
    swift_set(cli, ops, "d", b"d: written after the compaction")
    ops.delete("c", cli.rm("c"))
    ops.absent.add("never-written")
    names = sorted(os.listdir(store / "index"))
    assert any(n.startswith("compact-") for n in names), names
    return ops.expected("swift-compacted", "swift-cli", store)


# --------------------------------------------------------------------------- Python-written vectors


def py_set(cd: "casket.CacheDict", ops: Ops, key: str, value: tp.Any, canonical: tp.Any = None) -> None:
    cd[key] = value
    w = cd._writer
    wid, line = w.last_origin
    e = cd._reader.winner(key)  # the entry this writer just wrote (observed, not read back)
    assert e is not None and (e.writer, e.line) == (wid, line)
    ops.set(key, live_record(e.ts, wid, line, e.value, e.blobs, canon(value) if canonical is None else canonical))


def py_del(cd: "casket.CacheDict", ops: Ops, key: str) -> None:
    del cd[key]
    wid, line = cd._writer.last_origin
    e = cd._reader.winner(key)
    assert e is not None and e.deleted and (e.writer, e.line) == (wid, line)
    ops.delete(key, {"ts": e.ts, "origin": {"writer": wid, "line": line}})


def make_python_values(out: Path, binary: str) -> dict:
    store = out / "store"
    casket.init_store(store, compression="none", durability="none", inline_max=0)
    ops = Ops()
    rng = np.random.default_rng(7)
    cd = casket.CacheDict(store)
    with cd.write():  # session 1: arrays
        py_set(cd, ops, "arr/f32", rng.standard_normal((4, 8)).astype("float32"))
        py_set(cd, ops, "arr/f64", rng.standard_normal(10))
        py_set(cd, ops, "arr/i16", rng.integers(-3000, 3000, (3, 5)).astype("int16"))
        py_set(cd, ops, "arr/u8", rng.integers(0, 256, 33).astype("uint8"))
        py_set(cd, ops, "arr/bool", rng.integers(0, 2, (2, 3)).astype(bool))
        py_set(cd, ops, "arr/c64", (rng.standard_normal(6) + 1j * rng.standard_normal(6)).astype("complex64"))
        py_set(cd, ops, "arr/f16", rng.standard_normal(7).astype("float16"))
        py_set(cd, ops, "arr/>f4", rng.standard_normal((2, 6)).astype(">f4"))
        py_set(cd, ops, "arr/>i8", rng.integers(-(10**12), 10**12, 4).astype(">i8"))
        py_set(cd, ops, "arr/0d", np.array(3.25, dtype="float64"))
        py_set(cd, ops, "arr/empty", np.zeros((0, 4), dtype="float32"))  # the empty payload
        py_set(cd, ops, "arr/U2", np.array(["ab", "c", "de"]))
        fortran = np.asfortranarray(rng.standard_normal((3, 4)).astype("float32"))
        py_set(cd, ops, "arr/fortran", fortran)  # stored C-order, same values
        py_set(cd, ops, "arr/dup", np.array(ops_array := rng.standard_normal(5)))
        py_set(cd, ops, "arr/dup2", ops_array.copy())  # same blob under two keys
    with cd.write():  # session 2: trees and other types
        emg = rng.standard_normal((2, 16)).astype("float32")
        py_set(cd, ops, "auto/dict", {"emg": emg, "fs": 2000, "label": "left", "gain": 0.1, "ok": True, "none": None})
        py_set(
            cd,
            ops,
            "auto/list",
            [np.arange(4, dtype="int32"), {"x": np.ones(2)}, "s", 1.5, [1, 2]],
        )
        # tuples inside an Auto tree come back as lists (exca does the same)
        tup_value = (np.arange(3, dtype="uint8"), 7)
        py_set(cd, ops, "auto/tuple", tup_value, canonical=canon([tup_value[0], 7]))
        py_set(cd, ops, "json/inline", {"a": [1, 2, 3], "b": {"c": "d"}, "pi": 3.141592653589793, "third": 1 / 3,
                                          "floats": [1e16, 1.5e-7, -0.0, 1e300, 2.0, -17.25], "big": 2**62})
        big = {"items": [{"i": i, "name": f"item-{i}", "w": i / 7} for i in range(20)]}
        py_set(cd, ops, "json/blob", big)  # > 512 bytes of JSON: a blob of its text
        py_set(cd, ops, "json/scalar", "just a string")
        py_set(cd, ops, "json/tuple", (1, "two", 3.0), canonical=canon([1, "two", 3.0]))
        py_set(cd, ops, "pickle/set", {3, 1, 2})
        py_set(cd, ops, "pickle/npscalar", np.float32(2.5))
        py_set(cd, ops, "pickle/nan", float("nan"))
        py_set(cd, ops, "bytes", b"\x00\x01raw bytes\xff")
        py_set(cd, ops, "to-delete", np.arange(6, dtype="int64"))
        py_set(cd, ops, "to-readd", "old value")
    for cache_type, key, value in [
        ("String", "string", "une chaîne ✓"),
        ("NumpyArray", "npy", np.arange(12, dtype="<i4").reshape(3, 4)),
        ("Pickle", "pickle/forced", {"a": 1}),
    ]:
        typed = casket.CacheDict(store, cache_type=cache_type)
        with typed.write():
            py_set(typed, ops, key, value)
    cd2 = casket.CacheDict(store)
    with cd2.write():  # session: tombstone, re-add
        py_del(cd2, ops, "to-delete")
        py_del(cd2, ops, "to-readd")
        py_set(cd2, ops, "to-readd", {"new": np.full(3, 9, dtype="int8")})
    ops.absent.add("never-written")
    return ops.expected("python-values", "python", store)


def make_python_lz4_inline(out: Path, binary: str) -> dict:
    store = out / "store"
    casket.init_store(store, compression="lz4", durability="none", inline_max=64)
    ops = Ops()
    rng = np.random.default_rng(11)
    cd = casket.CacheDict(store)
    with cd.write():
        py_set(cd, ops, "zeros", np.zeros((32, 32), dtype="float32"))  # lz4 frame
        py_set(cd, ops, "ramp", np.tile(np.arange(64, dtype=">i2"), 8))  # lz4, big-endian
        py_set(cd, ops, "noise", rng.standard_normal(200))  # lz4 does not pay: raw
        py_set(cd, ops, "tiny", np.arange(8, dtype="int64"))  # 64 bytes: inline
        py_set(cd, ops, "tiny0d", np.array(7, dtype="uint16"))  # inline 0-d
        py_set(cd, ops, "bytes/small", b"inline bytes")
        py_set(cd, ops, "bytes/big", b"compressible " * 100)
        py_set(cd, ops, "pickle/small", {1, 2})
        py_set(cd, ops, "auto", {"a": np.arange(3, dtype="float32"), "b": np.zeros(1000, dtype="uint8"), "n": 1})
        py_set(cd, ops, "json/blob", {"text": "lorem ipsum " * 60})
    cd2 = casket.CacheDict(store)
    with cd2.write():
        py_del(cd2, ops, "noise")
    ops.absent.add("never-written")
    return ops.expected("python-lz4-inline", "python", store)


def make_python_packed(out: Path, binary: str) -> dict:
    store = out / "store"
    casket.init_store(store, compression="lz4", durability="none", pack_max=4096)
    ops = Ops()
    rng = np.random.default_rng(13)
    cd = casket.CacheDict(store)
    with cd.write():
        py_set(cd, ops, "noise", rng.standard_normal(300))  # 2400 bytes: a raw record
        py_set(cd, ops, "zeros", np.zeros((16, 16), dtype="float32"))  # an LZ4 record
        py_set(cd, ops, "big", rng.standard_normal(1000))  # 8000 bytes: a blob file
        py_set(cd, ops, "bytes", b"packed by python")
        py_set(cd, ops, "auto", {"a": np.arange(5, dtype="int16"), "b": np.ones(600, dtype="uint8"), "n": 2})
    first = sorted(p.name for p in (store / "packs").iterdir())
    # the first session's pack loses its index: readers must scan it as a writer's open pack
    for name in first:
        if name.endswith(".idx"):
            os.chmod(store / "packs" / name, 0o644)
            (store / "packs" / name).unlink()
    cd2 = casket.CacheDict(store)
    with cd2.write():
        py_set(cd2, ops, "second", np.arange(100, dtype=">f8"))  # a second pack, sealed
        py_set(cd2, ops, "dup", np.zeros((16, 16), dtype="float32"))  # found in the open pack
        py_del(cd2, ops, "bytes")
    ops.absent.add("never-written")
    return ops.expected("python-packed", "python", store)


def make_python_handlers(out: Path, binary: str) -> dict:
    """Values written through exca's own handlers (needs exca with DumpContext, mne and pybv: run this
    script with the python of ``Tools/exca-fixtures/venv.sh 0.6.0 all`` plus this client)."""
    import mne

    store = out / "store"
    casket.init_store(store, compression="none", durability="none", inline_max=0)
    ops = Ops()
    info = mne.create_info(["a", "b"], sfreq=32, ch_types=["eeg", "eeg"])
    raw = mne.io.RawArray(np.random.default_rng(3).standard_normal((2, 64)) * 1e-6, info=info, verbose=False)
    from exca.cachedict import DumpContext

    def exca_read(value: tp.Any, cache_type: str) -> tp.Any:
        """canon() of what exca itself reads back (.fif keeps float32, BrainVision its resolution)."""
        with tempfile.TemporaryDirectory() as tmp:
            ctx = DumpContext(tmp, key="k")
            with ctx:
                info = ctx.dump(value, cache_type=cache_type)
            return canon(ctx.load(info))

    for cache_type, key, value in [
        ("AutoPickle", "handler/autopickle", {"arr": np.arange(4, dtype="int32"), "set": {1, 2}, "n": 1}),
        ("AutoPickle", "handler/pickle-only", {3, 4}),
        ("MneRawFif", "mne/fif", raw),
        ("MneRawBrainVision", "mne/brainvision", raw),
        ("ContiguousMemmapArray", "contiguous", np.arange(12, dtype="float32").reshape(3, 4)),
    ]:
        typed = casket.CacheDict(store, cache_type=cache_type)
        with typed.write():
            py_set(typed, ops, key, value, canonical=exca_read(value, cache_type))
    ops.absent.add("never-written")
    return ops.expected("python-handlers", "python", store)


# --------------------------------------------------------------------------- crafted lines


def make_crafted(out: Path, binary: str) -> dict:
    """Hand-written index lines: the winner rule's tie-breaks and the bad-line rules."""
    store = out / "store"
    casket.init_store(store, compression="none", durability="none")
    s = casket.Store(store)
    vals = {name: name.encode() * 3 for name in ["v1", "v2", "v3", "v4", "v5", "v6", "v7"]}
    h = {name: s.put_bytes(data) for name, data in vals.items()}
    idx = store / "index"
    idx.mkdir(exist_ok=True)

    def node(name: str) -> dict:
        return {"#type": "Bytes", "blob": h[name], "size": len(vals[name])}

    def entry(key: str, ts: int, name: str, **extra: tp.Any) -> dict:
        return {"key": key, "ts": ts, "value": node(name), "blobs": [[h[name], len(vals[name])]], **extra}

    def tomb(key: str, ts: int, **extra: tp.Any) -> dict:
        return {"key": key, "ts": ts, "deleted": True, **extra}

    T = 1_700_000_000_000_000_000
    # writer ids compare as bytes: "B..." < "a..." < "b..." (upper case sorts first)
    files: dict[str, list[tp.Any]] = {
        "a-1-00000001.jsonl": [
            entry("tie/writer", T, "v1"),  # loses to b-... (same ts)
            entry("tie/line", T, "v2"),  # line 2 of a-1: loses to line 3
            entry("tie/line", T, "v3"),  # line 3: wins
            entry("newer-ts", T + 5, "v4"),  # wins by ts whatever the writer id
            tomb("tomb/wins", T + 1),
            {"sealed": True, "ts": T + 10},
        ],
        "b-2-00000002.jsonl": [
            entry("tie/writer", T, "v5"),  # wins: "b-2-00000002" > "a-1-00000001"
            entry("newer-ts", T + 4, "v6"),
            entry("tomb/wins", T, "v1"),  # older than the tombstone
            tomb("tomb/loses", T),  # same ts as the set in B-3, but "b" > "B": the tombstone wins
            "",  # blank line: skipped silently
            '{"key":"bad/float-ts","ts":1.5,"value":{"#type":"Json","content":1},"blobs":[]}',
            '{"key":"bad/ts-overflow","ts":9223372036854775808,"value":{"#type":"Json","content":1},"blobs":[]}',
            '{"key":"bad/hash","ts":5,"value":{"#type":"Json","content":1},"blobs":[["ABC",1]]}',
            '{"key":"bad/size","ts":5,"value":{"#type":"Json","content":1},"blobs":[["%s",-1]]}' % h["v1"],
            '{"key":"bad/no-blobs","ts":5,"value":{"#type":"Json","content":1}}',
            "[1,2,3]",
            '{"key":"bad/json",',
            '{"key":"bad/nan","ts":NaN,"value":{"#type":"Json","content":1},"blobs":[]}',
            '{"key":"","ts":5,"value":{"#type":"Json","content":1},"blobs":[]}',
            entry("after-bad-lines", T + 2, "v7"),
        ],
        "B-3-00000003.jsonl": [
            entry("tomb/loses", T, "v2"),  # same ts as the tombstone in b-2; "B-3..." < "b-2...": it loses
            entry("tomb/set-wins", T, "v6"),  # newer than the tombstone in b-2: the set wins
        ],
        # a file being compacted is still an index file; its w/n origins are honoured
        "c-4-00000004.jsonl.folding": [
            entry("origin/wn", T + 3, "v3", w="zz-origin-writer", n=42),
            entry("origin/wn", T + 3, "v4", w="zz-origin-writer", n=41),  # same ts and writer, line 41 < 42
        ],
        # not an index file: ignored whatever it holds
        "compact-00000000000000000001-deadbeef.jsonl.tmp": [entry("ignored/tmp", T + 100, "v5")],
        # keys are byte strings: NFC and NFD forms are two keys; a lone surrogate makes a line malformed
        "d-5-00000005.jsonl": [
            entry("norm/caf\u00e9", T, "v1"),
            entry("norm/cafe\u0301", T, "v2"),
            entry("norm/\u00f1", T, "v3"),
            tomb("norm/n\u0303", T + 1),  # deletes the NFD form only
            '{"key":"bad/surrogate\\ud800","ts":5,"deleted":true}',
            '{"key":"bad/surrogate-value","ts":5,"value":{"#type":"Json","content":"\\udfff"},"blobs":[]}',
        ],
    }
    files["b-2-00000002.jsonl"].insert(4, tomb("tomb/set-wins", T - 1))  # older than the set in B-3
    unterminated = {"a-1-00000001.jsonl": None, "B-3-00000003.jsonl": '{"key":"partial","ts":1,'}
    problems: list[tuple[str, int]] = []
    for name, lines in files.items():
        text = b""
        for n, obj in enumerate(lines, 1):
            raw = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
            text += raw.encode() + b"\n"
            if isinstance(obj, str) and raw.strip() and name.endswith((".jsonl", ".jsonl.folding")):
                problems.append((name, n))
        tail = unterminated.get(name)
        if tail:
            text += tail.encode()  # an append in progress: ignored silently
        (idx / name).write_bytes(text)

    def rec(key: str, ts: int, writer: str, line: int, name: str) -> dict:
        return live_record(ts, writer, line, node(name), [[h[name], len(vals[name])]], canon(vals[name]))

    live = {
        "tie/writer": rec("tie/writer", T, "b-2-00000002", 1, "v5"),
        "tie/line": rec("tie/line", T, "a-1-00000001", 3, "v3"),
        "newer-ts": rec("newer-ts", T + 5, "a-1-00000001", 4, "v4"),
        "tomb/set-wins": rec("tomb/set-wins", T, "B-3-00000003", 2, "v6"),
        "origin/wn": rec("origin/wn", T + 3, "zz-origin-writer", 42, "v3"),
        "after-bad-lines": rec("after-bad-lines", T + 2, "b-2-00000002", 16, "v7"),
        "norm/caf\u00e9": rec("norm/caf\u00e9", T, "d-5-00000005", 1, "v1"),
        "norm/cafe\u0301": rec("norm/cafe\u0301", T, "d-5-00000005", 2, "v2"),
        "norm/\u00f1": rec("norm/\u00f1", T, "d-5-00000005", 3, "v3"),
    }
    # check the hand-computed line number of after-bad-lines
    assert files["b-2-00000002.jsonl"][15]["key"] == "after-bad-lines"
    tombstones = {
        "tomb/wins": {"ts": T + 1, "origin": {"writer": "a-1-00000001", "line": 5}},
        "tomb/loses": {"ts": T, "origin": {"writer": "b-2-00000002", "line": 3 + 1}},
        "norm/n\u0303": {"ts": T + 1, "origin": {"writer": "d-5-00000005", "line": 4}},
    }
    assert files["b-2-00000002.jsonl"][3]["key"] == "tomb/loses"
    absent = ["bad/float-ts", "bad/ts-overflow", "bad/hash", "bad/size", "bad/no-blobs", "bad/json", "bad/nan",
              "ignored/tmp", "partial", "never-written"]
    return {
        "vector": "crafted-winners",
        "writer": "crafted",
        "live": dict(sorted(live.items())),
        "tombstones": dict(sorted(tombstones.items())),
        "absent": sorted(absent),
        "problems": sorted([list(p) for p in problems]),
        "blob_files": blob_files(store),
    }


MAKERS: dict[str, tp.Callable[[Path, str], dict]] = {
    "swift-cli": make_swift_cli,
    "swift-inline": make_swift_inline,
    "swift-compacted": make_swift_compacted,
    "swift-packed": make_swift_packed,
    "python-values": make_python_values,
    "python-lz4-inline": make_python_lz4_inline,
    "python-packed": make_python_packed,
    "python-handlers": make_python_handlers,
    "crafted-winners": make_crafted,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", choices=sorted(MAKERS), help="rebuild only these vectors")
    ap.add_argument("--casket-bin", default=os.environ.get("CASKET_BIN", str(REPO / ".build" / "debug" / "casket")))
    ap.add_argument("--no-check", action="store_true", help="skip the cross-check with both readers")
    args = ap.parse_args()
    if not os.access(args.casket_bin, os.X_OK):
        raise SystemExit(f"the casket binary {args.casket_bin} is missing: build it or set CASKET_BIN")
    VECTORS.mkdir(exist_ok=True)
    for name in args.only or list(MAKERS):
        out = VECTORS / name
        work = Path(tempfile.mkdtemp(prefix=f"casket-vector-{name}-"))
        try:
            expected = MAKERS[name](work, args.casket_bin)
            tidy(work / "store")
            expected["blob_files"] = blob_files(work / "store")
            (work / "expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False, sort_keys=False) + "\n")
            if not args.no_check:
                import check as cc

                errors = cc.check_python(work) + cc.check_swift(work, args.casket_bin)
                if errors:
                    raise SystemExit(f"vector {name}: readers disagree with the record:\n  " + "\n  ".join(errors))
            if out.exists():
                for dirpath, dirs, files in os.walk(out):
                    for f in files:
                        os.chmod(Path(dirpath) / f, 0o644)
                shutil.rmtree(out)
            shutil.copytree(work, out)
            size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
            print(f"{name}: {len(expected['live'])} live, {len(expected['tombstones'])} tombstones, "
                  f"{len(expected['problems'])} problems, {size} bytes")
        finally:
            for dirpath, dirs, files in os.walk(work):
                for f in files:
                    os.chmod(Path(dirpath) / f, 0o644)
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
