"""The object store: every object of every resource, one global resourceVersion counter.

Objects are kept serialized. Each stored object is a ``Record``: its JSON bytes (orjson, made
once when the object is committed, with its resourceVersion already stamped in) plus the few
parsed fields the server needs without reading the object (resourceVersion, apiVersion, labels,
owner uids). Why bytes: a parsed object is dozens of dicts and lists, every one of them scanned
by each full garbage collection (1.3 s per collection with 250,000 pods stored as dicts); a
record holds no container the collector tracks, so it is not scanned at all and a full
collection stays in the tens of milliseconds (``test_bench_collector_pause``). And what
the server mostly does with a stored object is send it: a GET, a LIST (the item bytes joined,
``list_records``), a watch event (the same bytes for every watcher) and the storage backend all
use the committed bytes as they are, so an object is serialized once per write and never again.

Reading the object itself (update, patch, admission, GC, namespace deletion) parses the bytes
(``get``); the parse is kept in a small LRU cache (``parsed_cache_size`` objects), because the
write paths read what was just written (the GC checks a new pod's owner, an update reads the
object it replaces). Parsed objects are shared: never mutate what ``get`` returns (copy on
write, as before); the store takes ownership of a dict when it commits it.

Per storage key the records sit in a ``SortedDict`` keyed by (namespace, name), so a namespace
is a contiguous range and a page of a LIST costs O(log n + page), whatever the total.

Every commit goes to the watch hub (history + fan-out), the registered listeners (GC, metrics,
pod logs...) and the storage backend (batched once per loop iteration). Watchers see a change at
commit time, before it is durable; the HTTP answer to the write waits for durability
(``wait_durable``, awaited by the server for every mutating request). With a ``DurableBackend``
(``SqliteBackend``) the store hands out only resourceVersions below the backend's ``rv_limit``
(committed rv + a gap), so a server restarted after a crash continues past every resourceVersion
any client saw, even on a watch.
"""

from __future__ import annotations

import asyncio
import builtins
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final, Protocol, runtime_checkable

import orjson
from sortedcontainers import SortedDict

from . import errors
from .resources import ResourceInfo, StorageKey
from .selectors import FieldSelector, LabelSelector
from .watch import ADDED, DELETED, MODIFIED, Labels, WatchEvent, WatchHub, parse_labels

__all__ = [
    "Change",
    "DurableBackend",
    "Listener",
    "MemoryBackend",
    "ObjectKey",
    "ObjectStore",
    "Record",
    "StorageBackend",
    "labels_of",
]

ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

Record = tuple[bytes, int, str, Labels, str]
"""One stored object: (data, rv, api_version, labels, owner_uids).

- ``data``: the object serialized (orjson); its ``metadata.resourceVersion`` is ``str(rv)``;
- ``rv``: the resourceVersion of the commit that stored it;
- ``api_version``: the ``apiVersion`` inside ``data`` (interned);
- ``labels``: its ``metadata.labels`` as JSON bytes (``b""``: none), for label selectors;
- ``owner_uids``: the uids its ownerReferences name, each once, in one string (``_owner_uids``;
  ``""``: none), for the GC's owner index.

A plain tuple of bytes, an int and a str, on purpose: the collector untracks a tuple whose
items it never tracks at the first collection that sees it, so stored records cost a full
collection nothing. (Any container inside, a dict, a list, even a tuple of pairs, would keep a
record tracked for one or more full collections; ``test_object_store`` checks this.)
"""

# Positions in a ``Record``.
DATA: Final = 0
RV: Final = 1
API_VERSION: Final = 2
LABELS: Final = 3
OWNERS: Final = 4

Listener = Callable[[str, ResourceInfo, dict[str, Any], "dict[str, Any] | None"], None]
"""``cb(event_type, info, obj, old_obj)`` after each commit; must not block or mutate."""

DEFAULT_PARSED_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change, as the storage backend receives it: the object's storage key,
    (namespace, name), its bytes as committed (for DELETED, as deleted) and the commit's rv."""

    type: str  # ADDED | MODIFIED | DELETED
    key: StorageKey
    namespace: str
    name: str
    data: bytes
    rv: int


class StorageBackend(Protocol):
    """Durable storage under the in-memory store.

    ``load`` runs once at start and returns the last committed resourceVersion and every stored
    object (with its storage key) as the bytes it was committed as. ``append`` receives the
    changes committed during one event loop iteration, in rv order; it must not mutate them.
    """

    def load(self) -> tuple[int, Iterable[tuple[StorageKey, bytes]]]: ...

    def append(self, changes: Sequence[Change]) -> None: ...


