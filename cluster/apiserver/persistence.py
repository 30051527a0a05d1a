"""SQLite storage under the in-memory store, for ``kubetrain cluster --data DIR``.

The store stays the source of truth while the server runs; this backend only makes its state
survive a restart. ``DIR/kubetrain.db`` (stdlib sqlite3, WAL mode) holds every object as an orjson
blob keyed by (group, plural, namespace, name), plus the resourceVersion counter. The blob is the
store's own bytes for the object (``store.Record``), written and read back unchanged: persistence
serializes nothing and a reload parses each object once, to index it.

Write path: ``ObjectStore`` hands ``append`` the changes of one event-loop iteration; ``append`` only
queues them (no I/O, no serialization on the loop). A writer thread takes everything queued
(after ``commit_delay_seconds``, 0 by default), keeps the last change per object, and commits it
in one transaction; while it commits, new batches accumulate, so under load transactions grow
instead of falling behind (group commit). After each transaction it raises ``durable_rv`` and
wakes, on the event loop, every request waiting for an rv up to it (``wait_rv``).

Durability (what this backend guarantees):

- A write is acknowledged only once it is committed: the server awaits
  ``ObjectStore.wait_durable`` (this backend's ``wait_rv``) before it answers any mutating
  request, as kube-apiserver answers after etcd's commit. Committed transactions survive a crash
  of the process (SIGKILL, OOM: WAL, ``synchronous=NORMAL``); the last transactions may be lost
  on power loss or an OS crash.
- Watchers see a change at commit time in memory, before it is durable, so a client may have
  seen resourceVersions that a crash then loses. So that resourceVersions never go backwards,
  the store hands out only rvs below ``rv_limit`` = last committed rv + ``rv_gap`` (100,000),
  and each transaction commits that limit (``meta.rv_limit``) with the changes. A server
  restarted after a crash continues from the committed limit, above every rv handed out (so a
  crash skips up to ``rv_gap`` rvs; a 410 for older watches and continue tokens follows). Should
  the store ever get ``rv_gap`` changes ahead of the writer, it waits (blocking) for the writer
  to commit; at any realistic rate the writer is a few transactions behind.
- ``close()`` (a clean stop: Ctrl-C, SIGTERM, ``EmbeddedCluster.stop``) writes everything and
  removes the limit: the next start continues from the exact last rv.
- Writing fails (disk full, I/O error): requests waiting for a change that was not committed are
  answered 500 InternalError "persistence failed" (the change stays in memory until a restart),
  and from then on every write is refused with that error before it changes anything; reads keep
  working. The data directory holds the last committed state; restart to resume.

On start every object comes back with its uid and resourceVersion and the counter continues
from the last committed one after a clean stop, from the committed limit after a crash (never
backwards). CRDs come first so the server serves them before their custom resources are read.
Watch history is not persisted: a watch (or a continue token) from a resourceVersion before the
restart gets 410 Expired and the client relists, as after an etcd compaction.

One process at a time: the directory is locked (``DIR/kubetrain.lock``); a second server on it
fails with a clear error.
"""

from __future__ import annotations

import asyncio
import fcntl
import heapq
import itertools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from .resources import StorageKey
from .store import Change
from .watch import DELETED

__all__ = ["DB_FILE", "RV_GAP", "PersistenceError", "SqliteBackend"]

log = logging.getLogger(__name__)

