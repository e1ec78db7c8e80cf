"""exca's own handlers through Casket (docs/EXCA.md "Handlers"), in the real exca 0.6.0 with mne and pybv.

Each scenario runs the same script in three processes' worth of set-ups: exca's own ``CacheDict`` (the
switch off), exca's ``CacheDict`` with ``CASKET_EXCA=1`` (Casket underneath) and a plain
``casket.CacheDict``; what a fresh process reads back must be the same in all three.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import typing as tp
from pathlib import Path

import pytest

from excavenv import layered_factory
from test_exca_switch import Layered, run

IMPLS = ("exca", "switch", "casket")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Layered:
    """exca 0.6.0 or 0.5.29 (both have DumpContext) with the optional handler packages (mne, pybv, pandas...)."""
    return layered_factory(tmp_path_factory, "all")


def run_impl(python: Path, impl: str, code: str, *args: str, cwd: tp.Optional[Path] = None) -> str:
    """``code`` with ``CacheDict`` bound to the implementation under test."""
    head = ("from casket import CacheDict\n" if impl == "casket" else "from exca.cachedict import CacheDict\n")
    return run(python, head + textwrap.dedent(code), *args, switch=impl == "switch", cwd=cwd)


# A module both the writing and the reading process import, as a pipeline's own code would be: the handlers
# are registered by name when it is imported.
USER_HANDLERS = '''
import numpy as np
from exca.cachedict import DumpContext

@DumpContext.register
class Result:
    """Its own __dump_info__ (registered by name only); nested ctx.dump calls."""
    def __init__(self, score, data, extra):
        self.score, self.data, self.extra = score, data, extra
    def __dump_info__(self, ctx):
        return {"score": self.score, "data": ctx.dump(self.data, cache_type="MemmapArray"),
                "extra": ctx.dump(self.extra), "blob": "not a hash", "size": -1}
    @classmethod
    def __load_from_info__(cls, ctx, score, data, extra, blob, size):
        return cls(score, ctx.load(data), ctx.load(extra))

class Point:
    def __init__(self, x, label):
        self.x, self.label = x, label

@DumpContext.register(default_for=Point)
class PointHandler:
    """The default handler of a plain class."""
    @classmethod
    def __dump_info__(cls, ctx, value):
        return {"label": value.label, "x": ctx.dump(value.x, cache_type="NumpyArray")}
    @classmethod
    def __load_from_info__(cls, ctx, label, x):
        return Point(ctx.load(x), label)

def show(v):
    if isinstance(v, Result):
        return {"Result": [v.score, show(v.data), show(v.extra)]}
    if isinstance(v, Point):
        return {"Point": [show(v.x), v.label]}
    if isinstance(v, np.ndarray):
        return {type(v).__name__: v.tolist(), "dtype": str(v.dtype)}
    if isinstance(v, dict):
        return {k: show(x) for k, x in v.items()}
    if isinstance(v, list):
        return [show(x) for x in v]
    return v

def values():
    return {
        "result": Result(0.5, np.arange(6.0).reshape(2, 3), {"arr": np.ones(2, dtype=np.float32), "n": 1}),
        "point": Point(np.arange(3), "p"),
        "long": Point(np.arange(2), "L" * 600),  # an info dict over 512 bytes: a blob of its JSON text
        "tree": {"points": [Point(np.full(2, i), f"p{i}") for i in range(2)], "n": 3, "plain": np.zeros(2),
                 "r": Result(1.5, np.ones(4), [1, 2])},
    }
'''

CUSTOM = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from userhandlers import Point, show, values
import numpy as np
folder, mode, prefix = Path(sys.argv[2]), sys.argv[3], sys.argv[4]
if mode == "write":
    cd = CacheDict(folder)
    with cd.write():
        for key, value in values().items():
            cd[prefix + key] = value
    forced = CacheDict(folder / "forced", cache_type="PointHandler")
    with forced.write():
        forced[prefix + "forced"] = Point(np.arange(2.0), "f")
    sys.exit(0)
cd = CacheDict(folder)
out = {key: show(cd[key]) for key in sorted(cd.keys())}
out["forced"] = show(CacheDict(folder / "forced")[prefix + "forced"])
print(json.dumps(out, sort_keys=True))
"""


