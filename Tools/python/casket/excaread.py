"""``ExcaView``: the keys an exca cache already holds in a folder, read through exca's own reader, read-only.

With the switch on (docs/EXCA.md, "Folders exca already wrote"), a ``casket.CacheDict`` over a folder that
holds exca's files keeps serving exca's keys from them, so nothing is computed again because the format
changed. exca's reader is the only one that reads every layout and handler exactly as exca does (I5), so it
is used as is, with the three things exca's reads change in a folder turned off: the orphan sweep (which
deletes index and data files), ``.exca-last-use`` and the ``utime`` of index files. Nothing here writes.
"""

from __future__ import annotations

import contextlib
import typing as tp
from pathlib import Path

from .store import CasketError

__all__ = ["ExcaView", "holds_exca_cache", "exca_cachedict_class"]


def holds_exca_cache(folder: Path) -> list[str]:
    """The exca index files (``*-info.jsonl``, every layout since 0.2) at the root of ``folder``, sorted."""
    try:
        return sorted(p.name for p in folder.iterdir() if p.name.endswith("-info.jsonl") and p.is_file())
    except OSError:
        return []


def exca_cachedict_class() -> tp.Optional[type]:
    """exca's own CacheDict class: the one ``casket.exca.install()`` replaced, or exca's if not switched
    on; None when exca is not installed."""
    from . import exca as switch

    cls: tp.Any = switch._original[0] if switch._original else None
    if cls is None:
        try:
            import exca.cachedict as module
        except Exception:  # no exca in this environment: nothing can read its files
            return None
        # with the switch on, importing exca just patched it: exca's class is now the one it kept
        cls = switch._original[0] if switch._original else getattr(module, "CacheDict", None)
        if cls is None or not switch._is_exca_cachedict(cls):
            return None
    return cls


_read_only_classes: dict[type, type] = {}


def _read_only(cls: type) -> type:
    """A subclass of exca's CacheDict whose reads change nothing in the folder."""
    made = _read_only_classes.get(cls)
    if made is not None:
        return made

    def _cleanup_orphaned_jsonl_files(self: tp.Any) -> None:
        return None  # exca deletes index and data files it judges orphaned: never in someone else's cache

    def __getitem__(self: tp.Any, key: str) -> tp.Any:
        if getattr(self, "_dumper", None) is None:  # before 0.5.12 (no DumpContext) a read writes nothing
            return cls.__getitem__(self, key)  # type: ignore[index]
        # exca's __getitem__ minus _record_use (.exca-last-use) and the utime of the index file
        if key not in self._key_info:
            _ = self.keys()
        return self._dumper.load(self._key_info[key].content)

    def refused(self: tp.Any, *args: tp.Any, **kwargs: tp.Any) -> tp.Any:
        raise RuntimeError(f"the exca cache in {self.folder} is read-only through casket (docs/EXCA.md)")

    made = type("ReadOnlyExcaCacheDict", (cls,), {
        "_cleanup_orphaned_jsonl_files": _cleanup_orphaned_jsonl_files,
        "__getitem__": __getitem__,
        "__setitem__": refused,
        "__delitem__": refused,
        "write": refused,
        "clear": refused,
    })
    _read_only_classes[cls] = made
    return made


class ExcaView:
    """Read-only view of the exca cache in ``folder`` (keys and values as exca reads them)."""

    def __init__(self, folder: Path, cls: type) -> None:
        self.folder = folder
        self._cd: tp.Any = _read_only(cls)(folder)
        if not hasattr(self._cd, "_key_info"):
            raise TypeError(f"exca {cls.__module__}.CacheDict has no _key_info: too old to read")

    @classmethod
    def open(cls, folder: Path) -> tp.Optional["ExcaView"]:
        """The view when ``folder`` holds exca index files and exca is installed, else None."""
        if not holds_exca_cache(folder):
            return None
        exca_cls = exca_cachedict_class()
        if exca_cls is None:
            return None
        try:
            return cls(folder, exca_cls)
        except TypeError:
            return None

    @contextlib.contextmanager
    def _reading(self) -> tp.Iterator[None]:
        """exca's reader errors (a layout this exca does not read: 0.6.0 refuses 0.5.11's ``metadata=``
        header, as exca itself would) become a CasketError naming the folder, the cause, and the fix."""
        try:
            yield
        except KeyError:
            raise
        except Exception as e:
            raise CasketError(
                f"exca's reader cannot read the exca cache in {self.folder} ({type(e).__name__}: {e}); "
                f"migrate it, Casket's migrator reads every layout: casket migrate '{self.folder}' --into "
                f"'{self.folder}' (docs/EXCA.md)") from e

    def keys(self) -> set[str]:
        with self._reading():
            return set(self._cd.keys())

    def __contains__(self, key: str) -> bool:
        # exca's own test: its table, re-read only when the folder changed (no set of every key per miss)
        with self._reading():
            return bool(self._cd.__contains__(key))

    def __getitem__(self, key: str) -> tp.Any:
        with self._reading():
            return self._cd[key]
