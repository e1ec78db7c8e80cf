import base64
import gzip
import io
import json
import pickle

import numpy as np
import pytest

import casket
from casket.store import hash_bytes

from conftest import blob_files


def roundtrip(root, value, cache_type=None):
    cd = casket.CacheDict(root, cache_type=cache_type)
    with cd.write():
        cd["k"] = value
    entry = casket.CacheDict(root).entry("k")
    return casket.CacheDict(root)["k"], entry


# ---------------------------------------------------------------- exca interface


def test_exca_interface(root):
    cd = casket.CacheDict(root)
    assert len(cd) == 0 and list(cd.keys()) == [] and not cd
    with pytest.raises(RuntimeError):
        cd["a"] = 1
    with cd.write():
        cd["a"] = 1
        cd["b"] = np.arange(3)
        with pytest.raises(ValueError, match="Overwriting"):
            cd["a"] = 2
        with pytest.raises(TypeError):
            cd[3] = 1  # type: ignore[index]
    with pytest.raises(RuntimeError):
        del cd["a"]
    other = casket.CacheDict(root)
    assert "a" in other and "b" in other and "c" not in other and 3 not in other
    assert len(other) == 2 and sorted(other) == ["a", "b"]
    assert dict(other.items())["a"] == 1
    assert sorted(map(str, other.values())) == ["1", "[0 1 2]"]
    with pytest.raises(KeyError):
        other["c"]


def test_keep_in_ram(root):
    cd = casket.CacheDict(root, keep_in_ram=True)
    with cd.write():
        cd["a"] = {"x": 1}
    assert cd["a"] is cd["a"]


def test_sees_other_writers_incrementally(root):
    reader = casket.CacheDict(root)
    assert "a" not in reader
    w = casket.CacheDict(root)
    with w.write():
        w["a"] = 1
        assert reader["a"] == 1  # visible as soon as the line is appended
    with w.write():
        w["b"] = 2
    assert sorted(reader.keys()) == ["a", "b"]


# ---------------------------------------------------------------- arrays


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(12, dtype="float32").reshape(3, 4),
        np.arange(12, dtype=">f4").reshape(3, 4),
        np.array(3.5),
        np.array(7, dtype=">i8"),
        np.array([True, False, True]),
        np.arange(6, dtype="complex64").reshape(2, 3),
        np.arange(10, dtype="float16"),
        np.array(["abc", "de"], dtype="<U3"),
        np.array([b"ab", b"c"], dtype="|S2"),
        np.arange(24, dtype="int16").reshape(2, 3, 4).transpose(2, 0, 1),  # non-contiguous
        np.zeros((0, 3), dtype="uint8"),
    ],
    ids=lambda a: f"{a.dtype.str}{list(a.shape)}",
)
def test_array_roundtrip_memmap(root, arr):
    got, entry = roundtrip(root, arr)
    assert entry.value["#type"] == "MemmapArray"
    assert entry.value["dtype"] == str(arr.dtype) and entry.value["shape"] == list(arr.shape)
    assert entry.blobs == [[entry.value["blob"], arr.nbytes]]
    assert got.dtype == arr.dtype and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)
    if arr.size:
        assert isinstance(got, np.memmap) and not got.flags.writeable
        h = entry.value["blob"]
        assert str(got.filename) == str(root / "blobs" / h[:2] / h)  # mapped, not copied
        assert hash_bytes(np.ascontiguousarray(arr).tobytes()) == h


def test_array_compressed_decoded_into_new_array(tmp_path):
    root = tmp_path / "z"
    casket.init_store(root, compression="lz4", durability="none")
    arr = np.zeros((256, 256), dtype=">f8")
    arr[3, 4] = 1.5
    got, entry = roundtrip(root, arr)
    h = entry.value["blob"]
    assert (root / "blobs" / h[:2] / (h + ".lz4")).exists()
    assert type(got) is np.ndarray and got.flags.writeable and got.dtype == arr.dtype
    np.testing.assert_array_equal(got, arr)