def _file_blobs(tree: tp.Any) -> list[str]:
    """The blobs of the handler files of a value tree, sorted."""
    if isinstance(tree, list):
        return sorted(h for v in tree for h in _file_blobs(v))
    if not isinstance(tree, dict):
        return []
    own = [sub["blob"] for sub in tree["files"].values()] if tree.get("#type") == "ExcaHandler" else []
    return sorted(own + [h for k, v in tree.items() if k != "files" for h in _file_blobs(v)])


def _blob_files(store: Path) -> list[str]:
    """The names of the blob files and the hashes of the packed payloads (small ones, by default)."""
    from casket import packs

    names = [p.name for p in (store / "blobs").rglob("*") if p.is_file()]
    for pack in (store / "packs").glob("*.pack"):
        fd = os.open(pack, os.O_RDONLY)
        try:
            names += [record.digest for record, _ in packs.scan_records(fd, os.fstat(fd).st_size)[0]]
        finally:
            os.close(fd)
    return sorted(names)


@pytest.mark.parametrize("version", ["0.6.0", "0.5.29"])
@pytest.mark.parametrize("impl", IMPLS)
def test_custom_handlers_round_trip_with_files_as_blobs(venv: Layered, tmp_path: Path, impl: str,
                                                        version: str) -> None:
    """A ``__dump_info__`` class and ``DumpContext.register``ed handlers (by name, ``default_for``, as a
    ``cache_type``), alone and nested in trees, go through their own dump and load; the files they write
    are blobs, deduplicated across writers."""
    python = venv(version)
    (tmp_path / "userhandlers.py").write_text(USER_HANDLERS)
    folder = tmp_path / "cache"
    run_impl(python, impl, CUSTOM, str(tmp_path), str(folder), "write", "a/")
    got = json.loads(run_impl(python, impl, CUSTOM, str(tmp_path), str(folder), "read", "a/"))
    assert got["a/result"] == {"Result": [0.5, {"memmap": [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], "dtype": "float64"},
                                          {"arr": {"memmap": [1.0, 1.0], "dtype": "float32"}, "n": 1}]}
    assert got["a/point"] == {"Point": [{"ndarray": [0, 1, 2], "dtype": "int64"}, "p"]}
    assert got["a/tree"]["points"][1] == {"Point": [{"ndarray": [1, 1], "dtype": "int64"}, "p1"]}
    assert got["forced"] == {"Point": [{"ndarray": [0.0, 1.0], "dtype": "float64"}, "f"]}
    if impl == "exca":
        return
    exca_dir = tmp_path / "exca"
    run_impl(python, "exca", CUSTOM, str(tmp_path), str(exca_dir), "write", "a/")
    assert got == json.loads(run_impl(python, "exca", CUSTOM, str(tmp_path), str(exca_dir), "read", "a/"))

    import casket

    cd = casket.CacheDict(folder)
    assert not list(folder.glob("*-info.jsonl")) and not (folder / "data").exists()
    result, tree = cd.entry("a/result"), cd.entry("a/tree")
    assert result is not None and tree is not None
    assert result.value["#type"] == "ExcaHandler"
    assert result.value["info"]["content"]["#type"] == "Result"  # exca's info dict, kept as JSON data
    files = result.value["files"]
    assert sorted(files) == [result.value["info"]["content"]["data"]["filename"]]  # data/<host>-<tid>.data
    assert [[files[n]["blob"], files[n]["size"]] for n in files] == result.blobs
    assert tree.value["#type"] == "Auto" and tree.value["content"]["points"][0]["#type"] == "ExcaHandler"
    long = cd.entry("a/long")
    assert long is not None and "content" not in long.value["info"] and long.value["info"]["size"] > 600
    assert got["a/long"] == {"Point": [{"ndarray": [0, 1], "dtype": "int64"}, "L" * 600]}
    names = sorted(tree.value["content"]["points"][1]["files"])
    assert names == ["data/a-tree[points][1]-" + names[0].split("-")[-1]]  # exca's sub-key names
    store = casket.Store(folder)
    assert all(store.has_blob(h, s) for e in (result, tree) for h, s in e.blobs)
    assert not list((folder / "tmp").iterdir())  # staging folders are gone
    # a second writer of the same values (under other keys) adds no file blob: the files deduplicate (only
    # the large info dict of "long", which names its key's file, is a new blob)
    before = _blob_files(folder)
    run_impl(python, impl, CUSTOM, str(tmp_path), str(folder), "write", "b/")
    cd = casket.CacheDict(folder)
    b_long = cd.entry("b/long")
    assert b_long is not None
    assert [p for p in _blob_files(folder) if p not in before] == [b_long.value["info"]["blob"]]
    for name in ("result", "point", "tree", "long"):
        a, b = cd.entry("a/" + name), cd.entry("b/" + name)
        assert a is not None and b is not None
        assert _file_blobs(a.value) == _file_blobs(b.value) != []
    again = json.loads(run_impl(python, impl, CUSTOM, str(tmp_path), str(folder), "read", "b/"))
    assert again["b/result"] == got["a/result"] and again["b/tree"] == got["a/tree"]
    # in a store that inlines small payloads, the handler files are inline too, and read back the same
    casket.init_store(tmp_path / "inline", inline_max=4096, durability="none")
    casket.init_store(tmp_path / "inline" / "forced", inline_max=4096, durability="none")
    run_impl(python, impl, CUSTOM, str(tmp_path), str(tmp_path / "inline"), "write", "a/")
    inlined = json.loads(run_impl(python, impl, CUSTOM, str(tmp_path), str(tmp_path / "inline"), "read", "a/"))
    assert inlined["a/tree"].pop("plain") == {"ndarray": [0.0, 0.0], "dtype": "float64"}  # a native inline array
    got["a/tree"].pop("plain")
    assert inlined == got
    inline = casket.CacheDict(tmp_path / "inline").entry("a/point")
    assert inline is not None and inline.blobs == [] and "inline" in next(iter(inline.value["files"].values()))


