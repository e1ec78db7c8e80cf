"""A thread's index file and pack outlive its write session (casket.kept, docs/FORMAT.md 5.5): a loop of
one-value sessions appends to one index file and one pack, every session is committed when it ends (a
SIGKILL right after loses nothing), and the writers are sealed once idle, at exit, or on close()."""

import json
import multiprocessing
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
from casket import kept as kept_mod

BIN = os.environ.get("CASKET_BIN")
HAS_BIN = bool(BIN) and os.access(BIN, os.X_OK)
PKG = str(Path(__file__).resolve().parents[1])


def files(root: Path, folder: str, suffix: str) -> list:
    return sorted(p.name for p in (root / folder).iterdir() if p.name.endswith(suffix))


def sealed(path: Path) -> bool:
    lines = path.read_bytes().splitlines()
    return bool(lines) and json.loads(lines[-1]).get("sealed") is True


def test_a_loop_of_sessions_shares_one_index_file_and_one_pack_sealed_on_close(grouped):
    cd = casket.CacheDict(grouped)
    for i in range(50):
        with cd.write():
            cd[f"k{i}"] = np.full(64, i)
        other = casket.CacheDict(grouped)  # another reader sees each session's key once it ended
        assert np.array_equal(other[f"k{i}"], np.full(64, i))
    assert len(files(grouped, "index", ".jsonl")) == 1
    assert len(files(grouped, "packs", ".pack")) == 1
    assert files(grouped, "packs", ".idx") == [], "kept open for the next session"
    assert not sealed(grouped / "index" / files(grouped, "index", ".jsonl")[0])
    cd.close()
    assert len(files(grouped, "packs", ".idx")) == 1 and files(grouped, "packs", ".lease") == []
    assert sealed(grouped / "index" / files(grouped, "index", ".jsonl")[0])
    with cd.write():  # after close(), a new session starts new writers
        cd["after"] = np.arange(5)
    cd.close()
    assert len(files(grouped, "index", ".jsonl")) == 2 and len(files(grouped, "packs", ".idx")) == 2
    reader = casket.CacheDict(grouped)
    assert sorted(reader.keys()) == sorted([f"k{i}" for i in range(50)] + ["after"])
    assert np.array_equal(reader["k49"], np.full(64, 49))


def test_idle_writers_are_sealed_by_the_timer(grouped, monkeypatch):
    monkeypatch.setattr(kept_mod, "KEEP_SECONDS", 0.05)
    cd = casket.CacheDict(grouped)
    with cd.write():
        cd["a"] = np.arange(10)
    deadline = time.monotonic() + 30  # the timer's thread may start late on a busy machine
    while not files(grouped, "packs", ".idx") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(files(grouped, "packs", ".idx")) == 1 and files(grouped, "packs", ".lease") == []
    while not sealed(grouped / "index" / files(grouped, "index", ".jsonl")[0]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sealed(grouped / "index" / files(grouped, "index", ".jsonl")[0])
    with cd.write():  # the next session, after the seal, has writers of its own
        cd["b"] = np.arange(3)
    cd.close()
    assert len(files(grouped, "index", ".jsonl")) == 2
    assert sorted(casket.CacheDict(grouped).keys()) == ["a", "b"]


def test_each_thread_keeps_its_own_writers(grouped):
    cd = casket.CacheDict(grouped)
    errors = []

    def work(t: int) -> None:
        try:
            for i in range(20):
                with cd.write():
                    cd[f"t{t}-{i}"] = np.full(32, t * 100 + i)
            cd.close()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(files(grouped, "index", ".jsonl")) == 3 and len(files(grouped, "packs", ".idx")) == 3
    reader = casket.CacheDict(grouped)
    assert len(list(reader.keys())) == 60 and np.array_equal(reader["t2-19"], np.full(32, 219))


LOOP = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {pkg!r})
    import numpy as np, casket
    cd = casket.CacheDict(sys.argv[1])
    i = 0
    while True:
        with cd.write():
            cd[f"k{{i}}"] = np.full(100 + i % 50, i, dtype=np.int64)
        os.write(1, f"{{i}}\\n".encode())  # the session ended: k{{i}} is committed
        i += 1
