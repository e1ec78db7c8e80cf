"""The exca switch (docs/EXCA.md): ``casket.exca.install()`` and ``CASKET_EXCA=1``, run in the real exca.

Each exca version runs in its own venv (Tools/exca-fixtures/venv.sh). The client is installed into a
small venv layered on it (exca's site-packages on its path) with ``pip install -e``, exactly as a user
installs it, so the ``casket_exca.pth`` hook the package ships is what turns the switch on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import typing as tp
from pathlib import Path

import pytest

from excavenv import CLIENT, layered_factory

Layered = tp.Callable[[str], Path]  # exca version -> the python of a venv with exca and this client


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory) -> Layered:
    return layered_factory(tmp_path_factory)


def run(python: Path, code: str, *args: str, switch: bool = True, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("CASKET_EXCA", "PYTHONPATH")}
    if switch:
        env["CASKET_EXCA"] = "1"
    out = subprocess.run([str(python), "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                         env=env, cwd=cwd, timeout=120)
    assert out.returncode == 0, f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out.stdout


# Every module of the venv's exca that holds a CacheDict attribute (exca's class or an alias of it).
ROUND_TRIP = """
import importlib, json, sys
from pathlib import Path
import exca
top = Path(exca.__file__).parent
names = sorted(".".join(("exca", *p.relative_to(top).with_suffix("").parts)).removesuffix(".__init__")
               for p in top.rglob("*.py") if not p.name.startswith(("test_", "conftest")))
def holders():
    out = {}
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:  # a module this exca cannot import (0.5.11's exca.chain with new pydantic)
            continue
        for attr in ("CacheDict", "CacheDictWriter"):
            if isinstance(getattr(module, attr, None), type) and getattr(module, attr).__name__ == "CacheDict":
                out[f"{name}.{attr}"] = getattr(module, attr)
    return out
import casket, casket.exca
before = holders()
casket.exca.install(); casket.exca.install()
during = holders()
casket.exca.uninstall()
after = holders()
print(json.dumps({
    "holders": sorted(before),
    "before_exca": all(v.__module__.startswith("exca") for v in before.values()),
    "during_casket": all(v is casket.CacheDict for v in during.values()),
    "after_same": all(after[k] is before[k] for k in before) and sorted(after) == sorted(before),
}))
"""


@pytest.mark.parametrize("version", ["0.6.0", "0.5.29", "0.5.11"])
def test_install_uninstall_round_trip(layered: Layered, version: str) -> None:
    python = layered(version)
    got = json.loads(run(python, ROUND_TRIP, switch=False))
    assert got["before_exca"] and got["during_casket"] and got["after_same"], got
    must = {"exca.cachedict.CacheDict", "exca.map.CacheDict"}
    if version != "0.5.11":
        must |= {"exca.cachedict.core.CacheDict"}
    if version == "0.5.29":
        must |= {"exca.cachedict.CacheDictWriter"}  # the deprecated alias of CacheDict
    assert must <= set(got["holders"]), got["holders"]


HOOKED = """
import json, sys
import casket.exca
print(json.dumps({"installed": casket.exca.installed()}))
import exca, exca.map, exca.cachedict, casket
names = ["exca.cachedict", "exca.map"] + [n for n in ("exca.cachedict.core", "exca.steps.backends",
                                                      "exca.chain.steps") if n in sys.modules]
