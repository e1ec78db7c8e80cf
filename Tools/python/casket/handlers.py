"""exca's own handlers through Casket (docs/EXCA.md "Handlers", docs/FORMAT.md 6.2 ``ExcaHandler``).

A value Casket does not encode natively (a class with ``__dump_info__``, a ``cache_type`` or a
``DumpContext.TYPE_DEFAULTS`` handler Casket lacks) is dumped by exca's ``DumpContext`` into a private
staging folder in the store's ``tmp/``; every file it wrote becomes a payload. On load, the handler gets
a ``DumpContext`` over a per-process *read folder* (``tmp/<host>.<pid>.<random>.read`` in the store)
that holds the same relative names, each a verified hard link to (or copy of) its blob, so
``__load_from_info__`` runs unchanged.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import stat
import tempfile
import threading
import typing as tp
from pathlib import Path

import xxhash

from .store import CasketError, Store, describe_kind

__all__ = ["NATIVE", "dump_context", "contiguous_memmap", "handler_name", "settle_defaults", "staging",
           "staged_files", "check_name", "info_filenames", "names_file", "read_view"]

# exca handler names whose values Casket encodes itself (FORMAT 6.2); every other handler is exca's
NATIVE = frozenset({
    "MemmapArray", "MemmapArrayFile", "ContiguousMemmapArray", "TorchTensor", "Json", "Pickle", "NumpyArray",
    "PandasDataFrame", "ParquetPandasDataFrame", "NibabelNifti", "Auto",
})
STAGE_SUFFIX = ".stage"
READ_SUFFIX = ".read"

_imports: dict[str, tp.Any] = {}


def _optional(name: str, module: str, attr: str) -> tp.Any:
    """``module.attr``, imported once; None when it cannot be imported (exca missing, or before 0.5.29)."""
    if name not in _imports:
        try:
            _imports[name] = getattr(__import__(module, fromlist=[attr]), attr)
        except ImportError:
            _imports[name] = None
    return _imports[name]


def dump_context() -> tp.Any:
    """exca's ``DumpContext`` class (exca 0.5.29 and later), or None."""
    return _optional("DumpContext", "exca.cachedict.dumpcontext", "DumpContext")


def contiguous_memmap() -> tp.Any:
    """exca's ``ContiguousMemmap`` proxy class, or None."""
    return _optional("ContiguousMemmap", "exca.cachedict.contiguous", "ContiguousMemmap")


def handler_name(value: tp.Any) -> tp.Optional[str]:
    """The exca handler that writes ``value`` when Casket has no native encoding for it, else None: its own
    ``__dump_info__``, or the ``DumpContext.TYPE_DEFAULTS`` entry of its type (``mne.io.Raw``, a class
    registered with ``default_for``). Only asked for values Casket would otherwise pickle."""
    if hasattr(value, "__dump_info__"):
        return type(value).__name__
    context = dump_context()
    if context is None:
        return None
    settle_defaults()
    handler = context._find_handler(type(value))
    if handler is None or handler.__name__ in NATIVE:
        return None
    return handler.__name__  # type: ignore[no-any-return]


_defaults_lock = threading.Lock()


def settle_defaults() -> None:
    """Runs exca's lazy registration of the optional packages' defaults (``mne.io.Raw``...) under a lock:
    exca's own ``_ensure_optional_defaults`` deletes from a module dict and raises ``KeyError`` when two
    threads do it at once, so it is done here first, one thread at a time."""
    ensure = _optional("_ensure_optional_defaults", "exca.cachedict.dumpcontext", "_ensure_optional_defaults")
    if ensure is not None:
        with _defaults_lock:
            ensure()


def require_dump_context(what: str) -> tp.Any:
    context = dump_context()
    if context is None:
        from .values import MissingDependencyError

        raise MissingDependencyError(
            f"{what} needs an exca with DumpContext (0.5.29 or later): pip install 'exca>=0.5.29'")
    return context


# --------------------------------------------------------------------------- writing


_swept: set[str] = set()


@contextlib.contextmanager
def staging(store: Store) -> tp.Iterator[Path]:
    """A fresh folder ``tmp/<host>.<pid>.<random>.stage`` for one value's handler files, removed when the
    block ends."""
    tmp = _store_tmp(store)
    while True:
        folder = tmp / f"{store._host}.{os.getpid()}.{secrets.token_hex(8)}{STAGE_SUFFIX}"
        try:
            folder.mkdir(mode=0o700)
            break
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _store_tmp(store: Store) -> Path:
    """The store's ``tmp/`` (never a link), made if missing. The first time a process uses it, the staging
    and read folders that processes of this host left when they were killed (their pid is gone) are
    removed, as export files are (FORMAT 4.1)."""
    tmp = store.tmp_dir
    if not store.real_dir(tmp):
        tmp.mkdir(parents=True, exist_ok=True)
    if str(tmp) not in _swept:
        _swept.add(str(tmp))
        _sweep_stale(store)
    return tmp


