"""SQLite storage under the in-memory store, for ``kubetrain cluster --data DIR``.

The store stays the source of truth while the server runs; this backend only makes its state
survive a restart. ``DIR/kubetrain.db`` (stdlib sqlite3, WAL mode) holds every object as an orjson
blob keyed by (group, plural, namespace, name), plus the resourceVersion counter. The blob is the
store's own bytes for the object (``store.Record``), written and read back unchanged: persistence
serializes nothing and a reload parses each object once, to index it.

Write path: ``ObjectStore`` hands ``append`` the changes of one event-loop iteration; ``append`` only
queues them (no I/O, no serialization on the loop). A writer thread takes everything queued
after ``commit_delay_seconds``, keeps the last change per object, and commits it in one
transaction; while it commits, new batches accumulate, so under load transactions grow instead
of falling behind.

Durability (what this backend guarantees):

- A write acknowledged to a client is queued within the same loop iteration and committed by
  the writer within ``commit_delay_seconds`` (5 ms) plus one transaction time (typically under
  10 ms in all; ``wait_durable()`` waits for it). Committed transactions survive a crash of the process (WAL, ``synchronous=NORMAL``); the last
  transactions may be lost on power loss or an OS crash.
- ``close()`` (a clean stop: Ctrl-C, SIGTERM, ``EmbeddedCluster.stop``) writes everything.

On start (``load``) every object comes back with its uid and resourceVersion and the counter
continues from the last committed one (never backwards). CRDs come first so the server serves
them before their custom resources are read. Watch history is not persisted: a watch (or a
continue token) from a resourceVersion before the restart gets 410 Expired and the client
relists, as after an etcd compaction.

One process at a time: the directory is locked (``DIR/kubetrain.lock``); a second server on it
fails with a clear error.
"""

from __future__ import annotations

import fcntl
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

__all__ = ["DB_FILE", "PersistenceError", "SqliteBackend"]

log = logging.getLogger(__name__)

DB_FILE = "kubetrain.db"
LOCK_FILE = "kubetrain.lock"
SCHEMA_VERSION = 1
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
    """A ``StorageBackend`` in ``data_dir`` (created if missing). Call ``close()`` at the end.

    ``commit_delay_seconds`` (default 5 ms): how long the writer lets changes gather after the
    first one before it commits; it bounds the extra time to disk and saves a transaction (and
    the writer's share of the GIL) per change when requests come one by one.

    Thread contract: ``load``, ``append``, ``wait_durable`` and ``close`` are called from the
    event loop's thread; only the writer thread touches the write connection.
    """

    def __init__(self, data_dir: str, *, commit_delay_seconds: float = 0.005) -> None:
        self.data_dir = data_dir
        self.commit_delay_seconds = commit_delay_seconds
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
        except BaseException:
            os.close(self._lock_fd)
            raise
        # Invariant: _queued - _written is the number of batches handed over and not committed.
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._queued = 0
        self._written = 0
        self.error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="kubetrain-sqlite", daemon=True)
        self._thread.start()

    # -- StorageBackend ---------------------------------------------------------------------

    def load(self) -> tuple[int, Iterable[tuple[StorageKey, bytes]]]:
        """The stored resourceVersion and objects (their bytes as committed), CRDs first."""
        conn = _connect(self.path)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()
            rv = int(row[0]) if row else 0
            rows = conn.execute(
                "SELECT grp, plural, data FROM objects "
                "ORDER BY (grp = ? AND plural = ?) DESC, grp, plural",
                _CRD_KEY,
            ).fetchall()
        finally:
            conn.close()
        return rv, [((grp, plural), bytes(data)) for grp, plural, data in rows]

    def append(self, changes: Sequence[Change]) -> None:
        """Queue one batch for the writer thread (no I/O here)."""
        if self._closed:
            raise PersistenceError(f"{self.path}: append after close()")
        with self._cond:
            self._queued += 1
        self._queue.put(changes)

    # -- lifecycle --------------------------------------------------------------------------

    def wait_durable(self, timeout: float | None = None) -> bool:
        """Block until every batch queued so far is committed; False on timeout.

        Blocking: from async code, run it in an executor (or accept a few ms of blocking).
        """
        with self._cond:
            target = self._queued
            return self._cond.wait_for(
                lambda: self._written >= target or self.error is not None, timeout
            )

    def close(self) -> None:
        """Write everything queued, stop the writer, release the directory. Idempotent.

        Raises ``PersistenceError`` when the writer failed (the state on disk is the last
        committed one).
        """
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()
        self._db.close()
        os.close(self._lock_fd)
        if self.error is not None:
            raise PersistenceError(f"{self.path}: writing failed: {self.error}") from self.error

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
            if batches and self.error is None:
                try:
                    self._write(batches)
                except Exception as exc:  # disk full, I/O error: keep serving from memory
                    log.error(
                        "persistence to %s failed, changes are no longer saved: %s", self.path, exc
                    )
                    self.error = exc
            with self._cond:
                self._written += len(batches)
                self._cond.notify_all()

    def _write(self, batches: list[Sequence[Change]]) -> None:
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
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('rv', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                (rv,),
            )


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
