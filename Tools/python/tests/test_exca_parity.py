"""With the switch on, ``casket.CacheDict`` follows the installed exca's write rules (casket/excarules.py,
docs/EXCA.md "exca's behaviour kept"): the same calls on exca's CacheDict and on casket's, in the real
exca 0.6.0 and 0.5.29, give the same transcript of values read back, errors and warnings."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import typing as tp
from pathlib import Path

import numpy as np
import pytest

from excavenv import layered_factory

Layered = tp.Callable[[str], Path]


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory) -> Layered:
    return layered_factory(tmp_path_factory, "all")


def run(python: Path, code: str, *args: str, switch: bool = True) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("CASKET_EXCA", "PYTHONPATH")}
    if switch:
        env["CASKET_EXCA"] = "1"
    out = subprocess.run([str(python), "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out.stdout


# argv[1]: "exca" (exca's own CacheDict, switch off) or "casket" (exca's name, switch on: casket's class)
VALUES = """
import collections, dataclasses, datetime, decimal, enum, pathlib, sys, uuid, warnings
from pathlib import Path
import numpy as np
import pandas as pd
import exca.cachedict
CacheDict = exca.cachedict.CacheDict
assert (CacheDict.__module__ == "casket.cachedict") == (sys.argv[1] == "casket"), CacheDict
root = Path(sys.argv[2])
class Color(enum.Enum):
    RED = 1
class Obj:
    def __eq__(self, other): return isinstance(other, Obj)
    def __repr__(self): return "Obj()"
@dataclasses.dataclass
class DC:
    a: int = 1
Pair = collections.namedtuple("Pair", "x y")
values = {
    "set": {1, 2}, "obj": Obj(), "decimal": decimal.Decimal("1.5"), "complex": 1 + 2j, "npfloat": np.float64(1.5),
    "big_int": 2**70, "int_keys": {1: "a"}, "bytes": b"ab", "bytearray": bytearray(b"ab"), "path": Path("/x"),
    "series": pd.Series([1, 2]), "dict_set": {"s": {1}, "a": np.ones(2)}, "memoryview": memoryview(b"xy"),
    "datetime": datetime.datetime(2020, 1, 2, 3, 4, 5), "date": datetime.date(2020, 1, 2), "enum": Color.RED,
    "uuid": uuid.UUID(int=5), "dataclass": DC(), "nan": float("nan"), "list_nan": [float("nan"), 1.5],
    "tuple": (1, (2, 3)), "namedtuple": Pair(1, 2), "mixed": {"a": np.arange(3), "when": datetime.date(2021, 1, 1),
    "t": (1, 2)}, "empty_array": np.zeros((0, 3)), "empty_in_dict": {"e": np.zeros(0)},
    "reserved": {"#type": "Nope", "a": 1}, "array": np.arange(4.0), "frame": pd.DataFrame({"a": [1, 2]}),
}
forced = {
    ("MemmapArray", "list"): [1, 2], ("MemmapArray", "empty"): np.zeros(0), ("MemmapArrayFile", "array"): np.ones(2),
    ("NumpyArray", "list"): [1, 2], ("TorchTensor", "array"): np.ones(2), ("PandasDataFrame", "dict"): {"a": [1]},
    ("ParquetPandasDataFrame", "list"): [1], ("Json", "set"): {1}, ("Json", "datetime"): datetime.date(2020, 1, 1),
    ("Pickle", "obj"): Obj(), ("Auto", "obj"): Obj(), ("AutoPickle", "mixed"): {"o": Obj(), "a": np.ones(2)},
    ("Nope", "x"): 1, ("Bytes", "bytes"): b"x", ("DataDict", "dict"): {"x": np.arange(2), "o": Obj()},
    ("NumpyMemmapArray", "array"): np.arange(3), ("String", "str"): "abc",
}
def show(v):
    if isinstance(v, np.ndarray):
        return f"{type(v).__name__}[{v.dtype}{list(v.shape)}]{v.tolist()!r}"
    if isinstance(v, (pd.DataFrame, pd.Series)):
        return f"{type(v).__name__}{v.to_dict()}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return type(v).__name__ + "[" + ", ".join(show(x) for x in v) + "]"
    return f"{type(v).__name__}:{v!r}"
def attempt(name, value, cache_type):
    folder = root / f"{name}-{cache_type}"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cd = CacheDict(folder, cache_type=cache_type)
            with cd.write():
                cd["k"] = value
            got = show(CacheDict(folder, cache_type=cache_type)["k"])
        return got + "".join(sorted({f" {w.category.__name__}" for w in caught if "Auto" in str(w.message)}))
    except Exception as e:
        return f"raised {type(e).__name__}: {e}"
