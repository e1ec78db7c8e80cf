"""Compute-once claims through the Python client, with real processes, and across languages: Python
and Swift workers (casket-testhelper, beside $CASKET_BIN) share the same claim files."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import threading
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


def test_killed_holder_of_this_namespace_is_taken_over_at_once(root: Path, tmp_path: Path) -> None:
    log = tmp_path / "computed.log"
    ctx = mp.get_context("fork")
    victim = ctx.Process(target=worker, args=(str(root), str(log), ["k"], 30.0, 60.0, 0.0))
    victim.start()
    board = casket.ClaimBoard(casket.Store(root), ttl=30.0)
    deadline = time.time() + 20
    while not board.list() and time.time() < deadline:
        time.sleep(0.02)
    claims = board.list()
    assert claims and claims[0].pid == victim.pid and claims[0].key == "k", "the victim never claimed"
    record = claims[0].lease.record
    assert record.boot_id and record.pid_ns.startswith("pid:[")
    while computed(log).get("k") != 1 and time.time() < deadline:
        time.sleep(0.02)  # the claim exists before the compute starts: kill it mid-compute
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    began = time.time()
    worker(str(root), str(log), ["k"], 30.0, 0.0, 0.0)
    assert time.time() - began < 15, "waited for the TTL although the holder's pid is dead here"
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


def test_many_claims_share_one_heartbeat_thread(root: Path) -> None:
    """A worker holding hundreds of claims (a MapInfra call over many items) keeps them all alive with one
    thread: threads are limited per process and per container."""
    import threading

    board = casket.ClaimBoard(casket.Store(root), ttl=0.8)
    before = threading.active_count()
    held = [board.try_claim(f"item/{i}") for i in range(300)]
    assert all(isinstance(h, casket.HeldClaim) for h in held)
    assert threading.active_count() <= before + 1
    time.sleep(2.0)  # more than two TTLs: only the heartbeat keeps them live
    assert not any(h.lost for h in held)
    claims = board.list()
    assert len(claims) == 300 and not any(c.stale for c in claims), [c.age for c in claims if c.stale][:3]
    for h in held:
        h.release()
    assert board.list() == []
    later = board.try_claim("item/0")  # a released key is free, and a new claim gets its heartbeat
    assert isinstance(later, casket.HeldClaim)
    time.sleep(1.2)
    assert not later.lost and not board.list()[0].stale
    later.release()


def test_io_error_is_never_a_claim(root: Path) -> None:
    board = casket.ClaimBoard(casket.Store(root), ttl=1.0)
    (root / "claims").rmdir()
    (root / "claims").write_text("not a directory")
    with pytest.raises(casket.StoreError, match="is a regular file, not a directory") as raised:
        board.try_claim("k")
    assert raised.value.code == "unsafe_path"


def write_claim(root: Path, key: str, data: bytes) -> Path:
    path = root / "claims" / xxhash.xxh3_128_hexdigest(key.encode())
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data", [b"", b'{"key":"k","tok', b"not a claim\n"])
def test_unreadable_claim_file_is_judged_by_its_mtime(root: Path, data: bytes) -> None:
    path = write_claim(root, "k", data)
    board = casket.ClaimBoard(casket.Store(root), ttl=60.0)
    got = board.try_claim("k")
    assert isinstance(got, casket.ClaimRecord) and got.key is None and got.lease.record is None and not got.stale
    old = time.time() - 120
    os.utime(path, (old, old))
    held = board.try_claim("k")
    assert isinstance(held, casket.HeldClaim), held
    assert held.lease.took_over is not None and str(held.lease.took_over) == "an unreadable lease file"
    held.release()
    assert board.list() == []


def test_strays_are_listed_never_fatal(root: Path) -> None:
    claims = root / "claims"
    claims.mkdir(exist_ok=True)
    (claims / "notes.txt").write_text("hello\n")
    (claims / "sub").mkdir()
    folder = claims / xxhash.xxh3_128_hexdigest(b"k9")
    folder.mkdir()
    old_name = claims / (xxhash.xxh3_128_hexdigest(b"k8") + ".0")
    old_name.write_text("{}")
    board = casket.ClaimBoard(casket.Store(root), ttl=60.0)
    with board.try_claim("k1") as held:
        survey = board.survey()
        assert [c.key for c in survey.claims] == ["k1"] and survey.claims[0].pid == os.getpid()
        assert {p for p, _ in survey.strays} == {claims / "notes.txt", claims / "sub", folder, old_name}
        reasons = dict(survey.strays)
        assert reasons[claims / "sub"] == "a folder, not a claim file"
        assert "is a directory where a lease file belongs" in reasons[folder]
        assert held.path == board.path("k1")
    with pytest.raises(casket.CasketError, match="is a directory where a lease file belongs"):
        board.try_claim("k9")


def test_ttl_must_be_positive(root: Path) -> None:
    for ttl in (0, -1.0):
        with pytest.raises(ValueError, match="must be positive"):
            casket.ClaimBoard(casket.Store(root), ttl=ttl)


def test_release_never_removes_a_successors_claim(root: Path, tmp_path: Path) -> None:
    board = casket.ClaimBoard(casket.Store(root), ttl=1.0)
    held = board.try_claim("k")
    assert isinstance(held, casket.HeldClaim)
    other = b'{"key":"k","token":"ff","host":"node-c","pid":1,"created":1}\n'
    (tmp_path / "other").write_bytes(other)
    os.rename(tmp_path / "other", board.path("k"))
    deadline = time.time() + 5
    while not held.lost and time.time() < deadline:
        time.sleep(0.02)
    assert held.lost
    held.release()
    assert board.path("k").read_bytes() == other


def test_release_waits_for_a_finishing_release_of_the_takeover_file(root: Path) -> None:
    # The previous holder's release still holds <claim>.takeover for a moment (a live record): the new
    # holder's release must wait for it, not leave a live-looking claim that blocks the key for a TTL.
    board = casket.ClaimBoard(casket.Store(root), ttl=30.0)
    held = board.try_claim("k")
    assert isinstance(held, casket.HeldClaim)
    guard = Path(f"{board.path('k')}.takeover")
    guard.write_bytes(b'{"token":"ee","host":"node-b","pid":1,"created":1}\n')
    releaser = threading.Thread(target=held.release)
    releaser.start()
    time.sleep(0.1)
    assert board.path("k").exists(), "waits while the takeover file is held"
    guard.unlink()
    releaser.join(5)
    assert not board.path("k").exists()
    assert board.list() == []


def hold_forever(root: str) -> None:
    board = casket.ClaimBoard(casket.Store(root), ttl=30.0)
    assert isinstance(board.try_claim("k0"), casket.HeldClaim)
    time.sleep(600)


@pytest.mark.skipif(helper_binary() is None, reason="CASKET_BIN unset or casket-testhelper not built beside it")
def test_swift_judges_a_dead_python_holder_and_python_a_dead_swift_one(root: Path, tmp_path: Path) -> None:
    log = tmp_path / "computed.log"
    ctx = mp.get_context("fork")
    victim = ctx.Process(target=hold_forever, args=(str(root),))
    victim.start()
    board = casket.ClaimBoard(casket.Store(root), ttl=30.0)
    deadline = time.time() + 20
    while not board.list() and time.time() < deadline:
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    began = time.time()
    out = subprocess.run([helper_binary(), "compute", str(root), "30", str(log), "1", "0", "0"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert time.time() - began < 15, "Swift waited for the TTL of a dead Python holder of this namespace"
    # A Swift holder killed mid-compute: Python takes its claim at once.
    swift = subprocess.Popen([helper_binary(), "compute", str(root), "30", str(log), "2", "60000", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while not any(c.key == "k1" for c in board.list()) and time.time() < deadline:
        time.sleep(0.02)
    (claim,) = [c for c in board.list() if c.key == "k1"]
    assert claim.pid == swift.pid and claim.lease.record.pid_ns == casket.lease.THIS_PID_NAMESPACE
    while computed(log).get("k1") != 1 and time.time() < deadline:
        time.sleep(0.02)  # kill it mid-compute
    swift.kill()
    swift.wait()
    began = time.time()
    worker(str(root), str(log), ["k1"], 30.0, 0.0, 0.0)
    assert time.time() - began < 15
    assert computed(log)["k1"] == 2


@pytest.mark.skipif(helper_binary() is None or os.geteuid() != 0 or not Path("/usr/bin/unshare").exists(),
                    reason="needs casket-testhelper, root and unshare")
def test_python_of_another_pid_namespace_with_the_same_host_name_waits_for_the_ttl(root: Path,
                                                                                  tmp_path: Path) -> None:
    log = tmp_path / "computed.log"
    burn = "for i in $(seq 10); do /bin/true; done; "
    holder = subprocess.Popen(
        ["/usr/bin/unshare", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c",
         f"hostname twin; {burn}'{helper_binary()}' compute '{root}' 3 '{log}' 1 60000 0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    board = casket.ClaimBoard(casket.Store(root), ttl=3.0)
    deadline = time.time() + 20
    while not board.list() and time.time() < deadline:
        time.sleep(0.02)
    assert board.list()[0].host == "twin"
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
              f"import test_claims as t; t.worker({str(root)!r}, {str(log)!r}, ['k0'], 3.0, 0.0, 0.0)")
    taker = subprocess.Popen(
        ["/usr/bin/unshare", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c",
         f"hostname twin; '{os.sys.executable}' -c \"{script}\""],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(4.0)  # more than a TTL: the holder's heartbeat keeps its claim
    assert computed(log).get("k0") == 1, "a worker of another PID namespace took a live claim"
    assert taker.poll() is None
    holder.kill()
    holder.wait()
    killed = time.time()
    _, err = taker.communicate(timeout=60)
    assert taker.returncode == 0, err
    assert time.time() - killed >= 1.5, "taken over before the TTL: judged by a foreign pid"
    assert computed(log)["k0"] == 2
