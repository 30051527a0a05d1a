"""Preemption (``NodeSimOptions.preemption``, off by default): which running pods a pod or a gang
that fits nowhere evicts, and the room it keeps for itself while they go.

The rules are kube-scheduler's ``DefaultPreemption`` (``pkg/scheduler/framework/plugins/
defaultpreemption/default_preemption.go`` ``SelectVictimsOnNode``, ``pkg/scheduler/framework/
preemption/preemption.go``): only pods of strictly lower priority are victims; all of them are
taken away and, if the preemptor then fits, given back one by one from the highest priority
down while it still fits, so the fewest and least important are evicted; if it does not fit
even with all of them gone, nobody is evicted. A preemptor with ``preemptionPolicy: Never``
preempts nobody. The preemptor is *nominated* (``status.nominatedNodeName``) and waits for its
victims to be gone; the room it was nominated for is held for it meanwhile, so pods waiting
behind it (the victims' replacements, say) do not take it.

Gangs: the victim unit is the whole group of a member (evicting part of a gang breaks it), at
the group's priority; a gang preempts for its ``minMember`` at once, all or nothing. Victims are
taken lowest priority first, the most recently placed first among equals.

Why an index of holders: a preemptor must find lower-priority pods without scanning pods, and a
Volcano group's admission (``enqueue``) may count what lower-priority pods hold as room it can
reclaim, so pods holding capacity are filed by priority with per-priority sums.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from .quantity import Resources, add_into, subtract_into

__all__ = ["Holders", "Nomination", "Nominations", "Unit", "choose_victims", "reservation_key"]

_RESERVED = "nominated:"


def reservation_key(pod_key: str) -> str:
    """The capacity key of the room held for nominated ``pod_key`` (a pod key has no colon)."""
    return _RESERVED + pod_key


class Holders:
    """Pods holding capacity, by priority, with what each priority holds."""

    def __init__(self) -> None:
        self._of: dict[str, tuple[int, int, Resources]] = {}  # key -> (priority, seq, requests)
        # Invariants: ``_by[p]`` holds the keys of ``_of`` at priority p, ``_sums[p]`` their
        # requests summed; neither has empty entries.
        self._by: dict[int, dict[str, None]] = {}
        self._sums: dict[int, Resources] = {}
        self._seq = 0

    def add(self, key: str, priority: int, requests: Resources) -> None:
        self.discard(key)
        self._seq += 1
        self._of[key] = (priority, self._seq, requests)
        self._by.setdefault(priority, {})[key] = None
        add_into(self._sums.setdefault(priority, {}), requests)

    def discard(self, key: str) -> None:
        entry = self._of.pop(key, None)
        if entry is None:
            return
        priority, _, requests = entry
        keys = self._by[priority]
        del keys[key]
        if not keys:
            del self._by[priority]
            del self._sums[priority]
        else:
            subtract_into(self._sums[priority], requests)

    def priority(self, key: str) -> int | None:
        entry = self._of.get(key)
        return entry[0] if entry is not None else None

    def seq(self, key: str) -> int:
        entry = self._of.get(key)
        return entry[1] if entry is not None else 0

    def any_below(self, priority: int) -> bool:
        return any(p < priority for p in self._by)

    def below(self, priority: int) -> list[str]:
        """Keys holding capacity at a priority below ``priority``, lowest first, the most
        recently placed first among equals."""
        out: list[tuple[int, int, str]] = []
        for p, keys in self._by.items():
            if p < priority:
                out.extend((p, -self._of[k][1], k) for k in keys)
        out.sort()
        return [k for _, _, k in out]

    def reclaimable(self, priority: int) -> Resources:
        """What pods of a priority below ``priority`` hold."""
        total: Resources = {}
        for p, sums in self._sums.items():
            if p < priority:
                add_into(total, sums)
        return total


@dataclass(slots=True)
class Unit:
    """What is evicted together: one pod, or a gang's placed members."""

    key: Hashable
    priority: int
    pods: list[str]


def choose_victims(
    units: Iterable[Unit],
    release: Callable[[Unit], None],
    restore: Callable[[Unit], None],
    fits: Callable[[], bool],
) -> list[Unit] | None:
    """The units to evict so that ``fits()``: ``units`` (in eviction order) are released until
    the preemptor fits, then given back from the highest priority down while it still fits.
    The victims are left released; None (everything restored) when no set of them helps."""
    taken: list[Unit] = []
    for unit in units:
        release(unit)
        taken.append(unit)
        if fits():
            break
    else:
        for unit in reversed(taken):
            restore(unit)
        return None
    victims: list[Unit] = []
    # reprieve: most important first (stable: among equals, the one taken last first)
    for unit in sorted(reversed(taken), key=lambda u: -u.priority):
        restore(unit)
        if not fits():
            release(unit)
            victims.append(unit)
    return victims


@dataclass(slots=True)
class Nomination:
    """A preemptor waiting for its victims: the room held for its pods (pod key -> node), and the
    victim pods not gone yet."""

    nodes: dict[str, str]
    victims: set[str] = field(default_factory=set)


class Nominations:
    """Nominations by preemptor (a pod key or a group key), and each victim's preemptor."""

    def __init__(self) -> None:
        self._by: dict[Hashable, Nomination] = {}
        self._preemptor_of: dict[str, Hashable] = {}

    def add(self, preemptor: Hashable, nomination: Nomination) -> None:
        self.drop(preemptor)
        self._by[preemptor] = nomination
        for victim in nomination.victims:
            self._preemptor_of[victim] = preemptor

    def get(self, preemptor: Hashable) -> Nomination | None:
        return self._by.get(preemptor)

    def drop(self, preemptor: Hashable) -> Nomination | None:
        nomination = self._by.pop(preemptor, None)
        if nomination is not None:
            for victim in nomination.victims:
                self._preemptor_of.pop(victim, None)
        return nomination

    def victim_gone(self, victim: str) -> Hashable | None:
        """``victim`` is gone; its preemptor when that was its last victim."""
        preemptor = self._preemptor_of.pop(victim, None)
        if preemptor is None:
            return None
        nomination = self._by.get(preemptor)
        if nomination is None:
            return None
        nomination.victims.discard(victim)
        return preemptor if not nomination.victims else None

    def __len__(self) -> int:
        return len(self._by)
