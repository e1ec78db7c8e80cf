import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import casket  # noqa: E402


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    casket.init_store(path, durability="none", pack_max=0)  # loose blobs: what most tests look at
    return path


@pytest.fixture
def store(root: Path) -> "casket.Store":
    return casket.Store(root)


@pytest.fixture
def grouped(tmp_path: Path) -> Path:
    """A store with packs and group commit (docs/FORMAT.md 3.7, 5.5)."""
    path = tmp_path / "store"
    casket.init_store(path, durability="group", pack_max=65536)
    return path


@pytest.fixture
def seal_each_session(monkeypatch) -> None:
    """Each write session seals its own index file and pack when it ends (``CASKET_KEEP_SECONDS=0``, also
    for the processes a test starts), for tests of sealed packs, compaction and repacking right after a
    session, which the default (writers kept open for the thread's next session, casket.kept) delays."""
    monkeypatch.setenv("CASKET_KEEP_SECONDS", "0")


def blob_files(root: Path) -> list:
    out = []
    for dirpath, _dirs, files in os.walk(Path(root) / "blobs"):
        out.extend(Path(dirpath) / f for f in files if not f.endswith(".chunks"))  # sidecars are not blobs
    return sorted(out)


def fail_fdatasync(monkeypatch, suffix: str, message: str):
    """Patches ``os.fdatasync`` to fail (EIO, ``message``) on files whose name ends with ``suffix``; returns
    the real one."""
    real = os.fdatasync

    def failing(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(suffix):
            raise OSError(5, message)
        return real(fd)

    monkeypatch.setattr(os, "fdatasync", failing)
    return real


def count_index_writes(monkeypatch) -> list:
    """Patches ``os.write`` (until ``monkeypatch.undo()``) to record, for each write to an index file, the
    number of lines it writes."""
    writes: list = []
    real_write = os.write

    def counting_write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".jsonl"):
            writes.append(bytes(data).count(b"\n"))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    return writes