def test_inline_payloads(tmp_path):
    root = tmp_path / "i"
    casket.init_store(root, durability="none", inline_max=64)
    arr = np.arange(4, dtype="int32")
    got, entry = roundtrip(root, arr)
    assert entry.value == {"#type": "MemmapArray", "inline": base64.b64encode(arr.tobytes()).decode(),
                           "size": 16, "dtype": "int32", "shape": [4]}
    assert entry.blobs == [] and blob_files(root) == []
    np.testing.assert_array_equal(got, arr)


def test_flipped_byte_in_array_blob(root):
    arr = np.arange(1000, dtype="float64")
    _, entry = roundtrip(root, arr)
    h = entry.value["blob"]
    p = root / "blobs" / h[:2] / h
    p.chmod(0o644)
    b = bytearray(p.read_bytes())
    b[100] ^= 0x10
    p.write_bytes(bytes(b))
    with pytest.raises(casket.BlobCorruptError, match=str(p)):
        casket.CacheDict(root)["k"]


# ---------------------------------------------------------------- default type choice


def test_json_values(root):
    cd = casket.CacheDict(root)
    vals = {"i": 3, "f": 2.5, "s": "héllo", "n": None, "b": True, "l": [1, "a", None], "d": {"x": [1, 2]},
            "big": "x" * 2000}
    with cd.write():
        for k, v in vals.items():
            cd[k] = v
    other = casket.CacheDict(root)
    for k, v in vals.items():
        e = other.entry(k)
        assert e.value["#type"] == "Json"
        assert other[k] == v
    assert "content" in other.entry("i").value and other.entry("i").blobs == []
    big = other.entry("big")
    assert "blob" in big.value and big.blobs == [[big.value["blob"], big.value["size"]]]


def test_auto_nested(root):
    value = {"emg": np.ones((4, 5), dtype="float32"), "meta": {"fs": 2000, "events": [1, 5]},
             "masks": [np.zeros(3, dtype="uint8"), np.zeros(3, dtype="uint8")], "tag": "x",
             "weird": {1, 2}, "nan": float("nan")}
    got, entry = roundtrip(root, value)
    v = entry.value
    assert v["#type"] == "Auto"
    c = v["content"]
    assert c["emg"]["#type"] == "MemmapArray" and c["meta"] == {"fs": 2000, "events": [1, 5]}
    assert c["weird"]["#type"] == "Pickle" and c["tag"] == "x"
    # every blob listed once, first occurrence order
    hashes = [c["emg"]["blob"], c["masks"][0]["blob"], c["weird"]["blob"], c["nan"]["blob"]]
    assert [b[0] for b in entry.blobs] == hashes
    np.testing.assert_array_equal(got["emg"], value["emg"])
    assert got["meta"] == value["meta"] and got["tag"] == "x" and got["weird"] == {1, 2}
    assert np.isnan(got["nan"]) and len(got["masks"]) == 2


def test_bytes_and_pickle(root):
    cd = casket.CacheDict(root)
    obj = {(1, 2): "tuple key"}
    with cd.write():
        cd["b"] = b"\x00\x01raw"
        cd["p"] = obj
        cd["set"] = {3}
        cd["np"] = np.float32(1.5)
    other = casket.CacheDict(root)
    assert other.entry("b").value["#type"] == "Bytes" and other["b"] == b"\x00\x01raw"
    assert other.entry("p").value["#type"] == "Pickle" and other["p"] == obj
    assert other["set"] == {3}
    assert other["np"] == np.float32(1.5) and type(other["np"]) is np.float32


@pytest.mark.parametrize(
    "cache_type,value",
    [
        ("Pickle", [1, 2]),
        ("Json", {"a": 1}),
        ("String", "texte"),
        ("Bytes", b"abc"),
        ("NumpyArray", np.arange(5.0)),
        ("ContiguousMemmapArray", np.arange(5.0)),
        ("TorchTensor", np.arange(5.0)),
        ("MemmapArray", np.arange(5.0)),
        ("Auto", {"a": np.arange(2)}),
    ],
)
def test_forced_cache_type(root, cache_type, value):
    got, entry = roundtrip(root, value, cache_type)
    assert entry.value["#type"] == cache_type
    if isinstance(value, np.ndarray):
        try:
            import torch  # noqa: F401
        except ImportError:
            pass
        else:
            got = np.asarray(got)
        np.testing.assert_array_equal(got, value)
    elif isinstance(value, dict) and cache_type == "Auto":
        np.testing.assert_array_equal(got["a"], value["a"])
    else:
        assert got == value