def _sweep_stale(store: Store) -> None:
    prefix = store._host + "."
    for entry in os.scandir(store.tmp_dir):
        name = entry.name
        if not (name.startswith(prefix) and name.endswith((STAGE_SUFFIX, READ_SUFFIX))):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue
        except ProcessLookupError:
            pass
        except OSError:  # alive, another user's
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)


def staged_files(folder: Path, handler: str) -> list[tuple[str, Path]]:
    """Every file a handler wrote under ``folder`` as (relative name with ``/``, path), sorted. Links and
    special files are refused: what a handler leaves must be plain files for the store to keep."""
    out = []
    for dirpath, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                continue
            rel = path.relative_to(folder).as_posix()
            if not stat.S_ISREG(st.st_mode):
                raise CasketError(
                    f"exca handler {handler!r} left {rel!r}, {describe_kind(st.st_mode)}: Casket stores only the "
                    "regular files a handler writes")
            out.append((rel, path))
    return sorted(out)


# --------------------------------------------------------------------------- reading


def check_name(name: tp.Any) -> bool:
    """A file name of an ``ExcaHandler`` node: a relative path of plain names joined by ``/`` (no empty,
    ``.`` or ``..`` part, no backslash or NUL)."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def info_filenames(info: tp.Any) -> list[str]:
    """The ``filename`` of every handler dict (one with a ``#type``) in an exca info dict: what exca's own
    handlers open under the context's folder."""
    out: list[str] = []
    if isinstance(info, dict):
        if "#type" in info and "filename" in info:
            out.append(info["filename"])
        for value in info.values():
            out += info_filenames(value)
    elif isinstance(info, list):
        for value in info:
            out += info_filenames(value)
    return out


def names_file(filename: str, files: tp.Iterable[str]) -> bool:
    """Whether ``filename`` is one of ``files``, or a folder holding some (MneRawBrainVision's)."""
    return any(name == filename or name.startswith(filename + "/") for name in files)


class _ReadRoots:
    """This process's read folder of each store, made at first use (mode 0700) and removed at exit; a
    forked child makes its own. It is ``tmp/<host>.<pid>.<random>.read`` in the store, on the store's file
    system, so its files can be hard links to the blobs; where the store's ``tmp/`` cannot be written (a
    reader without write access), or in ``$CASKET_READ_DIR`` when set, it is a ``casket-read-<pid>-*``
    folder of the system temp folder, and its files are copies when that is another file system."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = -1
        self.paths: dict[str, Path] = {}

    def get(self, store: Store) -> Path:
        with self.lock:
            if self.pid != os.getpid():
                self.paths, self.pid = {}, os.getpid()
            key = str(store.tmp_dir)
            if key not in self.paths or not self.paths[key].is_dir():  # made, or removed by clear()
                self.paths[key] = _make_read_root(store)
                atexit.register(_remove_if_mine, self.paths[key], self.pid)
            return self.paths[key]


def _make_read_root(store: Store) -> Path:
    elsewhere = os.environ.get("CASKET_READ_DIR")  # the user's choice (copies, on another file system)
    if not elsewhere:
        try:
            folder = _store_tmp(store) / f"{store._host}.{os.getpid()}.{secrets.token_hex(8)}{READ_SUFFIX}"
            folder.mkdir(mode=0o700)
            return folder
        except OSError:  # a reader that cannot write the store (EACCES, EROFS)
            pass
    return Path(tempfile.mkdtemp(prefix=f"casket-read-{os.getpid()}-", dir=elsewhere or None))


def _remove_if_mine(path: Path, pid: int) -> None:
    if os.getpid() == pid:
        shutil.rmtree(path, ignore_errors=True)


_roots = _ReadRoots()


def read_view(store: Store, files: dict[str, dict], fill: tp.Callable[[dict, Path], None]) -> Path:
    """A folder of this process's read folder holding ``files`` (relative name -> payload node), each made
    by ``fill(node, path)``. Made once per distinct set of files (its name is their hash), then reused."""
    ident = xxhash.xxh3_128_hexdigest(json.dumps(
        sorted((name, node.get("blob"), node.get("inline"), node.get("size")) for name, node in files.items()),
        separators=(",", ":")).encode())
    root = _roots.get(store)
    view = root / ident
    if view.is_dir():
        return view
    build = root / f"{ident}.{secrets.token_hex(8)}.building"
    build.mkdir()
    try:
        for name in sorted(files):
            path = build.joinpath(*name.split("/"))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as e:
                raise CasketError(f"file name {name!r} goes through another file of the same value") from e
            except OSError as e:
                raise CasketError(f"cannot make the file {name!r} in the read folder {build}: {e}") from e
            try:
                fill(files[name], path)
            except OSError as e:
                if isinstance(e, CasketError):  # a missing blob, named as such
                    raise
                raise CasketError(f"cannot make the file {name!r} in the read folder {build}: {e}") from e
        try:
            os.rename(build, view)
        except OSError:
            if not view.is_dir():  # another thread made it first, else a real failure
                raise
    finally:
        if build.exists():
            shutil.rmtree(build, ignore_errors=True)
    return view