patched = {n: getattr(sys.modules[n], "CacheDict", casket.CacheDict) is casket.CacheDict for n in names}
import exca.steps.base  # uses exca.cachedict.CacheDict in its isinstance checks
casket.exca.uninstall()
restored = {n: getattr(sys.modules[n], "CacheDict", None) is not casket.CacheDict for n in names}
print(json.dumps({"patched": patched, "restored": restored}))
"""


@pytest.mark.parametrize("version", ["0.6.0", "0.5.29"])
def test_switch_patches_exca_imported_after_start(layered: Layered, version: str) -> None:
    lines = run(layered(version), HOOKED).splitlines()
    assert json.loads(lines[0]) == {"installed": True}
    got = json.loads(lines[1])
    assert got["patched"] and all(got["patched"].values()), got
    assert all(got["restored"].values()), got


def test_unset_switch_imports_nothing(layered: Layered) -> None:
    python = layered("0.6.0")
    code = ("import sys, json; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('casket', 'exca'))))")
    assert json.loads(run(python, code, switch=False)) == []
    for off in ("", "0"):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["CASKET_EXCA"] = off
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, check=True)
        assert json.loads(out.stdout) == [], off
    assert json.loads(run(python, code)) and "casket.exca" in json.loads(run(python, code))


PIPELINE = """
import sys, typing as tp
from pathlib import Path
import numpy as np
import pydantic
import exca

COUNT = Path(sys.argv[2])

class Model(pydantic.BaseModel):
    scale: int = 3
    infra: exca.MapInfra = exca.MapInfra()

    @infra.apply(item_uid=str)
    def process(self, items: tp.Iterable[int]) -> tp.Iterator[np.ndarray]:
        for item in items:
            with COUNT.open("a") as f:
                f.write(f"{item}\\n")
            yield np.arange(item, dtype=np.float32) * self.scale

model = Model(infra={"folder": sys.argv[1]})
out = list(model.process([1, 2, 5, 2]))
cd = model.infra.cache_dict
print(type(cd).__module__, len(cd), [o.tolist() for o in out])
"""


@pytest.mark.parametrize("version", ["0.6.0", "0.5.29"])
def test_mapinfra_writes_casket_and_reads_back(layered: Layered, tmp_path: Path, version: str) -> None:
    python = layered(version)
    folder, count = tmp_path / "cache", tmp_path / "computed.txt"
    folder.mkdir()
    values = [[0.0], [0.0, 3.0], [0.0, 3.0, 6.0, 9.0, 12.0], [0.0, 3.0]]
    first = run(python, PIPELINE, str(folder), str(count))
    assert first.strip() == f"casket.cachedict 3 {values}"
    assert sorted(count.read_text().split()) == ["1", "2", "5"]  # each item once
    stores = sorted(p.parent for p in folder.rglob("casket.json"))
    assert len(stores) == 1, stores
    store = stores[0]
    assert (store / "index").is_dir() and any((store / "index").iterdir())
    exca_files = [p for p in folder.rglob("*") if (p.name.endswith(".jsonl") and p.parent.name != "index")
                  or p.suffix == ".data" or p.parent.name == "data"]
    assert exca_files == []
    # a second process reads the three values from the store and computes nothing
    second = run(python, PIPELINE, str(folder), str(count))
    assert second.strip() == f"casket.cachedict 3 {values}"
    assert sorted(count.read_text().split()) == ["1", "2", "5"]
    # and the store is an ordinary Casket store
    import casket

    cd = casket.CacheDict(store)
    assert sorted(cd.keys()) == ["1", "2", "5"]
    assert cd["5"].tolist() == values[2]


def test_mapinfra_without_switch_is_exca(layered: Layered, tmp_path: Path) -> None:
    python = layered("0.6.0")
    folder, count = tmp_path / "cache", tmp_path / "computed.txt"
    folder.mkdir()
    out = run(python, PIPELINE, str(folder), str(count), switch=False)
    assert out.split()[0] == "exca.cachedict.core"
    assert not list(folder.rglob("casket.json")) and list(folder.rglob("*-info.jsonl"))


RAM_ONLY = """
import typing as tp, pydantic, exca
calls = []
class Model(pydantic.BaseModel):
    infra: exca.MapInfra = exca.MapInfra()  # no folder: exca keeps values in RAM (keep_in_ram=True)
    @infra.apply(item_uid=str)
    def process(self, items: tp.Iterable[int]) -> tp.Iterator[int]:
        for item in items:
            calls.append(item)
            yield item * 10