DB_FILE = "kubetrain.db"
LOCK_FILE = "kubetrain.lock"
SCHEMA_VERSION = 1
RV_GAP = 100_000
"""How far the store may run ahead of the committed rv (``SqliteBackend.rv_gap``): what a
restart after a crash skips, so it continues above every resourceVersion handed out."""
_CRD_KEY: StorageKey = ("apiextensions.k8s.io", "customresourcedefinitions")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL,
    plural TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (grp, plural, namespace, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

_STOP = object()


class PersistenceError(RuntimeError):
    """The data directory cannot be used (locked, newer schema, unwritable); says which and why."""


class SqliteBackend:
    """A ``DurableBackend`` in ``data_dir`` (created if missing). Call ``close()`` at the end.

    ``commit_delay_seconds`` (default 0): how long the writer lets changes gather after the first
    one before it commits. Writes are acknowledged only once committed, so a delay adds to every
    write's latency; under load batches gather anyway while a transaction runs.
    ``rv_gap``: how far the store may hand out rvs beyond the committed one (``RV_GAP``).

    Construction reserves this run's rvs (committed before anything is served): the store may
    hand out rvs below ``rv_limit`` = the start rv + ``rv_gap``; each transaction raises it to
    its own rv + ``rv_gap``.

    Thread contract: ``load``, ``append``, ``wait_durable``, ``wait_rv`` and ``close`` are
    called from the event loop's thread; only the writer thread touches the write connection
    (and ``close``, once it has stopped). ``durable_rv``, ``rv_limit`` and ``error`` are set by
    the writer thread under ``_cond``, read anywhere.
    """

    def __init__(
        self, data_dir: str, *, commit_delay_seconds: float = 0.0, rv_gap: int = RV_GAP
    ) -> None:
        if rv_gap < 2:
            raise ValueError(f"rv_gap must be at least 2, not {rv_gap}")
        self.data_dir = data_dir
        self.commit_delay_seconds = commit_delay_seconds
        self.rv_gap = rv_gap
        try:
            os.makedirs(data_dir, exist_ok=True)
        except OSError as exc:
            raise PersistenceError(
                f"--data {data_dir}: cannot create the directory: {exc}"
            ) from exc
        self.path = os.path.join(data_dir, DB_FILE)
        self._lock_fd = _lock_dir(data_dir)
        try:
            self._db = _connect(self.path)
            with self._db:
                self._db.executescript(_SCHEMA)
                _check_schema(self._db, self.path)
                self._start_rv = _reserve(self._db, rv_gap)
        except BaseException:
            os.close(self._lock_fd)
            raise
        self.durable_rv = self._start_rv
        self.rv_limit = self._start_rv + rv_gap
        # Invariant: _queued - _written is the number of batches handed over and not committed.
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._queued = 0
        self._written = 0
        self.error: BaseException | None = None
        self._closed = False
        # requests waiting in wait_rv: a heap of (rv, seq, future), on _loop; under _cond
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_seq = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="kubetrain-sqlite", daemon=True)
        self._thread.start()

    # -- StorageBackend ---------------------------------------------------------------------

    def load(self) -> tuple[int, Iterable[tuple[StorageKey, bytes]]]:
        """The rv to continue from and the objects (their bytes as committed), CRDs first.

        The rv is the last committed one after a clean stop, the committed ``rv_limit`` after a
        crash: above every rv the previous run handed out."""
        conn = _connect(self.path)
        try:
            rows = conn.execute(
                "SELECT grp, plural, data FROM objects "
                "ORDER BY (grp = ? AND plural = ?) DESC, grp, plural",
                _CRD_KEY,
            ).fetchall()
        finally:
            conn.close()
        return self._start_rv, [((grp, plural), bytes(data)) for grp, plural, data in rows]

    def append(self, changes: Sequence[Change]) -> None:
        """Queue one batch for the writer thread (no I/O here)."""
        if self._closed:
            raise PersistenceError(f"{self.path}: append after close()")
        with self._cond:
            self._queued += 1
        self._queue.put(changes)

    # -- lifecycle --------------------------------------------------------------------------

    def wait_durable(self, timeout: float | None = None) -> bool:
        """Block until every batch queued so far is committed (or writing failed); False on
        timeout.

        Blocking: from async code use ``wait_rv`` (the store's ``_make_room`` blocks on
        purpose).
        """
        with self._cond:
            target = self._queued
            return self._cond.wait_for(
                lambda: self._written >= target or self.error is not None, timeout
            )

    async def wait_rv(self, rv: int) -> None:
        """Return once every change up to ``rv`` is committed; raise ``PersistenceError`` when
        writing failed first. The writer wakes all waiters of a transaction at once."""
        if self.durable_rv >= rv:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:  # against the writer: check and register as one step
            if self.durable_rv >= rv:
                return
            failed = self.error is not None
            if not failed:
                self._loop = loop
                heapq.heappush(self._waiters, (rv, next(self._waiter_seq), future))
        if failed:
            raise self._failure()
        await future

    def _failure(self) -> PersistenceError:
        return PersistenceError(f"{self.path}: writing failed: {self.error}")

    def _wake(self) -> None:
        """On the loop: resolve the waiters whose rv is committed (all of them, failed)."""
        with self._cond:
            failed = self.error is not None
            ready: list[asyncio.Future[None]] = []
            while self._waiters and (failed or self._waiters[0][0] <= self.durable_rv):
                ready.append(heapq.heappop(self._waiters)[2])
        for future in ready:
            if future.done():  # its request was cancelled
                continue
            if failed:
                future.set_exception(self._failure())
            else:
                future.set_result(None)

    def close(self) -> None:
        """Write everything queued, stop the writer, release the directory. Idempotent.

        Call it after the store's last ``flush``. Once everything is written, the rv limit is
        removed: the next start continues from the exact last rv. Raises ``PersistenceError``
        when the writer failed (the state on disk is the last committed one).
        """
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        if self.error is None:
            try:
                with self._db:
                    self._db.execute(_SET_RV, (self.durable_rv,))
                    self._db.execute("DELETE FROM meta WHERE key = 'rv_limit'")
            except sqlite3.Error as exc:  # the limit stays: a crash-like restart, still correct
                log.warning("%s: could not record the clean stop: %s", self.path, exc)
        self._db.close()
        os.close(self._lock_fd)
        if self.error is not None:
            raise self._failure() from self.error

    # -- writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            batches = [self._queue.get()]
            if self.commit_delay_seconds > 0 and batches[0] is not _STOP:
                time.sleep(self.commit_delay_seconds)  # let a burst gather: fewer transactions
            while True:
                try:
                    batches.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batches[-1] is _STOP or _STOP in batches:
                stop = True
                batches = [b for b in batches if b is not _STOP]
            committed = 0
            if batches and self.error is None:
                try:
                    committed = self._write(batches)
                except Exception as exc:  # disk full, I/O error: keep serving reads from memory
                    log.error(
                        "persistence to %s failed, writes are refused from now on: %s",
                        self.path,
                        exc,
                    )
                    self.error = exc
            with self._cond:
                self._written += len(batches)
                if self.error is not None:
                    self.rv_limit = -1  # the store refuses every further write
                elif committed > self.durable_rv:
                    self.durable_rv = committed
                    self.rv_limit = committed + self.rv_gap
                self._cond.notify_all()
                loop = self._loop if self._waiters else None
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(self._wake)
                except RuntimeError:  # the loop is closed: nobody waits any more
                    pass

    def _write(self, batches: list[Sequence[Change]]) -> int:
        """Commit ``batches`` (the last change per object) in one transaction with the new rv
        and rv limit; return the highest rv committed."""
        last: dict[tuple[str, str, str, str], Change] = {}
        rv = 0
        for batch in batches:
            for change in batch:
                group, plural = change.key
                last[(group, plural, change.namespace, change.name)] = change
                rv = max(rv, change.rv)
        # the bytes the store committed are written as they are: no serialization here
        upserts = [(*k, c.data) for k, c in last.items() if c.type != DELETED]
        deletes = [k for k, c in last.items() if c.type == DELETED]
        with self._db:
            if upserts:
                self._db.executemany(
                    "INSERT OR REPLACE INTO objects (grp, plural, namespace, name, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    upserts,
                )
            if deletes:
                self._db.executemany(
                    "DELETE FROM objects WHERE grp = ? AND plural = ? AND namespace = ? AND name = ?",
                    deletes,
                )
            self._db.execute(_SET_RV, (rv,))
            self._db.execute(_SET_RV_LIMIT, (rv + self.rv_gap,))
        return rv