def test_torch_roundtrip(root):
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    got, entry = roundtrip(root, t)
    assert entry.value["#type"] == "TorchTensor" and torch.equal(got, t)


# ---------------------------------------------------------------- hand-written nodes (migration output)


def write_entry(root, store, key, value, blobs):
    line = json.dumps({"key": key, "ts": 1, "value": value, "blobs": blobs}, separators=(",", ":"))
    with open(root / "index" / "migrate-1-00000000.jsonl", "a") as f:
        f.write(line + "\n")


def blob_node(store, t, data, **meta):
    h = store.put_bytes(data)
    return {"#type": t, "blob": h, "size": len(data), **meta}, [h, len(data)]


def test_read_only_types(root, store):
    arr = np.arange(6, dtype="float32")
    vals = {}
    n, b = blob_node(store, "File", b"opaque", exca_type="MyHandler", fields={"x": 1}, name="a.bin")
    vals["file"] = (n, [b], b"opaque")
    n, b = blob_node(store, "String", "été".encode())
    vals["string"] = (n, [b], "été")
    n, b = blob_node(store, "Json", json.dumps({"big": [1, 2]}).encode())
    vals["jsonblob"] = (n, [b], {"big": [1, 2]})
    buf = io.BytesIO()
    np.save(buf, arr)
    n, b = blob_node(store, "NumpyArray", buf.getvalue())
    vals["npy"] = (n, [b], arr)
    # DataDict: optimized nodes + a pickled dict
    an, ab = blob_node(store, "MemmapArray", arr.tobytes(), dtype="float32", shape=[6])
    pn, pb = blob_node(store, "Pickle", pickle.dumps({"other": "x"}))
    vals["datadict"] = ({"#type": "DataDict", "optimized": {"x": an}, "pickled": pn}, [ab, pb], {"x": arr, "other": "x"})
    vals["datadict0"] = ({"#type": "DataDict", "optimized": {"x": an}, "pickled": None}, [ab], {"x": arr})
    # AutoPickle: a pickle embedding exca info dicts, with refs naming their blobs
    tree = {"arr": {"filename": "data/vm-1.data", "offset": 42, "shape": [6], "dtype": "float32", "#type": "MemmapArray"},
            "big": {"filename": "data/vm-1.data.jsonl", "offset": 0, "length": 9, "#type": "Json"},
            "label": "plain", "tup": (1, 2)}
    jn, jb = blob_node(store, "Json", b'{"j":[1]}')
    apn, apb = blob_node(store, "AutoPickle", pickle.dumps(tree))
    apn["refs"] = [{"filename": "data/vm-1.data", "offset": 42, "blob": ab[0], "size": ab[1]},
                   {"filename": "data/vm-1.data.jsonl", "offset": 0, "blob": jb[0], "size": jb[1]}]
    vals["autopickle"] = (apn, [apb, ab, jb], {"arr": arr, "big": {"j": [1]}, "label": "plain", "tup": (1, 2)})
    for key, (node, blobs, _) in vals.items():
        write_entry(root, store, key, node, blobs)
    cd = casket.CacheDict(root)
    for key, (_, _, expected) in vals.items():
        got = cd[key]
        if isinstance(expected, np.ndarray):
            np.testing.assert_array_equal(got, expected)
        elif key.startswith("datadict"):
            assert got.keys() == expected.keys()
            np.testing.assert_array_equal(got["x"], arr)
            assert got.get("other") == expected.get("other")
        elif key == "autopickle":
            np.testing.assert_array_equal(got["arr"], arr)
            assert got["big"] == {"j": [1]} and got["label"] == "plain" and got["tup"] == (1, 2)
        else:
            assert got == expected, key


