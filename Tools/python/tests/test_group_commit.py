"""Group commit (durability "group", docs/FORMAT.md 5.5): a write session's lines are written and flushed
once per batch, after the pack records and blob files they name; a writer killed with SIGKILL loses at most
its uncommitted batch, never a key committed by flush() or by the batch timer."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import casket
from casket import index as index_mod
from conftest import count_index_writes

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
    assert writes == [50, 50, 21], writes  # two full batches, then the rest and the seal line in one write
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
            cd[f"k{{i}}"] = np.full(300 + i % 200, i, dtype=np.int64)
            if i % 25 == 24:
                cd.flush()
                os.write(1, f"{{i}}\\n".encode())  # every key up to i is committed
            i += 1
""")


def test_writer_killed_loses_no_committed_key(grouped):
    proc = subprocess.Popen([sys.executable, "-c", KILLED.format(pkg=PKG), str(grouped)], stdout=subprocess.PIPE)
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
