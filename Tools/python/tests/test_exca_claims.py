"""Compute once in exca's MapInfra through Casket's claims (docs/EXCA.md, "Compute once across workers").

Real processes in the real exca (the layered venvs of test_exca_switch.py): 8 workers run one MapInfra
method over the same 50 items, with exca's own in-flight registry disabled, and every computation is
logged to a file. A worker killed with kill -9 in the middle of an item has its items taken over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import typing as tp
from pathlib import Path

import numpy as np
import pytest

from test_exca_switch import Layered, layered  # noqa: F401  (module fixtures, reused)

WORKERS, ITEMS, SIZE = 8, 50, 1000

# The pipeline, a module (a process pool pickles the model by reference: it cannot live in __main__). Every
# computation begun is logged to $CLAIMS_LOG; the worker whose $HANG_AT is N hangs in its (N+1)-th item.
MODEL = """
import os, time, typing as tp
import numpy as np, pydantic, exca
computed = []
class Model(pydantic.BaseModel):
    seed: int = 7
    infra: exca.MapInfra = exca.MapInfra()
    @infra.apply(item_uid=str)
    def process(self, items: tp.Iterable[int]) -> tp.Iterator[np.ndarray]:
        for item in items:
            with open(os.environ["CLAIMS_LOG"], "a") as f:
                f.write(f"start {item} {os.getpid()}\\n")
            if len(computed) == int(os.environ.get("HANG_AT", "-1")):
                time.sleep(600)  # killed here
            time.sleep(0.01)
            computed.append(item)
            yield np.full(%(size)d, item * self.seed, dtype=np.int64)
""" % {"size": SIZE}

# One worker: waits at a barrier (the file GO) so the workers overlap, then runs the method over every item.
# NO_REGISTRY=1 disables exca's in-flight registry as exca itself does when it has none (the session then
# claims everything for everyone): what an NFS mount that breaks SQLite's locks leaves of it.
WORKER = """
import json, os, sys, time
from pathlib import Path
import numpy as np, exca.map
from claims_pipeline import Model
folder, ready, go = sys.argv[1:4]
if os.environ.get("NO_REGISTRY") == "1":
    exca.map.MapInfra._inflight_registry = lambda self: None
model = Model(infra={"folder": folder, "cluster": os.environ.get("CLUSTER") or None, "max_jobs": 2,
                     "forbid_single_item_computation": os.environ.get("FORBID") == "1"})
Path(ready, str(os.getpid())).touch()
while not Path(go).exists():
    time.sleep(0.005)
