"""The Python side of FORMAT 1.1: no link followed inside a store, init never adopts, modes follow umask.

The same attacks as the Swift suite "Hostile stores": a link planted as blobs/, tmp/, index/, claims/
or a fan-out folder, a blob replaced by a link to a foreign file, init over folders holding files."""

import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

import casket
from casket.store import hash_bytes


def _link_folder(root: Path, relative: str, outside: Path) -> None:
    """Moves a store folder to ``outside`` and leaves a link to it in its place."""
    shutil.rmtree(outside, ignore_errors=True)
    os.rename(root / relative, outside)
    os.symlink(outside, root / relative)


def _files(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("relative", ["blobs", "tmp", "fanout", "index"])
def test_writes_refuse_linked_folders(tmp_path: Path, relative: str) -> None:
    root = tmp_path / "store"
    casket.init_store(root, durability="none", pack_max=0)  # loose blobs: writes go through blobs/ and tmp/
    payload = os.urandom(5000)
    if relative == "fanout":
        relative = "blobs/" + hash_bytes(payload)[:2]
    outside = tmp_path / "outside"
    (root / relative).mkdir(exist_ok=True)
    (root / relative / "old.tmp").write_bytes(b"keep")
    _link_folder(root, relative, outside)
    before = _files(outside)
    cd = casket.CacheDict(folder=root)
    with pytest.raises(casket.StoreError) as raised:
        with cd.write():
            cd["k"] = np.frombuffer(payload, dtype=np.uint8)
    assert raised.value.code == "unsafe_path"
    assert f"'{root / relative}' is a symbolic link" in str(raised.value)
    assert _files(outside) == before


def test_linked_blob_is_not_a_blob(tmp_path: Path) -> None:
    root = tmp_path / "store"
    casket.init_store(root, durability="none")
    store = casket.Store(root)
    payload = os.urandom(3000)
    h = store.put_bytes(payload)
    secret = tmp_path / "secret"
    secret.write_bytes(b"private bytes of someone else")
    blob = root / "blobs" / h[:2] / h
    os.chmod(blob, 0o644)
    blob.unlink()
    os.symlink(secret, blob)
    assert not store.has_blob(h, len(payload))
    with pytest.raises(casket.BlobError):
        store.get_bytes(h)
    # A writer of the same payload replaces the link with the real blob; the target is untouched.
    assert store.put_bytes(payload) == h
    assert stat.S_ISREG(os.lstat(blob).st_mode)
    assert store.get_bytes(h) == payload
    assert secret.read_bytes() == b"private bytes of someone else"


def test_linked_casket_json_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "store"
    casket.init_store(root, durability="none")
    (tmp_path / "elsewhere.json").write_bytes((root / "casket.json").read_bytes())
    (root / "casket.json").unlink()
    os.symlink(tmp_path / "elsewhere.json", root / "casket.json")
    with pytest.raises(casket.StoreError):
        casket.Store(root)


@pytest.mark.parametrize("relative", ["blobs/ab", "blobs/ab/99aa06d3014798d86001c324468d497f", "blobs/AB/x",
                                      "tmp/old.tmp", "tmp/host.12.0123456789abcdef.tmp/x", "index/x.jsonl",
                                      "claims/c", "gc/lock", "quarantine/q"])
def test_init_refuses_foreign_content(tmp_path: Path, relative: str) -> None:
    root = tmp_path / "store"
    (root / relative).parent.mkdir(parents=True)
    (root / relative).write_bytes(b"someone's data")
    with pytest.raises(casket.StoreError) as raised:
        casket.init_store(root)
    folder = relative.split("/")[0]
    assert raised.value.code == "already_exists"
    assert f"'{root / folder}' already holds 1 entry" in str(raised.value)
    assert not os.path.lexists(root / "casket.json")
    assert (root / relative).read_bytes() == b"someone's data"


def test_init_completes_what_an_interrupted_init_left(tmp_path: Path) -> None:
    root = tmp_path / "store"
    for hh in ("00", "0f", "a7"):
        (root / "blobs" / hh).mkdir(parents=True)
    (root / "tmp").mkdir()
    (root / "tmp" / "some-host.4242.0123456789abcdef.tmp").write_bytes(b"{")
    casket.init_store(root)
    assert casket.Store(root).config["format"] == "casket"


def test_init_refuses_files_and_links_in_folder_names(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "tmp").write_bytes(b"x")
    with pytest.raises(casket.StoreError, match="exists and is a regular file"):
        casket.init_store(root)
    (root / "tmp").unlink()
    os.symlink(tmp_path, root / "blobs")
    with pytest.raises(casket.StoreError, match="exists and is a symbolic link"):
        casket.init_store(root)
    (root / "blobs").unlink()
    (root / "index").mkdir()  # an empty folder is fine
    casket.init_store(root)


def test_folders_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        root = tmp_path / "store"
        casket.init_store(root, durability="none", pack_max=0)  # a loose blob: its fan-out folder is made
        cd = casket.CacheDict(folder=root)
        with cd.write():
            cd["k"] = np.arange(10)
    finally:
        os.umask(old)
    fanout = "blobs/" + hash_bytes(np.arange(10).tobytes())[:2]
    for folder in ["", "blobs", "tmp", "index", "claims", "packs", fanout]:
        mode = os.stat(root / folder).st_mode
        assert mode & 0o070 == 0o070, (folder, oct(mode))
    for index_file in (root / "index").iterdir():
        assert os.stat(index_file).st_mode & 0o060 == 0o060, index_file