MNE = """
import json, sys, warnings
from pathlib import Path
import mne, numpy as np
folder, mode = Path(sys.argv[1]), sys.argv[2]
info = mne.create_info(["a", "b", "c"], sfreq=64, ch_types=["eeg", "eeg", "ecog"])
raw = mne.io.RawArray(np.random.RandomState(0).rand(3, 64 * 5) * 1e-5, info=info, verbose=False)
kinds = {"fif": "MneRawFif", "bv": "MneRawBrainVision", "default": None}
if mode == "write":
    for name, cache_type in kinds.items():
        cd = CacheDict(folder / name, cache_type=cache_type)
        with cd.write():
            cd["raw"] = raw
    sys.exit(0)
out = {}
for name in kinds:
    back = CacheDict(folder / name)["raw"]
    data = back.get_data()
    same = bool(np.allclose(data, raw.get_data(), atol=1e-10))
    out[name] = [type(back).__name__, back.ch_names, back.info["sfreq"], same, data.shape]
print(json.dumps(out))
"""


@pytest.mark.parametrize("version", ["0.6.0", "0.5.29"])
@pytest.mark.parametrize("impl", IMPLS)
def test_mne_raw_values_written_and_read_back(venv: Layered, tmp_path: Path, impl: str, version: str) -> None:
    """``MneRawFif`` and ``MneRawBrainVision`` (forced, and MneRawFif as exca's default for an mne Raw)
    are written through exca's handlers and read back equal, as the same types exca returns."""
    python = venv(version)
    folder = tmp_path / "cache"
    run_impl(python, impl, MNE, str(folder), "write")
    got = json.loads(run_impl(python, impl, MNE, str(folder), "read"))
    assert got["fif"] == got["default"] == ["Raw", ["a", "b", "c"], 64.0, True, [3, 320]]
    assert got["bv"] == ["RawBrainVision", ["a", "b", "c"], 64.0, True, [3, 320]]
    if impl == "exca":
        return
    exca_dir = tmp_path / "exca"
    run_impl(python, "exca", MNE, str(exca_dir), "write")
    assert got == json.loads(run_impl(python, "exca", MNE, str(exca_dir), "read"))
    import casket

    fif, bv = casket.CacheDict(folder / "fif").entry("raw"), casket.CacheDict(folder / "bv").entry("raw")
    assert fif is not None and bv is not None
    assert fif.value["#type"] == "MneRawFif" and fif.blobs == [[fif.value["blob"], fif.value["size"]]]
    assert bv.value["#type"] == "MneRawBrainVision"
    assert sorted(n.rsplit(".", 1)[1] for n in bv.value["files"]) == ["eeg", "vhdr", "vmrk"]
    default = casket.CacheDict(folder / "default").entry("raw")
    assert default is not None and default.value == fif.value  # one blob: the same .fif file