m = Model()
print(list(m.process([1, 2])), list(m.process([2, 3])), sorted(calls), type(m.infra.cache_dict).__module__)
m2 = Model(infra={"keep_in_ram": False})  # neither: no cache at all, as in exca
print(list(m2.process([1])), list(m2.process([1])))
"""


def test_mapinfra_folder_none(layered: Layered) -> None:
    out = run(layered("0.6.0"), RAM_ONLY).splitlines()
    assert out[0] == "[10, 20] [20, 30] [1, 2, 3] casket.cachedict"
    assert out[1] == "[10] [10]"


# The same calls on exca's CacheDict and on casket's, in exca 0.6.0's venv: the transcripts must match.
PARITY = """
import sys, warnings
from pathlib import Path
import numpy as np
if sys.argv[1] == "exca":
    from exca.cachedict import CacheDict
else:
    from casket import CacheDict
root = Path(sys.argv[2])
log = []
def say(*a):
    log.append(" ".join(str(x) for x in a))
def attempt(f):
    try:
        return f()
    except Exception as e:
        say("raised", type(e).__name__, e)
attempt(lambda: CacheDict(None))
ram = CacheDict(None, keep_in_ram=True)
ram["a"] = 1  # no write() needed without a folder
with ram.write():
    ram["b"] = [1, 2]
say("ram", sorted(ram), len(ram), bool(ram), "a" in ram, ram["b"])
attempt(lambda: ram["zz"])
attempt(lambda: ram.__setitem__("a", 2))
del ram["a"]
say("ram after del", sorted(ram))
ram.clear()
say("ram after clear", sorted(ram), bool(ram))
missing = root / "does" / "not" / "exist"
cd = CacheDict(missing, keep_in_ram=True)
say("missing", sorted(cd), len(cd), bool(cd), "x" in cd, missing.exists())
attempt(lambda: cd["x"])
attempt(lambda: cd.__setitem__("x", 1))
with cd.write():
    cd["x"] = np.arange(3)
say("written", sorted(cd), type(cd["x"]).__name__, cd["x"].tolist(), cd["x"] is cd["x"])
other = CacheDict(missing)
say("other", sorted(other), type(other["x"]).__name__)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with cd.writer() as w:
        w["y"] = {"k": 1}
say("writer", [c.category.__name__ for c in caught], sorted(cd), cd["y"])
cd.clear()
say("cleared", sorted(cd), len(cd), missing.exists(), sorted(p.name for p in missing.iterdir()))
say("cleared other", sorted(CacheDict(missing)))
with cd.write():
    cd["z"] = "again"
say("rewritten", sorted(CacheDict(missing)), CacheDict(missing)["z"])
fresh = root / "fresh" / "deeper"
f = CacheDict(fresh)
with f.write():
    attempt(lambda: f.__delitem__("nope"))
say("empty session", fresh.exists(), sorted(p.name for p in fresh.iterdir()), sorted(f))
print("\\n".join(log))
"""


def test_cachedict_behaves_as_exca(layered: Layered, tmp_path: Path) -> None:
    python = layered("0.6.0")
    (tmp_path / "e").mkdir()
    (tmp_path / "c").mkdir()
    exca_log = run(python, PARITY, "exca", str(tmp_path / "e"), switch=False).splitlines()
    casket_log = run(python, PARITY, "casket", str(tmp_path / "c"), switch=False).splitlines()
    assert casket_log == exca_log
    assert casket_log[0] == "raised ValueError At least folder or keep_in_ram should be activated"
    assert "missing [] 0 False False False" in casket_log
    assert "written ['x'] memmap [0, 1, 2] True" in casket_log  # what exca returns: the stored memmap, kept
    assert "writer ['DeprecationWarning'] ['x', 'y'] {'k': 1}" in casket_log
    assert "cleared [] 0 True []" in casket_log
    assert "rewritten ['z'] again" in casket_log
    assert casket_log[-2:] == ["raised KeyError 'nope'", "empty session True [] []"]  # the folder, no store yet


RACE = """
import sys, time
from pathlib import Path
from casket import CacheDict
folder, me, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
while time.time() < start:
    pass
cd = CacheDict(folder)
with cd.write():
    cd[f"k{me}"] = me
