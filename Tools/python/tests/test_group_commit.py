"""Group commit (durability "group", docs/FORMAT.md 5.5): a write session's lines are written and flushed
once per batch, after the pack records and blob files they name; a writer killed with SIGKILL loses at most
its uncommitted batch, never a key committed by flush() or by the batch timer."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import casket
from casket import index as index_mod
from conftest import count_index_writes, fail_fdatasync

BIN = os.environ.get("CASKET_BIN")
HAS_BIN = bool(BIN) and os.access(BIN, os.X_OK)
PKG = str(Path(__file__).resolve().parents[1])


def index_lines(root: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in (root / "index").glob("*.jsonl"))


def test_lines_wait_for_the_batch_then_the_timer_or_flush_commits_them(grouped, monkeypatch):
    monkeypatch.setattr(index_mod, "GROUP_SECONDS", 1.0)  # room for a slow machine before "not committed yet"
    cd = casket.CacheDict(grouped)
    with cd.write():
        cd["a"] = np.arange(10)
        assert "a" in cd, "the writer sees its own key at once"
        assert "a" not in casket.CacheDict(grouped) and index_lines(grouped) == 0, "not committed yet"
        time.sleep(index_mod.GROUP_SECONDS + 0.3)
        assert "a" in casket.CacheDict(grouped), "the batch timer committed it"
        cd["b"] = b"b" * 100
        cd["large"] = np.zeros(20000)  # a blob file, published (and flushed) before its line
        cd.flush()
        assert {"a", "b", "large"} <= set(casket.CacheDict(grouped).keys())
        cd["c"] = np.ones(3)
    assert sorted(casket.CacheDict(grouped).keys()) == ["a", "b", "c", "large"], "the session's end commits"


def test_a_full_batch_is_written_with_one_write(grouped, monkeypatch):
    monkeypatch.setattr(index_mod, "GROUP_COUNT", 50)
    monkeypatch.setattr(index_mod, "GROUP_SECONDS", 3600.0)  # only the count commits, however slow the machine
    cd = casket.CacheDict(grouped)
    with cd.write():
        writes = count_index_writes(monkeypatch)
        for i in range(120):
            cd[f"k{i}"] = np.full(100, i)
    monkeypatch.undo()
    # two full batches, then the rest (the seal line waits for the writers' end: casket.kept)
    assert writes == [50, 50, 20], writes
    reader = casket.CacheDict(grouped)
    assert all(np.array_equal(reader[f"k{i}"], np.full(100, i)) for i in range(120))


KILLED = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {pkg!r})
    import numpy as np, casket
    cd = casket.CacheDict(sys.argv[1])
    with cd.write():
        i = 0
        while True:
            cd[f"k{{i}}"] = {value}
            if i % 25 == 24:
                cd.flush()
                os.write(1, f"{{i}}\\n".encode())  # every key up to i is committed
            i += 1
""")


def test_writer_killed_loses_no_committed_key(grouped):
    proc = subprocess.Popen([sys.executable, "-c", KILLED.format(pkg=PKG, value="np.full(300 + i % 200, i, dtype=np.int64)"), str(grouped)], stdout=subprocess.PIPE)
    seen = [proc.stdout.readline() for _ in range(3)]  # killed once it has committed, however slow the start
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    committed = [int(x) for x in (b"".join(seen) + out).decode().split()]
    assert committed, "the writer committed batches before it was killed"
    reader = casket.CacheDict(grouped)
    for i in range(committed[-1] + 1):
        assert np.array_equal(reader[f"k{i}"], np.full(300 + i % 200, i, dtype=np.int64)), i
    if HAS_BIN:
        fsck = subprocess.run([BIN, "fsck", "--store", str(grouped)], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck


@pytest.mark.usefixtures("seal_each_session")
def test_the_pack_is_sealed_by_a_thread_while_the_last_batches_are_flushed(grouped, monkeypatch):
    """The session's end seals its pack in a thread, while the batch written behind and the last batch are
    flushed (the seal flushes the pack itself first); when write() returns the index is published."""
    monkeypatch.setattr(index_mod, "GROUP_COUNT", 100)
    monkeypatch.setattr(index_mod, "GROUP_SECONDS", 3600.0)
    published = []
    real_publish = casket.packs._publish_index

    def publish(folder, ident, data, *args, **kwargs):
        published.append(threading.current_thread() is threading.main_thread())
        real_publish(folder, ident, data, *args, **kwargs)

    monkeypatch.setattr(casket.packs, "_publish_index", publish)
    cd = casket.CacheDict(grouped)
    for count in (200, 150):  # the last batch empty (written behind), then not
        with cd.write():
            for i in range(count):
                cd[f"{count}-{i}"] = np.full(64, i)
        assert len(list((grouped / "packs").glob("*.idx"))) == len(published), "sealed when write() returns"
    assert published == [False, False], "sealed by a thread"
    reader = casket.CacheDict(grouped)
    assert all(np.array_equal(reader[f"150-{i}"], np.full(64, i)) for i in range(150))
    assert not list((grouped / "packs").glob("*.lease"))


@pytest.mark.usefixtures("seal_each_session")
def test_a_failed_flush_in_the_seal_writes_no_line_naming_the_pack(grouped, monkeypatch):
    """The seal thread flushes the pack; when that flush fails, the last batch's lines are not written (no line
    names bytes that are not durable) and write() raises."""
    cd = casket.CacheDict(grouped)
    with pytest.raises(OSError, match="injected"):
        with cd.write():
            for i in range(20):
                cd[f"k{i}"] = np.full(64, i)
            fail_fdatasync(monkeypatch, ".pack", "Input/output error (injected)")
    monkeypatch.undo()
    assert index_lines(grouped) == 0 and len(casket.CacheDict(grouped)) == 0


@pytest.mark.usefixtures("seal_each_session")
def test_the_error_of_the_last_batch_is_raised_before_the_seals(grouped, monkeypatch):
    """When the last batch's lines cannot be written and the seal fails too, write() raises the batch's
    error (what the caller must know: its keys are not committed), not the seal's."""
    def failing_publish(*args, **kwargs):
        raise OSError(28, "No space left on device (injected into the seal)")

    real_write = os.write

    def failing_write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".jsonl"):
            raise OSError(5, "Input/output error (injected into the index)")
        return real_write(fd, data)

    cd = casket.CacheDict(grouped)
    with pytest.raises(casket.CasketError, match="appending to index file .*injected into the index"):
        with cd.write():
            for i in range(20):
                cd[f"k{i}"] = np.full(64, i)
            monkeypatch.setattr(casket.packs, "_publish_index", failing_publish)
            monkeypatch.setattr(os, "write", failing_write)
    monkeypatch.undo()
    assert len(casket.CacheDict(grouped)) == 0