_SET_RV = (
    "INSERT INTO meta (key, value) VALUES ('rv', ?) "
    "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)"
)
_SET_RV_LIMIT = (
    "INSERT INTO meta (key, value) VALUES ('rv_limit', ?) "
    "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)"
)


def _reserve(conn: sqlite3.Connection, rv_gap: int) -> int:
    """The rv a new run starts from, with the limit for it committed (in ``conn``'s open
    transaction): the last rv after a clean stop (no limit stored), else the stored limit, which
    is above every rv the previous run handed out."""
    values = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('rv', 'rv_limit')"))
    start = max(int(values.get("rv", 0)), int(values.get("rv_limit", 0)))
    conn.execute(_SET_RV_LIMIT, (start + rv_gap,))
    return start


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _check_schema(conn: sqlite3.Connection, path: str) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
        )
    elif int(row[0]) != SCHEMA_VERSION:
        raise PersistenceError(
            f"{path}: schema version {row[0]} is not {SCHEMA_VERSION} (written by another "
            "kubetrain version); use another --data directory or remove this one"
        )


def _lock_dir(data_dir: str) -> int:
    path = os.path.join(data_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise PersistenceError(
            f"--data {data_dir}: in use by another kubetrain cluster (pid {holder}); stop it or "
            "use another directory"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