@runtime_checkable
class DurableBackend(StorageBackend, Protocol):
    """A backend that answers for durability (``persistence.SqliteBackend``).

    - ``durable_rv``: every change with an rv up to it is committed (after ``load``: the rv it
      returned). Only grows.
    - ``rv_limit``: the store hands out only rvs below it. A backend guarantees that a restart
      after a crash continues from at least the ``rv_limit`` it had committed (so from above
      every rv handed out); it raises the limit as it commits. -1 once writing failed.
    - ``error``: why writing failed (nothing is committed any more), else None.
    - ``wait_durable(timeout)``: block until everything appended so far is committed (or
      writing failed); False on timeout.
    - ``wait_rv(rv)``: return once ``durable_rv >= rv``; raise (the backend's error) when
      writing failed first. Called on the event loop's thread.
    """

    durable_rv: int
    rv_limit: int
    error: BaseException | None

    def wait_durable(self, timeout: float | None = None) -> bool: ...

    async def wait_rv(self, rv: int) -> None: ...


class MemoryBackend:
    """The default backend: nothing to load, nothing to keep."""

    def load(self) -> tuple[int, Iterable[tuple[StorageKey, bytes]]]:
        return 0, ()

    def append(self, changes: Sequence[Change]) -> None:
        return None


def object_key(obj: dict[str, Any]) -> ObjectKey:
    """(namespace, name) of ``obj``."""
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def labels_of(meta: dict[str, Any]) -> Labels:
    """``metadata.labels`` as a ``Record`` keeps them (JSON bytes, ``b""`` for none)."""
    labels = meta.get("labels")
    if not labels or not isinstance(labels, dict):
        return b""
    return _kept(orjson.dumps(labels))


def _owner_uids(meta: dict[str, Any]) -> str:
    """The uids ``meta``'s ownerReferences name, each once, as a ``Record`` keeps them: joined
    by NUL (read back with one split: every deletion of a dependent reads them), or, should a
    uid hold a NUL itself, a NUL and then the JSON array (a joined form never starts with NUL:
    uids are not empty)."""
    refs = meta.get("ownerReferences")
    if not refs or not isinstance(refs, list):
        return ""
    uids = [
        str(u)
        for u in dict.fromkeys(r["uid"] for r in refs if isinstance(r, dict) and r.get("uid"))
    ]
    if any("\x00" in uid for uid in uids):
        return "\x00" + orjson.dumps(uids).decode()
    return "\x00".join(uids)


def _uids(owners: str) -> list[str]:
    if not owners:
        return []
    if owners[0] == "\x00":
        parsed: list[str] = orjson.loads(owners[1:])
        return parsed
    return owners.split("\x00")


def _metadata_only(fsel: FieldSelector) -> bool:
    """Whether ``fsel`` reads only metadata.name/metadata.namespace (the key answers it)."""
    return all(t.path in (("metadata", "name"), ("metadata", "namespace")) for t in fsel.terms)