CONTIGUOUS = """
import json, sys
from pathlib import Path
import numpy as np
from exca.cachedict.contiguous import ContiguousMemmap
out = []
for folder in sys.argv[2:]:
    folder = Path(folder)
    if sys.argv[1] == "write":
        cd = CacheDict(folder, cache_type="ContiguousMemmapArray")
        with cd.write():
            cd["a"] = np.tile(np.arange(6, dtype=np.float32), (400, 1)) + np.arange(400)[:, None]  # lz4 pays
        continue
    v = CacheDict(folder)["a"]
    again = CacheDict(folder / "again")  # a ContiguousMemmap value: exca's default is ContiguousMemmapArray
    with again.write():
        again["b"] = v[1:3]
    w = CacheDict(folder / "again")["b"]
    out.append([type(v) is ContiguousMemmap, v.shape, np.asarray(v[1:3]).tolist(), type(w) is ContiguousMemmap,
                np.asarray(w).tolist(), np.shares_memory(np.asarray(v), np.asarray(v))])
print(json.dumps(out))
"""


@pytest.mark.parametrize("impl", IMPLS)
def test_contiguous_memmap_array_returns_exca_proxy(venv: Layered, tmp_path: Path, impl: str) -> None:
    """``cache_type="ContiguousMemmapArray"`` reads back as exca's ``ContiguousMemmap`` proxy, also from an
    lz4 store and from inline payloads (mapped from a verified file of the read folder), and re-dumping a
    proxy gives a proxy, as exca does."""
    python = venv("0.6.0")
    folders = [tmp_path / "plain"]
    if impl != "exca":
        import casket

        casket.init_store(tmp_path / "lz4", compression="lz4", durability="none", pack_max=0)  # an lz4 blob file
        casket.init_store(tmp_path / "inline", inline_max=16384, durability="none")
        folders += [tmp_path / "lz4", tmp_path / "inline"]
    run_impl(python, impl, CONTIGUOUS, "write", *map(str, folders))
    got = json.loads(run_impl(python, impl, CONTIGUOUS, "read", *map(str, folders)))
    rows = [[float(r + c) for c in range(6)] for r in (1, 2)]
    assert got == [[True, [400, 6], rows, True, rows, False]] * len(folders)
    if impl != "exca":
        lz4 = casket.CacheDict(tmp_path / "lz4").entry("a")
        assert lz4 is not None and lz4.value["#type"] == "ContiguousMemmapArray"
        assert list((tmp_path / "lz4" / "blobs").rglob("*.lz4"))


CORRUPT = """
import sys
sys.path.insert(0, sys.argv[1])
from userhandlers import show
import casket
try:
    print(show(casket.CacheDict(sys.argv[2])[sys.argv[3]]))
except casket.CasketError as e:
    print(type(e).__name__, e)
"""


def test_corrupt_blob_under_a_handler_value_names_it(venv: Layered, tmp_path: Path) -> None:
    python = venv("0.6.0")
    (tmp_path / "userhandlers.py").write_text(USER_HANDLERS)
    folder = tmp_path / "cache"
    run_impl(python, "casket", CUSTOM, str(tmp_path), str(folder), "write", "a/")
    import casket

    entry = casket.CacheDict(folder).entry("a/point")
    assert entry is not None
    (h, size), = entry.blobs
    path = folder / "blobs" / h[:2] / h
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    out = run(python, CORRUPT, str(tmp_path), str(folder), "a/point", switch=False)
    assert out.startswith("BlobCorruptError "), out
    assert f"blob file {path} is corrupt: expected hash {h}" in out
    # the other values still read
    assert "Result" in run(python, CORRUPT, str(tmp_path), str(folder), "a/result", switch=False)