out = [f"{name}: {attempt(name, v, None)}" for name, v in values.items()]
out += [f"{ct}/{name}: {attempt(name, v, ct)}" for (ct, name), v in forced.items()]
cd = CacheDict(root / "deleting")
with cd.write():
    cd["a"] = 1
try:
    del cd["a"]
    out.append(f"del outside write(): done, {sorted(cd)}")
except Exception as e:
    out.append(f"del outside write(): raised {type(e).__name__}: {e}")
print("\\n".join(out))
"""


def _same_as_exca(python: Path, tmp_path: Path) -> dict[str, str]:
    """Runs VALUES on exca and on casket (switched on): the transcripts must match; returns casket's."""
    (tmp_path / "e").mkdir()
    (tmp_path / "c").mkdir()
    exca = run(python, VALUES, "exca", str(tmp_path / "e"), switch=False).splitlines()
    casket = run(python, VALUES, "casket", str(tmp_path / "c")).splitlines()
    assert casket == exca
    return dict(line.split(": ", 1) for line in casket)


NOT_JSON = ("raised TypeError: Value of type {} is not JSON-serializable. Register a handler with "
            "@DumpContext.register(default_for={}) or use cache_type='Pickle' explicitly.")


def test_switched_values_and_errors_are_exca_060s(layered: Layered, tmp_path: Path) -> None:
    """exca 0.6.0 refuses what JSON cannot hold, with its TypeError; casket, switched on, refuses the same
    values with the same errors, and reads back what exca reads back for the rest."""
    got = _same_as_exca(layered("0.6.0"), tmp_path)
    assert got["set"] == NOT_JSON.format("set", "set")
    assert got["dict_set"] == NOT_JSON.format("dict", "dict")
    assert got["big_int"] == NOT_JSON.format("int", "int")
    assert got["empty_array"] == "raised ValueError: Cannot dump data with no size: shape=(0, 3)"
    assert got["reserved"].startswith("raised ValueError: '#type' is a reserved key in Auto dicts.")
    # exca's JSON rendering (orjson): what an exca pipeline reads back on its second run
    assert got["datetime"] == "str:'2020-01-02T03:04:05'" and got["enum"] == "int:1"
    assert got["nan"] == "NoneType:None" and got["namedtuple"] == "list[int:1, int:2]"
    assert got["mixed"] == "{'a': memmap[int64[3]][0, 1, 2], 'when': str:'2021-01-01', 't': list[int:1, int:2]}"
    assert got["MemmapArray/list"] == "raised TypeError: Expected numpy array but got <class 'list'>"
    assert got["PandasDataFrame/dict"] == "raised TypeError: Only supports pd.DataFrame (got <class 'dict'>)"
    assert got["Nope/x"] == "raised KeyError: 'Nope'" and got["String/str"] == "raised KeyError: 'String'"
    assert got["MemmapArrayFile/array"] == "memmap[float64[2]][1.0, 1.0]"
    assert got["del outside write()"] == "raised RuntimeError: Cannot delete outside of a write() context"


def test_switched_values_and_errors_are_exca_0529s(layered: Layered, tmp_path: Path) -> None:
    """exca 0.5.29 pickles what JSON cannot hold, with a DeprecationWarning, and deletes outside write():
    casket, switched on in 0.5.29, does the same."""
    got = _same_as_exca(layered("0.5.29"), tmp_path)
    assert got["set"] == "set:{1, 2} DeprecationWarning"
    assert got["bytearray"] == "bytearray:bytearray(b'ab') DeprecationWarning"
    assert got["dict_set"] == "{'s': set:{1}, 'a': memmap[float64[2]][1.0, 1.0]} DeprecationWarning"
    assert got["datetime"] == "str:'2020-01-02T03:04:05'"
    assert got["empty_array"] == "raised ValueError: Cannot dump data with no size: shape=(0, 3)"
    assert got["NumpyMemmapArray/array"] == "memmap[int64[3]][0, 1, 2]" and got["String/str"] == "str:'abc'"
    assert got["del outside write()"] == "done, []"