""")


def test_a_writer_killed_between_sessions_loses_no_key(grouped):
    proc = subprocess.Popen([sys.executable, "-c", LOOP.format(pkg=PKG), str(grouped)], stdout=subprocess.PIPE)
    last = [proc.stdout.readline() for _ in range(30)][-1]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = int(last)
    reader = casket.CacheDict(grouped)
    for i in range(committed + 1):
        assert np.array_equal(reader[f"k{i}"], np.full(100 + i % 50, i, dtype=np.int64)), i
    assert len(files(grouped, "packs", ".pack")) == 1 and files(grouped, "packs", ".idx") == []
    if HAS_BIN:  # GC seals the killed writer's pack (its owner is gone) and fsck finds every record sound
        gc = subprocess.run([BIN, "gc", "--store", str(grouped), "--grace", "1s"], capture_output=True, text=True)
        assert gc.returncode == 0, gc.stdout + gc.stderr
        assert len(files(grouped, "packs", ".idx")) == 1
        out = subprocess.run([BIN, "fsck", "--store", str(grouped), "--json"], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
    reader = casket.CacheDict(grouped)
    assert all(f"k{i}" in reader for i in range(committed + 1))


EXITS = textwrap.dedent("""
    import sys
    sys.path.insert(0, {pkg!r})
    import numpy as np, casket
    cd = casket.CacheDict(sys.argv[1])
    for i in range(5):
        with cd.write():
            cd[f"k{{i}}"] = np.arange(i + 1)
""")


def test_the_process_exit_seals_what_it_kept(grouped):
    subprocess.run([sys.executable, "-c", EXITS.format(pkg=PKG), str(grouped)], check=True)
    assert len(files(grouped, "packs", ".idx")) == 1 and files(grouped, "packs", ".lease") == []
    assert sealed(grouped / "index" / files(grouped, "index", ".jsonl")[0])


def _pool_work(root: str, i: int) -> int:
    cd = casket.CacheDict(root)
    with cd.write():
        cd[f"w{i}"] = np.full(50, i)
    return os.getpid()


def test_multiprocessing_workers_seal_at_their_exit(grouped):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:  # its workers leave through os._exit: atexit does not run there
        pids = set(pool.starmap(_pool_work, [(str(grouped), i) for i in range(8)]))
        pool.close()
        pool.join()
    assert pids
    assert files(grouped, "packs", ".lease") == [] and files(grouped, "packs", ".pack") and all(
        (grouped / "packs" / (p[:-5] + ".idx")).exists() for p in files(grouped, "packs", ".pack"))
    assert all(sealed(grouped / "index" / f) for f in files(grouped, "index", ".jsonl"))
    reader = casket.CacheDict(grouped)
    assert sorted(reader.keys()) == sorted(f"w{i}" for i in range(8))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_pool_ended_by_its_with_block_leaves_its_workers_files_sealed(grouped, method):
    # the with block ends with Pool.terminate(): SIGTERM, no atexit, no Finalize; kept writers were left
    # unsealed there, 8 unsealed index files and 8 packs with a lease and no index for 8 tasks
    with multiprocessing.get_context(method).Pool(2) as pool:
        assert len(set(pool.starmap(_pool_work, [(str(grouped), i) for i in range(8)]))) >= 1
    assert files(grouped, "packs", ".lease") == [] and files(grouped, "packs", ".pack")
    assert all((grouped / "packs" / (p[:-5] + ".idx")).exists() for p in files(grouped, "packs", ".pack"))
    index_files = files(grouped, "index", ".jsonl")
    assert index_files and all(sealed(grouped / "index" / f) for f in index_files)
    reader = casket.CacheDict(grouped)
    assert sorted(reader.keys()) == sorted(f"w{i}" for i in range(8))
    assert np.array_equal(reader["w7"], np.full(50, 7))


def fork_a_writer(cd) -> int:
    """Forks a child that writes ``child`` in a session of its own, then exits 0 (1 if that failed)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            signal.alarm(60)  # never outlive the test
            with cd.write():
                cd["child"] = np.arange(7)
            cd.close()
            code = 0
        finally:
            os._exit(code)
    return pid