STALE = """
import os, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
from userhandlers import Point
import casket
from casket.store import sanitized_host
folder = Path(sys.argv[2])
casket.init_store(folder)
host = sanitized_host()
dead = folder / "tmp" / f"{host}.{sys.argv[3]}.0123456789abcdef.stage"
live = folder / "tmp" / f"{host}.{os.getppid()}.0123456789abcdef.stage"
dead_read = folder / "tmp" / f"{host}.{sys.argv[3]}.0123456789abcdef.read"
for d in (dead, live, dead_read):
    (d / "data").mkdir(parents=True)
    (d / "data" / "x.npy").write_bytes(b"left by a killed writer")
cd = casket.CacheDict(folder)
with cd.write():
    cd["p"] = Point(np.arange(2), "p")
left = sorted(p.name for p in (folder / "tmp").iterdir())
print(dead.exists(), dead_read.exists(), live.exists(), left == [live.name])
"""


def test_staging_folders_of_killed_writers_are_removed(venv: Layered, tmp_path: Path) -> None:
    """Staging and read folders whose process (this host, pid gone) was killed are removed by the next
    handler write; those of a live process are left alone."""
    python = venv("0.6.0")
    (tmp_path / "userhandlers.py").write_text(USER_HANDLERS)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    out = run(python, STALE, str(tmp_path), str(tmp_path / "s"), str(gone.pid), switch=False)
    assert out.split() == ["False", "False", "True", "True"]


@pytest.mark.skipif(not os.environ.get("CASKET_BIN"), reason="set CASKET_BIN to the casket binary (CI does)")
def test_gc_keeps_handler_blobs_and_fsck_passes(venv: Layered, tmp_path: Path) -> None:
    """Handler files are ordinary blobs listed in their entries: GC with no grace keeps every one, fsck
    finds nothing wrong, ``casket get`` prints the single file of an MneRawFif value."""
    python = venv("0.6.0")
    (tmp_path / "userhandlers.py").write_text(USER_HANDLERS)
    folder = tmp_path / "cache"
    run_impl(python, "casket", CUSTOM, str(tmp_path), str(folder), "write", "a/")
    run_impl(python, "casket", MNE, str(folder / "mne"), "write")
    expected = json.loads(run_impl(python, "casket", CUSTOM, str(tmp_path), str(folder), "read", "a/"))
    binary = os.environ["CASKET_BIN"]
    stores = [folder, folder / "forced", folder / "mne" / "fif", folder / "mne" / "bv"]
    before = {s: _blob_files(s) for s in stores}
    import casket

    casket.Store(folder).put_bytes(b"garbage nobody references")  # what GC must remove
    for s in stores:
        gc = subprocess.run([binary, "gc", "--store", str(s), "--grace", "0s", "--offline", "--json"],
                            capture_output=True, text=True)
        assert gc.returncode == 0, gc
        assert _blob_files(s) == before[s], s
        fsck = subprocess.run([binary, "fsck", "--store", str(s)], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck
    assert json.loads(run_impl(python, "casket", CUSTOM, str(tmp_path), str(folder), "read", "a/")) == expected
    fif = casket.CacheDict(folder / "mne" / "fif").entry("raw")
    assert fif is not None
    got = subprocess.run([binary, "get", "--store", str(folder / "mne" / "fif"), "raw"], capture_output=True)
    assert got.returncode == 0 and casket.hash_bytes(got.stdout) == fif.value["blob"]


# ---------------------------------------------------------------- the read folder, against a hostile store


def _handler_entry(root: Path, key: str, files: dict, info: tp.Optional[dict] = None) -> None:
    from test_cachedict import write_entry

    info = info or {"#type": "Pickle", "filename": next(iter(files))}
    node = {"#type": "ExcaHandler", "info": {"#type": "Json", "content": info}, "files": files}
    blobs = [[sub["blob"], sub["size"]] for sub in files.values() if "blob" in sub]
    write_entry(root, None, key, node, blobs)


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "data//x", "data/../../x", "a\\b", ".", "data/./x", ""])
def test_handler_file_names_outside_the_layout_are_refused(root: Path, store: tp.Any, name: str) -> None:
    """A name with ``..``, an absolute path, an empty or ``.`` part never reaches the file system: the key
    reads as an error that names it, and nothing is created."""
    import casket

    h = store.put_bytes(b"payload")
    _handler_entry(root, "k", {name: {"blob": h, "size": 7}})
    with pytest.raises(casket.ValueFormatError) as e:
        casket.CacheDict(root)["k"]
    assert f"ExcaHandler file name {name!r} is not a relative path of plain names" in str(e.value)
    assert "key 'k'" in str(e.value)


