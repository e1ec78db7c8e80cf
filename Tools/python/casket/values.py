"""Value trees (docs/FORMAT.md section 6): encode Python values into nodes, decode nodes back."""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import io
import json
import math
import os
import pickle
import sys
import typing as tp
from pathlib import Path

import numpy as np

from . import handlers
from .store import CasketError, Store, _as_byte_view, check_hash, is_well_formed_hash
from .verified import ChunkedArray

__all__ = ["encode", "encode_json", "packed_array", "decode", "row_array", "UnknownTypeError", "ValueFormatError",
           "Payload", "KNOWN_TYPES"]

JSON_INLINE_MAX = 512  # like exca's Json.MAX_INLINE_SIZE: larger JSON goes to a blob

KNOWN_TYPES = (
    "Bytes", "Json", "MemmapArray", "ContiguousMemmapArray", "TorchTensor", "Auto", "Pickle",
    "NumpyArray", "PandasDataFrame", "ParquetPandasDataFrame", "NibabelNifti", "MneRawFif",
    "MneRawBrainVision", "AutoPickle", "String", "DataDict", "File", "ExcaHandler",
)
ARRAY_TYPES = ("MemmapArray", "ContiguousMemmapArray", "TorchTensor")
_PLAIN = (type(None), bool, int, float, str, dict, list, tuple)  # never asked to exca's handler table


class ValueFormatError(CasketError, ValueError):
    """A value tree does not follow FORMAT section 6."""


class UnknownTypeError(ValueFormatError):
    """A node has a ``#type`` this reader does not know (it never guesses)."""


class MissingDependencyError(CasketError, ImportError):
    """Rebuilding a value needs an optional package that is not installed."""


def _require(module: str, type_name: str) -> tp.Any:
    try:
        __import__(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"reading a {type_name!r} value needs the {module!r} package: pip install {module}"
        ) from e
    return sys.modules[module]


# --------------------------------------------------------------------------- encode


class Payload(tp.NamedTuple):
    hash: str
    size: int
    data: tp.Any  # a buffer holding the payload, or the Path of a staged file, kept to republish (FORMAT 5.5 step 4)