def test_a_forked_child_never_appends_to_its_parents_kept_writers(grouped):
    cd = casket.CacheDict(grouped)
    with cd.write():
        cd["parent-1"] = np.arange(4)
    pid = fork_a_writer(cd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with cd.write():
        cd["parent-2"] = np.arange(9)
    cd.close()
    index_files = files(grouped, "index", ".jsonl")
    assert len(index_files) == 2 and all(sealed(grouped / "index" / f) for f in index_files)
    child_file = [f for f in index_files if f"-{pid}-" in f]
    assert len(child_file) == 1 and b'"child"' in (grouped / "index" / child_file[0]).read_bytes()
    assert b'"child"' not in b"".join((grouped / "index" / f).read_bytes() for f in index_files if f not in child_file)
    reader = casket.CacheDict(grouped)
    assert sorted(reader.keys()) == ["child", "parent-1", "parent-2"]
    assert np.array_equal(reader["child"], np.arange(7)) and np.array_equal(reader["parent-2"], np.arange(9))


def test_a_child_forked_while_another_thread_probes_the_packs_can_write(grouped):
    # a write session of another thread holds the pack shelf's lock while it probes for a copy; a child
    # forked then inherited the lock held, and its first small value waited for it forever
    cd = casket.CacheDict(grouped)
    with cd.write():
        cd["parent"] = np.arange(4)
    shelf = cd.store.pack_shelf()
    held, release = threading.Event(), threading.Event()

    def probing() -> None:
        with shelf._lock:
            held.set()
            release.wait(60)

    thread = threading.Thread(target=probing)
    thread.start()
    held.wait(30)
    try:
        pid = fork_a_writer(cd)
        deadline, status = time.monotonic() + 60, None
        while status is None and time.monotonic() < deadline:
            done, st = os.waitpid(pid, os.WNOHANG)
            status = st if done else None
            time.sleep(0.01)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        assert status is not None, "the child hung on its parent's pack shelf lock"
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        release.set()
        thread.join()
    cd.close()
    reader = casket.CacheDict(grouped)
    assert sorted(reader.keys()) == ["child", "parent"] and np.array_equal(reader["child"], np.arange(7))


def test_a_session_that_raised_is_committed_and_its_writers_kept(grouped):
    cd = casket.CacheDict(grouped)
    with pytest.raises(RuntimeError, match="boom"):
        with cd.write():
            cd["a"] = np.arange(3)
            raise RuntimeError("boom")
    assert "a" in casket.CacheDict(grouped), "what was set before the error is committed, as before"
    with cd.write():
        cd["b"] = np.arange(2)
    cd.close()
    assert len(files(grouped, "index", ".jsonl")) == 1


def test_clear_seals_the_kept_writers_before_the_store_goes(grouped):
    cd = casket.CacheDict(grouped)
    with cd.write():
        cd["old"] = np.arange(6)
    cd.clear()  # removes the store; the next write makes a new one
    assert not (grouped / "casket.json").exists()
    with cd.write():
        cd["new"] = np.arange(8)
    cd.close()
    packs = files(grouped, "packs", ".pack")
    assert len(packs) == 1 and files(grouped, "packs", ".idx") == [packs[0][:-5] + ".idx"], "no index of a gone pack"
    reader = casket.CacheDict(grouped)
    assert list(reader.keys()) == ["new"] and np.array_equal(reader["new"], np.arange(8))


def test_writers_kept_for_a_removed_store_are_not_taken_again(grouped, tmp_path):
    import shutil

    cd = casket.CacheDict(grouped)
    with cd.write():
        cd["a"] = np.arange(3)
    other = casket.CacheDict(grouped)
    other.clear()  # another instance removes the store under this one's kept writers
    cd.clear()
    with cd.write():
        cd["b"] = np.arange(4)
    cd.close()
    assert list(casket.CacheDict(grouped).keys()) == ["b"]
    shutil.rmtree(grouped)
    pack = [p for p in os.listdir(tmp_path) if p.endswith(".idx")]
    assert pack == []


def test_keep_seconds_zero_seals_every_session_and_a_bad_value_is_refused_before_writing(grouped, monkeypatch):
    monkeypatch.setenv("CASKET_KEEP_SECONDS", "0")
    cd = casket.CacheDict(grouped)
    for i in range(3):
        with cd.write():
            cd[f"k{i}"] = np.arange(i + 2)
    assert len(files(grouped, "index", ".jsonl")) == 3 and len(files(grouped, "packs", ".idx")) == 3
    monkeypatch.setenv("CASKET_KEEP_SECONDS", "soon")
    with pytest.raises(casket.CasketError, match="CASKET_KEEP_SECONDS='soon': expected a number of seconds"):
        with cd.write():
            cd["never"] = np.arange(3)  # pragma: no cover - not reached
    monkeypatch.setenv("CASKET_KEEP_SECONDS", "-1")
    with pytest.raises(casket.CasketError, match="CASKET_KEEP_SECONDS='-1'"):
        with cd.write():
            pass  # pragma: no cover
    assert sorted(casket.CacheDict(grouped).keys()) == ["k0", "k1", "k2"]


SLOW_SEAL_AT_EXIT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {pkg!r})
    import numpy as np, casket
    from casket import kept, packs
    kept.KEEP_SECONDS = 0.2
    real_seal = packs.PackWriter.seal

    def slow_seal(self):
        time.sleep(1.0)  # a slow disk: the timer's seal is still under way when the script ends
        real_seal(self)

    packs.PackWriter.seal = slow_seal
    cd = casket.CacheDict(sys.argv[1])
    with cd.write():
        cd["a"] = np.arange(100)
    time.sleep(0.6)
