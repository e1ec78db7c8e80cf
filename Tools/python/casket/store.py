"""Blob layer of a Casket store (docs/FORMAT.md sections 1-4).

A blob is stored once under ``blobs/<hh>/<hash>`` (raw) or ``blobs/<hh>/<hash>.lz4`` (one LZ4
frame), where ``<hash>`` is the XXH3-128 digest of the uncompressed bytes.  Writes go through a
temp file in ``tmp/`` and are published without replacing an existing blob.
"""

from __future__ import annotations

import errno
import io
import json
import math
import mmap
import os
import re
import secrets
import socket
import stat
import typing as tp
from pathlib import Path

import lz4.frame
import numpy as np
import xxhash

__all__ = [
    "CasketError",
    "StoreError",
    "BlobError",
    "BlobMissingError",
    "BlobCorruptError",
    "Store",
    "init_store",
    "hash_bytes",
    "is_well_formed_hash",
    "check_hash",
    "EMPTY_HASH",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1
EMPTY_HASH = "99aa06d3014798d86001c324468d497f"
CHUNK = 1 << 20  # 1 MiB streaming unit
LZ4_MAGIC = b"\x04\x22\x4d\x18"
_HASH_RE = re.compile(r"[0-9a-f]{32}")


class CasketError(Exception):
    """Base class of every error raised by casket."""


class StoreError(CasketError):
    """The folder is not a usable Casket store (missing/invalid casket.json, newer version...)."""


class BlobError(CasketError):
    """A blob could not be read or written."""


class BlobMissingError(BlobError, FileNotFoundError):
    """No blob file (raw or compressed) exists for a hash."""


class BlobCorruptError(BlobError):
    """A blob file's content does not hash to its name (or cannot be decoded)."""


# --------------------------------------------------------------------------- hashing


def hash_bytes(data: tp.Any) -> str:
    """XXH3-128 (seed 0) of ``data`` (any buffer), as 32 lowercase hex digits (FORMAT 3.1)."""
    return xxhash.xxh3_128_hexdigest(data)


def is_well_formed_hash(value: tp.Any) -> bool:
    """True iff ``value`` is a str matching ``^[0-9a-f]{32}$`` (no trailing newline accepted)."""
    return isinstance(value, str) and _HASH_RE.fullmatch(value) is not None


def check_hash(value: tp.Any) -> str:
    """Return ``value`` if it is a well-formed hash, else raise ValueError (never build a path)."""
    if not is_well_formed_hash(value):
        raise ValueError(f"not a well-formed blob hash (expected ^[0-9a-f]{{32}}$): {value!r}")
    return value


# --------------------------------------------------------------------------- names


def sanitized_host() -> str:
    """Host name with every byte outside [A-Za-z0-9_-] replaced by '_' (FORMAT 4)."""
    raw = socket.gethostname().encode("utf-8", "surrogateescape")
    ok = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    return "".join(chr(b) if b in ok else "_" for b in raw) or "_"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: tp.Any) -> None:
    view = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else memoryview(data)
    while view:
        n = os.write(fd, view[: 1 << 30])
        if n <= 0:  # pragma: no cover - os.write raises on error
            raise OSError(errno.EIO, "short write")
        view = view[n:]


def _as_byte_view(data: tp.Any) -> memoryview:
    """A flat unsigned-byte view of ``data`` without copying."""
    if isinstance(data, np.ndarray):
        arr = data if data.flags.c_contiguous else data.copy(order="C")
        return memoryview(arr.reshape(-1).view(np.uint8))
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _iter_source(source: tp.Any) -> tp.Iterator[bytes]:
    """Chunks of a binary file object (``read``) or an iterable of buffers."""
    if hasattr(source, "readinto"):
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = source.readinto(view)
            if not n:
                return
            yield bytes(view[:n])
    elif hasattr(source, "read"):
        while True:
            chunk = source.read(CHUNK)
            if not chunk:
                return
            yield chunk
    else:
        for chunk in source:
            if chunk:
                yield chunk


