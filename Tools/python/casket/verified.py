"""Arrays verified chunk by chunk as they are read (docs/FORMAT.md 3.6, docs/EXCA.md).

numpy gives an ``np.ndarray`` subclass no hook before ``np.asarray(x)`` or a raw buffer access reads its
bytes, so a lazily verified array cannot be an ndarray: :class:`ChunkedArray` is a proxy (as exca's own
``ContiguousMemmapArray`` value is) whose every read path verifies the chunks it touches first, once per
process, against the blob's sidecar. Mappings are kept per process (one per blob file), as exca keeps its
data files mapped.
"""

from __future__ import annotations

import math
import mmap
import os
import threading
import typing as tp
import warnings

import numpy as np
import xxhash
from numpy.lib.mixins import NDArrayOperatorsMixin

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # numpy < 2
    byte_bounds = np.byte_bounds  # type: ignore[attr-defined]

from .chunks import ChunkTable
from .store import BlobCorruptError

__all__ = ["BlobMapping", "ChunkCorruptError", "ChunkedArray", "SidecarMismatchWarning", "mapping_of"]

_READ = 4 << 20  # bytes read (and hashed) per pread when verifying


class ChunkCorruptError(BlobCorruptError):
    """A chunk of a blob does not match its digest (and the blob does not verify whole)."""

    def __init__(self, message: str, blob: str, chunk: int, expected: int, actual: int) -> None:
        super().__init__(message)
        self.blob, self.chunk, self.expected, self.actual = blob, chunk, expected, actual


class SidecarMismatchWarning(UserWarning):
    """A sidecar disagreed with a blob that verifies whole: the sidecar is wrong (``casket fsck`` replaces
    it); the blob is served, verified whole."""


