"""Canonical, JSON-able form of a value loaded from an exca CacheDict.

``canon(value)`` is a pure function used to compare what exca returns with
what a migrator (or Casket's Python client) returns.  Only numpy is required;
pandas / nibabel / mne / torch are recognised when already importable.

Every JSON object in the output is a tag (``{"__ndarray__": ...}``,
``{"__dict__": ...}``...), so user dicts can never be confused with tags.
Plain JSON scalars (str, int, finite float, bool, None) stand for themselves.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import sys
import typing as tp

import numpy as np

__all__ = ["canon", "dumps"]

BYTES_INLINE_MAX = 256


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _float(x: float) -> tp.Any:
    if math.isnan(x):
        return {"__float__": "nan"}
    if math.isinf(x):
        return {"__float__": "inf" if x > 0 else "-inf"}
    return float(x)


def _ndarray(a: np.ndarray) -> dict[str, tp.Any]:
    a = np.asarray(a)  # memmap -> plain view, no copy
    if a.dtype.hasobject:
        # raw bytes would be PyObject pointers: describe the items instead
        return {
            "__ndarray__": {
                "dtype": str(a.dtype),
                "shape": list(a.shape),
                "items": [canon(x) for x in a.ravel(order="C").tolist()],
            }
        }
    return {
        "__ndarray__": {
            "dtype": str(a.dtype),
            "shape": list(a.shape),
            "sha256": _sha(a.tobytes(order="C")),  # raw bytes, byte order kept
        }
    }


def _mod(name: str) -> tp.Any:
    """Module if already imported (never import heavy packages just to check)."""
    return sys.modules.get(name)


def canon(value: tp.Any) -> tp.Any:
    """Return a deterministic JSON-able description of *value*."""
    # order matters: bool before int, np.generic before python scalars
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, np.ndarray):
        return _ndarray(value)
    if isinstance(value, np.generic):
        if isinstance(value, np.bool_):
            return {"__npscalar__": {"dtype": "bool", "value": bool(value)}}
        arr = np.asarray(value)
        return {"__npscalar__": {"dtype": str(arr.dtype), "hex": arr.tobytes().hex()}}
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, complex):
        return {"__complex__": [_float(value.real), _float(value.imag)]}
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) <= BYTES_INLINE_MAX:
            return {"__bytes__": data.hex()}
        return {"__bytes__": {"len": len(data), "sha256": _sha(data)}}
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: repr(kv[0]))
        return {"__dict__": [[canon(k), canon(v)] for k, v in items]}
    if isinstance(value, list):
        return [canon(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [canon(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"__set__": sorted((canon(v) for v in value), key=repr)}
    # exca's ContiguousMemmap proxy and other array-likes (not torch)
    torch = _mod("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        arr = value.detach().cpu().contiguous().numpy()
        return {"__torch__": _ndarray(arr)["__ndarray__"]}
    pd = _mod("pandas")
    if pd is not None:
        if isinstance(value, pd.DataFrame):
            return {
                "__dataframe__": {
                    "split": value.to_json(orient="split"),
                    "dtypes": [str(d) for d in value.dtypes],
                }
            }
        if isinstance(value, pd.Series):
            return {"__series__": {"split": value.to_json(orient="split"), "dtype": str(value.dtype)}}
    nib = _mod("nibabel")
    if nib is not None and isinstance(value, nib.spatialimages.SpatialImage):
        return {
            "__nifti__": {
                "class": type(value).__name__,
                "data": _ndarray(np.asanyarray(value.dataobj))["__ndarray__"],
                "affine": _ndarray(np.asarray(value.affine))["__ndarray__"],
            }
        }
    mne = _mod("mne")
    if mne is not None and isinstance(value, mne.io.BaseRaw):
        return {
            "__mne_raw__": {
                "data": _ndarray(value.get_data())["__ndarray__"],
                "sfreq": _float(float(value.info["sfreq"])),
                "ch_names": list(value.ch_names),
            }
        }
    if hasattr(value, "__array__") and not callable(getattr(value, "keys", None)):
        try:
            arr = np.asarray(value)
        except Exception:  # pragma: no cover - fall through to pickle
            arr = None
        if isinstance(arr, np.ndarray) and arr.dtype != object:
            return _ndarray(arr)
    if type(value).__name__ == "PosixPath" or type(value).__name__ == "WindowsPath":
        return {"__path__": str(value)}
    try:
        return {"__pickle__": _sha(pickle.dumps(value, protocol=4)), "type": type(value).__qualname__}
    except Exception as e:  # unpicklable: keep the type at least
        return {"__unpicklable__": type(value).__qualname__, "error": repr(e)}


def dumps(obj: tp.Any) -> str:
    """Deterministic single-line JSON (what expected.jsonl lines use)."""
    import json

    return json.dumps(obj, sort_keys=True, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
