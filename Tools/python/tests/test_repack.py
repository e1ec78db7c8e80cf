"""GC repacking (docs/GC.md step 5, docs/FORMAT.md 3.9), with real processes: duplicates go after one GC,
packs of dead records are retired and removed by a later GC a grace on, no writer dedups against a retired
pack, a reader holding a view across GCs keeps finding every payload, writers and GCs racing lose no
committed key, and a killed or starved collector loses nothing."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xxhash

import casket
from casket import packs

BIN = os.environ.get("CASKET_BIN")
# repacking needs sealed packs: each session seals its own, as a writer that has ended does (casket.kept)
pytestmark = [pytest.mark.skipif(not (BIN and os.access(BIN, os.X_OK)), reason="CASKET_BIN is not set"),
              pytest.mark.usefixtures("seal_each_session")]
PKG = str(Path(__file__).resolve().parents[1])
HELPER = os.path.join(os.path.dirname(BIN or ""), "casket-testhelper")  # built by swift build --build-tests
sys.path.insert(0, str(Path(PKG) / "bench"))
import bench_eight_writers  # noqa: E402


def gc(root: Path, *args: str, check: bool = True) -> dict:
    out = subprocess.run([BIN, "gc", "--store", str(root), "--json", *args], capture_output=True, text=True)
    if check:
        assert out.returncode == 0, out
    return json.loads(out.stdout) if out.returncode == 0 else {"exit": out.returncode, "stderr": out.stderr}


def fsck(root: Path, *args: str) -> dict:
    out = subprocess.run([BIN, "fsck", "--store", str(root), "--json", *args], capture_output=True, text=True)
    assert out.returncode == 0, out
    return json.loads(out.stdout)


def names(root: Path, suffix: str) -> set:
    return {n[: -len(suffix)] for n in os.listdir(root / "packs") if n.endswith(suffix)}


def value(i: int) -> np.ndarray:
    return np.random.default_rng(i).random(512)  # 4 KiB


def write_twice_at_once(root: Path, first: range, second: range, prefix: str = "") -> None:
    """Two sessions open at once: neither sees the other's open pack, so both pack the values they share."""
    a, b = casket.CacheDict(root), casket.CacheDict(root)
    with a.write(), b.write():
        for i in first:
            a[f"{prefix}a{i}"] = value(i)
        for i in second:
            b[f"{prefix}b{i}"] = value(i)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    casket.init_store(path, durability="group", pack_max=65536)
    return path


def test_eight_writers_leave_at_most_1_05x_the_unique_bytes_after_one_gc(tmp_path):
    r = bench_eight_writers.run(str(tmp_path / "store"), BIN, writers=8, values=400)
    assert r["before_ratio"] > 1.5, "the writers packed copies of one another's values"
    assert r["after_ratio"] <= 1.05, r
    assert r["gc"]["packs_removed"] >= 1 and r["gc"]["packs_retired"] == 0, "duplicates go at once"
    reader = casket.CacheDict(tmp_path / "store")
    for w in range(8):
        for i in range(400):
            assert np.array_equal(reader[f"w{w}-k{i}"], value(i)), (w, i)
    assert fsck(tmp_path / "store")["clean"]


def test_dry_run_reports_what_it_would_repack_and_changes_nothing(root):
    write_twice_at_once(root, range(0, 60), range(30, 90))
    before = {n: os.lstat(root / "packs" / n) for n in os.listdir(root / "packs")}
    report = gc(root, "--dry-run")
    # two small packs: combined into one (every record copied once), both removed at once
    assert (report["packs_repacked"], report["packs_removed"], report["records_copied"]) == (2, 2, 90), report
    assert [w["reason"] for w in report["would_remove"] if w["path"].endswith(".pack")] == ["pack", "pack"]
    after = {n: os.lstat(root / "packs" / n) for n in os.listdir(root / "packs")}
    assert before.keys() == after.keys()
    assert all((before[n].st_size, before[n].st_mtime_ns) == (after[n].st_size, after[n].st_mtime_ns) for n in before)
    real = gc(root)
    assert (real["packs_removed"], real["records_copied"], real["packs_written"]) == (2, 90, 1), real
    assert real["pack_bytes_freed"] > 120 * 4096 and real["bytes_reclaimed"] >= real["pack_bytes_freed"]
    assert len(names(root, ".pack")) == 1 and not names(root, ".retired")
    reader = casket.CacheDict(root)
    for i in range(60):
        assert np.array_equal(reader[f"a{i}"], value(i)) and np.array_equal(reader[f"b{i + 30}"], value(i + 30))


