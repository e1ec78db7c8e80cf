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
import threading
import _thread
import time
import typing as tp
from pathlib import Path

import lz4.block
import lz4.frame
import numpy as np
import xxhash

from .chunks import (
    DEFAULT_CHUNKS_MIN,
    SIDECAR_SUFFIX,
    ChunkDigester,
    ChunkTable,
    SidecarFlaw,
    parse_sidecar,
    sidecar_bytes,
    sidecar_length,
    wants_sidecar,
)

__all__ = [
    "CasketError",
    "StoreError",
    "BlobError",
    "BlobMissingError",
    "BlobCorruptError",
    "Store",
    "init_store",
    "open_or_init_store",
    "hash_bytes",
    "is_well_formed_hash",
    "check_hash",
    "EMPTY_HASH",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 2  # the newest this client reads and writes; a store without packs is still made as 1
MAX_PACK_MAX = 1 << 20  # FORMAT 3.7: a record's form follows the rule of 3.2 over its whole payload
DEFAULT_PACK_SIZE = 16 << 20
# a new store's pack_max (casket init's default): where packing stops paying, docs/PERFORMANCE.md 10
DEFAULT_PACK_MAX = 1 << 16
PACK_SIZE_RANGE = (64 << 10, 1 << 30)
EMPTY_HASH = "99aa06d3014798d86001c324468d497f"
CHUNK = 1 << 20  # 1 MiB streaming unit
COMPRESSION_SAMPLE = 1 << 20  # the leading bytes that decide a payload's form (FORMAT 3.2)
LZ4_MAGIC = b"\x04\x22\x4d\x18"
PROBE_INTERVAL = 0.5  # seconds between two looks at a store folder by a writer's dedup check (FORMAT 3.8)
RACY_WINDOW_NS = 2_000_000_000  # a listing taken this soon after the folder's mtime may miss a change
_HASH_RE = re.compile(r"[0-9a-f]{32}")
_FANOUT_RE = re.compile(r"[0-9a-f]{2}")
_TEMP_RE = re.compile(r"[A-Za-z0-9_-]+\.[0-9]+\.[0-9a-f]{16}\.tmp")  # FORMAT 4: <host>.<pid>.<random>.tmp


_PID = [os.getpid()]  # this process's id, kept current across fork: os.getpid() is a system call


def _forked() -> None:
    _PID[0] = os.getpid()


os.register_at_fork(after_in_child=_forked)


def _spawn(fn: tp.Callable[..., None], *args: tp.Any) -> threading.Lock:
    """Runs ``fn(*args)`` in a new daemon thread; the lock returned is released when it returns. Unlike
    ``Thread.start``, it does not wait for the thread to run: on a busy machine that wait took 0.1-3 ms,
    and a session starts a thread per batch (``fn`` catches what it raises)."""
    done = threading.Lock()
    done.acquire()

    def run() -> None:
        try:
            fn(*args)
        finally:
            done.release()

    _thread.start_new_thread(run, ())
    return done


def current_pid() -> int:
    """This process's id without a system call (updated in a forked child)."""
    return _PID[0]


class CasketError(Exception):
    """Base class of every error raised by casket."""


class StoreError(CasketError):
    """The folder is not a usable Casket store (missing/invalid casket.json, newer version...).

    ``code`` is the Swift CLI's error code for the same refusal: ``"not_a_store"``, ``"invalid_config"``,
    ``"unsupported_version"``, ``"unsafe_path"`` (a link where a store folder belongs, FORMAT 1.1) or
    ``"already_exists"`` (None when there is none)."""

    def __init__(self, message: str, code: tp.Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code


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


STORE_FOLDERS = ("blobs", "tmp", "index", "gc", "quarantine", "claims", "packs")  # FORMAT 1


def describe_kind(mode: int) -> str:
    """A phrase for a file type, the words of Swift's ``FileStatus.Kind`` ("a symbolic link", "a FIFO")."""
    for test, what in (
        (stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return what
    return "a file of unknown type"


def check_real_dir(path: tp.Union[str, Path]) -> bool:
    """The Python side of FORMAT 1.1: a store folder is a real folder, never a link to one. True when it
    exists, False when it does not; a link or anything else raises ``StoreError`` (``unsafe_path``)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        return True
    if stat.S_ISLNK(st.st_mode):
        raise StoreError(
            f"'{path}' is a symbolic link where a directory is expected; Casket never follows links inside "
            "the folders it manages", "unsafe_path")
    raise StoreError(f"'{path}' is {describe_kind(st.st_mode)}, not a directory", "unsafe_path")


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
        if arr.ndim:
            try:
                return memoryview(arr).cast("B")  # a third of the cost of a reshape and a view
            except (TypeError, ValueError):  # a dtype the buffer protocol does not export (datetime64...)
                pass
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


def _left_by_init(sub: str, folder: Path, name: str) -> bool:
    """Whether ``name`` in store folder ``sub`` is what an interrupted init leaves before it publishes
    ``casket.json`` (FORMAT 1.1): an empty fan-out folder of ``blobs/``, a temp file of ``tmp/``."""
    try:
        st = os.lstat(os.path.join(folder, name))
    except FileNotFoundError:
        return True
    if sub == "blobs" and _FANOUT_RE.fullmatch(name) and stat.S_ISDIR(st.st_mode):
        return not os.listdir(os.path.join(folder, name))
    return sub == "tmp" and bool(_TEMP_RE.fullmatch(name)) and stat.S_ISREG(st.st_mode)


def init_store(
    path: tp.Union[str, Path],
    compression: str = "none",
    durability: str = "group",
    inline_max: int = 0,
    chunks_min: int = DEFAULT_CHUNKS_MIN,
    pack_max: int = DEFAULT_PACK_MAX,
    pack_size: int = DEFAULT_PACK_SIZE,
) -> "Store":
    """Create a store at ``path`` exactly as ``casket init`` does (FORMAT 2) and open it.

    The defaults are ``casket init``'s: format version 2 with packs below ``DEFAULT_PACK_MAX`` and group
    commit; ``pack_max=0`` makes a version 1 store (no packs), ``durability="fsync"`` flushes every write.

    ``casket.json`` is written through a temp file in ``tmp/`` and linked into place, which never replaces
    a racing init's file. Refuses an existing store.
    """
    for name, value in (("compression", compression), ("durability", durability), ("inline_max", inline_max),
                        ("chunks_min", chunks_min), ("pack_max", pack_max), ("pack_size", pack_size)):
        must = setting_rule(name, value)
        if must is not None:
            raise ValueError(f"{name} must be {must}, got {value!r}")
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    cfg_path = root / "casket.json"
    if os.path.lexists(cfg_path):
        raise StoreError(f"{root}: already a Casket store (casket.json exists)", "already_exists")
    # FORMAT 1.1: a store never adopts files it did not write (the first GC would delete them).
    for sub in STORE_FOLDERS:
        folder = root / sub
        if not os.path.lexists(folder):
            continue
        st = os.lstat(folder)
        if not stat.S_ISDIR(st.st_mode):
            raise StoreError(
                f"'{folder}' exists and is {describe_kind(st.st_mode)}; a store needs that name for its own folder",
                "already_exists")
        entries = sum(not _left_by_init(sub, folder, name) for name in os.listdir(folder))
        if entries:
            raise StoreError(
                f"'{folder}' already holds {entries} entr{'y' if entries == 1 else 'ies'} that no Casket store "
                "wrote; move them away or choose another folder", "already_exists")
    for sub in STORE_FOLDERS:
        (root / sub).mkdir(exist_ok=True)
    import datetime

    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    # same bytes and key order as the Swift `casket init`
    data = (
        f'{{"format":"casket","version":{2 if pack_max > 0 else 1},"hash":"xxh3-128",'
        f'"compression":"{compression}","durability":"{durability}",'
        f'"inline_max":{inline_max},'
        + (f'"chunks_min":{chunks_min},' if chunks_min != DEFAULT_CHUNKS_MIN else "")
        + (f'"pack_max":{pack_max},"pack_size":{pack_size},' if pack_max > 0 else "")
        + f'"created":"{created}"}}\n'
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
        # link, never rename: a racing init's casket.json is never replaced (FORMAT 2)
        os.link(tmp, cfg_path)
    except FileExistsError:
        raise StoreError(f"{root}: already a Casket store (casket.json exists)", "already_exists") from None
    except OSError as e:
        raise StoreError(f"{root}: cannot publish {cfg_path} (link from {tmp}): {e}") from e
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    _fsync_dir(root)
    return Store(root)


def open_or_init_store(path: tp.Union[str, Path], wait: float = 30.0, **settings: tp.Any) -> "Store":
    """The store at ``path``, created by :func:`init_store` with ``settings`` if it has none (FORMAT 2; an
    existing store keeps its own).

    Many processes and hosts may call this at once on a folder without a store: one init wins the link of
    ``casket.json`` and every other one is refused with ``already_exists``, then opens the winner's store.
    A loser can also be refused earlier, for seeing the winner's temp file in ``tmp/``: it waits (up to
    ``wait`` seconds) for the winner's ``casket.json`` to appear. A folder whose store names hold foreign
    files is still refused once that wait is over, with init's error (nothing is adopted, FORMAT 1.1)."""
    root = Path(path)
    cfg_path = root / "casket.json"
    deadline = None
    delay = 0.005
    while True:
        if os.path.lexists(cfg_path):
            return Store(root)
        try:
            return init_store(root, **settings)
        except StoreError as e:
            if e.code != "already_exists":
                raise
            if os.path.lexists(cfg_path):
                return Store(root)
            import time

            now = time.monotonic()
            deadline = now + wait if deadline is None else deadline
            if now > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


MIN_CHUNK_READ = 4 << 10  # the smallest chunk a sidecar may declare: bounds how much of one is read
MAX_INLINE_MAX = 1 << 20  # FORMAT 2: inlined payloads live in index lines, which every reader loads
# FORMAT 2: the settings a store is created with (casket init's defaults), which casket.json keeps
# (not what an absent field of casket.json means: that stays "fsync" and 0, FORMAT 2)
STORE_SETTINGS = {"compression": "none", "durability": "group", "inline_max": 0, "chunks_min": DEFAULT_CHUNKS_MIN,
                  "pack_max": DEFAULT_PACK_MAX, "pack_size": DEFAULT_PACK_SIZE}


def setting_rule(name: str, value: tp.Any) -> tp.Optional[str]:
    """None when ``value`` is valid for the casket.json setting ``name`` (FORMAT 2), else what it must be:
    the one rule for casket.json, ``init`` and settings given another way (docs/EXCA.md)."""
    if name == "inline_max":
        number = _config_integer(value)
        return None if number is not None and 0 <= number <= MAX_INLINE_MAX else f"an integer from 0 to {MAX_INLINE_MAX}"
    if name == "chunks_min":  # FORMAT 3.6
        number = _config_integer(value)
        return None if number is not None and number >= 0 else "a non-negative integer"
    if name == "pack_max":  # FORMAT 3.7
        number = _config_integer(value)
        return None if number is not None and 0 <= number <= MAX_PACK_MAX else f"an integer from 0 to {MAX_PACK_MAX}"
    if name == "pack_size":
        number = _config_integer(value)
        lo, hi = PACK_SIZE_RANGE
        return None if number is not None and lo <= number <= hi else f"an integer from {lo} to {hi}"
    known = {"compression": ("none", "lz4"), "durability": ("fsync", "group", "none")}[name]
    return None if isinstance(value, str) and value in known else " or ".join(f'"{k}"' for k in known)


def check_store_settings(settings: tp.Mapping[str, tp.Any], source: str) -> dict[str, tp.Any]:
    """``settings`` for new stores, checked with casket.json's rules; a refusal is a StoreError
    (``invalid_config``) that names ``source`` (where the settings came from) and the setting."""
    out = {}
    for name, value in settings.items():
        if name not in STORE_SETTINGS:
            raise StoreError(f"{source}: {name!r} is not a store setting; a new store's settings are "
                             f"{', '.join(STORE_SETTINGS)} (docs/FORMAT.md 2)", "invalid_config")
        must = setting_rule(name, value)
        if must is not None:
            raise StoreError(f"{source}: {name} is {value!r}; it must be {must}, as in casket.json "
                             "(docs/FORMAT.md 2)", "invalid_config")
        out[name] = value
    return out


def _config_integer(value: tp.Any) -> tp.Optional[int]:
    """A JSON number written as an integer (json gives int; never a bool or a float) in signed 64 bits."""
    if isinstance(value, int) and not isinstance(value, bool) and -(1 << 63) <= value < (1 << 63):
        return value
    return None


def parse_config(raw: bytes, path: tp.Union[str, Path]) -> dict:
    """The one validation of ``casket.json`` (FORMAT 2), the same as Swift's ``StoreConfig(parsing:)``.

    Each refusal is a StoreError naming the file, the field and what is wrong, with the Swift CLI's code;
    the cases both test suites check are in ``conformance/configs.json``.
    """
    path = str(path)

    def invalid(what: str) -> StoreError:
        return StoreError(f"'{path}' {what}", "invalid_config")

    def enc(value: tp.Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    top: list = []

    def pairs_hook(pairs: list) -> dict:
        top[:] = [pairs]  # objects close inner first: the last one is the top-level object
        return dict(pairs)

    def no_constant(name: str) -> tp.Any:
        raise ValueError(f"{name} is not JSON")

    try:
        cfg = json.loads(raw.decode("utf-8"), object_pairs_hook=pairs_hook, parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise invalid(f"is not valid JSON: {e}") from e
    if not isinstance(cfg, dict):
        raise invalid("is not a JSON object")
    seen: set = set()
    for key, _ in top[0]:
        if key in seen:
            raise invalid(f'has the field "{key}" twice')
        seen.add(key)
    root = os.path.dirname(path)
    if cfg.get("format") != "casket" or not isinstance(cfg.get("format"), str):
        raise StoreError(f"'{root}' is not a Casket store: '{path}' lacks \"format\":\"casket\"", "not_a_store")

    def field(name: str, must: str) -> StoreError:
        given = enc(cfg[name]) if name in cfg else "missing"
        return invalid(f'has an invalid "{name}": {given}; it must be {must}')

    version = _config_integer(cfg.get("version"))
    if version is None or version < 1:
        raise field("version", f"an integer from 1 to {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise StoreError(
            f"'{path}' has \"version\": {version}: the store is of format version {version}, newer than "
            f"this casket reads (up to {FORMAT_VERSION}): upgrade casket",
            "unsupported_version",
        )
    if "hash" in cfg and cfg["hash"] != "xxh3-128":
        raise field("hash", '"xxh3-128"')
    for name in STORE_SETTINGS:
        must = setting_rule(name, cfg[name]) if name in cfg else None
        if must is not None:
            raise field(name, must)
    if version < 2 and cfg.get("pack_max", 0) != 0:
        # a version 1 reader ignores the field and would never find a packed payload
        raise field("pack_max", '0 in a store of version 1 (packs need "version": 2)')
    return cfg


def _read_only_memmap(buffer: tp.Any, dt: np.dtype, shape: tuple, filename: tp.Optional[str]) -> np.ndarray:
    """What ``np.memmap(filename, mode="r")`` builds, over ``buffer``: the mapping of a blob file (without
    np.memmap's path resolution and second open), or a packed payload read and verified into memory
    (``filename`` None), so that arrays read back are ``np.memmap`` as exca's ``MemmapArray`` values are."""
    arr = np.ndarray.__new__(np.memmap, shape, dtype=dt, buffer=buffer, offset=0, order="C")
    arr._mmap = buffer if isinstance(buffer, mmap.mmap) else None
    arr.offset = 0
    arr.mode = "r"
    arr.filename = filename
    return arr


class Store:
    """An open Casket store: blob reads and writes (FORMAT sections 2-4)."""

    def __init__(self, path: tp.Union[str, Path]) -> None:
        self.root = Path(path)
        cfg_path = self.root / "casket.json"
        try:
            raw = _read_regular(cfg_path)
        except FileNotFoundError:
            raise StoreError(f"{self.root} is not a Casket store: {cfg_path} is missing", "not_a_store") from None
        except OSError as e:
            raise StoreError(f"{self.root}: cannot read casket.json: {e}") from e
        cfg = parse_config(raw, cfg_path)
        self.config: dict[str, tp.Any] = cfg
        self.compression: str = cfg.get("compression", "none")
        self.durability: str = cfg.get("durability", "fsync")
        self.inline_max: int = cfg.get("inline_max", 0)
        self.chunks_min: int = cfg.get("chunks_min", DEFAULT_CHUNKS_MIN)
        self.pack_max: int = cfg.get("pack_max", 0) if cfg["version"] >= 2 else 0
        self.pack_size: int = cfg.get("pack_size", DEFAULT_PACK_SIZE)
        self.blobs_dir = self.root / "blobs"
        self.tmp_dir = self.root / "tmp"
        self.index_dir = self.root / "index"
        self._blobs_str = os.path.abspath(self.blobs_dir)
        self._host = sanitized_host()
        self._real_dirs: set[str] = set()  # folders already seen to be real (not links): FORMAT 1.1
        self.packs_dir = self.root / "packs"
        self._packing = threading.local()  # this thread's write session's PackWriter (FORMAT 3.7)
        self._shelf: tp.Optional[tp.Any] = None  # the PackShelf of this process, made on first use
        self._shelf_pid = 0
        self._fans: tp.Optional[frozenset] = None  # the fan-out folders, as a dedup check last listed them
        self._fans_mtime = 0
        self._fans_racy = True
        self._fans_probed = -PROBE_INTERVAL

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def fsync(self) -> bool:
        """Whether blob files, folders and leases are flushed (``fsync`` and ``group``)."""
        return self.durability != "none"

    @property
    def group(self) -> bool:
        """Group commit (FORMAT 5.5): index lines and pack records are flushed once per batch."""
        return self.durability == "group"

    # ------------------------------------------------------------------ paths

    def real_dir(self, path: Path) -> bool:
        """Whether a store folder exists, once seen to be a real folder; a link raises (FORMAT 1.1)."""
        key = str(path)
        if key in self._real_dirs:
            return True
        if check_real_dir(path):
            self._real_dirs.add(key)
            return True
        return False

    def blob_path(self, h: str, compressed: bool = False) -> Path:
        """A blob file's path, after checking that ``blobs/`` and its fan-out folder are not links."""
        check_hash(h)
        name = h + ".lz4" if compressed else h
        fan = self.blobs_dir / h[:2]
        if self.real_dir(self.blobs_dir):
            self.real_dir(fan)
        return fan / name

    def sidecar_path(self, h: str) -> Path:
        """Where blob ``h``'s chunk digests live (FORMAT 3.6): the one place readers and writers look."""
        return self.blob_path(h).with_name(h + SIDECAR_SUFFIX)

    def load_chunks(self, h: str, size: int) -> tuple[tp.Optional[ChunkTable], str]:
        """Blob ``h``'s chunk digests checked against it, or (None, why not): ``"absent"``, or the flaw of a
        sidecar that cannot be used (a link, not a regular file, truncated, of another blob...)."""
        path = self.sidecar_path(h)
        try:
            fd = _open_form(path)
        except FileNotFoundError:
            return None, "absent"
        except _FormFlaw as e:
            return None, f"sidecar {path}: {e}"
        except OSError as e:
            return None, f"sidecar {path}: {_open_flaw(e)}"
        try:
            length = os.fstat(fd).st_size
            if length > sidecar_length(size, MIN_CHUNK_READ):
                return None, f"sidecar {path}: it holds {length} bytes, more than any sidecar of {size} bytes"
            data = os.pread(fd, length, 0)
        except OSError as e:
            return None, f"sidecar {path}: it cannot be read ({e})"
        finally:
            os.close(fd)
        try:
            return parse_sidecar(data, h, size), ""
        except SidecarFlaw as e:
            return None, f"sidecar {path}: {e}"

    def _publish_sidecar(self, h: str, size: int, digests: tp.Sequence[int], chunk: tp.Optional[int] = None) -> None:
        """Publish blob ``h``'s sidecar through the blob publish rule (FORMAT 3.3: temp file, flush, link
        without replacing); an existing file with other bytes (damaged, a link) is replaced."""
        data = sidecar_bytes(h, size, digests, chunk)
        final = self.sidecar_path(h)
        tmp, fd = self._new_tmp()
        try:
            try:
                _write_all(fd, data)
            finally:
                self._finish_tmp(fd)
            try:
                os.link(tmp, final)
            except FileExistsError:
                found = self.load_chunks(h, size)[0]
                if found is None or found.raw != data:
                    os.rename(tmp, final)
            except OSError as e:
                if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.EMLINK, errno.ENOSYS):
                    raise
                os.rename(tmp, final)
        except OSError as e:
            raise BlobError(f"storing the chunk digests {final} failed: {e}") from e
        finally:
            self._unlink_quiet(tmp)
        if self.fsync:
            _fsync_dir(final.parent)

    def _ensure_sidecar(self, h: str, size: int, digester: tp.Optional[ChunkDigester]) -> None:
        """After a dedup hit: give a blob written before chunk digests (or with a wrong sidecar) its own."""
        if digester is not None and wants_sidecar(size, self.chunks_min) and self.load_chunks(h, size)[0] is None:
            self._publish_sidecar(h, size, digester.finish(), digester.chunk)

    def find_blob(self, h: str, size: tp.Optional[int] = None) -> tp.Optional[tuple[Path, bool]]:
        """(path, compressed) of the form a reader takes: the raw form if sound, else the compressed one
        if sound (FORMAT 3.4); None when no form is sound."""
        raw, comp = self.judge_forms(h, size)
        for compressed, judgement in ((False, raw), (True, comp)):
            if judgement.sound:
                return self.blob_path(h, compressed), compressed
        return None

    # ------------------------------------------------------------------ existence

    def judge(self, h: str, compressed: bool, size: tp.Optional[int]) -> "FormJudgement":
        """The one soundness rule of a blob form (FORMAT 3.4), the same as Swift's ``BlobStore.judge``."""
        path = self.blob_path(h, compressed)
        try:
            fd = _open_form(path)
        except FileNotFoundError:
            return FormJudgement(path, "absent")
        except _FormFlaw as e:
            return FormJudgement(path, str(e))
        except OSError as e:
            return FormJudgement(path, _open_flaw(e))
        try:
            return _judge_fd(fd, path, h, compressed, size)
        finally:
            os.close(fd)

    def judge_forms(self, h: str, size: tp.Optional[int]) -> tuple["FormJudgement", "FormJudgement"]:
        """Both forms; without a size the raw form is judged against the size a sound frame declares."""
        check_hash(h)
        if size is not None:
            return self.judge(h, False, size), self.judge(h, True, size)
        comp = self.judge(h, True, None)
        expected = comp.size if comp.sound else None
        if comp.sound and expected is None and os.path.lexists(self.blob_path(h)):
            # a frame without a content size beside a raw file: only decoding tells the payload's size
            expected = _decoded_size(comp.path)
            if expected is None:
                comp = FormJudgement(comp.path, "its LZ4 frame does not decode")
        return self.judge(h, False, expected), comp

    def has_blob(self, h: str, size: tp.Optional[int] = None) -> bool:
        """True if a sound form of blob ``h`` (of ``size`` uncompressed bytes, when given) exists, as a blob
        file or a pack record (FORMAT 3.7)."""
        writer = getattr(self._packing, "writer", None)
        if writer is not None and writer.pid == _PID[0] and writer.record_of(h) is not None:
            return True  # this session's own pack: no system call
        return self.find_blob(h, size) is not None or self._packed_record(h, size) is not None

    # ------------------------------------------------------------------ packs (FORMAT 3.7-3.8)

    def pack_shelf(self) -> tp.Optional[tp.Any]:
        """This process's view of ``packs/`` (a ``PackShelf``), None when the store has no ``packs/``."""
        if self._shelf is None or self._shelf_pid != _PID[0]:
            if not self.real_dir(self.packs_dir):
                return None
            from .packs import PackShelf

            # a forked child makes its own: a thread of its parent may have held the shelf's lock at the fork
            # (a write session probing for a copy), which no thread of the child would ever release
            self._shelf, self._shelf_pid = PackShelf(str(self.packs_dir)), _PID[0]
        return self._shelf

    def _packed_record(self, h: str, size: tp.Optional[int]) -> tp.Optional[tp.Any]:
        writer = getattr(self._packing, "writer", None)
        own = writer.record_of(h) if writer is not None else None
        if own is not None:
            return own[1]
        shelf = self.pack_shelf()
        found = shelf.find(h) if shelf is not None else None
        return found[1] if found is not None and (size is None or found[1].size == size) else None

    def _packed(self, h: str, size: tp.Optional[int]) -> tp.Optional[bytes]:
        """The verified payload of a packed blob, None when no pack holds it (with ``size`` bytes)."""
        shelf = self.pack_shelf()
        return shelf.read(h, size) if shelf is not None else None

    def _packed_or_none(self, h: str, size: int) -> tp.Optional[bytes]:
        """``_packed``, with a damaged record taken as absent: the blob files are looked at next, and the
        damage is raised only if no sound blob file holds the payload either."""
        try:
            return self._packed(h, size)
        except BlobCorruptError:
            return None

    def begin_packing(self) -> None:
        """Called by a write session: its small payloads go to one pack writer of this thread."""
        self._packing.writer = None
        self._packing.active = True

    def resume_packing(self, writer: tp.Optional[tp.Any]) -> None:
        """Called by a write session that takes over its thread's previous session's pack writer (kept
        open between sessions, casket.kept)."""
        self._packing.writer = writer
        self._packing.active = True

    def end_packing(self, keep: bool = False) -> tp.Optional[tp.Any]:
        """Ends the session's packing. Its pack is sealed (FORMAT 3.7, sealing), or with ``keep`` left open
        and its writer returned, for the thread's next session (or a later seal); a forked child leaves its
        parent's pack alone."""
        writer = getattr(self._packing, "writer", None)
        self._packing.writer = None
        self._packing.active = False
        if writer is None or writer.pid != _PID[0]:
            return None
        if keep:
            return writer
        writer.seal()
        return None

    def session_pack_writer(self) -> tp.Optional[tp.Any]:
        """This thread's session's PackWriter, if it has made one (and is this process's)."""
        writer = getattr(self._packing, "writer", None)
        return writer if writer is not None and writer.pid == _PID[0] else None

    def sync_packs(self) -> None:
        """Flushes the session's pack before a line that may reference it (durability fsync)."""
        writer = getattr(self._packing, "writer", None)
        if writer is not None and self.fsync and writer.pid == _PID[0]:
            writer.sync()

    def _pack_writer(self) -> tp.Optional[tp.Any]:
        if not getattr(self._packing, "active", False):
            return None
        writer = getattr(self._packing, "writer", None)
        if writer is None or writer.pid != _PID[0]:  # one appender per pack: a forked child has its own
            from .packs import PackWriter

            if not self.real_dir(self.packs_dir):
                self.packs_dir.mkdir(exist_ok=True)
            writer = self._packing.writer = PackWriter(
                str(self.packs_dir), f"{self._host}-{os.getpid()}-{secrets.token_hex(4)}", self.pack_size,
                compress=self.compression == "lz4", durable=self.fsync, flush_folder=self.durability == "fsync")
        return writer

    def put_small(self, view: memoryview, known_hash: tp.Optional[str] = None) -> tp.Optional[str]:
        """A payload below ``pack_max`` (a flat byte view) put in this thread's write session's pack: not
        written again when that pack, a sound blob file (freshened) or a pack holds it; else appended,
        flushed before the line that references it. Its hash; None outside a session (no pack writer)."""
        writer = self._pack_writer()
        if writer is None:
            return None
        h = check_hash(known_hash) if known_hash else hash_bytes(view)
        size = view.nbytes
        if writer.record_of(h) is not None or self._freshen_loose(h, size):
            return h
        shelf = self.pack_shelf()
        found = shelf.probe(h) if shelf is not None else None
        if found is None or found[1].size != size:
            writer.append(view, h)
        return h

    def put_small_array(self, data: tp.Any, size: int) -> tp.Optional[str]:
        """:meth:`put_small` for the write fast path (``CacheDict.__setitem__``): ``data`` a C-contiguous
        buffer of ``size`` bytes (hashed and copied through the buffer protocol, no byte view made), the
        same checks in one call: this session's open pack, a sound blob file (freshened), the packs this
        writer sealed (records kept in memory), then the others' sealed packs. None outside a session."""
        packing = self._packing
        writer = getattr(packing, "writer", None)
        if writer is None or writer.pid != _PID[0]:
            writer = self._pack_writer()  # None outside a session (a writer is kept only inside one)
            if writer is None:
                return None
        h = xxhash.xxh3_128_hexdigest(data)
        pack = writer._open
        if pack is not None and h in pack.digests:
            return h
        now = time.monotonic()
        if now - self._fans_probed < PROBE_INTERVAL and self._fans is not None and h[:2] not in self._fans:
            pass  # no fan-out folder a moment ago (_freshen_loose, without the call)
        elif self._freshen_loose(h, size):
            return h
        shelf = self._shelf if self._shelf is not None else self.pack_shelf()
        found = shelf.probe(h, writer, now) if shelf is not None else None
        if found is None or found[1].size != size:
            writer.append_raw(data, h, size, now)
        return h

    def _remove_unsound_twin(self, h: str, kept: bool, size: int) -> None:
        """Once the form ``kept`` is known sound, remove the other form if it is unsound (readers and GC
        must never prefer it); a racing writer that replaces it meanwhile loses nothing."""
        twin = self.judge(h, not kept, size)
        if not twin.sound and twin.reason != "absent":
            try:
                os.unlink(twin.path)
            except OSError:
                pass

    def _fanouts(self) -> tp.Optional[frozenset]:
        """The fan-out folders of ``blobs/`` as a writer's dedup check sees them (FORMAT 3.8: it may look less
        hard than a read): listed again only when ``blobs/``'s mtime changed (or changed within the racy
        window), looked at at most every PROBE_INTERVAL seconds. None when ``blobs/`` cannot be listed."""
        now = time.monotonic()
        if now - self._fans_probed < PROBE_INTERVAL:
            return self._fans
        self._fans_probed = now
        try:
            mtime = os.stat(self._blobs_str, follow_symlinks=False).st_mtime_ns
            if self._fans is None or mtime != self._fans_mtime or self._fans_racy:
                self._fans = frozenset(os.listdir(self._blobs_str))
                self._fans_mtime = mtime
                self._fans_racy = time.time_ns() - mtime < RACY_WINDOW_NS
        except OSError:
            self._fans = None
        return self._fans

    def _freshen_loose(self, h: str, size: int) -> bool:
        """``_freshen_existing`` for the hot path of small puts: string paths, no pathlib, and no look at
        a fan-out folder that the listing of ``blobs/`` lacks (its realness, FORMAT 1.1, is checked once
        per process)."""
        fans = self._fanouts()
        if fans is not None and h[:2] not in fans:
            return False  # no fan-out folder a moment ago: a blob file made since is at most packed again
        fan = os.path.join(self._blobs_str, h[:2])
        if fan not in self._real_dirs:
            try:
                st = os.lstat(fan)
            except FileNotFoundError:
                return False  # no fan-out folder: no blob file
            if not stat.S_ISDIR(st.st_mode):
                return self._freshen_existing(h, size)  # a link or a file: the checked path says so
            self._real_dirs.add(fan)
        raw = os.path.join(fan, h)
        return self._freshen_existing(h, size, (raw, raw + ".lz4"))

    def _freshen_existing(self, h: str, size: int, paths: tp.Optional[tuple[str, str]] = None) -> bool:
        """Dedup check + freshen (FORMAT 3.4). True only if a sound form was freshened; the form is judged
        and freshened through one descriptor opened without following symlinks."""
        for compressed in (False, True):
            path = paths[compressed] if paths is not None else self.blob_path(h, compressed)
            try:
                fd = _open_form(path)
            except (OSError, _FormFlaw):
                continue
            try:
                if not _judge_fd(fd, path, h, compressed, size).sound:
                    continue
                try:
                    os.utime(fd)
                except OSError:
                    return False  # a failed freshen is not a hit
            finally:
                os.close(fd)
            self._remove_unsound_twin(h, compressed, size)
            return True
        return False

    # ------------------------------------------------------------------ temp files

    def _new_tmp(self) -> tuple[Path, int]:
        if not self.real_dir(self.tmp_dir):
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
        for attempt in (0, 1):
            # a fan-out folder this process has seen is not made again (a mkdir a put); one removed since
            # (by hand, or a clear) fails the link with ENOENT: it is made again and the link retried
            if attempt or str(fan) not in self._real_dirs:
                self._make_fanout(fan)
            try:
                if self._place(tmp, final, h, size, replace):
                    return final
                break
            except FileNotFoundError:
                if attempt or not os.path.lexists(tmp):
                    self._unlink_quiet(tmp)
                    raise
                self._real_dirs.discard(str(fan))  # made again, and checked again (FORMAT 1.1)
        self._remove_unsound_twin(h, compressed, size)
        if self.fsync:
            _fsync_dir(fan)
        return final

    def _make_fanout(self, fan: Path) -> None:
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
        self.real_dir(fan)  # a link in its place raises (FORMAT 1.1); a real one is remembered

    def _place(self, tmp: Path, final: Path, h: str, size: int, replace: bool) -> bool:
        """Steps 4-5 of FORMAT 3.3: ``tmp`` linked to ``final`` without replacing a sound blob. True when
        a sound existing form was kept (freshened) instead."""
        if replace:
            os.rename(tmp, final)
            return False
        try:
            os.link(tmp, final)
        except FileExistsError:
            # step 5: already stored: a sound form freshened => keep it, else replace
            if self._freshen_existing(h, size):
                self._unlink_quiet(tmp)
                return True
            os.rename(tmp, final)
        except FileNotFoundError:
            raise  # the fan-out folder is gone: the caller makes it again
        except OSError as e:
            if e.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.EMLINK, errno.ENOSYS):
                os.rename(tmp, final)  # no hard links here: plain rename (same payload)
            else:
                self._unlink_quiet(tmp)
                raise
        else:
            self._unlink_quiet(tmp)
        return False

    def _want_compressed(self, sample: tp.Any) -> bool:
        """The form rule (FORMAT 3.2), the same as Swift's: with ``compression: lz4``, keep a payload as an
        LZ4 frame iff its sample (first ``min(size, 1 MiB)`` bytes) has at least 64 bytes and compresses
        as one LZ4 block (``LZ4_compress_default``) to at most 90 % of itself."""
        n = len(sample)
        if self.compression != "lz4" or n < 64:
            return False
        return 10 * len(lz4.block.compress(sample, mode="default", store_size=False)) <= 9 * n

    # ------------------------------------------------------------------ writes

    def put_bytes(self, data: tp.Any, known_hash: tp.Optional[str] = None) -> str:
        """Store a payload held in memory (bytes, bytearray, memoryview, ndarray). Returns its hash. In a
        write session of a store with packs, a payload below ``pack_max`` goes to the session's pack."""
        view = _as_byte_view(data)
        size = view.nbytes
        if size < self.pack_max:
            h = self.put_small(view, known_hash)
            if h is not None:
                return h
        digester = ChunkDigester() if wants_sidecar(size, self.chunks_min) else None
        if known_hash is not None:
            h = check_hash(known_hash)
            if digester is not None:
                digester.update(view)
        elif digester is None:
            h = hash_bytes(view)
        else:  # one pass: each piece (in cache) is hashed for the blob's name, then for its chunks' digests
            hasher = xxhash.xxh3_128()
            step = max(digester.chunk, CHUNK - CHUNK % digester.chunk)
            for start in range(0, size, step):
                piece = view[start : start + step]
                hasher.update(piece)
                digester.update(piece)
            h = hasher.hexdigest()
        if self._freshen_existing(h, size):
            self._ensure_sidecar(h, size, digester)
            return h
        compressed, replace = self._choose_form(h, size, view[:COMPRESSION_SAMPLE])
        payload: tp.Any = view
        if compressed:
            payload = lz4.frame.compress(view, content_checksum=True, store_size=True)
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
        if digester is not None:
            self._publish_sidecar(h, size, digester.finish(), digester.chunk)
        return h

    def _choose_form(self, h: str, size: int, sample: tp.Any) -> tuple[bool, bool]:
        """(compressed, replace) for a payload that was not a dedup hit, as Swift decides: the form rule
        gives the form; a sound file of that form that could not be freshened (another user's) is replaced
        with plain rename, and a sound file of the other form is left beside the new one (GC keeps the
        newer of two sound forms)."""
        compressed = self._want_compressed(sample)
        found = self.find_blob(h, size)
        return compressed, found is not None and found[1] == compressed

    def put_file(self, path: tp.Union[str, Path]) -> str:
        """Store the content of a file, streaming (hashes it first to deduplicate). Returns the hash."""
        hasher = xxhash.xxh3_128()
        digester = ChunkDigester()
        size = 0
        with open(path, "rb") as f:
            for chunk in _iter_source(f):
                hasher.update(chunk)
                digester.update(chunk)
                size += len(chunk)
        h = hasher.hexdigest()
        if self._freshen_existing(h, size):
            self._ensure_sidecar(h, size, digester)
            return h
        with open(path, "rb") as f:
            return self._put_stream(f)

    def put_stream(self, source: tp.Any) -> str:
        """Store the bytes of a binary file object or an iterable of buffers, streaming.

        Memory use is bounded by the chunk size, whatever the payload size.
        """
        return self._put_stream(source)

    def _put_stream(self, source: tp.Any) -> str:
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
            digester = ChunkDigester()  # the same pass: digests are over the payload, whatever its form
            size = 0
            sample = bytearray()  # the first COMPRESSION_SAMPLE bytes decide the form (FORMAT 3.2)
            for chunk in _iter_source(source):
                hasher.update(chunk)
                digester.update(chunk)
                _write_all(fd, chunk)
                view = _as_byte_view(chunk)
                size += view.nbytes
                if len(sample) < COMPRESSION_SAMPLE:
                    sample += view[: COMPRESSION_SAMPLE - len(sample)]
            h = hasher.hexdigest()
            # dedup after learning the hash while writing (FORMAT 3.4)
            if self._freshen_existing(h, size):
                close_fd()
                self._unlink_quiet(tmp)
                self._ensure_sidecar(h, size, digester)
                return h
            compressed, replace = self._choose_form(h, size, sample)
            if compressed:
                ctmp = self._compress_file(tmp, size)
                tmps.append(ctmp)
                close_fd()
                self._unlink_quiet(tmp)
                tmp = ctmp
            else:
                close_fd(finish=True)
            self._publish(tmp, h, size, compressed, replace)
            if wants_sidecar(size, self.chunks_min):
                self._publish_sidecar(h, size, digester.finish(), digester.chunk)
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

    def _locate(self, h: str, size: tp.Optional[int] = None, exclude: tp.Optional[bool] = None) -> tuple[Path, bool]:
        """The form a reader takes: raw if sound, else compressed if sound (never the ``exclude`` form)."""
        raw, comp = self.judge_forms(check_hash(h), size)
        if exclude is True:
            raw = self.judge(h, False, size)
        flaws = []
        for compressed, judgement in ((False, raw), (True, comp)):
            if compressed is exclude:
                continue
            if judgement.sound:
                return judgement.path, compressed
            if judgement.reason != "absent":
                flaws.append(f"{judgement.path}: {judgement.reason}")
        if flaws:
            raise BlobCorruptError(f"blob {h} has no sound form: " + "; ".join(flaws))
        raise BlobMissingError(f"blob {h} is missing (looked for {self.blob_path(h)} and {self.blob_path(h, True)})")

    def iter_blob(self, h: str, expected_size: tp.Optional[int] = None) -> tp.Iterator[bytes]:
        """Verified streaming read: yields chunks of the payload; raises BlobCorruptError at the end
        (before returning normally) if the bytes do not hash to ``h``. Consumers must not trust the
        chunks until the iterator is exhausted without error."""
        try:
            path, compressed = self._locate(h, expected_size)
        except BlobError:
            packed = self._packed(h, expected_size)  # no sound blob file: a pack may hold it (FORMAT 3.8)
            if packed is None:
                raise
            yield packed
            return
        try:
            yield from self._iter_form(path, compressed, h, expected_size)
        except BlobCorruptError as e:
            twin = self.judge(h, not compressed, expected_size)
            if twin.sound:  # fsck quarantines the corrupt file; get_bytes falls back on its own
                raise BlobCorruptError(f"{e}; its other form {twin.path} is sound") from e
            raise

    def _iter_form(self, path: Path, compressed: bool, h: str, expected_size: tp.Optional[int]) -> tp.Iterator[bytes]:
        hasher = xxhash.xxh3_128()
        size = 0
        try:
            fd = _open_form(path)
        except FileNotFoundError:
            raise BlobMissingError(f"blob file {path} disappeared") from None
        except _FormFlaw as e:
            raise BlobCorruptError(f"blob file {path}: {e}") from e
        with os.fdopen(fd, "rb") as f:
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
        """The payload of blob ``h``, verified; a corrupt form gives way to a sound twin (FORMAT 3.5)."""
        if expected_size is not None and expected_size < self.pack_max:  # a small payload is most likely packed
            packed = self._packed_or_none(h, expected_size)
            if packed is not None:
                return packed
        try:
            path, compressed = self._locate(h, expected_size)
        except BlobError:
            packed = self._packed(h, expected_size)
            if packed is None:
                raise
            return packed
        try:
            return b"".join(self._iter_form(path, compressed, h, expected_size))
        except BlobCorruptError:
            twin = self.judge(h, not compressed, expected_size)
            if not twin.sound:
                raise
            return b"".join(self._iter_form(twin.path, not compressed, h, expected_size))

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
        """The blob as an array. A sound raw blob is memory-mapped read-only (no copy, ``np.memmap``);
        otherwise a sound compressed one is decompressed into a new array. With ``verify`` (default) the
        bytes are hashed before the array is returned, and a raw form that fails gives way to a sound frame.
        A verified raw blob of at least ``chunks_min`` bytes is returned as a ``ChunkedArray`` proxy instead,
        which verifies the chunks each read touches (casket/verified.py, FORMAT 3.6)."""
        dt = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        return self._array(check_hash(h), dt, shape, math.prod(shape) * dt.itemsize, verify)

    def _array(self, h: str, dt: np.dtype, shape: tp.Sequence[int], nbytes: int, verify: bool) -> np.ndarray:
        """:meth:`read_array` of a well-formed hash, for ``nbytes``, the size of ``shape`` in ``dt``."""
        if nbytes:
            if nbytes < self.pack_max:  # a small payload is most likely packed: no look at blobs/ for it
                shelf = self.pack_shelf()
                try:
                    packed = shelf.read_aligned(h, nbytes) if shelf is not None else None
                except BlobCorruptError:  # a damaged record: a sound blob file may hold the payload
                    packed = None
                if packed is not None:
                    arr = _read_only_memmap(packed, dt, shape, None)  # over the verified bytes
                    arr.flags.writeable = False  # as every read gives it
                    return arr
            # hot path of a larger one: the raw form, opened once without following a symlink, judged by fstat
            raw = os.path.join(self._blobs_str, h[:2], h)
            fd = _open_sized(raw, nbytes)
            if fd is not None:
                try:
                    if verify and wants_sidecar(nbytes, self.chunks_min):
                        # large: verified by the chunks each read touches (FORMAT 3.6)
                        from .verified import ChunkedArray, mapping_of

                        mapping = mapping_of(self, raw, fd, os.fstat(fd), h, nbytes)
                        return ChunkedArray(mapping, dt, shape)  # type: ignore[return-value]
                    mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
                finally:
                    os.close(fd)
                if verify:
                    actual = hash_bytes(mm)
                    if actual != h:
                        mm.close()
                        if not self.judge(h, True, nbytes).sound:
                            raise BlobCorruptError(
                                f"blob file {raw} is corrupt: expected hash {h}, actual hash {actual}"
                            )
                        return self._decompress_array(h, dt, shape, nbytes, exclude_raw=True)
                return _read_only_memmap(mm, dt, shape, raw)
        try:
            path, compressed = self._locate(h, nbytes)
        except BlobError:
            packed = self._packed(h, nbytes)  # verified as it is read
            if packed is None:
                raise
            return _read_only_memmap(packed, dt, shape, None)
        if compressed:
            return self._decompress_array(h, dt, shape, nbytes, exclude_raw=False)
        if nbytes == 0:
            if verify and h != EMPTY_HASH:
                raise BlobCorruptError(f"blob file {path} is corrupt: expected hash {h}, actual hash {EMPTY_HASH}")
            return np.empty(shape, dtype=dt)
        # a sound raw form appeared after the hot path looked
        arr = np.memmap(path, dtype=dt, mode="r", shape=shape, order="C")
        if verify:
            actual = hash_bytes(arr.view(np.uint8).reshape(-1))
            if actual != h:
                raise BlobCorruptError(f"blob file {path} is corrupt: expected hash {h}, actual hash {actual}")
        return arr

    def _decompress_array(self, h: str, dt: np.dtype, shape: tuple, nbytes: int, exclude_raw: bool) -> np.ndarray:
        path, _ = self._locate(h, nbytes, exclude=False if exclude_raw else None)
        out = np.empty(shape, dtype=dt)
        target = memoryview(out.reshape(-1).view(np.uint8)) if nbytes else memoryview(b"")
        pos = 0
        for chunk in self._iter_form(path, True, h, nbytes):
            end = pos + len(chunk)
            if end > nbytes:
                raise BlobCorruptError(f"blob file {path}: more than the {nbytes} bytes of a {dt} array of shape {list(shape)}")
            target[pos:end] = chunk
            pos = end
        if pos != nbytes:
            raise BlobCorruptError(f"blob file {path}: {pos} bytes, expected {nbytes} for a {dt} array of shape {list(shape)}")
        return out

    def materialize(self, h: str, size: int, dest: tp.Union[str, Path]) -> None:
        """A new file ``dest`` (in a folder the caller owns) holding the verified payload of ``h``, for code
        that opens files by name (exca's handlers). The raw form is opened without following a link and
        hashed through that descriptor; ``dest`` is then a hard link to that very inode, so no later path
        lookup goes through the store. Where a link cannot be made (another file system, another user's
        file) or only the compressed form is sound, ``dest`` is a streamed, verified copy."""
        dest = Path(dest)
        raw = self.blob_path(h)
        chunks = self.iter_blob(h, size)
        fd = _open_sized(raw, size)
        if fd is not None:
            try:
                actual = EMPTY_HASH if size == 0 else _hash_fd(fd)
                if actual == h:
                    try:
                        _link_fd(fd, dest)
                        return
                    except OSError:
                        pass  # another file system, or protected_hardlinks: copy below
                elif self.judge(h, True, size).sound:
                    chunks = self._iter_form(self.blob_path(h, True), True, h, size)  # the sound twin
                else:
                    raise BlobCorruptError(f"blob file {raw} is corrupt: expected hash {h}, actual hash {actual}")
            finally:
                os.close(fd)
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o444)
        try:
            with os.fdopen(out, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
        except BaseException:
            self._unlink_quiet(dest)
            raise

    def verify_blob(self, h: str) -> None:
        """Raise BlobCorruptError / BlobMissingError unless blob ``h`` is sound."""
        for _ in self.iter_blob(h):
            pass


def _open_sized(path: tp.Union[str, Path], size: int) -> tp.Optional[int]:
    """A descriptor on the raw form at ``path`` when it is a regular file of ``size`` bytes (opened without
    following a link, judged by ``fstat``), else None."""
    try:
        fd = _open_form(path)
    except (OSError, _FormFlaw):
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode) and st.st_size == size:
        return fd
    os.close(fd)
    return None


def _link_fd(fd: int, dest: Path) -> None:
    """Hard-link the file open as ``fd`` to ``dest``: ``linkat`` through ``/proc/self/fd`` with
    ``AT_SYMLINK_FOLLOW`` links the descriptor's inode itself, whatever its path now names."""
    proc = os.open("/proc/self/fd", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        os.link(str(fd), dest, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


def _hash_fd(fd: int) -> str:
    """XXH3-128 of a non-empty regular file, read through its descriptor (mapped, so without a copy)."""
    with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
        return hash_bytes(mm)


def _read_regular(path: Path, limit: int = 1 << 16) -> bytes:
    """A small regular file's bytes, opened without following a link or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"'{path}' is {describe_kind(st.st_mode)}, not a regular file", "invalid_config")
        return os.read(fd, limit + 1)[: limit + 1]
    finally:
        os.close(fd)


class FormJudgement(tp.NamedTuple):
    """What one form of a blob on disk is worth (FORMAT 3.4). ``reason`` is ``""`` for a sound form,
    ``"absent"`` when no file has the form's name, else why the file cannot be the payload."""

    path: Path
    reason: str
    size: tp.Optional[int] = None  # the payload size, when sound and known

    @property
    def sound(self) -> bool:
        return self.reason == ""


def _open_flaw(e: OSError) -> str:
    return "it is a symbolic link" if e.errno == errno.ELOOP else f"it cannot be opened ({e})"


class _FormFlaw(Exception):
    """A file under a form's name that cannot be opened as one (its message says why)."""


_FORM_OPEN = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _open_form(path: tp.Union[str, Path]) -> int:
    """Open a blob form read-only for judging or reading: ``lstat`` first, so that a symlink is never
    followed and a FIFO or device never opened, then ``O_NOFOLLOW | O_NONBLOCK`` (a name swapped in between
    is caught by ``fstat`` on the descriptor). FileNotFoundError when nothing has the name."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise _FormFlaw(f"it is {describe_kind(st.st_mode)}, not a regular file")
    try:
        return os.open(path, _FORM_OPEN)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise _FormFlaw(_open_flaw(e)) from e


def _judge_fd(fd: int, path: Path, h: str, compressed: bool, size: tp.Optional[int]) -> FormJudgement:
    try:
        st = os.fstat(fd)
    except OSError:
        return FormJudgement(path, "it cannot be examined")
    if not stat.S_ISREG(st.st_mode):
        return FormJudgement(path, "it is not a regular file")
    if not compressed:
        if size is not None and st.st_size != size:
            return FormJudgement(path, f"it holds {st.st_size} bytes, the payload {size}")
        if st.st_size == 0 and h != EMPTY_HASH:
            return FormJudgement(path, "it is empty and the blob is not the empty payload")
        return FormJudgement(path, "", st.st_size)
    try:
        flaw, declared = _walk_lz4_frame(fd, st.st_size)
    except OSError as e:
        return FormJudgement(path, f"it cannot be read ({e})")
    if flaw:
        return FormJudgement(path, flaw)
    if size is not None and declared is not None and declared != size:
        return FormJudgement(path, f"its LZ4 frame declares {declared} bytes, the payload {size}")
    return FormJudgement(path, "", declared if declared is not None else size)


def _decoded_size(path: Path) -> tp.Optional[int]:
    """The number of bytes an LZ4 frame decodes to; None when it does not decode to its end."""
    try:
        fd = _open_form(path)
    except (OSError, _FormFlaw):
        return None
    dec = lz4.frame.LZ4FrameDecompressor()
    size = 0
    try:
        with os.fdopen(fd, "rb") as f:
            for chunk in _iter_source(f):
                if dec.eof:
                    return None
                size += len(dec.decompress(chunk))
    except (OSError, RuntimeError, EOFError):
        return None
    return size if dec.eof and not dec.unused_data else None


def _walk_lz4_frame(fd: int, file_size: int) -> tuple[str, tp.Optional[int]]:
    """Check that a file holds exactly one complete LZ4 frame without decoding it (FORMAT 3.4): header
    fields and checksum, then each block's 4-byte header, skipping block data by offset, to the end mark,
    the content checksum when flagged, and the end of the file. Returns (flaw or "", declared size)."""
    head = os.pread(fd, 19, 0)
    if len(head) < 4 or head[:4] != LZ4_MAGIC:
        return "it does not start with the LZ4 frame magic", None
    if len(head) < 7:
        return f"its LZ4 frame is truncated at byte {len(head)}", None
    flg, bd = head[4], head[5]
    if flg >> 6 != 1:
        return f"its LZ4 frame header is invalid (version {flg >> 6})", None
    if flg & 0x02 or bd & 0x8F:
        return "its LZ4 frame header is invalid (reserved bits set)", None
    if flg & 0x01:  # no reader of the store has the dictionary such a frame needs
        return "its LZ4 frame header is invalid (it needs a dictionary)", None
    size_id = (bd >> 4) & 0x07
    if size_id < 4:
        return f"its LZ4 frame header is invalid (block size id {size_id})", None
    block_limit = 1 << (8 + 2 * size_id)
    header_len = 7 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0)
    if len(head) < header_len:
        return f"its LZ4 frame is truncated at byte {len(head)}", None
    if head[header_len - 1] != (xxhash.xxh32_intdigest(head[4 : header_len - 1]) >> 8) & 0xFF:
        return "its LZ4 frame header is invalid (header checksum)", None
    declared = int.from_bytes(head[6:14], "little") if flg & 0x08 else None
    if declared is not None and declared >= 1 << 63:
        return f"its LZ4 frame header is invalid (content size {declared})", None
    offset = header_len
    block_checksum = 4 if flg & 0x10 else 0
    while True:
        word = os.pread(fd, 4, offset)
        if len(word) < 4:
            return f"its LZ4 frame is truncated at byte {offset + len(word)}", None
        block = int.from_bytes(word, "little") & 0x7FFFFFFF
        if block == 0:  # liblz4 reads a size of 0, whatever the uncompressed bit, as the end mark
            break
        if block > block_limit:
            return f"the LZ4 block at byte {offset} declares {block} bytes, more than the frame's {block_limit}", None
        offset += 4 + block + block_checksum
        if offset > file_size:
            return f"its LZ4 frame is truncated at byte {file_size}", None
    offset += 4 + (4 if flg & 0x04 else 0)
    if offset > file_size:
        return f"its LZ4 frame is truncated at byte {file_size}", None
    if offset != file_size:
        return f"{file_size - offset} bytes follow the end of its LZ4 frame at byte {offset}", None
    return "", declared