@pytest.mark.parametrize("filename", ["../../../etc/passwd", "/etc/passwd", "data/other.npy", "dat", "data/x.pkl/.."])
def test_handler_info_naming_a_file_outside_its_files_is_refused(root: Path, store: tp.Any, filename: str) -> None:
    """exca's handlers open ``ctx.folder / filename``: an info dict (nested ones included) naming anything
    but one of the value's files, or a folder of them, is refused before any handler runs."""
    import casket

    h = store.put_bytes(b"payload")
    info = {"#type": "Auto", "content": {"x": {"#type": "Pickle", "filename": filename}}}
    _handler_entry(root, "k", {"data/x.pkl": {"blob": h, "size": 7}}, info)
    with pytest.raises(casket.ValueFormatError) as e:
        casket.CacheDict(root)["k"]
    assert f"key 'k': ExcaHandler info names the file {filename!r}, which is not one of its files" in str(e.value)


READ_FOLDER = """
import json, os, sys
from pathlib import Path
import casket
from casket import handlers
from casket.values import _Decoder
store = casket.Store(sys.argv[1])
h, size = sys.argv[2], int(sys.argv[3])
made = _Decoder(store, "k", True).view({"data/a.bin": {"blob": h, "size": size}}) / "data" / "a.bin"
again = _Decoder(store, "k", True).view({"data/a.bin": {"blob": h, "size": size}}) / "data" / "a.bin"
blob = store.blob_path(h)
print(json.dumps({"same": made == again, "ino": os.stat(made).st_ino == os.stat(blob).st_ino,
                  "bytes": casket.hash_bytes(made.read_bytes()) == h, "root": str(handlers._roots.get(store))}))
"""


def test_read_folder_links_the_verified_blob_or_copies_it(root: Path, store: tp.Any, tmp_path: Path) -> None:
    """The read folder is in the store's ``tmp/``: its files are hard links to the very inodes that were
    verified, made once per process, removed at exit. In ``$CASKET_READ_DIR`` on another file system
    (tmpfs /dev/shm) they are verified copies. A symbolic link in a blob's place is never followed."""
    from casket import handlers
    from casket.values import _Decoder

    data = os.urandom(4096)
    h = store.put_bytes(data)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    code = textwrap.dedent(READ_FOLDER)
    out = subprocess.run([sys.executable, "-c", code, str(root), h, "4096"], env=env, capture_output=True, text=True)
    got = json.loads(out.stdout)
    assert got["same"] and got["ino"] and got["bytes"], got
    assert Path(got["root"]).parent == root / "tmp" and Path(got["root"]).name.endswith(".read")
    assert not Path(got["root"]).exists()  # removed when its process exited
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and os.stat(shm).st_dev != os.stat(root).st_dev:
        out = subprocess.run([sys.executable, "-c", code, str(root), h, "4096"], capture_output=True, text=True,
                             env={**env, "CASKET_READ_DIR": str(shm)})
        got = json.loads(out.stdout)
        assert got["same"] and not got["ino"] and got["bytes"], got
        assert Path(got["root"]).parent == shm and not Path(got["root"]).exists()
    # a symlink to a file outside the store, in the place of a blob, is refused and never read
    outside = tmp_path / "secret"
    outside.write_bytes(b"s" * 7)
    evil = "%032x" % 7
    (root / "blobs" / evil[:2]).mkdir(exist_ok=True)
    os.symlink(outside, root / "blobs" / evil[:2] / evil)
    import casket

    with pytest.raises(casket.BlobError) as e:
        _Decoder(store, "k", True).view({"c": {"blob": evil, "size": 7}})
    assert "symbolic link" in str(e.value) and evil in str(e.value)
    assert not list(handlers._roots.get(store).glob("*/c"))


