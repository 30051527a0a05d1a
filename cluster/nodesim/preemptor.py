"""The scheduler's side of preemption (``NodeSimOptions.preemption``, off by default; the rules
are ``preemption.py``'s, the API writes ``evictions.py``'s): a pod, or a gang, that fits nowhere
evicts lower-priority pods (whole lower-priority groups) when that makes it fit, is nominated,
and keeps the room it was nominated for until its victims are gone.

Why a collaborator of its own: it keeps three books the scheduler consults on every event
(what holds capacity by priority, the nominations, the victims on their way out) and moves room
between them; the scheduler and the gang decisions only ask it to preempt, and hear back through
``ready`` (a preemptor's victims are all gone: decide for it again) and ``freed`` (room it held
was given back).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubetrain.base.objects import split_key
from kubetrain.informers.lister import Lister

from .capacity import NodeCapacity
from .evictions import Evictor
from .gangs import GangBook
from .podgroup import GroupKey
from .preemption import Holders, Nomination, Nominations, Unit, choose_victims, reservation_key
from .priorities import Priorities
from .quantity import Resources
from .shapes import Shape, pod_key
from .volcano_queues import VolcanoQueues

__all__ = ["Placement", "Preemptor"]

Placement = list[tuple[Mapping[str, Any], str, Resources]]
"""Members held on nodes, tentatively: (pod, node, requests) each."""

log = logging.getLogger(__name__.rpartition(".")[0] + ".scheduler")  # the scheduler's log


class Preemptor:
    """Victims, nominations and the room held for nominees, over the scheduler's ``capacity``
    (whose holds it moves), ``gangs`` and ``pods`` (read only)."""

    def __init__(
        self,
        *,
        enabled: bool,
        pods: Lister,
        capacity: NodeCapacity,
        gangs: GangBook,
        queues: VolcanoQueues,
        evictor: Evictor,
        binding: set[str],
        priorities: Callable[[], Priorities],
        ready: Callable[[str | GroupKey], None],
        freed: Callable[[], None],
    ) -> None:
        self.enabled = enabled
        self._pods = pods
        self._capacity = capacity
        self._gangs = gangs
        self._queues = queues
        self._evictor = evictor
        self._binding = binding  # the scheduler's: a victim's binding is forgotten here
        self._priorities = priorities
        self._ready = ready
        self._freed = freed
        self._holders = Holders()  # pods holding capacity, by priority (enabled only)
        self.nominations = Nominations()
        """Preemptors waiting for their victims. Invariant: each nominee's room is held in
        ``capacity`` under its ``reservation_key`` until the nomination is dropped."""
        self._evicting: dict[str, str] = {}  # victim key -> uid, until it is gone

    # -- holders ---------------------------------------------------------------------------------

    def hold(self, key: str, pod: Mapping[str, Any], requests: Resources) -> None:
        """Pod ``key`` started holding ``requests``: filed by the priority it is evicted at."""
        if self.enabled:
            self._holders.add(key, self._holder_priority(key, pod), requests)

    def released(self, key: str) -> None:
        """Pod ``key`` stopped holding capacity."""
        self._holders.discard(key)

    def any_below(self, priority: int) -> bool:
        """Something holds capacity below ``priority``."""
        return self._holders.any_below(priority)

    def reclaimable(self, priority: int) -> Resources:
        """What pods below ``priority`` hold."""
        return self._holders.reclaimable(priority)

    def _holder_priority(self, key: str, pod: Mapping[str, Any]) -> int:
        """The priority a holder is evicted at: its group's, else its own."""
        group_key = self._gangs.group_of_member(key)
        group = self._gangs.group(group_key) if group_key is not None else None
        if group is not None and group.spec.priority_class:
            return self._priorities().value(group.spec.priority_class)
        return self._priorities().of_pod(pod)

    # -- preempting ------------------------------------------------------------------------------

    def for_pod(
        self,
        pod: Mapping[str, Any],
        requests: Resources,
        shape: Shape,
        *,
        oldest: str | None,
    ) -> bool:
        """Evict lower-priority pods so that ``pod`` fits; True when it was nominated.
        ``oldest``: the oldest pod waiting under ``shape``."""
        key = pod_key(pod)
        priority = shape[2]
        if (
            not self.enabled
            or not self._holders.any_below(priority)
            or self._priorities().never_preempts(pod)
        ):
            return False
        ahead = oldest if oldest is not None else key
        if ahead != key and self.nominations.get(ahead) is None:
            return False  # an older pod asking the same found no victims: neither would this one
        selector = dict(shape[1]) or None

        def fits() -> bool:
            return self._capacity.fit(requests, selector).node is not None

        victims = self._choose(priority, None, fits)
        if victims is None:
            return False
        node = self._capacity.fit(requests, selector).node
        assert node is not None
        self._commit(key, {key: (node, requests)}, victims, pod, gang=False)
        return True

    def for_group(
        self, key: GroupKey, priority: int, place: Callable[[], Placement | None]
    ) -> bool:
        """Evict lower-priority groups and pods so that ``place()`` (the group's members that
        must fit at once, held tentatively; None when they do not fit) succeeds; True when they
        were nominated. The caller checked that the group may preempt at ``priority``."""

        def fits() -> bool:
            placed = place()
            for member, _, _ in placed or ():
                self._capacity.release(pod_key(member))
            return placed is not None

        victims = self._choose(priority, key, fits)
        if victims is None:
            return False
        placed = place()
        assert placed is not None
        for member, _, _ in placed:
            self._capacity.release(pod_key(member))
        nodes = {pod_key(member): (node, requests) for member, node, requests in placed}
        self._commit(key, nodes, victims, placed[0][0], gang=True)
        return True

    def _choose(
        self, priority: int, own: GroupKey | None, fits: Callable[[], bool]
    ) -> list[Unit] | None:
        """``choose_victims`` among what holds capacity below ``priority`` (not ``own`` group's
        members): whole groups for gang members."""
        stash: dict[str, tuple[str, Resources]] = {}

        def release(unit: Unit) -> None:
            for key in unit.pods:
                node, held = self._capacity.holder(key), self._capacity.held(key)
                if node is not None and held is not None:
                    stash[key] = (node, held)
                    self._capacity.release(key)

        def restore(unit: Unit) -> None:
            for key in unit.pods:
                if key in stash:
                    self._capacity.hold(key, *stash.pop(key))

        return choose_victims(self._units_below(priority, own), release, restore, fits)

    def _units_below(self, priority: int, own: GroupKey | None) -> Iterator[Unit]:
        seen: set[GroupKey] = set()
        for key in self._holders.below(priority):
            pod = self._pods.get(*split_key(key))
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                continue  # going away already
            group_key = self._gangs.group_of_member(key)
            if group_key is None or self._gangs.group(group_key) is None:
                yield Unit(key, self._holders.priority(key) or 0, [key])
                continue
            if group_key == own or group_key in seen:
                continue
            seen.add(group_key)
            members = [
                m
                for m in self._gangs.members(group_key)
                if self._capacity.held(m) is not None and m not in self._evicting
            ]
            yield Unit(group_key, self._holders.priority(key) or 0, members)

    def _commit(
        self,
        preemptor: str | GroupKey,
        nodes: dict[str, tuple[str, Resources]],
        victims: list[Unit],
        representative: Mapping[str, Any],
        *,
        gang: bool,
    ) -> None:
        """Evict ``victims`` (their room is free already), hold the room of the preemptor's
        pods on ``nodes`` and nominate them there."""
        waiting: set[str] = set()
        for unit in victims:
            for key in unit.pods:
                self._holders.discard(key)
                self._queues.uncharge(key)
                self._binding.discard(key)
                victim = self._pods.get(*split_key(key))
                if victim is None:
                    continue
                self._evicting[key] = victim["metadata"].get("uid", "")
                waiting.add(key)
                self._evictor.evict(victim, representative, gang=gang, gone=self.victim_gone)
        for key, (node, requests) in nodes.items():
            self._capacity.hold(reservation_key(key), node, requests)
            pod = self._pods.get(*split_key(key))
            if pod is not None:
                self._evictor.nominate(pod, node)
        self.nominations.add(preemptor, Nomination({k: n for k, (n, _) in nodes.items()}, waiting))
        log.info(
            "preemption: %s evicts %s",
            preemptor if isinstance(preemptor, str) else "/".join(preemptor),
            ", ".join(sorted(waiting)) or "nothing",
        )
        if not waiting:
            self._ready(preemptor)

    # -- victims and nominees --------------------------------------------------------------------

    def evicting(self, key: str) -> str | None:
        """The uid of victim ``key`` while it is on its way out; None when it is no victim."""
        return self._evicting.get(key)

    def victim_gone(self, key: str) -> None:
        """A victim is gone (or will never go): its preemptor is decided once its last is."""
        self._evicting.pop(key, None)
        preemptor = self.nominations.victim_gone(key)
        if preemptor is not None:
            self._ready(preemptor)  # type: ignore[arg-type]
            self._freed()

    def drop(self, preemptor: str | GroupKey) -> bool:
        """Give back the room held for ``preemptor``; True when it held any."""
        nomination = self.nominations.drop(preemptor)
        if nomination is None:
            return False
        for key in nomination.nodes:
            self._capacity.release(reservation_key(key))
        return True
