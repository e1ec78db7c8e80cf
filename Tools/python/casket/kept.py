"""A thread's index file and pack, kept open from one ``write()`` session to the next (FORMAT 5.5).

A session that ended has committed everything (its lines and the packed bytes they name are durable), so
what remains, the seal line of the index file and the seal of the pack, can wait: a loop of short
sessions (``with cd.write(): cd[k] = v`` once per value, as exca users write) then appends to one index
file and one pack, where sealing at every session end made three files and four flushes a value. The
writers are sealed once their thread has opened no session for :func:`keep_seconds` (5 s), at the process's
exit (``atexit``, and multiprocessing's exit hooks, which its workers run instead; a ``Pool``'s workers,
killed by SIGTERM, seal as every session ends), or by :func:`end_kept`; a process killed meanwhile
leaves an unsealed index file and an open pack, which readers, compaction and GC take as they take any
killed writer's (FORMAT 3.7, 5.6).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import typing as tp

from . import timers
from .store import CasketError, current_pid

KEEP_SECONDS: tp.Optional[float] = None  # None: CASKET_KEEP_SECONDS, else 5 (0: sealed as every session ends)
DEFAULT_KEEP_SECONDS = 5.0  # longer than the gap between two sessions of a loop; what waits is committed

_log = logging.getLogger("casket")
# (thread, store root) -> its kept writers, every one of this process (end_kept() seals them): per thread
# and store, not per CacheDict, so that a CacheDict made anew for every value (or sent to every task) takes
# the writers the last one kept; one leaves the table only once its seal has finished
_BY_PLACE: "dict[tuple[int, str], KeptWriters]" = {}
_KEPT_LOCK = threading.Lock()
_HOOKED = [0]  # the pid that has registered multiprocessing's exit hook (a forked child clears its registry)
_AT_EXIT = [False]  # atexit's hook, inherited by forked children
_POOL_WORKER: list = [0, False]  # the pid it was judged for, and whether it is a Pool's worker


def keep_seconds() -> float:
    """How long a thread's writers stay open after its last session: :data:`KEEP_SECONDS` if set, else the
    environment's ``CASKET_KEEP_SECONDS`` (0 seals them at the end of every session), else 5 (0 in a
    ``multiprocessing.Pool`` worker)."""
    if KEEP_SECONDS is not None:
        return KEEP_SECONDS
    raw = os.environ.get("CASKET_KEEP_SECONDS")
    if raw is None:
        return 0.0 if _in_pool_worker() else DEFAULT_KEEP_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise CasketError(f"CASKET_KEEP_SECONDS={raw!r}: expected a number of seconds, 0 or more (0 seals a "
                          "write session's index file and pack when it ends)")
    return value


def _in_pool_worker() -> bool:
    """True in a worker of a ``multiprocessing.Pool``: ``Pool.terminate()``, which its ``with`` block runs
    at its end, kills them with SIGTERM, and neither ``atexit`` nor multiprocessing's hooks run, so what they
    kept would stay unsealed, each pack with its lease, until GC. Their tasks rebuild the ``CacheDict`` they
    are sent, so keeping its writers from one task to the next saved nothing."""
    if _POOL_WORKER[0] != current_pid():
        import multiprocessing

        _POOL_WORKER[0], _POOL_WORKER[1] = current_pid(), "PoolWorker-" in multiprocessing.current_process().name
    return bool(_POOL_WORKER[1])


class KeptWriters:
    """The index writer and pack writer of one thread's ended session, until the thread's next session takes
    them (:meth:`take`) or they are sealed (:meth:`end`: by a timer, at exit, or on request)."""

    def __init__(self, index_writer: tp.Any, pack_writer: tp.Any, keep: float) -> None:
        self.index_writer, self.pack_writer = index_writer, pack_writer
        self.pid = current_pid()
        self._lock = threading.Lock()
        self._state = "kept"  # then "taken" or "ended", once
        self._done = threading.Event()  # set once end() has sealed
        store = index_writer.store
        self.place = _place(store)
        self.identity = _identity(store)
        _hook_exit()
        with _KEPT_LOCK:
            previous = _BY_PLACE.get(self.place)
            _BY_PLACE[self.place] = self
        if previous is not None:
            previous.end()  # another CacheDict's of this thread and store, kept meanwhile: one is enough
        self._timer = timers.after(keep, self.end)

    def take(self, store: tp.Any) -> bool:
        """For the thread's next session in ``store``: True if the writers are still open, are that store's
        (the same ``casket.json``: not those of a store removed since, ``CacheDict.clear()``), and now the
        session's, their index writer working for ``store`` from now on."""
        if self.pid != current_pid():
            return False  # a forked child's copy (its lock may have been held at the fork)
        with self._lock:
            mine = self._state == "kept"
            if mine and self.identity is not None and _identity(store) == self.identity:
                self.index_writer.store = store  # same folder and settings; its session's packs are there
                self._state = "taken"
                self._timer.cancel()  # take_kept() took it out of the table
                return True
        if mine:
            self.end()  # another store's: sealed now rather than at its timer
        return False

    def end(self) -> None:
        """Seals the index file (its seal line) and the pack (its index). Nothing is left to commit, so a
        failure here loses nothing: the file stays unsealed, the pack is sealed by others (FORMAT 3.7)."""
        if self.pid != current_pid():
            return  # a forked child's copy: the parent seals its own
        with self._lock:
            if self._state != "kept":
                if self._state == "ended":
                    self._done.wait()
                return
            self._state = "ended"
        self._timer.cancel()
        try:
            if self.pack_writer is not None and self.pack_writer.pid == self.pid:
                self.pack_writer.abandon_if_gone()  # a store removed meanwhile: nothing to publish there
            try:
                self.index_writer.close()  # the seal line; seals the pack in a thread meanwhile
            finally:
                if self.pack_writer is not None and self.pack_writer.pid == self.pid:
                    self.pack_writer.seal()  # a no-op once sealed
        except Exception as e:  # nothing of it was needed for durability
            _log.warning("casket: sealing the index file or the pack of an ended write session failed (%s); "
                         "others seal them (docs/FORMAT.md 3.7, 5.6)", e)
        finally:
            self._done.set()
            # only now: end_kept() at exit waits for a seal a timer began (the interpreter does not wait
            # for its thread, and a pack left half sealed keeps its lease and no index until GC seals it)
            with _KEPT_LOCK:
                if _BY_PLACE.get(self.place) is self:
                    del _BY_PLACE[self.place]