out = list(model.process(list(range(%(items)d))))
ok = len(out) == %(items)d and all(np.array_equal(o, np.full(%(size)d, i * 7)) for i, o in enumerate(out))
print(json.dumps({"ok": ok, "pid": os.getpid(), "cache": type(model.infra.cache_dict).__module__}))
""" % {"size": SIZE, "items": ITEMS}


class Run(tp.NamedTuple):
    starts: list[tuple[int, int]]  # (item, pid) for every computation begun
    outputs: list[dict]
    uid_folder: Path


def _env(tmp: Path, switch: bool, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CASKET_EXCA", "PYTHONPATH")}
    if switch:
        env["CASKET_EXCA"] = "1"
    env.update(extra, CLAIMS_LOG=str(tmp / "log"), PYTHONPATH=str(tmp / "code"))
    return env


def _spawn(python: Path, tmp: Path, env: dict[str, str], go: Path) -> subprocess.Popen:
    code = tmp / "code"
    if not code.exists():
        code.mkdir()
        (code / "claims_pipeline.py").write_text(MODEL)
    return subprocess.Popen([str(python), "-c", WORKER, str(tmp / "cache"), str(tmp / "ready"), str(go)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(what: tp.Callable[[], bool], procs: list[subprocess.Popen], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        dead = [p for p in procs if p.poll() is not None]
        assert not dead, [p.communicate() for p in dead]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _starts(log: Path) -> list[tuple[int, int]]:
    rows = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return [(int(r[1]), int(r[2])) for r in rows if r[0] == "start"]


def _collect(procs: list[subprocess.Popen], tmp: Path) -> Run:
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"exit {p.returncode}\n{out}\n{err}"
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    uid_folders = {p.parent for p in (tmp / "cache").rglob("uid.yaml")}
    assert len(uid_folders) == 1, uid_folders
    return Run(_starts(tmp / "log"), outputs, uid_folders.pop())


def _run_workers(python: Path, tmp: Path, switch: bool, **extra: str) -> Run:
    (tmp / "cache").mkdir()
    (tmp / "ready").mkdir()
    go = tmp / "go"
    procs = [_spawn(python, tmp, _env(tmp, switch, **extra), go) for _ in range(WORKERS)]
    _wait_for(lambda: len(list((tmp / "ready").iterdir())) == WORKERS, procs)
    go.touch()
    return _collect(procs, tmp)


def _blob_bytes(store: Path) -> int:
    """Payload bytes on disk: blob files, and the records of packs (small payloads, the default)."""
    from casket import packs

    total = sum(p.stat().st_size for p in (store / "blobs").rglob("*") if p.is_file())
    for pack in (store / "packs").glob("*.pack"):
        fd = os.open(pack, os.O_RDONLY)
        try:
            total += sum(record.stored for record, _ in packs.scan_records(fd, os.fstat(fd).st_size)[0])
        finally:
            os.close(fd)
    return total


def _check_store(uid_folder: Path) -> None:
    """Every item once in the store, with its value; the blobs hold each payload once (1.00x)."""
    import casket

    cd = casket.CacheDict(uid_folder)
    assert sorted(cd.keys(), key=int) == [str(i) for i in range(ITEMS)]
    assert all(np.array_equal(cd[str(i)], np.full(SIZE, i * 7)) for i in range(ITEMS))
    assert _blob_bytes(uid_folder) == ITEMS * SIZE * 8  # 1.00x: one copy of each payload
    assert not (uid_folder / "inflight.db").exists()  # exca's SQLite registry is not used with the switch


@pytest.mark.parametrize("cluster", ["", "threadpool", "local", "processpool", "debug"])
@pytest.mark.parametrize("version", ["0.6.0", "0.5.29"])
def test_eight_workers_compute_each_item_once(layered: Layered, tmp_path: Path, version: str,  # noqa: F811
                                              cluster: str) -> None:
    if cluster and version != "0.6.0":
        pytest.skip("one cluster mode per exca version is enough")
    run = _run_workers(layered(version), tmp_path, switch=True, NO_REGISTRY="1", CLUSTER=cluster)
    items = sorted(item for item, _ in run.starts)
    assert items == list(range(ITEMS)), f"{len(items)} computations for {ITEMS} items"
    assert all(o["ok"] and o["cache"] == "casket.cachedict" for o in run.outputs), run.outputs
    _check_store(run.uid_folder)
    assert list((run.uid_folder / "claims").iterdir()) == []  # every claim released


def test_without_the_switch_a_disabled_registry_computes_again(layered: Layered, tmp_path: Path) -> None:  # noqa: F811
    """The control: the same workers on exca with its registry disabled compute items more than once."""
    run = _run_workers(layered("0.6.0"), tmp_path, switch=False, NO_REGISTRY="1")
    assert all(o["ok"] and o["cache"] == "exca.cachedict.core" for o in run.outputs), run.outputs
    assert len(run.starts) > ITEMS, len(run.starts)


@pytest.mark.parametrize("version,hang_at,forbid", [("0.6.0", 10, ""), ("0.5.29", 10, ""), ("0.6.0", 49, "1")])
def test_killed_worker_items_are_taken_over(layered: Layered, tmp_path: Path, version: str,  # noqa: F811
                                            hang_at: int, forbid: str) -> None:
    """A worker holding every claim is killed with kill -9 in its 11th item; the 7 others, waiting for it,
    take its items over: the 10 it stored are not computed again, each other item is computed once more.
    Killed in its last item under forbid_single_item_computation, that one item is taken over, not refused
    (the call is over 50 items, not one)."""
    python = layered(version)
    (tmp_path / "cache").mkdir()
    (tmp_path / "ready").mkdir()
    victim_go, go = tmp_path / "victim-go", tmp_path / "go"
    victim_go.touch()
    env = {"NO_REGISTRY": "1", "FORBID": forbid}
    victim = _spawn(python, tmp_path, _env(tmp_path, True, HANG_AT=str(hang_at), **env), victim_go)
    others = [_spawn(python, tmp_path, _env(tmp_path, True, **env), go) for _ in range(WORKERS - 1)]
    log = tmp_path / "log"
    _wait_for(lambda: len(_starts(log)) == hang_at + 1 and len(list((tmp_path / "ready").iterdir())) == WORKERS,
              [victim, *others])
    go.touch()
    time.sleep(1.0)  # the others find every item claimed by the victim, or stored, and wait
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=30)
    run = _collect(others, tmp_path)
    by_victim = [item for item, pid in run.starts if pid == victim.pid]
    stored_by_victim, hung = by_victim[:hang_at], by_victim[hang_at]
    by_others = sorted(item for item, pid in run.starts if pid != victim.pid)
    assert len(by_victim) == hang_at + 1
    assert by_others == sorted(set(range(ITEMS)) - set(stored_by_victim)), (hung, by_others)
    assert all(o["ok"] for o in run.outputs), run.outputs
    _check_store(run.uid_folder)
    import casket

    left = casket.ClaimBoard(casket.Store(run.uid_folder)).list()  # only the dead victim's, on items it stored
    assert all(c.pid == victim.pid and c.stale and c.key in {str(i) for i in stored_by_victim} for c in left), left


def test_switch_off_again_restores_exca_map(layered: Layered) -> None:  # noqa: F811
    """uninstall() gives exca.map back its own in-flight module and MapInfra its own methods."""
    code = """
import json, exca.map, exca.cachedict.inflight as real, casket.exca
M = exca.map.MapInfra
before = (exca.map.inflight is real, M._recheck_after_wait, M._find_missing)
casket.exca.install()
during = exca.map.inflight is not real and M._recheck_after_wait is not before[1] and M._find_missing is not before[2]
casket.exca.uninstall()
after = exca.map.inflight is real and M._recheck_after_wait is before[1] and M._find_missing is before[2]
casket.exca.install(); casket.exca.install()
again = type(exca.map.inflight).__name__, exca.map.inflight.InflightRegistry is real.InflightRegistry
print(json.dumps([before[0], during, after, list(again)]))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("CASKET_EXCA", "PYTHONPATH")}
    out = subprocess.run([str(layered("0.6.0")), "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [True, True, True, ["_MapInflight", True]]