# --------------------------------------------------------------------------- config


def init_store(
    path: tp.Union[str, Path],
    compression: str = "none",
    durability: str = "fsync",
    inline_max: int = 0,
) -> "Store":
    """Create a store at ``path`` exactly as ``casket init`` does (FORMAT 2) and open it.

    ``casket.json`` is written through a temp file and an atomic rename. Refuses an existing store.
    """
    if compression not in ("none", "lz4"):
        raise ValueError(f"compression must be 'none' or 'lz4', got {compression!r}")
    if durability not in ("fsync", "none"):
        raise ValueError(f"durability must be 'fsync' or 'none', got {durability!r}")
    if not isinstance(inline_max, int) or isinstance(inline_max, bool) or inline_max < 0:
        raise ValueError(f"inline_max must be a non-negative integer, got {inline_max!r}")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    cfg_path = root / "casket.json"
    if cfg_path.exists():
        raise StoreError(f"{root}: already a Casket store (casket.json exists)")
    for sub in ("blobs", "tmp", "index", "gc", "quarantine", "claims"):
        (root / sub).mkdir(exist_ok=True)
    import datetime

    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    # same bytes and key order as the Swift `casket init`
    data = (
        f'{{"format":"casket","version":{FORMAT_VERSION},"hash":"xxh3-128",'
        f'"compression":"{compression}","durability":"{durability}",'
        f'"inline_max":{inline_max},"created":"{created}"}}\n'
    ).encode()
    # published like a blob (as `casket init` does): a temp file in tmp/, flushed, linked without replacing
    tmp = root / "tmp" / f"{sanitized_host()}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, cfg_path)
    except FileExistsError:
        raise StoreError(f"{root}: already a Casket store (casket.json exists)") from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.EMLINK, errno.ENOSYS):
            raise
        os.rename(tmp, cfg_path)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    _fsync_dir(root)
    return Store(root)