def _place(store: tp.Any) -> tuple[int, str]:
    return threading.get_ident(), os.path.abspath(store.root)


def _identity(store: tp.Any) -> tp.Optional[tuple[int, int]]:
    try:
        st = os.stat(store.root / "casket.json")
    except OSError:
        return None
    return st.st_dev, st.st_ino


def take_kept(store: tp.Any) -> tp.Optional[KeptWriters]:
    """The writers this thread kept from its last session in ``store``, now the caller's; None if there are
    none (or they were sealed meanwhile, or belong to a store that was replaced)."""
    with _KEPT_LOCK:
        kept = _BY_PLACE.pop(_place(store), None)
    return kept if kept is not None and kept.take(store) else None


def end_kept_for(store: tp.Any) -> None:
    """Seals the writers this thread kept from its last session in ``store``."""
    with _KEPT_LOCK:
        kept = _BY_PLACE.get(_place(store))
    if kept is not None:
        kept.end()


def end_kept() -> None:
    """Seals every index file and pack this process keeps from ended sessions, now (otherwise
    :func:`keep_seconds` after their thread's last session, or at exit)."""
    with _KEPT_LOCK:
        kept = list(_BY_PLACE.values())
    for k in kept:
        k.end()


def _hook_exit() -> None:
    pid = current_pid()
    if _HOOKED[0] == pid:
        return
    _HOOKED[0] = pid
    if not _AT_EXIT[0]:
        _AT_EXIT[0] = True
        atexit.register(end_kept)
    # multiprocessing's workers leave through os._exit, after its own exit function, which runs these
    try:
        from multiprocessing import util

        util.Finalize(None, end_kept, exitpriority=100)
    except Exception:  # pragma: no cover - multiprocessing unavailable
        pass


def _forked() -> None:
    global _KEPT_LOCK
    # the parent's writers are the parent's to seal; its threads may have held the lock at the fork
    _KEPT_LOCK = threading.Lock()
    _BY_PLACE.clear()


os.register_at_fork(after_in_child=_forked)