print("ok")
"""


def test_first_writes_racing_create_one_store(tmp_path: Path) -> None:
    import time

    import casket

    folder = tmp_path / "new"
    start = time.time() + 1.0
    env = {**os.environ, "PYTHONPATH": str(CLIENT)}  # this tree's client, whatever the venv has installed
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(folder), str(i), str(start)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outs
    cd = casket.CacheDict(folder)
    assert sorted(cd.keys()) == sorted(f"k{i}" for i in range(8))
    assert [cd[f"k{i}"] for i in range(8)] == [str(i) for i in range(8)]
    assert len(list(folder.rglob("casket.json"))) == 1
    assert list((folder / "tmp").iterdir()) == []


JOBS = """
import os, sys, typing as tp
from pathlib import Path
import numpy as np, pydantic, exca
COUNT = Path(sys.argv[2])
class Model(pydantic.BaseModel):
    infra: exca.MapInfra = exca.MapInfra()
    @infra.apply(item_uid=str)
    def process(self, items: tp.Iterable[int]) -> tp.Iterator[np.ndarray]:
        import casket.exca
        for item in items:
            with COUNT.open("a") as f:
                f.write(f"{item} {os.getpid()} {casket.exca.installed()}\\n")
            yield np.full(item, item)
m = Model(infra={"folder": sys.argv[1], "cluster": sys.argv[3], "max_jobs": 2})
print([o.tolist() for o in m.process([1, 2, 3])], type(m.infra.cache_dict).__module__, os.getpid())
"""


@pytest.mark.parametrize("cluster", ["local"])
def test_jobs_in_other_processes_write_through_casket(layered: Layered, tmp_path: Path, cluster: str) -> None:
    """submitit's local jobs are new processes: the variable they inherit turns the
    switch on there too, so their writes land in the Casket store the parent then reads."""
    python = layered("0.6.0")
    folder, count = tmp_path / "cache", tmp_path / "computed.txt"
    folder.mkdir()
    out = run(python, JOBS, str(folder), str(count), cluster).split()
    assert " ".join(out[:-1]) == "[[1], [2, 2], [3, 3, 3]] casket.cachedict"
    rows = [line.split() for line in count.read_text().splitlines()]
    assert sorted(r[0] for r in rows) == ["1", "2", "3"]
    assert all(r[1] != out[-1] and r[2] == "True" for r in rows), rows  # computed in switched-on children
    store = next(folder.rglob("casket.json")).parent
    assert not list(folder.rglob("*-info.jsonl"))
    import casket

    assert sorted(casket.CacheDict(store).keys()) == ["1", "2", "3"]


STEPS = """
import sys
from pathlib import Path
from exca.steps import Step
COUNT = Path(sys.argv[2])
class Mult(Step):
    coeff: float = 2.0
    def _run(self, value: float) -> float:
        with COUNT.open("a") as f:
            f.write(f"{value}\\n")
        return value * self.coeff
step = Mult(coeff=3.0, infra={"backend": "Cached", "folder": sys.argv[1]})
print(step.run(5.0), step.run(5.0), step.lookup(5.0).cached())
"""


@pytest.mark.parametrize("version", ["0.6.0", "0.5.29"])
def test_steps_backend_writes_casket(layered: Layered, tmp_path: Path, version: str) -> None:
    """exca.steps builds its CacheDict through ``exca.cachedict.CacheDict`` (0.5.x with ``permissions=``)."""
    python = layered(version)
    folder, count = tmp_path / "cache", tmp_path / "computed.txt"
    folder.mkdir()
    assert run(python, STEPS, str(folder), str(count)).split() == ["15.0", "15.0", "True"]
    assert run(python, STEPS, str(folder), str(count)).split() == ["15.0", "15.0", "True"]
    assert count.read_text().split() == ["5.0"]  # once, across two processes
    stores = list(folder.rglob("casket.json"))
    assert len(stores) == 1 and stores[0].parent.name == "cache"
    assert not list(folder.rglob("*-info.jsonl"))


# Folders exca already wrote (docs/EXCA.md): a MapInfra pipeline over items argv[3]..argv[4]-1, counting
# its computations in argv[2]; arrays for even items, JSON-like dicts for odd ones.
OLD_FOLDER = """
import json, sys, typing as tp
from pathlib import Path
import numpy as np
import pydantic
import exca