class Store:
    """An open Casket store: blob reads and writes (FORMAT sections 2-4)."""

    def __init__(self, path: tp.Union[str, Path]) -> None:
        self.root = Path(path)
        cfg_path = self.root / "casket.json"
        try:
            raw = cfg_path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.root} is not a Casket store: {cfg_path} is missing") from None
        except OSError as e:
            raise StoreError(f"{self.root}: cannot read casket.json: {e}") from e
        try:
            cfg = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise StoreError(f"{self.root} is not a Casket store: casket.json is not valid JSON ({e})") from e
        if not isinstance(cfg, dict) or cfg.get("format") != "casket":
            raise StoreError(f"{self.root} is not a Casket store: casket.json has no \"format\":\"casket\"")
        version = cfg.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise StoreError(f"{self.root}: casket.json has an invalid version {version!r}")
        if version > FORMAT_VERSION:
            raise StoreError(
                f"{self.root}: store format version {version} is newer than this casket "
                f"(knows up to {FORMAT_VERSION}); refusing to open it"
            )
        if cfg.get("hash", "xxh3-128") != "xxh3-128":
            raise StoreError(f"{self.root}: unsupported hash {cfg.get('hash')!r} (expected 'xxh3-128')")
        self.config: dict[str, tp.Any] = cfg
        self.compression: str = cfg.get("compression", "none")
        if self.compression not in ("none", "lz4"):
            raise StoreError(f"{self.root}: casket.json names an unknown compression {self.compression!r}")
        self.durability: str = cfg.get("durability", "fsync")
        if self.durability not in ("fsync", "none"):
            raise StoreError(f"{self.root}: casket.json names an unknown durability {self.durability!r}")
        inline_max = cfg.get("inline_max", 0)
        if not isinstance(inline_max, int) or isinstance(inline_max, bool) or inline_max < 0:
            raise StoreError(f"{self.root}: casket.json has an invalid inline_max {inline_max!r}")
        self.inline_max: int = inline_max
        self.blobs_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"
        self.index_dir = self.root / "index"
        self._blobs_str = os.path.abspath(self.blobs_dir)
        self._host = sanitized_host()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def fsync(self) -> bool:
        return self.durability == "fsync"

    # ------------------------------------------------------------------ paths

    def blob_path(self, h: str, compressed: bool = False) -> Path:
        check_hash(h)
        name = h + ".lz4" if compressed else h
        return self.blobs_dir / h[:2] / name

    def find_blob(self, h: str) -> tp.Optional[tuple[Path, bool]]:
        """(path, compressed) of the blob file for ``h``, raw form first; None if absent."""
        for compressed in (False, True):
            p = self.blob_path(h, compressed)
            if os.path.lexists(p):
                return p, compressed
        return None

    # ------------------------------------------------------------------ existence

    def _sound(self, path: Path, compressed: bool, size: int) -> bool:
        """FORMAT 3.4 soundness check of an existing blob file."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode):
            return False
        if not compressed:
            return st.st_size == size
        if st.st_size < 7:
            return False
        try:
            with open(path, "rb") as f:
                head = f.read(32)
        except OSError:
            return False
        if head[:4] != LZ4_MAGIC:
            return False
        content_size = _lz4_content_size(head)
        return content_size is None or content_size == size

    def has_blob(self, h: str, size: int) -> bool:
        """True if a sound blob (either form) of ``size`` uncompressed bytes exists for ``h``."""
        check_hash(h)
        return any(self._sound(self.blob_path(h, c), c, size) for c in (False, True))

    def _freshen_existing(self, h: str, size: int) -> bool:
        """Dedup check + freshen (FORMAT 3.4). True only if a sound blob was freshened."""
        for compressed in (False, True):
            p = self.blob_path(h, compressed)
            if self._sound(p, compressed, size):
                try:
                    os.utime(p)
                except OSError:
                    return False  # a failed freshen is not a hit
                return True
        return False

    # ------------------------------------------------------------------ temp files

    def _new_tmp(self) -> tuple[Path, int]:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for _ in range(100):
            p = self.tmp_dir / f"{self._host}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
            try:
                return p, os.open(p, flags, 0o666)
            except FileExistsError:  # pragma: no cover - 64 random bits
                continue
        raise BlobError(f"cannot create a temp file in {self.tmp_dir}")  # pragma: no cover

    def _finish_tmp(self, fd: int) -> None:
        """Step 2 of the publish protocol: fsync (per durability), chmod 0444, close."""
        try:
            if self.fsync:
                os.fsync(fd)
            os.fchmod(fd, 0o444)
        finally:
            os.close(fd)

    @staticmethod
    def _unlink_quiet(p: Path) -> None:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass

    # ------------------------------------------------------------------ publish

    def _publish(self, tmp: Path, h: str, size: int, compressed: bool, replace: bool) -> Path:
        """Steps 3-6 of FORMAT 3.3. ``replace`` forces plain rename (a freshen failed)."""
        final = self.blob_path(h, compressed)
        fan = final.parent
        created = False
        try:
            os.mkdir(fan)
            created = True
        except FileExistsError:
            pass
        except FileNotFoundError:
            self.blobs_dir.mkdir(parents=True, exist_ok=True)
            try:
                os.mkdir(fan)
                created = True
            except FileExistsError:
                pass
        if created and self.fsync:
            _fsync_dir(self.blobs_dir)  # make the new fan-out directory's entry durable too
        if replace:
            os.rename(tmp, final)
        else:
            try:
                os.link(tmp, final)
            except FileExistsError:
                # step 5: already stored: sound + freshened => keep it, else replace
                if self._sound(final, compressed, size):
                    try:
                        os.utime(final)
                        fresh = True
                    except OSError:
                        fresh = False
                    if fresh:
                        self._unlink_quiet(tmp)
                    else:
                        os.rename(tmp, final)
                else:
                    os.rename(tmp, final)
            except OSError as e:
                if e.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.EMLINK, errno.ENOSYS):
                    os.rename(tmp, final)  # no hard links here: plain rename (same payload)
                else:
                    self._unlink_quiet(tmp)
                    raise
            else:
                self._unlink_quiet(tmp)
        if self.fsync:
            _fsync_dir(fan)
        return final

    def _want_compressed(self, size: int, compressed_size: int) -> bool:
        return self.compression == "lz4" and 10 * (size - compressed_size) >= size and size > 0

    # ------------------------------------------------------------------ writes

    def put_bytes(self, data: tp.Any, known_hash: tp.Optional[str] = None) -> str:
        """Store a payload held in memory (bytes, bytearray, memoryview, ndarray). Returns its hash."""
        view = _as_byte_view(data)
        h = hash_bytes(view) if known_hash is None else check_hash(known_hash)
        size = view.nbytes
        if self._freshen_existing(h, size):
            return h
        existing = self.find_blob(h)  # exists but unsound or could not be freshened
        replace = existing is not None
        payload: tp.Any = view
        compressed = False
        if existing is not None:
            # replace the existing file in its own form (never leave an old copy beside a new one)
            if existing[1]:
                payload = lz4.frame.compress(view, content_checksum=True, store_size=True)
                compressed = True
        elif self.compression == "lz4" and size > 0:
            frame = lz4.frame.compress(view, content_checksum=True, store_size=True)
            if self._want_compressed(size, len(frame)):
                payload, compressed = frame, True
        tmp, fd = self._new_tmp()
        try:
            try:
                _write_all(fd, payload)
            finally:
                self._finish_tmp(fd)
            self._publish(tmp, h, size, compressed, replace)
        except BaseException as e:
            self._unlink_quiet(tmp)
            if isinstance(e, OSError) and not isinstance(e, BlobError):
                raise BlobError(f"storing blob {h} in {self.root} failed: {e}") from e
            raise
        return h

    def put_file(self, path: tp.Union[str, Path]) -> str:
        """Store the content of a file, streaming (hashes it first to deduplicate). Returns the hash."""
        hasher = xxhash.xxh3_128()
        size = 0
        with open(path, "rb") as f:
            for chunk in _iter_source(f):
                hasher.update(chunk)
                size += len(chunk)
        h = hasher.hexdigest()
        if self._freshen_existing(h, size):
            return h
        with open(path, "rb") as f:
            return self._put_stream(f, replace=self.find_blob(h) is not None)

    def put_stream(self, source: tp.Any) -> str:
        """Store the bytes of a binary file object or an iterable of buffers, streaming.

        Memory use is bounded by the chunk size, whatever the payload size.
        """
        return self._put_stream(source, replace=False)

    def _put_stream(self, source: tp.Any, replace: bool) -> str:
        tmp, fd = self._new_tmp()
        tmps = [tmp]
        fd_open = True

        def close_fd(finish: bool = False) -> None:
            nonlocal fd_open
            if fd_open:
                fd_open = False
                if finish:
                    self._finish_tmp(fd)
                else:
                    os.close(fd)

        try:
            hasher = xxhash.xxh3_128()
            size = 0
            for chunk in _iter_source(source):
                hasher.update(chunk)
                _write_all(fd, chunk)
                size += memoryview(chunk).nbytes
            h = hasher.hexdigest()
            # dedup after learning the hash while writing (FORMAT 3.4)
            if not replace and self._freshen_existing(h, size):
                close_fd()
                self._unlink_quiet(tmp)
                return h
            existing = self.find_blob(h)
            replace = replace or existing is not None
            compressed = False
            if existing is not None:
                want: tp.Optional[bool] = existing[1]  # replace in the existing form
            elif self.compression == "lz4" and size > 0:
                want = None  # decide by the size of the frame
            else:
                want = False
            if want is not False:
                ctmp = self._compress_file(tmp, size)
                tmps.append(ctmp)
                if want or self._want_compressed(size, os.stat(ctmp).st_size):
                    close_fd()
                    self._unlink_quiet(tmp)
                    tmp, compressed = ctmp, True
                else:
                    self._unlink_quiet(ctmp)
            if not compressed:
                close_fd(finish=True)
            self._publish(tmp, h, size, compressed, replace)
            return h
        except BaseException as e:
            try:
                close_fd()
            except OSError:
                pass
            for t in tmps:
                self._unlink_quiet(t)
            if isinstance(e, OSError) and not isinstance(e, BlobError):
                raise BlobError(f"storing a blob in {self.root} failed: {e}") from e
            raise

    def _compress_file(self, src: Path, size: int) -> Path:
        """LZ4-frame ``src`` into a new temp file (content size stored: it is known)."""
        tmp, fd = self._new_tmp()
        try:
            comp = lz4.frame.LZ4FrameCompressor(content_checksum=True)
            with open(src, "rb") as f:
                _write_all(fd, comp.begin(source_size=size))
                for chunk in _iter_source(f):
                    _write_all(fd, comp.compress(chunk))
                _write_all(fd, comp.flush())
        except BaseException:
            os.close(fd)
            self._unlink_quiet(tmp)
            raise
        self._finish_tmp(fd)
        return tmp

    # ------------------------------------------------------------------ reads

    def _locate(self, h: str) -> tuple[Path, bool]:
        found = self.find_blob(check_hash(h))
        if found is None:
            raise BlobMissingError(f"blob {h} is missing (looked for {self.blob_path(h)} and {self.blob_path(h, True)})")
        return found

    def iter_blob(self, h: str, expected_size: tp.Optional[int] = None) -> tp.Iterator[bytes]:
        """Verified streaming read: yields chunks of the payload; raises BlobCorruptError at the end
        (before returning normally) if the bytes do not hash to ``h``. Consumers must not trust the
        chunks until the iterator is exhausted without error."""
        path, compressed = self._locate(h)
        hasher = xxhash.xxh3_128()
        size = 0
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise BlobMissingError(f"blob file {path} disappeared") from None
        with f:
            if compressed:
                dec = lz4.frame.LZ4FrameDecompressor()
                try:
                    for chunk in _iter_source(f):
                        if dec.eof:
                            raise BlobCorruptError(f"blob file {path}: trailing bytes after the LZ4 frame")
                        out = dec.decompress(chunk)
                        if dec.eof and dec.unused_data:
                            raise BlobCorruptError(f"blob file {path}: trailing bytes after the LZ4 frame")
                        if out:
                            hasher.update(out)
                            size += len(out)
                            yield out
                    if not dec.eof:
                        raise BlobCorruptError(f"blob file {path}: truncated LZ4 frame; expected hash {h}")
                except (RuntimeError, EOFError) as e:  # lz4 reports corrupt frames as RuntimeError
                    raise BlobCorruptError(f"blob file {path}: invalid LZ4 frame ({e}); expected hash {h}") from e
            else:
                for chunk in _iter_source(f):
                    hasher.update(chunk)
                    size += len(chunk)
                    yield chunk
        actual = hasher.hexdigest()
        if actual != h:
            raise BlobCorruptError(f"blob file {path} is corrupt: expected hash {h}, actual hash {actual}")
        if expected_size is not None and size != expected_size:
            raise BlobCorruptError(f"blob file {path}: expected {expected_size} bytes, got {size}")

    def get_bytes(self, h: str, expected_size: tp.Optional[int] = None) -> bytes:
        """The payload of blob ``h``, verified."""
        buf = io.BytesIO()
        for chunk in self.iter_blob(h, expected_size):
            buf.write(chunk)
        return buf.getvalue()

    def copy_blob(self, h: str, dest: tp.BinaryIO) -> int:
        """Stream the verified payload of ``h`` into ``dest``; returns the byte count.
        On a verification failure ``dest`` has received bad bytes and BlobCorruptError is raised."""
        n = 0
        for chunk in self.iter_blob(h):
            dest.write(chunk)
            n += len(chunk)
        return n

    def read_array(
        self, h: str, dtype: tp.Any, shape: tp.Sequence[int], verify: bool = True
    ) -> np.ndarray:
        """The blob as an array. A raw blob is memory-mapped read-only (no copy, ``np.memmap``);
        a compressed one is decompressed into a new array. With ``verify`` (default) the bytes are
        hashed before the array is returned."""
        dt = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        nbytes = math.prod(shape) * dt.itemsize
        if nbytes:
            # hot path: the raw form, opened once (no separate existence check and stat)
            raw = os.path.join(self._blobs_str, check_hash(h)[:2], h)
            try:
                f = open(raw, "rb")
            except FileNotFoundError:
                pass
            else:
                with f:
                    st_size = os.fstat(f.fileno()).st_size
                    if st_size != nbytes:
                        raise BlobCorruptError(
                            f"blob file {raw}: {st_size} bytes, expected {nbytes} for a {dt} array of shape {list(shape)}"
                        )
                    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                if verify:
                    actual = hash_bytes(mm)
                    if actual != h:
                        mm.close()
                        raise BlobCorruptError(f"blob file {raw} is corrupt: expected hash {h}, actual hash {actual}")
                # what np.memmap(raw, mode="r") builds, without its path resolution and second open
                arr = np.ndarray.__new__(np.memmap, shape, dtype=dt, buffer=mm, offset=0, order="C")
                arr._mmap = mm
                arr.offset = 0
                arr.mode = "r"
                arr.filename = raw
                return arr
        path, compressed = self._locate(h)
        if compressed:
            out = np.empty(shape, dtype=dt)
            target = memoryview(out.reshape(-1).view(np.uint8)) if nbytes else memoryview(b"")
            pos = 0
            for chunk in self.iter_blob(h):
                end = pos + len(chunk)
                if end > nbytes:
                    raise BlobCorruptError(f"blob file {path}: more than the {nbytes} bytes of a {dt} array of shape {list(shape)}")
                target[pos:end] = chunk
                pos = end
            if pos != nbytes:
                raise BlobCorruptError(f"blob file {path}: {pos} bytes, expected {nbytes} for a {dt} array of shape {list(shape)}")
            return out
        st_size = os.stat(path).st_size
        if st_size != nbytes:
            raise BlobCorruptError(f"blob file {path}: {st_size} bytes, expected {nbytes} for a {dt} array of shape {list(shape)}")
        if nbytes == 0:
            if verify and h != EMPTY_HASH:
                raise BlobCorruptError(f"blob file {path} is corrupt: expected hash {h}, actual hash {EMPTY_HASH}")
            return np.empty(shape, dtype=dt)
        arr = np.memmap(path, dtype=dt, mode="r", shape=shape, order="C")
        if verify:
            with open(path, "rb") as f:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                actual = hash_bytes(mm)
            finally:
                mm.close()
            if actual != h:
                raise BlobCorruptError(f"blob file {path} is corrupt: expected hash {h}, actual hash {actual}")
        return arr

    def verify_blob(self, h: str) -> None:
        """Raise BlobCorruptError / BlobMissingError unless blob ``h`` is sound."""
        for _ in self.iter_blob(h):
            pass


def _lz4_content_size(head: bytes) -> tp.Optional[int]:
    """Content size field of an LZ4 frame header, or None when absent/unparseable."""
    if len(head) < 6 or head[:4] != LZ4_MAGIC:
        return None
    flg = head[4]
    if not flg & 0x08:
        return None
    if len(head) < 14:
        return None
    return int.from_bytes(head[6:14], "little")