def dead_pack(root: Path, live: int = 3, dead: int = 17) -> str:
    """One sealed pack whose records are mostly dead (their keys deleted)."""
    cd = casket.CacheDict(root)
    with cd.write():
        for i in range(live + dead):
            cd[f"k{i}"] = value(i)
    with cd.write():
        for i in range(live, live + dead):
            del cd[f"k{i}"]
    (ident,) = names(root, ".pack")
    return ident


VIEW = textwrap.dedent("""
    import sys
    sys.path.insert(0, {pkg!r})
    import numpy as np, casket
    cd = casket.CacheDict(sys.argv[1])
    keys = sys.argv[2:]
    for line in sys.stdin:  # each line: read every key, answer with what did not read back
        bad = [k for k in keys if not np.array_equal(cd[k], np.random.default_rng(int(k[1:])).random(512))]
        if line.strip() == "write":  # write a dead record's value under a new key, in this process's view
            with cd.write():
                cd["again"] = np.random.default_rng(int(keys[-1][1:]) + 1).random(512)
        print(" ".join(bad) or "ok", flush=True)
""")


def test_a_dead_pack_is_retired_then_removed_a_grace_later_and_a_reader_keeps_its_view(root):
    old = dead_pack(root)
    reader = subprocess.Popen([sys.executable, "-c", VIEW.format(pkg=PKG), str(root), "k0", "k1", "k2"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    # The Swift reader: one BlobStore, so one view of packs/, across the collections.
    hashes = [xxhash.xxh3_128_hexdigest(value(i).tobytes()) for i in range(3)]
    swift = subprocess.Popen([HELPER, "pack-view", str(root), *hashes], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)

    def ask(line: str = "read") -> str:
        answers = [tell(proc, line) for proc in (reader, swift)]
        return "ok" if answers == ["ok", "ok"] else str(answers)

    try:
        assert ask() == "ok", "the reader holds a view of the old pack"
        first = gc(root, "--grace", "1s")
        assert (first["packs_retired"], first["packs_removed"], first["records_copied"]) == (1, 0, 3), first
        notice = json.loads((root / "packs" / (old + ".retired")).read_text())
        assert notice["retired"] > 0 and notice["pid"] > 0
        assert ask() == "ok"
        second = gc(root, "--grace", "1s")
        assert (second["packs_retired_waiting"], second["packs_removed"]) == (1, 0), "its grace is not over"
        time.sleep(2.2)
        third = gc(root, "--grace", "1s")
        assert third["packs_removed"] == 1 and third["pack_bytes_freed"] > 17 * 4096, third
        assert old not in names(root, ".pack") | names(root, ".idx") | names(root, ".retired")
        assert ask("write") == "ok", "the reader lost the old pack and found the copies in the new one"
        fresh = casket.CacheDict(root)
        assert np.array_equal(fresh["again"], value(3))
        assert fsck(root)["clean"]
    finally:
        for proc in (reader, swift):
            proc.kill()
            proc.wait()


WRITER_VIEW = textwrap.dedent("""
    import sys
    sys.path.insert(0, {pkg!r})
    import numpy as np, casket
    cd = casket.CacheDict(sys.argv[1])
    with cd.write():
        cd["first"] = np.random.default_rng(0).random(512)  # a dedup hit: the pack is in this writer's view
    print("ready", flush=True)
    sys.stdin.readline()
    with cd.write():
        cd["copy"] = np.random.default_rng(int(sys.argv[2])).random(512)
    print("done", flush=True)
""")


def tell(proc: subprocess.Popen, line: str) -> str:
    """Sends a line to a child process and returns its answer."""
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def packs_holding(root: Path, digest: str) -> set:
    held = set()
    for ident in names(root, ".pack"):
        fd = os.open(root / "packs" / (ident + ".pack"), os.O_RDONLY)
        try:
            if any(r.digest == digest for r, _ in packs.scan_records(fd, os.fstat(fd).st_size)[0]):
                held.add(ident)
        finally:
            os.close(fd)
    return held


def test_no_writer_dedups_against_a_retired_pack(root, tmp_path):
    old = dead_pack(root)
    for i in (0, 12):
        (tmp_path / f"v{i}.bin").write_bytes(value(i).tobytes())
    python = subprocess.Popen([sys.executable, "-c", WRITER_VIEW.format(pkg=PKG), str(root), "10"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    swift = subprocess.Popen([HELPER, "dedup-view", str(root), str(tmp_path / "v0.bin"), str(tmp_path / "v12.bin")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert python.stdout.readline().strip() == "ready" and swift.stdout.readline().strip() == "ready"
        assert gc(root, "--grace", "1s")["packs_retired"] == 1
        time.sleep(0.6)  # one look interval: each writer's view learns of the notice at its next dedup probe
        assert tell(python, "go") == "done" and tell(swift, "go") == "done"
    finally:
        for proc in (python, swift):
            proc.kill()
            proc.wait()
    for i, who in ((10, "the Python writer"), (12, "the Swift WriteSession")):
        held = packs_holding(root, xxhash.xxh3_128_hexdigest(value(i).tobytes()))
        assert old in held and len(held) == 2, f"{who} wrote a copy beside the retired record"
    # The Swift CLI: a new process, which lists packs/ and skips the retired pack too.
    src = tmp_path / "v11.bin"
    src.write_bytes(value(11).tobytes())
    assert subprocess.run([BIN, "set", "--store", str(root), "swift", str(src)], capture_output=True).returncode == 0
    held = packs_holding(root, xxhash.xxh3_128_hexdigest(value(11).tobytes()))
    assert old in held and len(held) == 2, "casket set wrote a copy beside the retired record"


def test_fsck_verifies_retired_packs_and_reports_those_past_their_grace(root):
    old = dead_pack(root)
    gc(root, "--grace", "1s")
    report = fsck(root, "--grace", "1h")
    assert report["retired_packs"] == 1 and report["retired_past_grace"] == []
    time.sleep(2.2)
    report = fsck(root, "--grace", "1s")
    assert [p["pack"] for p in report["retired_past_grace"]] == [old], report
    path = root / "packs" / (old + ".pack")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # a dead record of the retired pack
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    out = subprocess.run([BIN, "fsck", "--store", str(root)], capture_output=True, text=True)
    assert out.returncode == 5 and old + ".pack" in out.stdout, out


RACER = textwrap.dedent("""
    import os, random, sys, time
    sys.path.insert(0, {pkg!r})
    import numpy as np, casket
    root, me, until = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cd = casket.CacheDict(root)
    rng = random.Random(me)
    n = 0
    while time.time() < until:
        batch = []
        with cd.write():
            for _ in range(rng.randint(1, 20)):
                v = rng.randrange(60)  # a small pool: most puts dedup against old packed payloads
                key = f"{{me}}-{{n}}-{{v}}"
                cd[key] = np.random.default_rng(v).random(512)
                batch.append(key)
                n += 1
        gone = [k for k in batch if rng.random() < 0.9]
        with cd.write():
            for k in gone:
                del cd[k]  # dead records, so that GC retires packs
        print(" ".join(k for k in batch if k not in gone), flush=True)
""")


def test_writers_and_gcs_racing_lose_no_committed_key(root):
    until = time.time() + 8.0
    writers = [subprocess.Popen([sys.executable, "-c", RACER.format(pkg=PKG), str(root), f"w{i}", str(until)],
                                stdout=subprocess.PIPE, text=True) for i in range(3)]
    totals = {"packs_removed": 0, "packs_retired": 0, "records_copied": 0}
    while time.time() < until + 1.0:
        report = gc(root, "--grace", "1s")
        for k in totals:
            totals[k] += report[k]
        time.sleep(0.3)
    committed = []
    for w in writers:
        out, _ = w.communicate()
        assert w.returncode == 0
        committed += out.split()
    time.sleep(2.2)
    for _ in range(2):
        report = gc(root, "--grace", "1s")
        for k in totals:
            totals[k] += report[k]
    assert len(committed) > 50
    reader = casket.CacheDict(root)
    lost = [k for k in committed
            if not np.array_equal(reader.get(k), np.random.default_rng(int(k.rsplit("-", 1)[1])).random(512))]
    assert not lost, f"{len(lost)} of {len(committed)} committed keys lost, {totals}"
    assert fsck(root)["clean"]
    assert totals["packs_removed"] > 0 and totals["packs_retired"] > 0, totals


def test_a_collector_killed_during_a_repack_loses_nothing(tmp_path):
    root = tmp_path / "store"
    bench_eight_writers.run(str(root), BIN, writers=4, values=1000)
    for attempt, delay in enumerate([0.05, 0.1, 0.2, 0.4]):
        write_twice_at_once(root, range(0, 400), range(200, 600), prefix=f"r{attempt}")
        proc = subprocess.Popen([BIN, "gc", "--store", str(root), "--grace", "1s"], stdout=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader = casket.CacheDict(root)
        for i in range(200, 400):
            assert np.array_equal(reader[f"r{attempt}a{i}"], value(i)) and np.array_equal(reader[f"r{attempt}b{i}"], value(i))
    time.sleep(1.2)  # the killed collectors' locks and temp files are stale now
    gc(root, "--grace", "1s", "--lock-ttl", "1s")
    gc(root, "--grace", "1s")
    assert not names(root, ".pack") - names(root, ".idx"), "a killed collector's pack is sealed or removed"
    assert not names(root, ".retired") and not os.path.exists(root / "gc" / "lock")
    ratio = bench_eight_writers.disk_bytes(str(root)) / bench_eight_writers.unique_payload_bytes(str(root))
    assert ratio <= 1.05, ratio
    assert fsck(root)["clean"]


def test_a_full_disk_during_a_repack_loses_nothing_and_retires_nothing(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        root = mnt / "store"
        casket.init_store(root, durability="group", pack_max=65536)
        write_twice_at_once(root, range(0, 200), range(100, 300))
        victims = {n: os.lstat(root / "packs" / n).st_size for n in os.listdir(root / "packs")}
        st = os.statvfs(mnt)
        with open(mnt / "filler", "wb") as f:  # leaves 64 KiB: less than the 300 records the new pack needs
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 65536))
        failed = gc(root, check=False)
        assert failed["exit"] == 1 and "space" in failed["stderr"], failed
        assert not names(root, ".retired")
        assert all(os.lstat(root / "packs" / n).st_size == size for n, size in victims.items()), "victims untouched"
        reader = casket.CacheDict(root)
        for i in range(200):
            assert np.array_equal(reader[f"a{i}"], value(i)) and np.array_equal(reader[f"b{i + 100}"], value(i + 100))
        os.unlink(mnt / "filler")
        done = gc(root)
        assert done["packs_removed"] >= 2, done
        assert not names(root, ".pack") - names(root, ".idx")
        fresh = casket.CacheDict(root)
        for i in range(200):
            assert np.array_equal(fresh[f"a{i}"], value(i)) and np.array_equal(fresh[f"b{i + 100}"], value(i + 100))
        assert bench_eight_writers.disk_bytes(str(root)) <= 1.05 * bench_eight_writers.unique_payload_bytes(str(root))
        assert fsck(root)["clean"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


LATE = textwrap.dedent("""
    import sys
    sys.path.insert(0, {pkg!r})
    import numpy as np, casket
    cd = casket.CacheDict(sys.argv[1])
    with cd.write():
        cd["late"] = np.random.default_rng(10).random(512)  # a dedup hit on a dead record; its line waits
        print("deduped", flush=True)
        sys.stdin.readline()
    print("committed", flush=True)
""")


def test_a_record_deduped_before_its_pack_was_retired_is_copied_out_by_the_later_gc(root):
    old = dead_pack(root)
    proc = subprocess.Popen([sys.executable, "-c", LATE.format(pkg=PKG), str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "deduped"
        first = gc(root, "--grace", "1s")
        assert (first["packs_retired"], first["records_copied"]) == (1, 3), "the mark did not see 'late'"
        assert tell(proc, "go") == "committed"
    finally:
        proc.kill()
        proc.wait()
    assert old in packs_holding(root, xxhash.xxh3_128_hexdigest(value(10).tobytes())), "a dedup, not a copy"
    time.sleep(2.2)
    second = gc(root, "--grace", "1s")
    assert (second["packs_removed"], second["records_copied"]) == (1, 1), second
    assert np.array_equal(casket.CacheDict(root)["late"], value(10))
    assert fsck(root)["clean"]