def test_torch_node_without_torch_gives_array(root, store):
    try:
        import torch  # noqa: F401
        pytest.skip("torch is installed")
    except ImportError:
        pass
    arr = np.arange(4, dtype="int64")
    n, b = blob_node(store, "TorchTensor", arr.tobytes(), dtype="int64", shape=[2, 2])
    write_entry(root, store, "t", n, [b])
    np.testing.assert_array_equal(casket.CacheDict(root)["t"], arr.reshape(2, 2))


def test_unknown_type_reported_by_key(root, store):
    write_entry(root, store, "mystery", {"#type": "Hologram", "content": 1}, [])
    with pytest.raises(casket.UnknownTypeError, match="mystery.*Hologram"):
        casket.CacheDict(root)["mystery"]


def test_array_size_mismatch_rejected(root, store):
    n, b = blob_node(store, "MemmapArray", b"\x00" * 8, dtype="float32", shape=[3])
    write_entry(root, store, "bad", n, [b])
    with pytest.raises(casket.ValueFormatError, match="bad"):
        casket.CacheDict(root)["bad"]


def test_object_dtype_refused(root, store):
    n, b = blob_node(store, "MemmapArray", b"\x00" * 16, dtype="object", shape=[2])
    write_entry(root, store, "obj", n, [b])
    with pytest.raises(casket.ValueFormatError, match="object"):
        casket.CacheDict(root)["obj"]


@pytest.mark.parametrize(
    "t,module",
    [("PandasDataFrame", "pandas"), ("ParquetPandasDataFrame", "pandas"), ("NibabelNifti", "nibabel"),
     ("MneRawFif", "mne")],
)
def test_optional_types(root, store, t, module):
    try:
        __import__(module)
        have = True
    except ImportError:
        have = False
    if t == "PandasDataFrame":
        data = b",a,b\nr0,1,x\nr1,2,\n"
    elif t == "NibabelNifti" and have:
        import nibabel

        img = nibabel.Nifti1Image(np.arange(8, dtype="int16").reshape(2, 2, 2), np.eye(4))
        data = gzip.compress(img.to_bytes())
    else:
        data = b"placeholder"
    n, b = blob_node(store, t, data)
    write_entry(root, store, "opt", n, [b])
    cd = casket.CacheDict(root)
    if not have:
        with pytest.raises(casket.MissingDependencyError, match=module):
            cd["opt"]
        return
    if t == "PandasDataFrame":
        df = cd["opt"]
        assert list(df.columns) == ["a", "b"] and list(df.index) == ["r0", "r1"]
    elif t == "NibabelNifti":
        np.testing.assert_array_equal(np.asarray(cd["opt"].dataobj), np.arange(8).reshape(2, 2, 2))
    else:
        pytest.skip(f"{t}: needs a real payload")


def test_brainvision_file_names_checked(root, store):
    sub, b = blob_node(store, "File", b"x")
    node = {"#type": "MneRawBrainVision", "files": {"../evil.vhdr": {"blob": sub["blob"], "size": 1}}}
    write_entry(root, store, "bv", node, [b])
    try:
        import mne  # noqa: F401
    except ImportError:
        with pytest.raises(casket.MissingDependencyError):
            casket.CacheDict(root)["bv"]
        return
    with pytest.raises(casket.ValueFormatError, match="plain file name"):
        casket.CacheDict(root)["bv"]


def test_pandas_dataframe_roundtrip(root):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=["r0", "r1"])
    got, entry = roundtrip(root, df)
    assert entry.value["#type"] == "PandasDataFrame"
    pd.testing.assert_frame_equal(got, df)


def test_nifti_roundtrip(root):
    nib = pytest.importorskip("nibabel")
    img = nib.Nifti1Image(np.arange(24, dtype="float32").reshape(2, 3, 4), np.eye(4))
    got, entry = roundtrip(root, img)
    assert entry.value["#type"] == "NibabelNifti"
    np.testing.assert_array_equal(np.asarray(got.dataobj), np.asarray(img.dataobj))
