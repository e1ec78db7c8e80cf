"""The settings a new store gets (docs/FORMAT.md 2): format version 2, packs below ``DEFAULT_PACK_MAX`` and
group commit, the same from ``casket.init_store`` and ``casket init``; ``pack_max=0`` and ``durability="fsync"``
stay available, and a version 1 store stays version 1 whatever writes to it."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import casket
from casket.store import DEFAULT_PACK_MAX, DEFAULT_PACK_SIZE

BIN = os.environ.get("CASKET_BIN")
needs_cli = pytest.mark.skipif(not BIN or not os.access(BIN, os.X_OK), reason="set CASKET_BIN to run")

V1 = b'{"format":"casket","version":1,"hash":"xxh3-128","compression":"none","inline_max":0}\n'


def blob_files(root: Path) -> list:
    return sorted(p for p in (root / "blobs").rglob("*") if p.is_file() and not p.name.endswith(".chunks"))


def pack_files(root: Path) -> list:
    return sorted(p.name for p in (root / "packs").iterdir() if p.suffix in (".pack", ".idx"))


@pytest.mark.usefixtures("seal_each_session")
def test_init_store_defaults_are_version_2_packs_and_group(tmp_path):
    root = tmp_path / "s"
    store = casket.init_store(root)
    raw = (root / "casket.json").read_bytes()
    assert raw.startswith(b'{"format":"casket","version":2,"hash":"xxh3-128","compression":"none",'
                          b'"durability":"group","inline_max":0,'
                          b'"pack_max":%d,"pack_size":%d,"created":"' % (DEFAULT_PACK_MAX, DEFAULT_PACK_SIZE))
    assert DEFAULT_PACK_MAX == 1 << 16
    assert (store.config["version"], store.durability, store.pack_max) == (2, "group", DEFAULT_PACK_MAX)
    cd = casket.CacheDict(root)
    small = np.arange(DEFAULT_PACK_MAX // 8 - 1, dtype=np.float64)  # 8 bytes below pack_max: packed
    large = np.arange(DEFAULT_PACK_MAX // 8, dtype=np.float64)  # exactly pack_max: a blob file
    with cd.write():
        cd["small"], cd["large"] = small, large
    assert [p.stat().st_size for p in blob_files(root)] == [DEFAULT_PACK_MAX]
    assert len(pack_files(root)) == 2  # one sealed pack: .pack and .idx
    fresh = casket.CacheDict(root)
    assert np.array_equal(fresh["small"], small) and np.array_equal(fresh["large"], large)


def test_a_cache_dict_creates_its_store_with_the_defaults(tmp_path):
    cd = casket.CacheDict(tmp_path / "cache")
    with cd.write():
        cd["k"] = b"x" * 100
    cfg = json.loads((tmp_path / "cache" / "casket.json").read_text())
    assert (cfg["version"], cfg["durability"], cfg["pack_max"]) == (2, "group", DEFAULT_PACK_MAX)
    assert blob_files(tmp_path / "cache") == [] and pack_files(tmp_path / "cache")


def test_pack_max_0_and_fsync_stay_available(tmp_path):
    store = casket.init_store(tmp_path / "s", pack_max=0, durability="fsync")
    raw = (tmp_path / "s" / "casket.json").read_bytes()
    assert raw.startswith(b'{"format":"casket","version":1,') and b"pack_max" not in raw
    assert (store.durability, store.pack_max) == ("fsync", 0)
    cd = casket.CacheDict(tmp_path / "s")
    with cd.write():
        cd["k"] = b"x" * 100
    assert [p.stat().st_size for p in blob_files(tmp_path / "s")] == [100] and pack_files(tmp_path / "s") == []


def test_a_version_1_store_is_never_upgraded(tmp_path):
    """A store an older release made (no durability field: fsync, no packs) keeps its casket.json byte for
    byte, its settings and its loose blobs when the new client writes to it and reads it."""
    root = tmp_path / "old"
    for sub in ("blobs", "tmp", "index", "gc", "quarantine", "claims"):
        (root / sub).mkdir(parents=True)
    (root / "casket.json").write_bytes(V1)
    cd = casket.CacheDict(root)
    assert (cd.store.durability, cd.store.pack_max) == ("fsync", 0)
    with cd.write():
        cd["a"] = np.arange(10)
        cd["b"] = b"y" * 50
    assert (root / "casket.json").read_bytes() == V1
    assert sorted(p.stat().st_size for p in blob_files(root)) == [50, 80]
    assert not (root / "packs").exists() or pack_files(root) == []
    assert casket.CacheDict(root)["b"] == b"y" * 50


@needs_cli
def test_casket_init_writes_the_same_defaults(tmp_path):
    out = subprocess.run([BIN, "init", str(tmp_path / "swift")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    casket.init_store(tmp_path / "python")

    def settings(name: str) -> dict:
        cfg = json.loads((tmp_path / name / "casket.json").read_text())
        del cfg["created"]
        return cfg

    assert settings("swift") == settings("python")
    assert settings("swift")["pack_max"] == DEFAULT_PACK_MAX and settings("swift")["durability"] == "group"