""")


def test_an_exit_while_the_timer_seals_waits_for_the_seal(grouped):
    # the timer's seal ran in a daemon thread that end_kept() at exit no longer listed: the interpreter
    # stopped it half way, leaving the pack with its lease and without an index
    run = subprocess.run([sys.executable, "-c", SLOW_SEAL_AT_EXIT.format(pkg=PKG), str(grouped)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    packs = files(grouped, "packs", ".pack")
    assert len(packs) == 1 and files(grouped, "packs", ".idx") == [packs[0][:-5] + ".idx"], run.stderr
    assert files(grouped, "packs", ".lease") == []
    assert sealed(grouped / "index" / files(grouped, "index", ".jsonl")[0])
    assert np.array_equal(casket.CacheDict(grouped)["a"], np.arange(100))


def test_cancelled_timers_do_not_pile_up_in_a_loop_of_sessions(tmp_path, monkeypatch):
    from casket import timers

    # each session arms a seal timer that the next one cancels; cancelled timers left the heap only once at
    # its top, so with one thread's writers idle (a timer due first) the heap grew by one entry, holding a
    # KeptWriters, per session: 1.5 KiB a session, 250 MB in 100k sessions of a store without flushes
    monkeypatch.setattr(kept_mod, "KEEP_SECONDS", 3600.0)
    root = tmp_path / "store"
    casket.init_store(root, durability="none", pack_max=65536)
    cd = casket.CacheDict(root)

    def idle() -> None:
        with cd.write():
            cd["idle"] = 1  # this thread's writers stay kept, their timer due before any of the loop's

    thread = threading.Thread(target=idle)
    thread.start()
    thread.join()
    import weakref

    first = None
    for i in range(3000):
        with cd.write():
            cd[f"k{i}"] = i
        if i == 0:
            first = weakref.ref(kept_mod._BY_PLACE[kept_mod._place(cd.store)])
    assert len(timers._CLOCK._heap) < 200, len(timers._CLOCK._heap)
    assert first() is None, "a cancelled timer keeps nothing of what its callback held"
    kept_mod.end_kept()
    reader = casket.CacheDict(root)
    assert len(list(reader.keys())) == 3001 and reader["k2999"] == 2999


def test_timers_fire_when_no_thread_can_be_started_and_a_failing_callback_is_logged(monkeypatch, caplog):
    from casket import timers

    clock = timers._Clock()  # a clock of its own, so that only its thread is refused threads
    fired: list = []
    done = threading.Event()

    def boom() -> None:
        raise ValueError("boom in a timer")

    caplog.set_level("ERROR", logger="casket")
    clock.after(0.01, boom)  # with a thread of its own: logged, not only printed by the thread's hook
    clock.after(0.05, lambda: fired.append("threaded"))
    deadline = time.monotonic() + 30
    while len(fired) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fired == ["threaded"]
    assert any("a timer's callback" in r.getMessage() and "boom in a timer" in str(r.exc_info[1])
               for r in caplog.records)
    real_start = threading.Thread.start

    def refuse(self: threading.Thread) -> None:
        if self.name == "casket-timer":
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", refuse)
    caplog.clear()
    clock.after(0.01, boom)  # the clock's thread used to die here, and no timer of the process fired again
    clock.after(0.05, done.set)
    assert done.wait(30), "a timer after a refused thread still fires"
    assert any("boom in a timer" in str(r.exc_info[1]) for r in caplog.records)


def test_a_cachedict_made_for_every_session_takes_the_writers_the_last_one_kept(grouped):
    """Kept per thread and store, not per instance: a function that makes a CacheDict for each value leaves
    one index file and one pack, not one of each per call held open for seconds."""
    for i in range(30):
        cd = casket.CacheDict(grouped)
        with cd.write():
            cd[f"k{i}"] = np.full(40, i)
    assert len(files(grouped, "index", ".jsonl")) == 1 and len(files(grouped, "packs", ".pack")) == 1
    a, b = casket.CacheDict(grouped), casket.CacheDict(grouped)
    for i in range(5):  # two instances in turn in one thread: still the same writers
        with a.write():
            a[f"a{i}"] = np.arange(i + 1)
        with b.write():
            b[f"b{i}"] = np.arange(i + 2)
    assert len(files(grouped, "index", ".jsonl")) == 1 and len(files(grouped, "packs", ".pack")) == 1
    b.close()  # any instance on the store seals this thread's kept writers
    assert len(files(grouped, "packs", ".idx")) == 1
    assert sealed(grouped / "index" / files(grouped, "index", ".jsonl")[0])
    reader = casket.CacheDict(grouped)
    assert len(list(reader.keys())) == 40 and np.array_equal(reader["b4"], np.arange(6))


def test_a_session_that_leaves_its_pack_a_quarter_full_seals_it(grouped):
    """Only a small pack is kept open: others read an open pack by scanning it (casket.packs.seal_if_large)."""
    cd = casket.CacheDict(grouped)
    with cd.write():
        cd["small"] = np.arange(100)
    assert files(grouped, "packs", ".idx") == []
    with cd.write():  # 1,100 arrays of 4 KiB: the pack passes a quarter of its 16 MiB
        for i in range(1100):
            cd[f"k{i}"] = np.full(512, i, dtype=np.float64)
    assert len(files(grouped, "packs", ".idx")) == 1, "sealed as the session ended"
    assert not sealed(grouped / "index" / files(grouped, "index", ".jsonl")[0]), "the index file is still kept"
    with cd.write():
        cd["next"] = np.arange(3)  # a new pack, the same index file
    cd.close()
    assert len(files(grouped, "packs", ".idx")) == 2 and len(files(grouped, "index", ".jsonl")) == 1
    reader = casket.CacheDict(grouped)
    assert len(list(reader.keys())) == 1102 and np.array_equal(reader["k1099"], np.full(512, 1099.0))


def test_a_cachedict_made_for_each_session_keeps_one_set_and_leaks_no_descriptor(grouped, monkeypatch):
    # each instance kept its own writers, and with them its store and that store's view of packs/ (a
    # descriptor per pack, which nothing closed when the view was dropped either): 1,500 sessions ran out
    # of descriptors ("Too many open files") with a limit of 20,000
    monkeypatch.setattr(kept_mod, "KEEP_SECONDS", 3600.0)
    before = len(os.listdir("/proc/self/fd"))
    for i in range(150):
        cd = casket.CacheDict(grouped)  # as a function that opens the folder for each value
        with cd.write():
            cd[f"k{i}"] = np.full(20, i)
        del cd
    import gc

    gc.collect()
    opened = len(os.listdir("/proc/self/fd")) - before
    assert opened < 1000, f"{opened} descriptors left open by 150 sessions"
    index_files = files(grouped, "index", ".jsonl")
    assert len(index_files) == 1 and not sealed(grouped / "index" / index_files[0]), "each took the last one's"
    assert len(files(grouped, "packs", ".lease")) == 1
    kept_mod.end_kept()
    assert files(grouped, "packs", ".lease") == [] and len(files(grouped, "packs", ".idx")) == 1
    reader = casket.CacheDict(grouped)
    assert all(np.array_equal(reader[f"k{i}"], np.full(20, i)) for i in range(150))
