"""Writes a PodGroup's status, only when it changes, at most one write per group in flight.

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
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from kubetrain.base.clock import Clock
from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import (
    PODGROUPS_SCHEDULER_PLUGINS,
    PODGROUPS_VOLCANO,
)
from kubetrain.informers.transport import ApiStatusError

from .podgroup import VOLCANO, GroupKey

__all__ = ["GroupStatusWriter"]

log = logging.getLogger(__name__)
_RETRY_SECONDS = 1.0


class GroupStatusWriter:
    """``sync(key, obj, desired)`` writes ``desired`` unless the group already shows it."""

    def __init__(
        self,
        client: ApiClient,
        *,
        slots: asyncio.Semaphore,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        retry: Callable[[GroupKey], None],
        clock: Clock,
    ) -> None:
        self._client = client
        self._slots = slots
        self._spawn = spawn
        self._retry = retry
        self._clock = clock
        # key -> (resourceVersion of the write, None while in flight; the status sent)
        self._sent: dict[GroupKey, tuple[int | None, dict[str, Any]]] = {}
        self._next: dict[GroupKey, dict[str, Any]] = {}  # to write once the one in flight ends
        self.writes = 0
        """Status writes sent (for tests)."""

    def observed(self, key: GroupKey, obj: Mapping[str, Any]) -> None:
        """The cache shows ``obj``: once it holds our write (or later), forget what was sent."""
        sent = self._sent.get(key)
        if sent is not None and sent[0] is not None and _rv(obj) >= sent[0]:
            del self._sent[key]

    def forget(self, key: GroupKey) -> None:
        self._sent.pop(key, None)
        self._next.pop(key, None)

    def known(self, key: GroupKey, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        """The status as it is or is about to be."""
        sent = self._sent.get(key)
        return sent[1] if sent is not None else (obj.get("status") or {})

    def sync(self, key: GroupKey, obj: Mapping[str, Any], desired: dict[str, Any]) -> None:
        known = self.known(key, obj)
        if desired == known:
            self._next.pop(key, None)
            return
        sent = self._sent.get(key)
        if sent is not None and sent[0] is None:  # one in flight: write this after it
            self._next[key] = desired
            return
        patch: dict[str, Any] = dict(desired)
        for name in known:
            if name not in desired:
                patch[name] = None  # merge patch: remove
        self._sent[key] = (None, desired)
        self._spawn(self._write(key, patch, desired))

    async def _write(self, key: GroupKey, patch: dict[str, Any], desired: dict[str, Any]) -> None:
        flavour, ns, name = key
        ref = PODGROUPS_VOLCANO if flavour == VOLCANO else PODGROUPS_SCHEDULER_PLUGINS
        sub = None if flavour == VOLCANO else "status"
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
                log.warning("writing the status of PodGroup %s/%s failed: %s", ns, name, e)
            except (ConnectionError, TimeoutError) as e:
                log.warning("writing the status of PodGroup %s/%s failed: %s", ns, name, e)
        nxt = self._next.pop(key, None)
        if not ok:
            self._sent.pop(key, None)
            self._clock.call_at(self._clock.monotonic() + _RETRY_SECONDS, lambda: self._retry(key))
        elif nxt is not None and nxt != desired:
            self._retry(key)  # decided again while this was in flight


def _rv(obj: Mapping[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0