class ObjectStore:
    """All objects, indexed by storage key, (namespace, name) and owner uid.

    Invariants: ``rv`` is the resourceVersion of the last commit and only grows (with a
    ``DurableBackend``, it stays below the backend's ``rv_limit``); every change is queued for
    the backend (``_pending``, then ``flush``) in rv order; every stored record's data carries
    ``metadata.resourceVersion == str(record rv)``; ``_parsed[(key, okey)]``, when present, is
    the parse of the current record's data (the dict that was committed, or ``orjson.loads`` of
    its bytes); ``_dependents[uid]`` holds exactly the objects with an ownerReference to ``uid``.
    """

    def __init__(
        self,
        *,
        hub: WatchHub,
        backend: StorageBackend | None = None,
        parsed_cache_size: int = DEFAULT_PARSED_CACHE_SIZE,
    ) -> None:
        self.hub = hub
        self._backend: StorageBackend = MemoryBackend()
        self._durable: DurableBackend | None = None
        self.backend = backend or self._backend
        self.rv = 0
        self.parsed_cache_size = parsed_cache_size
        self._tables: dict[StorageKey, SortedDict] = {}
        self._parsed: OrderedDict[tuple[StorageKey, ObjectKey], dict[str, Any]] = OrderedDict()
        # owner uid -> its dependents' refs (``_ref``): a tuple of strings while small (the
        # collector untracks it, and the dict once all are), a set past _SMALL_DEPENDENTS
        self._dependents: dict[str, tuple[str, ...] | set[str]] = {}
        self._listeners: list[Listener] = []
        self._pending: list[Change] = []
        self._flush_scheduled = False

    # -- setup -------------------------------------------------------------------------------

    @property
    def backend(self) -> StorageBackend:
        """Where committed changes go (set before ``load``; ``MemoryBackend`` by default)."""
        return self._backend

    @backend.setter
    def backend(self, backend: StorageBackend) -> None:
        self._backend = backend
        self._durable = backend if isinstance(backend, DurableBackend) else None
        # the default backend drops what it gets: no Change made, no flush scheduled per commit
        self._queue_changes = type(backend) is not MemoryBackend

    def load(self) -> int:
        """Load the backend's objects (no events, no listeners); return how many."""
        rv, items = self._backend.load()
        loaded = 0
        for key, data in items:
            obj = orjson.loads(data)
            meta = obj.get("metadata") or {}
            okey = object_key(obj)
            try:
                obj_rv = int(meta.get("resourceVersion") or 0)
            except (TypeError, ValueError):
                obj_rv = 0
            if str(obj_rv) != meta.get("resourceVersion"):
                # keep the record's invariant: the bytes carry str(rv)
                meta["resourceVersion"] = str(obj_rv)
                data = _kept(orjson.dumps(obj))
            owners = _owner_uids(meta)
            self._table(key)[okey] = (
                data,
                obj_rv,
                _intern(obj.get("apiVersion")),
                labels_of(meta),
                owners,
            )
            self._index_owners(key, okey, owners, "")
            loaded += 1
        self.rv = max(self.rv, rv)
        self.hub.start_rv = max(self.hub.start_rv, self.rv)
        return loaded

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event_type, info, obj, old_obj)`` after every commit."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    # -- reads -------------------------------------------------------------------------------

    def _table(self, key: StorageKey) -> SortedDict:
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = SortedDict()
        return table

    def record(self, key: StorageKey, namespace: str, name: str) -> Record | None:
        """The stored record (bytes and parsed fields) or None; nothing is parsed."""
        table = self._tables.get(key)
        return None if table is None else table.get((namespace, name))

    def contains(self, key: StorageKey, namespace: str, name: str) -> bool:
        """Whether an object is stored under (namespace, name)."""
        table = self._tables.get(key)
        return table is not None and (namespace, name) in table

    def get(self, key: StorageKey, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object parsed, or None. Shared (cached): do not mutate it."""
        table = self._tables.get(key)
        if table is None:
            return None
        okey = (namespace, name)
        rec = table.get(okey)
        if rec is None:
            return None
        return self._parse((key, okey), rec)

    def encoded(self, key: StorageKey, obj: dict[str, Any]) -> bytes | None:
        """The stored bytes of ``obj`` when ``obj`` is the stored object itself (what ``get``,
        ``create`` or ``update`` returned, still current), else None (a dry run's object, an
        older version): the caller then serializes it."""
        okey = object_key(obj)
        if self._parsed.get((key, okey)) is not obj:
            return None
        rec = self._tables[key].get(okey)
        return None if rec is None else rec[DATA]

    def _parse(self, ck: tuple[StorageKey, ObjectKey], rec: Record) -> dict[str, Any]:
        cached = self._parsed.get(ck)
        if cached is not None:
            self._parsed.move_to_end(ck)
            return cached
        obj: dict[str, Any] = orjson.loads(rec[DATA])
        self._remember(ck, obj)
        return obj

    def _remember(self, ck: tuple[StorageKey, ObjectKey], obj: dict[str, Any]) -> None:
        parsed = self._parsed
        parsed[ck] = obj
        parsed.move_to_end(ck)
        while len(parsed) > self.parsed_cache_size:
            parsed.popitem(last=False)

    def count(self, key: StorageKey, namespace: str | None = None) -> int:
        """Number of objects of ``key`` (in ``namespace`` when given): O(log n)."""
        table = self._tables.get(key)
        if not table:
            return 0
        if namespace is None:
            return len(table)
        lo = table.bisect_left((namespace, ""))
        hi = table.bisect_left((namespace + "\x00", ""))
        return int(hi - lo)

    def iter_records(
        self, key: StorageKey, namespace: str | None, *, after: ObjectKey | None = None
    ) -> Iterator[tuple[ObjectKey, Record]]:
        """(key, record) in (namespace, name) order, starting after ``after``; lazy."""
        table = self._tables.get(key)
        if not table:
            return
        if namespace is None:
            keys = table.irange(minimum=after, inclusive=(False, True)) if after else iter(table)
        else:
            lo = after if after and after[0] == namespace else (namespace, "")
            keys = table.irange(
                minimum=lo,
                maximum=(namespace + "\x00", ""),
                inclusive=(lo == (namespace, "") and after is None, False),
            )
        for k in keys:
            yield k, table[k]

    def iter_range(
        self, key: StorageKey, namespace: str | None, *, after: ObjectKey | None = None
    ) -> Iterator[tuple[ObjectKey, dict[str, Any]]]:
        """(key, object parsed) in (namespace, name) order, starting after ``after``; lazy.

        Each object is parsed afresh (not cached: a scan must not evict the hot objects); the
        caller owns it."""
        for k, rec in self.iter_records(key, namespace, after=after):
            yield k, orjson.loads(rec[DATA])

    def list_records(
        self,
        key: StorageKey,
        namespace: str | None,
        *,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
        limit: int = 0,
        after: ObjectKey | None = None,
    ) -> tuple[builtins.list[Record], ObjectKey | None, int | None]:
        """A page of matching records.

        Returns (records, last_key, remaining): ``last_key`` is set when more objects may
        follow (the caller builds a continue token from it); ``remaining`` counts the objects
        after the page when no selector is used (kube's remainingItemCount), else None. Label
        selectors read the records' labels; a field selector on anything but the name and
        namespace parses the objects it looks at.
        """
        lsel = None if label_selector is None or label_selector.empty else label_selector
        fsel = None if field_selector is None or field_selector.empty else field_selector
        it = self.iter_records(key, namespace, after=after)
        if lsel is None and fsel is None:
            if limit <= 0:
                return [rec for _, rec in it], None, None
            page = list(islice(it, limit + 1))
            if len(page) <= limit:
                return [rec for _, rec in page], None, None
            page.pop()
            last = page[-1][0]
            remaining = self._count_after(key, namespace, last)
            return [rec for _, rec in page], last, remaining
        by_key = fsel is not None and _metadata_only(fsel)
        items: builtins.list[Record] = []
        last_key: ObjectKey | None = None
        for k, rec in it:
            if lsel is not None and not lsel.matches(parse_labels(rec[LABELS])):
                continue
            if fsel is not None:
                target: dict[str, Any] = (
                    {"metadata": {"namespace": k[0], "name": k[1]}}
                    if by_key
                    else orjson.loads(rec[DATA])
                )
                if not fsel.matches(target):
                    continue
            if limit > 0 and len(items) == limit:
                return items, last_key, None
            items.append(rec)
            last_key = k
        return items, None, None

    def list(
        self,
        key: StorageKey,
        namespace: str | None,
        *,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
        limit: int = 0,
        after: ObjectKey | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], ObjectKey | None, int | None]:
        """``list_records`` with the objects parsed (each afresh; the caller owns them)."""
        records, last, remaining = self.list_records(
            key,
            namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            after=after,
        )
        return [orjson.loads(rec[DATA]) for rec in records], last, remaining

    def _count_after(self, key: StorageKey, namespace: str | None, last: ObjectKey) -> int:
        table = self._tables[key]
        pos = table.bisect_right(last)
        end = len(table) if namespace is None else table.bisect_left((namespace + "\x00", ""))
        return int(end - pos)

    def dependents(self, owner_uid: str) -> builtins.list[tuple[StorageKey, ObjectKey]]:
        """Objects that list ``owner_uid`` in their ownerReferences (for the GC)."""
        return [_unref(ref) for ref in self._dependents.get(owner_uid, ())]

    def has_dependents(self, owner_uid: str) -> bool:
        """Whether any object lists ``owner_uid`` in its ownerReferences: O(1)."""
        return owner_uid in self._dependents

    def keys(self) -> builtins.list[StorageKey]:
        """Storage keys that have (or had) objects."""
        return list(self._tables)

    # -- writes ------------------------------------------------------------------------------

    def create(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object (the store takes ``obj`` and sets its resourceVersion).

        Raises 409 AlreadyExists when (namespace, name) is taken.
        """
        okey = object_key(obj)
        if okey in self._table(info.storage_key):
            raise errors.already_exists(info, okey[1])
        return self._commit(ADDED, info, okey, obj, None)

    def update(
        self, info: ResourceInfo, obj: dict[str, Any], *, expected_rv: str | None = None
    ) -> dict[str, Any]:
        """Replace an existing object with ``obj`` (taken over; gets a new resourceVersion).

        ``expected_rv``: when given and not the stored object's, raises 409 Conflict.
        Raises 404 when the object does not exist.
        """
        okey = object_key(obj)
        old = self.record(info.storage_key, *okey)
        if old is None:
            raise errors.not_found(info, okey[1])
        if expected_rv is not None and str(old[RV]) != expected_rv:
            raise errors.conflict(info, okey[1])
        return self._commit(MODIFIED, info, okey, obj, old)

    def delete(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        *,
        expected_rv: str | None = None,
        final: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Remove an object; return it as deleted (carrying the deletion's rv).

        ``final`` (taken over) is the object's last state when a write removes it (an update
        that drops the last finalizer); by default a copy of the stored object.
        """
        old = self.record(info.storage_key, namespace, name)
        if old is None:
            raise errors.not_found(info, name)
        if expected_rv is not None and str(old[RV]) != expected_rv:
            raise errors.conflict(info, name)
        restamped = None
        if final is None:
            stored = self._parse((info.storage_key, (namespace, name)), old)
            final = {**stored, "metadata": dict(stored["metadata"])}
            restamped = old[DATA]  # the stored bytes, only the resourceVersion changes
        return self._commit(DELETED, info, (namespace, name), final, old, restamped)

    def _commit(
        self,
        event_type: str,
        info: ResourceInfo,
        okey: ObjectKey,
        obj: dict[str, Any],
        old: Record | None,
        restamped: bytes | None = None,
    ) -> dict[str, Any]:
        """Commit ``obj`` (taken over) at the next rv. ``restamped``: bytes ``obj`` serializes
        to but for its resourceVersion (a deletion's copy of the stored object), so they are
        re-stamped instead of serialized again."""
        key = info.storage_key
        ck = (key, okey)
        # the previous state, parsed, for the listeners (usually cached: the writer just read it)
        old_obj = self._parse(ck, old) if old is not None and self._listeners else None
        rv = self.rv + 1
        durable = self._durable
        if durable is not None and rv >= durable.rv_limit:
            self._make_room(durable, rv)
        meta = obj["metadata"]
        meta["resourceVersion"] = str(rv)
        data = None
        if restamped is not None and old is not None:
            data = _restamp(restamped, old[RV], rv)
        if data is not None and old is not None:  # the stored object again: its fields too
            api_version, labels = old[API_VERSION], old[LABELS]
        else:
            data = _kept(orjson.dumps(obj))  # may raise (not JSON): nothing is committed then
            api_version, labels = _intern(obj.get("apiVersion")), labels_of(meta)
        self.rv = rv
        table = self._table(key)
        old_owners = old[OWNERS] if old is not None else ""
        if event_type == DELETED:
            del table[okey]
            self._parsed.pop(ck, None)
            self._index_owners(key, okey, "", old_owners)
            event = WatchEvent(DELETED, rv, data, api_version, labels, okey[0], okey[1])
        else:
            owners = _owner_uids(meta)
            table[okey] = (data, rv, api_version, labels, owners)
            self._remember(ck, obj)
            self._index_owners(key, okey, owners, old_owners)
            event = WatchEvent(event_type, rv, data, api_version, labels, okey[0], okey[1])
            if old is not None:
                event.old_data = old[DATA]
                event.old_labels = old[LABELS]
        # queued for the backend before anything else can raise: every rv handed out is saved
        if self._queue_changes:
            self._pending.append(Change(event_type, key, okey[0], okey[1], data, rv))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                try:
                    asyncio.get_running_loop().call_soon(self.flush)
                except RuntimeError:
                    self.flush()
        self.hub.publish(key, event)
        for listener in self._listeners:
            listener(event_type, info, obj, old_obj)
        return obj

    def flush(self) -> None:
        """Hand pending changes to the backend now (also runs once per loop iteration)."""
        self._flush_scheduled = False
        if self._pending:
            batch, self._pending = self._pending, []
            self._backend.append(batch)

    # -- durability --------------------------------------------------------------------------

    @property
    def persistent(self) -> bool:
        """Whether the backend answers for durability (a ``DurableBackend``: ``--data``)."""
        return self._durable is not None

    def is_durable(self, rv: int | None = None) -> bool:
        """Whether every change up to ``rv`` (default: the current rv) is durable; always true
        without a ``DurableBackend``. No waiting: the fast check before ``wait_durable``."""
        durable = self._durable
        return durable is None or durable.durable_rv >= (self.rv if rv is None else rv)

    async def wait_durable(self, rv: int | None = None) -> None:
        """Return once every change up to ``rv`` (default: the current rv) is durable: at once
        without a ``DurableBackend``, else when the backend has committed it (group commit).

        Raises ``ApiError`` 500 when the backend failed before committing it: the change is
        in memory (watchers saw it) but will be lost on restart."""
        durable = self._durable
        if durable is None:
            return
        target = self.rv if rv is None else rv
        if durable.durable_rv >= target:
            return
        try:
            await durable.wait_rv(target)
        except Exception as exc:  # the backend failed: say so instead of acknowledging
            raise errors.internal(
                f"persistence failed, the change is not saved and will be lost on restart: {exc}"
            ) from exc

    def _make_room(self, durable: DurableBackend, rv: int) -> None:
        """Block until ``rv`` is below the backend's ``rv_limit``: commit everything queued,
        which raises the limit past ``rv``. It takes the backend lagging by the whole gap
        (``SqliteBackend.rv_gap`` changes), so it practically never blocks. Raises
        ``ApiError`` 500 (nothing committed) when the backend failed."""
        self.flush()
        durable.wait_durable(None)
        if rv >= durable.rv_limit:
            raise errors.internal(
                "persistence failed, the change was not made (writes are refused until the "
                f"server restarts): {durable.error}"
            )

    def _index_owners(
        self, key: StorageKey, okey: ObjectKey, new_owners: str, old_owners: str
    ) -> None:
        if new_owners == old_owners:
            return
        new_uids, old_uids = _uids(new_owners), _uids(old_owners)
        ref = _ref(key, okey)
        index = self._dependents
        for uid in old_uids:
            if uid in new_uids:
                continue
            deps = index.get(uid)
            if deps is None:
                continue
            if isinstance(deps, set):
                deps.discard(ref)
            else:
                deps = index[uid] = tuple([r for r in deps if r != ref])
            if not deps:
                del index[uid]
        for uid in new_uids:
            if uid in old_uids:
                continue
            deps = index.get(uid)
            if deps is None:
                index[uid] = (ref,)
            elif isinstance(deps, set):
                deps.add(ref)
            elif ref not in deps:
                grown = (*deps, ref)
                index[uid] = set(grown) if len(grown) > _SMALL_DEPENDENTS else grown


_SMALL_DEPENDENTS = 32
"""Up to this many dependents an owner's index entry is a tuple (copied on change: O(n) per
change, fine while small, and never scanned by the collector); past it, a set."""


def _ref(key: StorageKey, okey: ObjectKey) -> str:
    """A dependent in the owner index: one string (group, plural, namespace, name; NUL never
    occurs in any of them), so an index entry holds no container the collector would scan."""
    return f"{key[0]}\x00{key[1]}\x00{okey[0]}\x00{okey[1]}"


def _unref(ref: str) -> tuple[StorageKey, ObjectKey]:
    group, plural, namespace, name = ref.split("\x00", 3)
    return (group, plural), (namespace, name)


def _restamp(data: bytes, old_rv: int, rv: int) -> bytes | None:
    """``data`` with its ``"resourceVersion":"<old_rv>"`` pair set to ``rv``: what serializing
    the parsed ``data`` with that one change gives (orjson writes a parse back byte for byte),
    without serializing. None when the pair is not there exactly once (then serialize)."""
    pair = b'"resourceVersion":"%d"' % old_rv
    if data.count(pair) != 1:
        return None
    return data.replace(pair, b'"resourceVersion":"%d"' % rv)


def _kept(data: bytes) -> bytes:
    """``data`` in a bytes object of its own size, for keeping. orjson returns its output in a
    buffer of at least 4 KiB (``sys.getsizeof`` does not show it): kept as is, a 1.5 KiB pod
    would hold 4 KiB and a 40-byte label set as much again. One memcpy at commit."""
    return memoryview(data).tobytes()


def _intern(api_version: Any) -> str:
    """One shared string per apiVersion (every record keeps one)."""
    return sys.intern(api_version) if isinstance(api_version, str) else ""