SWITCH_OFF = """
import datetime, json, sys
import numpy as np
import casket
cd = casket.CacheDict(sys.argv[1])
with cd.write():
    cd["set"] = {1, 2}
    cd["when"] = datetime.date(2020, 1, 2)
    cd["nan"] = float("nan")
arrays = casket.CacheDict(sys.argv[1] + "-arrays", cache_type="MemmapArrayFile")  # exca's other name
with arrays.write():
    arrays["a"] = np.arange(3)
print(json.dumps([repr(cd["set"]), repr(cd["when"]), repr(cd["nan"]), type(arrays["a"]).__name__]))
"""


def test_switch_off_keeps_casket_rules(layered: Layered, tmp_path: Path) -> None:
    """Without the switch casket.CacheDict keeps its own rules, exca installed or not: what JSON cannot
    hold is pickled and comes back as it was written (FORMAT 6); exca's other type names still work."""
    got = json.loads(run(layered("0.6.0"), SWITCH_OFF, str(tmp_path / "cd"), switch=False))
    assert got == ["{1, 2}", "datetime.date(2020, 1, 2)", "nan", "memmap"]


def test_memmap_closes_with_its_last_reference(tmp_path: Path) -> None:
    """What exca's test_memmap_file_descriptor_lifecycle checks, on Casket's blob: the memory-mapped array
    read from the store holds the blob file open while it lives, and nothing holds it once it is gone."""
    import gc

    import casket

    def open_files() -> set[str]:
        fds = Path("/proc/self/fd")
        return {os.path.realpath(fds / fd) for fd in os.listdir(fds)}

    # a blob file: above inline_max, and no packs (a packed array is a copy in memory, no file held)
    cd = casket.CacheDict(tmp_path / "cd", cache_type="MemmapArray", store_settings={"pack_max": 0})
    with cd.write():
        cd["array"] = np.arange(4096)
    blob = cd.store.blob_path(cd.entry("array").value["blob"])
    value = cd["array"]
    assert isinstance(value, np.memmap) and value.shape == (4096,)
    assert os.path.realpath(blob) in open_files()
    del value, cd
    gc.collect()
    assert os.path.realpath(blob) not in open_files()


def test_warm_hits_do_not_list_the_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``key in cd`` for a key already in view answers without listing the index again, as exca's does
    from its table (MapInfra and exca.steps ask once per item: a warm hit listed index/ each time, and
    exca's own test_perf.py timing ratio failed on it); a miss still lists, so another writer's key is
    found."""
    import casket
    import casket.index

    folder = tmp_path / "cd"
    writer = casket.CacheDict(folder)
    with writer.write():
        for i in range(3):
            writer[f"k{i}"] = i
    cd = casket.CacheDict(folder)
    assert "k0" in cd  # the first read lists the index
    listings: list[Path] = []
    real = casket.index.list_index_dir
    monkeypatch.setattr(casket.index, "list_index_dir", lambda d: listings.append(d) or real(d))
    assert all(f"k{i % 3}" in cd for i in range(300)) and [cd[f"k{i}"] for i in range(3)] == [0, 1, 2]
    assert listings == []
    with writer.write():
        writer["late"] = 4
    assert "late" in cd and cd["late"] == 4
    assert "absent" not in cd
    assert len(listings) == 2  # one per miss


TYPES = """
import json, sys
from pathlib import Path
import nibabel as nib, numpy as np, pandas as pd
import exca.cachedict
assert exca.cachedict.CacheDict.__module__ == "casket.cachedict"
values = {"array": np.random.rand(2, 12), "nifti1": nib.Nifti1Image(np.ones(5), np.eye(4)),
          "nifti2": nib.Nifti2Image(np.ones(5), np.eye(4)), "frame": pd.DataFrame([{"blu": 12}])}
out = {}
for name, value in values.items():
    cd = exca.cachedict.CacheDict(Path(sys.argv[1]) / name, keep_in_ram=False)
    with cd.write():
        cd["blublu.tmp"] = value
    got = exca.cachedict.CacheDict(Path(sys.argv[1]) / name)["blublu.tmp"]
    out[name] = [isinstance(got, type(value)), cd.entry("blublu.tmp").value["#type"]]
print(json.dumps(out))
"""


def test_switched_values_keep_their_type(layered: Layered, tmp_path: Path) -> None:
    """What exca's test_data_dump_suffix checks besides exca's files: through the switch, arrays, Nifti
    images and DataFrames come back as their own types, stored as their own value types, not pickled."""
    got = json.loads(run(layered("0.6.0"), TYPES, str(tmp_path)))
    assert got == {"array": [True, "MemmapArray"], "nifti1": [True, "NibabelNifti"],
                   "nifti2": [True, "NibabelNifti"], "frame": [True, "PandasDataFrame"]}
