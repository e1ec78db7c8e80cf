"""Compute-once claims through the Python client, with real processes, and across languages: Python
and Swift workers (casket-testhelper, beside $CASKET_BIN) share the same claim files."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import xxhash

import casket


def payload(key: str, size: int = 64) -> bytes:
    """The Swift test helper's payload(for:size:): xorshift64 seeded by the key's XXH3-128 low half."""
    state = int(xxhash.xxh3_128_hexdigest(key.encode())[16:], 16) | 1
    mask = (1 << 64) - 1
    out = bytearray(size)
    for i in range(size):
        state ^= (state << 13) & mask
        state ^= state >> 7
        state ^= (state << 17) & mask
        out[i] = state & 0xFF
    return bytes(out)


def worker(root: str, log: str, keys: list[str], ttl: float, sleep: float, start: float) -> None:
    cd = casket.CacheDict(root)
    while time.time() < start:
        time.sleep(0.001)

    def compute(mine: list[str]) -> dict[str, bytes]:
        with open(log, "a") as f:
            f.writelines(f"{k} {os.getpid()}\n" for k in mine)
        time.sleep(sleep)
        return {k: payload(k) for k in mine}

    values = cd.get_or_compute_many(keys, compute, ttl=ttl, timeout=120)
    assert all(values[k] == payload(k) for k in keys)


def computed(log: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            counts[line.split()[0]] = counts.get(line.split()[0], 0) + 1
    return counts


def helper_binary() -> str | None:
    binary = os.environ.get("CASKET_BIN")
    if not binary:
        return None
    path = Path(binary).parent / "casket-testhelper"
    return str(path) if path.exists() else None


def test_sixteen_processes_compute_each_key_once(root: Path, tmp_path: Path) -> None:
    log = tmp_path / "computed.log"
    keys = [f"k{i}" for i in range(100)]
    start = time.time() + 1.0
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=worker, args=(str(root), str(log), keys, 30.0, 0.005, start)) for _ in range(16)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    counts = computed(log)
    assert len(counts) == 100 and all(n == 1 for n in counts.values()), counts
    assert casket.ClaimBoard(casket.Store(root)).list() == []


@pytest.mark.skipif(helper_binary() is None, reason="CASKET_BIN unset or casket-testhelper not built beside it")
def test_python_and_swift_workers_share_claims(root: Path, tmp_path: Path) -> None:
    log = tmp_path / "computed.log"
    keys = [f"k{i}" for i in range(60)]
    start = time.time() + 1.5
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=worker, args=(str(root), str(log), keys, 30.0, 0.005, start)) for _ in range(4)]
    for p in procs:
        p.start()
    swift = [
        subprocess.Popen([helper_binary(), "compute", str(root), "30", str(log), "60", "5", str(int(start * 1e9))],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    for s in swift:
        out, err = s.communicate(timeout=120)
        assert s.returncode == 0, err
    counts = computed(log)
    assert len(counts) == 60 and all(n == 1 for n in counts.values()), counts


def test_killed_holder_is_taken_over_after_the_ttl(root: Path, tmp_path: Path) -> None:
    log = tmp_path / "computed.log"
    ctx = mp.get_context("fork")
    victim = ctx.Process(target=worker, args=(str(root), str(log), ["k"], 1.0, 60.0, 0.0))
    victim.start()
    board = casket.ClaimBoard(casket.Store(root), ttl=1.0)
    deadline = time.time() + 20
    while not board.list() and time.time() < deadline:
        time.sleep(0.02)
    assert board.list(), "the victim never claimed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    began = time.time()
    worker(str(root), str(log), ["k"], 1.0, 0.0, 0.0)
    assert time.time() - began >= 0.5
    assert computed(log)["k"] == 2
    assert casket.CacheDict(root)["k"] == payload("k")
    assert board.list() == []


def test_heartbeat_keeps_a_slow_compute_claimed(root: Path, tmp_path: Path) -> None:
    log = tmp_path / "computed.log"
    ctx = mp.get_context("fork")
    # TTL 1.5 s, compute 4.5 s: three TTLs, with room for a loaded machine.
    slow = ctx.Process(target=worker, args=(str(root), str(log), ["k"], 1.5, 4.5, 0.0))
    slow.start()
    board = casket.ClaimBoard(casket.Store(root), ttl=1.5)
    while not board.list():
        time.sleep(0.02)
    worker(str(root), str(log), ["k"], 1.5, 0.0, 0.0)
    slow.join(30)
    assert slow.exitcode == 0
    assert computed(log)["k"] == 1


def test_io_error_is_never_a_claim(root: Path) -> None:
    board = casket.ClaimBoard(casket.Store(root), ttl=1.0)
    (root / "claims").rmdir()
    (root / "claims").write_text("not a directory")
    with pytest.raises(OSError):
        board.try_claim("k")