COUNT = Path(sys.argv[2])

class Model(pydantic.BaseModel):
    scale: int = 3
    infra: exca.MapInfra = exca.MapInfra()

    @infra.apply(item_uid=str)
    def process(self, items: tp.Iterable[int]) -> tp.Iterator[tp.Any]:
        for item in items:
            with COUNT.open("a") as f:
                f.write(f"{item}\\n")
            if item % 2:
                yield {"item": item, "name": f"v{item}", "list": [item] * 3}
            else:
                yield np.arange(item + 1, dtype=np.float64) * self.scale

model = Model(infra={"folder": sys.argv[1]})
out = list(model.process(list(range(int(sys.argv[3]), int(sys.argv[4])))))
cd = model.infra.cache_dict
print(json.dumps({"type": type(cd).__module__, "len": len(cd),
                  "out": [o.tolist() if isinstance(o, np.ndarray) else o for o in out]}))
"""

CASKET_PARTS = {"casket.json", "index", "blobs", "tmp", "gc", "quarantine", "claims", "packs"}


def _exca_files(uid: Path) -> dict[str, bytes]:
    """Every file of the cache folder that is not the Casket store's (exca's index, data and config files;
    its SQLite in-flight registry and job logs, which MapInfra keeps using, aside)."""
    out = {}
    for p in sorted(uid.rglob("*")):
        rel = p.relative_to(uid)
        if p.is_dir() or rel.parts[0] in CASKET_PARTS or rel.parts[0] == "logs" or p.name.startswith("inflight"):
            continue
        out[str(rel)] = p.read_bytes()
    return out


def _expected(item: int) -> tp.Any:
    return {"item": item, "name": f"v{item}", "list": [item] * 3} if item % 2 else [3.0 * i for i in range(item + 1)]


@pytest.mark.parametrize("version", ["0.6.0", "0.5.29"])
def test_switch_serves_folder_exca_wrote(layered: Layered, tmp_path: Path, version: str) -> None:
    """exca's cache keeps serving its keys with the switch on: nothing is computed again, new values go
    to Casket, exca's files stay byte-identical; a third run computes nothing."""
    python = layered(version)
    folder, count = tmp_path / "cache", tmp_path / "computed.txt"
    folder.mkdir()
    first = json.loads(run(python, OLD_FOLDER, str(folder), str(count), "0", "10", switch=False))
    assert first["type"].startswith("exca.") and first["len"] == 10
    assert sorted(map(int, count.read_text().split())) == list(range(10))
    uids = [p.parent for p in folder.rglob("*-info.jsonl")]
    assert uids and len(set(uids)) == 1
    uid = uids[0]
    before = _exca_files(uid)
    assert any(name.endswith("-info.jsonl") for name in before)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CASKET_EXCA"] = "1"
    out = subprocess.run([str(python), "-W", "always", "-c", textwrap.dedent(OLD_FOLDER), str(folder), str(count),
                          "0", "15"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    second = json.loads(out.stdout)
    assert second["type"] == "casket.cachedict" and second["len"] == 15
    assert second["out"] == [_expected(i) for i in range(15)] == first["out"] + second["out"][10:]
    assert sorted(map(int, count.read_text().split())) == list(range(15))  # 10..14 once, 0..9 not again
    # the warning says the keys are served and how to migrate to save the space
    assert "holds an exca cache (1 index files such as" in out.stderr and "are still served" in out.stderr
    assert f"casket migrate '{uid}' --into '{uid}' --reclaim" in out.stderr
    # new values are in the Casket store, exca's files untouched (not even its .exca-last-use stamp)
    assert (uid / "casket.json").is_file() and any((uid / "packs").glob("*.pack"))  # small values: packed
    assert _exca_files(uid) == before
    import casket

    store_keys = sorted(casket.CacheDict(uid).store_keys())
    assert store_keys == [str(i) for i in range(10, 15)]

    third = json.loads(run(python, OLD_FOLDER, str(folder), str(count), "0", "15"))
    assert third["out"] == second["out"] and third["len"] == 15
    assert sorted(map(int, count.read_text().split())) == list(range(15))
    assert _exca_files(uid) == before


# exca 0.6.0's own CacheDict writes a folder (argv[2] == "write"), or casket.CacheDict reads it (the switch
# off: a plain CacheDict over that folder), then deletes, writes and checks what is hidden.
PLAIN = """
import json, sys
from pathlib import Path
import numpy as np
folder = Path(sys.argv[1])
def show(v):
    return {"array": v.tolist(), "dtype": str(v.dtype)} if isinstance(v, np.ndarray) else v
if sys.argv[2] == "write":
    from exca.cachedict import CacheDict
    cd = CacheDict(folder)
    with cd.write():
        cd["arr"] = np.arange(6, dtype=np.int16).reshape(2, 3)
        cd["json"] = {"a": [1, 2.5, "x"], "b": None}
        cd["text"] = "hello"
        cd["mixed"] = {"x": np.ones(4, dtype=np.float32), "label": "m"}
        cd["gone"] = [1, 2]
    sys.exit(0)
if sys.argv[2] == "exca-read":
    from exca.cachedict import CacheDict
    cd = CacheDict(folder)
    print(json.dumps({k: show(cd[k]) for k in sorted(cd.keys())}, sort_keys=True, default=show))
    sys.exit(0)
from casket import CacheDict
if sys.argv[2] == "clear":
    cd = CacheDict(folder, keep_in_ram=True)
    before = [cd["text"], len(cd)]
    cd.clear()
    print(json.dumps([before, sorted(cd), "text" in cd, sorted(CacheDict(folder)), sorted(folder.iterdir())],
                     default=str))
    sys.exit(0)
log = {}
cd = CacheDict(folder)
log["keys"] = sorted(cd.keys())
log["len"] = len(cd)
log["in"] = ["arr" in cd, "nope" in cd]
log["values"] = {k: show(cd[k]) for k in sorted(cd.keys())}
log["items"] = sorted(k for k, _ in cd.items())
with cd.write():
    try:
        cd["arr"] = 1
    except ValueError as e:
        log["overwrite"] = str(e)
    del cd["gone"]
    cd["new"] = np.arange(3)
log["after"] = sorted(cd.keys())
fresh = CacheDict(folder)
log["fresh"] = sorted(fresh.keys())
log["gone"] = ["gone" in fresh, fresh.get("gone", "missing")]
try:
    fresh["gone"]
except KeyError as e:
    log["gone_error"] = repr(e)
log["store"] = sorted(fresh.store_keys())
print(json.dumps(log, sort_keys=True, default=show))
"""


def test_plain_cachedict_reads_exca_060_folder(layered: Layered, tmp_path: Path) -> None:
    python = layered("0.6.0")
    folder = tmp_path / "cd"
    run(python, PLAIN, str(folder), "write", switch=False)
    exca_view = json.loads(run(python, PLAIN, str(folder), "exca-read", switch=False))
    before = _exca_files(folder)
    got = json.loads(run(python, PLAIN, str(folder), "casket", switch=False))
    keys = ["arr", "gone", "json", "mixed", "text"]
    assert got["keys"] == keys and got["len"] == 5 and got["items"] == keys
    assert got["in"] == [True, False]
    assert got["values"] == exca_view
    assert got["values"]["arr"] == {"array": [[0, 1, 2], [3, 4, 5]], "dtype": "int16"}
    assert got["values"]["json"] == {"a": [1, 2.5, "x"], "b": None}
    assert got["overwrite"] == "Overwriting a key is currently not implemented (key='arr')"
    # deleting an exca key writes a tombstone in the store that hides it, for every later reader
    assert got["after"] == got["fresh"] == ["arr", "json", "mixed", "new", "text"]
    assert got["gone"] == [False, "missing"] and got["gone_error"] == "KeyError('gone')"
    assert got["store"] == ["new"]
    # exca's files are byte-identical, and exca itself still reads its five keys
    assert _exca_files(folder) == before
    assert json.loads(run(python, PLAIN, str(folder), "exca-read", switch=False)) == exca_view
    # clear() removes exca's keys too, as exca's clear() does: nothing it held is visible afterwards
    assert json.loads(run(python, PLAIN, str(folder), "clear", switch=False)) == [["hello", 5], [], False, [], []]


LEGACY = """
import json, sys
from pathlib import Path
import numpy as np
folder = Path(sys.argv[1])
if sys.argv[2] == "write":
    from exca.cachedict import CacheDict
    cd = CacheDict(folder, cache_type="MemmapArrayFile")
    with cd.writer() as w:
        for i in range(3):
            w[f"k{i}"] = np.full(i + 1, i, dtype=np.float32)
    sys.exit(0)
from casket import CacheDict
cd = CacheDict(folder)
print(json.dumps({k: cd[k].tolist() for k in sorted(cd.keys())}))
"""


def test_plain_cachedict_reads_exca_0511_legacy_folder(layered: Layered, tmp_path: Path) -> None:
    """exca 0.5.11's layout (an info file with a ``metadata=`` header, a root ``.data`` file) is served by
    0.5.11's own reader, whose reads write nothing."""
    python = layered("0.5.11")
    folder = tmp_path / "legacy"
    run(python, LEGACY, str(folder), "write", switch=False)
    info = next(folder.glob("*-info.jsonl"))
    assert info.read_bytes().startswith(b"metadata=")
    before = _exca_files(folder)
    got = json.loads(run(python, LEGACY, str(folder), "read", switch=False))
    assert got == {"k0": [0.0], "k1": [1.0, 1.0], "k2": [2.0, 2.0, 2.0]}
    assert _exca_files(folder) == before


def test_exca_reader_refusing_a_layout_names_the_migration(layered: Layered, tmp_path: Path) -> None:
    """exca 0.6.0 cannot read 0.5.11's layout (exca itself raises): casket says so, naming the folder,
    exca's error and the migration that reads it, and still leaves exca's files as they were."""
    folder = tmp_path / "legacy"
    run(layered("0.5.11"), LEGACY, str(folder), "write", switch=False)
    before = _exca_files(folder)
    code = """
import sys
import casket
try:
    sorted(casket.CacheDict(sys.argv[1]).keys())
except casket.CasketError as e:
    print(type(e).__name__, e)
"""
    out = run(layered("0.6.0"), code, str(folder), switch=False)
    assert out.startswith(f"CasketError exca's reader cannot read the exca cache in {folder} (RuntimeError: ")
    assert f"casket migrate '{folder}' --into '{folder}'" in out
    assert _exca_files(folder) == before


STEPS_MODE = """
import sys
from pathlib import Path
from exca.steps import Step
COUNT = Path(sys.argv[2])
class Mult(Step):
    coeff: float = 2.0
    def _run(self, value: float) -> float:
        with COUNT.open("a") as f:
            f.write(f"{value}\\n")
        return value * self.coeff
step = Mult(coeff=3.0, infra={"backend": "Cached", "folder": sys.argv[1], "mode": sys.argv[3]})
print(step.run(5.0), step.run(6.0), step.lookup(5.0).cached())
"""


def test_steps_serve_exca_folder_and_force_hides_it(layered: Layered, tmp_path: Path) -> None:
    """exca.steps over a folder exca filled: served with the switch on; ``mode="force"`` deletes the keys
    (tombstones in the store, exca's files untouched) and the recomputed values are the store's."""
    python = layered("0.6.0")
    folder, count = tmp_path / "cache", tmp_path / "computed.txt"
    folder.mkdir()
    assert run(python, STEPS_MODE, str(folder), str(count), "cached", switch=False).split() == ["15.0", "18.0", "True"]
    cache = next(folder.rglob("*-info.jsonl")).parent
    before = _exca_files(cache)
    assert run(python, STEPS_MODE, str(folder), str(count), "cached").split() == ["15.0", "18.0", "True"]
    assert count.read_text().split() == ["5.0", "6.0"]  # served, not computed again
    assert run(python, STEPS_MODE, str(folder), str(count), "force").split() == ["15.0", "18.0", "True"]
    computed = count.read_text().split()
    assert len(computed) > 2 and computed[:2] == ["5.0", "6.0"]  # force recomputed
    assert run(python, STEPS_MODE, str(folder), str(count), "cached").split() == ["15.0", "18.0", "True"]
    assert count.read_text().split() == computed  # the recomputed values are served from the store
    assert _exca_files(cache) == before
    import casket

    assert casket.CacheDict(cache).store_keys()  # what force wrote is in the store


def test_switched_on_process_serves_exca_folder_before_importing_exca(layered: Layered, tmp_path: Path) -> None:
    """With the switch on, a process that opens ``casket.CacheDict`` before anything imported exca still
    finds exca's own reader (the import patches exca; the class it kept is the one used)."""
    python = layered("0.6.0")
    folder = tmp_path / "cd"
    run(python, PLAIN, str(folder), "write", switch=False)
    code = """
import json, sys
import casket
cd = casket.CacheDict(sys.argv[1])
print(json.dumps([sorted(cd.keys()), cd["text"], "exca" in sys.modules]))
"""
    assert json.loads(run(python, code, str(folder))) == [["arr", "gone", "json", "mixed", "text"], "hello", True]


def test_exca_cache_started_after_cachedict_is_served(layered: Layered, tmp_path: Path) -> None:
    """A switched-off exca writer that starts filling the folder after casket's CacheDict was made: its
    keys are seen on the next read (the folder's mtime changed), not only by CacheDicts made later."""
    python = layered("0.6.0")
    folder = tmp_path / "cd"
    folder.mkdir()
    code = """
import json, subprocess, sys
import casket
cd = casket.CacheDict(sys.argv[1])
first = sorted(cd.keys())
subprocess.run([sys.executable, "-c", sys.argv[2], sys.argv[1], "write"], check=True)
print(json.dumps([first, sorted(cd.keys()), "text" in cd, cd.get("text")]))
"""
    env_code = textwrap.dedent(PLAIN)
    got = json.loads(run(python, code, str(folder), env_code, switch=False))
    assert got == [[], ["arr", "gone", "json", "mixed", "text"], True, "hello"]


@pytest.mark.skipif(not os.environ.get("CASKET_BIN"), reason="set CASKET_BIN to the casket binary (CI does)")
def test_migrate_after_a_delete_keeps_the_key_deleted(layered: Layered, tmp_path: Path) -> None:
    """A key served from exca's files and then deleted (a tombstone in the store) stays deleted when the
    folder is migrated in place, as the warning advises: migrate never brings a deleted key back, and it
    reports the key, so that --reclaim keeps the shard that holds it."""
    python = layered("0.6.0")
    folder = tmp_path / "cd"
    run(python, PLAIN, str(folder), "write", switch=False)
    run(python, PLAIN, str(folder), "casket", switch=False)  # deletes "gone" and writes "new"
    migrated = subprocess.run(
        [os.environ["CASKET_BIN"], "migrate", str(folder), "--into", str(folder), "--json"],
        capture_output=True, text=True)
    assert migrated.returncode == 0, migrated
    report = json.loads(migrated.stdout)
    refused = {entry["key"]: entry for entry in report["not_migrated"]}
    assert "deleted in the store" in refused["gone"]["reason"], report
    listed = subprocess.run(
        [os.environ["CASKET_BIN"], "ls", "--store", str(folder), "--json"], capture_output=True, text=True, check=True)
    assert sorted(e["key"] for e in json.loads(listed.stdout)) == ["arr", "json", "mixed", "new", "text"]