class _Encoder:
    def __init__(self, store: Store, stack: contextlib.ExitStack) -> None:
        self.store = store
        self.stack = stack  # staging folders live until the line naming their blobs is written
        self.payloads: list[Payload] = []
        self.nodes = 0
        self.array_tail: tp.Optional[tuple[dict, bytes]] = None  # the last array node, its JSON after "size"

    def payload(self, node: dict, data: tp.Any) -> dict:
        """Attach ``data`` to ``node`` as a blob (written now) or inline (<= inline_max)."""
        view = _as_byte_view(data)
        size = view.nbytes
        self.nodes += 1
        head = {"#type": node["#type"]}
        rest = {k: v for k, v in node.items() if k != "#type"}
        if self.store.inline_max > 0 and size <= self.store.inline_max:  # FORMAT 6.3, as Swift: empty too
            return {**head, "inline": base64.b64encode(view).decode("ascii"), "size": size, **rest}
        h = self.store.put_bytes(view)
        self.payloads.append(Payload(h, size, view))
        return {**head, "blob": h, "size": size, **rest}

    def file_payload(self, path: Path) -> dict:
        """A file as a payload object (``blob``/``size``, or ``inline``), streamed into the store."""
        size = os.lstat(path).st_size
        self.nodes += 1
        if self.store.inline_max > 0 and size <= self.store.inline_max:
            return {"inline": base64.b64encode(path.read_bytes()).decode("ascii"), "size": size}
        h = self.store.put_file(path)
        self.payloads.append(Payload(h, size, path))
        return {"blob": h, "size": size}

    def handler(self, value: tp.Any, cache_type: tp.Optional[str], key: str) -> dict:
        """exca's own handler writes ``value`` into a fresh staging folder (one DumpContext per value, so
        shared files hold only its bytes); every file becomes a payload. MneRawFif and MneRawBrainVision
        give their FORMAT nodes; other handlers an ``ExcaHandler`` node holding exca's info dict."""
        name = cache_type or handlers.handler_name(value) or type(value).__name__
        context = handlers.require_dump_context(f"writing a value through exca's handler {name!r}")
        folder = self.stack.enter_context(handlers.staging(self.store))
        handlers.settle_defaults()
        ctx = context(folder, key=key)
        with ctx:
            info = ctx.dump(value, cache_type=cache_type)
        import orjson  # exca's dependency: the info dict exactly as exca writes it in its index line

        info = json.loads(orjson.dumps(info))
        files = handlers.staged_files(folder, info["#type"])
        native = _native_mne(info, files)
        if native is not None:
            node, named = native
            payloads = {n: self.file_payload(p) for n, p in named}
            if node["#type"] == "MneRawFif":
                return {**node, **payloads["value-raw.fif"]}
            return {**node, "files": payloads}
        return {"#type": "ExcaHandler", "info": self.json(info),
                "files": {rel: self.file_payload(path) for rel, path in files}}

    # ---- typed nodes

    def array(self, value: tp.Any, type_name: str = "MemmapArray") -> dict:
        arr = value if type(value) is np.ndarray else np.asarray(value)
        name, tail = _array_form(type_name, arr)
        shape = list(arr.shape)  # ascontiguousarray turns 0-d into 1-d: keep the shape
        if not arr.flags.c_contiguous:
            arr = arr.copy(order="C")
        node = self.payload({"#type": type_name, "dtype": name, "shape": shape}, arr)
        self.array_tail = (node, tail)
        return node

    def torch(self, value: tp.Any) -> dict:
        t = value.detach().cpu().contiguous()
        arr = t.numpy()
        return self.array(arr, "TorchTensor")

    def json(self, value: tp.Any) -> dict:
        raw = _json_bytes(value)
        if len(raw) <= JSON_INLINE_MAX:
            return {"#type": "Json", "content": value}
        return self.payload({"#type": "Json"}, raw)

    def pickle(self, value: tp.Any) -> dict:
        return self.payload({"#type": "Pickle"}, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def bytes_(self, value: tp.Any) -> dict:
        return self.payload({"#type": "Bytes"}, bytes(value) if isinstance(value, bytearray) else value)

    def string(self, value: str) -> dict:
        return self.payload({"#type": "String"}, value.encode("utf-8"))

    def numpy_file(self, value: tp.Any) -> dict:
        buf = io.BytesIO()
        np.save(buf, np.asarray(value), allow_pickle=False)
        return self.payload({"#type": "NumpyArray"}, buf.getbuffer())

    def pandas_csv(self, value: tp.Any) -> dict:
        return self.payload({"#type": "PandasDataFrame"}, value.to_csv(index=True).encode("utf-8"))

    def pandas_parquet(self, value: tp.Any) -> dict:
        buf = io.BytesIO()
        value.to_parquet(buf)
        return self.payload({"#type": "ParquetPandasDataFrame"}, buf.getbuffer())

    def nifti(self, value: tp.Any) -> dict:
        return self.payload({"#type": "NibabelNifti"}, gzip.compress(value.to_bytes(), mtime=0))

    # ---- dispatch (exca's default CacheDict choice)

    def leaf(self, val: tp.Any, key: str) -> tp.Optional[dict]:
        """Node for a value that has a dedicated type, else None."""
        if hasattr(val, "__dump_info__"):  # exca asks the value first
            return self.handler(val, None, key)
        if isinstance(val, np.ndarray):
            if val.dtype.hasobject or val.dtype.fields is not None:
                return self.pickle(val)
            return self.array(val)
        if isinstance(val, (bytes, bytearray, memoryview)):
            return self.bytes_(val)
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(val, torch.Tensor):
            return self.torch(val)
        pd = sys.modules.get("pandas")
        if pd is not None and isinstance(val, pd.DataFrame):
            return self.pandas_csv(val)
        nib = sys.modules.get("nibabel")
        if nib is not None and isinstance(val, (nib.Nifti1Image, nib.Nifti2Image)):
            return self.nifti(val)
        proxy = handlers.contiguous_memmap() if "exca" in sys.modules else None
        if proxy is not None and isinstance(val, proxy):
            return self.array(np.asarray(val), "ContiguousMemmapArray")  # as exca's default for its proxy
        if type(val) not in _PLAIN and handlers.handler_name(val) is not None:
            return self.handler(val, None, key)
        return None

    def tree(self, val: tp.Any, key: str) -> tp.Any:
        """Auto content: containers walked, typed leaves become nodes, JSON leaves stay."""
        if val is None or isinstance(val, (bool, int, str)):
            if isinstance(val, int) and not isinstance(val, bool) and type(val) is not int:
                return self.pickle(val)  # int subclasses (IntEnum...) would lose their type
            if isinstance(val, str) and type(val) is not str:
                return self.pickle(val)
            return val
        if type(val) is float:
            return val if math.isfinite(val) else self.pickle(val)
        if type(val) is dict:
            if all(isinstance(k, str) for k in val) and "#type" not in val:
                return {k: self.tree(v, f"{key}[{k}]") for k, v in val.items()}  # exca's Auto sub-keys
            return self.pickle(val)
        if type(val) in (list, tuple):
            return [self.tree(v, f"{key}[{i}]") for i, v in enumerate(val)]
        node = self.leaf(val, key)
        if node is not None:
            return node
        return self.pickle(val)

    def top(self, value: tp.Any, cache_type: tp.Optional[str], key: str) -> dict:
        if cache_type is not None:
            return self.forced(value, cache_type, key)
        node = self.leaf(value, key)
        if node is not None:
            return node
        if value is None or isinstance(value, (bool, int, float, str, dict, list, tuple)):
            content = self.tree(value, key)
            if isinstance(content, dict) and "#type" in content:
                return content  # a single non-JSON value (nan, int subclass...): its node
            if self.nodes == 0:
                # no typed node inside: promote to Json (exca does the same); tuples become lists
                return self.json(content)
            return {"#type": "Auto", "content": content}
        return self.pickle(value)

    def forced(self, value: tp.Any, cache_type: str, key: str) -> dict:
        if cache_type == "MemmapArrayFile":  # exca 0.6's deprecated alias
            cache_type = "MemmapArray"
        if cache_type in ARRAY_TYPES:
            torch = sys.modules.get("torch")
            if torch is not None and isinstance(value, torch.Tensor):
                return self.array(value.detach().cpu().contiguous().numpy(), cache_type)
            return self.array(value, cache_type)
        simple: dict[str, tp.Callable[[tp.Any], dict]] = {
            "Json": lambda v: self.json(_check_json(v)),
            "Pickle": self.pickle,
            "Bytes": self.bytes_,
            "String": self.string,
            "NumpyArray": self.numpy_file,
            "PandasDataFrame": self.pandas_csv,
            "ParquetPandasDataFrame": self.pandas_parquet,
            "NibabelNifti": self.nifti,
        }
        if cache_type in simple:
            return simple[cache_type](value)
        if cache_type == "Auto":
            content = self.tree(value, key)
            if isinstance(content, dict) and "#type" in content:
                return content
            return {"#type": "Auto", "content": content}
        if handlers.dump_context() is not None:
            return self.handler(value, cache_type, key)  # exca's handler (it raises for a name it lacks)
        raise ValueError(f"casket cannot write cache_type {cache_type!r} without exca (0.5.29 or later) installed")


# json.dumps with these arguments builds an encoder per call: one made once writes the same bytes
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _json_bytes(value: tp.Any) -> bytes:
    return _ENCODE(value).encode("utf-8")


_ARRAY_FORMS: dict[tuple, tuple[str, bytes]] = {}  # (type, dtype, shape) -> dtype name, JSON after "size"
_ARRAY_FORMS_MAX = 4096  # bounded: a writer of arrays of ever new shapes keeps no growing table


_READ_FORMS: dict[tuple, tuple[np.dtype, int]] = {}  # (dtype name, *shape) -> dtype, byte count


def _array_form(type_name: str, arr: np.ndarray) -> tuple[str, bytes]:
    """The ``dtype`` of an array node and the JSON of its fields after ``size`` (``"dtype":...,"shape":
    [...]}``), made once per type, dtype and shape (``str(dtype)`` alone costs more than the rest of a node).
    TypeError for a dtype that raw bytes cannot hold."""
    key = (type_name, arr.dtype, arr.shape)
    form = _ARRAY_FORMS.get(key)
    if form is None:
        dt = arr.dtype
        if dt.hasobject or dt.fields is not None or dt.subdtype is not None:
            raise TypeError(f"{type_name} cannot store dtype {dt} (use Pickle)")
        name = str(dt)
        if len(_ARRAY_FORMS) >= _ARRAY_FORMS_MAX:
            _ARRAY_FORMS.clear()
        form = _ARRAY_FORMS[key] = (name, _json_bytes({"dtype": name, "shape": list(arr.shape)})[1:])
    return form


def _check_json(value: tp.Any) -> tp.Any:
    try:
        _json_bytes(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"value of type {type(value).__name__} is not JSON-serializable: {e}") from e
    return value


def _native_mne(info: dict, files: list[tuple[str, Path]]) -> tp.Optional[tuple[dict, list[tuple[str, Path]]]]:
    """The FORMAT node of exca's MneRawFif / MneRawBrainVision output (one ``-raw.fif`` file; one folder of
    BrainVision files), with the files it names; None for anything else (then an ``ExcaHandler`` node)."""
    kind, name = info.get("#type"), info.get("filename")
    if set(info) != {"#type", "filename"} or not isinstance(name, str):
        return None
    if kind == "MneRawFif" and [rel for rel, _ in files] == [name]:
        return {"#type": "MneRawFif"}, [("value-raw.fif", files[0][1])]
    if kind == "MneRawBrainVision" and files and all(rel.startswith(name + "/") for rel, _ in files):
        named = [(rel[len(name) + 1:], path) for rel, path in files]
        if all("/" not in n for n, _ in named) and sum(n.endswith(".vhdr") for n, _ in named) == 1:
            return {"#type": "MneRawBrainVision"}, named
    return None


def encode(store: Store, value: tp.Any, cache_type: tp.Optional[str] = None, key: str = "",
           stack: tp.Optional[contextlib.ExitStack] = None) -> tuple[dict, list[Payload]]:
    """Encode ``value`` into a node tree, writing its blobs (FORMAT 5.5 step 1).

    Returns the value tree and the payloads (first occurrence order, no repeats). ``key`` names the files
    of exca's handlers as exca does; ``stack`` keeps their staged files (the payloads of file sources)
    until it closes, for republishing (FORMAT 5.5 step 4); without it they are removed before returning."""
    if stack is not None:
        return _encode(store, value, cache_type, key, stack)[:2]
    with contextlib.ExitStack() as own:
        return _encode(store, value, cache_type, key, own)[:2]


def packed_array(store: Store, arr: np.ndarray) -> tp.Optional[tuple[dict, Payload, bytes]]:
    """The ``MemmapArray`` node of a non-empty array that the store packs in the running write session, its
    payload and the node's JSON: what :func:`encode_json` gives for it, without the walk (a write of a small
    array is mostly Python overhead). None when the payload is not packed (inlined, too large, no session)."""
    name, tail = _array_form("MemmapArray", arr)
    shape = list(arr.shape)
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")
    view = _as_byte_view(arr)
    size = view.nbytes
    if size <= store.inline_max or size >= store.pack_max:
        return None
    h = store.put_small(view)
    if h is None:
        return None
    node = {"#type": "MemmapArray", "blob": h, "size": size, "dtype": name, "shape": shape}
    return node, Payload(h, size, view), b'{"#type":"MemmapArray","blob":"%s","size":%d,%s' % (
        h.encode("ascii"), size, tail)


def encode_json(store: Store, value: tp.Any, cache_type: tp.Optional[str], key: str,
                stack: contextlib.ExitStack) -> tuple[dict, list[Payload], bytes]:
    """:func:`encode`, and the value tree as compact JSON (the bytes ``json.dumps`` gives, made from a
    template for an array node)."""
    node, payloads, enc = _encode(store, value, cache_type, key, stack)
    top = enc.array_tail
    if top is not None and top[0] is node and "blob" in node:
        text = b'{"#type":%s,"blob":"%s","size":%d,%s' % (
            _json_bytes(node["#type"]), node["blob"].encode("ascii"), node["size"], top[1])
    else:
        text = _json_bytes(node)
    return node, payloads, text


def _encode(store: Store, value: tp.Any, cache_type: tp.Optional[str], key: str,
            stack: contextlib.ExitStack) -> tuple[dict, list[Payload], "_Encoder"]:
    enc = _Encoder(store, stack)
    node = enc.top(value, cache_type, key)
    payloads = enc.payloads
    if len(payloads) > 1:
        seen: dict[str, Payload] = {}
        for p in payloads:
            seen.setdefault(p.hash, p)
        payloads = list(seen.values())
    return node, payloads, enc


# --------------------------------------------------------------------------- decode


class _Decoder:
    def __init__(self, store: Store, key: str, verify: bool) -> None:
        self.store = store
        self.key = key
        self.verify = verify

    def err(self, msg: str) -> ValueFormatError:
        return ValueFormatError(f"key {self.key!r}: {msg}")

    # ---- payloads

    def _payload_fields(self, node: dict) -> tuple[tp.Optional[str], tp.Optional[str], tp.Optional[int]]:
        has_blob, has_inline = "blob" in node, "inline" in node
        if has_blob and has_inline:
            raise self.err(f"{node.get('#type')} node has both 'blob' and 'inline'")
        if not (has_blob or has_inline):
            return None, None, None
        size = node.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise self.err(f"{node.get('#type')} node has an invalid 'size' {size!r}")
        if has_blob:
            if not is_well_formed_hash(node["blob"]):
                raise self.err(f"bad blob hash {node['blob']!r}")
            return node["blob"], None, size
        if not isinstance(node["inline"], str):
            raise self.err("'inline' is not a string")
        return None, node["inline"], size

    def _inline_bytes(self, inline: str, size: int) -> bytes:
        try:
            data = base64.b64decode(inline.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as e:
            raise self.err(f"invalid base64 'inline' payload ({e})") from e
        if len(data) != size:
            raise self.err(f"inline payload has {len(data)} bytes, 'size' says {size}")
        return data

    def payload_bytes(self, node: dict, required: bool = True) -> tp.Optional[bytes]:
        blob, inline, size = self._payload_fields(node)
        if blob is not None:
            assert size is not None
            return self.store.get_bytes(blob, expected_size=size)
        if inline is not None:
            assert size is not None
            return self._inline_bytes(inline, size)
        if required:
            raise self.err(f"{node.get('#type')} node has no payload")
        return None

    def array(self, node: dict) -> np.ndarray:
        dtype_s, shape = node.get("dtype"), node.get("shape")
        if not isinstance(dtype_s, str):
            raise self.err(f"{node.get('#type')} node has no 'dtype'")
        if not isinstance(shape, (list, tuple)):
            raise self.err(f"{node.get('#type')} node has an invalid 'shape' {shape!r}")
        for n in shape:  # a loop, not all(...): cheaper for the few axes an array has
            if type(n) is not int or n < 0:
                raise self.err(f"{node.get('#type')} node has an invalid 'shape' {shape!r}")
        form = _READ_FORMS.get((dtype_s, *shape))
        if form is None:
            try:
                dt = np.dtype(dtype_s)
            except TypeError as e:
                raise self.err(f"unsupported dtype {dtype_s!r} ({e})") from e
            if dt.hasobject or dt.fields is not None:
                raise self.err(f"dtype {dtype_s!r} cannot be loaded from raw bytes")
            form = (dt, int(np.prod(shape, dtype=np.int64)) * dt.itemsize)
            if len(_READ_FORMS) >= _ARRAY_FORMS_MAX:
                _READ_FORMS.clear()
            _READ_FORMS[(dtype_s, *shape)] = form
        dt, nbytes = form
        blob, inline, size = self._payload_fields(node)
        if size is not None and size != nbytes:
            raise self.err(f"array of dtype {dtype_s} and shape {shape} needs {nbytes} bytes, payload 'size' is {size}")
        if blob is not None:
            return self.store._array(blob, dt, shape, nbytes, self.verify)  # hash checked by _payload_fields
        if inline is not None:
            data = self._inline_bytes(inline, nbytes)
            return np.frombuffer(bytearray(data), dtype=dt).reshape(shape)
        raise self.err(f"{node.get('#type')} node has no payload")

    # ---- nodes

    def tree(self, val: tp.Any) -> tp.Any:
        if isinstance(val, dict):
            if "#type" in val:
                return self.node(val)
            return {k: self.tree(v) for k, v in val.items()}
        if isinstance(val, list):
            return [self.tree(v) for v in val]
        return val

    def node(self, node: dict) -> tp.Any:
        t = node.get("#type")
        if t == "MemmapArray":  # the common case first
            return self.array(node)
        if not isinstance(t, str) or t not in KNOWN_TYPES:
            raise UnknownTypeError(f"key {self.key!r}: unknown #type {t!r}")
        return getattr(self, "t_" + t)(node)

    def t_Bytes(self, node: dict) -> bytes:
        return self.payload_bytes(node)  # type: ignore[return-value]

    def t_Json(self, node: dict) -> tp.Any:
        raw = self.payload_bytes(node, required=False)
        if raw is None:
            if "content" not in node:
                raise self.err("Json node has neither payload nor 'content'")
            return node["content"]
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise self.err(f"Json payload is not UTF-8 JSON ({e})") from e

    def t_MemmapArray(self, node: dict) -> np.ndarray:
        return self.array(node)

    def t_ContiguousMemmapArray(self, node: dict) -> tp.Any:
        """exca's ``ContiguousMemmap`` proxy when exca is installed (as exca returns), over a memory map of
        the raw blob, or of a verified file in the read folder for a compressed, packed or inline payload. An array
        with chunk digests stays Casket's own proxy, verified by the chunks each read touches (FORMAT 3.6):
        exca's would read the mapping unverified, so it could only be given one verified whole."""
        arr = self.array(node)
        proxy = handlers.contiguous_memmap()
        if proxy is None or arr.size == 0 or isinstance(arr, ChunkedArray):  # exca never writes an empty array
            return arr
        if not isinstance(arr, np.memmap) or arr.filename is None:  # a packed array is in memory, no file
            folder = self.view({"array": node})
            arr = np.memmap(folder / "array", dtype=arr.dtype, mode="r", shape=arr.shape, order="C")
        return proxy(arr)

    def t_TorchTensor(self, node: dict) -> tp.Any:
        if "dtype" not in node:
            raise self.err("TorchTensor node without 'dtype' (a legacy .pt payload) is not supported")
        arr = self.array(node)
        try:
            import torch
        except ImportError:
            return arr
        return torch.from_numpy(np.array(arr))  # copy: like exca, a writable tensor

    def t_Auto(self, node: dict) -> tp.Any:
        if "content" not in node:
            raise self.err("Auto node has no 'content'")
        return self.tree(node["content"])

    def t_Pickle(self, node: dict) -> tp.Any:
        return pickle.loads(self.payload_bytes(node))  # type: ignore[arg-type]

    def t_String(self, node: dict) -> str:
        return self.payload_bytes(node).decode("utf-8")  # type: ignore[union-attr]

    def t_NumpyArray(self, node: dict) -> np.ndarray:
        return np.load(io.BytesIO(self.payload_bytes(node)), allow_pickle=False)  # type: ignore[arg-type]

    def t_PandasDataFrame(self, node: dict) -> tp.Any:
        pd = _require("pandas", "PandasDataFrame")
        data = self.payload_bytes(node)
        return pd.read_csv(io.BytesIO(data), index_col=0, keep_default_na=False, na_values=[""])

    def t_ParquetPandasDataFrame(self, node: dict) -> tp.Any:
        pd = _require("pandas", "ParquetPandasDataFrame")
        data = self.payload_bytes(node)
        return pd.read_parquet(io.BytesIO(data), dtype_backend="numpy_nullable")

    def t_NibabelNifti(self, node: dict) -> tp.Any:
        nib = _require("nibabel", "NibabelNifti")
        data = self.payload_bytes(node)
        assert data is not None
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        try:
            return nib.Nifti1Image.from_bytes(data)
        except Exception:  # noqa: BLE001 - NIfTI-2 header
            return nib.Nifti2Image.from_bytes(data)

    def view(self, files: dict[str, dict]) -> Path:
        """A read folder holding ``files`` (relative name -> payload object), each a verified file (FORMAT
        6.2 ``ExcaHandler``), for loaders that open files by name; made once per process."""
        for name, sub in files.items():
            self._payload_fields(sub)  # a well-formed payload, before anything is made
        return handlers.read_view(self.store, files, self._fill)

    def _fill(self, node: dict, path: Path) -> None:
        blob, inline, size = self._payload_fields(node)
        if blob is not None:
            assert size is not None
            self.store.materialize(blob, size, path)
        elif inline is not None:
            assert size is not None
            path.write_bytes(self._inline_bytes(inline, size))
        else:
            raise self.err(f"file {path.name!r} has no payload")

    def files(self, node: dict, plain: bool) -> dict[str, dict]:
        """A node's ``files`` object, its names checked: plain file names, or (``ExcaHandler``) relative
        paths of plain names; a hostile name never reaches the file system."""
        t = node.get("#type")
        files = node.get("files")
        if not isinstance(files, dict) or (not files and plain):
            raise self.err(f"{t} node has no 'files' object")
        for name, sub in files.items():
            if not handlers.check_name(name) or (plain and "/" in name):
                what = "a plain file name" if plain else "a relative path of plain names"
                raise self.err(f"{t} file name {name!r} is not {what}")
            if not isinstance(sub, dict):
                raise self.err(f"{t} file {name!r} is not a payload object")
        return files

    def t_MneRawFif(self, node: dict) -> tp.Any:
        mne = _require("mne", "MneRawFif")
        fp = self.view({"value-raw.fif": node}) / "value-raw.fif"
        try:  # as exca's MneRawFif: not preloaded, read from the (verified) file on demand
            return mne.io.read_raw_fif(fp, verbose=False, allow_maxshield=False)
        except ValueError:
            import warnings

            raw = mne.io.read_raw_fif(fp, verbose=False, allow_maxshield=True)
            warnings.warn("MaxShield data detected, consider applying Maxwell filter and interpolating bad channels")
            return raw

    def t_MneRawBrainVision(self, node: dict) -> tp.Any:
        mne = _require("mne", "MneRawBrainVision")
        files = self.files(node, plain=True)
        vhdr = sorted(n for n in files if n.endswith(".vhdr"))
        if len(vhdr) != 1:
            raise self.err(f"MneRawBrainVision needs exactly one .vhdr file, found {vhdr}")
        return mne.io.read_raw_brainvision(self.view(files) / vhdr[0], verbose=False)

    def t_ExcaHandler(self, node: dict) -> tp.Any:
        """exca's own ``__load_from_info__``, given a DumpContext over a read folder of the node's files."""
        sub = node.get("info")
        if not isinstance(sub, dict) or sub.get("#type") != "Json":
            raise self.err("ExcaHandler node has no Json 'info' node")
        info = self.t_Json(sub)
        name = info.get("#type") if isinstance(info, dict) else None
        if not isinstance(name, str):
            raise self.err(f"ExcaHandler 'info' is not an exca info dict with a '#type': {info!r}")
        files = self.files(node, plain=False)
        for filename in handlers.info_filenames(info):  # exca's handlers open ctx.folder / filename
            if not handlers.check_name(filename) or not handlers.names_file(filename, files):
                raise self.err(f"ExcaHandler info names the file {filename!r}, which is not one of its files")
        context = handlers.require_dump_context(f"reading a value of exca's handler {name!r}")
        try:
            context._lookup(name)  # DumpContext.HANDLERS, and 0.5.x's legacy DumperLoader.CLASSES
        except KeyError:
            raise UnknownTypeError(
                f"key {self.key!r}: exca handler {name!r} is not registered in this process (import the module "
                "that defines it, with DumpContext.register, before reading)") from None
        ctx = context(self.view(files), key=self.key)
        try:
            return ctx.load(info)
        except KeyError as e:  # a stored key that fails to load must not read as a missing key
            raise ValueFormatError(f"key {self.key!r}: exca handler {name!r} failed to load: {e!r}") from e

    def t_AutoPickle(self, node: dict) -> tp.Any:
        refs = node.get("refs", [])
        if not isinstance(refs, list):
            raise self.err("AutoPickle 'refs' is not an array")
        table: dict[tuple[str, tp.Optional[int]], dict] = {}
        for ref in refs:
            if not isinstance(ref, dict) or not isinstance(ref.get("filename"), str):
                raise self.err(f"invalid AutoPickle ref {ref!r}")
            off = ref.get("offset")
            table[(ref["filename"], off)] = ref
        tree = pickle.loads(self.payload_bytes(node))  # type: ignore[arg-type]
        return self._replace_infos(tree, table)

    def _replace_infos(self, val: tp.Any, table: dict) -> tp.Any:
        if isinstance(val, dict):
            if "#type" in val and "filename" in val:
                fname, off = val["filename"], val.get("offset")
                ref = table.get((fname, off))
                if ref is None:
                    raise self.err(f"AutoPickle embeds {fname!r} offset {off} with no matching ref")
                sub = {k: v for k, v in val.items() if k not in ("filename", "offset", "length")}
                for k in ("blob", "inline", "size"):
                    if k in ref:
                        sub[k] = ref[k]
                return self.node(sub)
            if "#type" in val and "content" in val:
                inner = dict(val)
                inner["content"] = self._replace_infos(val["content"], table)
                return self.node(inner)
            return {k: self._replace_infos(v, table) for k, v in val.items()}
        if isinstance(val, list):
            return [self._replace_infos(v, table) for v in val]
        if isinstance(val, tuple):
            return tuple(self._replace_infos(v, table) for v in val)
        return val

    def t_DataDict(self, node: dict) -> dict:
        optimized = node.get("optimized", {})
        if not isinstance(optimized, dict):
            raise self.err("DataDict 'optimized' is not an object")
        out = {k: self.tree(v) for k, v in optimized.items()}
        pickled = node.get("pickled")
        if pickled is not None and pickled != {}:
            if not isinstance(pickled, dict):
                raise self.err("DataDict 'pickled' is not a node or null")
            extra = self.node(pickled)
            if not isinstance(extra, dict):
                raise self.err("DataDict 'pickled' does not hold a dict")
            out.update(extra)
        return out

    def t_File(self, node: dict) -> bytes:
        return self.payload_bytes(node)  # type: ignore[return-value]


def decode(store: Store, value: tp.Any, key: str = "", verify: bool = True) -> tp.Any:
    """Rebuild the Python value of a value tree (FORMAT 6.2)."""
    dec = _Decoder(store, key, verify)
    if type(value) is dict and value.get("#type") == "MemmapArray":  # the common case, without the walk
        return dec.array(value)
    return dec.tree(value)


# (dtype, shape, size) of an array line as the index's block pass took it (text) -> the dtype, the shape and
# the byte count, or None where the decoder would raise: those lines take the general path for its errors
_ROW_FORMS: dict[tuple[str, str, str], tp.Optional[tuple[np.dtype, tuple[int, ...], int]]] = {}
_MEMMAP, _NEW = np.memmap, np.ndarray.__new__


def _row_form(dtype_s: str, shape_s: str, size_s: str) -> tp.Optional[tuple[np.dtype, tuple[int, ...], int]]:
    """What :meth:`_Decoder.array` makes of a node's dtype, shape and size, when it accepts them, else None."""
    try:
        dt = np.dtype(dtype_s)
    except Exception:  # noqa: BLE001 - the decoder gives the error of any dtype it refuses
        return None
    shape = tuple(int(x) for x in shape_s.split(",")) if shape_s else ()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    if dt.hasobject or dt.fields is not None or nbytes != int(size_s):
        return None
    return dt, shape, nbytes


def row_array(store: Store, row: tuple[str, ...]) -> tp.Optional[np.ndarray]:
    """The read fast path of an array line the index's block pass took (``row``: key, ts, blob, size, dtype,
    shape, as text), for a payload in a sealed pack's raw record: what :func:`decode` returns for its node
    (a read-only ``np.memmap`` over the verified bytes), with the same checks of the node (the pattern took
    only a well-formed hash and JSON integers; the form is judged as the decoder judges it, once per
    form) and of the record (:meth:`PackShelf.read_raw`). None whenever anything is otherwise (another
    form, a payload not in that table, a damaged record): the caller decodes the entry, whose answer or
    error is then the general path's own."""
    _, _, h, size_s, dtype_s, shape_s = row
    form_key = (dtype_s, shape_s, size_s)
    form = _ROW_FORMS.get(form_key, False)
    if form is False:
        form = _row_form(dtype_s, shape_s, size_s)
        if len(_ROW_FORMS) >= _ARRAY_FORMS_MAX:
            _ROW_FORMS.clear()
        _ROW_FORMS[form_key] = form
    if form is None:
        return None
    dt, shape, nbytes = form
    if not 0 < nbytes < store.pack_max:  # empty, or large: the general path looks at blob files first
        return None
    shelf = store._shelf
    if shelf is None:
        return None
    arr = _NEW(_MEMMAP, shape, dt)  # the array returned, read into: no view of a buffer made for it
    if not shelf.read_raw(h, arr, nbytes):
        return None
    arr.flags.writeable = False  # as every read gives it
    arr.offset, arr.mode = 0, "r"  # np.memmap's own fields, as _read_only_memmap sets them for a payload
    return arr


def referenced_blobs(value: tp.Any) -> list[str]:
    """Every ``blob`` hash in a value tree, first occurrence order (for checking ``blobs``)."""
    out: dict[str, None] = {}

    def walk(v: tp.Any) -> None:
        if isinstance(v, dict):
            b = v.get("blob")
            if "#type" in v or "size" in v:
                if isinstance(b, str):
                    out.setdefault(check_hash(b), None)
            for k, x in v.items():
                if not (k == "content" and v.get("#type") == "Json"):  # user data (FORMAT 6.1)
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    return list(out)

