"""``casket.CacheDict``: exca's CacheDict interface on top of a Casket store."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import warnings
import time
import typing as tp
from pathlib import Path

import numpy as np

from . import excarules
from .excaread import ExcaView, holds_exca_cache
from .index import Entry, IndexReader, IndexWriter, _encode_str, entry_line_parts, tombstone_line
from .kept import KeptWriters, end_kept_for, keep_seconds, take_kept
from .store import CasketError, Store, check_store_settings, open_or_init_store
from .values import Payload, _array_form, decode, encode_json, packed_array, row_array

__all__ = ["CacheDict"]

_ARRAY_TYPES = (None, "MemmapArray")  # the cache types a plain array is written as MemmapArray under
_FAST_PUTS = True  # the fused path of __setitem__ (False in tests: the general path, for comparison)

X = tp.TypeVar("X")


class CacheDict(tp.Generic[X]):
    """Dictionary-like view of a Casket store, with the interface of ``exca.cachedict.CacheDict``.

    Parameters
    ----------
    folder:
        root of a Casket store. As in exca, a folder that does not exist or holds no store yet reads as
        empty, and the first write creates the store (safely when processes race). ``None`` with
        ``keep_in_ram=True`` is a RAM-only dict; neither raises ``ValueError``, as exca does.
    keep_in_ram:
        also keep the values read in a RAM dict (as exca: a written value is kept once it is read back).
    cache_type:
        force the ``#type`` of every value written (``"MemmapArray"``, ``"Pickle"``, ``"Json"``,
        ``"Auto"``, ``"Bytes"``, ``"NumpyArray"``, ``"String"``, ``"TorchTensor"``, ...). ``None``
        chooses like exca: arrays -> MemmapArray, dicts/lists -> Auto (or Json when no array
        inside), JSON values -> Json, bytes -> Bytes, torch tensors -> TorchTensor, anything else
        -> Pickle.
    permissions:
        exca 0.5.x's argument, accepted and not applied: modes follow the umask (docs/FORMAT.md 1.1).
    verify:
        verify the hash of every blob read (default True; memory-mapped arrays are hashed once
        through the mapping, without a copy).
    store_settings:
        ``compression``, ``durability``, ``inline_max`` (casket.json's settings, FORMAT 2) of the store
        the first write creates; an existing store keeps its own. None: those of the exca switch
        (``casket.exca.install(settings=...)``, ``CASKET_EXCA_<SETTING>``) while it is on, else
        ``casket init``'s defaults.

    Writes and deletions need a ``with cd.write():`` block, as in exca.
    """

    def __init__(
        self,
        folder: tp.Union[str, Path, None],
        keep_in_ram: bool = False,
        cache_type: tp.Optional[str] = None,
        permissions: tp.Optional[int] = None,
        verify: bool = True,
        store_settings: tp.Optional[tp.Mapping[str, tp.Any]] = None,
    ) -> None:
        if folder is None and not keep_in_ram:
            raise ValueError("At least folder or keep_in_ram should be activated")  # exca's words: MapInfra catches it
        self.store_settings = None if store_settings is None else check_store_settings(
            store_settings, "CacheDict(store_settings=...)")
        self.folder = None if folder is None else Path(folder)
        self.cache_type = cache_type
        # exca 0.5.x's argument (exca.steps passes 0o777), kept for its callers but not applied: a store's
        # modes follow the umask (FORMAT 1.1), so a group shares a store through setgid and umask 002
        self.permissions = permissions
        self.verify = verify
        self._keep_in_ram = keep_in_ram
        self._ram_data: dict[str, tp.Any] = {}
        self._store: tp.Optional[Store] = None
        self._reader: tp.Optional[IndexReader] = None
        self._read_once = False
        self._frozen = 0
        self._frozen_read = False
        self._local = threading.local()
        # exca's own cache in the folder, if any: its keys are served read-only (docs/EXCA.md)
        self._exca: tp.Optional[ExcaView] = None
        self._exca_mtime: tp.Optional[int] = None
        self._watch_exca()
        self._open(create=False)  # a folder without a store reads as empty; a broken store fails here

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.folder},keep_in_ram={self._keep_in_ram})"

    def __reduce__(self) -> tp.Any:
        return (self.__class__, (self.folder, self._keep_in_ram, self.cache_type, self.permissions, self.verify,
                                 self.store_settings))

    # ------------------------------------------------------------------ the store

    def _open(self, create: bool) -> tp.Optional[Store]:
        """The store of the folder, opened once it has one. Like exca, a folder that does not exist or holds
        no store yet reads as empty, and the store is created by the first write (``create``), safely when
        processes race (:func:`casket.open_or_init_store`)."""
        if self._store is None and self.folder is not None:
            if os.path.lexists(self.folder / "casket.json"):
                self._store = Store(self.folder)
            elif create:
                self._warn_if_exca_cache()
                self._store = open_or_init_store(self.folder, **self._new_store_settings())
            if self._store is not None:
                self._reader = IndexReader(self._store)
        return self._store

    def _new_store_settings(self) -> dict[str, tp.Any]:
        if self.store_settings is not None:
            return self.store_settings
        from .exca import store_settings  # the switch's, while it is on

        return store_settings()

    def _warn_if_exca_cache(self) -> None:
        """When the first write creates a store beside an exca cache, say what happens to exca's keys: served
        from exca's files (new values go to Casket), or, without exca installed, computed again; and name
        the command that moves them into the store to save the space."""
        assert self.folder is not None
        exca_files = holds_exca_cache(self.folder)
        if exca_files and self._exca is not None and self._exca.keys():
            warnings.warn(
                f"{self.folder} holds an exca cache ({len(exca_files)} index files such as {exca_files[0]!r}):"
                " its keys are still served, read-only through exca's reader, and new values go to the Casket"
                " store beside it, so the folder now holds both formats. To keep one copy, migrate it in place:"
                f" casket migrate '{self.folder}' --into '{self.folder}' --reclaim (docs/MIGRATION.md,"
                " docs/EXCA.md)",
                stacklevel=4)
        elif exca_files:
            warnings.warn(
                f"{self.folder} holds an exca cache ({len(exca_files)} index files such as {sorted(exca_files)[0]!r})"
                " that casket.CacheDict cannot read here (exca is not installed, or this exca version does not read"
                " that layout): its keys will be computed again. Migrate it first: "
                f"casket migrate '{self.folder}' --into '{self.folder}' (docs/MIGRATION.md, docs/EXCA.md)",
                stacklevel=4)

    @property
    def store(self) -> Store:
        """The Casket store of the folder (created if it has none yet)."""
        if self.folder is None:
            raise CasketError("this CacheDict has no folder (folder=None keeps values in RAM only)")
        store = self._open(create=True)
        assert store is not None
        return store

    def clear(self) -> None:
        """Empties the cache as exca's ``clear()`` does: forgets what is in RAM and removes everything in the
        folder (the whole store, not the folder itself, which keeps its permissions). Like exca's, it is not
        safe while other processes use the folder; the next write creates a new store."""
        self._ram_data.clear()
        self.close()  # this thread's writers kept from its last session, sealed before their files go
        self._store = None
        self._reader = None
        self._exca = None  # its files go with the rest, as with exca's clear()
        self._exca_mtime = None
        self._read_once = False
        if self.folder is None or not self.folder.exists():
            return
        for sub in self.folder.iterdir():
            if sub.is_dir() and not sub.is_symlink():
                shutil.rmtree(sub)
            else:
                sub.unlink()

    # ------------------------------------------------------------------ reading

    def _watch_exca(self) -> None:
        """Opens the view of an exca cache in the folder, also one that exca writers start after this
        CacheDict was made: looked for again only when the folder's mtime changes (one stat a read)."""
        if self._exca is not None or self.folder is None:
            return
        try:
            mtime = self.folder.stat().st_mtime_ns
        except OSError:
            return
        if mtime != self._exca_mtime:
            self._exca_mtime = mtime
            self._exca = ExcaView.open(self.folder)

    def _refresh(self, force: bool = False) -> None:
        if self._frozen and self._frozen_read and not force:
            return
        self._watch_exca()
        if self._reader is None and self._open(create=False) is None:
            return
        assert self._reader is not None
        self._reader.refresh()
        self._read_once = True
        if self._frozen:
            self._frozen_read = True

    @contextlib.contextmanager
    def frozen_cache_folder(self) -> tp.Iterator[None]:
        """Read the index at most once inside this block (like exca)."""
        self._frozen += 1
        try:
            yield
        finally:
            self._frozen -= 1
            if not self._frozen:
                self._frozen_read = False

    def _disk_keys(self) -> tp.Iterable[str]:
        self._refresh()
        keys = () if self._reader is None else self._reader.keys()
        if self._exca is None:
            return keys
        # the union: a key with any Casket line (a value, or a tombstone that hides exca's) is Casket's
        reader = self._reader
        return [*keys, *(k for k in self._exca.keys() if reader is None or reader.latest_ts(k) is None)]

    def _from_exca(self, key: str) -> bool:
        """True when ``key`` is served by exca's files: exca has it and the store has no line for it (a
        Casket value wins; a Casket tombstone hides exca's value, which is never modified)."""
        if self._exca is None:
            return False
        if self._reader is not None and self._reader.latest_ts(key) is not None:
            return False
        return key in self._exca

    def keys(self) -> tp.Iterator[str]:
        # as exca: the keys in RAM and on disk (a RAM-only dict has only the former)
        disk = self._disk_keys()
        return iter(set(self._ram_data) | set(disk) if self._ram_data else list(disk))

    def __iter__(self) -> tp.Iterator[str]:
        return self.keys()

    def __len__(self) -> int:
        if self._ram_data:
            return len(set(self._ram_data) | set(self._disk_keys()))
        return len(self._disk_keys())

    def __bool__(self) -> bool:
        return bool(self._ram_data) or len(self) > 0

    def store_keys(self) -> list[str]:
        """The keys the Casket store holds, without those served from an exca cache in the folder."""
        self._refresh()
        return [] if self._reader is None else list(self._reader.keys())

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key in self._ram_data:
            return True
        # as exca's: a key already in view answers without listing the index again (a warm MapInfra or
        # exca.steps hit asks once per item); only a miss refreshes, so a key written meanwhile is found
        if self._read_once and self._reader is not None and self._reader.has(key):
            return True
        self._refresh()
        return (self._reader is not None and self._reader.has(key)) or self._from_exca(key)

    def entry(self, key: str) -> tp.Optional[Entry]:
        """The winning index entry of ``key`` (value tree and blobs), or None."""
        self._refresh()
        return None if self._reader is None else self._reader.get(key)

    def __getitem__(self, key: str) -> X:
        if self._keep_in_ram and (key in self._ram_data or self.folder is None):
            return self._ram_data[key]  # type: ignore[no-any-return]
        reader = self._reader
        if self._read_once and reader is not None:
            slot = reader.slot(key)
            # the fast path of an array line the index's block pass took, whose payload a sealed pack holds
            # raw: one call, verified as the general path verifies; None sends it to the general path
            if type(slot) is tuple and self._store is not None:
                block, i = slot
                value = row_array(self._store, block.rows[i])
                if value is not None:
                    if self._keep_in_ram:
                        self._ram_data[key] = value
                    return value  # type: ignore[no-any-return]
        # A key already in view is read without listing the index again (exca reads known keys from its
        # in-memory table too); only a miss refreshes, so a key written meanwhile by others is found.
        entry = self._reader.get(key) if self._read_once and self._reader is not None else None
        # the same for a key exca's files serve: the store, as last read, has no line for it
        served = entry is None and self._read_once and self._from_exca(key)
        if entry is None and not served:
            entry = self.entry(key)
        if entry is None or self._store is None:
            if not served and not self._from_exca(key):
                raise KeyError(key)
            assert self._exca is not None
            value = self._exca[key]
            if self._keep_in_ram:
                self._ram_data[key] = value
            return value  # type: ignore[no-any-return]
        value = decode(self._store, entry.value, key=key, verify=self.verify)
        if self._keep_in_ram:
            self._ram_data[key] = value
        return value  # type: ignore[no-any-return]

    def get(self, key: str, default: tp.Any = None) -> tp.Any:
        try:
            return self[key]
        except KeyError:
            return default

    def values(self) -> tp.Iterator[X]:
        for key in self.keys():
            yield self[key]

    def items(self) -> tp.Iterator[tuple[str, X]]:
        for key in self.keys():
            yield key, self[key]

    # ------------------------------------------------------------------ writing

    @property
    def _writer(self) -> tp.Optional[IndexWriter]:
        """This thread's index writer, None before the session's first change."""
        return getattr(self._local, "writer", None)

    @property
    def _in_session(self) -> bool:
        return getattr(self._local, "session", False)  # type: ignore[no-any-return]

    def _session_writer(self, what: str) -> IndexWriter:
        """This thread's index writer, opened (and the store created) by the session's first change."""
        if not self._in_session:
            raise RuntimeError(f"Cannot {what} outside of a write() context")
        writer: tp.Optional[IndexWriter] = self._local.writer
        if writer is None:
            kept = take_kept(self.store)  # this thread's last session's index file and pack, still open
            if kept is not None:
                writer = self._local.writer = kept.index_writer
                self.store.resume_packing(kept.pack_writer)
            else:
                writer = self._local.writer = IndexWriter(self.store)
                self.store.begin_packing()  # the session's small payloads go to one pack (FORMAT 3.7)
        return writer

    @contextlib.contextmanager
    def write(self) -> tp.Iterator["CacheDict[X]"]:
        """Write session: its changes are committed (durable) when it ends. One index file and one pack per
        thread, kept open from one session to the next and sealed once the thread has opened no session for
        a few seconds (casket.kept, FORMAT 5.5), or by :meth:`close`. As exca's, it makes the folder; the store and the index file are made by the first write in it, so a session that writes
        nothing (a clear of absent keys) leaves no store behind."""
        if self.folder is None:  # RAM only, as exca: nothing to open
            yield self
            return
        if self._in_session:
            raise RuntimeError("Cannot re-open an already open writer")
        keep_seconds()  # a bad CASKET_KEEP_SECONDS fails here, before anything is written
        self.folder.mkdir(parents=True, exist_ok=True)
        self._local.session = True
        self._local.writer = None
        try:
            yield self
        finally:
            writer = self._local.writer
            self._local.writer = None
            self._local.session = False
            if writer is not None:
                self._end_session(writer)

    def _end_session(self, writer: IndexWriter) -> None:
        """Commits the session: once this returns every line is durable (FORMAT 5.5). The index file and the
        pack stay open for the thread's next session and are sealed later (casket.kept); after a failed
        commit, or with ``CASKET_KEEP_SECONDS=0``, they are sealed now."""
        try:
            keep = keep_seconds()  # checked when the session began: this cannot fail unless it changed
        except CasketError:
            keep = 0.0
        committed = False
        try:
            if keep > 0:
                writer.commit()  # the pack's records flushed, then the last lines
                committed = True
        finally:
            if not committed:  # sealed now: the last lines and the seal line, then the pack (flushed already)
                try:
                    writer.close()
                finally:
                    writer.store.end_packing()
        if committed:
            packs = writer.store.end_packing(keep=True)
            if packs is not None:
                packs.seal_if_large()  # a session's worth of records is read faster through an index
            KeptWriters(writer, packs, keep)

    def close(self) -> None:
        """Seals this thread's index file and pack now, kept open after its last ``write()`` session for the
        next one (they are sealed anyway a few seconds after it, and when the process exits). Everything
        written was committed when its session ended, so this is never needed for durability."""
        if self._store is not None:
            end_kept_for(self._store)

    def flush(self) -> None:
        """Commits this thread's batch now (durability ``group``, FORMAT 5.5): once it returns, every key set
        before it survives a crash. A no-op outside a session and for the other durabilities."""
        writer = self._writer
        if writer is not None:
            writer.commit()

    @contextlib.contextmanager
    def writer(self) -> tp.Iterator["CacheDict[X]"]:
        """Deprecated name of :meth:`write`, kept as exca keeps it (with exca's DeprecationWarning)."""
        warnings.warn("writer() is deprecated, use write() instead", DeprecationWarning, stacklevel=3)
        with self.write():
            yield self

    def __setitem__(self, key: str, value: X) -> None:
        # the common case fused (issue 12): a plain C-contiguous array packed in a group-commit session whose
        # writer is open; the same checks, bytes and order as below, in about a third of the calls
        if type(value) is np.ndarray and type(key) is str and key and _FAST_PUTS:
            writer = getattr(self._local, "writer", None)  # set only inside a session, by its first change
            if (writer is not None and writer._group and self.cache_type in _ARRAY_TYPES
                    and self._put_packed(writer, key, value)):
                return
        if not isinstance(key, str):
            raise TypeError(f"Non-string keys are not allowed (got {key!r})")
        if not key:
            raise ValueError("keys must be non-empty strings")
        try:
            key.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"key {key!r} is not valid Unicode text: {e}") from None
        if self.folder is None:  # RAM only: no write() needed, as exca
            if key in self._ram_data:
                raise ValueError(f"Overwriting a key is currently not implemented ({key=})")
            self._ram_data[key] = value
            return
        writer = self._session_writer("write")
        if not self._read_once:
            self._refresh()
        assert self._reader is not None  # opened with the writer
        # as exca: judged on the view as last read (concurrent writers of one key all succeed)
        winner = self._reader.winner(key)
        if (winner is not None and not winner.deleted) or key in self._ram_data or self._from_exca(key):
            raise ValueError(f"Overwriting a key is currently not implemented ({key=})")
        after = None if winner is None else self._later_than(key, winner.ts)
        store = writer.store
        # a small array packed in the session: the value tree without the walk (exca's rules change nothing
        # for a non-empty array, and no handler is asked: encode() takes any plain array as MemmapArray)
        packed = (packed_array(store, value) if type(value) is np.ndarray and value.size and store.pack_max
                  and self.cache_type in _ARRAY_TYPES else None)
        if packed is not None:
            node, payload, value_json = packed
            blobs = [(payload.hash, payload.size)]
            head, tail = entry_line_parts(key, value_json, blobs)
            ts = writer.append(lambda ts: b"%s%d%s" % (head, ts, tail), blobs,
                               lambda h, size: store.put_bytes(payload.data, known_hash=h), after=after)
            wid, line = writer.last_origin  # type: ignore[misc]
            self._reader.observe(Entry(key, ts, wid, line, False, node, [[payload.hash, payload.size]]))
            return
        # while the switch is on, exca's rules: its errors, and its JSON rendering (docs/EXCA.md)
        value, cache_type = excarules.prepare(value, self.cache_type)
        with contextlib.ExitStack() as staged:  # exca handlers' files, kept until the line is written
            node, payloads, value_json = encode_json(store, value, cache_type, key, staged)
            blobs = [(p.hash, p.size) for p in payloads]
            sources = {p.hash: p for p in payloads}

            def republish(h: str, size: int) -> None:
                p: Payload = sources[h]
                if isinstance(p.data, Path):
                    store.put_file(p.data)
                else:
                    store.put_bytes(p.data, known_hash=h)

            head, tail = entry_line_parts(key, value_json, blobs)  # the value is rendered once

            # stamped later than the key's winner in this view, even if its writer's clock ran ahead (FORMAT
            # 5.4); the index is not listed again per write (one lstat per index file made small writes 2-4x
            # slower)
            ts = writer.append(lambda ts: b"%s%d%s" % (head, ts, tail), blobs, republish, after=after)
        wid, line = writer.last_origin  # type: ignore[misc]
        self._reader.observe(
            Entry(key=key, ts=ts, writer=wid, line=line, deleted=False, value=node, blobs=[list(b) for b in blobs])
        )
        # as exca: the value is not kept in RAM here; the first read loads it from the store and keeps that
        # (so a read returns what the store returns, a memory-mapped array for instance, written or not)

    def _put_packed(self, writer: IndexWriter, key: str, arr: np.ndarray) -> bool:
        """The fast path of :meth:`__setitem__`; False, having written nothing, when the value is not one
        it takes (empty, not C-contiguous, inlined, not packed)."""
        if not key.isascii():
            try:
                key.encode("utf-8")
            except UnicodeEncodeError as e:
                raise ValueError(f"key {key!r} is not valid Unicode text: {e}") from None
        if not self._read_once:
            self._refresh()
        reader = self._reader
        assert reader is not None  # opened with the writer
        winner = reader.winner(key)
        if (winner is not None and not winner.deleted) or key in self._ram_data or (
                self._exca is not None and self._from_exca(key)):
            raise ValueError(f"Overwriting a key is currently not implemented ({key=})")
        after = None if winner is None else self._later_than(key, winner.ts)
        if not arr.size or not arr.flags.c_contiguous:
            return False
        name, form = _array_form("MemmapArray", arr)  # TypeError for a dtype raw bytes cannot hold
        size = arr.nbytes
        store = writer.store
        if size <= store.inline_max or size >= store.pack_max:
            return False
        h = store.put_small_array(arr, size)
        if h is None:
            return False
        hb = h.encode("ascii")
        # the bytes entry_line_parts gives for packed_array's node (test_small_values compares the two)
        ts = writer.append_parts(
            b'{"key":%s,"ts":' % _encode_str(key).encode("utf-8"),
            b',"value":{"#type":"MemmapArray","blob":"%s","size":%d,%s,"blobs":[["%s",%d]]}\n' % (
                hb, size, form, hb, size),
            ((h, size),), lambda h, size, data=arr: store.put_bytes(data, known_hash=h), after)
        wid, line = writer.last_origin  # type: ignore[misc]
        reader.observe(Entry(key, ts, wid, line, False,
                             {"#type": "MemmapArray", "blob": h, "size": size, "dtype": name, "shape": list(arr.shape)},
                             [[h, size]]))
        return True

    def __delitem__(self, key: str) -> None:
        if self.folder is None:
            del self._ram_data[key]
            return
        if not self._in_session:
            if excarules.delete_needs_write():
                raise RuntimeError("Cannot delete outside of a write() context")
            with self.write():  # exca 0.5.x deletes outside write() too
                return self.__delitem__(key)
        self._refresh()
        # a key served from exca's files is deleted by a tombstone in the store, which hides it: exca's
        # files are never modified
        live = self._reader is not None and self._reader.get(key) is not None
        if not live and key not in self._ram_data and not self._from_exca(key):
            raise KeyError(key)
        writer = self._session_writer("delete")
        assert self._reader is not None
        self._ram_data.pop(key, None)
        ts = writer.append(lambda ts: tombstone_line(key, ts), after=self._winner_ts(key))
        wid, line = writer.last_origin  # type: ignore[misc]
        self._reader.observe(Entry(key=key, ts=ts, writer=wid, line=line, deleted=True))

    def _winner_ts(self, key: str) -> tp.Optional[int]:
        """The ts of the key's winner (tombstones included) among the lines read: a write must be later."""
        ts = None if self._reader is None else self._reader.latest_ts(key)
        return None if ts is None else self._later_than(key, ts)

    @staticmethod
    def _later_than(key: str, ts: int) -> int:
        """``ts``, the key's winner's, when a write can come after it."""
        if ts >= (1 << 63) - 1:
            raise CasketError(
                f"key {key!r} has an entry with ts {ts}, the greatest a timestamp can be: no write can come "
                "after it (its writer's clock is wrong; docs/FORMAT.md 5.4)")
        return ts

    # ------------------------------------------------------------------ compute once

    def get_or_compute(self, key: str, compute: tp.Callable[[], X], ttl: float = 60.0,
                       timeout: float = 3600.0) -> X:
        """The value of ``key``; if absent, computes it once across every process and host sharing the
        store (docs/CLAIMS.md): claims the key, computes, stores, releases. When another worker holds
        the claim, waits (with backoff, up to ``timeout`` seconds) and returns that worker's result."""
        return self.get_or_compute_many([key], lambda keys: {keys[0]: compute()}, ttl, timeout)[key]

    def get_or_compute_many(self, keys: tp.Iterable[str], compute: tp.Callable[[list[str]], dict[str, X]],
                            ttl: float = 60.0, timeout: float = 3600.0) -> dict[str, X]:
        """The batch form, like exca's MapInfra: claims the missing keys it can, calls ``compute`` once
        with those (a list), stores its results, then waits for the keys other workers compute."""
        from .claims import ClaimBoard, ClaimTimeout, HeldClaim

        board = ClaimBoard(self.store, ttl)
        results: dict[str, X] = {}
        pending = sorted(set(keys))
        deadline = time.monotonic() + timeout
        delay = 0.02
        while pending:
            claimed: list[HeldClaim] = []
            waiting: list[str] = []
            try:
                for key in pending:
                    if key in self:  # refreshes: another worker may have stored it
                        results[key] = self[key]
                        continue
                    got = board.try_claim(key)
                    if not isinstance(got, HeldClaim):
                        waiting.append(key)
                    elif key in self:  # stored just before the previous holder released
                        got.release()
                        results[key] = self[key]
                    else:
                        claimed.append(got)
                if claimed:
                    mine = [claim.key for claim in claimed]
                    values = compute(mine)
                    missing = [key for key in mine if key not in values]
                    if missing:
                        raise KeyError(f"compute returned no value for {missing[:3]}")
                    with contextlib.ExitStack() as stack:
                        if not self._in_session:
                            stack.enter_context(self.write())
                        for key in mine:
                            self[key] = values[key]
                            results[key] = values[key]
                    delay = 0.02
                elif waiting:
                    if time.monotonic() > deadline:
                        raise ClaimTimeout(f"timed out after {timeout} s waiting for other workers to compute "
                                           f"{len(waiting)} keys, first {waiting[0]!r}")
                    time.sleep(delay)
                    delay = min(delay * 1.5, 1.0)
            finally:
                for claim in claimed:
                    claim.release()
            pending = waiting
        return results

    def clear_ram(self) -> None:
        self._ram_data.clear()