def test_handler_vector_reads_back_where_exca_is_installed(venv: Layered) -> None:
    """The conformance vector ``python-handlers`` rebuilt in full (``canonical`` included) by a reader that
    has exca, mne and pybv; the suite's own venv checks its other fields, and the Swift CLI all of them."""
    conformance = Path(__file__).resolve().parents[1] / "conformance"
    code = f"""
import sys
sys.path.insert(0, {str(conformance)!r})
import check
print("\\n".join(check.check_python(check.VECTORS / "python-handlers")) or "same")
"""
    assert run(venv("0.6.0"), code, switch=False).strip() == "same"


MAP_PIPELINE = """
import sys, typing as tp
from pathlib import Path
import pydantic, exca
sys.path.insert(0, sys.argv[1])
from userhandlers import Point, show
import numpy as np
COUNT = Path(sys.argv[3])
class Model(pydantic.BaseModel):
    infra: exca.MapInfra = exca.MapInfra()
    @infra.apply(item_uid=str)
    def process(self, items: tp.Iterable[int]) -> tp.Iterator[tp.Any]:
        for item in items:
            with COUNT.open("a") as f:
                f.write(f"{item}\\n")
            yield {"point": Point(np.arange(item), f"p{item}"), "item": item}
m = Model(infra={"folder": sys.argv[2]})
print(type(m.infra.cache_dict).__module__, [show(v) for v in m.process([1, 3])])
"""


def test_mapinfra_pipeline_of_custom_values(venv: Layered, tmp_path: Path) -> None:
    """A MapInfra method yielding trees of ``default_for`` handler values, with the switch on: stored through
    exca's handler, served to a second process without computing again."""
    python = venv("0.6.0")
    (tmp_path / "userhandlers.py").write_text(USER_HANDLERS)
    count = tmp_path / "count.txt"
    first = run(python, MAP_PIPELINE, str(tmp_path), str(tmp_path / "cache"), str(count))
    second = run(python, MAP_PIPELINE, str(tmp_path), str(tmp_path / "cache"), str(count))
    assert first == second
    assert first.startswith("casket.cachedict [{'point': {'Point': [{'ndarray': [0], 'dtype': 'int64'}, 'p1']}")
    assert sorted(count.read_text().split()) == ["1", "3"]  # once each, in the order MapInfra chose
    store = next((tmp_path / "cache").rglob("casket.json")).parent
    import casket

    entry = casket.CacheDict(store).entry("3")
    assert entry is not None and entry.value["content"]["point"]["#type"] == "ExcaHandler"


CLEARED = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from userhandlers import Point, show
import numpy as np
import casket
cd = casket.CacheDict(sys.argv[2])
out = []
for round in range(2):
    with cd.write():
        cd["p"] = Point(np.arange(round + 2), "p")
    out.append(show(cd["p"]))
    if round == 0:
        cd.clear()  # removes the store, its tmp/ and this process's read folder in it
print(out)
"""


def test_read_folder_made_again_after_clear(venv: Layered, tmp_path: Path) -> None:
    (tmp_path / "userhandlers.py").write_text(USER_HANDLERS)
    out = run(venv("0.6.0"), CLEARED, str(tmp_path), str(tmp_path / "cache"), switch=False)
    assert out.strip() == ("[{'Point': [{'ndarray': [0, 1], 'dtype': 'int64'}, 'p']}, "
                           "{'Point': [{'ndarray': [0, 1, 2], 'dtype': 'int64'}, 'p']}]")