class BlobMapping:
    """One raw blob file mapped read-only, with the record of its chunks verified in this process."""

    def __init__(self, path: str, h: str, size: int, identity: tuple, mm: mmap.mmap,
                 table: tp.Optional[ChunkTable], flaw: str,
                 twin: tp.Callable[[], tp.Optional[np.ndarray]] = lambda: None) -> None:
        self.path, self.h, self.size, self.identity, self.mm = path, h, size, identity, mm
        self.table, self.flaw = table, flaw
        self.twin = twin  # the payload from the sound compressed form, verified, when there is one
        self.replacement: tp.Optional[np.ndarray] = None
        self.verified = bytearray(len(table.digests)) if table is not None else None
        self.whole = False
        self._actual = ""  # the whole payload's hash, once computed
        self._lock = threading.Lock()

    def verify(self, start: int, end: int) -> None:
        """Verify the bytes ``[start, end)``: the chunks covering them, or the whole blob without a sidecar."""
        if self.whole or start >= end:
            return
        if self.table is None:
            self.verify_chunks(np.empty(0, np.int64))
            return
        chunk = self.table.chunk
        self.verify_chunks(np.arange(start // chunk, (min(end, self.size) - 1) // chunk + 1))

    def verify_chunks(self, indices: np.ndarray) -> None:
        """Verify the chunks ``indices`` (sorted) not verified yet in this process; without a usable
        sidecar, the whole blob once."""
        if self.whole:
            return
        with self._lock:
            if self.whole:
                return
            if self.table is None or self.verified is None:
                if not self._whole_sound():
                    self._fall_back(BlobCorruptError(
                        f"blob file {self.path} is corrupt: expected hash {self.h}, actual hash {self._actual}"))
                self.whole = True
                return
            done = np.frombuffer(self.verified, dtype=np.uint8)
            todo = indices[done[indices] == 0]
            if not len(todo):
                return
            chunk, digests = self.table.chunk, self.table.digests
            per = max(1, _READ // chunk)
            runs = np.split(todo, np.flatnonzero(np.diff(todo) != 1) + 1)
            with _Reader(self) as f:
                # every run is asked of the disk at once (a window of a (channels, time) array is one run per
                # row), then read by one pread per run of consecutive chunks: the pages land in the page
                # cache that the mapping then reads (faults would read a page, or a read-around, at a time)
                if len(runs) > 1:
                    for run in runs:
                        f.prefetch(int(run[0]) * chunk, min((int(run[-1]) + 1) * chunk, self.size))
                for run in runs:
                    for lo in range(int(run[0]), int(run[-1]) + 1, per):
                        hi = min(lo + per, int(run[-1]) + 1)
                        view = f.read(lo * chunk, min(hi * chunk, self.size))
                        for i in range(lo, hi):
                            actual = xxhash.xxh3_64_intdigest(view[(i - lo) * chunk : (i - lo + 1) * chunk])
                            if actual != digests[i]:
                                self._mismatch(i, int(digests[i]), actual)
                                return
                            self.verified[i] = 1

    def _whole_sound(self) -> bool:
        hasher = xxhash.xxh3_128()
        with _Reader(self) as f:
            for start in range(0, self.size, _READ):
                hasher.update(f.read(start, min(start + _READ, self.size)))
        self._actual = hasher.hexdigest()
        return self._actual == self.h

    def _mismatch(self, index: int, expected: int, actual: int) -> None:
        """A chunk that fails: the blob is corrupt unless it verifies whole (then the sidecar is wrong)."""
        if self._whole_sound():
            warnings.warn(
                f"the chunk digests beside blob file {self.path} are wrong (chunk {index}: sidecar "
                f"{expected:016x}, bytes {actual:016x}) but the blob verifies whole; it is served verified "
                "whole, and casket fsck replaces the sidecar", SidecarMismatchWarning, stacklevel=5)
            self.whole = True
            return
        chunk = self.table.chunk if self.table is not None else 0
        self._fall_back(ChunkCorruptError(
            f"blob file {self.path} is corrupt: chunk {index} (bytes {index * chunk} to "
            f"{min((index + 1) * chunk, self.size)}) has XXH3-64 {actual:016x}, its digest is {expected:016x}; "
            f"blob {self.h}", self.h, index, expected, actual))
        self.whole = True

    def _fall_back(self, error: BlobCorruptError) -> None:
        """A corrupt raw form gives way to a sound compressed twin (FORMAT 3.5), read whole into memory and
        verified; without one, ``error`` is raised."""
        replacement = self.twin()
        if replacement is None:
            raise error
        self.replacement = replacement


class _Reader:
    """Reads a mapped blob's bytes through its file, opened by path without following a link and checked
    to be the mapped file (same inode); the mapping itself when it is not."""

    def __init__(self, blob: BlobMapping) -> None:
        self.blob = blob
        self.fd = -1
        self.buffer = bytearray()

    def __enter__(self) -> "_Reader":
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(self.blob.path, flags)
            st = os.fstat(self.fd)
            if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != self.blob.identity:
                os.close(self.fd)
                self.fd = -1
        except OSError:
            self.fd = -1
        return self

    def prefetch(self, start: int, end: int) -> None:
        if self.fd >= 0:
            os.posix_fadvise(self.fd, start, end - start, os.POSIX_FADV_WILLNEED)

    def read(self, start: int, end: int) -> memoryview:
        if self.fd >= 0:
            if len(self.buffer) < end - start:
                self.buffer = bytearray(end - start)
            view = memoryview(self.buffer)[: end - start]
            if os.preadv(self.fd, [view], start) == end - start:
                return view
        return memoryview(self.blob.mm)[start:end]

    def __exit__(self, *exc: tp.Any) -> None:
        if self.fd >= 0:
            os.close(self.fd)


_MAPPINGS: dict[str, BlobMapping] = {}
_MAPPINGS_LOCK = threading.Lock()


def mapping_of(store: tp.Any, path: str, fd: int, st: os.stat_result, h: str, size: int) -> BlobMapping:
    """This process's mapping of a raw blob file (judged sound by the caller through ``fd``), made once;
    a file replaced since (another inode) is mapped anew."""
    identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _MAPPINGS_LOCK:
        known = _MAPPINGS.get(path)
        if known is not None and known.identity == identity:
            return known
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        table, flaw = store.load_chunks(h, size)

        def twin() -> tp.Optional[np.ndarray]:
            if not store.judge(h, True, size).sound:
                return None
            return store._decompress_array(h, np.dtype(np.uint8), (size,), size, exclude_raw=True)

        made = BlobMapping(path, h, size, identity, mm, table, flaw, twin)
        _MAPPINGS[path] = made
        return made


def _plain(value: tp.Any) -> tp.Any:
    """A ChunkedArray as its verified array; lists, tuples and dicts searched; anything else as it is."""
    if isinstance(value, ChunkedArray):
        return value._verified()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _basic(index: tp.Any) -> tp.Optional[tuple]:
    """``index`` with each integer turned into a one-long slice, when it is a basic index (integers,
    slices, Ellipsis, None); None for an index that numpy treats as advanced (arrays, lists, booleans)."""
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for part in parts:
        if part is Ellipsis or part is None or isinstance(part, slice):
            out.append(part)
        elif isinstance(part, (int, np.integer)) and not isinstance(part, (bool, np.bool_)):
            k = int(part)
            out.append(slice(k, k + 1 if k != -1 else None))
        else:
            return None
    return tuple(out)


def _touched(region: np.ndarray, base: int, chunk: int) -> np.ndarray:
    """The sorted indices of the chunks holding the bytes of a view (a window ``[:, a:b]`` of a long
    C-order array touches one piece of each row, not the rows between); at most the chunks of its span."""
    low, high = byte_bounds(region)
    low -= base
    first, last = low // chunk, (high - base - 1) // chunk
    axes = sorted(((abs(s), n) for n, s in zip(region.shape, region.strides) if n > 1), reverse=True)
    if last - first < 2 or len(axes) < 2:
        return np.arange(first, last + 1)
    inner_stride, inner_n = axes[-1]
    extent = inner_stride * (inner_n - 1) + region.itemsize
    outer = axes[:-1]
    if math.prod(n for _, n in outer) > last - first + 1:
        return np.arange(first, last + 1)
    starts = np.full(1, low, dtype=np.int64)
    for stride, n in outer:
        starts = (starts[:, None] + np.arange(n, dtype=np.int64) * stride).reshape(-1)
    heads, tails = starts // chunk, (starts + extent - 1) // chunk
    if extent <= chunk:
        return np.union1d(heads, tails)
    return np.unique(np.concatenate([np.arange(h, t + 1) for h, t in zip(heads.tolist(), tails.tolist())]))


def _rebuild(array: np.ndarray) -> np.ndarray:
    return array


class ChunkedArray(NDArrayOperatorsMixin):
    """A read-only array backed by a raw blob, verified chunk by chunk as it is read.

    ``a[...]`` (basic indexing) verifies the chunks of the bytes it selects and returns a read-only
    ndarray view; ``np.asarray(a)``, ufuncs and operators, numpy functions, ndarray methods (``a.mean()``)
    and pickling verify the whole array first. Advanced indexing verifies the whole array too.
    """

    __slots__ = ("_raw", "_blob", "_base")
    __array_priority__ = 20.0

    def __init__(self, blob: BlobMapping, dtype: np.dtype, shape: tuple) -> None:
        self._blob = blob
        self._raw = np.ndarray(shape, dtype=dtype, buffer=blob.mm, order="C")
        self._base = byte_bounds(self._raw)[0] if self._raw.size else 0

    # metadata: no byte is read
    shape = property(lambda self: self._raw.shape)
    dtype = property(lambda self: self._raw.dtype)
    ndim = property(lambda self: self._raw.ndim)
    size = property(lambda self: self._raw.size)
    nbytes = property(lambda self: self._raw.nbytes)
    itemsize = property(lambda self: self._raw.itemsize)
    strides = property(lambda self: self._raw.strides)
    blob = property(lambda self: self._blob.h, doc="The blob's hash.")
    filename = property(lambda self: self._blob.path, doc="The blob file, as np.memmap's ``filename``.")

    def __len__(self) -> int:
        return len(self._raw)

    def _current(self) -> np.ndarray:
        """The mapped array, or the payload of the compressed twin once the raw form was found corrupt."""
        replacement = self._blob.replacement
        return self._raw if replacement is None else replacement.view(self._raw.dtype).reshape(self._raw.shape)

    def _verified(self) -> np.ndarray:
        self._blob.verify(0, self._blob.size)
        return self._current()

    def __getitem__(self, index: tp.Any) -> tp.Any:
        basic = _basic(index)
        if basic is None:
            return self._verified()[index]
        region = self._raw[basic]
        if region.size:
            table = self._blob.table
            if table is None:
                self._blob.verify(0, self._blob.size)
            else:
                self._blob.verify_chunks(_touched(region, self._base, table.chunk))
        return self._current()[index]

    def __setitem__(self, index: tp.Any, value: tp.Any) -> None:
        raise ValueError("assignment destination is read-only (a Casket array is read-only)")

    def __iter__(self) -> tp.Iterator[tp.Any]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype: tp.Any = None, copy: tp.Any = None) -> np.ndarray:
        arr = self._verified()
        if dtype is not None and np.dtype(dtype) != arr.dtype:
            return arr.astype(dtype)
        return np.array(arr) if copy else arr

    def __array_ufunc__(self, ufunc: tp.Any, method: str, *inputs: tp.Any, **kwargs: tp.Any) -> tp.Any:
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        return getattr(ufunc, method)(*_plain(inputs), **kwargs)

    def __array_function__(self, func: tp.Any, types: tp.Any, args: tp.Any, kwargs: tp.Any) -> tp.Any:
        return func(*_plain(args), **_plain(kwargs))

    def __getattr__(self, name: str) -> tp.Any:
        # ndarray methods and attributes not above (mean, sum, reshape, T, tobytes...): verified whole
        if name.startswith("__") or name in ChunkedArray.__slots__:
            raise AttributeError(name)
        return getattr(self._verified(), name)

    def __bool__(self) -> bool:
        return bool(self._verified())

    def __float__(self) -> float:
        return float(self._verified())

    def __int__(self) -> int:
        return int(self._verified())

    def __index__(self) -> int:
        return self._verified().__index__()

    def __reduce__(self) -> tuple:
        return _rebuild, (np.array(self._verified()),)

    def __copy__(self) -> np.ndarray:
        return np.array(self._verified())

    def __deepcopy__(self, memo: dict) -> np.ndarray:
        return np.array(self._verified())

    def __repr__(self) -> str:
        return f"ChunkedArray(shape={self.shape}, dtype={self.dtype}, blob={self._blob.h})"
