"""Writes a PodGroup's (or a Volcano Queue's) status, only when it changes, at most one write per
object in flight.

Why a merge PATCH: Volcano's PodGroup CRD has no status subresource (status is written with the
object), scheduler-plugins' has one; a merge patch of ``status`` works for both (to the object,
or to ``/status``) and needs no resourceVersion, so an operator updating the group's spec at the
same time costs no conflict and no re-read.

Why remember what was sent: the informer shows a write only some time after it returned. Until
the cache holds the write's resourceVersion (or a later one), what was sent stands for the
observed status, so a group decided again meanwhile is not written twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Hashable, Mapping
from typing import Any, Generic, TypeVar

from kubetrain.base.clock import Clock
from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import (
    PODGROUPS_SCHEDULER_PLUGINS,
    PODGROUPS_VOLCANO,
    ResourceRef,
)
from kubetrain.informers.transport import ApiStatusError

from .podgroup import VOLCANO, GroupKey

__all__ = ["GroupStatusWriter", "StatusWriter", "Target"]

log = logging.getLogger(__name__)
_RETRY_SECONDS = 1.0

K = TypeVar("K", bound=Hashable)
Target = tuple[ResourceRef, str | None, str, str | None]
"""Where a status is written: resource, namespace, name, subresource (None: the object)."""


def _group_target(key: GroupKey) -> Target:
    flavour, ns, name = key
    if flavour == VOLCANO:
        return PODGROUPS_VOLCANO, ns, name, None
    return PODGROUPS_SCHEDULER_PLUGINS, ns, name, "status"


class StatusWriter(Generic[K]):
    """``sync(key, obj, desired)`` writes ``desired`` unless the object already shows it;
    ``target(key)`` says where."""

    def __init__(
        self,
        client: ApiClient,
        *,
        slots: asyncio.Semaphore,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        retry: Callable[[K], None],
        clock: Clock,
        target: Callable[[K], Target],
    ) -> None:
        self._client = client
        self._target = target
        self._slots = slots
        self._spawn = spawn
        self._retry = retry
        self._clock = clock
        # key -> (resourceVersion of the write, None while in flight; the status sent)
        self._sent: dict[K, tuple[int | None, dict[str, Any]]] = {}
        self._next: dict[K, dict[str, Any]] = {}  # to write once the one in flight ends
        self.writes = 0
        """Status writes sent (for tests)."""

    def observed(self, key: K, obj: Mapping[str, Any]) -> None:
        """The cache shows ``obj``: once it holds our write (or later), forget what was sent."""
        sent = self._sent.get(key)
        if sent is not None and sent[0] is not None and _rv(obj) >= sent[0]:
            del self._sent[key]

    def forget(self, key: K) -> None:
        self._sent.pop(key, None)
        self._next.pop(key, None)

    def known(self, key: K, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """The status as it is or is about to be."""
        sent = self._sent.get(key)
        return sent[1] if sent is not None else (obj.get("status") or {})

    def sync(self, key: K, obj: Mapping[str, Any], desired: dict[str, Any]) -> None:
        known = self.known(key, obj)
        if desired == known:
            self._next.pop(key, None)
            return
        sent = self._sent.get(key)
        if sent is not None and sent[0] is None:  # one in flight: write this after it
            self._next[key] = desired
            return
        patch = _merge_patch(known, desired)
        self._sent[key] = (None, desired)
        self._spawn(self._write(key, patch, desired))

    async def _write(self, key: K, patch: dict[str, Any], desired: dict[str, Any]) -> None:
        ref, ns, name, sub = self._target(key)
        what = f"{ref.kind} {ns}/{name}" if ns else f"{ref.kind} {name}"
        ok = False
        async with self._slots:
            try:
                stored = await self._client.patch(ref, ns, name, {"status": patch}, subresource=sub)
                self.writes += 1
                self._sent[key] = (_rv(stored), desired)
                ok = True
            except ApiStatusError as e:
                if e.is_not_found:
                    self.forget(key)
                    return
                log.warning("writing the status of %s failed: %s", what, e)
            except (ConnectionError, TimeoutError) as e:
                log.warning("writing the status of %s failed: %s", what, e)
        nxt = self._next.pop(key, None)
        if not ok:
            self._sent.pop(key, None)
            self._clock.call_at(self._clock.monotonic() + _RETRY_SECONDS, lambda: self._retry(key))
        elif nxt is not None and nxt != desired:
            self._retry(key)  # decided again while this was in flight


class GroupStatusWriter(StatusWriter[GroupKey]):
    """PodGroups of both flavours: Volcano's with the object (its CRD has no status
    subresource), scheduler-plugins' to ``/status``."""

    def __init__(
        self,
        client: ApiClient,
        *,
        slots: asyncio.Semaphore,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        retry: Callable[[GroupKey], None],
        clock: Clock,
    ) -> None:
        super().__init__(
            client, slots=slots, spawn=spawn, retry=retry, clock=clock, target=_group_target
        )


def _merge_patch(known: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch turning ``known`` into ``desired``: a key ``known`` has and ``desired``
    lacks is removed (null), at any depth of nested maps (a merge patch merges maps)."""
    patch: dict[str, Any] = {}
    for name, value in desired.items():
        before = known.get(name)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[name] = _merge_patch(before, value)
        else:
            patch[name] = value
    for name in known:
        if name not in desired:
            patch[name] = None
    return patch


def _rv(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0
